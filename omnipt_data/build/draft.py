"""What a sampler hands the builder: drafts of samples, with answers in original-image pixels."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from random import Random
from typing import Any

import polars as pl

from omnipt_data.answers import Answer, Box, parse_count, parse_yes_no

# Boxes a task about people lists: ground truth, not ignore regions, of a person category.
PERSON_CATEGORIES = ("pedestrian", "person", "sitting person", "rider", "person (other)")
# Negatives (empty answers) a template keeps at most, unless it says otherwise: detection's advice of
# 0-10% background images, and about the share of gRefCOCO's no-target expressions.
DEFAULT_NEGATIVE_SHARE = 0.1


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

    @property
    def empty(self) -> bool:
        """Every answer says there is nothing: no box, no semantics, or a count of 0 (a negative sample)."""
        return all(is_empty(turn.answer) for turn in self.turns)


def is_empty(answer: Answer | str) -> bool:
    if isinstance(answer, str):
        return parse_count(answer) == 0
    has_semantics = answer.captions or answer.interactions or answer.summary or answer.scalar
    return not answer.boxes() and not has_semantics


def negative_share(params: dict[str, Any]) -> float:
    """A template's share of negatives (empty answers); 0.1 unless it says otherwise."""
    return float(params.get("negative_share", DEFAULT_NEGATIVE_SHARE))


def balance_yes_no(drafts: list[Draft], yes_share: float, rng: Random) -> list[Draft]:
    """Yes/no drafts with ``yes_share`` of them answering yes: the rarer answer kept whole, the commoner
    one drawn down to match (none kept when one answer never occurs). Order is kept."""
    if not 0.0 < yes_share < 1.0:
        return drafts
    said_yes = [bool(parse_yes_no(str(d.turns[-1].answer))) for d in drafts]
    yes = [k for k, said in enumerate(said_yes) if said]
    no = [k for k, said in enumerate(said_yes) if not said]
    want_yes = yes_share / (1.0 - yes_share) * len(no)
    if len(yes) > want_yes:
        keep = set(no) | set(rng.sample(yes, round(want_yes)))
    else:
        keep = set(yes) | set(rng.sample(no, min(len(no), round(len(yes) * (1.0 - yes_share) / yes_share))))
    return [d for k, d in enumerate(drafts) if k in keep]


def gt_boxes(boxes: pl.DataFrame) -> pl.DataFrame:
    """Ground-truth boxes of any category, ignore regions left out: what a referring sentence can name."""
    return boxes.filter((pl.col("source") == "gt") & ~pl.col("ignore"))


def target_boxes(boxes: pl.DataFrame) -> pl.DataFrame:
    """The ground-truth person boxes that answers about people list (ignore regions and other classes
    left out)."""
    return gt_boxes(boxes).filter(pl.col("category").is_in(PERSON_CATEGORIES))


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
