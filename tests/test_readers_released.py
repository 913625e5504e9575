"""Every reader family against files as their authors released them, or as the authors' loaders read them.

Released files (``tests/data/real/released``, see PROVENANCE.md): a SportsMOT sequence, a CrowdHuman
record and CityPersons' ``anno_val.mat``; the expected figures are computed here from the raw files.
For the families whose files sit on drives no test can reach, each test writes a small dataset exactly
as the authors' loader reads it, and computes what that loader would make of it with the loader's own
rules, cited by repository and file; the store must say the same.
"""

from __future__ import annotations

import configparser
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from omnipt_data.convert import convert
from omnipt_data.readers import ReadOptions, detect_format
from omnipt_data.store import Store


def _convert(fmt: str, source: Path, out: Path, **options) -> Store:
    return convert(fmt, source, out, options=ReadOptions(**options), show_progress=False).store


def _images(root: Path, names: list[str], size: tuple[int, int]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (90, 120, 150)).save(path)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _boxes_with_frames(store: Store) -> pl.DataFrame:
    frames = store.read("frames").select("frame_uid", "sequence", "frame_index", "image_path")
    return store.read("boxes").join(frames, on="frame_uid")


# --- released files ----------------------------------------------------------------------------------


def test_sportsmot_sequence_as_released(fixtures, tmp_path):
    """MCG-NJU/SportsMOT's own ground truth: ', '-separated, track ids from 0, seqinfo.ini without a
    trailing newline."""
    sequence = fixtures / "released" / "sportsmot" / "v_-6Os86HzwCs_c001"
    info = configparser.ConfigParser()
    info.read_string((sequence / "seqinfo.ini").read_text())
    info = info["Sequence"]
    lines = [line for line in (sequence / "gt" / "gt.txt").read_text().splitlines() if line.strip()]
    assert lines[0] == "1, 0, 83, 421, 88, 130, 1, 1, 1"  # the released layout
    rows = [tuple(int(v) for v in line.split(", ")) for line in lines]
    assert {len(r) for r in rows} == {9}
    assert detect_format(sequence) == "mot"
    store = _convert("mot", sequence, tmp_path / "store")

    frames = store.read("frames").sort("frame_index")
    assert frames.height == int(info["seqLength"]) == 825
    assert frames["width"].unique().to_list() == [int(info["imWidth"])] == [1280]
    assert frames["height"].unique().to_list() == [int(info["imHeight"])] == [720]
    assert frames["timestamp"][1] == pytest.approx(1 / float(info["frameRate"]))
    assert frames["image_path"][0] == f"v_-6Os86HzwCs_c001/{info['imDir']}/000001{info['imExt']}"
    assert (frames["dataset"].unique().to_list(), frames["split"].unique().to_list()) == (
        ["sportsmot"],
        ["train"],
    )

    boxes = _boxes_with_frames(store)
    assert boxes.height == len(rows) == 8074
    assert store.manifest["counts"]["tracks"] == len({r[1] for r in rows}) == 10
    assert boxes["track_id"].min() == min(r[1] for r in rows) == 0  # track 0 is kept, not dropped
    got = sorted(
        boxes.select(
            "frame_index",
            "track_id",
            *(pl.col(c).cast(pl.Int64) for c in ("x1", "y1")),
            (pl.col("x2") - pl.col("x1")).cast(pl.Int64),
            (pl.col("y2") - pl.col("y1")).cast(pl.Int64),
        ).rows()
    )
    assert got == sorted(r[:6] for r in rows)
    assert Counter(boxes["frame_index"].to_list()) == Counter(r[0] for r in rows)
    assert boxes["category"].unique().to_list() == ["pedestrian"] and not boxes["ignore"].any()


