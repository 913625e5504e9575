"""One malformed-input corpus for every reader: each defect gives a one-line ``file:line`` error or a
clean read, never a traceback and never a half-written store.

Each reader gets a small valid dataset (``Corpus.build``) and the file the defects edit (``target``).
The defects are generated from it: the file emptied, blank, reduced to its header (or its JSON skeleton),
with a byte-order mark, with CRLF line ends, cut to one record, its last record truncated, a byte that is
not UTF-8, and edits of the last record (NaN/inf, a negative size, a wrong type, an unknown id, a path
escaping the dataset folder) where the format has such a field. The expected line is found in the edited
text itself, so the table below says only what each edit is and which words the error must hold.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from omnipt_data.cli import main
from omnipt_data.convert import ConvertResult, convert
from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers import ReadOptions
from omnipt_data.store import Store


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` (once in the file) by ``new``; the error must hold ``problem``."""

    old: str
    new: str
    problem: str
    file: str | None = None  # another file than the corpus' target


@dataclass(frozen=True)
class Corpus:
    fmt: str
    build: Callable[[Path], None]  # writes a valid dataset into the folder
    target: str  # the file the defects edit, relative to the dataset folder
    one_row: Callable[[str], str]  # the target's text cut to its first record
    empty_reads: bool  # an empty (or blank) target is a clean read, not an error
    header: str | None = None  # a header-only (or skeleton-only) target; None: the format has none
    header_reads: bool = False
    edits: dict[str, Edit] = field(default_factory=dict)
    source: str = "."  # what to convert, relative to the dataset folder
    clean: frozenset[str] = frozenset()  # generic defects this format cannot tell from valid data


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _images(root: Path, names: list[str], size: tuple[int, int] = (40, 30)) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (90, 120, 150)).save(path)


def _first_line(text: str) -> str:
    return text.splitlines(keepends=True)[0]


def _drop_lines(*needles: str) -> Callable[[str], str]:
    """Cut a JSON text to one record by dropping the lines holding ``needles`` (and a dangling comma)."""

    def cut(text: str) -> str:
        kept = [line for line in text.splitlines(keepends=True) if not any(n in line for n in needles)]
        return re.sub(r",(\s*[\]}])", r"\1", "".join(kept))

    return cut


# --- the corpora -------------------------------------------------------------------------------------

SEQINFO = "[Sequence]\nname=seq\nimDir=img1\nframeRate=10\nseqLength=3\nimWidth=64\nimHeight=48\nimExt=.jpg\n"
MOT_ROWS = "1,1,10,20,30,40,1,1,1\n2,1,12,20,30,40,1,1,1\n3,2,50,60,10,20,1,1,0.5\n"
MOT_EDITS = {
    "nan_inf": Edit("50,60,10,20", "50,60,nan,inf", "NaN or infinite"),
    "negative_size": Edit("50,60,10,20", "50,60,-10,20", "negative box size"),
    "wrong_type": Edit("50,60,10,20", "50,sixty,10,20", "non-numeric value 'sixty'"),
}
MOT_HEADER = "frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility\n"

CROWDHUMAN_LINES = (
    '{"ID": "a", "gtboxes": [{"tag": "person", "fbox": [1, 2, 10, 20], "vbox": [1, 2, 10, 15], '
    '"hbox": [3, 2, 4, 4], "extra": {"box_id": 0}}]}\n'
    '{"ID": "b", "gtboxes": [{"tag": "person", "fbox": [5, 6, 30, 40], "vbox": [5, 6, 30, 35], '
    '"hbox": [9, 6, 8, 8], "extra": {"box_id": 0}}, {"tag": "mask", "fbox": [40, 1, 9, 9], '
    '"vbox": [40, 1, 9, 9], "hbox": [40, 1, 2, 2], "extra": {"ignore": 1}}]}\n'
)

CITY_FILE = "gtBboxCityPersons/train/aachen/aachen_000000_000019_gtBboxCityPersons.json"
CITY_JSON = """{
    "imgHeight": 1024,
    "imgWidth": 2048,
    "objects": [
        {"label": "pedestrian", "bbox": [10, 20, 30, 60], "bboxVis": [12, 20, 20, 50], "instanceId": 24000},
        {"label": "rider", "bbox": [100, 120, 40, 80], "bboxVis": [100, 120, 40, 70], "instanceId": 24001}
    ]
}
"""

