"""The tracking runner and the pre-labeler: the clip loop with an oracle that answers from the ground
truth (so the loop, id carrying and evaluation are checked for real), and the tiny model end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from omnipt_data.answers import Answer, Box, parse_answer, render_answer
from omnipt_data.convert import convert
from omnipt_data.evaluate.mot import evaluate_mot
from omnipt_data.infer.run import ModelRunner, prelabel, run_track
from omnipt_data.infer.tracker import PromptMaker
from omnipt_data.model import checkpoint_hash
from omnipt_data.rewards import iou_matrix, match_boxes
from omnipt_data.store import Store
from omnipt_data.synth import WorldConfig, synthesize

# 112x84 frames are already multiples of 28 above min_pixels: the model sees the original pixels.
WORLD = WorldConfig(seed=3, scenes=2, frames=9, views=1, people=6, width=112, height=84)


@pytest.fixture(scope="module")
def world_store(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("infer")
    synthesize(root / "world", WORLD, formats=("mot",))
    return root / "world", convert(
        "mot", root / "world" / "mot", root / "store", show_progress=False
    ).store.path


class Oracle:
    """Answers every tracking prompt from the ground truth, keeping the ids the prompt gives."""

    def __init__(self, store: Path):
        s = Store.open(store)
        frames = s.read("frames").with_columns(
            pl.struct("dataset", "image_path")
            .map_elements(lambda r: str(s.image_path(r["dataset"], r["image_path"])), return_dtype=pl.String)
            .alias("path")
        )
        boxes = s.read("boxes").filter((pl.col("source") == "gt") & ~pl.col("ignore"))
        self.truth: dict[str, list[Box]] = {}
        for path, uid in frames.select("path", "frame_uid").iter_rows():
            rows = boxes.filter(pl.col("frame_uid") == uid)
            self.truth[path] = [
                Box(max(a, 0), max(b, 0), min(c, 112), min(d, 84), t)
                for a, b, c, d, t in rows.select("x1", "y1", "x2", "y2", "track_id").iter_rows()
                if min(c, 112) > max(a, 0) and min(d, 84) > max(b, 0)
            ]
        self.calls = 0

    def __call__(self, prompts: list[list[dict[str, Any]]]) -> list[str]:
        self.calls += 1
        return [self.answer(p) for p in prompts]

    def answer(self, prompt: list[dict[str, Any]]) -> str:
        parts = prompt[-1]["content"]
        paths = [p["image"] for p in parts if p["type"] == "image"]
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        if len(paths) == 1:  # detection of the first frame: no ids
            return render_answer(
                Answer.single_image([Box(*b.corners) for b in self.truth[paths[0]]]), "omnipt", (112, 84)
            )
        # the prompt holds no boxes but the given ones
        given = parse_answer(text, "omnipt", (112, 84)).answer.boxes()
        first = self.truth[paths[0]]
        ids = {first[j].track_id: given[i].track_id for i, j, _ in match_boxes(iou_matrix(given, first), 0.5)}
        frames = {
            n: [Box(*b.corners, ids.get(b.track_id, 1000 + b.track_id)) for b in self.truth[path]]
            for n, path in enumerate(paths, start=1)
            if n > 1
        }
        return render_answer(Answer.from_frames(frames), "omnipt", (112, 84))


def test_tracking_loop_with_an_oracle_scores_perfectly(world_store, tmp_path):
    world, store = world_store
    oracle = Oracle(store)
    summary = run_track(oracle, store, tmp_path / "results", length=4, prompts=PromptMaker())
    # 9 frames in clips of 4 sharing a frame: frame 1 grounded, then clips 1-4, 4-7, 7-9; all sequences
    # of a step in one batch
    assert summary["sequences"] == 2 and summary["unparsed"] == 0
    assert oracle.calls == 4
    result = evaluate_mot(world / "mot" / "train", tmp_path / "results")
    combined = result.combined
    assert combined["IDSW"] == 0 and combined["IDF1"] == pytest.approx(1.0)
    assert combined["MOTA"] == pytest.approx(1.0) and combined["CLR_FN"] == 0 and combined["CLR_FP"] == 0


class Stutter(Oracle):
    """The oracle's clip answers with every box written twice under the same id, as a small model can."""

    def answer(self, prompt: list[dict[str, Any]]) -> str:
        text = super().answer(prompt)
        if sum(part["type"] == "image" for part in prompt[-1]["content"]) == 1:
            return text
        answer = parse_answer(text, "omnipt", (112, 84)).answer
        doubled = {index: boxes + boxes for (_, index), boxes in answer.frame_items()}
        return render_answer(Answer.from_frames(doubled), "omnipt", (112, 84))