def test_crowdhuman_record_as_released(fixtures, tmp_path):
    """A CrowdHuman record whose ID holds a comma and whose person boxes have no extra.ignore."""
    folder = fixtures / "released" / "crowdhuman"
    (line,) = (folder / "annotation_train.odgt").read_text().splitlines()
    record = json.loads(line)
    assert "," in record["ID"] and all("ignore" not in b["extra"] for b in record["gtboxes"])
    store = _convert("crowdhuman", folder, tmp_path / "store")
    frame = store.read("frames").row(0, named=True)
    assert store.manifest["counts"]["frames"] == 1
    assert (frame["image_path"], frame["split"]) == (f"Images/{record['ID']}.jpg", "train")
    boxes = store.read("boxes").sort("box_uid")
    assert boxes.height == len(record["gtboxes"]) == 6

    def corners(box: list[float]) -> tuple[float, ...]:
        x, y, w, h = box
        return (x, y, x + w, y + h)

    for row, box in zip(boxes.iter_rows(named=True), record["gtboxes"], strict=True):
        assert (row["x1"], row["y1"], row["x2"], row["y2"]) == corners(box["fbox"])
        assert (row["vis_x1"], row["vis_y1"], row["vis_x2"], row["vis_y2"]) == corners(box["vbox"])
        assert (row["head_x1"], row["head_y1"], row["head_x2"], row["head_y2"]) == corners(box["hbox"])
        assert row["category"] == box["tag"] == "person"
        assert row["ignore"] is (box["tag"] == "mask" or box["extra"].get("ignore") == 1)
        assert json.loads(row["extra"]) == {"extra": box["extra"], "head_attr": box["head_attr"]}


def test_citypersons_mat_as_released(fixtures, tmp_path):
    """The original CityPersons release (cvgroup-njust/CityPersons annotations/anno_val.mat), rows
    ``[class, x1, y1, w, h, instance_id, x1_vis, y1_vis, w_vis, h_vis]`` per annotations/README.txt."""
    from scipy.io import loadmat

    source = fixtures / "released" / "citypersons"
    mat = source / "annotations" / "anno_val.mat"
    cells = loadmat(mat)["anno_val_aligned"].ravel()
    images = []
    for cell in cells:
        record = cell[0, 0]
        bbs = np.asarray(record["bbs"], dtype=float).reshape(-1, 10)
        images.append((str(record["cityname"][0]), str(record["im_name"][0]), bbs))
    names = {
        0: "ignore",
        1: "pedestrian",
        2: "rider",
        3: "sitting person",
        4: "person (other)",
        5: "person group",
    }
    assert detect_format(source) == "citypersons"
    store = _convert("citypersons", source, tmp_path / "store")

    frames = store.read("frames")
    assert frames.height == len(images) == 500
    assert dict(frames.group_by("sequence").len().iter_rows()) == dict(Counter(c for c, _, _ in images))
    assert frames["split"].unique().to_list() == ["val"]
    boxes = _boxes_with_frames(store)
    # 5795 boxes, as the authors' COCO-style evaluation file evaluation/val_gt.json counts them
    assert boxes.height == sum(len(b) for _, _, b in images) == 5795
    want_classes = Counter(names[int(row[0])] for _, _, bbs in images for row in bbs)
    assert dict(boxes.group_by("category").len().iter_rows()) == dict(want_classes)
    assert boxes.filter(pl.col("ignore"))["category"].unique().sort().to_list() == ["ignore", "person group"]
    # every box, corners and visible corners, on its image
    want = Counter(
        (
            f"leftImg8bit/val/{city}/{name}",
            names[int(r[0])],
            *(r[1], r[2], r[1] + r[3], r[2] + r[4]),
            *(r[6], r[7], r[6] + r[8], r[7] + r[9]),
            int(r[5]),
        )
        for city, name, bbs in images
        for r in bbs
    )
    got = Counter(
        boxes.select(
            "image_path",
            "category",
            "x1",
            "y1",
            "x2",
            "y2",
            "vis_x1",
            "vis_y1",
            "vis_x2",
            "vis_y2",
            pl.col("extra").str.json_path_match("$.instanceId").cast(pl.Int64),
        ).rows()
    )
    assert got == want


# --- CRTrack as released: chen-si-jia/CRMOT ------------------------------------------------------------


