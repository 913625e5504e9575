"""Referring-expression checks: sentences that name nobody, everybody, or people without a box.

An expression belongs to the frames of its ``(dataset, split, sequence)``, restricted to its ``views``
when it lists them (CRTrack). It names "everybody" when, in every one of those frames, its referents are
exactly the tracks that have a box there. Negative sentences (nobody) and sentences that pick out
everyone are legitimate in Refer-KITTI-V2 style data but teach nothing about telling people apart, so
they are counted for the report (info); a referent without a box is a broken label (warning).
"""

from __future__ import annotations

import polars as pl

from omnipt_data.audit.base import STORE, Check, StoreContext, link_columns


def _expression_frames(ctx: StoreContext) -> pl.LazyFrame:
    """(expression_uid, frame_uid) for every frame an expression is about."""
    expressions = ctx.scan("expressions").select("expression_uid", "dataset", "split", "sequence", "views")
    frames = ctx.scan("frames").select("frame_uid", "dataset", "split", "sequence", "view")
    joined = expressions.join(frames, on=["dataset", "split", "sequence"], how="inner")
    in_views = (
        pl.col("views").is_null()
        | (pl.col("views").list.len() == 0)
        | pl.col("view").is_null()
        | pl.col("views").list.contains(pl.col("view"))
    )
    return joined.filter(in_views).select("expression_uid", "frame_uid")


def _tracked(ctx: StoreContext) -> pl.LazyFrame:
    """(frame_uid, track_id) of every tracked box of the audited source."""
    return (
        ctx.scan("boxes")
        .filter((pl.col("source") == ctx.source) & pl.col("track_id").is_not_null())
        .select("frame_uid", "track_id")
        .unique()
    )


def _described(found: pl.LazyFrame, text: str) -> pl.DataFrame:
    return found.with_columns(detail=pl.format(text, "sentence")).sort("sequence", "expression_uid").collect()


def expression_refers_to_nobody(ctx: StoreContext) -> pl.DataFrame:
    referred = ctx.scan("referents").select("expression_uid").unique()
    found = (
        ctx.scan("expressions")
        .join(referred, on="expression_uid", how="anti")
        .select(
            pl.format("{}/{}/{}", "dataset", "split", "sequence").alias("sequence"),
            "expression_uid",
            "sentence",
        )
    )
    return link_columns(
        _described(found, '"{}" refers to nobody in any frame'), ["expression_uid", "sentence"]
    )


def expression_refers_to_everybody(ctx: StoreContext) -> pl.DataFrame:
    everyone = _expression_frames(ctx).join(_tracked(ctx), on="frame_uid", how="inner")
    referents = ctx.scan("referents").select("expression_uid", "frame_uid", "track_id").unique()
    left_out = (
        everyone.join(referents, on=["expression_uid", "frame_uid", "track_id"], how="anti")
        .select("expression_uid")
        .unique()
    )
    named_someone = referents.select("expression_uid").unique()
    found = (
        ctx.scan("expressions")
        .join(named_someone, on="expression_uid", how="semi")
        .join(left_out, on="expression_uid", how="anti")
        .select(
            pl.format("{}/{}/{}", "dataset", "split", "sequence").alias("sequence"),
            "expression_uid",
            "sentence",
        )
    )
    return link_columns(
        _described(found, '"{}" refers to everybody with a box, in every frame'),
        ["expression_uid", "sentence"],
    )


def referent_without_box(ctx: StoreContext) -> pl.DataFrame:
    frames = ctx.scan("frames").select("frame_uid", pl.col("sequence_uid").alias("sequence"), "frame_index")
    sentences = ctx.scan("expressions").select("expression_uid", "sentence")
    found = (
        ctx.scan("referents")
        .join(_tracked(ctx), on=["frame_uid", "track_id"], how="anti")
        .join(frames, on="frame_uid", how="left")
        .join(sentences, on="expression_uid", how="left")
        .with_columns(
            detail=pl.format(
                '"{}" names track {}, which has no box in frame {}', "sentence", "track_id", "frame_index"
            )
        )
        .sort("sequence", "frame_index", "expression_uid", "track_id")
        .collect()
    )
    return link_columns(found, ["expression_uid", "track_id", "frame_index"])


CHECKS = [
    Check(
        "referent_without_box",
        "warning",
        STORE,
        "An expression names a track in a frame where that track has no box.",
        referent_without_box,
    ),
    Check(
        "expression_refers_to_nobody",
        "info",
        STORE,
        "Expressions that name nobody in any frame (negative sentences).",
        expression_refers_to_nobody,
    ),
    Check(
        "expression_refers_to_everybody",
        "info",
        STORE,
        "Expressions whose referents are everyone with a box, in every frame of their sequence.",
        expression_refers_to_everybody,
    ),
]
