"""Detection (CityPersons, COCO) and ReID (Market-1501, DukeMTMC-reID, MSMT17) readers.

Each format: synthetic world -> native files -> store equals the world's truth exactly; ``convert auto``
recognises it; malformed input names its file and line and leaves no store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest
from conftest import SMALL_WORLD, TEST_DATA, check_malformed
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.convert import convert
from omnipt_data.readers import ReadOptions, detect_format
from omnipt_data.store import Store
from omnipt_data.synth import WorldConfig, synthesize
from omnipt_data.synth.formats.citypersons import IGNORE_BELOW, walking_label
from omnipt_data.synth.formats.coco import keypoints
from omnipt_data.synth.formats.market1501 import (
    DISTRACTOR,
    JUNK,
    MIN_VISIBILITY,
    PERSON,
    market_images,
    market_name,
)
from omnipt_data.synth.formats.msmt17 import msmt17_images

runner = CliRunner()
FORMATS = ("citypersons", "coco", "market1501", "dukemtmc", "msmt17")
EVERY = 8  # the detection writers sample frames 1, 9, 17, ...
CORNERS = ("x1", "y1", "x2", "y2")
VISIBLE = ("vis_x1", "vis_y1", "vis_x2", "vis_y2")


def _sampled_truth(world) -> pl.DataFrame:
    """The world's boxes on the sampled frames of every view, of people with something visible."""
    return world.boxes.filter(((pl.col("frame") - 1) % EVERY == 0) & pl.col("vis_x1").is_not_null())


def _convert(fmt: str, source: Path, out: Path, **options) -> Store:
    return convert(fmt, source, out, options=ReadOptions(**options), show_progress=False).store


def _boxes_with_frames(store: Store) -> pl.DataFrame:
    frames = store.read("frames").select("frame_uid", "split", "sequence", "image_path", "width", "height")
    return (
        store.read("boxes")
        .join(frames, on="frame_uid")
        .with_columns(rank=pl.col("box_uid").str.extract(r"/gt/(\d+)$").cast(pl.Int64))
    )


# --- CityPersons -------------------------------------------------------------------------------------


