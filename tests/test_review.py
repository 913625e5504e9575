"""The Label Studio review loop end to end, against a real server (see ``labelstudio_service.py``).

A synthetic clip becomes a predictions store (the ground truth shifted and relabelled ``model:tiny``, with
captions, an attribute, a summary, an expression and interactions); ``review push`` sends it to projects of
every kind; a reviewer's annotations are created through the Label Studio API (accept, move, delete, draw,
rewrite); ``review pull`` and ``review stats`` must then report exactly what the reviewer did, and pushing
or pulling again must change nothing.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from omnipt_data.annotate.labelstudio import Connection, connect
from omnipt_data.annotate.push import push
from omnipt_data.annotate.regions import expand_keyframes, from_percent, keyframes
from omnipt_data.annotate.tasks import META_FIELD
from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.errors import OmniptError
from omnipt_data.schema import SOURCE_GT
from omnipt_data.store import Store, write_store
from omnipt_data.synth import WorldConfig, synthesize

if TYPE_CHECKING:
    from labelstudio_service import LabelStudioService

pytest_plugins = ["labelstudio_service"]  # the session's Label Studio server: fixture ``label_studio``

MODEL = "model:tiny"
REVIEWER = "reviewer@omnipt.test"
WORLD = WorldConfig(seed=3, scenes=1, frames=8, views=1, people=3, width=160, height=96, static_fraction=0.0)
SHIFT_PX = 1.5  # the "model" sees every person 1.5 px to the right of the truth
MOVE_PCT = 5.0  # the reviewer moves a box 5 % of the width: 8 px at 160 px
runner = CliRunner()


def caption_of(track: int) -> str:
    return f"Person {track} crosses the plaza."


def make_predictions_store(gt: Store, out: Path, *, shift: float = SHIFT_PX) -> Store:
    """A predictions store as the pre-labeler would write it, made from the ground truth of the clip."""
    frames, sequences = gt.read("frames"), gt.read("sequences")
    boxes = (
        gt.read("boxes")
        .filter(pl.col("source") == SOURCE_GT)
        .with_columns(
            pl.col("x1") + shift,
            pl.col("x2") + shift,
            box_uid=pl.col("box_uid") + "/tiny",
            source=pl.lit(MODEL),
            confidence=pl.lit(0.9, pl.Float32),
        )
    )
    (sequence_uid,) = sequences["sequence_uid"].to_list()
    tracks = sorted(boxes["track_id"].unique().to_list())
    semantics = [
        {"semantic_uid": f"{sequence_uid}/track_caption/{t}", "kind": "track_caption", "track_id": t}
        | {"name": f"person{t}", "text": caption_of(t)}
        for t in tracks
    ]
    semantics += [
        {"semantic_uid": f"{sequence_uid}/track_attribute/{t}/bag", "kind": "track_attribute", "track_id": t}
        | {"name": "bag", "text": "backpack"}
        for t in tracks
    ]
    semantics.append(
        {"semantic_uid": f"{sequence_uid}/summary", "kind": "summary", "text": "Three people walk."}
    )
    for a, b, label in ((1, 2, "approach.v.01"), (2, 3, "pass.v.01")):
        semantics.append(
            {"semantic_uid": f"{sequence_uid}/interaction/{a}-{b}/{label}", "kind": "interaction"}
            | {"track_id": a, "other_track_id": b, "name": label}
        )
    semantics_df = pl.DataFrame(semantics).with_columns(
        sequence_uid=pl.lit(sequence_uid), source=pl.lit(MODEL)
    )
    sequence = sequences.row(0, named=True)
    expression_uid = f"{sequence_uid}/people-walking-together"
    expressions = pl.DataFrame(
        [
            {
                "expression_uid": expression_uid,
                "dataset": sequence["dataset"],
                "split": sequence["split"],
                "sequence": sequence["sequence"],
                "sentence": "the people walking together",
            }
        ]
    )
    referents = boxes.filter(pl.col("track_id").is_in([1, 2])).select(
        pl.lit(expression_uid).alias("expression_uid"), "frame_uid", "track_id"
    )
    provenance = {
        "model": "tiny",
        "checkpoint_hash": "0" * 16,
        "prompt_template": "prelabel/mot",
        "time": "t0",
    }
    with write_store(
        out,
        source={"format": "prelabel"},
        reader={"name": "prelabel", "version": "test"},
        image_roots=gt.manifest["image_roots"],
        extra_manifest={"prediction": provenance},
    ) as writer:
        writer.write_batch(
            {
                "sequences": sequences,
                "frames": frames,
                "boxes": boxes,
                "semantics": semantics_df,
                "expressions": expressions,
                "referents": referents,
            }
        )
    return Store.open(out)


def make_folder_predictions_store(gt: Store, frames_dir: Path, out: Path) -> Store:
    """The demo's predictions store: the clip's frames pre-labelled from a folder (``frames_dir/clip-01``,
    read as the pre-labeler reads it: absolute image paths, dataset ``video``, no image root), the model's
    boxes being the ground truth shifted by ``SHIFT_PX``."""
    from omnipt_data.infer.inputs import from_folder

    clip_dir = frames_dir / "clip-01"
    clip_dir.mkdir(parents=True)
    gt_frames = gt.read("frames").sort("frame_index")
    for dataset, image_path in gt_frames.select("dataset", "image_path").iter_rows():
        image = gt.image_path(dataset, image_path)
        os.link(image, clip_dir / image.name)
    loaded = from_folder(frames_dir)
    assert loaded.image_roots == {} and loaded.frames.height == gt_frames.height
    frame_of = dict(
        gt_frames.join(loaded.frames.select("frame_index", new_uid=pl.col("frame_uid")), on="frame_index")
        .select("frame_uid", "new_uid")
        .iter_rows()
    )
    boxes = (
        gt.read("boxes")
        .filter(pl.col("source") == SOURCE_GT)
        .with_columns(
            pl.col("x1") + SHIFT_PX,
            pl.col("x2") + SHIFT_PX,
            frame_uid=pl.col("frame_uid").replace_strict(frame_of),
            box_uid=pl.col("box_uid") + "/tiny",
            source=pl.lit(MODEL),
            confidence=pl.lit(0.9, pl.Float32),
        )
    )
    with write_store(
        out,
        source={"format": "prelabel", "path": str(frames_dir)},
        reader={"name": "prelabel", "version": "test"},
        image_roots=loaded.image_roots,
        extra_manifest={"prediction": {"model": "tiny"}},
    ) as writer:
        writer.write_batch({"sequences": loaded.sequence_rows, "frames": loaded.frames, "boxes": boxes})
    return Store.open(out)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The clip (below the server's document root), its ground truth and two predictions stores."""
    root = tmp_path_factory.mktemp("review")
    synthesize(root / "world", WORLD, formats=("mot",))
    convert("mot", root / "world" / "mot", root / "gt", show_progress=False)
    gt = Store.open(root / "gt")
    pred = make_predictions_store(gt, root / "pred")
    boxes = pred.read("boxes").join(pred.read("frames").select("frame_uid", "frame_index"), on="frame_uid")
    per_track = dict(boxes.group_by("track_id").len().iter_rows())
    # The review below needs three people, each seen in several frames.
    assert sorted(per_track) == [1, 2, 3] and min(per_track.values()) >= 3, per_track
    return {
        "gt": gt,
        "pred": pred,
        "pred_moved": make_predictions_store(gt, root / "pred-moved", shift=SHIFT_PX + 1.0),
        "boxes": boxes,
        "per_track": per_track,
    }


