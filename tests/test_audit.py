"""Audits end to end: a world with planted defects -> native files -> strict stores -> every defect found
where it was planted; clean worlds and builds -> no warning or error; hand-corrupted builds, leaked
sequences and identities -> flagged; the HTML report embeds its plots; FiftyOne tags the flagged frames.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import fiftyone_service
import numpy as np
import polars as pl
import pytest
from conftest import SMALL_WORLD
from PIL import Image
from typer.testing import CliRunner

from omnipt_data.audit import CHECKS, run_audit
from omnipt_data.build import BuildOptions, build
from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.errors import OmniptError
from omnipt_data.readers import detect_format
from omnipt_data.synth import synthesize
from omnipt_data.synth.defects import DEFECT_KINDS, PER_KIND
from omnipt_data.synth.expressions import view_expressions, visible_people

runner = CliRunner()
fiftyone_database = fiftyone_service.fiftyone_database  # the session fixture, used here

# The audit check that finds each planted defect kind.
FOUND_BY = {
    "box_outside_image": "box_outside_image",
    "zero_area_box": "zero_area_box",
    "absurd_aspect_ratio": "absurd_aspect_ratio",
    "duplicate_box": "duplicate_box",
    "duplicate_frame_track": "duplicate_frame_track",
    "id_swap": "identity_swap",
    "track_gap": "track_gap",
    "teleport": "teleport",
    "near_duplicate_image": "near_duplicate_image",
    "leaked_track": "track_in_several_splits",
}
STORE_CHECKS = [c.name for c in CHECKS if c.target == "store"]
FLAGGING = {c.name for c in CHECKS if c.severity != "info"}


def _flagged(checks: list[dict]) -> dict[str, int]:
    """Warning and error checks with findings: name -> count."""
    return {c["name"]: c["count"] for c in checks if c["severity"] != "info" and c["count"]}


def _by_name(checks: list[dict]) -> dict[str, dict]:
    return {c["name"]: c for c in checks}


@pytest.fixture(scope="module")
def defect_world(tmp_path_factory) -> Path:
    """The small test world, every format, with one defect of each kind."""
    out = tmp_path_factory.mktemp("defects") / "world"
    synthesize(out, SMALL_WORLD, defects=DEFECT_KINDS)
    return out


def _partly_outside(truth: pl.DataFrame) -> int:
    """Boxes of the world's truth that cross the image border without leaving the image."""
    w, h = SMALL_WORLD.width, SMALL_WORLD.height
    x2, y2 = pl.col("x") + pl.col("w"), pl.col("y") + pl.col("h")
    overlaps = (x2 > 0) & (y2 > 0) & (pl.col("x") < w) & (pl.col("y") < h)
    crosses = (pl.col("x") < 0) | (pl.col("y") < 0) | (x2 > w) | (y2 > h)
    return truth.filter(overlaps & crosses).height