def test_crtrack_layout_rebuilt_from_the_real_gt_as_the_authors_script_reads_it(fixtures, tmp_path):
    """chen-si-jia/CRMOT CRTracker/src/dataset_util/gen_In-domain_gt_test.py made the released evaluation
    ground truth (tests/data/real/crtrack/gt) from ``images/test/<Scene>_View<k>/gt/gt.txt`` and
    ``labels_with_ids_text/test/tackled_text/<Scene>.txt``: each line split at ':', the ids at ',', a
    view's rows kept when their id (as text) is listed. The released layout is rebuilt here from that
    real output; the script's rule gives the real files back, and the ``crtrack`` reader the same
    referents."""
    released = fixtures / "crtrack" / "gt"
    sentences: dict[str, dict[str, list[str]]] = {}  # sentence -> view -> rows
    for folder in sorted(released.iterdir()):
        views = {p.stem: p.read_text().splitlines() for p in sorted((folder / "gt").glob("View*.txt"))}
        sentences[folder.name.split("_", 1)[1]] = views
    domain = tmp_path / "CRTrack_In-domain"
    for view in ("View1", "View2", "View3"):
        rows = {row for views in sentences.values() for row in views[view]}
        ordered = sorted(rows, key=lambda row: tuple(int(v) for v in row.split(",")[:2]))
        _write(domain, {f"images/test/Gate2_{view}/gt/gt.txt": "\n".join(ordered) + "\n"})
    named = {
        s: sorted({row.split(",")[1] for rows in v.values() for row in rows}) for s, v in sentences.items()
    }
    tackled = "".join(f"Gate2_{sentence}:{','.join(ids)}\n" for sentence, ids in named.items())
    _write(domain, {"labels_with_ids_text/test/tackled_text/Gate2.txt": tackled})

    # the authors' script on the rebuilt layout
    script: dict[tuple[str, str], list[str]] = {}
    for line in tackled.splitlines():
        temp = line.strip()
        data = temp.split(":")
        sence = data[0].split("_")[0]
        ids = data[1].split(",")
        for view in ("View1", "View2", "View3"):
            gt_path = domain / "images" / "test" / f"{sence}_{view}" / "gt" / "gt.txt"
            kept = [row for row in gt_path.read_text().splitlines() if row.strip().split(",")[1] in ids]
            script[data[0].split("_", 1)[1], view] = kept
    for (sentence, view), rows in script.items():  # the released files, line for line (order aside)
        assert sorted(rows) == sorted(sentences[sentence][view])

    assert detect_format(tmp_path) == "crtrack"
    store = _convert("crtrack", tmp_path, tmp_path / "store")
    frames = store.read("frames").select("frame_uid", "view", "frame_index")
    referents = (
        store.read("referents")
        .join(store.read("expressions").select("expression_uid", "sentence"), on="expression_uid")
        .join(frames, on="frame_uid")
    )
    got = Counter(referents.select("sentence", "view", "frame_index", "track_id").rows())
    want = Counter(
        (sentence, view, int(row.split(",")[0]), int(row.split(",")[1]))
        for (sentence, view), rows in script.items()
        for row in rows
    )
    assert got == want and sum(want.values()) == 9032
    assert store.manifest["counts"]["tracks"] == 5 and store.read("sequences")[
        "sequence"
    ].unique().to_list() == ["Gate2"]


# --- Refer-KITTI (-V2): wudongming97/RMOT, zyn213/TempRMOT ---------------------------------------------

KITTI_SIZE = (1242, 375)