COCO_FILE = "annotations/instances_val2017.json"
COCO_JSON = """{"images": [
{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
{"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}
],
"annotations": [
{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 0},
{"id": 2, "image_id": 2, "category_id": 1, "bbox": [3, 4, 10, 20], "iscrowd": 0}
],
"categories": [{"id": 1, "name": "person"}]}
"""

MSMT_LIST = (
    "0000/0000_000_01_0303morning_0001_0.jpg 0\n"
    "0000/0000_001_02_0303morning_0002_0.jpg 0\n"
    "0001/0001_000_03_0303noon_0001_0.jpg 1\n"
)

KITTI_LABELS = "KITTI/labels_with_ids/image_02/0000/000000.txt"
KITTI_EXPRESSION = "expression/0000/people.json"
EXPRESSION_JSON = """{
    "label": {
        "0": [1, 2],
        "1": [1]
    },
    "ignore": [],
    "video_name": "0000",
    "sentence": "people"
}
"""


def build_mot(root: Path) -> None:
    _write(root, {"seqinfo.ini": SEQINFO, "gt/gt.txt": MOT_ROWS})


def build_mot_results(root: Path) -> None:
    _write(
        root,
        {
            "seq.txt": "1,1,10,20,30,40,0.9,-1,-1,-1\n2,1,12,20,30,40,0.8,-1,-1,-1\n"
            "3,2,50,60,10,20,0.7,-1,-1,-1\n"
        },
    )


def build_crowdhuman(root: Path) -> None:
    _write(root, {"annotation_train.odgt": CROWDHUMAN_LINES})
    _images(root, ["Images/a.jpg", "Images/b.jpg"])


def build_citypersons(root: Path) -> None:
    _write(root, {CITY_FILE: CITY_JSON})


def build_coco(root: Path) -> None:
    _write(root, {COCO_FILE: COCO_JSON})


def build_msmt17(root: Path) -> None:
    _write(root, {"list_train.txt": MSMT_LIST})


def build_refer_kitti(root: Path) -> None:
    _images(root, [f"KITTI/training/image_02/0000/{k:06d}.png" for k in (0, 1)])
    _write(
        root,
        {
            KITTI_LABELS: "0 1 0.100000 0.200000 0.300000 0.400000\n"
            "0 2 0.500000 0.500000 0.100000 0.100000\n",
            "KITTI/labels_with_ids/image_02/0000/000001.txt": "0 1 0.110000 0.200000 0.300000 0.400000\n",
            "expression/0000/walking.json": '{"label": {"1": [1]}, "ignore": [], "video_name": "0000", '
            '"sentence": "walking"}',
            KITTI_EXPRESSION: EXPRESSION_JSON,
        },
    )


def build_refer_kitti_labels(root: Path) -> None:
    """As above, without the expression naming frame 0 (so that frame 0's labels may change)."""
    build_refer_kitti(root)
    (root / KITTI_EXPRESSION).unlink()


def build_crtrack_eval(root: Path) -> None:
    _write(
        root,
        {
            "Plaza_people walking/gt/View1.txt": "1,1,10,10,5,10,1,1,1\n2,1,11,10,5,10,1,1,1\n"
            "3,2,30,10,5,10,1,1,1\n",
            "Plaza_people walking/gt/View2.txt": "1,1,40,12,5,10,1,1,1\n",
        },
    )


def build_crtrack(root: Path) -> None:
    for view, rows in (
        ("View1", "1,1,10,10,5,10,1,1,1\n2,2,30,10,5,10,1,1,1\n"),
        ("View2", "1,1,40,12,5,10,1,1,1\n"),
    ):
        info = SEQINFO.replace("name=seq", f"name=Plaza_{view}")
        _write(
            root,
            {f"images/train/Plaza_{view}/seqinfo.ini": info, f"images/train/Plaza_{view}/gt/gt.txt": rows},
        )
    _write(
        root,
        {
            "labels_with_ids_text/train/tackled_text/Plaza.txt": "Plaza_people walking:1,2\n"
            "Plaza_the person in red:1\n"
        },
    )


