"""Leak checks: the same sequence, track or identity on both sides of the train / held-out line.

- a sequence name in a training and a held-out split (MOT17's detector variants of one video count as one
  sequence: ``MOT17-02-FRCNN`` and ``MOT17-02-SDP`` share their ground truth);
- a track whose boxes, frame after frame, repeat a track of the other side: the same annotated clip in
  both (fingerprints of :data:`WINDOW` consecutive boxes, moving ones only, so people standing still in
  two unrelated videos do not match by chance);
- a person id (ReID, person text) with images in both.
"""

from __future__ import annotations

import polars as pl

from omnipt_data.audit.base import STORE, Check, StoreContext, empty_findings, link_columns, split_group
from omnipt_data.audit.boxes import motion_boxes

WINDOW = 4
DETECTOR_SUFFIX = r"-(DPM|FRCNN|SDP)$"


def sequence_in_several_splits(ctx: StoreContext) -> pl.DataFrame:
    sequences = ctx.scan("sequences").select(
        "sequence_uid",
        "dataset",
        "split",
        pl.col("sequence").str.replace(DETECTOR_SUFFIX, "").alias("video"),
        split_group().alias("side"),
    )
    sides = (
        sequences.filter(pl.col("side").is_not_null())
        .group_by("video")
        .agg(
            pl.col("side").n_unique().alias("sides"),
            pl.col("sequence_uid").filter(pl.col("side") == "train").sort().alias("train"),
            pl.col("sequence_uid").filter(pl.col("side") == "held_out").sort().alias("held_out"),
        )
        .filter(pl.col("sides") > 1)
    )
    found = (
        sides.select(
            pl.col("held_out").list.first().alias("sequence"),
            "video",
            pl.col("train").list.join(", ").alias("train_sequences"),
            pl.col("held_out").list.join(", ").alias("held_out_sequences"),
        )
        .with_columns(
            detail=pl.format(
                "video {} is in training ({}) and held-out ({}) splits",
                "video",
                "train_sequences",
                "held_out_sequences",
            )
        )
        .sort("sequence")
        .collect()
    )
    return link_columns(found, ["video", "train_sequences", "held_out_sequences"])


def _fingerprints(ctx: StoreContext) -> pl.LazyFrame:
    """One row per window of ``WINDOW`` consecutive frames of a track in which the box moves."""
    coords = ["x1", "y1", "x2", "y2"]
    boxes = (
        motion_boxes(ctx)
        .select(
            "sequence",
            "track_id",
            "frame_index",
            "frame_uid",
            "image",
            split_group().alias("side"),
            pl.concat_str([pl.col(c).round(2).cast(pl.String) for c in coords], separator=",").alias("box"),
        )
        .filter(pl.col("side").is_not_null())
        .sort("sequence", "track_id", "frame_index")
    )
    over = ("sequence", "track_id")
    ahead = [pl.col("frame_index").shift(-k).over(over).alias(f"f{k}") for k in range(1, WINDOW)]
    boxes_ahead = [pl.col("box").shift(-k).over(over).alias(f"b{k}") for k in range(1, WINDOW)]
    consecutive = pl.all_horizontal(
        [pl.col(f"f{k}") == pl.col("frame_index") + k for k in range(1, WINDOW)]
    ).fill_null(False)
    moving = pl.any_horizontal([pl.col(f"b{k}") != pl.col("box") for k in range(1, WINDOW)])
    return (
        boxes.with_columns(*ahead, *boxes_ahead)
        .filter(consecutive & moving)
        .select(
            "sequence",
            "track_id",
            "frame_index",
            "frame_uid",
            "image",
            "side",
            pl.concat_str(["box", *[f"b{k}" for k in range(1, WINDOW)]], separator="|").hash(0).alias("fp"),
        )
    )


def track_in_several_splits(ctx: StoreContext) -> pl.DataFrame:
    prints = _fingerprints(ctx)
    train = prints.filter(pl.col("side") == "train").select(
        "fp",
        pl.col("sequence").alias("train_sequence"),
        pl.col("track_id").alias("train_track_id"),
        pl.col("frame_index").alias("train_frame_index"),
    )
    held_out = prints.filter(pl.col("side") == "held_out")
    found = (
        held_out.join(train, on="fp", how="inner")
        .group_by("sequence", "track_id", "train_sequence", "train_track_id")
        .agg(
            pl.len().alias("shared_windows"),
            pl.col("frame_index").min().alias("frame_index"),
            pl.col("frame_uid").sort_by("frame_index").first(),
            pl.col("image").sort_by("frame_index").first(),
            pl.col("train_frame_index").min(),
        )
        .with_columns(
            detail=pl.format(
                "track {} repeats track {} of training sequence {} ({} windows of {} frames, from frame {})",
                "track_id",
                "train_track_id",
                "train_sequence",
                "shared_windows",
                pl.lit(WINDOW),
                "train_frame_index",
            )
        )
        .sort("sequence", "track_id", "train_sequence", "train_track_id")
        .collect()
    )
    if found.height == 0:
        return empty_findings("sequence", "frame_uid", "image")
    return link_columns(
        found,
        [
            "track_id",
            "frame_index",
            "train_sequence",
            "train_track_id",
            "train_frame_index",
            "shared_windows",
        ],
    )


def identity_in_several_splits(ctx: StoreContext) -> pl.DataFrame:
    identities = ctx.scan("identities").filter(
        ~pl.col("junk").fill_null(False) & ~pl.col("distractor").fill_null(False)
    )
    sided = (
        ctx.with_image(identities)
        .with_columns(split_group().alias("side"))
        .filter(pl.col("side").is_not_null())
    )
    found = (
        sided.group_by("person_uid")
        .agg(
            pl.col("side").n_unique().alias("sides"),
            pl.col("split").unique().sort().alias("splits"),
            pl.col("image_uid").filter(pl.col("side") == "held_out").sort().first().alias("image_uid"),
            pl.col("image_uid").filter(pl.col("side") == "train").sort().first().alias("train_image_uid"),
        )
        .filter(pl.col("sides") > 1)
        .join(sided.select("image_uid", "image"), on="image_uid", how="left")
        .with_columns(
            splits=pl.col("splits").list.join(", "),
        )
        .with_columns(
            detail=pl.format(
                "person {} has images in splits {} (e.g. {} and {})",
                "person_uid",
                "splits",
                "train_image_uid",
                "image_uid",
            )
        )
        .sort("person_uid")
        .collect()
    )
    return link_columns(found, ["person_uid", "image_uid", "train_image_uid", "splits"])


CHECKS = [
    Check(
        "sequence_in_several_splits",
        "error",
        STORE,
        "A video (sequence name) in both a training and a held-out split.",
        sequence_in_several_splits,
    ),
    Check(
        "track_in_several_splits",
        "error",
        STORE,
        f"A held-out track whose boxes repeat a training track's over {WINDOW}+ consecutive frames.",
        track_in_several_splits,
    ),
    Check(
        "identity_in_several_splits",
        "error",
        STORE,
        "A person id (ReID, person text) with images in both a training and a held-out split.",
        identity_in_several_splits,
    ),
]