@pytest.mark.parametrize("fmt", ["refer-kitti", "refer-kitti-v2"])
def test_refer_kitti_as_the_rmot_loader_reads_it(fmt, tmp_path):
    """Labels written as wudongming97/RMOT tools/gen_track_id_from_kitti.py writes them
    (``'0 {:d} {:.6f} {:.6f} {:.6f} {:.6f}'``, the top-left corner and size over the image size),
    expressions as zyn213/TempRMOT datasets/README.md shows them (ids as strings, ``raw_sentence`` for
    the GPT-extended ones); read back as RMOT datasets/refer_kitti.py ``_pre_single_frame`` reads them."""
    root = tmp_path / fmt
    width, height = KITTI_SIZE
    objects = {  # frame -> (id, x, y, w, h) in pixels; id -1 is FairMOT's "no identity"
        0: [(3, 100, 150, 60, 40), (7, 600, 160, 120, 90)],
        1: [(3, 104, 151, 60, 40), (7, 590, 160, 124, 92), (-1, 1000, 170, 30, 20)],
        2: [(7, 580, 161, 126, 93)],
    }
    for frame, items in objects.items():
        lines = "".join(
            f"0 {i:d} {x / width:.6f} {y / height:.6f} {w / width:.6f} {h / height:.6f}\n"
            for i, x, y, w, h in items
        )
        _write(root, {f"KITTI/labels_with_ids/image_02/0005/{frame:06d}.txt": lines})
    _images(root, [f"KITTI/training/image_02/0005/{frame:06d}.png" for frame in objects], KITTI_SIZE)
    expressions = {
        "black-cars-in-the-left.json": {
            "label": {"0": [3], "1": [3]},
            "ignore": [],
            "video_name": "0005",
            "sentence": "black cars in the left",
        },
        "vehicles-moving-away.json": {
            "label": {"0": ["7"], "1": ["7"], "2": ["7"]},
            "ignore": [],
            "video_name": "0005",
            "sentence": "vehicles moving away from us",
            "raw_sentence": "cars moving away",
        },
    }
    for name, record in expressions.items():
        _write(root, {f"expression/0005/{name}": json.dumps(record)})

    # what the RMOT loader makes of it: pixel corners per label line, and which lines are referred
    loader_boxes, loader_referents = [], set()
    for image in sorted((root / "KITTI/training/image_02/0005").iterdir()):
        frame_id = int(image.name.split(".")[0])
        label_path = str(image).replace("training", "labels_with_ids").replace(".png", ".txt")
        labels0 = np.loadtxt(label_path, dtype=np.float32).reshape(-1, 6)
        w, h = Image.open(image).size
        for label in labels0:
            box = (w * label[2], h * label[3], w * (label[2] + label[4]), h * (label[3] + label[5]))
            loader_boxes.append((frame_id + 1, int(label[1]), *box))
        for name, record in expressions.items():
            ref_ids = [int(i) for i in record["label"].get(str(frame_id), [])]
            for label in labels0:
                if int(label[1]) in ref_ids:
                    loader_referents.add((name[: -len(".json")], frame_id + 1, int(label[1])))

    assert detect_format(root) == fmt
    store = _convert(fmt, root, tmp_path / "store")
    boxes = _boxes_with_frames(store).sort("frame_index", "box_uid")
    assert boxes.height == len(loader_boxes) == 6
    for row, want in zip(boxes.iter_rows(named=True), sorted(loader_boxes, key=lambda b: b[0]), strict=True):
        frame, track, *corners = want
        assert row["frame_index"] == frame
        assert row["track_id"] == (track if track >= 0 else None)  # id -1: a box without a track
        assert [row[c] for c in ("x1", "y1", "x2", "y2")] == pytest.approx(corners, abs=1e-3)
    assert boxes["class_id"].unique().to_list() == [0]
    frames = store.read("frames").sort("frame_index")
    assert frames["image_path"][0] == "KITTI/training/image_02/0005/000000.png"
    assert (frames["width"][0], frames["height"][0], frames["split"][0]) == (width, height, "test")
    referents = store.read("referents").join(store.read("expressions"), on="expression_uid")
    referents = referents.join(frames.select("frame_uid", "frame_index"), on="frame_uid")
    got = {
        (uid.rsplit("/", 1)[1], frame, track)
        for uid, frame, track in referents.select("expression_uid", "frame_index", "track_id").iter_rows()
    }
    assert got == loader_referents and len(got) == 5
    sentences = dict(store.read("expressions").select("sentence", "raw_sentence").iter_rows())
    assert sentences == {"black cars in the left": None, "vehicles moving away from us": "cars moving away"}


# --- BenSMOT: Nathan-Li123/SMOTer ---------------------------------------------------------------------


