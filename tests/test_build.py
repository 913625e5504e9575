"""Stage builds end to end: stores of the synthetic world -> every stage -> every export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets
import polars as pl
import pytest

from omnipt_data.answers import parse_answer, smart_resize
from omnipt_data.build import BuildOptions, build
from omnipt_data.build.templates import STAGES, load_templates
from omnipt_data.convert import convert
from omnipt_data.errors import OmniptError


@pytest.fixture(scope="module")
def stores(small_world, tmp_path_factory) -> list[Path]:
    _, world = small_world
    root = tmp_path_factory.mktemp("stores")
    return [
        convert(fmt, world / fmt, root / fmt, show_progress=False).store.path for fmt in ("mot", "crowdhuman")
    ]


def _records(folder: Path) -> list[dict]:
    return [
        json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()
    ]


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_sft_build_answers_match_the_store_in_the_model_space(stores, tmp_path):
    manifest = build(
        BuildOptions(stage="sft", stores=stores, out=tmp_path / "b", tasks=["mot_step"], show_progress=False)
    )
    records = _records(tmp_path / "b" / "native" / "mot_step")
    assert manifest["tasks"]["mot_step"]["samples"] == len(records) > 0
    # 320x180 frames become 308x168 for Qwen2.5-VL (sides rounded to multiples of 28)
    assert smart_resize(180, 320) == (168, 308)
    record = records[0]
    assert record["image_sizes"][0] == [308, 168] and record["original_sizes"][0] == [320, 180]
    assert len(record["images"]) == 3 and all(Path(p).is_file() for p in record["images"])
    answer = parse_answer(record["messages"][-1]["content"][0]["text"], "omnipt", (308, 168))
    assert answer.format_status == "exact"
    sequence, first = record["key"].split("@")
    frames = pl.read_parquet(stores[0] / "frames.parquet").filter(pl.col("sequence_uid") == sequence)
    last_uid = frames.filter(pl.col("frame_index") == int(first) + 2)["frame_uid"].item()
    gt = (
        pl.read_parquet(stores[0] / "boxes.parquet")
        .filter((pl.col("frame_uid") == last_uid) & (pl.col("source") == "gt") & ~pl.col("ignore"))
        .sort("x1", "y1")
    )
    got = sorted(answer.answer.boxes(), key=lambda b: (b.x1, b.y1))
    assert len(got) == gt.height
    for box, row in zip(got, gt.iter_rows(named=True), strict=True):
        expected = (
            max(row["x1"], 0) * 308 / 320,
            max(row["y1"], 0) * 168 / 180,
            min(row["x2"], 320) * 308 / 320,
            min(row["y2"], 180) * 168 / 180,
        )
        assert box.corners == pytest.approx(expected, abs=1.0)


def test_every_stage_builds_and_every_export_loads(stores, tmp_path):
    for stage in STAGES:
        out = tmp_path / stage
        exports = ("native", "llamafactory", "swift", "trl")
        manifest = build(
            BuildOptions(stage=stage, stores=stores, out=out, exports=exports, show_progress=False)
        )
        assert manifest["samples"] > 0
        for task, stats in manifest["tasks"].items():
            if not stats["samples"]:
                continue
            native = _records(out / "native" / task)
            assert len(native) == stats["samples"]
            # LLaMA-Factory: sharegpt messages with one <image> per image, and its dataset_info entry
            info = json.loads((out / "llamafactory" / "dataset_info.json").read_text())
            entry = info[f"omnipt_{stage.replace('-', '_')}_{task}"]
            assert entry["formatting"] == "sharegpt" and (out / "llamafactory" / entry["file_name"]).is_dir()
            for row in _records(out / "llamafactory" / task):
                text = "".join(m["content"] for m in row["messages"])
                assert text.count("<image>") == len(row["images"])
                assert [m["role"] for m in row["messages"]][-2:] == ["user", "assistant"]
            # ms-swift: the answer text as the prompt describes it, RL samples with their solution
            for row, record in zip(_records(out / "swift" / task), native, strict=True):
                assert row["messages"][-1]["content"] == record["messages"][-1]["content"][0]["text"]
                assert "objects" not in row
                assert (json.loads(row["solution"]) if "solution" in row else None) == record["solution"]
            # TRL / Hugging Face datasets: loads with the library's own JSON loader
            loaded = datasets.load_dataset(
                "json", data_files=str(out / "trl" / task / "*.jsonl"), split="train"
            )
            assert loaded.num_rows == stats["samples"]
            if stage in ("format-rl", "track-rl"):
                assert {"prompt", "solution", "images"} <= set(loaded.column_names)
                assert json.loads(loaded[0]["solution"])["task"] == task
            else:
                assert {"prompt", "completion", "images"} <= set(loaded.column_names)


def test_same_seed_same_bytes(stores, tmp_path):
    options = dict(stage="mid", stores=stores, exports=("native", "trl"), show_progress=False)
    build(BuildOptions(out=tmp_path / "a", seed=5, **options))
    build(BuildOptions(out=tmp_path / "b", seed=5, **options))
    build(BuildOptions(out=tmp_path / "c", seed=6, **options))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_box_formats_and_sharding(stores, tmp_path):
    for fmt in ("qwen2.5", "qwen3"):
        out = tmp_path / fmt
        build(
            BuildOptions(
                stage="format-rl", stores=stores, out=out, box_format=fmt, shard_size=7, show_progress=False
            )
        )
        files = sorted((out / "native" / "ground_all").glob("*.jsonl"))
        records = _records(out / "native" / "ground_all")
        assert len(files) == -(-len(records) // 7) and len(files) > 1
        for record in records:
            parsed = parse_answer(
                record["messages"][-1]["content"][0]["text"], fmt, tuple(record["image_sizes"][0])
            )
            assert parsed.format_status == "exact"
            assert record["solution"]["box_format"] == fmt and record["solution"]["reward"] == "stage1"


def test_bad_options_leave_nothing(stores, tmp_path):
    with pytest.raises(OmniptError, match="no task"):
        build(
            BuildOptions(stage="sft", stores=stores, out=tmp_path / "x", tasks=["nope"], show_progress=False)
        )
    with pytest.raises(OmniptError, match="unknown export"):
        build(
            BuildOptions(
                stage="sft", stores=stores, out=tmp_path / "x", exports=("csv",), show_progress=False
            )
        )
    assert list(tmp_path.iterdir()) == []
    assert {t.task for t in load_templates("track-rl")} == {"mot_step", "clip_track", "rmot", "crmot", "smot"}


def test_ray_engine_gives_byte_identical_builds(stores, tmp_path):
    import ray

    options = dict(stage="sft", stores=stores, exports=("native", "trl"), seed=3, show_progress=False)
    build(BuildOptions(out=tmp_path / "local", **options))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        build(BuildOptions(out=tmp_path / "ray", engine="ray", **options))
    finally:
        ray.shutdown()
    assert _digest(tmp_path / "local") == _digest(tmp_path / "ray")
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["samples"] > 0 and manifest["tasks"]["mot_step"]["samples"] > 0


def test_materialize_writes_the_images_the_model_sees(stores, tmp_path):
    from PIL import Image as PILImage

    out = tmp_path / "m"
    build(
        BuildOptions(
            stage="sft",
            stores=stores,
            out=out,
            tasks=["mot_step"],
            materialize=True,
            max_pixels=128 * 28 * 28,
            show_progress=False,
        )
    )
    records = _records(out / "native" / "mot_step")
    files = sorted((out / "images").iterdir())
    assert len(files) == len({p for r in records for p in r["images"]}) > 0
    for record in records[:5]:
        for path, size in zip(record["images"], record["image_sizes"], strict=True):
            assert Path(path).parent == Path("images")  # relative to the build: it can move
            with PILImage.open(out / path) as image:
                assert list(image.size) == size
    assert not list((out / "images").glob("*.partial"))


def test_every_task_of_every_stage_builds_from_the_synthetic_world(small_world, tmp_path):
    from omnipt_data.synth import WRITERS

    _, world = small_world
    stores = [
        convert(fmt, world / fmt, tmp_path / "stores" / fmt, show_progress=False).store.path
        for fmt in WRITERS
        if (world / fmt).is_dir() and any((world / fmt).iterdir())
    ]
    assert len(stores) == 14
    for stage in STAGES:
        manifest = build(BuildOptions(stage=stage, stores=stores, out=tmp_path / stage, show_progress=False))
        empty = [task for task, stats in manifest["tasks"].items() if stats["samples"] == 0]
        assert not empty, f"{stage}: no samples for {empty}"
        assert set(manifest["tasks"]) == {t.task for t in load_templates(stage)}


def test_long_videos_become_conversations_whose_last_frame_seeds_the_next_turn(stores, tmp_path):
    build(
        BuildOptions(
            stage="sft",
            stores=stores,
            out=tmp_path / "b",
            tasks=["clip_track"],
            show_progress=False,
            params={"clip_track.turns": 2, "clip_track.length": 4, "clip_track.stride": 3},
        )
    )
    record = _records(tmp_path / "b" / "native" / "clip_track")[0]
    roles = [m["role"] for m in record["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"] and len(record["images"]) == 8
    first_answer = parse_answer(record["messages"][1]["content"][0]["text"], "omnipt", (308, 168)).answer
    last_frame = dict(first_answer.frame_items())[(None, 4)]
    second_prompt = "".join(p.get("text", "") for p in record["messages"][2]["content"])
    given = parse_answer(second_prompt, "omnipt", (308, 168)).answer.boxes()
    assert [b.corners for b in given] == [b.corners for b in last_frame]
    assert [b.track_id for b in given] == [b.track_id for b in last_frame]
    # the second clip starts on the first clip's last frame
    assert record["images"][3] == record["images"][4]


def test_negatives_make_the_templates_share_when_whole_scenes_are_empty(tmp_path):
    from dataclasses import replace

    from omnipt_data.synth import synthesize
    from omnipt_data.train.demo import learning_world

    # Scenes of four frames where one or two people cross a plaza: a third of the frames show nobody,
    # most of them in scenes where nobody walks at all.
    synthesize(tmp_path / "world", replace(learning_world(3), scenes=80, val_scenes=1))
    store = convert("mot", tmp_path / "world" / "mot", tmp_path / "store", show_progress=False).store.path
    options = dict(stage="format-rl", stores=[store], tasks=["ground_all"], params={"frame_stride": 1})
    build(BuildOptions(out=tmp_path / "build", show_progress=False, **options))
    records = _records(tmp_path / "build" / "native" / "ground_all")
    negatives = [r for r in records if r["meta"]["negative"]]
    assert all(r["messages"][-1]["content"][0]["text"] == "None" for r in negatives)
    assert 0.06 <= len(negatives) / len(records) <= 0.14  # ground_all's negative_share is 0.1

    def scene(record: dict) -> str:
        return record["key"].split("#")[0]

    scenes_with_people = {scene(r) for r in records if not r["meta"]["negative"]}
    from_empty_scenes = [r for r in negatives if scene(r) not in scenes_with_people]
    assert len(from_empty_scenes) >= len(negatives) // 2, "negatives drawn only where people walk"

    # the same negatives whatever the shard size
    build(BuildOptions(out=tmp_path / "sharded", shard_size=7, show_progress=False, **options))
    assert sorted(r["key"] for r in _records(tmp_path / "sharded" / "native" / "ground_all")) == sorted(
        r["key"] for r in records
    )
