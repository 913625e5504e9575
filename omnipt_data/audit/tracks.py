"""Track checks: identity swaps, fragmented tracks, missing frames, teleports, and track lengths.

A track is a ``(sequence, track_id)``: one camera's view of one identity. Swaps and teleports look at a
track's boxes in consecutive frames, and only at boxes fit for that (see
:func:`omnipt_data.audit.boxes.motion_boxes`): a box already reported as broken would echo here.
"""

from __future__ import annotations

import itertools

import polars as pl

from omnipt_data.audit.base import STORE, Check, StoreContext, empty_findings, link_columns
from omnipt_data.audit.boxes import frame_pairs, motion_boxes

# A walking person moves about a tenth of their height per frame at 10 fps, a sprinter a fifth at 25 fps:
# a centre that moves more than the box's larger side per frame has jumped.
TELEPORT_SIDES_PER_FRAME = 1.0
LENGTH_BINS = (1, 2, 5, 10, 25, 50, 100, 250, 500)


def identity_swap(ctx: StoreContext) -> pl.DataFrame:
    _, swaps = frame_pairs(ctx)
    if swaps.height == 0:
        return empty_findings("sequence", "frame_uid", "box_uid", "image")
    found = swaps.with_columns(
        detail=pl.format(
            "tracks {} and {} exchange boxes from frame {} (IoU with the other's previous box {}, "
            "with its own {})",
            "track_id",
            "other_track_id",
            "frame_index",
            "iou_swapped",
            "iou_own",
        )
    )
    return link_columns(found, ["track_id", "other_track_id", "frame_index", "iou_own", "iou_swapped"])


def track_gap(ctx: StoreContext) -> pl.DataFrame:
    found = (
        ctx.boxes()
        .filter(pl.col("track_id").is_not_null())
        .select("sequence", "track_id", "frame_index", "frame_uid", "image")
        .unique(["sequence", "track_id", "frame_index"], keep="first")
        .sort("sequence", "track_id", "frame_index", "frame_uid")
        .with_columns(last_seen=pl.col("frame_index").shift(1).over("sequence", "track_id"))
        .filter(pl.col("frame_index") - pl.col("last_seen") > 1)
        .with_columns(missing=pl.col("frame_index") - pl.col("last_seen") - 1)
        .with_columns(
            detail=pl.format(
                "track {} is missing from {} frame(s) between frames {} and {}",
                "track_id",
                "missing",
                "last_seen",
                "frame_index",
            )
        )
        .sort("sequence", "frame_index", "track_id")
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index", "last_seen", "missing"])


def sequence_frame_gap(ctx: StoreContext) -> pl.DataFrame:
    found = (
        ctx.frames()
        .select(pl.col("sequence_uid").alias("sequence"), "frame_index", "frame_uid", "image")
        .sort("sequence", "frame_index")
        .with_columns(previous=pl.col("frame_index").shift(1).over("sequence"))
        .filter(pl.col("frame_index") - pl.col("previous") > 1)
        .with_columns(missing=pl.col("frame_index") - pl.col("previous") - 1)
        .with_columns(
            detail=pl.format(
                "{} frame(s) missing between frames {} and {}", "missing", "previous", "frame_index"
            )
        )
        .collect()
    )
    return link_columns(found, ["frame_index", "previous", "missing"])


def teleport(ctx: StoreContext) -> pl.DataFrame:
    _, swaps = frame_pairs(ctx)
    # A swap moves both tracks at once; it is reported as a swap, not as two jumps.
    swapped = pl.concat(
        [
            swaps.select("sequence", "frame_index", "track_id"),
            swaps.select("sequence", "frame_index", pl.col("other_track_id").alias("track_id")),
        ]
    ).lazy()
    centre_x, centre_y = (pl.col("x1") + pl.col("x2")) / 2, (pl.col("y1") + pl.col("y2")) / 2
    found = (
        motion_boxes(ctx)
        .select(
            "sequence",
            "track_id",
            "frame_index",
            "frame_uid",
            "box_uid",
            "image",
            centre_x.alias("cx"),
            centre_y.alias("cy"),
            pl.max_horizontal("w", "h").alias("side"),
        )
        .sort("sequence", "track_id", "frame_index", "box_uid")
        .with_columns(
            pl.col(c).shift(1).over("sequence", "track_id").alias(f"prev_{c}")
            for c in ("frame_index", "cx", "cy", "side")
        )
        .filter(pl.col("prev_frame_index").is_not_null())
        .with_columns(
            frames=pl.col("frame_index") - pl.col("prev_frame_index"),
            jump=((pl.col("cx") - pl.col("prev_cx")) ** 2 + (pl.col("cy") - pl.col("prev_cy")) ** 2).sqrt(),
            side=pl.max_horizontal("side", "prev_side"),
        )
        .with_columns(sides_per_frame=(pl.col("jump") / pl.col("frames") / pl.col("side")).round(3))
        .filter(pl.col("sides_per_frame") > TELEPORT_SIDES_PER_FRAME)
        .join(swapped, on=["sequence", "frame_index", "track_id"], how="anti")
        .with_columns(
            jump=pl.col("jump").round(1),
            detail=pl.format(
                "track {} moves {} px in {} frame(s) (frame {} to {}): {} box sides per frame",
                "track_id",
                pl.col("jump").round(1),
                "frames",
                "prev_frame_index",
                "frame_index",
                "sides_per_frame",
            ),
        )
        .sort("sequence", "frame_index", "track_id")
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index", "prev_frame_index", "jump", "sides_per_frame"])


def track_lengths(ctx: StoreContext) -> pl.DataFrame:
    """Tracks per length bin (frames a track is seen in)."""
    labels = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(LENGTH_BINS)]
    labels.append(f">={LENGTH_BINS[-1]}")
    index = pl.sum_horizontal([(pl.col("frames") >= edge).cast(pl.Int32) for edge in LENGTH_BINS[1:]])
    return (
        ctx.boxes()
        .filter(pl.col("track_id").is_not_null())
        .group_by("sequence", "track_id")
        .agg(pl.col("frame_index").n_unique().alias("frames"))
        .select(
            index.replace_strict(dict(enumerate(labels)), return_dtype=pl.String).alias("length"),
            index.replace_strict(dict(enumerate(LENGTH_BINS)), return_dtype=pl.Int64).alias("low"),
        )
        .group_by("length", "low")
        .agg(pl.len().alias("tracks"))
        .sort("low")
        .with_columns(detail=pl.format("tracks seen in {} frames: {}", "length", "tracks"))
        .collect()
    )


CHECKS = [
    Check(
        "identity_swap",
        "warning",
        STORE,
        "Two tracks that exchange positions between consecutive frames (an id switch in the labels): "
        "each box overlaps the other track's previous box (IoU >= 0.5) and not its own.",
        identity_swap,
    ),
    Check(
        "track_gap",
        "warning",
        STORE,
        "Fragmented tracks: a track missing from frames between two of its boxes.",
        track_gap,
    ),
    Check(
        "sequence_frame_gap",
        "warning",
        STORE,
        "Sequences whose frame numbers skip (missing frames).",
        sequence_frame_gap,
    ),
    Check(
        "teleport",
        "warning",
        STORE,
        f"Tracks whose centre jumps more than {TELEPORT_SIDES_PER_FRAME:g} box side(s) per frame.",
        teleport,
    ),
    Check("track_lengths", "info", STORE, "Tracks per number of frames they are seen in.", track_lengths),
]
