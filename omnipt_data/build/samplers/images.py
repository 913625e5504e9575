"""Single-image samplers: grounding every person, counting them, asking about one person's visibility."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random
from typing import Any

import polars as pl

from omnipt_data.answers import Answer, render_count, render_yes_no
from omnipt_data.build.draft import Draft, Image, Turn, target_boxes, to_boxes
from omnipt_data.build.source import BuildSource


def _frames_with_targets(
    source: BuildSource, params: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], pl.DataFrame]]:
    """(dataset, frame row, target boxes) for every ``frame_stride``-th frame of known size."""
    stride = int(params.get("frame_stride", 1))
    min_visibility = float(params.get("min_visibility", 0.0))
    max_boxes = int(params.get("max_boxes", 100))
    for seq, frames, boxes in source.sequence_batches():
        targets = target_boxes(boxes).filter(pl.col("visibility").fill_null(1.0) >= min_visibility)
        by_frame = targets.partition_by("frame_uid", as_dict=True)
        for row in frames.filter((pl.col("frame_index") - 1) % stride == 0).iter_rows(named=True):
            if row["width"] is None or row["height"] is None:
                continue
            rows = by_frame.get((row["frame_uid"],), targets.clear())
            if rows.height <= max_boxes:
                yield seq.dataset, row, rows


def _image(row: dict[str, Any]) -> Image:
    return Image(row["abs_path"], (row["width"], row["height"]))


def grounding(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Every person in one image, boxes without ids. ``skip_empty`` drops images with nobody."""
    skip_empty = bool(params.get("skip_empty", True))
    for dataset, row, rows in _frames_with_targets(source, params):
        if skip_empty and rows.height == 0:
            continue
        answer = Answer.single_image(to_boxes(rows))
        yield Draft(row["frame_uid"], dataset, [Turn([_image(row)], {"count": rows.height}, answer)])


def counting(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """How many people an image shows (``Answer: N``)."""
    for dataset, row, rows in _frames_with_targets(source, params):
        yield Draft(row["frame_uid"], dataset, [Turn([_image(row)], {}, render_count(rows.height))])


def visibility(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Is the person in a given box at least ``threshold`` visible? One person per image, drawn by key."""
    threshold = float(params.get("threshold", 0.5))
    for dataset, row, rows in _frames_with_targets(source, params):
        known = rows.filter(pl.col("visibility").is_not_null())
        if known.height == 0:
            continue
        rng = rng_for(row["frame_uid"])
        target = known.sort("x1", "y1").row(rng.randrange(known.height), named=True)
        box = to_boxes(pl.DataFrame([target]).select("x1", "y1", "x2", "y2", "track_id"))
        context = {"target": Answer.single_image(box), "threshold_percent": round(threshold * 100)}
        answer = render_yes_no(target["visibility"] >= threshold)
        yield Draft(row["frame_uid"], dataset, [Turn([_image(row)], context, answer)])
