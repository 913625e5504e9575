"""Referring MOT readers end to end: Refer-KITTI (-V2), CRTrack and its evaluation layout.

Synthetic world -> native format -> store must give back the world's boxes, identities, sentences and
per-frame referents exactly; the real CRTrack sample converts with counts taken from its raw files.
"""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest
from conftest import SMALL_WORLD, TEST_DATA, check_malformed
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.errors import InputError
from omnipt_data.readers import ReadOptions, detect_format
from omnipt_data.synth import WorldConfig, synthesize
from omnipt_data.synth.expressions import Expression, scene_expressions, view_expressions

runner = CliRunner()


def _boxes_with_frames(store) -> pl.DataFrame:
    frames = store.read("frames").select("frame_uid", "sequence", "view", "frame_index", "width", "height")
    return store.read("boxes").join(frames, on="frame_uid", how="left")


def _store_referents(store) -> set[tuple[str, str, str | None, int, int]]:
    """(sequence, sentence, view, frame_index, track_id) of every referent."""
    frames = store.read("frames").select("frame_uid", "view", "frame_index")
    expressions = store.read("expressions").select("expression_uid", "sequence", "sentence")
    rows = store.read("referents").join(expressions, on="expression_uid").join(frames, on="frame_uid")
    return set(rows.select("sequence", "sentence", "view", "frame_index", "track_id").iter_rows())


def _truth_referents(
    scene_expressions_of: dict[str, list[Expression]], sequence_of: dict[str, str], view_name
) -> set[tuple[str, str, str | None, int, int]]:
    return {
        (sequence_of[scene], e.sentence, view_name(view), frame, track_id)
        for scene, expressions in scene_expressions_of.items()
        for e in expressions
        for (view, frame), ids in e.referents.items()
        for track_id in ids
    }


# --- Refer-KITTI --------------------------------------------------------------------------------------


def test_refer_kitti_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = convert("refer-kitti", out / "refer-kitti", tmp_path / "store", show_progress=False).store
    boxes = _boxes_with_frames(store)
    got = boxes.select(
        (pl.lit("SYN-") + (pl.col("sequence").cast(pl.Int32) + 1).cast(pl.String).str.zfill(2)).alias(
            "scene"
        ),
        pl.col("frame_index").alias("frame"),
        "track_id",
        pl.col("x1").round(0).cast(pl.Int32).alias("x"),
        pl.col("y1").round(0).cast(pl.Int32).alias("y"),
        (pl.col("x2") - pl.col("x1")).round(0).cast(pl.Int32).alias("w"),
        (pl.col("y2") - pl.col("y1")).round(0).cast(pl.Int32).alias("h"),
    ).sort("scene", "frame", "track_id")
    truth = (
        world.boxes.filter(pl.col("view") == 1)
        .select("scene", "frame", "track_id", "x", "y", "w", "h")
        .sort("scene", "frame", "track_id")
    )
    # view 1 of 3 scenes: 173 boxes, every one back to the pixel (six-decimal normalisation is < 1e-3 px)
    assert got.height == truth.height == 173
    assert got.equals(truth)
    error = boxes.select(
        (pl.col("x1") - pl.col("x1").round(0)).abs().max(), (pl.col("y2") - pl.col("y2").round(0)).abs().max()
    )
    assert error.max_horizontal().item() < 1e-3
    assert boxes["class_id"].unique().to_list() == [2] and boxes["category"].unique().to_list() == ["object"]

    frames = store.read("frames").sort("sequence", "frame_index")
    assert frames.height == SMALL_WORLD.scenes * SMALL_WORLD.frames == 72
    assert frames["width"].unique().to_list() == [SMALL_WORLD.width]  # read from the PNG headers
    assert frames["height"].unique().to_list() == [SMALL_WORLD.height]
    # KITTI frames are 0-based, the store's are 1-based: frame_index 1 is image 000000.png
    first = frames.row(0, named=True)
    assert (first["frame_index"], first["image_path"]) == (1, "KITTI/training/image_02/0000/000000.png")
    assert store.image_path(first["dataset"], first["image_path"]).is_file()
    assert frames["split"].unique().to_list() == ["train"]

    per_scene = {scene.name: view_expressions(world, s, 1) for s, scene in enumerate(world.scenes)}
    sequence_of = {scene.name: f"{s:04d}" for s, scene in enumerate(world.scenes)}
    expressions = store.read("expressions")
    want = {
        (sequence_of[scene], e.sentence, e.raw_sentence) for scene, items in per_scene.items() for e in items
    }
    assert set(expressions.select("sequence", "sentence", "raw_sentence").iter_rows()) == want
    assert expressions.height == len(want) == 76
    assert expressions["raw_sentence"].drop_nulls().unique().sort().to_list() == [
        "people walking to the left",
        "people walking to the right",
    ]
    referents = _store_referents(store)
    assert referents == _truth_referents(per_scene, sequence_of, lambda view: None)
    assert len(referents) == store.manifest["counts"]["referents"] == 1316
    # negatives (a scene's absent attributes) refer to nobody
    negatives = {
        (sequence_of[scene], e.sentence)
        for scene, items in per_scene.items()
        for e in items
        if e.kind == "negative"
    }
    assert len(negatives) == 6 and not {(q, s) for q, s, *_ in referents} & negatives
    assert (
        store.manifest["counts"]["tracks"]
        == world.boxes.filter(pl.col("view") == 1).select("scene", "track_id").n_unique()
    )


