"""FiftyOne views end to end, against a real FiftyOne database (``mongod`` in a temporary directory).

Synthetic stores (MOT, CrowdHuman, CRTrack, BenSMOT), tracker results and an SFT build load with the
sample, group and label counts of the store (computed here with polars), track ids as ``index``,
boxes back in pixels where the store has them; loading again changes nothing; predictions beside the
ground truth are evaluated by FiftyOne. The CLI serves the App, checked in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import fiftyone_service
import numpy as np
import polars as pl
import psutil
import pytest
from browser import CHROMIUM, HEADLESS_FLAGS, ensure_browser
from fiftyone_service import free_port, wait_for_port
from PIL import Image

from omnipt_data.build import BuildOptions, build
from omnipt_data.convert import convert
from omnipt_data.errors import OmniptError
from omnipt_data.readers import ReadOptions
from omnipt_data.store import scene_uid
from omnipt_data.view.build_loader import load_build
from omnipt_data.view.fiftyone_loader import import_fiftyone, load_path, load_store

fiftyone_database = fiftyone_service.fiftyone_database  # the session fixture, used here

PROJECT = Path(__file__).resolve().parents[1]
ARTIFACTS = PROJECT / "test-artifacts"
OMNIPT_DATA = Path(sys.executable).parent / "omnipt-data"
DROP_EVERY = 5  # the synthetic tracker misses every 5th ground-truth box


@pytest.fixture(scope="module")
def fo(fiftyone_database):
    """FiftyOne, connected to the test database."""
    return import_fiftyone()


@pytest.fixture(scope="module")
def stores(small_world, tmp_path_factory) -> dict[str, Path]:
    _, world = small_world
    root = tmp_path_factory.mktemp("view-stores")
    made = {
        fmt: convert(fmt, world / fmt, root / fmt, show_progress=False).store.path
        for fmt in ("mot", "crowdhuman", "crtrack", "bensmot", "synth-pedes")
    }
    made["results"] = _tracker_results(made["mot"], root)
    return made


def _tracker_results(mot: Path, root: Path) -> Path:
    """A ``mot-results`` store of a tracker run on the val split only: it copies the ground truth,
    misses every 5th box and also reports every ignore region (which must not count as false alarms)."""
    boxes = _gt(mot).with_row_index("row")
    kept = boxes.filter((pl.col("split") == "val") & (pl.col("ignore") | (pl.col("row") % DROP_EVERY != 0)))
    folder = root / "tracker"
    folder.mkdir()
    for (sequence,), rows in kept.group_by("sequence", maintain_order=True):
        lines = [
            f"{f},{t if t is not None else -1},{x1},{y1},{x2 - x1},{y2 - y1},1,-1,-1,-1"
            for f, t, x1, y1, x2, y2 in rows.select(
                "frame_index", "track_id", "x1", "y1", "x2", "y2"
            ).iter_rows()
        ]
        (folder / f"{sequence}.txt").write_text("\n".join(lines) + "\n")
    options = ReadOptions(dataset="mot", split="val", prediction_name="tracker")
    return convert("mot-results", folder, root / "results", options=options, show_progress=False).store.path


def _gt(store: Path) -> pl.DataFrame:
    """Ground-truth boxes with their frame's sequence, index and size."""
    frames = pl.read_parquet(store / "frames.parquet").with_columns(scene_uid())
    return (
        pl.read_parquet(store / "boxes.parquet")
        .filter(pl.col("source") == "gt")
        .join(frames, on="frame_uid")
        .sort("box_uid")
    )


def _pixels(box: list[float], width: int, height: int) -> tuple[float, float, float, float]:
    x, y, w, h = box
    return (x * width, y * height, (x + w) * width, (y + h) * height)


# --- stores ---------------------------------------------------------------------------------------


