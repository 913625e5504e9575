"""Person-text readers (CUHK-PEDES, ICFG-PEDES, RSTPReid, SYNTH-PEDES) and BenSMOT, end to end.

Synthetic world -> native format -> store equals what the world put in; each format is recognised by
``convert auto``; malformed input names its file and line and leaves no store.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import polars as pl
import pytest
from conftest import SMALL_WORLD, TEST_DATA, check_malformed
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.readers import detect_format
from omnipt_data.synth import WorldConfig, generate_world, synthesize
from omnipt_data.synth import captions as language
from omnipt_data.synth.formats.bensmot import bensmot_sequences
from omnipt_data.synth.formats.person_text import LAYOUTS, person_text_records

runner = CliRunner()
PERSON_TEXT = ("cuhk-pedes", "icfg-pedes", "rstpreid", "synth-pedes")
# Images and distinct people in SMALL_WORLD's person-text output: 11 of its 13 people have a clear crop.
EXPECTED_IMAGES = {"cuhk-pedes": 22, "icfg-pedes": 22, "rstpreid": 33, "synth-pedes": 11}
EXPECTED_PERSONS = 11
# A world with every kind of interaction: 2 scenes, 18 tracks, 598 boxes, 9 interactions.
BENSMOT_WORLD = WorldConfig(seed=0, scenes=2, frames=48, people=10, width=320, height=180)


def _person_of(world, scene: str, track_id: int):
    index = next(i for i, s in enumerate(world.scenes) if s.name == scene)
    return index, next(p for p in world.scenes[index].people if p.track_id == track_id)


# --- person text ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", PERSON_TEXT)
def test_person_text_store_equals_the_world(fmt, small_world, tmp_path):
    world, out = small_world
    layout = LAYOUTS[fmt]
    source = out / fmt
    assert detect_format(source) == fmt
    assert detect_format(source / layout.annotation_file) == fmt
    store = convert(fmt, source, tmp_path / "store", show_progress=False).store
    got = store.read("identities").sort("image_path")
    truth = person_text_records(world, fmt)
    assert got.height == len(truth) == EXPECTED_IMAGES[fmt]
    assert store.manifest["counts"]["persons"] == EXPECTED_PERSONS
    prefix = f"{layout.image_dir}/" if layout.image_dir else ""
    by_path = {prefix + item.record[layout.path_key]: item for item in truth}
    assert sorted(by_path) == got["image_path"].to_list()
    dataset = got["dataset"][0]
    for row in got.iter_rows(named=True):
        item = by_path[row["image_path"]]
        record, crop = item.record, item.crop
        assert row["pid"] == record["id"] and row["person_uid"] == f"{dataset}/{record['id']}"
        assert row["captions"] == record["captions"] + record.get("prompt_caption", [])
        assert row["split"] == record.get("split", "train")
        assert (row["width"], row["height"]) == crop.box[2:]  # read from the crop's JPEG header
        assert store.image_path(dataset, row["image_path"]).is_file()
        scene_index, person = _person_of(world, crop.scene, crop.track_id)
        look = language.appearance(world, scene_index, person)
        # every caption describes what the world drew: the person's top and bottom colours
        for caption in row["captions"]:
            assert person.upper in caption and person.lower in caption
        if fmt == "synth-pedes":
            pairs = [(a["name"], a["value"]) for a in row["attributes"]]
            assert pairs == language.synth_pedes_attributes(look)
            assert dict(pairs)["upper_clothing"].startswith(person.upper)
        else:
            assert row["attributes"] is None
        assert row["camera"] == (crop.view if fmt == "rstpreid" else None)
    # one identity per person: all images of a pid come from one world person
    owners = Counter((item.record["id"], item.crop.scene, item.crop.track_id) for item in truth)
    assert len({pid for pid, _, _ in owners}) == len(owners) == EXPECTED_PERSONS
    ids = sorted({item.record["id"] for item in truth})
    assert ids == list(range(layout.id_base, layout.id_base + EXPECTED_PERSONS))


def test_person_text_captions_per_image(small_world):
    world, _ = small_world
    counts = {
        fmt: Counter(len(r.record["captions"]) for r in person_text_records(world, fmt))
        for fmt in PERSON_TEXT
    }
    assert counts == {
        "cuhk-pedes": {2: 22},
        "icfg-pedes": {1: 22},
        "rstpreid": {2: 33},
        "synth-pedes": {2: 11},
    }
    for fmt in PERSON_TEXT:
        for item in person_text_records(world, fmt):
            assert len(set(item.record["captions"])) == len(item.record["captions"])  # never the same twice


def test_person_text_variants_told_apart_by_keys(small_world, tmp_path):
    _, out = small_world
    for fmt in PERSON_TEXT:
        folder = tmp_path / fmt
        folder.mkdir()
        shutil.copy(out / fmt / LAYOUTS[fmt].annotation_file, folder / "annotations.json")
        assert detect_format(folder) == fmt
        assert detect_format(folder / "annotations.json") == fmt
    # the other names the datasets ship under
    renamed = tmp_path / "icfg"
    renamed.mkdir()
    shutil.copy(out / "icfg-pedes" / "ICFG-PEDES.json", renamed / "ICFG_PEDES.json")
    assert detect_format(renamed) == "icfg-pedes"
    original = tmp_path / "cuhk"
    original.mkdir()
    records = json.loads((out / "cuhk-pedes" / "reid_raw.json").read_text())
    for record in records:
        del record["split"], record["processed_tokens"]
    (original / "caption_all.json").write_text(json.dumps(records))
    assert detect_format(original) == "cuhk-pedes"
    store = convert("cuhk-pedes", original, tmp_path / "s", show_progress=False).store
    got = store.read("identities")
    assert got.height == 22 and got["split"].unique().to_list() == ["train"]
    assert got["width"].null_count() == 22  # no imgs/ beside it: sizes unknown


def test_person_text_without_rendering(tmp_path):
    config = WorldConfig(seed=3, scenes=2, frames=16, views=1, people=5, width=320, height=180)
    world = synthesize(tmp_path / "w", config, formats=PERSON_TEXT, render=False)
    for fmt in PERSON_TEXT:
        folder = tmp_path / "w" / fmt
        assert sorted(p.name for p in folder.iterdir()) == [LAYOUTS[fmt].annotation_file]
        store = convert(fmt, folder, tmp_path / f"s-{fmt}", show_progress=False).store
        got = store.read("identities")
        assert got.height == len(person_text_records(world, fmt)) > 0
        assert got["width"].null_count() == got.height


# --- BenSMOT ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bensmot_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("bensmot") / "world"
    world = synthesize(out, BENSMOT_WORLD, formats=("bensmot",))
    return world, out


def _semantics_by_sequence(store) -> dict[str, pl.DataFrame]:
    semantics = store.read("semantics").join(
        store.read("sequences").select("sequence_uid", "sequence"), on="sequence_uid"
    )
    return {key: part for (key,), part in semantics.partition_by("sequence", as_dict=True).items()}


def test_bensmot_store_equals_the_world(bensmot_world, tmp_path):
    world, out = bensmot_world
    assert detect_format(out / "bensmot") == "bensmot"
    store = convert("bensmot", out / "bensmot", tmp_path / "store", show_progress=False).store
    sequences = bensmot_sequences(world)
    counts = store.manifest["counts"]
    assert (counts["sequences"], counts["frames"], counts["boxes"], counts["tracks"]) == (2, 96, 598, 18)
    assert counts["semantics"] == 29  # 2 summaries + 18 track captions + 9 interactions
    frames = store.read("frames")
    assert frames["image_path"].str.ends_with("/001.jpg").sum() == 2
    assert frames["width"].unique().to_list() == [320] and frames["height"].unique().to_list() == [180]
    boxes = store.read("boxes").join(frames.select("frame_uid", "sequence", "frame_index"), on="frame_uid")
    semantics = _semantics_by_sequence(store)
    labels: Counter[str] = Counter()
    for sequence in sequences:
        got = (
            boxes.filter(pl.col("sequence") == sequence.key)
            .select(
                pl.col("frame_index").alias("frame"),
                "track_id",
                pl.col("x1").cast(pl.Int32).alias("x"),
                pl.col("y1").cast(pl.Int32).alias("y"),
                (pl.col("x2") - pl.col("x1")).cast(pl.Int32).alias("w"),
                (pl.col("y2") - pl.col("y1")).cast(pl.Int32).alias("h"),
                pl.col("visibility").cast(pl.Float64).round(2),
            )
            .sort("frame", "track_id")
        )
        assert got.equals(sequence.boxes)
        # the boxes are the world's view-1 boxes, renumbered 1, 2, ... by first appearance
        world_boxes = world.boxes.filter((pl.col("scene") == sequence.scene) & (pl.col("view") == 1))
        assert world_boxes.height == got.height
        number = {t.world_track_id: t.track_id for t in sequence.tracks}
        firsts = world_boxes.group_by("track_id").agg(pl.col("frame").min()).sort("frame", "track_id")
        assert [number[t] for t in firsts["track_id"]] == list(range(1, len(sequence.tracks) + 1))
        rows = semantics[sequence.key]
        assert rows.filter(pl.col("kind") == "summary")["text"].to_list() == [sequence.summary]
        scene_index = next(i for i, s in enumerate(world.scenes) if s.name == sequence.scene)
        assert sequence.summary == language.clip_summary(world, scene_index)
        captions = rows.filter(pl.col("kind") == "track_caption").sort("track_id")
        assert captions.select("track_id", "name", "text").rows() == [
            (t.track_id, t.name, t.caption) for t in sequence.tracks
        ]
        for track in sequence.tracks:
            person = next(p for p in world.scenes[scene_index].people if p.track_id == track.world_track_id)
            assert track.caption == language.track_caption(world, scene_index, person)
            assert person.upper in track.caption and person.lower in track.caption
            assert ("stands still" in track.caption) == person.static
        pairs = rows.filter(pl.col("kind") == "interaction").sort("track_id", "other_track_id", "name")
        assert pairs.select("track_id", "other_track_id", "name").rows() == sequence.interactions
        world_pairs = {(i.source, i.target, i.label) for i in language.interactions(world, scene_index)}
        assert {(number[s], number[d], label) for s, d, label in world_pairs} == set(sequence.interactions)
        labels.update(label for _, _, label in sequence.interactions)
        assert rows["source"].unique().to_list() == ["gt"]
    assert labels == {"pass.v.01": 4, "approach.v.01": 3, "accompany.v.02": 2}


def test_bensmot_combined_jsons_give_the_same_semantics(bensmot_world, tmp_path):
    """Without the per-sequence files, the authors' combined JSONs carry the same captions and relations."""
    _, out = bensmot_world
    copy = tmp_path / "bensmot"
    shutil.copytree(out / "bensmot", copy)
    for name in ("video_caption.txt", "instance_captions.txt", "interactions.graphml"):
        for path in copy.rglob(name):
            path.unlink()
    assert detect_format(copy) == "bensmot"
    full = convert("bensmot", out / "bensmot", tmp_path / "full", show_progress=False).store
    combined = convert("bensmot", copy, tmp_path / "combined", show_progress=False).store
    want = full.read("semantics").with_columns(
        pl.when(pl.col("kind") == "track_caption").then(None).otherwise(pl.col("name")).alias("name")
    )
    assert combined.read("semantics").sort("semantic_uid").equals(want.sort("semantic_uid"))
    assert combined.read("boxes").equals(full.read("boxes"))