def _person_text(file_name: str, path_key: str, paths: tuple[str, str], image_dir: str, extra: str = ""):
    records = (
        f'{{"id": 1, "{path_key}": "{paths[0]}", "captions": ["A man in a red coat."], '
        f'"split": "train"{extra}}}',
        f'{{"id": 2, "{path_key}": "{paths[1]}", "captions": ["A woman in blue.", "She walks."], '
        f'"split": "test"{extra}}}',
    )
    text = "[\n" + ",\n".join(records) + "\n]\n"

    def build(root: Path) -> None:
        _write(root, {file_name: text})
        _images(root, [f"{image_dir}{p}" for p in paths], (24, 48))

    edits = {
        "nan_inf": Edit('"id": 2', '"id": NaN', "invalid JSON"),
        "negative_size": Edit('"id": 2', '"id": -2', '"id" is -2'),
        "wrong_type": Edit(
            '["A woman in blue.", "She walks."]', '"A woman in blue."', "not a list of strings"
        ),
        "unknown_id": Edit(f'"{paths[1]}"', f'"{paths[1].replace("2", "9")}"', "unknown image"),
        "escape": Edit(f'"{paths[1]}"', f'"../../{paths[1]}"', "leaves the dataset folder"),
    }
    return build, file_name, text, edits


def _person_text_corpus(fmt: str, *args, **kwargs) -> Corpus:
    build, file_name, _, edits = _person_text(*args, **kwargs)
    return Corpus(
        fmt,
        build,
        file_name,
        one_row=_drop_lines('"id": 2'),
        empty_reads=False,
        header="[]\n",
        header_reads=True,
        edits=edits,
    )


BENSMOT_SEQ = "train/walking/seq01"
RELATION_JSON = """{
  "walking/seq01": {
    "1-2": ["pass.v.01"],
    "2-1": ["pass.v.01", "talk.v.02"]
  }
}
"""


def build_bensmot(root: Path) -> None:
    _write(
        root,
        {
            f"{BENSMOT_SEQ}/gt/gt.txt": "1,1,10,20,8,16,1,1,1\n2,1,12,20,8,16,1,1,1\n3,2,40,20,8,16,1,1,1\n",
            f"{BENSMOT_SEQ}/instance_captions.txt": "woman0: A woman in red.\nman0: A man in blue.\n",
            f"{BENSMOT_SEQ}/video_caption.txt": "Two people walk.\n",
            "relation.json": RELATION_JSON,
        },
    )
    _images(root, [f"{BENSMOT_SEQ}/imgs/{k:03d}.jpg" for k in (1, 2, 3)])


def build_bensmot_tracks(root: Path) -> None:
    """As above, without relations (which must name tracks of gt.txt, so gt.txt could not change)."""
    build_bensmot(root)
    (root / "relation.json").unlink()


GRAPHML = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="d0" for="edge" attr.name="relationship" attr.type="string"/>
  <graph edgedefault="directed">
    <node id="woman0"/>
    <node id="man0"/>
    <edge source="woman0" target="man0"><data key="d0">pass.v.01</data></edge>
    <edge source="man0" target="woman0"><data key="d0">talk.v.02</data></edge>
  </graph>
