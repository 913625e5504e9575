"""Merging stores: a union with unique ids, duplicates skipped, images still found."""

from __future__ import annotations

import polars as pl
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.store import Store
from omnipt_data.synth import WorldConfig, synthesize


def test_merge_unions_with_unique_ids(small_world, tmp_path):
    _, world = small_world
    mot = convert("mot", world / "mot", tmp_path / "mot", show_progress=False).store
    crowd = convert("crowdhuman", world / "crowdhuman", tmp_path / "crowd", show_progress=False).store
    again = convert("mot", world / "mot", tmp_path / "mot-again", show_progress=False).store
    # another world with the same sequence names: its ids must not collide with the first
    other_world = synthesize(
        tmp_path / "w2", WorldConfig(seed=99, scenes=1, frames=5, views=2, width=160, height=96)
    )
    assert other_world.scenes[0].name == "SYN-01"
    other = convert("mot", tmp_path / "w2" / "mot", tmp_path / "other", show_progress=False).store

    result = CliRunner().invoke(
        app,
        ["merge", *(str(s.path) for s in (mot, crowd, again, other)), "--out", str(tmp_path / "all"), "-q"],
    )
    assert result.exit_code == 0, result.output
    assert "skipped 1 duplicate store(s)" in result.output
    merged = Store.open(tmp_path / "all")
    counts = merged.manifest["counts"]
    parts = [mot.manifest["counts"], crowd.manifest["counts"], other.manifest["counts"]]
    for table in ("frames", "boxes", "sequences"):
        assert counts[table] == sum(p[table] for p in parts)
    assert counts["tracks"] == mot.manifest["counts"]["tracks"] + other.manifest["counts"]["tracks"]
    prefixes = [s["uid_prefix"] for s in merged.manifest["source"]["stores"]]
    assert prefixes == ["", "", "s3:"]
    frames = merged.read("frames")
    assert frames["frame_uid"].is_unique().all()
    assert frames.filter(pl.col("frame_uid").str.starts_with("s3:")).height == 10
    # every rendered image of the merged store resolves to an existing file
    paths = frames.select("dataset", "image_path").unique().iter_rows()
    assert all(merged.image_path(d, p).is_file() for d, p in paths)
