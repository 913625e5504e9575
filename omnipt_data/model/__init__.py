"""Qwen-VL models: a tiny offline checkpoint for tests and demos, loading, provenance and batched generation.

Names are resolved lazily, so importing this package does not import torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnipt_data.model.loading import (
        answer_loss,
        checkpoint_hash,
        generate_batch,
        generate_one_by_one,
        generate_token_ids,
        load_model,
        load_processor,
    )
    from omnipt_data.model.tiny import build_tiny_qwen_vl

_EXPORTS = {
    "answer_loss": "omnipt_data.model.loading",
    "build_tiny_qwen_vl": "omnipt_data.model.tiny",
    "checkpoint_hash": "omnipt_data.model.loading",
    "generate_batch": "omnipt_data.model.loading",
    "generate_one_by_one": "omnipt_data.model.loading",
    "generate_token_ids": "omnipt_data.model.loading",
    "load_model": "omnipt_data.model.loading",
    "load_processor": "omnipt_data.model.loading",
}

__all__ = [
    "answer_loss",
    "build_tiny_qwen_vl",
    "checkpoint_hash",
    "generate_batch",
    "generate_one_by_one",
    "generate_token_ids",
    "load_model",
    "load_processor",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