</graphml>
"""


def build_bensmot_graph(root: Path) -> None:
    """Interactions as a graph over the caption names (no combined relation.json)."""
    build_bensmot_tracks(root)
    _write(root, {f"{BENSMOT_SEQ}/interactions.graphml": GRAPHML})


CORPORA: dict[str, Corpus] = {
    "mot": Corpus(
        "mot",
        build_mot,
        "gt/gt.txt",
        one_row=_first_line,
        empty_reads=True,  # seqinfo.ini gives the length: a sequence without boxes
        header=MOT_HEADER,
        edits={
            **MOT_EDITS,
            "unknown_id": Edit("3,2,", "9,2,", "frame 9 is outside the sequence (seqLength 3)"),
            "escape": Edit(
                "imDir=img1", "imDir=../../elsewhere", "leaves the sequence folder", "seqinfo.ini"
            ),
        },
    ),
    "mot-bare": Corpus(
        "mot",
        lambda root: _write(root, {"gt.txt": MOT_ROWS}),
        "gt.txt",
        one_row=_first_line,
        empty_reads=False,  # neither rows nor seqinfo.ini: nothing says how long the sequence is
        header=MOT_HEADER,
        edits=MOT_EDITS,
        source="gt.txt",
    ),
    "mot-results": Corpus(
        "mot-results",
        build_mot_results,
        "seq.txt",
        one_row=_first_line,
        empty_reads=True,  # a tracker that found nobody
        header="frame,id,x,y,w,h,score,x,y,z\n",
        edits=MOT_EDITS,
    ),
    "crowdhuman": Corpus(
        "crowdhuman",
        build_crowdhuman,
        "annotation_train.odgt",
        one_row=_first_line,
        empty_reads=True,
        edits={
            "nan_inf": Edit("[5, 6, 30, 40]", "[5, 6, NaN, 40]", "invalid JSON"),
            "negative_size": Edit("[5, 6, 30, 40]", "[5, 6, -30, 40]", "fbox has a negative size"),
            "wrong_type": Edit("[5, 6, 30, 40]", '[5, 6, "30", 40]', "fbox has a non-numeric value"),
            "unknown_id": Edit('"ID": "b"', '"ID": "zz"', "unknown image 'zz'"),
            "escape": Edit('"ID": "b"', '"ID": "../../b"', "leaves the dataset folder"),
        },
    ),
    "citypersons": Corpus(
        "citypersons",
        build_citypersons,
        CITY_FILE,
        one_row=_drop_lines('"rider"'),
        empty_reads=False,
        header='{"imgHeight": 1024, "imgWidth": 2048, "objects": []}\n',
        header_reads=True,  # an image without people
        edits={
            "nan_inf": Edit("[100, 120, 40, 80]", "[100, 120, NaN, 80]", "NaN is not a number"),
            "negative_size": Edit("[100, 120, 40, 80]", "[100, 120, -40, 80]", "bbox has a negative size"),
            "wrong_type": Edit(
                "[100, 120, 40, 80]", '[100, 120, "forty", 80]', "bbox has a non-numeric value"
            ),
            "unknown_id": Edit('"rider"', '"car"', "unknown label 'car'"),
        },
    ),
    "coco": Corpus(
        "coco",
        build_coco,
        COCO_FILE,
        one_row=_drop_lines('"id": 2'),
        empty_reads=False,
        header='{"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}\n',
        header_reads=True,
        edits={
            "nan_inf": Edit("[3, 4, 10, 20]", "[3, 4, Infinity, 20]", "Infinity is not a number"),
            "negative_size": Edit("[3, 4, 10, 20]", "[3, 4, -10, 20]", "bbox has a negative size"),
            "wrong_type": Edit("[3, 4, 10, 20]", '[3, 4, "ten", 20]', "bbox has a non-numeric"),
            "unknown_id": Edit('"image_id": 2', '"image_id": 99', "image_id 99 is not in images"),
            "escape": Edit('"b.jpg"', '"../../b.jpg"', "leaves the dataset folder"),
        },
    ),
    "msmt17": Corpus(
        "msmt17",
        build_msmt17,
        "list_train.txt",
        one_row=_first_line,
        empty_reads=True,
        header="image pid\n",
        edits={
            "nan_inf": Edit(" 1\n", " nan\n", "pid 'nan' is not an integer"),
            "negative_size": Edit(" 1\n", " -1\n", "pid -1 is negative"),
            "wrong_type": Edit("_03_0303noon", "_c3_0303noon", "has no camera field"),
            "escape": Edit("0001/0001_000", "../../0001/0001_000", "leaves the dataset folder"),
        },
    ),
    "refer-kitti-labels": Corpus(
        "refer-kitti",
        build_refer_kitti_labels,
        KITTI_LABELS,
        one_row=_first_line,
        empty_reads=True,  # a frame without objects
        header="class id x y w h\n",
        edits={
            "nan_inf": Edit("0.100000 0.100000", "nan 0.100000", "NaN or infinite"),
            "negative_size": Edit("0.100000 0.100000", "-0.100000 0.100000", "negative box size"),
            "wrong_type": Edit("0.100000 0.100000", "wide 0.100000", "non-numeric value 'wide'"),
        },
    ),
    "refer-kitti-expression": Corpus(
        "refer-kitti",
        build_refer_kitti,
        KITTI_EXPRESSION,
        one_row=_drop_lines('"1": [1]'),
        empty_reads=False,
        header='{"label": {}, "ignore": [], "video_name": "0000", "sentence": "people"}\n',
        header_reads=True,  # a sentence naming nobody
        edits={
            "nan_inf": Edit('"1": [1]', '"1": [NaN]', "NaN is not a number"),
            "negative_size": Edit('"1": [1]', '"1": [-1]', "id -1 is not a non-negative integer"),
            "wrong_type": Edit('"sentence": "people"', '"sentence": 7', 'no "sentence" string'),
            "unknown_id": Edit('"1": [1]', '"1": [9]', "names track 9, absent from the frame's labels"),
        },
    ),
    "crtrack": Corpus(
        "crtrack",
        build_crtrack,
        "labels_with_ids_text/train/tackled_text/Plaza.txt",
        one_row=_first_line,
        empty_reads=True,
        edits={
            "nan_inf": Edit("in red:1", "in red:nan", "id 'nan' is not a non-negative integer"),
            "negative_size": Edit("in red:1", "in red:-1", "id '-1' is not a non-negative integer"),
            "unknown_id": Edit("in red:1", "in red:9", "id 9 is no track of scene Plaza"),
            "escape": Edit(
                "imDir=img1",
                "imDir=../..",
                "leaves the sequence folder",
                "images/train/Plaza_View2/seqinfo.ini",
            ),
        },
    ),
    "crtrack-eval": Corpus(
        "crtrack-eval",
        build_crtrack_eval,
        "Plaza_people walking/gt/View1.txt",
        one_row=_first_line,
        empty_reads=True,
        header=MOT_HEADER,
        edits={
            "nan_inf": Edit("3,2,30,10,5,10", "3,2,30,10,inf,10", "NaN or infinite"),
            "negative_size": Edit("3,2,30,10,5,10", "3,2,30,10,-5,10", "negative box size"),
            "wrong_type": Edit("3,2,30,10,5,10", "3,2,x,10,5,10", "non-numeric value 'x'"),
        },
    ),
    "cuhk-pedes": _person_text_corpus(
        "cuhk-pedes", "reid_raw.json", "file_path", ("CUHK01/0001.png", "CUHK01/0002.png"), "imgs/"
    ),
    "icfg-pedes": _person_text_corpus(
        "icfg-pedes",
        "ICFG-PEDES.json",
        "file_path",
        ("train/0001/0001_000_01_0303morning_0001_0.jpg", "test/0002/0002_000_02_0303noon_0001_0.jpg"),
        "imgs/",
    ),
    "rstpreid": _person_text_corpus(
        "rstpreid", "data_captions.json", "img_path", ("0001_c1_0001.jpg", "0002_c2_0001.jpg"), "imgs/"
    ),
    "synth-pedes": _person_text_corpus(
        "synth-pedes",
        "synthpedes_dataset.json",
        "file_path",
        ("Part1/1/1.jpg", "Part1/2/1.jpg"),
        "",
        extra=', "attributes": ["man,black hair,red coat,blue jeans,white shoes,unknown"]',
    ),
    "bensmot-gt": Corpus(
        "bensmot",
        build_bensmot_tracks,
        f"{BENSMOT_SEQ}/gt/gt.txt",
        one_row=_first_line,
        empty_reads=True,
        header=MOT_HEADER,
        edits={
            "nan_inf": Edit("3,2,40,20,8,16", "3,2,40,20,nan,16", "NaN or infinite"),
            "negative_size": Edit("3,2,40,20,8,16", "3,2,40,20,-8,16", "negative box size"),
            "wrong_type": Edit("3,2,40,20,8,16", "3,2,forty,20,8,16", "non-numeric value 'forty'"),
        },
    ),
    "bensmot-captions": Corpus(
        "bensmot",
        build_bensmot_tracks,
        f"{BENSMOT_SEQ}/instance_captions.txt",
        one_row=_first_line,
        empty_reads=True,
        clean=frozenset({"truncated"}),  # a caption cut short is still a caption
        edits={
            "wrong_type": Edit("man0: A man", "man0 A man", "no '<name>:' at the start of the line"),
            "unknown_id": Edit("man0: A man", "woman0: A man", "instance 'woman0' already named on line 1"),
        },
    ),
    "bensmot-graphml": Corpus(
        "bensmot",
        build_bensmot_graph,
        f"{BENSMOT_SEQ}/interactions.graphml",
        one_row=_drop_lines('source="man0"'),
        empty_reads=False,
        header='<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph/></graphml>\n',
        header_reads=True,
        edits={
            "wrong_type": Edit(
                '<data key="d0">talk.v.02</data>', '<data key="d0"></data>', "without an interaction"
            ),
            "unknown_id": Edit('target="woman0"', 'target="ghost0"', "edge end 'ghost0' is not a node"),
        },
    ),
    "bensmot-relation": Corpus(
        "bensmot",
        build_bensmot,
        "relation.json",
        one_row=_drop_lines('"2-1"'),
        empty_reads=False,
        header="{}\n",
        header_reads=True,
        edits={
            "nan_inf": Edit('"talk.v.02"]', "NaN]", "invalid JSON"),
            "wrong_type": Edit('["pass.v.01", "talk.v.02"]', "5", "is not '<src>-<dst>'"),
            "unknown_id": Edit('"2-1"', '"2-9"', "track 9 is not in gt/gt.txt"),
        },
    ),
}

RECORDS = ("boxes", "identities", "expressions", "referents", "semantics")
GENERIC = ("empty", "blank", "header", "bom", "crlf", "one_row", "truncated", "non_utf8")
EDITS = ("nan_inf", "negative_size", "wrong_type", "unknown_id", "escape")
CASES = [
    (name, defect)
    for name, corpus in CORPORA.items()
    for defect in (*GENERIC, *EDITS)
    if (defect != "header" or corpus.header is not None) and (defect in GENERIC or defect in corpus.edits)
]


# --- applying a defect -------------------------------------------------------------------------------


def _last_record_line(text: str) -> int:
    """Index of the last line that holds data (a digit): the record that truncation cuts."""
    lines = text.splitlines()
    return max(k for k, line in enumerate(lines) if re.search(r"\d", line))


def _apply(corpus: Corpus, defect: str, root: Path) -> tuple[Path, int | None, str | None, bool]:
    """Damage the dataset under ``root``: the file, the line and words of the expected error, or ok."""
    target = root / corpus.target
    text = target.read_text(encoding="utf-8")
    ok = False
    line: int | None = None
    problem: str | None = None
    data: bytes
    if defect in ("empty", "blank"):
        data = b"" if defect == "empty" else b"\n  \n\t\n"
        ok = corpus.empty_reads
    elif defect == "header":
        assert corpus.header is not None
        data, ok, line = corpus.header.encode(), corpus.header_reads, 1
    elif defect == "bom":
        data, ok = b"\xef\xbb\xbf" + text.encode(), True
    elif defect == "crlf":
        data, ok = text.replace("\n", "\r\n").encode(), True
    elif defect == "one_row":
        data, ok = corpus.one_row(text).encode(), True
    elif defect == "truncated":
        lines = text.splitlines(keepends=True)
        last = _last_record_line(text)
        cut = lines[last].rstrip("\r\n")
        data = ("".join(lines[:last]) + cut[: len(cut) // 2]).encode()
        line = last + 1
    elif defect == "non_utf8":
        lines = text.splitlines(keepends=True)
        last = _last_record_line(text)
        digit = re.search(r"\d", lines[last])
        assert digit is not None
        broken = lines[last].encode()
        data = "".join(lines[:last]).encode() + broken[: digit.start()] + b"\xff" + broken[digit.end() :]
        data += "".join(lines[last + 1 :]).encode()
        line = last + 1
    else:
        edit = corpus.edits[defect]
        target = root / edit.file if edit.file else target
        text = target.read_text(encoding="utf-8")
        assert text.count(edit.old) == 1, f"{edit.old!r} is not unique in {target}"
        changed = text.replace(edit.old, edit.new)
        data, problem = changed.encode(), edit.problem
        line = changed[: changed.index(edit.new)].count("\n") + 1
    if defect in corpus.clean:
        ok, line = True, None
    target.write_bytes(data)
    return target, line, problem, ok


def _convert(fmt: str, source: Path, out: Path, lenient: bool = False) -> ConvertResult:
    return convert(fmt, source, out, options=ReadOptions(lenient=lenient), show_progress=False)


# --- the test ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory):
    """The store of each corpus' valid dataset, converted once."""
    stores: dict[str, Store] = {}

    def get(name: str) -> Store:
        if name not in stores:
            corpus = CORPORA[name]
            # the same folder name as the damaged copy: MOT-style readers keep it in relative image paths
            root = tmp_path_factory.mktemp(name) / "data"
            corpus.build(root)
            stores[name] = _convert(corpus.fmt, root / corpus.source, root.parent / "store").store
        return stores[name]

    return get