def test_refer_kitti_expression_files_are_the_native_json(small_world):
    world, out = small_world
    path = out / "refer-kitti" / "expression" / "0002" / "people-walking-to-the-left.json"
    record = json.loads(path.read_text())
    assert set(record) == {"label", "ignore", "video_name", "sentence"}
    assert record["video_name"] == "0002" and record["sentence"] == "people walking to the left"
    expression = next(e for e in view_expressions(world, 2, 1) if e.sentence == record["sentence"])
    # label keys are 0-based KITTI frames
    assert record["label"] == {str(f - 1): list(ids) for f, ids in expression.frames(1).items()}
    labels = out / "refer-kitti" / "KITTI" / "labels_with_ids" / "image_02" / "0002"
    first = min(int(k) for k in record["label"])
    ids_in_labels = {int(line.split()[1]) for line in (labels / f"{first:06d}.txt").read_text().splitlines()}
    assert set(record["label"][str(first)]) <= ids_in_labels


def test_refer_kitti_v2_lists_ids_missing_from_the_labels_and_goes_on(tmp_path):
    source = TEST_DATA / "malformed" / "refer_kitti_missing_id"
    with pytest.raises(InputError) as error:
        convert("refer-kitti", source, tmp_path / "v1", show_progress=False)
    # the error names the expression file, the line of the frame and the frame
    assert error.value.path == source / "expression" / "0000" / "people-walking.json"
    assert error.value.line == 4 and "frame 1 (0-based)" in str(error.value) and "track 9" in str(error.value)
    result = convert("refer-kitti-v2", source, tmp_path / "v2", show_progress=False)
    assert result.skipped_rows == 1
    problems = result.store.manifest["problems"]
    assert problems["skipped_rows"] == 1 and problems["examples"] == [str(error.value)]
    referents = _store_referents(result.store)
    assert referents == {("0000", "people walking", None, 1, 1), ("0000", "people walking", None, 2, 1)}
    assert result.store.manifest["reader"]["name"] == "refer-kitti-v2"
    assert result.store.read("frames")["dataset"].unique().to_list() == ["refer-kitti-v2"]


def test_refer_kitti_needs_images_for_the_size_and_synth_without_render_still_writes(tmp_path):
    config = WorldConfig(seed=5, scenes=2, frames=8, views=2, width=160, height=96)
    synthesize(tmp_path / "w", config, formats=("refer-kitti", "crtrack"), render=False)
    assert not (tmp_path / "w" / "refer-kitti" / "KITTI" / "training").exists()
    assert any((tmp_path / "w" / "refer-kitti" / "expression" / "0000").iterdir())
    with pytest.raises(InputError, match="no images: the labels are normalised"):
        convert("refer-kitti", tmp_path / "w" / "refer-kitti", tmp_path / "s", show_progress=False)
    # CRTrack's boxes are in pixels: annotations alone convert
    store = convert("crtrack", tmp_path / "w" / "crtrack", tmp_path / "c", show_progress=False).store
    assert store.manifest["counts"]["frames"] == 2 * 2 * 8


# --- CRTrack ------------------------------------------------------------------------------------------


