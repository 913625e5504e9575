"""Single-image samplers: grounding every person, counting them, asking about one person's visibility."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random
from typing import Any

import polars as pl

from omnipt_data.answers import Answer, render_count, render_yes_no
from omnipt_data.build.draft import (
    Draft,
    Image,
    Turn,
    balance_yes_no,
    target_boxes,
    to_boxes,
)
from omnipt_data.build.source import BuildSource, Sequence, draws_for


def _frames_with_targets(
    source: BuildSource, sampler: str, params: dict[str, Any]
) -> Iterator[tuple[Sequence, list[tuple[dict[str, Any], pl.DataFrame]]]]:
    """(sequence, [(frame row, target boxes)]) for every ``frame_stride``-th frame of known size of each
    sequence whose boxes say which are people."""
    stride = int(params.get("frame_stride", 1))
    min_visibility = float(params.get("min_visibility", 0.0))
    max_boxes = int(params.get("max_boxes", 100))
    for seq, frames, boxes in source.sequence_batches(draws_for(sampler, params)):
        targets = target_boxes(boxes).filter(pl.col("visibility").fill_null(1.0) >= min_visibility)
        by_frame = targets.partition_by("frame_uid", as_dict=True)
        found = []
        for row in frames.filter((pl.col("frame_index") - 1) % stride == 0).iter_rows(named=True):
            if row["width"] is None or row["height"] is None:
                continue
            rows = by_frame.get((row["frame_uid"],), targets.clear())
            if rows.height <= max_boxes:
                found.append((row, rows))
        yield seq, found


def _image(row: dict[str, Any]) -> Image:
    return Image(row["abs_path"], (row["width"], row["height"]))


def grounding(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Every person in one image, boxes without ids; images with nobody are negatives (the builder keeps
    ``negative_share`` of the samples)."""
    for seq, found in _frames_with_targets(source, "grounding", params):
        for row, rows in found:
            answer = Answer.single_image(to_boxes(rows))
            yield Draft(row["frame_uid"], seq.dataset, [Turn([_image(row)], {"count": rows.height}, answer)])


def counting(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """How many people an image shows (``Answer: N``); images with nobody are negatives."""
    for seq, found in _frames_with_targets(source, "counting", params):
        for row, rows in found:
            yield Draft(row["frame_uid"], seq.dataset, [Turn([_image(row)], {}, render_count(rows.height))])


def visibility(
    source: BuildSource, params: dict[str, Any], rng_for: Callable[[str], Random]
) -> Iterator[Draft]:
    """Is the person in a given box at least ``threshold`` visible? One person per image, drawn by key
    from the answer that is rarer so far in the sequence; ``yes_share`` of the answers are yes."""
    threshold = float(params.get("threshold", 0.5))
    yes_share = float(params.get("yes_share", 0.5))
    for seq, found in _frames_with_targets(source, "visibility", params):
        drafts, answered_yes = [], 0
        for row, rows in found:
            known = rows.filter(pl.col("visibility").is_not_null()).sort("x1", "y1")
            if known.height == 0:
                continue
            rng = rng_for(row["frame_uid"])
            visible = known["visibility"] >= threshold
            want_yes = answered_yes < yes_share * (len(drafts) + 1)
            wanted = known.filter(visible if want_yes else ~visible)
            pool = wanted if wanted.height else known
            target = pool.row(rng.randrange(pool.height), named=True)
            answered_yes += target["visibility"] >= threshold
            box = to_boxes(pl.DataFrame([target]).select("x1", "y1", "x2", "y2", "track_id"))
            context = {"target": Answer.single_image(box), "threshold_percent": round(threshold * 100)}
            answer = render_yes_no(target["visibility"] >= threshold)
            drafts.append(Draft(row["frame_uid"], seq.dataset, [Turn([_image(row)], context, answer)]))
        yield from balance_yes_no(drafts, yes_share, rng_for(f"{seq.uid}#balance"))