def test_mot_store_loads_as_sequences_with_track_ids_and_loads_again_unchanged(fo, stores) -> None:
    store = stores["mot"]
    frames = pl.read_parquet(store / "frames.parquet")
    boxes = pl.read_parquet(store / "boxes.parquet")
    gt = _gt(store)
    result = load_store(store, name="view-mot", show_progress=False)
    dataset = fo.load_dataset("view-mot")

    # 3 scenes x 2 views x 24 frames; 354 ground-truth boxes (30 ignore regions), 368 detector boxes
    assert result.samples == len(dataset) == frames.height == 144
    assert result.sequences == frames["sequence_uid"].n_unique() == 6
    assert result.labels["ground_truth"] == gt.height == 354
    assert result.labels["det"] == boxes.filter(pl.col("source") == "det").height == 368
    assert dataset.count_label_tags()["ignore"] == gt.filter(pl.col("ignore")).height == 30
    assert set(dataset.values("uid")) == set(frames["frame_uid"])

    # every box in its frame, in pixels, with its track id as FiftyOne's index
    loaded = set()
    for uid, width, height, dets in zip(
        *dataset.values(["frame_uid", "metadata.width", "metadata.height", "ground_truth.detections"]),
        strict=True,
    ):
        for det in dets:
            corners = tuple(round(v, 6) for v in _pixels(det.bounding_box, width, height))
            loaded.add((uid, det.index, *corners, det.ignore))
    expected = {
        (r["frame_uid"], r["track_id"], r["x1"], r["y1"], r["x2"], r["y2"], r["ignore"])
        for r in gt.iter_rows(named=True)
    }
    assert loaded == expected
    tracks = {
        (seq, index)
        for seq, indices in zip(
            *dataset.values(["sequence_uid", "ground_truth.detections.index"]), strict=True
        )
        for index in indices
    }
    assert tracks == set(gt.select("sequence_uid", "track_id").unique().iter_rows()) and len(tracks) == 24

    # the saved view plays each sequence as a clip: 6 dynamic groups of 24 frames in frame order
    sequences = dataset.load_saved_view("sequences")
    assert len(sequences) == 6
    clip = next(iter(sequences.iter_dynamic_groups()))
    assert clip.values("frame_number") == list(range(1, 25))
    assert dataset.app_config.dynamic_groups_target_frame_rate == 10

    # the detector file is evaluated against the ground truth; ignore regions count neither way
    assert "eval_det" in dataset.list_evaluations()
    assert {"eval_det_tp", "eval_det_fp", "eval_det_fn"} <= set(dataset.get_field_schema())
    det = result.evaluations["eval_det"]
    assert det["tp"] + det["fn"] == gt.filter(~pl.col("ignore")).height == 324
    assert det["tp"] == dataset.count_values("det.detections.eval_det").get("tp", 0) > 0

    # loading again: the same samples (same ids), nothing added, a reviewer's tag kept
    ids = set(dataset.values("id"))
    dataset.take(1, seed=0).tag_samples("reviewed")
    again = load_store(store, name="view-mot", show_progress=False)
    assert (again.added, again.updated) == (0, 144)
    assert (again.samples, again.labels, again.evaluations) == (144, result.labels, result.evaluations)
    assert set(dataset.values("id")) == ids and dataset.count_sample_tags() == {"reviewed": 1}