def test_bensmot_as_smoter_reads_it(tmp_path):
    """The layout and caption order of Nathan-Li123/SMOTer BenSMOT.md; boxes as SMOTer
    tools/convert_bensmot2coco.py reads them (for each image ``imgs/<n>.jpg``, the gt rows of frame n);
    captions and relations from its combined JSONs, relation labels cleaned as
    smoter/modeling/roi_heads/grit_roi_heads.py ``get_relation_labels`` cleans them."""
    root = tmp_path / "BenSMOT"
    described = "dancing_with_child/01Ss_Kfo6ag_0"  # its own caption files (BenSMOT.md)
    combined = "playing_basketball/0B1uJGWKxCg_0"  # captions only in the combined JSONs
    gt = {
        described: "1,1,10,20,30,60,1,1,1\n1,2,50,20,30,60,1,1,1\n1,3,90,20,30,60,1,1,1\n"
        "2,1,11,20,30,60,1,1,1\n3,1,12,20,30,60,1,1,1\n3,3,92,21,30,60,1,1,1\n",
        combined: "1,1,5,5,20,40,1,1,1\n1,2,40,5,20,40,1,1,1\n2,2,41,5,20,40,1,1,1\n",
    }
    images = {described: [1, 3], combined: [1, 2]}  # sampled sparsely: frame 2 of the first has no image
    for key, rows in gt.items():
        _write(root, {f"train/{key}/gt/gt.txt": rows})
        _images(root, [f"train/{key}/imgs/{n:03d}.jpg" for n in images[key]], (64, 48))
    _write(
        root,
        {
            f"train/{described}/instance_captions.txt": (
                "woman0: A woman in the red blouse covers her face with her hands.\n"
                "woman1: A woman in pink short-sleeved shirt and white cap throws water.\n"
                "man0: A man in yellow sleeves walks behind the woman in pink sleeves.\n"
            ),
            f"train/{described}/video_caption.txt": "Two women play with water while a man walks by.\n",
            "video_summary.json": json.dumps({combined: "Two players pass the ball."}),
            "instance_caption.json": json.dumps(
                {combined: {"1": "A player in white.", "2": "A player in red."}}
            ),
            "relation.json": json.dumps(
                {combined: {"1-2": [".Hold.v.02", " pass.v.01"], "2-1": ["pass.v.01"]}}
            ),
        },
    )

    # SMOTer's converter: annotations of the frames that have an image
    loader_boxes = []
    for key in gt:
        seq_dir = root / "train" / key
        lbl_data = np.loadtxt(seq_dir / "gt" / "gt.txt", dtype=str, delimiter=",")
        for jpg_file in sorted(p.name for p in (seq_dir / "imgs").iterdir()):
            frame_id = int(jpg_file.split(".")[0])
            for row in lbl_data:
                if int(row[0]) == frame_id:
                    bbox = [float(row[2]), float(row[3]), float(row[4]), float(row[5])]
                    loader_boxes.append((key, frame_id, int(row[1]), *bbox))

    def relation_label(relation: str) -> str:  # get_relation_labels' cleaning
        if relation[0] == " " or relation[0] == ".":
            relation = relation[1:]
        return relation.lower()

    result = convert("bensmot", root, tmp_path / "store", show_progress=False)
    store = result.store
    boxes = _boxes_with_frames(store)
    got = boxes.select(
        "sequence",
        "frame_index",
        "track_id",
        "x1",
        "y1",
        pl.col("x2") - pl.col("x1"),
        pl.col("y2") - pl.col("y1"),
    ).rows()
    assert sorted(got) == sorted(loader_boxes) and len(got) == 8
    assert result.skipped_rows == 1  # the row of frame 2, which has no image, is listed
    semantics = store.read("semantics").join(
        store.read("sequences").select("sequence_uid", "sequence"), on="sequence_uid"
    )
    captions = semantics.filter(pl.col("kind") == "track_caption").sort("sequence", "track_id")
    assert captions.select("sequence", "track_id", "name").rows() == [
        (described, 1, "woman0"),
        (described, 2, "woman1"),
        (described, 3, "man0"),
        (combined, 1, None),
        (combined, 2, None),
    ]
    pairs = semantics.filter(pl.col("kind") == "interaction")
    want_pairs = {
        (combined, int(pair.split("-")[0]), int(pair.split("-")[1]), relation_label(label))
        for pair, labels in {"1-2": [".Hold.v.02", " pass.v.01"], "2-1": ["pass.v.01"]}.items()
        for label in labels
    }
    assert set(pairs.select("sequence", "track_id", "other_track_id", "name").rows()) == want_pairs
    summaries = dict(semantics.filter(pl.col("kind") == "summary").select("sequence", "text").iter_rows())
    assert summaries == {
        described: "Two women play with water while a man walks by.",
        combined: "Two players pass the ball.",
    }


# --- CityPersons JSON: mcordts/cityscapesScripts ----------------------------------------------------