@pytest.mark.parametrize(("name", "defect"), CASES, ids=[f"{n}-{d}" for n, d in CASES])
def test_defect_gives_a_clean_read_or_one_file_line_error(name, defect, tmp_path, clean_store):
    corpus = CORPORA[name]
    root = tmp_path / "data"
    corpus.build(root)
    source = root / corpus.source
    file, line, problem, ok = _apply(corpus, defect, root)
    out = tmp_path / "out"
    out.mkdir()
    if ok:
        result = _convert(corpus.fmt, source, out / "store")
        assert result.skipped_rows == 0
        clean = clean_store(name)
        records = sum(result.store.manifest["counts"][t] for t in RECORDS)
        clean_records = sum(clean.manifest["counts"][t] for t in RECORDS)
        if defect in ("bom", "crlf"):  # the same data, byte for byte in the store
            assert result.store.manifest["content_hash"] == clean.manifest["content_hash"]
        elif defect in ("empty", "blank", "header", "one_row"):  # fewer records, the rest intact
            assert records < clean_records
        return
    with pytest.raises(InputError) as caught:
        _convert(corpus.fmt, source, out / "store")
    error = caught.value
    message = str(error)
    assert "\n" not in message and "expected" in message
    assert error.path.resolve() == file.resolve(), message
    if line is None:  # an empty file: the whole file, or its first line
        assert error.line in (None, 1), message
    else:
        assert error.line == line, message
    where = f"{error.path}:{error.line}: " if error.line is not None else f"{error.path}: "
    assert message.startswith(where)
    if problem is not None:
        assert problem in message, message
    assert list(out.iterdir()) == []  # no store, no temporary folder
    # --lenient reads past it and counts what it left out
    lenient = _convert(corpus.fmt, source, out / "store", lenient=True)
    assert lenient.skipped_rows >= 1
    assert message.split(": ", 1)[1] in " ".join(lenient.store.manifest["problems"]["examples"])