def test_predictions_land_beside_the_ground_truth_and_are_evaluated(fo, stores) -> None:
    gt = _gt(stores["mot"])
    predictions = pl.read_parquet(stores["results"] / "boxes.parquet")
    load_store(stores["mot"], name="view-tracker", show_progress=False)
    # the results store has no images: its frames are found by uid among the ground truth's samples
    result = load_store(stores["results"], name="view-tracker", show_progress=False)
    dataset = fo.load_dataset("view-tracker")
    # a results file runs up to the tracker's last box: its store has fewer frames than the sequences
    reported = pl.read_parquet(stores["results"] / "frames.parquet")["frame_uid"]
    assert (result.added, result.updated, result.samples) == (0, reported.len(), 144)
    rows = gt.with_row_index("row").filter(pl.col("split") == "val")  # as the tracker chose them
    dropped = set(rows.filter(~pl.col("ignore") & (pl.col("row") % DROP_EVERY == 0))["box_uid"])
    assert result.labels["predictions"] == predictions.height == rows.height - len(dropped) == 161
    assert dataset.info["omnipt_label_sources"]["predictions"] == "model:tracker"

    # independent expectation: a copied box is evaluated unless it lies mostly inside an ignore region
    care = gt.filter(~pl.col("ignore") & pl.col("frame_uid").is_in(reported.implode()))
    regions = gt.filter(pl.col("ignore")).select(
        "frame_uid", *(pl.col(c).alias(f"r{c}") for c in ["x1", "y1", "x2", "y2"])
    )
    overlap = (
        care.join(regions, on="frame_uid")
        .with_columns(
            inter=(pl.min_horizontal("x2", "rx2") - pl.max_horizontal("x1", "rx1")).clip(0)
            * (pl.min_horizontal("y2", "ry2") - pl.max_horizontal("y1", "ry1")).clip(0)
        )
        .filter(pl.col("inter") / ((pl.col("x2") - pl.col("x1")) * (pl.col("y2") - pl.col("y1"))) >= 0.5)
    )
    inside = set(overlap["box_uid"])
    true_positives = care.filter(~pl.col("box_uid").is_in(list(dropped | inside))).height
    assert result.evaluations["eval"] == {"tp": true_positives, "fp": 0, "fn": care.height - true_positives}
    # the 30 reported ignore regions are neither true nor false positives
    assert result.evaluations["eval"] == {"tp": 131, "fp": 0, "fn": 34}
    flagged = dataset.count_values("predictions.detections.on_ignore")
    on_ignore = rows.filter(pl.col("ignore")).height + len(inside - dropped)
    assert flagged == {True: on_ignore, False: predictions.height - on_ignore}
    assert {"eval", "eval_det"} <= set(dataset.list_evaluations())
    assert {"eval_tp", "eval_fp", "eval_fn"} <= set(dataset.get_field_schema())

    # a results store on its own has nothing to show
    with pytest.raises(OmniptError, match="results store has no images"):
        load_store(stores["results"], name="view-results-alone", show_progress=False)


def test_crowdhuman_store_loads_full_visible_and_head_boxes(fo, stores) -> None:
    store = stores["crowdhuman"]
    gt = _gt(store)
    result = load_store(store, name="view-crowdhuman", show_progress=False)
    dataset = fo.load_dataset("view-crowdhuman")
    assert result.samples == pl.read_parquet(store / "frames.parquet").height == 9
    assert (
        result.labels
        == {
            "ground_truth": gt.height,
            "visible": gt["vis_x1"].is_not_null().sum(),
            "head": gt["head_x1"].is_not_null().sum(),
        }
        == {"ground_truth": 23, "visible": 23, "head": 23}
    )
    assert dataset.count_label_tags() == {"ignore": 3 * 2}  # two "mask" regions, in all three fields
    assert dataset.list_saved_views() == []  # single images: no sequences to play
    heads = {
        det.box_uid: _pixels(det.bounding_box, w, h)
        for w, h, dets in zip(
            *dataset.values(["metadata.width", "metadata.height", "head.detections"]), strict=True
        )
        for det in dets
    }
    for row in gt.iter_rows(named=True):
        assert heads[row["box_uid"]] == pytest.approx(
            (row["head_x1"], row["head_y1"], row["head_x2"], row["head_y2"])
        )


def test_identity_store_loads_crops_with_person_captions_and_attributes(fo, stores) -> None:
    store = stores["synth-pedes"]
    identities = pl.read_parquet(store / "identities.parquet")
    result = load_store(store, name="view-persons", show_progress=False)
    dataset = fo.load_dataset("view-persons")
    assert result.samples == identities.height == 11
    assert result.persons == identities["person_uid"].n_unique() == 11
    got = {s.uid: s for s in dataset.iter_samples()}
    for row in identities.iter_rows(named=True):
        sample = got[row["image_uid"]]
        assert sample.person.label == row["person_uid"] and sample.captions == row["captions"]
        assert (sample.metadata.width, sample.metadata.height) == (row["width"], row["height"])
        assert Path(sample.filepath).is_file()
        assert {a["name"]: a["value"] for a in row["attributes"]} == {
            name: sample.attributes[name] for name in sample.attributes.field_names if name != "id"
        }


