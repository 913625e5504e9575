"""What a sampler hands the builder: drafts of samples, with answers in original-image pixels."""

from __future__ import annotations

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


def to_boxes(rows: pl.DataFrame, ids: dict[int, int] | None = None) -> list[Box]:
    """Answer boxes from store rows (sorted left to right); ``ids`` renumbers track ids."""
    out = []
    for x1, y1, x2, y2, track in rows.sort("x1", "y1").select("x1", "y1", "x2", "y2", "track_id").iter_rows():
        tid = None if track is None or ids is None else ids.get(track, track)
        out.append(Box(x1, y1, x2, y2, tid))
    return out