def test_cli_empty_gt_txt_is_one_line_without_traceback(tmp_path, monkeypatch, capsys):
    """The bare ``gt.txt`` that once ended in ``max() arg is an empty sequence``."""
    (tmp_path / "seq").mkdir()
    (tmp_path / "seq" / "gt.txt").write_text("")
    argv = ["omnipt-data", "convert", "mot", str(tmp_path / "seq"), "--out", str(tmp_path / "s")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    message = capsys.readouterr().err.replace("\n", "")
    assert f"error: {tmp_path / 'seq' / 'gt.txt'}: no annotation rows" in message
    assert "Traceback" not in message and not (tmp_path / "s").exists()


# --- formats that are not text: CityPersons' .mat release and the ReID folders of named crops ---------


def _citypersons_mat(path: Path, classes: tuple[int, ...], columns: int = 10) -> None:
    """A CityPersons ``anno_val.mat`` of one image per class given (the released cell-array layout)."""
    import numpy as np
    from scipy.io import savemat

    cells = np.empty((1, len(classes)), dtype=object)
    for k, class_id in enumerate(classes):
        row = [class_id, 10, 20, 30, 60, 24000 + k, 12, 20, 20, 50][:columns]
        cells[0, k] = {
            "cityname": np.array(["lindau"]),
            "im_name": np.array([f"lindau_{k:06d}_000019_leftImg8bit.png"]),
            "bbs": np.array([row], dtype=np.uint16),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"anno_val_aligned": cells})