def test_cross_view_and_semantic_stores(fo, stores) -> None:
    crtrack = stores["crtrack"]
    frames = pl.read_parquet(crtrack / "frames.parquet").with_columns(scene_uid())
    gt = _gt(crtrack)
    result = load_store(crtrack, name="view-crtrack", show_progress=False)
    dataset = fo.load_dataset("view-crtrack")
    # the two views of every instant are one FiftyOne group, one slice per view
    assert dataset.media_type == "group" and sorted(dataset.group_slices) == ["View1", "View2"]
    assert result.samples == frames.height == 144
    assert result.groups == frames.select("scene_uid", "frame_index").n_unique() == 72
    everything = dataset.select_group_slices()
    by_group = everything.count_values("group.id")
    assert set(by_group.values()) == {2}
    assert result.labels["ground_truth"] == gt.height == 354
    # a box lists the sentences that refer to it in that frame
    sentences = pl.read_parquet(crtrack / "expressions.parquet").select("expression_uid", "sentence")
    referred = (
        pl.read_parquet(crtrack / "referents.parquet")
        .join(sentences, on="expression_uid")
        .join(gt.select("frame_uid", "track_id"), on=["frame_uid", "track_id"])
        .select("frame_uid", "track_id", "sentence")
        .unique()
    )
    loaded = {
        (uid, det.index, sentence)
        for uid, dets in zip(*everything.values(["frame_uid", "ground_truth.detections"]), strict=True)
        for det in dets
        for sentence in det.get_field("expressions") or []
    }
    assert loaded == set(referred.iter_rows()) and len(loaded) == 1856
    assert "scenes" in dataset.list_saved_views()
    again = load_store(crtrack, name="view-crtrack", show_progress=False)
    assert (again.added, again.updated, again.groups, again.labels) == (0, 144, 72, result.labels)

    bensmot = stores["bensmot"]
    semantics = pl.read_parquet(bensmot / "semantics.parquet")
    load_store(bensmot, name="view-bensmot", show_progress=False)
    smot = fo.load_dataset("view-bensmot")
    captions = semantics.filter(pl.col("kind") == "track_caption").select("sequence_uid", "track_id", "text")
    expected = _gt(bensmot).join(captions, on=["sequence_uid", "track_id"])
    got = {
        (seq, det.index): det.caption
        for seq, dets in zip(*smot.values(["sequence_uid", "ground_truth.detections"]), strict=True)
        for det in dets
    }
    assert got == {(r["sequence_uid"], r["track_id"]): r["text"] for r in expected.iter_rows(named=True)}
    summaries = dict(semantics.filter(pl.col("kind") == "summary").select("sequence_uid", "text").iter_rows())
    assert dict(zip(*smot.values(["sequence_uid", "summary"]), strict=True)) == summaries


# --- builds ---------------------------------------------------------------------------------------