def test_bensmot_graphml_nodes_fall_back_to_document_order(tmp_path):
    """Node names unknown to the captions: nodes are numbered 1, 2, ... in the order they are written."""
    seq = tmp_path / "bensmot" / "test" / "walking" / "seq01"
    (seq / "gt").mkdir(parents=True)
    (seq / "gt" / "gt.txt").write_text("1,1,0,0,5,10,1,1,1\n1,2,9,0,5,10,1,1,1\n")
    (seq / "instance_captions.txt").write_text("woman0: A woman.\nman0: A man.\n")
    (seq / "interactions.graphml").write_text(
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<key id="k" for="node" attr.name="name"/><key id="r" for="edge" attr.name="relation"/>'
        '<graph><node id="n0"><data key="k">lady0</data></node><node id="n1"/>'
        '<edge source="n1" target="n0"><data key="r">.Talk.v.02, hold.v.01</data></edge></graph></graphml>'
    )
    store = convert("bensmot", tmp_path / "bensmot", tmp_path / "s", show_progress=False).store
    pairs = store.read("semantics").filter(pl.col("kind") == "interaction")
    assert sorted(pairs.select("track_id", "other_track_id", "name").rows()) == [
        (2, 1, "hold.v.01"),
        (2, 1, "talk.v.02"),
    ]
    assert store.read("sequences")["split"].to_list() == ["test"]