def test_an_id_answered_twice_in_a_frame_becomes_two_tracks(world_store, tmp_path):
    world, store = world_store
    run_track(Oracle(store), store, tmp_path / "once", length=4, prompts=PromptMaker())
    run_track(Stutter(store), store, tmp_path / "twice", length=4, prompts=PromptMaker())
    columns = ["frame", "id", "x", "y", "w", "h", "conf", "a", "b", "c"]
    repeated = 0
    for path in sorted((tmp_path / "once").glob("*.txt")):
        if not path.stat().st_size:  # a sequence where nobody is in view
            assert not (tmp_path / "twice" / path.name).stat().st_size
            continue
        once = pl.read_csv(path, has_header=False, new_columns=columns)
        twice = pl.read_csv(tmp_path / "twice" / path.name, has_header=False, new_columns=columns)
        later = once.filter(pl.col("frame") > 1).height  # frame 1 is grounded, not answered in a clip
        assert twice.height == once.height + later > once.height
        assert twice.select("frame", "id").is_unique().all()
        repeated += later
    # evaluation accepts the results: every true box found, each repeat a false positive
    combined = evaluate_mot(world / "mot" / "train", tmp_path / "twice").combined
    assert combined["CLR_FN"] == 0 and combined["CLR_FP"] == repeated


def test_tiny_model_tracks_and_prelabels(world_store, tiny_model_dir, tmp_path):
    _, store = world_store
    runner = ModelRunner.load(tiny_model_dir, device="cpu", batch_size=4, max_new_tokens=12)
    summary = run_track(runner, store, tmp_path / "results", length=5, prompts=PromptMaker())
    assert summary["sequences"] == 2
    assert sorted(p.name for p in (tmp_path / "results").glob("*.txt")) == ["SYN-01.txt", "SYN-02.txt"]
    # a random model's answers do not parse: counted, never raised
    assert summary["unparsed"] == 2 * 3
    recorded = json.loads((tmp_path / "results" / "track.json").read_text())
    assert recorded["unparsed"] == summary["unparsed"]

    frames = tmp_path / "video" / "clip"
    frames.mkdir(parents=True)
    for k, image in enumerate(
        sorted((world_store[0] / "mot" / "train" / "SYN-01" / "img1").glob("*.jpg"))[:4]
    ):
        (frames / f"{k:04d}.jpg").write_bytes(image.read_bytes())
    result = prelabel(
        runner,
        tmp_path / "video",
        tmp_path / "pred",
        tasks=("tracks", "captions", "attributes", "interactions", "expressions"),
        length=4,
    )
    pred = Store.open(tmp_path / "pred")
    provenance = pred.manifest["prediction"]
    assert provenance["checkpoint_hash"] == checkpoint_hash(tiny_model_dir)
    assert provenance["model"] == tiny_model_dir.name and provenance["tasks"][0] == "tracks"
    assert pred.manifest["counts"]["frames"] == 4 and pred.manifest["counts"]["sequences"] == 1
    kinds = pred.read("semantics").group_by("kind").len().sort("kind")
    # nothing parsed: the detection and the clip answer are kept as raw answers for audit
    assert dict(kinds.iter_rows()) == {"raw_answer": 2}
    assert result["unparsed_answers"] == 2


def test_eval_reads_ground_truth_from_a_store(world_store, tmp_path):
    from typer.testing import CliRunner

    from omnipt_data.cli import app

    _, store = world_store
    oracle = Oracle(store)
    run_track(oracle, store, tmp_path / "results", length=4, prompts=PromptMaker())
    result = CliRunner().invoke(
        app,
        ["eval", "--gt", str(store), "--pred", str(tmp_path / "results"), "--json", str(tmp_path / "m.json")],
    )
    assert result.exit_code == 0, result.output
    combined = json.loads((tmp_path / "m.json").read_text())["COMBINED"]
    assert combined["IDF1"] == pytest.approx(1.0) and combined["IDSW"] == 0
    (tmp_path / "results" / "SYN-02.txt").unlink()
    missing = CliRunner().invoke(app, ["eval", "--gt", str(store), "--pred", str(tmp_path / "results")])
    assert missing.exit_code == 2 and "no results for sequence SYN-02" in missing.output


def test_prelabel_on_ray_matches_the_local_run(world_store, tiny_model_dir, tmp_path):
    import ray

    _, store = world_store
    runner = ModelRunner.load(tiny_model_dir, device="cpu", batch_size=4, max_new_tokens=12)
    local = prelabel(runner, store, tmp_path / "local", tasks=("tracks", "captions"), length=5)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        distributed = prelabel(
            runner,
            store,
            tmp_path / "ray",
            tasks=("tracks", "captions"),
            length=5,
            engine="ray",
            shard=1,
            workers=2,
        )
    finally:
        ray.shutdown()
    assert distributed["unparsed_answers"] == local["unparsed_answers"] > 0
    for table in ("boxes", "semantics", "frames"):
        assert Store.open(tmp_path / "ray").read(table).equals(Store.open(tmp_path / "local").read(table))