def test_crtrack_store_equals_the_world_with_one_identity_across_views(small_world, tmp_path):
    world, out = small_world
    store = convert("crtrack", out / "crtrack", tmp_path / "store", show_progress=False).store
    boxes = _boxes_with_frames(store)
    got = boxes.select(
        pl.col("sequence").alias("scene"),
        pl.col("view").str.strip_prefix("View").cast(pl.Int32).alias("view"),
        pl.col("frame_index").alias("frame"),
        "track_id",
        *(pl.col(c).cast(pl.Int32).alias(n) for c, n in (("x1", "x"), ("y1", "y"))),
        (pl.col("x2") - pl.col("x1")).cast(pl.Int32).alias("w"),
        (pl.col("y2") - pl.col("y1")).cast(pl.Int32).alias("h"),
    ).sort("scene", "view", "frame", "track_id")
    truth = world.boxes.select("scene", "view", "frame", "track_id", "x", "y", "w", "h").sort(
        "scene", "view", "frame", "track_id"
    )
    assert got.height == truth.height == 354
    assert got.equals(truth)

    sequences = store.read("sequences").sort("sequence", "view")
    assert sequences.select("sequence", "view").rows() == [
        (scene.name, f"View{v}") for scene in world.scenes for v in (1, 2)
    ]
    assert sequences["split"].to_list() == ["train"] * 4 + ["test"] * 2
    assert sequences["dataset"].unique().to_list() == ["crtrack-in-domain"]
    counts = store.manifest["counts"]
    assert (counts["sequences"], counts["frames"]) == (6, 6 * SMALL_WORLD.frames)
    frame = store.read("frames").sort("sequence", "view", "frame_index").row(0, named=True)
    assert frame["image_path"] == "images/train/SYN-01_View1/img1/SYN-01_View1_000001.jpg"
    assert store.image_path(frame["dataset"], frame["image_path"]).is_file()
    assert (frame["width"], frame["height"], frame["timestamp"]) == (
        SMALL_WORLD.width,
        SMALL_WORLD.height,
        0.0,
    )
    # one identity per person across views: 13 people, although the views hold 24 (view, person) tracks
    per_scene = world.boxes.select("scene", "track_id").n_unique()
    per_view = world.boxes.select("scene", "view", "track_id").n_unique()
    assert counts["tracks"] == per_scene == 13 and per_view == 24
    info = runner.invoke(app, ["info", str(store.path), "--json"])
    assert json.loads(info.stdout)["tracks"] == 13
    # a person seen by both cameras: the same track id in View1 and View2 of one sequence
    both = (
        world.boxes.group_by("scene", "track_id")
        .agg(pl.col("view").n_unique().alias("views"))
        .filter(pl.col("views") == 2)
        .sort("scene", "track_id")
        .row(0, named=True)
    )
    person = got.filter((pl.col("scene") == both["scene"]) & (pl.col("track_id") == both["track_id"]))
    for view in (1, 2):
        want = truth.filter(
            (pl.col("scene") == both["scene"])
            & (pl.col("track_id") == both["track_id"])
            & (pl.col("view") == view)
        )
        assert want.height > 0 and person.filter(pl.col("view") == view).equals(want)

    per_scene_expressions = {scene.name: scene_expressions(world, s) for s, scene in enumerate(world.scenes)}
    expressions = store.read("expressions")
    want_sentences = {(scene, e.sentence) for scene, items in per_scene_expressions.items() for e in items}
    assert set(expressions.select("sequence", "sentence").iter_rows()) == want_sentences
    assert expressions.height == len(want_sentences) == 54
    assert expressions["views"].to_list() == [["View1", "View2"]] * 54
    referents = _store_referents(store)
    sequence_of = {scene.name: scene.name for scene in world.scenes}
    assert referents == _truth_referents(per_scene_expressions, sequence_of, lambda view: f"View{view}")
    assert len(referents) == counts["referents"] == 1856
    # a sentence names the same identities in every view
    for items in per_scene_expressions.values():
        for e in items:
            assert {t for (v, _), ids in e.referents.items() for t in ids} == set(e.track_ids)


def test_crtrack_expression_lines_are_the_native_text(small_world):
    world, out = small_world
    text = (
        out
        / "crtrack"
        / "CRTrack_In-domain"
        / "labels_with_ids_text"
        / "train"
        / "tackled_text"
        / "SYN-01.txt"
    )
    lines = text.read_text().splitlines()
    expressions = scene_expressions(world, 0)
    assert lines == [f"SYN-01_{e.sentence}:{','.join(map(str, e.track_ids))}" for e in expressions]
    assert "SYN-01_people in blue tops:" in lines  # a negative: nobody in the scene wears a blue top