def _citypersons_truth(world) -> pl.DataFrame:
    """What the CityPersons files must say, from the world's boxes and CityPersons' labelling rules."""
    scene_index = {scene.name: s for s, scene in enumerate(world.scenes)}
    rows = []
    for r in _sampled_truth(world).iter_rows(named=True):
        if r["visibility"] < IGNORE_BELOW:
            label = "ignore"
        elif r["static"]:
            label = "sitting person"
        else:
            label = walking_label(SMALL_WORLD.seed, scene_index[r["scene"]], r["track_id"])
        full = (r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"])
        visible = (r["vis_x1"], r["vis_y1"], r["vis_x2"], r["vis_y2"])
        rows.append(
            {
                "scene": r["scene"],
                "view": r["view"],
                "frame": r["frame"],
                "track_id": r["track_id"],
                "category": label,
                # CityPersons: the full box for pedestrians and riders, the visible box otherwise
                **dict(zip(CORNERS, full if label in ("pedestrian", "rider") else visible, strict=True)),
                **dict(zip(VISIBLE, visible, strict=True)),
                "ignore": label == "ignore",
            }
        )
    return (
        pl.DataFrame(rows)
        .with_columns(rank=pl.int_range(pl.len()).over("scene", "view", "frame"))
        .with_columns(pl.col(c).cast(pl.Float64) for c in (*CORNERS, *VISIBLE))
    )


def test_citypersons_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = _convert("citypersons", out / "citypersons", tmp_path / "store")
    boxes = _boxes_with_frames(store)
    name = r"(SYN-\d+)_(\d{6})_(\d{6})_leftImg8bit\.png$"
    got = boxes.select(
        pl.col("image_path").str.extract(name, 1).alias("scene"),
        pl.col("image_path").str.extract(name, 2).cast(pl.Int32).alias("view"),
        pl.col("image_path").str.extract(name, 3).cast(pl.Int32).alias("frame"),
        "rank",
        "category",
        *CORNERS,
        *VISIBLE,
        "ignore",
    ).sort("scene", "view", "frame", "rank")
    want = _citypersons_truth(world).sort("scene", "view", "frame", "rank")
    assert got.height == want.height == 47
    assert got.equals(want.select(got.columns))
    assert dict(got["category"].value_counts().iter_rows()) == {
        "pedestrian": 26,
        "rider": 9,
        "person (other)": 6,
        "sitting person": 4,
        "ignore": 2,
    }
    # class ids are CityPersons' (0 ignore .. 5 group); the instance id rides in extra
    ids = dict(boxes.select("category", "class_id").unique().iter_rows())
    assert ids == {"ignore": 0, "pedestrian": 1, "rider": 2, "sitting person": 3, "person (other)": 4}
    extras = [json.loads(e) for e in boxes.sort("box_uid")["extra"]]
    assert all(set(e) == {"instanceId"} for e in extras)
    assert boxes["source"].unique().to_list() == ["gt"] and boxes["track_id"].null_count() == boxes.height
    # one pseudo-sequence per split and city (scene), one frame per JSON file, sizes from the JSON
    sequences = store.read("sequences").sort("sequence_uid")
    assert sequences["sequence_uid"].to_list() == [
        "citypersons/train/SYN-01",
        "citypersons/train/SYN-02",
        "citypersons/val/SYN-03",
    ]
    frames = store.read("frames")
    assert frames.height == SMALL_WORLD.scenes * SMALL_WORLD.views * 3 == 18
    assert sequences["length"].to_list() == [6, 6, 6]
    assert frames["width"].unique().to_list() == [SMALL_WORLD.width]
    assert all(store.image_path("citypersons", p).is_file() for p in frames["image_path"])


def test_citypersons_labels_ignore_regions_and_layouts(tmp_path):
    """All six labels, a file without bboxVis, and SRC given at every level of the official layout."""
    city = tmp_path / "cp" / "gtBboxCityPersons" / "val" / "lindau"
    city.mkdir(parents=True)
    labels = ["ignore", "pedestrian", "rider", "sitting person", "person (other)", "person group"]
    objects = [
        {"label": label, "bbox": [10 * k, 20, 5, 12], "bboxVis": [10 * k, 22, 5, 10], "instanceId": k}
        for k, label in enumerate(labels)
    ]
    objects.append({"label": "pedestrian", "bbox": [1, 2, 3, 4], "instanceId": 9, "note": "x"})
    record = {"imgWidth": 2048, "imgHeight": 1024, "objects": objects}
    (city / "lindau_000000_000019_gtBboxCityPersons.json").write_text(json.dumps(record, indent=4))
    for source in (tmp_path / "cp", city.parent.parent, city.parent, city):
        assert detect_format(source) == "citypersons"
        store = _convert("citypersons", source, tmp_path / f"s-{source.name}")
        boxes = store.read("boxes").sort("box_uid")
        assert boxes["category"].to_list() == [*labels, "pedestrian"]
        assert boxes["class_id"].to_list() == [0, 1, 2, 3, 4, 5, 1]
        assert boxes["ignore"].to_list() == [True, False, False, False, False, True, False]
        assert (boxes["y1"][1], boxes["y2"][1], boxes["vis_y1"][1], boxes["vis_y2"][1]) == (20, 32, 22, 32)
        assert boxes["vis_x1"][6] is None and json.loads(boxes["extra"][6]) == {"instanceId": 9, "note": "x"}
        frame = store.read("frames").row(0, named=True)
        assert frame["image_path"] == "leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png"
        assert (frame["split"], frame["sequence"], frame["width"], frame["height"]) == (
            "val",
            "lindau",
            2048,
            1024,
        )
        assert store.manifest["image_roots"]["citypersons"] == str((tmp_path / "cp").resolve())


# --- COCO --------------------------------------------------------------------------------------------


def _coco_got(store: Store) -> pl.DataFrame:
    boxes = _boxes_with_frames(store)
    name = r"(SYN-\d+)_View(\d+)_(\d{6})\.jpg$"
    return boxes.select(
        pl.col("image_path").str.extract(name, 1).alias("scene"),
        pl.col("image_path").str.extract(name, 2).cast(pl.Int32).alias("view"),
        pl.col("image_path").str.extract(name, 3).cast(pl.Int32).alias("frame"),
        "rank",
        "category",
        "class_id",
        *CORNERS,
        "ignore",
        "extra",
        "width",
        "split",
    ).sort("scene", "view", "frame", "rank")


def test_coco_store_equals_the_world(small_world, tmp_path, capsys):
    world, out = small_world
    store = _convert("coco", out / "coco", tmp_path / "store")
    assert capsys.readouterr().out == ""  # the reader prints nothing
    got = _coco_got(store)
    truth = _sampled_truth(world).sort("scene", "view", "frame", "track_id")
    assert got.height == truth.height == 47
    want = truth.select(
        "scene",
        "view",
        "frame",
        pl.int_range(pl.len()).over("scene", "view", "frame").alias("rank"),
        pl.lit("person").alias("category"),
        pl.lit(1, pl.Int16).alias("class_id"),
        pl.col("x").cast(pl.Float64).alias("x1"),
        pl.col("y").cast(pl.Float64).alias("y1"),
        (pl.col("x") + pl.col("w")).cast(pl.Float64).alias("x2"),
        (pl.col("y") + pl.col("h")).cast(pl.Float64).alias("y2"),
        pl.col("static").alias("ignore"),  # standing people are crowd regions
    )
    assert got.select(want.columns).equals(want)
    assert got["ignore"].sum() == 4
    # the folder holds instances_* and person_keypoints_*: the keypoint files were read
    for extra, row in zip(got["extra"], truth.iter_rows(named=True), strict=True):
        extra = json.loads(extra)
        assert set(extra) == {"area", "id", "image_id", "iscrowd", "keypoints", "num_keypoints"}
        points, count = keypoints(row, SMALL_WORLD.width, SMALL_WORLD.height)
        if row["static"]:
            points, count = [0] * 51, 0
        assert (extra["keypoints"], extra["num_keypoints"], extra["iscrowd"]) == (
            points,
            count,
            row["static"],
        )
        assert extra["area"] == (row["vis_x2"] - row["vis_x1"]) * (row["vis_y2"] - row["vis_y1"])
    assert sum(json.loads(e)["num_keypoints"] for e in got["extra"]) == 701
    sequences = store.read("sequences").sort("sequence")
    assert sequences.select("sequence_uid", "length").rows() == [
        ("coco/train/train2017", 12),
        ("coco/val/val2017", 6),
    ]
    frames = store.read("frames")
    assert frames.height == 18 and frames["width"].unique().to_list() == [SMALL_WORLD.width]
    assert all(store.image_path("coco", p).is_file() for p in frames["image_path"])
    # one instances file on its own: the same person boxes, no keypoints, the bags left out
    val = _convert("coco", out / "coco" / "annotations" / "instances_val2017.json", tmp_path / "val")
    instances = json.loads((out / "coco" / "annotations" / "instances_val2017.json").read_text())
    bags = [a for a in instances["annotations"] if a["category_id"] != 1]
    assert len(bags) == 13 and {a["category_id"] for a in bags} == {27, 31}
    val_got = _coco_got(val)
    assert val_got.height == 25 == got.filter(pl.col("split") == "val").height
    assert val_got.drop("extra").equals(got.filter(pl.col("split") == "val").drop("extra"))
    assert all("keypoints" not in json.loads(e) for e in val_got["extra"])


def test_coco_person_subset_crowds_and_other_categories(tmp_path):
    """Images without a person are left out; crowds are ignore regions; a `pedestrian` category counts."""
    data = {
        "images": [
            {"id": 5, "file_name": "a.jpg", "width": 64, "height": 48},
            {"id": 7, "file_name": "b.jpg", "width": 64, "height": 48},
            {"id": 9, "file_name": "c.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 1, "area": 9},
            {"id": 3, "image_id": 9, "category_id": 1, "bbox": [3.5, 4, 10, 20], "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "pedestrian"}, {"id": 3, "name": "car"}],
    }
    path = tmp_path / "city_val.json"
    path.write_text(json.dumps(data))
    assert detect_format(path) == "coco"
    store = _convert("coco", path, tmp_path / "s")
    frames = store.read("frames").sort("frame_index")
    assert frames.select("frame_index", "image_path", "split", "sequence").rows() == [
        (1, "city_val/b.jpg", "val", "city_val"),
        (2, "city_val/c.jpg", "val", "city_val"),
    ]
    boxes = store.read("boxes").sort("box_uid")
    assert boxes.select("category", "x1", "y1", "x2", "y2", "ignore").rows() == [
        ("pedestrian", 1.0, 2.0, 11.0, 22.0, True),
        ("pedestrian", 3.5, 4.0, 13.5, 24.0, False),
    ]
    assert json.loads(boxes["extra"][0]) == {"area": 9, "id": 2, "image_id": 7, "iscrowd": 1}


def test_coco_rows_keep_every_annotation_field(tmp_path):
    """Boxes follow the images' order, then the file's; `extra` is each annotation's own sorted-key JSON,
    whatever keys it has; with both a `person` and a `pedestrian` category, the images of either are kept."""
    marker = "\x00"  # the reader splits one dump of all annotations at this string's JSON
    annotations = [
        {
            "id": 1,
            "image_id": "b",
            "category_id": 1,
            "bbox": [1, 2, 3, 4],
            "iscrowd": 0,
            "segmentation": [[1, 2]],
        },
        {"id": 2, "image_id": 8, "category_id": 3, "bbox": [0.5, 0, 2, 2], "keypoints": [1, 2, 2], "é": None},
        {"id": 3, "image_id": "b", "category_id": 3, "bbox": [0, 0, 0, 0], "iscrowd": True, "z": [marker, 1]},
        {"id": 4, "image_id": 8, "category_id": 2, "bbox": "not read: a car"},
        {
            "id": "x",
            "image_id": 8,
            "category_id": 1,
            "bbox": [5, 6, 7, 8],
            "iscrowd": 1.0,
            "a": {"y": 1, "b": 0.1},
        },
        {
            "id": 6,
            "image_id": 9,
            "category_id": 1,
            "bbox": [9, 9, 1e20, 1],
            "segmentation": {"counts": "a\\b"},
        },
    ]
    data = {
        "images": [{"id": k, "file_name": f"{k}.jpg", "width": 64, "height": 48} for k in (8, "b", 9, 10)],
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "person"},
            {"id": 2, "name": "car"},
            {"id": 3, "name": "pedestrian"},
        ],
    }
    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps(data))
    store = _convert("coco", path, tmp_path / "s")
    frames = store.read("frames").sort("frame_index")
    assert frames.select("frame_index", "image_path").rows() == [
        (1, "val/8.jpg"),
        (2, "val/b.jpg"),
        (3, "val/9.jpg"),
    ]
    boxes = store.read("boxes").sort("box_uid")
    order = [annotations[k] for k in (1, 4, 0, 2, 5)]  # image 8, then b, then 9; the file's order in each
    assert boxes["box_uid"].to_list() == [
        f"coco/val/val#{f}/gt/{k}" for f, k in ((1, 0), (1, 1), (2, 0), (2, 1), (3, 0))
    ]
    assert boxes.select("category", "class_id", "x1", "y1", "x2", "y2", "ignore").rows() == [
        (
            "person" if a["category_id"] == 1 else "pedestrian",
            a["category_id"],
            float(a["bbox"][0]),
            float(a["bbox"][1]),
            float(a["bbox"][0] + a["bbox"][2]),
            float(a["bbox"][1] + a["bbox"][3]),
            a.get("iscrowd", 0) == 1,
        )
        for a in order
    ]
    dropped = ("bbox", "category_id", "segmentation")
    assert boxes["extra"].to_list() == [
        orjson.dumps({k: v for k, v in a.items() if k not in dropped}, option=orjson.OPT_SORT_KEYS).decode()
        for a in order
    ]


def test_coco_typed_decoding_gives_the_checked_rows(small_world, tmp_path, monkeypatch):
    """A file with COCO's own keys only and nothing to report is decoded straight into typed records; its
    rows are those of the checking path, value for value. A key COCO does not define takes that path."""
    from omnipt_data.readers import coco

    _, out = small_world
    folder = tmp_path / "coco"
    shutil.copytree(out / "coco", folder)
    extra = {  # string and int ids, a null keypoints, int and float areas, no iscrowd, an RLE mask
        "images": [
            {"id": "p", "file_name": "p.jpg", "width": 64, "height": 48, "license": 3},
            {"id": 2, "file_name": "q.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 1, "image_id": "p", "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "keypoints": None},
            {
                "id": "b",
                "image_id": 2,
                "category_id": 1,
                "bbox": [0.5, 1, 2, 2],
                "area": 4.0,
                "iscrowd": 1,
                "segmentation": {"counts": "a\\b", "size": [48, 64]},
                "num_keypoints": 0,
            },
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 1, 1]},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
        "info": {"year": 2017},
    }
    path = folder / "annotations" / "instances_extra.json"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(extra, option=orjson.OPT_INDENT_2))
    files = sorted(folder.glob("annotations/*.json"))
    assert len(files) == 5 and all(coco._typed_persons(f.read_bytes(), None) is not None for f in files)
    typed = _convert("coco", folder, tmp_path / "typed")
    with monkeypatch.context() as patch:
        patch.setattr(coco, "_typed_persons", lambda raw, folder: None)
        checked = _convert("coco", folder, tmp_path / "checked")
    for table in ("sequences", "frames", "boxes"):
        assert typed.read(table).equals(checked.read(table)), table
    boxes = typed.read("boxes").filter(pl.col("frame_uid").str.starts_with("coco/train/extra#"))
    assert boxes["extra"].to_list() == [
        '{"area":12,"id":1,"image_id":"p","keypoints":null}',
        '{"area":4.0,"id":"b","image_id":2,"iscrowd":1,"num_keypoints":0}',
    ]
    extra["annotations"][0]["attributes"] = {"occluded": True}
    assert coco._typed_persons(orjson.dumps(extra), None) is None