def cli(service: LabelStudioService, *args: str) -> Any:
    """Run ``omnipt-data`` in-process with the service's environment; returns parsed JSON if --json."""
    result = runner.invoke(app, list(args), env=service.client_env(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert service.api_key not in result.output
    return orjson.loads(result.stdout) if "--json" in args else result.output


def only_task(conn: Connection, title: str) -> Any:
    project = conn.client.projects.list(title=title)
    (project,) = [p for p in project if p.title == title]
    tasks = list(conn.client.tasks.list(project=project.id, fields="all"))
    return project, tasks


def reviewer_id(conn: Connection) -> int:
    for user in conn.client.users.list():
        if user.email == REVIEWER:
            return user.id
    return conn.client.users.create(email=REVIEWER, username="reviewer", password="not-used-1234").id


def prediction_result(task: Any) -> list[dict[str, Any]]:
    (prediction,) = task.predictions
    result = prediction["result"] if isinstance(prediction, dict) else prediction.result
    return copy.deepcopy(result)


def annotate(conn: Connection, task: Any, result: list[dict[str, Any]], *, cancelled: bool = False) -> None:
    """Submit a review as the reviewer would from the editor."""
    conn.client.annotations.create(
        id=task.id, result=result, completed_by=reviewer_id(conn), lead_time=12.5, was_cancelled=cancelled
    )


def drop_region(result: list[dict[str, Any]], region_id: str) -> list[dict[str, Any]]:
    """Delete a region with everything attached to it (per-region fields, relations)."""
    return [
        r for r in result if r.get("id") != region_id and region_id not in (r.get("from_id"), r.get("to_id"))
    ]


def region(result: list[dict[str, Any]], region_id: str, control: str = "box") -> dict[str, Any]:
    (found,) = [r for r in result if r.get("id") == region_id and r["from_name"] == control]
    return found


def new_track(frames_count: int) -> dict[str, Any]:
    """A person the model missed, drawn at frames 2 and 4 (frame 3 is interpolated), then switched off."""
    keyframe = {"rotation": 0, "y": 20.0, "width": 10.0, "height": 30.0}
    return {
        "id": "drawn1",
        "from_name": "box",
        "to_name": "video",
        "type": "videorectangle",
        "value": {
            "framesCount": frames_count,
            "duration": frames_count / 10,
            "labels": ["pedestrian"],
            "sequence": [
                {**keyframe, "frame": 2, "x": 10.0, "enabled": True, "time": 0.1},
                {**keyframe, "frame": 4, "x": 20.0, "enabled": False, "time": 0.3},
            ],
        },
    }


def test_review_loop_tracks_end_to_end(
    label_studio: LabelStudioService, clip: dict[str, Any], tmp_path: Path
) -> None:
    service = label_studio
    conn = connect(service.url, service.api_key)
    pred, per_track = clip["pred"], clip["per_track"]
    n1, n2, n3 = per_track[1], per_track[2], per_track[3]
    frames_count = pred.read("frames").height

    report = cli(
        service,
        "review",
        "push",
        str(pred.path),
        "--project",
        "clip tracks",
        "--kind",
        "tracks",
        "--json",
        "-q",
    )
    assert (report["created"], report["project_tasks"], report["model"]) == (1, 1, MODEL)
    _, (task,) = only_task(conn, "clip tracks")
    meta = task.data[META_FIELD]
    assert meta["model"] == MODEL and meta["prediction"]["checkpoint_hash"] == "0" * 16
    # The video Label Studio shows: served from the document root through the project's local storage.
    video = httpx.get(service.url + task.data["video"], headers={"Authorization": f"Token {service.api_key}"})
    assert video.status_code == 200 and video.content[:4] == b"\x1a\x45\xdf\xa3"  # WebM (Matroska) magic
    result = prediction_result(task)
    track2 = region(result, "t2")["value"]
    assert track2["framesCount"] == frames_count
    keys = track2["sequence"]
    frame_of = {f["frame_uid"]: i + 1 for i, f in enumerate(meta["frames"])}
    first2 = clip["boxes"].filter(pl.col("track_id") == 2).sort("frame_index").row(0, named=True)
    assert keys[0]["frame"] == frame_of[first2["frame_uid"]]
    assert keys[0]["x"] == pytest.approx(first2["x1"] / 160 * 100)
    assert keys[0]["time"] == pytest.approx((keys[0]["frame"] - 1) / 10)
    assert keys[-1]["enabled"] is False and all(k["enabled"] for k in keys[:-1])

    # The reviewer: track 1 kept with a rewritten caption; track 2 moved at its first frame and its bag
    # corrected; track 3 deleted; a missed person drawn with a caption; the summary kept.
    result = drop_region(result, "t3")
    region(result, "t1", "caption")["value"]["text"] = ["A woman in a red coat walks to the left."]
    region(result, "t2")["value"]["sequence"][0]["x"] += MOVE_PCT
    region(result, "t2", "bag")["value"]["choices"] = ["handbag"]
    result.append(new_track(frames_count))
    result.append(
        {"id": "drawn1", "from_name": "caption", "to_name": "video", "type": "textarea"}
        | {"value": {"text": ["A child runs."]}}
    )
    annotate(conn, task, result)

    stats = cli(service, "review", "stats", "--project", "clip tracks", "--json")
    assert stats["tasks"] == {"total": 1, "reviewed": 1, "pending": 0, "skipped": 0}
    assert stats["reviewers"] == [REVIEWER]
    counts = {
        field: [c["accepted"], c["edited"], c["rejected"], c["added"]]
        for field, c in stats["kinds"]["tracks"].items()
    }
    assert counts == {
        "track": [1, 1, 1, 1],
        "box": [n1 + n2 - 1, 1, n3, 3],
        "caption": [1, 1, 1, 1],
        "attribute:bag": [1, 1, 1, 0],
        "summary": [1, 0, 0, 0],
    }
    assert stats["kinds"]["tracks"]["track"]["accept_rate"] == pytest.approx(1 / 3, abs=1e-4)

    out = tmp_path / "reviewed"
    cli(service, "review", "pull", "--project", "clip tracks", "--out", str(out), "-q")
    store = Store.open(out)
    boxes = store.read("boxes").join(store.read("frames").select("frame_uid", "frame_index"), on="frame_uid")
    assert boxes.height == n1 + n2 + 3
    assert set(boxes["source"]) == {f"review:{REVIEWER}"}
    assert dict(boxes.group_by("track_id").len().iter_rows()) == {1: n1, 2: n2, 4: 3}
    model_boxes = clip["boxes"].select("frame_uid", "track_id", px1=pl.col("x1"), py1=pl.col("y1"))
    joined = boxes.filter(pl.col("track_id") < 3).join(model_boxes, on=["frame_uid", "track_id"])
    moved = joined.filter(pl.col("x1") != pl.col("px1"))
    assert moved.select("track_id", "frame_index", dx=pl.col("x1") - pl.col("px1")).rows() == [
        (2, first2["frame_index"], pytest.approx(8.0, abs=1e-3))
    ]
    assert (joined["y1"] == joined["py1"]).all()  # untouched numbers are the model's, not a round trip
    statuses = boxes.select(pl.col("extra").str.json_path_match("$.review.status")).to_series().value_counts()
    assert dict(statuses.iter_rows()) == {"accepted": n1 + n2 - 1, "edited": 1, "added": 3}
    drawn = boxes.filter(pl.col("track_id") == 4).sort("frame_index")
    assert drawn["frame_index"].to_list() == [2, 3, 4]
    assert drawn["x1"].to_list() == pytest.approx([16.0, 24.0, 32.0])  # frame 3 interpolated
    assert drawn.row(0, named=True)["y2"] == pytest.approx(48.0)
    extra = orjson.loads(boxes.row(0, named=True)["extra"])["review"]
    assert extra["reviewer"] == REVIEWER and extra["reviewed_at"] and extra["task"] == task.data["omnipt_key"]
    semantics = {
        (row["kind"], row["track_id"], row["name"]): row["text"]
        for row in store.read("semantics").filter(pl.col("source") == f"review:{REVIEWER}").to_dicts()
    }
    assert semantics == {
        ("track_caption", 1, "person1"): "A woman in a red coat walks to the left.",
        ("track_caption", 2, "person2"): caption_of(2),
        ("track_caption", 4, None): "A child runs.",
        ("track_attribute", 1, "bag"): "backpack",
        ("track_attribute", 2, "bag"): "handbag",
        ("summary", None, None): "Three people walk.",
    }
    assert store.read("frames").height == frames_count and store.read("sequences").height == 1
    manifest = store.manifest
    review = manifest["review"]
    assert review["reviewers"] == [REVIEWER] and review["decisions"]["tracks"]["box"]["edited"] == 1
    (annotation,) = review["annotations"]
    assert annotation["reviewer"] == REVIEWER and annotation["updated_at"] and annotation["lead_time"] == 12.5
    assert review["predictions"][MODEL]["model"] == "tiny"
    decisions = pl.read_parquet(out / review["decisions_file"]["path"])
    assert decisions.height == sum(sum(c) for c in counts.values())
    assert decisions.filter((pl.col("field") == "track") & (pl.col("status") == "rejected"))[
        "item"
    ].to_list() == [f"{task.data['omnipt_key']}#t3"]
    assert service.api_key not in (out / "manifest.json").read_text()

    # Again: no new task, the review untouched, the same snapshot.
    again = cli(service, "review", "push", str(pred.path), "--project", "clip tracks", "--json", "-q")
    assert (again["created"], again["reviewed"], again["project_tasks"]) == (0, 1, 1)
    cli(service, "review", "pull", "--project", "clip tracks", "--out", str(out), "-q")
    assert Store.open(out).manifest["content_hash"] == manifest["content_hash"]


class ProjectsCutAfterOneImport:
    """The projects API of a push killed during its second task import."""

    def __init__(self, projects: Any):
        self._projects = projects
        self.imports = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._projects, name)

    def import_tasks(self, **kwargs: Any) -> Any:
        self.imports += 1
        if self.imports == 2:
            raise KeyboardInterrupt
        return self._projects.import_tasks(**kwargs)


class ClientCutAfterOneImport:
    def __init__(self, client: Any):
        self._client = client
        self.projects = ProjectsCutAfterOneImport(client.projects)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_review_loop_boxes_resumes_and_never_overwrites_reviews(
    label_studio: LabelStudioService, clip: dict[str, Any], tmp_path: Path
) -> None:
    service = label_studio
    conn = connect(service.url, service.api_key)
    pred, title = clip["pred"], "clip boxes"
    frames_count = pred.read("frames").height

    # A push killed after its first batch of 3 tasks, then run again: every frame once.
    broken = Connection(ClientCutAfterOneImport(conn.client), conn.url)
    with pytest.raises(KeyboardInterrupt):
        push(
            broken,
            pred.path,
            title,
            kind="boxes",
            document_root=service.document_root,
            batch_size=3,
            show_progress=False,
        )
    _, tasks = only_task(conn, title)
    assert len(tasks) == 3
    resumed = push(
        conn, pred.path, title, kind="boxes", document_root=service.document_root, show_progress=False
    )
    assert (resumed.created, resumed.unchanged, resumed.project_tasks) == (frames_count - 3, 3, frames_count)

    _, tasks = only_task(conn, title)
    by_frame = {t.data[META_FIELD]["frames"][0]["frame_index"]: t for t in tasks}
    assert sorted(by_frame) == list(range(1, frames_count + 1))
    image = httpx.get(
        service.url + by_frame[1].data["image"], headers={"Authorization": f"Token {service.api_key}"}
    )
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"  # the JPEG frame itself
    boxes = clip["boxes"]
    tracks_at = {f: sorted(boxes.filter(pl.col("frame_index") == f)["track_id"].to_list()) for f in (1, 2)}
    assert len(tracks_at[1]) >= 1 and len(tracks_at[2]) >= 2, tracks_at
    gone, moved = tracks_at[2][0], tracks_at[2][1]

    annotate(conn, by_frame[1], prediction_result(by_frame[1]))  # frame 1: all accepted
    result = drop_region(prediction_result(by_frame[2]), f"t{gone}")  # frame 2: one box deleted,
    region(result, f"t{moved}")["value"]["y"] += MOVE_PCT  # one moved (4.8 px down) with a new caption,
    region(result, f"t{moved}", "caption")["value"]["text"] = ["Someone with a backpack."]
    drawn = copy.deepcopy(region(result, f"t{moved}"))  # and a missed person drawn (no track)
    drawn["id"], drawn["value"]["x"] = "drawn1", 1.0
    annotate(conn, by_frame[2], [*result, drawn])
    annotate(conn, by_frame[3], [], cancelled=True)  # frame 3: skipped

    stats = cli(service, "review", "stats", "--project", title, "--json")
    assert stats["tasks"] == {"total": frames_count, "reviewed": 2, "pending": frames_count - 3, "skipped": 1}
    counts = {
        field: [c["accepted"], c["edited"], c["rejected"], c["added"]]
        for field, c in stats["kinds"]["boxes"].items()
    }
    n_1, n_2 = len(tracks_at[1]), len(tracks_at[2])
    assert counts == {
        "box": [n_1 + n_2 - 2, 1, 1, 1],
        "caption": [n_1 + n_2 - 2, 1, 1, 0],
        "attribute:bag": [n_1 + n_2 - 1, 0, 1, 0],
    }

    out = tmp_path / "reviewed-boxes"
    cli(service, "review", "pull", "--project", title, "--out", str(out), "-q")
    store = Store.open(out)
    reviewed = store.read("boxes").join(
        store.read("frames").select("frame_uid", "frame_index"), on="frame_uid"
    )
    assert reviewed.height == n_1 + n_2
    assert reviewed.filter(pl.col("frame_index") == 2)["track_id"].to_list().count(None) == 1
    assert gone not in reviewed.filter(pl.col("frame_index") == 2)["track_id"].to_list()
    assert sorted(store.read("frames")["frame_index"].to_list()) == [1, 2]  # skipped and pending: nothing
    captions = dict(
        store.read("semantics")
        .filter(pl.col("kind") == "track_caption")
        .select("track_id", "text")
        .iter_rows()
    )
    # A rewrite in one frame beats the untouched caption of another; a box deleted in one frame does not
    # delete its person's caption seen elsewhere.
    expected = {t: caption_of(t) for t in set(tracks_at[1]) | set(tracks_at[2])}
    expected[moved] = "Someone with a backpack."
    if gone not in tracks_at[1]:
        del expected[gone]
    assert captions == expected
    first_hash = store.manifest["content_hash"]

    # New predictions: the tasks nobody touched take them; reviewed and skipped ones keep their review.
    update = push(
        conn, clip["pred_moved"].path, title, document_root=service.document_root, show_progress=False
    )
    assert (update.created, update.updated, update.reviewed, update.project_tasks) == (
        0,
        frames_count - 3,
        3,
        frames_count,
    )
    assert len(update.reviewed_with_new_predictions) == 3
    _, tasks = only_task(conn, title)
    pending = [t for t in tasks if not t.annotations]
    (prediction,) = pending[0].predictions
    result = prediction["result"] if isinstance(prediction, dict) else prediction.result
    frame = pending[0].data[META_FIELD]["frames"][0]["frame_uid"]
    x1 = clip["boxes"].filter(pl.col("frame_uid") == frame).sort("box_uid")["x1"][0] + 1.0
    assert result[0]["value"]["x"] == pytest.approx(x1 / 160 * 100)
    cli(service, "review", "pull", "--project", title, "--out", str(out), "-q")
    assert Store.open(out).manifest["content_hash"] == first_hash


def test_boxes_of_frames_prelabelled_from_a_folder_are_served(
    label_studio: LabelStudioService, clip: dict[str, Any], tmp_path: Path
) -> None:
    """The demo's predictions store (absolute image paths, no image root) pushes as boxes: each task's
    image is served through a local storage over the clip's folder."""
    service = label_studio
    pred = make_folder_predictions_store(clip["gt"], tmp_path / "frames", tmp_path / "pred")
    title = "folder boxes"
    report = cli(service, "review", "push", str(pred.path), "--project", title, "--kind", "boxes", "--json")
    frames_count = pred.read("frames").height
    assert (report["created"], report["project_tasks"]) == (frames_count, frames_count)
    conn = connect(service.url, service.api_key)
    project, tasks = only_task(conn, title)
    (storage,) = conn.client.import_storage.local.list(project=project.id)
    assert Path(storage.path) == (tmp_path / "frames" / "clip-01").resolve()
    headers = {"Authorization": f"Token {service.api_key}"}
    for task in tasks[:2]:
        image = httpx.get(service.url + task.data["image"], headers=headers)
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    regions = sum(len(prediction_result(t)) for t in tasks)
    assert regions == pred.read("boxes").height


def test_review_loop_expressions_and_interactions(
    label_studio: LabelStudioService, clip: dict[str, Any], tmp_path: Path
) -> None:
    service = label_studio
    conn = connect(service.url, service.api_key)
    pred, per_track = clip["pred"], clip["per_track"]
    frames_count = pred.read("frames").height

    cli(
        service,
        "review",
        "push",
        str(pred.path),
        "--project",
        "clip expressions",
        "--kind",
        "expressions",
        "-q",
    )
    _, (task,) = only_task(conn, "clip expressions")
    assert task.data["sentence"] == "the people walking together"
    result = drop_region(prediction_result(task), "t2")  # track 2 is not "walking together"
    region(result, "sentence", "sentence")["value"]["text"] = ["the person walking alone"]
    annotate(conn, task, [*result, new_track(frames_count)])
    stats = cli(service, "review", "stats", "--project", "clip expressions", "--json")
    counts = {
        f: [c["accepted"], c["edited"], c["rejected"], c["added"]]
        for f, c in stats["kinds"]["expressions"].items()
    }
    assert counts == {
        "referent": [1, 0, 1, 1],
        "box": [per_track[1], 0, per_track[2], 3],
        "sentence": [0, 1, 0, 0],
    }
    out = tmp_path / "reviewed-expressions"
    cli(service, "review", "pull", "--project", "clip expressions", "--out", str(out), "-q")
    store = Store.open(out)
    assert store.read("expressions")["sentence"].to_list() == ["the person walking alone"]
    referents = store.read("referents")
    assert dict(referents.group_by("track_id").len().iter_rows()) == {1: per_track[1], 4: 3}
    assert store.read("boxes").height == per_track[1] + 3

    cli(
        service,
        "review",
        "push",
        str(pred.path),
        "--project",
        "clip interactions",
        "--kind",
        "interactions",
        "-q",
    )
    _, (task,) = only_task(conn, "clip interactions")
    result = prediction_result(task)
    relations = [r for r in result if r["type"] == "relation"]
    assert [(r["from_id"], r["to_id"], r["labels"]) for r in relations] == [
        ("t1", "t2", ["approach.v.01"]),
        ("t2", "t3", ["pass.v.01"]),
    ]
    result = [r for r in result if r.get("from_id") != "t2"]  # the "pass" was wrong
    result.append(
        {"type": "relation", "from_id": "t3", "to_id": "t1", "direction": "right", "labels": ["follow.v.01"]}
    )
    annotate(conn, task, result)
    stats = cli(service, "review", "stats", "--project", "clip interactions", "--json")
    assert {
        f: [c["accepted"], c["edited"], c["rejected"], c["added"]]
        for f, c in stats["kinds"]["interactions"].items()
    } == {"interaction": [1, 0, 1, 1]}
    out = tmp_path / "reviewed-interactions"
    cli(service, "review", "pull", "--project", "clip interactions", "--out", str(out), "-q")
    rows = Store.open(out).read("semantics").select("track_id", "other_track_id", "name").rows()
    assert sorted(rows) == [(1, 2, "approach.v.01"), (3, 1, "follow.v.01")]
    assert Store.open(out).read("boxes").height == 0


def test_review_errors_are_one_line(
    label_studio: LabelStudioService, clip: dict[str, Any], tmp_path: Path
) -> None:
    service = label_studio
    # The installed command: exit status 2 and one line, no traceback.
    command = [sys.executable, "-m", "omnipt_data.cli", "review", "pull", "--project", "no such project"]
    missing = subprocess.run(
        [*command, "--out", str(tmp_path / "x")],
        env={**os.environ, **service.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: no Label Studio project titled 'no such project' at {service.url}"
    ]

    def fails(*args: str, env: dict[str, str] | None = None) -> str:
        with pytest.raises(OmniptError) as caught:
            runner.invoke(app, list(args), env=env or service.client_env(), catch_exceptions=False)
        return str(caught.value)

    wrong_key = fails(
        "review",
        "stats",
        "--project",
        "clip tracks",
        env={**service.client_env(), "LABEL_STUDIO_API_KEY": "0" * 40},
    )
    assert "refused the API key" in wrong_key and "0" * 40 not in wrong_key
    (tmp_path / "elsewhere").mkdir()
    pred = str(clip["pred"].path)
    outside = fails(
        "review", "push", pred, "--project", "outside root", "--document-root", str(tmp_path / "elsewhere")
    )
    assert "is not below the Label Studio document root" in outside
    conn = connect(service.url, service.api_key)
    assert not [p for p in conn.client.projects.list(title="outside root")]  # no project made for nothing
    assert "'tracks', not 'boxes'" in fails(
        "review", "push", pred, "--project", "clip tracks", "--kind", "boxes"
    )
    assert "no predictions of 'model:other'" in fails(
        "review", "push", pred, "--project", "clip tracks", "--model", "other"
    )
    assert "at least 3 characters" in fails("review", "push", pred, "--project", "ab")

    # A second server on the first one's port is refused before it starts (it would otherwise answer
    # /health with the other server's voice while its own start-up runs).
    from labelstudio_service import SCRIPT

    port = service.url.rsplit(":", 1)[1]
    second = tmp_path / "second-server"
    account = {"LABEL_STUDIO_USERNAME": "b@omnipt.test", "LABEL_STUDIO_PASSWORD": "x" * 12}
    refused = subprocess.run(
        [str(SCRIPT), "start", "--port", port, "--data-dir", str(second)],
        env={**os.environ, **account, "LABEL_STUDIO_USER_TOKEN": "1" * 40},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in refused.stderr
    assert not (second / "label-studio.pid").exists()


def test_video_keyframes_keep_gaps_and_rotated_boxes_become_their_bounds() -> None:
    """No server: the keyframes written for a track with a gap read back as exactly its boxes."""
    boxes = {1: (10.0, 20.0, 30.0, 60.0), 2: (12.0, 20.0, 32.0, 60.0), 5: (40.0, 10.0, 60.0, 50.0)}
    keys = keyframes(boxes, width=160, height=96, fps=10.0)
    assert [(k["frame"], k["enabled"], k["time"]) for k in keys] == [
        (1, True, 0.0),
        (2, False, 0.1),
        (5, False, 0.4),
    ]
    back = expand_keyframes(keys, frames_count=8, width=160, height=96)
    assert sorted(back) == [1, 2, 5]  # nothing drawn in the gap (3, 4) or after the end (6-8)
    assert all(b == pytest.approx(boxes[p]) for p, b in back.items())
    # A track left switched on lives to the end of the clip; between keyframes it moves linearly.
    keys[1]["enabled"] = keys[2]["enabled"] = True
    back = expand_keyframes(keys, frames_count=8, width=160, height=96)
    assert sorted(back) == list(range(1, 9))
    assert back[4] == pytest.approx((30.666667, 13.333333, 50.666667, 53.333333))  # 2/3 of the way
    assert back[8] == pytest.approx(boxes[5])
    # Rotated 90 degrees clockwise around its top-left corner, a 20 x 40 box spans x in [x - 40, x].
    rotated = {"x": 50.0, "y": 50.0, "width": 12.5, "height": 41.6666667, "rotation": 90}
    assert from_percent(rotated, 160, 96) == pytest.approx((40.0, 48.0, 80.0, 68.0))
