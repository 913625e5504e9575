"""What a trainer's encoded sample says, in terms the conformance tests compare with the native export.

Shared by the checks that run in the trainers' own environments (``llamafactory_check.py``,
``swift_check.py``, beside this file) and by the TRL check in the project's environment; it needs
nothing beyond the trainer's tokenizer.
"""

from __future__ import annotations

from typing import Any


def supervised_spans(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    """The supervised tokens as text, one string per contiguous run of labels (labels are the input ids
    themselves where supervised, -100 elsewhere, not yet shifted)."""
    spans: list[list[int]] = []
    current: list[int] = []
    for token, label in zip(ids, labels, strict=True):
        if label == -100:
            if current:
                spans.append(current)
                current = []
            continue
        if label != token:
            raise AssertionError(f"label {label} at a position whose input is {token}")
        current.append(token)
    if current:
        spans.append(current)
    return [
        tokenizer.decode(span, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        for span in spans
    ]


def encoded_sample(tokenizer: Any, ids: list[int], labels: list[int], grids: Any) -> dict[str, Any]:
    """Supervised text, image placeholder tokens, vision blocks and the images' patch grids."""
    return {
        "supervised": supervised_spans(tokenizer, ids, labels),
        "image_tokens": ids.count(tokenizer.convert_tokens_to_ids("<|image_pad|>")),
        "vision_blocks": ids.count(tokenizer.convert_tokens_to_ids("<|vision_start|>")),
        "grids": grids.tolist() if grids is not None else [],
        "length": len(ids),
    }