def test_citypersons_json_as_cityscapesscripts_reads_it(tmp_path):
    """Objects in the three shapes cityscapesScripts helpers/annotation.py ``CsBbox2d.fromJsonText``
    reads (bbox/bboxVis, amodal/modal, amodal alone), sizes through ``int()``, and the top-level
    ``ignore`` list ``Annotation.fromJsonText`` reads as ``CsIgnore2d`` regions."""
    record = {
        "imgWidth": 2048.0,
        "imgHeight": "1024",
        "objects": [
            {
                "label": "pedestrian",
                "instanceId": 24000,
                "bbox": [947, 406, 17, 40],
                "bboxVis": [950, 407, 14, 39],
            },
            {
                "label": "rider",
                "instanceId": 24001,
                "amodal": [1157, 375, 41, 99],
                "modal": [1158, 375, 40, 90],
            },
            {"label": "sitting person", "instanceId": 24002, "amodal": [300, 400, 30, 50]},
        ],
        "ignore": [{"label": "ignore", "instanceId": 0, "2d": [1839, 382, 31, 71]}],
    }
    city = tmp_path / "cp" / "gtBboxCityPersons" / "val" / "lindau"
    _write(city, {"lindau_000000_000019_gtBboxCityPersons.json": json.dumps(record)})

    def from_json_text(obj: dict) -> tuple[list, list]:  # CsBbox2d.fromJsonText: (amodal, modal)
        if "bbox" in obj and "bboxVis" in obj:
            return obj["bbox"], obj["bboxVis"]
        if "modal" in obj and "amodal" in obj:
            return obj["amodal"], obj["modal"]
        return obj["amodal"], obj["amodal"]

    loader = [(o["label"], *from_json_text(o)) for o in record["objects"]]
    loader += [(o["label"], o["2d"], o["2d"]) for o in record["ignore"]]  # CsIgnore2d: one box for both

    store = _convert("citypersons", tmp_path / "cp", tmp_path / "store")
    frame = store.read("frames").row(0, named=True)
    assert (frame["width"], frame["height"]) == (int(record["imgWidth"]), int(record["imgHeight"]))
    boxes = store.read("boxes").sort("box_uid")
    assert boxes.height == len(loader) == 4
    for row, (label, amodal, modal) in zip(boxes.iter_rows(named=True), loader, strict=True):
        x, y, w, h = amodal
        vx, vy, vw, vh = modal
        assert row["category"] == label
        assert (row["x1"], row["y1"], row["x2"], row["y2"]) == (x, y, x + w, y + h)
        assert (row["vis_x1"], row["vis_y1"], row["vis_x2"], row["vis_y2"]) == (vx, vy, vx + vw, vy + vh)
    assert boxes["ignore"].to_list() == [False, False, False, True]


# --- DanceTrack: DanceTrack/DanceTrack ----------------------------------------------------------------


def test_dancetrack_as_its_converter_reads_it(tmp_path):
    """The layout of DanceTrack/DanceTrack README.md (``img1/00000001.jpg``: 8 digits, gt
    ``<frame>, <id>, <bb_left>, <bb_top>, <bb_width>, <bb_height>, 1, 1, 1``); frames and boxes as its
    tools/convert_dance_to_coco.py reads them; the test split has no gt."""
    root = tmp_path / "dancetrack"
    size = (64, 36)
    gt = "1,1,10,5,12,24,1,1,1\n1,2,40,6,12,24,1,1,1\n2,1,11,5,12,24,1,1,1\n3,2,42,6,12,24,1,1,1\n"
    for split, seq in (("train", "dancetrack0001"), ("test", "dancetrack0003")):
        info = (
            f"[Sequence]\nname={seq}\nimDir=img1\nframeRate=20\nseqLength=3\n"
            f"imWidth={size[0]}\nimHeight={size[1]}\nimExt=.jpg\n"
        )
        _write(root / split / seq, {"seqinfo.ini": info})
        _images(root / split / seq, [f"img1/{k:08d}.jpg" for k in (1, 2, 3)], size)
    _write(root / "train" / "dancetrack0001", {"gt/gt.txt": gt})

    # the converter: image i+1 is '{seq}/img1/{:08d}.jpg', boxes from np.loadtxt(delimiter=',')
    seq_path = root / "train" / "dancetrack0001"
    num_images = len([image for image in (seq_path / "img1").iterdir() if "jpg" in image.name])
    loader_images = [f"dancetrack0001/img1/{i + 1:08d}.jpg" for i in range(num_images)]
    anns = np.loadtxt(seq_path / "gt" / "gt.txt", dtype=np.float32, delimiter=",")
    loader_boxes = sorted((int(a[0]), int(a[1]), *(float(v) for v in a[2:6])) for a in anns)

    assert detect_format(root) == "mot"
    store = _convert("mot", root, tmp_path / "store")
    frames = store.read("frames").sort("sequence", "frame_index")
    train = frames.filter(pl.col("split") == "train")
    assert train["image_path"].to_list() == [f"train/{name}" for name in loader_images]
    assert store.image_path("dancetrack", train["image_path"][0]).is_file()
    assert frames["dataset"].unique().to_list() == ["dancetrack"]
    assert frames.filter(pl.col("split") == "test").height == 3  # frames without boxes
    assert train["timestamp"].to_list() == [0.0, 0.05, 0.1]  # 20 fps
    boxes = _boxes_with_frames(store)
    got = sorted(
        boxes.select(
            "frame_index", "track_id", "x1", "y1", pl.col("x2") - pl.col("x1"), pl.col("y2") - pl.col("y1")
        ).rows()
    )
    assert got == loader_boxes