def test_build_shows_prompts_answers_and_answer_boxes_on_the_images(fo, stores, tmp_path) -> None:
    out = tmp_path / "sft"
    build(
        BuildOptions(stage="sft", stores=[stores["mot"], stores["crowdhuman"]], out=out, show_progress=False)
    )
    records = [json.loads(line) for path in sorted(out.glob("native/*/*.jsonl")) for line in path.open()]
    texts = {
        role: [
            "".join(p.get("text", "") for p in m["content"])
            for r in records
            for m in r["messages"]
            if m["role"] == role
        ]
        for role in ("user", "assistant")
    }
    result = load_path(out, name="view-build", show_progress=False)
    dataset = fo.load_dataset("view-build")
    # 66 mot_step records of 3 frames, 18 clip_track records of 8 frames (CrowdHuman is no video)
    assert len(records) == 84
    assert result.samples == sum(len(r["images"]) for r in records) == 66 * 3 + 18 * 8
    # boxes are "<bbox>" followed by numbers (the format hint in every prompt says "<bbox>x,y,w,h")
    boxes = {role: sum(len(re.findall(r"<bbox>\d", t)) for t in texts[role]) for role in texts}
    assert result.labels["answer_boxes"] == boxes["assistant"]
    assert result.labels["prompt_boxes"] == boxes["user"]
    assert dataset.sum("answer_unplaced") == 0
    assert dataset.count_values("answer_format") == {"exact": result.samples}
    assert len(dataset.load_saved_view("records")) == len(records)

    # a mot_step answer is about its third image, drawn where the store has those boxes (clipped to
    # the image, through the model's 308x168 grid and back)
    sample = dataset.match(fo.ViewField("task") == "mot_step").sort_by("position", reverse=True).first()
    assert sample.image_label == "Frame 3:" and sample.answer.startswith("Frame 3:")
    assert "<image>" in sample.prompt and sample.model_size == [308, 168]
    frames = pl.read_parquet(stores["mot"] / "frames.parquet").with_columns(
        path=pl.lit(str(Path(sample.filepath).parents[3])) + "/" + pl.col("image_path")
    )
    frame_uid = frames.filter(pl.col("path") == sample.filepath)["frame_uid"].item()
    truth = _gt(stores["mot"]).filter((pl.col("frame_uid") == frame_uid) & ~pl.col("ignore")).sort("x1")
    drawn = sorted(_pixels(d.bounding_box, 320, 180) for d in sample.answer_boxes.detections)
    assert len(drawn) == truth.height > 0
    for box, row in zip(drawn, truth.iter_rows(named=True), strict=True):
        clipped = (max(row["x1"], 0), max(row["y1"], 0), min(row["x2"], 320), min(row["y2"], 180))
        assert np.allclose(box, clipped, atol=1.1)
    assert {d.index for d in sample.answer_boxes.detections} == set(range(1, truth.height + 1))

    again = load_build(out, name="view-build", show_progress=False)
    assert (again.added, again.updated, again.samples, again.labels) == (
        0,
        result.samples,
        result.samples,
        result.labels,
    )


# --- the command line and the App -----------------------------------------------------------------


def test_view_command_rejects_what_is_not_a_store_or_a_build(tmp_path) -> None:
    run = subprocess.run(
        [str(OMNIPT_DATA), "view", str(tmp_path / "missing")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"error: {tmp_path / 'missing'}: no such file or folder"
    assert "Traceback" not in run.stdout + run.stderr


def _chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    flags = [
        *HEADLESS_FLAGS,
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
    ]
    return subprocess.run([str(CHROMIUM), *flags, *extra, url], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def chromium() -> Path:
    ensure_browser()
    return CHROMIUM


def test_view_command_launches_the_app_and_a_browser_shows_the_dataset(
    stores, chromium, fiftyone_database, tmp_path
) -> None:
    name = "view-app-mot"
    port = free_port()
    log = tmp_path / "view.log"
    with open(log, "w") as handle:
        command = [
            str(OMNIPT_DATA),
            "view",
            str(stores["mot"]),
            "--name",
            name,
            "--launch",
            "--port",
            str(port),
            "-q",
        ]
        app = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        wait_for_port(port, app, timeout=180, what="omnipt-data view --launch")
        server = psutil.Process(app.pid).children(recursive=True)
        assert server, "the App server runs as a child process"
        url = f"http://127.0.0.1:{port}/datasets/{name}"
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "fiftyone-app-mot.png"
        for attempt in range(3):  # the App fetches its data after the first paint
            screenshot.unlink(missing_ok=True)
            dom = _chromium(
                url, tmp_path / f"profile-{attempt}", "--dump-dom", f"--screenshot={screenshot}"
            ).stdout
            if name in dom and "ground_truth" in dom and screenshot.is_file():
                break
            time.sleep(2)
        assert name in dom, dom[:2000]
        # the sidebar lists the label fields and the sample fields of the store
        assert all(field in dom for field in ("ground_truth", "det", "frame_uid", "sequence_uid"))
        with Image.open(screenshot) as image:
            assert image.size == (1400, 900)
            pixels = np.asarray(image.convert("L"), float)
        assert pixels.std() > 20  # the grid of frames, not an empty or error page
    finally:
        app.send_signal(signal.SIGINT)
        try:
            status = app.wait(timeout=60)
        finally:
            if app.poll() is None:
                app.kill()
    output = log.read_text()
    assert status == 0, output
    assert re.search(r"samples\s*│\s*144", output) and f"dataset {name}: 144 added" in output
    assert f"FiftyOne App: {url}" in output
    assert not [p for p in server if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
