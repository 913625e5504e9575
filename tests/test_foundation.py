"""The foundation end to end: synthetic world -> native formats -> store, real samples, bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from conftest import SMALL_WORLD, TEST_DATA, check_malformed
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.readers import ReadOptions, detect_format
from omnipt_data.store import Store, validate
from omnipt_data.synth import WorldConfig, synthesize
from omnipt_data.synth.world import generate_world

runner = CliRunner()


def _store_boxes(store: Store, source: str = "gt") -> pl.DataFrame:
    frames = store.read("frames").select("frame_uid", "sequence", "frame_index", "width", "height")
    return store.read("boxes").filter(pl.col("source") == source).join(frames, on="frame_uid", how="left")


def test_mot_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = convert("mot", out / "mot", tmp_path / "store", show_progress=False).store
    got = (
        _store_boxes(store)
        .select(
            pl.col("sequence").str.extract(r"^(SYN-\d+)").alias("scene"),
            pl.col("sequence").str.extract(r"View(\d+)$").cast(pl.Int32).alias("view"),
            pl.col("frame_index").alias("frame"),
            "track_id",
            pl.col("x1").cast(pl.Int32).alias("x"),
            pl.col("y1").cast(pl.Int32).alias("y"),
            (pl.col("x2") - pl.col("x1")).cast(pl.Int32).alias("w"),
            (pl.col("y2") - pl.col("y1")).cast(pl.Int32).alias("h"),
            pl.col("visibility").cast(pl.Float64).round(2),
            (pl.col("class_id") == 7).alias("static"),
            pl.col("ignore"),
            pl.col("category"),
            pl.col("width"),
        )
        .sort("scene", "view", "frame", "track_id")
    )
    truth = world.boxes.select(
        "scene", "view", "frame", "track_id", "x", "y", "w", "h", "visibility", "static"
    )
    assert got.height == truth.height == 354
    assert got.drop("ignore", "category", "width").equals(truth.sort("scene", "view", "frame", "track_id"))
    # standing people are MOT's static_person (class 7) with the evaluation flag 0
    assert got.filter(pl.col("static"))["category"].unique().to_list() == ["static_person"]
    assert got.filter("static")["ignore"].all() and not got.filter(~pl.col("static"))["ignore"].any()
    assert got["width"].unique().to_list() == [SMALL_WORLD.width]
    counts = store.manifest["counts"]
    assert counts["sequences"] == SMALL_WORLD.scenes * SMALL_WORLD.views
    assert counts["frames"] == SMALL_WORLD.scenes * SMALL_WORLD.views * SMALL_WORLD.frames
    assert counts["tracks"] == world.boxes.select("scene", "view", "track_id").n_unique()
    # detections come along as their own source, scored, without identities
    dets = _store_boxes(store, "det")
    assert dets.height > 0 and dets["track_id"].null_count() == dets.height
    assert dets["confidence"].is_between(0.05, 1.0).all()
    # images are recorded relative to the dataset root and exist there
    frame = store.read("frames").row(0, named=True)
    assert store.image_path(frame["dataset"], frame["image_path"]).is_file()


def test_crowdhuman_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = convert("crowdhuman", out / "crowdhuman", tmp_path / "store", show_progress=False).store
    boxes = store.read("boxes").join(
        store.read("frames").select("frame_uid", "image_path", "width"), on="frame_uid"
    )
    view1 = world.boxes.filter(
        (pl.col("view") == 1) & (pl.col("visibility") >= 0.05) & ((pl.col("frame") - 1) % 8 == 0)
    )
    assert boxes.height == view1.height == 23
    got = boxes.select(
        pl.col("image_path").str.extract(r"(SYN-\d+)_").alias("scene"),
        pl.col("image_path").str.extract(r"_(\d+)\.jpg").cast(pl.Int32).alias("frame"),
        *(pl.col(c).cast(pl.Int32) for c in ("x1", "y1", "x2", "y2", "vis_x1", "vis_y1", "vis_x2", "vis_y2")),
        *(pl.col(c).cast(pl.Int32) for c in ("head_x1", "head_y1", "head_x2", "head_y2")),
        (pl.col("category") == "mask").alias("static"),
        "ignore",
        "width",
    ).sort("scene", "frame", "x1", "y1")
    want = view1.select(
        "scene",
        "frame",
        pl.col("x").alias("x1"),
        pl.col("y").alias("y1"),
        (pl.col("x") + pl.col("w")).alias("x2"),
        (pl.col("y") + pl.col("h")).alias("y2"),
        "vis_x1",
        "vis_y1",
        "vis_x2",
        "vis_y2",
        "head_x1",
        "head_y1",
        "head_x2",
        "head_y2",
        "static",
    ).sort("scene", "frame", "x1", "y1")
    assert got.drop("ignore", "width").equals(want)
    assert got["ignore"].equals(got["static"])  # mask regions are ignore regions
    assert got["width"].unique().to_list() == [SMALL_WORLD.width]  # read from the image headers
    extra = json.loads(boxes["extra"][0])
    assert set(extra) == {"extra", "head_attr"} and "box_id" in extra["extra"]


def test_real_mot15_sample_converts_with_exact_counts(fixtures, tmp_path):
    gt = fixtures / "mot15" / "TUD-Campus" / "gt.txt"
    store = convert("mot", gt, tmp_path / "tud", show_progress=False).store
    counts = store.manifest["counts"]
    assert (counts["frames"], counts["boxes"], counts["tracks"], counts["sequences"]) == (71, 359, 8, 1)
    frames = store.read("frames")
    assert frames["width"].null_count() == 71  # a bare gt.txt: image sizes stay unknown
    assert frames["sequence"].unique().to_list() == ["TUD-Campus"]
    assert frames["dataset"].unique().to_list() == ["MOT15"]
    boxes = store.read("boxes")
    first = boxes.filter(pl.col("frame_uid") == frames["frame_uid"][0]).sort("track_id").row(0, named=True)
    assert (first["track_id"], first["x1"], first["y1"], first["x2"], first["y2"]) == (1, 399, 182, 520, 411)
    assert boxes["category"].unique().to_list() == ["pedestrian"] and boxes["class_id"].null_count() == 359
    # the tracker result in the same folder reads as predictions
    preds = convert(
        "mot-results",
        fixtures / "mot15" / "TUD-Campus" / "test.txt",
        tmp_path / "pred",
        options=ReadOptions(prediction_name="devkit-demo", dataset="MOT15"),
        show_progress=False,
    ).store
    pboxes = preds.read("boxes")
    assert pboxes.height == 222 and pboxes["source"].unique().to_list() == ["model:devkit-demo"]
    assert pboxes["x1"][0] == pytest.approx(113.84)


MALFORMED = {
    "mot_wrong_columns": ("mot", "gt/gt.txt", 3, "8 columns"),
    "mot_non_numeric": ("mot", "gt/gt.txt", 3, "non-numeric value 'abc'"),
    "mot_nan": ("mot", "gt/gt.txt", 3, "NaN"),
    "mot_negative_size": ("mot", "gt/gt.txt", 3, "negative box size"),
    "mot_frame_outside": ("mot", "gt/gt.txt", 3, "outside the sequence (seqLength 5)"),
    "mot_bad_utf8": ("mot", "gt/gt.txt", 3, "bad UTF-8"),
    "mot_unknown_image": ("mot", "gt/gt.txt", 3, "frame 3 has no image"),
    "crowdhuman_truncated_json": ("crowdhuman", "annotation_train.odgt", 2, "truncated or invalid JSON"),
    "crowdhuman_bad_box": ("crowdhuman", "annotation_train.odgt", 2, "non-numeric value"),
    "crowdhuman_negative_size": ("crowdhuman", "annotation_train.odgt", 2, "negative size"),
    "crowdhuman_no_tag": ("crowdhuman", "annotation_train.odgt", 2, 'no tag "person" or "mask"'),
    "crowdhuman_unknown_image": ("crowdhuman", "annotation_train.odgt", 2, "unknown image 'zz'"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_names_file_and_line_and_leaves_nothing(case, tmp_path):
    fmt, file, line, problem = MALFORMED[case]
    check_malformed(fmt, case, file, line, problem, tmp_path)


def test_cli_reports_user_errors_without_traceback(tmp_path):
    source = TEST_DATA / "malformed" / "mot_nan"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "omnipt_data.cli",
            "convert",
            "mot",
            str(source),
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "gt.txt:3: NaN or infinite value" in result.stderr.replace("\n", "")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


def test_cli_synth_convert_info_json(tmp_path):
    world = tmp_path / "w"
    args = ["synth", "--out", str(world), "--scenes", "3", "--val-scenes", "2", "--frames", "10"]
    assert runner.invoke(app, [*args, "--no-render", "--seed", "3"]).exit_code == 0
    # the last --val-scenes scenes are the validation split
    assert sorted(p.name for p in (world / "mot" / "val").iterdir()) == ["SYN-02", "SYN-03"]
    assert [p.name for p in (world / "mot" / "train").iterdir()] == ["SYN-01"]
    assert detect_format(world / "mot") == "mot" and detect_format(world / "crowdhuman") == "crowdhuman"
    result = runner.invoke(app, ["convert", "auto", str(world / "mot"), "--out", str(tmp_path / "s"), "-q"])
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(tmp_path / "s"), "--json"])
    payload = json.loads(info.stdout)
    truth = pl.read_parquet(world / "truth" / "boxes.parquet")
    assert payload["frames"] == 30 and payload["sequences"] == 3
    assert payload["tracks"] == truth.select("scene", "track_id").n_unique()
    assert payload["boxes"] == truth.height + payload["sources"][0]["len"]  # gt + detections
    assert [s["source"] for s in payload["sources"]] == ["det", "gt"]
    table = runner.invoke(app, ["info", str(tmp_path / "s")])
    assert "by dataset and split" in table.stdout and "tracks" in table.stdout


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_world_and_store_are_deterministic(tmp_path):
    config = WorldConfig(seed=11, scenes=2, frames=12, views=2, width=160, height=96)
    synthesize(tmp_path / "a", config)
    synthesize(tmp_path / "b", config)
    synthesize(tmp_path / "c", WorldConfig(seed=12, scenes=2, frames=12, views=2, width=160, height=96))
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b") != _tree_digest(tmp_path / "c")
    one = convert("mot", tmp_path / "a" / "mot", tmp_path / "s1", show_progress=False).store
    two = convert("mot", tmp_path / "b" / "mot", tmp_path / "s2", show_progress=False).store
    assert one.manifest["content_hash"] == two.manifest["content_hash"]


def test_world_leaves_out_slivers_at_the_image_edge():
    config = WorldConfig(seed=5, scenes=3, frames=24, people=3, width=224, height=168, zoom=3.0)
    inside = pl.min_horizontal(pl.col("x") + pl.col("w"), 224) - pl.max_horizontal("x", 0)
    full = generate_world(config).boxes.with_columns(inside.alias("inside"))
    trimmed = generate_world(replace(config, min_visible_width=10)).boxes.with_columns(inside.alias("inside"))
    assert full["inside"].min() >= 1 and full.filter(pl.col("inside") < 10).height > 0
    # the slivers go, every other person stays where they were
    key = ["scene", "frame", "track_id", "x", "y", "w", "h"]
    assert trimmed.select(key).equals(full.filter(pl.col("inside") >= 10).select(key))


def test_validate_separates_errors_from_warnings(tmp_path):
    source = tmp_path / "seq"
    (source / "gt").mkdir(parents=True)
    (source / "seqinfo.ini").write_text("[Sequence]\nname=seq\nseqLength=3\nimWidth=50\nimHeight=50\n")
    # a zero-size box, a box past the right edge and the same (frame, track) twice: warnings, not errors
    (source / "gt" / "gt.txt").write_text(
        "1,1,1,1,0,5,1,1,1\n2,1,45,1,10,5,1,1,1\n3,2,1,1,5,5,1,1,1\n3,2,2,2,5,5,1,1,1\n"
    )
    store = convert("mot", source, tmp_path / "store", show_progress=False).store
    report = validate(store.path)
    assert not report.errors
    assert {f.check: f.count for f in report.warnings} == {
        "zero-area box": 1,
        "box outside image": 1,
        "duplicate (frame, track) pair": 1,
    }
    assert store.manifest["validation"]["box outside image"]["examples"] == ["mot/train/seq#2/gt/0"]