# --- ReID: KaiyangZhou/deep-person-reid ---------------------------------------------------------------


def test_msmt17_lists_as_torchreid_reads_them(tmp_path):
    """torchreid/data/datasets/image/msmt17.py: ``img_path, pid = line.split(' ')``, the camera is
    ``int(img_path.split('_')[2]) - 1``, val images come from the train folder."""
    root = tmp_path / "msmt17" / "MSMT17_V1"
    lists = {
        "list_train.txt": [
            "0000/0000_000_01_0303morning_0015_0.jpg 0",
            "0001/0001_003_07_0303noon_0810_1.jpg 1",
        ],
        "list_val.txt": ["0001/0001_004_15_0303afternoon_0022_0.jpg 1"],
        "list_query.txt": ["0000/0000_000_05_0113morning_0021_0.jpg 0"],
        "list_gallery.txt": [
            "0000/0000_001_12_0113noon_0555_1.jpg 0",
            "0002/0002_000_03_0302noon_0001_0.jpg 2",
        ],
    }
    for name, lines in lists.items():
        _write(root, {name: "\n".join(lines) + "\n"})
        folder = "test" if name in ("list_query.txt", "list_gallery.txt") else "train"
        _images(root / folder, [line.split(" ")[0] for line in lines], (32, 64))

    loader = set()
    for name, lines in lists.items():
        dir_path = "test" if name in ("list_query.txt", "list_gallery.txt") else "train"
        for img_info in lines:
            img_path, pid = img_info.split(" ")
            loader.add((name[5:-4], f"{dir_path}/{img_path}", int(pid), int(img_path.split("_")[2]) - 1))

    assert detect_format(tmp_path / "msmt17") == "msmt17"
    store = _convert("msmt17", tmp_path / "msmt17", tmp_path / "store")
    rows = store.read("identities").select("split", "image_path", "pid", pl.col("camera") - 1).rows()
    assert set(rows) == loader and len(rows) == 6
    sizes = store.read("identities").select("width", "height").unique().rows()
    assert sizes == [(32, 64)]


def test_market1501_names_as_torchreid_reads_them(tmp_path):
    """torchreid/data/datasets/image/market1501.py: pid and camera from ``([-\\d]+)_c(\\d)``, pid -1
    (junk) left out, camera 1..6; dukemtmcreid.py: the same pattern, camera 1..8."""
    names = {
        "bounding_box_train": [
            "0002_c1s1_000451_03.jpg",
            "0002_c2s1_000301_01.jpg",
            "0007_c6s3_084617_02.jpg",
        ],
        "query": ["0001_c1s1_001051_00.jpg"],
        "bounding_box_test": ["0001_c5s1_001426_01.jpg", "-1_c3s2_056378_07.jpg", "0000_c4s1_017801_04.jpg"],
    }
    market = tmp_path / "market1501" / "Market-1501-v15.09.15"
    for folder, files in names.items():
        _images(market / folder, files, (64, 128))
    pattern = re.compile(r"([-\d]+)_c(\d)")
    loader = set()
    for folder, files in names.items():
        for name in files:
            pid, camid = map(int, pattern.search(name).groups())
            if pid == -1:
                continue  # junk images are just ignored
            assert 0 <= pid <= 1501 and 1 <= camid <= 6
            loader.add((f"{folder}/{name}", pid, camid - 1))
    store = _convert("market1501", tmp_path / "market1501", tmp_path / "store")
    identities = store.read("identities")
    kept = identities.filter(~pl.col("junk")).select("image_path", "pid", pl.col("camera") - 1).rows()
    assert set(kept) == loader and len(kept) == 6
    assert identities.filter(pl.col("junk"))["image_path"].to_list() == [
        "bounding_box_test/-1_c3s2_056378_07.jpg"
    ]
    assert identities.filter(pl.col("distractor"))["pid"].to_list() == [0]

    duke = tmp_path / "DukeMTMC-reID"
    duke_names = {"bounding_box_train": ["0001_c2_f0046182.jpg"], "query": ["0005_c8_f0087561.jpg"]}
    for folder, files in duke_names.items():
        _images(duke / folder, files, (64, 128))
    want = {
        (f"{folder}/{name}", *map(int, pattern.search(name).groups()))
        for folder, files in duke_names.items()
        for name in files
    }
    rows = (
        _convert("dukemtmc", duke, tmp_path / "duke").read("identities").select("image_path", "pid", "camera")
    )
    assert set(rows.rows()) == want