# --- Market-1501 and DukeMTMC-reID -------------------------------------------------------------------


def _clipped_size(row: dict) -> tuple[int, int]:
    width = min(row["x"] + row["w"], SMALL_WORLD.width) - max(row["x"], 0)
    height = min(row["y"] + row["h"], SMALL_WORLD.height) - max(row["y"], 0)
    return width, height


def _truth_rows(world) -> dict[tuple[str, int, int, int], dict]:
    return {(r["scene"], r["view"], r["frame"], r["track_id"]): r for r in world.boxes.iter_rows(named=True)}


SPLITS = {
    "bounding_box_train": "train",
    "bounding_box_test": "gallery",
    "query": "query",
    "gt_bbox": "gt_bbox",
}


def test_market1501_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = _convert("market1501", out / "market1501", tmp_path / "store")
    got = store.read("identities").sort("image_uid")
    truth = _truth_rows(world)
    rows = []
    for image in market_images(world):
        crop = image.crop
        if crop.kind == PERSON:
            row = truth[(crop.scene, crop.view, crop.frame, crop.track_id)]
            assert row["visibility"] >= MIN_VISIBILITY
            size = _clipped_size(row)
        elif crop.kind == JUNK:
            row = truth[(crop.scene, crop.view, crop.frame, crop.track_id)]
            size = (row["vis_x2"] - row["vis_x1"], row["vis_y2"] - row["vis_y1"])
        else:
            size = crop.size
        split = SPLITS[image.folder]
        rows.append(
            {
                "image_uid": f"market1501/{split}/{market_name(image)}",
                "person_uid": f"market1501/{image.pid}",
                "split": split,
                "pid": image.pid,
                "camera": crop.view,
                "sequence": f"s{crop.scene_index + 1}",
                "frame_index": crop.frame,
                "image_path": f"{image.folder}/{market_name(image)}",
                "width": size[0],
                "height": size[1],
                "junk": crop.kind == JUNK,
                "distractor": crop.kind == DISTRACTOR,
            }
        )
    want = pl.DataFrame(rows).sort("image_uid")
    assert got.height == want.height == 142
    assert got.select(want.columns).equals(want.cast(dict(got.select(want.columns).schema)))
    assert dict(got["split"].value_counts().iter_rows()) == {
        "train": 29,
        "gt_bbox": 68,
        "query": 13,
        "gallery": 32,
    }
    assert (got["junk"].sum(), got["distractor"].sum()) == (2, 4)
    # a person keeps one pid across cameras and splits; train and test identities do not mix
    owners: dict[int, set] = {}
    for image in market_images(world):
        if image.crop.kind == PERSON:
            owners.setdefault(image.pid, set()).add((image.crop.scene, image.crop.track_id))
    assert len(owners) == 13 and all(len(people) == 1 for people in owners.values())
    people = got.filter(~pl.col("junk") & ~pl.col("distractor"))
    assert set(people["pid"]) == set(owners)
    test_pids = set(people.filter(pl.col("split").is_in(["query", "gallery"]))["pid"])
    assert test_pids.isdisjoint(people.filter(pl.col("split") == "train")["pid"])
    assert store.manifest["counts"]["persons"] == 15  # 13 people + the junk and distractor uids
    assert all(store.image_path("market1501", p).is_file() for p in got["image_path"])