MAT_DEFECTS = {
    "empty": (lambda path: path.write_bytes(b""), "not a readable MATLAB file"),
    "truncated": (lambda path: path.write_bytes(path.read_bytes()[:200]), "not a readable MATLAB file"),
    "not_mat": (lambda path: path.write_bytes(b"hello, not a MAT-file"), "not a readable MATLAB file"),
    "unknown_class": (lambda path: _citypersons_mat(path, (1, 9)), "anno_val_aligned[1]: "),
    "wrong_columns": (lambda path: _citypersons_mat(path, (1, 2), columns=9), "bbs has shape (1, 9)"),
}


@pytest.mark.parametrize("defect", sorted(MAT_DEFECTS))
def test_citypersons_mat_defects_name_the_file_and_leave_nothing(defect, tmp_path):
    mat = tmp_path / "cp" / "annotations" / "anno_val.mat"
    _citypersons_mat(mat, (1, 2))
    assert _convert("citypersons", tmp_path / "cp", tmp_path / "clean").store.manifest["counts"]["boxes"] == 2
    damage, problem = MAT_DEFECTS[defect]
    damage(mat)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as caught:
        _convert("citypersons", tmp_path / "cp", out / "store")
    message = str(caught.value)
    assert caught.value.path == mat and caught.value.line is None
    assert message.startswith(f"{mat}: ") and problem in message and "expected" in message
    assert "\n" not in message and list(out.iterdir()) == []
    lenient = _convert("citypersons", tmp_path / "cp", out / "store", lenient=True)
    # a bad image entry leaves out that image only (both images have 9 columns in wrong_columns)
    assert lenient.skipped_rows == (2 if defect == "wrong_columns" else 1)
    assert lenient.store.manifest["counts"]["frames"] == (1 if defect == "unknown_class" else 0)