# --- person text: anosorae/IRRA -----------------------------------------------------------------------

IRRA_DATASETS = {
    # reader: (folder, annotation file, image key, records) as IRRA datasets/<name>.py reads them
    "cuhk-pedes": (
        "CUHK-PEDES",
        "reid_raw.json",
        "file_path",
        [
            {
                "split": "train",
                "captions": ["A man in a red coat.", "He walks."],
                "file_path": "CUHK01/0363004.png",
                "processed_tokens": [["a", "man"]],
                "id": 1,
            },
            {
                "split": "test",
                "captions": ["A woman in blue."],
                "file_path": "CUHK03/1_2.jpg",
                "processed_tokens": [["a", "woman"]],
                "id": 2,
            },
            {
                "split": "val",
                "captions": ["A child."],
                "file_path": "test_query/p1_s1.jpg",
                "processed_tokens": [["a"]],
                "id": 3,
            },
        ],
    ),
    "icfg-pedes": (
        "ICFG-PEDES",
        "ICFG-PEDES.json",
        "file_path",
        [
            {
                "id": 0,
                "file_path": "train/0000/0000_000_01_0303morning_0015_0.jpg",
                "captions": ["A man."],
                "processed_tokens": [["a"]],
                "split": "train",
            },
            {
                "id": 27,
                "file_path": "test/0027/0027_004_01_0303morning_0020_0.jpg",
                "captions": ["A woman."],
                "processed_tokens": [["a"]],
                "split": "test",
            },
        ],
    ),
    "rstpreid": (
        "RSTPReid",
        "data_captions.json",
        "img_path",
        [
            {
                "id": 0,
                "img_path": "3903_c14_0007.jpg",
                "captions": ["A man in black.The man walks.", "Two."],
                "split": "train",
            },
            {"id": 1, "img_path": "0010_c3_0001.jpg", "captions": ["A woman.", "Red bag."], "split": "val"},
        ],
    ),
}


@pytest.mark.parametrize("fmt", sorted(IRRA_DATASETS))
def test_person_text_as_irra_reads_it(fmt, tmp_path):
    """anosorae/IRRA datasets/{cuhkpedes,icfgpedes,rstpreid}.py: ``<root>/<Dataset>/<annotation>``,
    images under ``imgs/``, split train / test / anything else val, ``pid = int(anno['id'])``."""
    folder, annotation, key, records = IRRA_DATASETS[fmt]
    dataset_dir = tmp_path / folder
    _write(dataset_dir, {annotation: json.dumps(records)})
    _images(dataset_dir / "imgs", [r[key] for r in records], (32, 64))

    loader = set()
    for anno in json.loads((dataset_dir / annotation).read_text()):
        split = anno["split"] if anno["split"] in ("train", "test") else "val"
        loader.add((split, int(anno["id"]), "imgs/" + anno[key], tuple(anno["captions"])))

    assert detect_format(dataset_dir) == fmt
    store = _convert(fmt, dataset_dir, tmp_path / "store")
    identities = store.read("identities")
    got = {
        (s, p, i, tuple(c))
        for s, p, i, c in identities.select("split", "pid", "image_path", "captions").rows()
    }
    assert got == loader
    assert identities.select("width", "height").unique().rows() == [(32, 64)]
    assert all(store.image_path(identities["dataset"][0], p).is_file() for p in identities["image_path"])