def test_info_json_shows_the_semantics(bensmot_world, tmp_path):
    _, out = bensmot_world
    args = ["convert", "auto", str(out / "bensmot"), "--out", str(tmp_path / "s"), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    info = runner.invoke(app, ["info", str(tmp_path / "s"), "--json"])
    payload = json.loads(info.stdout)
    assert payload["semantics"] == 29 and payload["tracks"] == 18 and payload["sequences"] == 2


# --- synthetic language --------------------------------------------------------------------------


def test_language_is_deterministic_and_varied(small_world):
    world, _ = small_world
    again = generate_world(SMALL_WORLD)
    for s, scene in enumerate(world.scenes):
        assert language.clip_summary(world, s) == language.clip_summary(again, s)
        for person in scene.people:
            first = language.person_captions(world, s, person, 3)
            assert first == language.person_captions(again, s, person, 3)
            assert len(set(first)) == 3
            assert language.person_captions(world, s, person, 3, image=1) != first
    assert language.with_article("orange coat") == "an orange coat"
    assert language.number_word(7) == "seven" and language.number_word(40) == "40"


def test_interaction_rules_follow_the_geometry(bensmot_world):
    world, _ = bensmot_world
    found = [(s, item) for s in range(len(world.scenes)) for item in language.interactions(world, s)]
    assert {item.label for _, item in found} == set(language.INTERACTION_LABELS)
    by_pair = {(s, item.source, item.target): item.label for s, item in found}
    for (s, src, dst), label in by_pair.items():
        people = {p.track_id: p for p in world.scenes[s].people}
        if label in (language.ACCOMPANY, language.PASS):  # symmetric relations come in both directions
            assert by_pair[(s, dst, src)] == label
            assert not people[src].static and not people[dst].static
        else:
            assert not people[src].static


# --- malformed input ------------------------------------------------------------------------------

MALFORMED = {
    "cuhk_pedes_truncated_json": (
        "cuhk-pedes",
        "reid_raw.json",
        3,
        "truncated JSON: this record is not closed",
    ),
    "cuhk_pedes_no_captions": ("cuhk-pedes", "reid_raw.json", 8, '"captions" is None, not a list of strings'),
    "icfg_pedes_bad_id": ("icfg-pedes", "ICFG-PEDES.json", 3, "\"id\" is 'abc', not a non-negative integer"),
    "icfg_pedes_invalid_json": ("icfg-pedes", "ICFG-PEDES.json", 4, "invalid JSON"),
    "rstpreid_unknown_image": ("rstpreid", "data_captions.json", 3, "unknown image '0001_c1_0001.jpg'"),
    "rstpreid_captions_not_list": ("rstpreid", "data_captions.json", 3, "not a list of strings"),
    "synth_pedes_bad_attributes": (
        "synth-pedes",
        "synthpedes_dataset.json",
        3,
        '"attributes" has 3 values, not 6',
    ),
    "bensmot_bad_graphml": ("bensmot", "train/walking/seq01/interactions.graphml", 7, "malformed XML"),
    "bensmot_caption_no_name": (
        "bensmot",
        "train/walking/seq01/instance_captions.txt",
        2,
        "no '<name>:' at the start of the line",
    ),
    "bensmot_unknown_node": (
        "bensmot",
        "train/walking/seq01/interactions.graphml",
        10,
        "edge end 'ghost0' is not a node",
    ),
    "bensmot_bad_relation": ("bensmot", "relation.json", 4, "'2to1'"),
}


def test_bensmot_rows_of_frames_without_an_image_are_left_out_and_listed(tmp_path):
    """SMOTer's tools/convert_bensmot2coco.py reads only the frames that have an image (it loops over
    ``imgs/`` and picks the gt rows of each); the reader does the same and lists the rows it left out."""
    source = TEST_DATA / "malformed" / "bensmot_frame_without_image"
    result = convert("bensmot", source, tmp_path / "s", show_progress=False)
    store = result.store
    frames = store.read("frames")
    assert frames["frame_index"].sort().to_list() == [1, 2]  # the images 001.jpg, 002.jpg
    assert store.read("boxes").height == 2
    gt = source / "train" / "walking" / "seq01" / "gt" / "gt.txt"
    assert result.skipped_rows == 1
    assert store.manifest["problems"]["examples"] == [
        f"{gt}:3: frame 3 has no image in {gt.parent.parent / 'imgs'} (expected an image per frame)"
    ]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_names_file_and_line_and_leaves_nothing(case, tmp_path):
    fmt, file, line, problem = MALFORMED[case]
    check_malformed(fmt, case, file, line, problem, tmp_path)