def test_reid_folders_empty_or_badly_named(tmp_path):
    """Market-1501 and DukeMTMC-reID carry their annotations in file names: an empty split folder is a
    clean read of nothing; a name of the wrong shape is an error naming that file."""
    market = tmp_path / "Market-1501-v15.09.15"
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (market / folder).mkdir(parents=True)
    Image.new("RGB", (16, 32)).save(market / "query" / "0001_c1s1_001051_00.jpg")
    (market / "bounding_box_train" / "Thumbs.db").write_bytes(b"\x00\x01")  # Market ships one: passed over
    store = _convert("market1501", market, tmp_path / "s1").store
    assert store.manifest["counts"]["identities"] == 1
    bad = market / "bounding_box_test" / "0002_cXs1_000451_03.jpg"
    Image.new("RGB", (16, 32)).save(bad)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError) as caught:
        _convert("market1501", market, out / "store")
    assert caught.value.path == bad and str(caught.value).startswith(f"{bad}: file name ")
    assert list(out.iterdir()) == []
    assert _convert("market1501", market, out / "store", lenient=True).skipped_rows == 1


def test_a_folder_where_a_file_belongs_is_one_line(tmp_path):
    """Reading errors of the system (a folder named like the annotation file) are one line too."""
    (tmp_path / "ch" / "annotation_train.odgt").mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OmniptError) as caught:
        _convert("crowdhuman", tmp_path / "ch", out / "store")
    assert str(caught.value) == f"{tmp_path / 'ch' / 'annotation_train.odgt'}: Is a directory"
    assert list(out.iterdir()) == []
