"""What ``info`` shows of a store: counts, a per-dataset breakdown, size and validation notes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from omnipt_data.store import Store, scene_uid


def store_summary(path: Path) -> dict[str, Any]:
    store = Store.open(path)
    manifest = store.manifest
    frames = store.scan("frames")
    boxes = store.scan("boxes").join(
        frames.select("frame_uid", "dataset", "split", scene_uid()), on="frame_uid"
    )
    per_frames = frames.group_by("dataset", "split").agg(
        pl.col("sequence_uid").n_unique().alias("sequences"), pl.len().alias("frames")
    )
    per_boxes = boxes.group_by("dataset", "split").agg(
        pl.len().alias("boxes"),
        pl.struct("scene_uid", "track_id")
        .filter(pl.col("track_id").is_not_null())
        .n_unique()
        .alias("tracks"),
    )
    by_dataset = (
        per_frames.join(per_boxes, on=["dataset", "split"], how="left")
        .with_columns(pl.col("boxes", "tracks").fill_null(0))
        .sort("dataset", "split")
        .collect()
    )
    identities = (
        store.scan("identities")
        .group_by("dataset", "split")
        .agg(pl.len().alias("images"), pl.col("person_uid").n_unique().alias("persons"))
    )
    return {
        "store": str(store.path),
        **manifest["counts"],
        "by_dataset": by_dataset.to_dicts(),
        "identities_by_dataset": identities.sort("dataset", "split").collect().to_dicts(),
        "sources": store.scan("boxes").group_by("source").len().sort("source").collect().to_dicts(),
        "bytes": sum(p.stat().st_size for p in store.path.iterdir() if p.is_file()),
        "content_hash": manifest["content_hash"],
        "validation": manifest["validation"],
        "source": manifest["source"],
    }