def test_defect_world_records_its_defects_and_converts_strictly(defect_world, tmp_path):
    planted = json.loads((defect_world / "world.json").read_text())["defects"]
    assert sorted(planted) == sorted(DEFECT_KINDS)
    assert all(len(planted[kind]) == PER_KIND == 1 for kind in DEFECT_KINDS)
    assert (
        planted["leaked_track"][0]["split"] == "train"
        and planted["near_duplicate_image"][0]["split"] == "val"
    )
    # Every native format of the defective world still reads without --lenient.
    formats = sorted(p.name for p in defect_world.iterdir() if p.is_dir() and p.name != "truth")
    assert len(formats) == 14
    for fmt in formats:
        store = convert(
            detect_format(defect_world / fmt), defect_world / fmt, tmp_path / fmt, show_progress=False
        )
        assert store.skipped_rows == 0
    # The same seed plants the same defects, byte for byte.
    kinds = tuple(k for k in DEFECT_KINDS if k != "near_duplicate_image")
    again = [
        synthesize(tmp_path / n, SMALL_WORLD, formats=("mot",), render=False, defects=kinds) for n in "ab"
    ]
    assert again[0].boxes.equals(again[1].boxes)
    for name in ("world.json", "mot/train/SYN-01_View2/gt/gt.txt", "mot/val/SYN-03_View1/gt/gt.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_audit_finds_every_planted_defect_where_it_was_planted(defect_world, tmp_path):
    store = convert("mot", defect_world / "mot", tmp_path / "store", show_progress=False).store
    report = tmp_path / "report"
    result = runner.invoke(app, ["audit", str(store.path), "--report", str(report), "-q"])
    assert result.exit_code == 0, result.output
    checks = json.loads((report / "audit.json").read_text())
    assert [c["name"] for c in checks] == STORE_CHECKS
    # exactly one finding for each planted defect, nothing else at warning or error level
    assert _flagged(checks) == {check: 1 for check in FOUND_BY.values()}
    by_name = _by_name(checks)
    planted = json.loads((defect_world / "world.json").read_text())["defects"]
    for kind, check in FOUND_BY.items():
        detail = planted[kind][0]
        finding = by_name[check]["findings"][0]
        split, sequence = detail["split"], detail["sequence"]
        frame = detail["frame"]
        if kind == "track_gap":
            frame += 3  # a gap is reported where the track comes back
        if kind == "leaked_track":
            split, sequence = "val", detail["val_sequence"]
            assert (finding["train_sequence"], finding["train_track_id"]) == (
                f"mot/train/{detail['sequence']}",
                detail["track_id"],
            )
            assert finding["track_id"] == detail["val_track_id"] and finding["shared_windows"] == 8 - 4 + 1
        assert finding["frame_uid"] == f"mot/{split}/{sequence}#{frame}", kind
        assert finding["sequence"] == f"mot/{split}/{sequence}"
        assert Path(finding["image"]).is_file()
        if "track_id" in detail and kind != "leaked_track":
            assert finding["track_id"] == detail["track_id"], kind
    assert (
        by_name["identity_swap"]["findings"][0]["other_track_id"] == planted["id_swap"][0]["other_track_id"]
    )
    assert by_name["track_gap"]["findings"][0]["missing"] == 3
    copy_of = planted["near_duplicate_image"][0]["copy_of"]["sequence"]
    assert by_name["near_duplicate_image"]["findings"][0]["train_frame_uid"] == f"mot/train/{copy_of}#13"
    # info checks agree with the world's own truth
    truth = pl.read_parquet(defect_world / "truth" / "boxes.parquet")
    assert by_name["box_partly_outside_image"]["count"] == _partly_outside(truth) == 31
    classes = {f["category"]: f["boxes"] for f in by_name["class_distribution"]["findings"]}
    assert classes == {
        "pedestrian": truth.filter(~pl.col("static")).height,
        "static_person": truth.filter(pl.col("static")).height,
    }
    tracks = sum(f["tracks"] for f in by_name["track_lengths"]["findings"])
    assert tracks == truth.select("scene", "view", "track_id").n_unique()
    # the HTML report: every check, and its plots embedded as PNG
    page = (report / "index.html").read_text()
    assert all(f"id='{name}'" in page for name in STORE_CHECKS)
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 5  # findings per check, classes, sizes, aspect ratios, track lengths
    assert all(base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n" for png in images)
    # a few pictures of what each check found: the crop with the box drawn, the finding written under it
    for check in checks:
        pictures = _thumbnails(page, check["name"])
        with_image = [f for f in check["findings"] if f.get("image")]
        assert len(pictures) == min(4, len(with_image)), check["name"]
        for (_, caption), finding in zip(pictures, with_image, strict=False):
            assert caption == [finding["detail"], finding.get("box_uid") or finding["frame_uid"]]
    (outside, _), *_ = _thumbnails(page, "box_outside_image")
    assert outside.size == (220, round(220 * SMALL_WORLD.height / SMALL_WORLD.width))  # the whole frame
    for name in ("zero_area_box", "absurd_aspect_ratio", "teleport"):
        (picture, _), *_ = _thumbnails(page, name)
        assert max(picture.size) == 220 and picture.size != outside.size  # a crop around the box
        colour = {"error": (192, 57, 43), "warning": (214, 137, 16)}[by_name[name]["severity"]]
        assert _pixels_near(picture, colour) >= 20, name  # the box, drawn in the check's colour
    # the same defects are found in another format of the same world (CRTrack: views of one scene)
    crtrack = convert("crtrack", defect_world / "crtrack", tmp_path / "crtrack", show_progress=False).store
    audit = run_audit(crtrack.path, tmp_path / "crtrack-report", show_progress=False)
    assert {r.name: r.count for r in audit.results if r.name in FLAGGING and r.count} == {
        check: 1 for check in FOUND_BY.values()
    }


def _thumbnails(page: str, check: str) -> list[tuple[Image.Image, list[str]]]:
    """The pictures in a check's section of the report, with their captions' lines."""
    section = page.split(f"<h3 id='{check}'>", 1)[1].split("<h3 ", 1)[0]
    found = re.findall(
        r"<figure class='thumb'><img alt='finding' src='data:image/jpeg;base64,([A-Za-z0-9+/=]+)'>"
        r"<figcaption>(.*?)</figcaption></figure>",
        section,
    )
    return [
        (Image.open(io.BytesIO(base64.b64decode(jpeg))), [html.unescape(x) for x in caption.split("<br>")])
        for jpeg, caption in found
    ]


def _pixels_near(picture: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> int:
    pixels = np.asarray(picture.convert("RGB"), dtype=int)
    return int((np.abs(pixels - np.array(colour)).max(axis=2) <= tolerance).sum())


def _expected_expressions(world) -> tuple[int, int]:
    """(nobody, everybody) among the Refer-KITTI sentences of view 1, from the world itself."""
    nobody = everybody = 0
    for s in range(len(world.scenes)):
        seen = {frame: ids for (view, frame), ids in visible_people(world, s).items() if view == 1}
        for expression in view_expressions(world, s, 1):
            named = expression.frames(1)
            if not named:
                nobody += 1
            elif all(named.get(frame, ()) == ids for frame, ids in seen.items()):
                everybody += 1
    return nobody, everybody


def test_clean_world_has_no_warning_or_error(small_world, tmp_path):
    world, out = small_world
    counts = {}
    for fmt in ("mot", "refer-kitti", "market1501"):
        store = convert(fmt, out / fmt, tmp_path / fmt, show_progress=False).store
        audit = run_audit(store.path, tmp_path / f"{fmt}-report", show_progress=False)
        assert {r.name: r.count for r in audit.results if r.name in FLAGGING and r.count} == {}, fmt
        assert audit.by_severity()["error"] == audit.by_severity()["warning"] == 0
        counts[fmt] = audit.counts()
        # nothing found: no chart of findings (no empty axes), and no plots section without a plot
        page = (tmp_path / f"{fmt}-report" / "index.html").read_text()
        assert "alt='Findings per check'" not in page
        assert ("<h2>Plots</h2>" in page) == ("data:image/png;base64," in page), fmt
    assert "<h2>Plots</h2>" not in (tmp_path / "market1501-report" / "index.html").read_text()
    assert counts["mot"]["box_partly_outside_image"] == _partly_outside(world.boxes) == 34
    assert counts["mot"]["class_distribution"] == 2
    # negative sentences and sentences naming everyone are counted (info), as the world made them
    nobody, everybody = _expected_expressions(world)
    assert (nobody, everybody) == (15, 6)
    refer = counts["refer-kitti"]
    assert (refer["expression_refers_to_nobody"], refer["expression_refers_to_everybody"]) == (
        nobody,
        everybody,
    )


def _moving_tracks(truth: pl.DataFrame, scene: str, view: int, window: int = 4) -> int:
    """Tracks of one view with ``window`` consecutive frames in which their box moves."""
    moving = 0
    rows = truth.filter((pl.col("scene") == scene) & (pl.col("view") == view)).sort("track_id", "frame")
    for _, track in rows.group_by("track_id", maintain_order=True):
        frames = track["frame"].to_list()
        boxes = list(track.select("x", "y", "w", "h").iter_rows())
        for k in range(len(frames) - window + 1):
            consecutive = frames[k + window - 1] - frames[k] == window - 1
            if consecutive and len(set(boxes[k : k + window])) > 1:
                moving += 1
                break
    return moving


def test_leaked_sequence_and_identity_are_errors(small_world, tmp_path):
    world, out = small_world
    # the same video in the training and the validation split
    mot = tmp_path / "mot"
    shutil.copytree(out / "mot", mot)
    shutil.copytree(mot / "train" / "SYN-01_View1", mot / "val" / "SYN-01_View1")
    store = convert("mot", mot, tmp_path / "mot-store", show_progress=False).store
    checks = ["sequence_in_several_splits", "track_in_several_splits", "near_duplicate_image"]
    audit = run_audit(store.path, tmp_path / "r1", checks=checks, show_progress=False)
    moving = _moving_tracks(world.boxes, "SYN-01", 1)
    assert moving == 3
    assert audit.counts() == {
        "sequence_in_several_splits": 1,
        "track_in_several_splits": moving,
        "near_duplicate_image": SMALL_WORLD.frames,
    }
    leak = audit.result("sequence_in_several_splits").findings[0]
    assert (leak["train_sequences"], leak["held_out_sequences"]) == (
        "mot/train/SYN-01_View1",
        "mot/val/SYN-01_View1",
    )
    # a training person's crop among the queries (Market-1501)
    market = tmp_path / "market"
    shutil.copytree(out / "market1501", market)
    folder = market / "Market-1501-v15.09.15"
    crop = sorted((folder / "bounding_box_train").glob("*.jpg"))[0]
    shutil.copy(crop, folder / "query" / crop.name)
    store = convert("market1501", market, tmp_path / "market-store", show_progress=False).store
    audit = run_audit(
        store.path, tmp_path / "r2", checks=["identity_in_several_splits", "near_duplicate_image"]
    )
    pid = int(crop.name.split("_")[0])
    assert audit.counts() == {"identity_in_several_splits": 1, "near_duplicate_image": 1}
    assert audit.result("identity_in_several_splits").findings[0]["person_uid"] == f"market1501/{pid}"
    assert audit.result("near_duplicate_image").findings[0]["frame_uid"] == f"market1501/query/{crop.name}"


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_build_audit_clean_then_hand_corrupted(small_world, tmp_path):
    _, out = small_world
    store = convert("mot", out / "mot", tmp_path / "store", show_progress=False).store
    clean = tmp_path / "build"
    manifest = build(
        BuildOptions(
            stage="sft",
            stores=[store.path],
            out=clean,
            tasks=["mot_step", "clip_track"],
            context_tokens=1000,
            show_progress=False,
        )
    )
    audit = run_audit(clean, tmp_path / "clean-report", show_progress=False)
    counts = audit.counts()
    over = sum(stats["tokens"]["over_context"] for stats in manifest["tasks"].values())
    assert over == 10
    assert {r.name: r.count for r in audit.results if r.name in FLAGGING and r.count} == {
        "record_over_context": over
    }
    # the recomputed token lengths agree with the manifest's statistics (token_stats_mismatch is 0)
    assert counts["token_stats_mismatch"] == 0
    balance = {f["task"]: f["samples"] for f in audit.result("task_balance").findings}
    assert (
        balance
        == {task: stats["samples"] for task, stats in manifest["tasks"].items()}
        == {
            "mot_step": 66,
            "clip_track": 18,
        }
    )
    page = (tmp_path / "clean-report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # findings, token lengths, task balance, empty shares

    # Corrupt two answers by hand: corners where x,y,w,h belongs, and a box in original-image pixels.
    corrupted = tmp_path / "corrupted"
    shutil.copytree(clean, corrupted)
    shard = corrupted / "native" / "mot_step" / "sft-mot_step-00000.jsonl"
    records = _lines(shard)
    records[1]["messages"][-1]["content"][0]["text"] = "[12, 40, 42, 128]"
    records[2]["messages"][-1]["content"][0]["text"] = "<id>1</id><bbox>300,10,15,80</bbox>"
    assert records[2]["image_sizes"][0] == [308, 168] and records[2]["original_sizes"][0] == [320, 180]
    shard.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    result = runner.invoke(
        app,
        ["audit", str(corrupted), "--report", str(tmp_path / "bad-report"), "-q", "--fail-on", "error"]
        + [
            f"--check={c}"
            for c in ("answer_unparsable", "answer_box_outside_model_image", "build_file_modified")
        ],
    )
    assert result.exit_code == 1, result.output  # errors found, --fail-on error
    checks = _by_name(json.loads((tmp_path / "bad-report" / "audit.json").read_text()))
    assert {name: c["count"] for name, c in checks.items()} == {
        "answer_unparsable": 1,
        "answer_box_outside_model_image": 1,
        "build_file_modified": 1,
    }
    unparsable = checks["answer_unparsable"]["findings"][0]
    where = "native/mot_step/sft-mot_step-00000.jsonl"
    assert (unparsable["file_line"], unparsable["record_id"]) == (f"{where}:2", records[1]["id"])
    assert unparsable["format_status"] == "other" and unparsable["layouts"] == "bare_list"
    outside = checks["answer_box_outside_model_image"]["findings"][0]
    assert (outside["file_line"], outside["box"]) == (f"{where}:3", [300.0, 10.0, 315.0, 90.0])
    assert "original 320x180" in outside["detail"]
    assert checks["build_file_modified"]["findings"][0]["file"] == where


def test_cli_errors_are_one_line(tmp_path):
    missing = ["audit", str(tmp_path / "nothing"), "--report", str(tmp_path / "r")]
    run = subprocess.run([sys.executable, "-m", "omnipt_data.cli", *missing], capture_output=True, text=True)
    assert run.returncode == 2 and "no such store or build" in run.stderr and "Traceback" not in run.stderr
    typo = runner.invoke(app, ["synth", "--out", str(tmp_path / "w"), "--defects", "typo"])
    assert isinstance(typo.exception, OmniptError) and "unknown defect kind(s) ['typo']" in str(
        typo.exception
    )
    # --defects all without rendering plants every kind but the image one
    world = tmp_path / "w"
    args = ["synth", "--out", str(world), "--scenes", "3", "--frames", "32", "--views", "2", "--no-render"]
    result = runner.invoke(app, [*args, "--defects", "all"])
    assert result.exit_code == 0, result.output
    planted = json.loads((world / "world.json").read_text())["defects"]
    assert sorted(planted) == sorted(k for k in DEFECT_KINDS if k != "near_duplicate_image")


FIFTYONE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import fiftyone as fo
    import polars as pl
    from typer.testing import CliRunner
    from omnipt_data.cli import app
    from omnipt_data.audit.tagging import default_dataset_name
    from omnipt_data.store import Store

    store, report = Store.open(sys.argv[1]), sys.argv[2]
    frames = store.read("frames")
    dataset = fo.Dataset(default_dataset_name(store.path, "store"), overwrite=True)
    dataset.add_samples(
        fo.Sample(filepath=str(store.image_path(d, p)), frame_uid=uid)
        for uid, d, p in frames.select("frame_uid", "dataset", "image_path").iter_rows()
    )
    dataset.tag_samples("audit:stale")  # an earlier audit's tag goes away
    result = CliRunner().invoke(app, ["audit", str(store.path), "--report", report, "--fiftyone", "-q"])
    assert result.exit_code == 0, result.output
    print(json.dumps({
        "samples": len(dataset),
        "tags": dataset.count_sample_tags(),
        "views": {name: len(dataset.load_saved_view(name)) for name in dataset.list_saved_views()},
    }))
    """
)


def test_findings_tag_frames_in_a_real_fiftyone_dataset(fiftyone_database, defect_world, tmp_path):
    store = convert("mot", defect_world / "mot", tmp_path / "store", show_progress=False).store
    # The suite's own database: FiftyOne's service would attach to any FiftyOne database running here.
    env = {**os.environ, **fiftyone_database.environment()}
    run = subprocess.run(
        [sys.executable, "-c", FIFTYONE_SCRIPT, str(store.path), str(tmp_path / "report")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    state = json.loads(run.stdout.strip().splitlines()[-1])
    assert state["samples"] == SMALL_WORLD.scenes * SMALL_WORLD.views * SMALL_WORLD.frames
    expected = {f"audit:{check}": 1 for check in FOUND_BY.values()}
    assert state["tags"] == expected  # one flagged frame per planted defect; the stale tag is gone
    assert state["views"] == {f"audit-{check}": 1 for check in FOUND_BY.values()}
