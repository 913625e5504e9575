"""The reader registry: one reader per native format, each in its own module."""

from __future__ import annotations

from pathlib import Path

from omnipt_data.errors import OmniptError
from omnipt_data.readers import crowdhuman, mot
from omnipt_data.readers.base import Reader, ReadOptions, Unit

__all__ = ["READERS", "ReadOptions", "Reader", "Unit", "detect_format", "get_reader"]

READERS: dict[str, Reader] = {r.name: r for r in (mot.READER, mot.RESULTS_READER, crowdhuman.READER)}

# `convert auto` tries the readers in this order: the most specific layouts first.
SNIFF_ORDER: tuple[str, ...] = ("crowdhuman", "mot", "mot-results")


def get_reader(name: str) -> Reader:
    try:
        return READERS[name]
    except KeyError:
        raise OmniptError(f"unknown format {name!r}; known formats: {', '.join(sorted(READERS))}") from None


def detect_format(path: Path) -> str:
    """The first reader in ``SNIFF_ORDER`` that recognises ``path``."""
    for name in SNIFF_ORDER:
        if READERS[name].sniff(path):
            return name
    raise OmniptError(f"{path}: no reader recognises this folder; pass the format explicitly")
