"""What a sampler hands the builder: drafts of samples, with answers in original-image pixels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from omnipt_data.answers import Answer, Box

# Boxes a model is taught to find: ground truth, not ignore regions, of a person category.
PERSON_CATEGORIES = ("pedestrian", "person", "sitting person", "rider", "person (other)")


@dataclass(frozen=True)
class Image:
    path: str  # absolute path on disk
    size: tuple[int, int]  # original (width, height)
    label: dict[str, Any] = field(default_factory=dict)  # fills the template's image_label


@dataclass
class Turn:
    """One user/assistant exchange. ``context`` values that are Answers are rendered in the box format."""

    images: list[Image]
    context: dict[str, Any]
    answer: Answer | str


@dataclass
class Draft:
    key: str  # unique and stable within the task: it seeds the sample's phrasing
    dataset: str
    turns: list[Turn]
    meta: dict[str, Any] = field(default_factory=dict)


def target_boxes(boxes: pl.DataFrame) -> pl.DataFrame:
    """The ground-truth person boxes that answers list (ignore regions and other classes left out)."""
    return boxes.filter(
        (pl.col("source") == "gt") & ~pl.col("ignore") & pl.col("category").is_in(PERSON_CATEGORIES)
    )


BOX_COLUMNS = ("x1", "y1", "x2", "y2", "track_id")


def boxes_of(rows: Iterable[tuple], ids: dict[int, int] | None = None) -> list[Box]:
    """Answer boxes from ``(x1, y1, x2, y2, track_id)`` rows, sorted left to right; ``ids`` renumbers
    track ids. Plain Python: samples hold a few boxes, where a polars call costs more than the work."""
    out = []
    for x1, y1, x2, y2, track in sorted(rows, key=lambda r: (r[0], r[1])):
        tid = None if track is None or ids is None else ids.get(track, track)
        out.append(Box(x1, y1, x2, y2, tid))
    return out


def to_boxes(rows: pl.DataFrame, ids: dict[int, int] | None = None) -> list[Box]:
    """Answer boxes from store rows (sorted left to right); ``ids`` renumbers track ids."""
    return boxes_of(rows.select(BOX_COLUMNS).iter_rows(), ids)