def test_dukemtmc_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = _convert("dukemtmc", out / "dukemtmc", tmp_path / "store")
    got = store.read("identities")
    truth = _truth_rows(world)
    rows = []
    for image in market_images(world, with_extras=False):
        crop = image.crop
        width, height = _clipped_size(truth[(crop.scene, crop.view, crop.frame, crop.track_id)])
        rows.append(
            (SPLITS[image.folder], f"dukemtmc/{image.pid}", image.pid, crop.view, crop.frame, width, height)
        )
    columns = ["split", "person_uid", "pid", "camera", "frame_index", "width", "height"]
    assert sorted(got.select(columns).rows()) == sorted(rows)
    assert got.height == 68 and got["sequence"].null_count() == 68  # Duke names carry no sequence
    assert not got["junk"].any() and not got["distractor"].any()
    assert dict(got["split"].value_counts().iter_rows()) == {"train": 29, "query": 13, "gallery": 26}


# --- MSMT17 ------------------------------------------------------------------------------------------


def test_msmt17_store_equals_the_world(small_world, tmp_path):
    world, out = small_world
    store = _convert("msmt17", out / "msmt17", tmp_path / "store")
    got = store.read("identities")
    truth = _truth_rows(world)
    rows = []
    for image in msmt17_images(world):
        crop = image.crop
        width, height = _clipped_size(truth[(crop.scene, crop.view, crop.frame, crop.track_id)])
        rows.append(
            (
                f"msmt17/{image.list_name}/{image.relative}",
                f"msmt17/{image.folder}/{image.pid}",
                image.list_name,
                image.pid,
                crop.view,
                f"03{crop.scene_index + 1:02d}morning",
                f"{image.folder}/{image.relative}",
                width,
                height,
            )
        )
    columns = [
        "image_uid",
        "person_uid",
        "split",
        "pid",
        "camera",
        "sequence",
        "image_path",
        "width",
        "height",
    ]
    assert sorted(got.select(columns).rows()) == sorted(rows)
    assert got.height == 68
    assert dict(got["split"].value_counts().iter_rows()) == {
        "train": 23,
        "val": 6,
        "query": 13,
        "gallery": 26,
    }
    # pids restart at 0 in test/: the person uid says which folder's numbering it is
    assert got["person_uid"].n_unique() == 13 and got["pid"].min() == 0
    assert set(got.filter(pl.col("split") == "val")["person_uid"]) <= set(
        got.filter(pl.col("split") == "train")["person_uid"]
    )
    assert got["frame_index"].null_count() == 68 and not got["junk"].any() and not got["distractor"].any()
    # the V2 layout (mask_train_v2/, mask_test_v2/) reads the same
    v2 = tmp_path / "msmt17" / "MSMT17_V2"
    shutil.copytree(out / "msmt17" / "MSMT17_V1", v2)
    (v2 / "train").rename(v2 / "mask_train_v2")
    (v2 / "test").rename(v2 / "mask_test_v2")
    assert detect_format(tmp_path / "msmt17") == "msmt17"
    again = _convert("msmt17", tmp_path / "msmt17", tmp_path / "v2store").read("identities")
    assert again.height == 68
    assert again["image_path"].str.starts_with("mask_").all()
    assert again.drop("image_path").sort("image_uid").equals(got.drop("image_path").sort("image_uid"))