def test_real_crtrack_evaluation_sample_converts_with_exact_counts(fixtures, tmp_path):
    source = fixtures / "crtrack" / "gt"
    # count the raw files independently: rows, distinct (view, frame, id) boxes, ids, frames, sentences
    raw_rows = 0
    boxes: dict[tuple[str, int, int], tuple[str, ...]] = {}
    per_sentence: dict[str, int] = {}
    per_view: dict[str, set[tuple[int, int]]] = {}
    last_frame = 0
    for folder in sorted(source.iterdir()):
        sentence = folder.name.split("_", 1)[1]
        per_sentence[sentence] = 0
        for path in sorted((folder / "gt").glob("View*.txt")):
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                fields = line.split(",")
                frame, track = int(fields[0]), int(fields[1])
                raw_rows += 1
                per_sentence[sentence] += 1
                boxes[path.stem, frame, track] = tuple(fields[2:6])
                per_view.setdefault(path.stem, set()).add((frame, track))
                last_frame = max(last_frame, frame)
    assert detect_format(source) == "crtrack-eval"
    store = convert("crtrack-eval", source, tmp_path / "store", show_progress=False).store
    counts = store.manifest["counts"]
    assert counts["referents"] == raw_rows == 9032  # one referent per row: (sentence, view, frame, id)
    assert counts["boxes"] == len(boxes) == 8231  # the union over sentences
    assert counts["expressions"] == len(per_sentence) == 5
    assert counts["tracks"] == len({t for _, _, t in boxes}) == 5  # one identity across the 3 views
    assert counts["sequences"] == len(per_view) == 3
    assert counts["frames"] == 3 * last_frame == 3 * 801
    got = _boxes_with_frames(store)
    assert got["sequence"].unique().to_list() == ["Gate2"] and got["frame_index"].max() == 801
    assert {v: got.filter(pl.col("view") == v).height for v in per_view} == {
        v: len(keys) for v, keys in per_view.items()
    }
    assert {v: len(keys) for v, keys in per_view.items()} == {"View1": 3204, "View2": 2624, "View3": 2403}
    # the first row of the bicycle sentence, View2: 1,4,1820,675,30,54,1,1,1
    first = got.filter((pl.col("view") == "View2") & (pl.col("frame_index") == 1) & (pl.col("track_id") == 4))
    assert first.select("x1", "y1", "x2", "y2").row(0) == (1820.0, 675.0, 1850.0, 729.0)
    assert first["category"].item() == "pedestrian" and first["visibility"].item() == 1.0
    # person 3 is seen by all three cameras under one track id
    assert got.filter(pl.col("track_id") == 3)["view"].unique().sort().to_list() == [
        "View1",
        "View2",
        "View3",
    ]
    expressions = store.read("expressions")
    assert set(expressions["sentence"]) == set(per_sentence)
    assert expressions["views"].to_list() == [["View1", "View2", "View3"]] * 5
    referents = store.read("referents").join(
        expressions.select("expression_uid", "sentence"), on="expression_uid"
    )
    assert dict(referents.group_by("sentence").len().iter_rows()) == per_sentence
    assert per_sentence == {
        "A man riding a bicycle": 221,
        "A man wearing a black coat and black trousers": 3204,
        "A man wearing a black coat, black trousers and white shoes": 801,
        "A man wearing a black coat, gray trousers and gray shoes": 2403,
        "A man wearing a white coat, black trousers and white shoes": 2403,
    }
    frames = store.read("frames")
    assert frames["image_path"].null_count() == frames.height and frames["dataset"].unique().to_list() == [
        "crtrack"
    ]
    assert frames["split"].unique().to_list() == ["test"]


# --- detection and bad input --------------------------------------------------------------------------


def test_detect_format_recognises_each_layout(small_world, fixtures, tmp_path):
    _, out = small_world
    assert detect_format(out / "refer-kitti") == "refer-kitti"
    v2 = tmp_path / "refer-kitti-v2"
    v2.symlink_to(out / "refer-kitti", target_is_directory=True)
    assert detect_format(v2) == "refer-kitti-v2"
    assert detect_format(out / "crtrack") == "crtrack"
    assert detect_format(out / "crtrack" / "CRTrack_In-domain") == "crtrack"
    assert detect_format(fixtures / "crtrack" / "gt") == "crtrack-eval"
    # MOTChallenge folders are still MOT
    assert detect_format(out / "mot") == "mot"
    assert detect_format(TEST_DATA / "malformed" / "mot_nan") == "mot"


