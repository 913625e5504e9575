"""A store is validated while it is written (no read-back): the report equals ``validate`` on the files,
whatever batches the tables arrive in and whatever defects they hold."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from omnipt_data import store as store_module
from omnipt_data.convert import convert
from omnipt_data.store import CHECK_ROWS, TABLES, StoreWriter, summary_counts, validate


def _defective(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The same tables with one defect of every kind ``validate`` knows."""
    boxes, frames = tables["boxes"], tables["frames"]
    first, last = boxes.row(0, named=True), boxes.row(boxes.height - 1, named=True)
    planted = pl.DataFrame(
        [
            last | {"box_uid": first["box_uid"]},  # duplicate key, far from its twin
            first | {"box_uid": "orphan", "frame_uid": "nowhere#1"},
            first | {"box_uid": "inverted", "x2": first["x1"] - 1},
            first | {"box_uid": "outside", "x1": -5.0},
            first | {"box_uid": "flat", "y2": first["y1"]},
            first | {"box_uid": "nan", "x1": float("nan")},
            last | {"box_uid": "pair"},  # the same (frame, track, source) twice
        ],
        schema=boxes.schema,
    )
    beyond = frames.head(1).with_columns(frame_uid=pl.lit("beyond"), frame_index=pl.lit(10_000, pl.Int32))
    return tables | {"boxes": pl.concat([planted, boxes]), "frames": pl.concat([frames, beyond])}


def _batches(tables: dict[str, pl.DataFrame], how: str) -> list[dict[str, pl.DataFrame]]:
    if how == "whole":
        return [tables]
    if how == "per table":
        return [{t: df} for t, df in tables.items()]
    # per sequence, boxes with their frames, except that every third sequence's boxes come a batch late
    frames = tables["frames"]
    batches: list[dict[str, pl.DataFrame]] = []
    for i, (uid,) in enumerate(frames.select("sequence_uid").unique(maintain_order=True).iter_rows()):
        own = frames.filter(pl.col("sequence_uid") == uid)
        batch = {
            "sequences": tables["sequences"].filter(pl.col("sequence_uid") == uid),
            "frames": own,
            "boxes": tables["boxes"].filter(pl.col("frame_uid").is_in(own["frame_uid"].implode())),
        }
        if i % 3 == 2:
            batches.append({k: v for k, v in batch.items() if k != "boxes"})
            batches.append({"boxes": batch["boxes"]})
        else:
            batches.append(batch)
    known = pl.concat([b["frames"] for b in batches if "frames" in b])["frame_uid"].implode()
    rest = {t: df for t, df in tables.items() if t not in ("sequences", "frames", "boxes")}
    batches.append(rest | {"boxes": tables["boxes"].filter(~pl.col("frame_uid").is_in(known))})
    return batches


@pytest.mark.parametrize("defects", [False, True])
def test_the_report_written_with_a_store_equals_validate(
    small_world, fixtures, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defects: bool
) -> None:
    _, world = small_world
    sources = [("mot", world / "mot"), ("mot", fixtures / "mot15"), ("crtrack", world / "crtrack")]
    if not defects:  # identities too
        sources.append(("market1501", world / "market1501"))
    for n, (fmt, path) in enumerate(sources):
        store = convert(fmt, path, tmp_path / f"store{n}", show_progress=False).store
        if not defects:
            assert store.manifest["validation"] == validate(store.path).to_json()
            assert store.manifest["counts"] == summary_counts(store.path)  # gathered while writing
            continue
        tables = _defective({t: store.read(t) for t in TABLES})
        # each batch checked on its own (units larger than CHECK_ROWS), and small batches checked together
        for how, check_rows in (
            ("whole", 1),
            ("per table", 1),
            ("per sequence", 1),
            ("per sequence", CHECK_ROWS),
        ):
            folder = tmp_path / f"{n}-{how}-{check_rows}"
            folder.mkdir()
            monkeypatch.setattr(store_module, "CHECK_ROWS", check_rows)
            writer = StoreWriter(folder)
            for batch in _batches(tables, how):
                writer.write_batch(batch)
            writer.close()
            streamed, scanned = writer.checks.finish(folder), validate(folder)
            assert streamed.to_json() == scanned.to_json(), (fmt, how, check_rows)
            assert streamed.describe() == scanned.describe()
            planted = {
                "duplicate boxes key",
                "boxes without frames",
                "non-finite box",
                "inverted box",
                "zero-area box",
                "duplicate (frame, track) pair",
                "frame beyond sequence length",
            }
            if tables["frames"]["width"].is_not_null().all():  # image sizes known
                planted.add("box outside image")
            assert {f.check for f in scanned.findings} >= planted, fmt