# --- every format: auto detection, the CLI, worlds without rendered frames ----------------------------


def test_convert_auto_recognises_every_format(small_world, tmp_path):
    _, out = small_world
    nested = {
        "citypersons": out / "citypersons" / "gtBbox_cityPersons_trainval" / "gtBboxCityPersons",
        "coco": out / "coco" / "annotations" / "person_keypoints_val2017.json",
        "market1501": out / "market1501" / "Market-1501-v15.09.15" / "query",
        "dukemtmc": out / "dukemtmc" / "DukeMTMC-reID",
        "msmt17": out / "msmt17" / "MSMT17_V1" / "list_gallery.txt",
    }
    for fmt in FORMATS:
        assert detect_format(out / fmt) == fmt
        assert detect_format(nested[fmt]) == fmt
        result = runner.invoke(app, ["convert", "auto", str(out / fmt), "--out", str(tmp_path / fmt), "-q"])
        assert result.exit_code == 0, result.output
        assert "creating index" not in result.output and "wrote" not in result.output  # -q: nothing to say
        assert Store.open(tmp_path / fmt).manifest["reader"]["name"] == fmt


def test_worlds_without_rendered_frames(tmp_path):
    """Without frames: no ReID crops can exist, so Market/Duke write nothing; the rest still converts."""
    config = WorldConfig(seed=3, scenes=2, frames=10, width=160, height=96)
    synthesize(tmp_path / "w", config, formats=FORMATS, render=False)
    assert not (tmp_path / "w" / "market1501").exists() and not (tmp_path / "w" / "dukemtmc").exists()
    identities = _convert("msmt17", tmp_path / "w" / "msmt17", tmp_path / "m").read("identities")
    assert identities.height > 0 and identities["width"].null_count() == identities.height
    for fmt in ("citypersons", "coco"):
        store = _convert(fmt, tmp_path / "w" / fmt, tmp_path / fmt)
        assert store.read("frames")["width"].unique().to_list() == [160]  # from the annotation files