MALFORMED = {
    ("refer_kitti_label_columns", "refer-kitti"): (
        "KITTI/labels_with_ids/image_02/0000/000001.txt",
        2,
        "5 fields",
    ),
    ("refer_kitti_label_columns", "refer-kitti-v2"): (
        "KITTI/labels_with_ids/image_02/0000/000001.txt",
        2,
        "5 fields",
    ),
    ("refer_kitti_missing_id", "refer-kitti"): (
        "expression/0000/people-walking.json",
        4,
        "frame 1 (0-based): the expression names track 9, absent from the frame's labels",
    ),
    ("refer_kitti_bad_json", "refer-kitti"): (
        "expression/0000/people-walking.json",
        1,
        "invalid JSON at column",
    ),
    ("refer_kitti_bad_json", "refer-kitti-v2"): (
        "expression/0000/people-walking.json",
        1,
        "invalid JSON at column",
    ),
    ("crtrack_bad_id", "crtrack"): (
        "labels_with_ids_text/train/tackled_text/Plaza.txt",
        2,
        "id 'x' is not a non-negative integer",
    ),
    ("crtrack_unknown_id", "crtrack"): (
        "labels_with_ids_text/train/tackled_text/Plaza.txt",
        2,
        "id 9 is no track of scene Plaza in any view",
    ),
    ("crtrack_eval_conflict", "crtrack-eval"): (
        "Plaza_the person in red/gt/View1.txt",
        2,
        "frame 1, id 1: the box differs from",
    ),
    ("crtrack_eval_non_numeric", "crtrack-eval"): (
        "Plaza_the person in red/gt/View1.txt",
        2,
        "non-numeric value 'abc'",
    ),
}


@pytest.mark.parametrize(("case", "fmt"), sorted(MALFORMED))
def test_malformed_referring_input_names_file_and_line_and_leaves_nothing(case, fmt, tmp_path):
    file, line, problem = MALFORMED[case, fmt]
    check_malformed(fmt, case, file, line, problem, tmp_path)


def test_crtrack_eval_lenient_keeps_the_first_box(tmp_path):
    source = TEST_DATA / "malformed" / "crtrack_eval_conflict"
    store = convert(
        "crtrack-eval", source, tmp_path / "s", options=ReadOptions(lenient=True), show_progress=False
    ).store
    boxes = _boxes_with_frames(store)
    kept = boxes.filter(
        (pl.col("view") == "View1") & (pl.col("frame_index") == 1) & (pl.col("track_id") == 1)
    )
    assert kept["x1"].to_list() == [10.0]
    assert store.manifest["counts"]["referents"] == 4  # 3 rows of the first sentence, 1 kept of the second


def test_synthetic_expressions_are_deterministic_and_view_relative(tmp_path):
    config = WorldConfig(seed=3, scenes=1, frames=30, views=2, people=10, width=320, height=180)
    one = synthesize(tmp_path / "a", config, formats=("refer-kitti", "crtrack"), render=False)
    two = synthesize(tmp_path / "b", config, formats=("refer-kitti", "crtrack"), render=False)
    assert [e.sentence for e in view_expressions(one, 0, 1)] == [
        e.sentence for e in view_expressions(two, 0, 1)
    ]
    for folder in ("refer-kitti", "crtrack"):
        a = sorted(
            (p.relative_to(tmp_path / "a"), p.read_bytes())
            for p in (tmp_path / "a" / folder).rglob("*")
            if p.is_file()
        )
        b = sorted(
            (p.relative_to(tmp_path / "b"), p.read_bytes())
            for p in (tmp_path / "b" / folder).rglob("*")
            if p.is_file()
        )
        assert a == b
    # "walking to the left" depends on the camera: the two views disagree somewhere
    left = {
        view: next(
            e for e in view_expressions(one, 0, view) if e.sentence == "people walking to the left"
        ).referents
        for view in (1, 2)
    }
    assert {f: ids for (_, f), ids in left[1].items()} != {f: ids for (_, f), ids in left[2].items()}
    # every expression refers only to people seen in that view and frame
    visible = set(one.boxes.select("view", "frame", "track_id").iter_rows())
    for view in (1, 2):
        for e in view_expressions(one, 0, view):
            assert all((v, f, t) in visible for (v, f), ids in e.referents.items() for t in ids)
    kinds = {e.kind for e in view_expressions(one, 0, 1)}
    assert kinds == {"attribute", "motion", "person", "direction", "negative"}
    shutil.rmtree(tmp_path / "a")