# --- malformed input ---------------------------------------------------------------------------------

CITY_FILE = "gtBboxCityPersons/train/aachen/aachen_000000_000020_gtBboxCityPersons.json"
COCO_FILE = "annotations/instances_val2017.json"
MALFORMED = {
    "citypersons_truncated_json": ("citypersons", CITY_FILE, 9, "invalid JSON at column 13"),
    "citypersons_bad_bbox": ("citypersons", CITY_FILE, 21, "objects[1] (column 9): bbox is [10, 20, 30]"),
    "citypersons_unknown_label": ("citypersons", CITY_FILE, 5, "unknown label 'car'"),
    "coco_truncated_json": ("coco", COCO_FILE, 25, "invalid JSON at column 1"),
    "coco_negative_size": ("coco", COCO_FILE, 30, "annotations[1] (column 3): bbox has a negative size"),
    "coco_unknown_image_id": ("coco", COCO_FILE, 30, "image_id 99 is not in images"),
    "coco_missing_image": ("coco", COCO_FILE, 9, "images[1] (column 3): no image 000000000002.jpg"),
    "market1501_bad_name": (
        "market1501",
        "bounding_box_train/0002_c1_000451.jpg",
        None,
        "file name '0002_c1_000451.jpg' does not parse",
    ),
    "dukemtmc_no_frame": ("dukemtmc", "query/0005_c3.jpg", None, "file name '0005_c3.jpg' does not parse"),
    "msmt17_one_field": ("msmt17", "list_train.txt", 2, "1 field(s) instead of 2"),
    "msmt17_non_integer_pid": ("msmt17", "list_train.txt", 2, "pid 'abc' is not an integer"),
    "msmt17_no_camera": ("msmt17", "list_train.txt", 2, "image name '0001_000.jpg' has no camera field"),
    "msmt17_missing_image": ("msmt17", "list_train.txt", 2, "no image 0001/0001_000_02_0303noon_0007_1.jpg"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_names_file_and_line_and_leaves_nothing(case, tmp_path):
    fmt, file, line, problem = MALFORMED[case]
    assert detect_format(TEST_DATA / "malformed" / case) == fmt
    result = check_malformed(fmt, case, file, line, problem, tmp_path)
    counts = result.store.manifest["counts"]
    assert counts["frames"] + counts["identities"] == (0 if case == "coco_truncated_json" else 1)
