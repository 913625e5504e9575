"""Refer-KITTI and Refer-KITTI-V2: referring MOT on KITTI tracking videos.

Layout (``SRC`` is the dataset root, e.g. ``refer-kitti/`` or ``refer-kitti-v2/``):

- ``KITTI/training/image_02/<vid>/<frame:06d>.png``: KITTI's images, frames numbered from **0**;
- ``KITTI/labels_with_ids/image_02/<vid>/<frame:06d>.txt``: one ``class id x y w h`` line per object,
  whitespace-separated, the box's **top-left** corner and size normalised by the image size (the authors'
  loaders, RMOT and TempRMOT, read ``x, y`` as the top-left corner for KITTI); frames without objects may
  have no file; an id below 0 (FairMOT's "no identity", which those loaders keep apart) is a box
  without a track;
- ``expression/<vid>/<sentence-with-hyphens>.json``: ``{"label": {"<frame>": [ids...]}, "ignore": [],
  "video_name": "<vid>", "sentence": "..."}``, label keys being the same 0-based KITTI frames; the
  GPT-extended expressions add ``raw_sentence`` (the sentence they paraphrase).

In the store, ``frame_index = kitti_frame + 1`` (the store is 1-based), for frames, boxes and
referents alike; images keep their own names. Image sizes come from each video's first image, so the
images must be present (the boxes are normalised). The label's class column is kept as ``class_id`` and
boxes get the category ``object``: Refer-KITTI refers to cars and people, and the class numbering differs
between releases. ``ignore`` lists are not stored; the folder, not ``video_name``, names the video. The
split is ``test`` for videos 0005, 0011 and 0013 (the published test videos) and ``train`` otherwise.

An expression that names an id absent from a frame's labels (or a frame without an image):

- ``refer-kitti``: an error naming the expression file, its line and the frame (``--lenient`` skips
  that referent and counts it);
- ``refer-kitti-v2``: some released V2 expressions name ids missing from the corrected labels, so the
  referent is dropped and listed, without stopping, in the manifest's ``problems`` (counted in
  ``skipped_rows``); everything else is as strict as V1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from omnipt_data.errors import InputError, OmniptError, Problems
from omnipt_data.readers.base import BOM, Batch, ReadOptions, Unit, decode_lines, image_size
from omnipt_data.readers.jsontext import parse_json
from omnipt_data.schema import SOURCE_GT, frame_uid, sequence_uid

IMAGES = Path("KITTI") / "training" / "image_02"
LABELS = Path("KITTI") / "labels_with_ids" / "image_02"
EXPRESSIONS = Path("expression")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
TEST_VIDEOS = frozenset({"0005", "0011", "0013"})
KITTI_FPS = 10.0
CATEGORY = "object"
EXPECTED_LABEL = "6 whitespace-separated numbers: class id x y w h (normalised, top-left corner)"
EXPECTED_EXPRESSION = (
    'a JSON object {"label": {"<frame>": [ids...]}, "ignore": [], "video_name": "<vid>", "sentence": "..."}'
)


def is_refer_kitti(path: Path) -> bool:
    """A Refer-KITTI root: ``KITTI/labels_with_ids/image_02`` and ``expression`` folders."""
    return path.is_dir() and (path / LABELS).is_dir() and (path / EXPRESSIONS).is_dir()


def numbered_files(folder: Path, extensions: tuple[str, ...]) -> dict[int, str]:
    """Frame number -> file name of the ``<digits><ext>`` files of ``folder`` (empty if absent)."""
    if not folder.is_dir():
        return {}
    found: dict[int, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in extensions and stem.isdigit():
                found[int(stem)] = entry.name
    return dict(sorted(found.items()))


def line_of(text: str, needle: str, start: int = 0) -> int:
    """The 1-based line where ``needle`` first occurs after ``start`` (1 when absent)."""
    index = text.find(needle, start)
    return text.count("\n", 0, index) + 1 if index >= 0 else 1


def _integer(value: Any) -> int | None:
    """An id given as an integer (or a string of digits, as some tools write), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class ReferKittiReader:
    """One reader class for both releases; ``lenient_missing_ids`` is the V2 behaviour."""

    version = "1"
    videos = True  # its sequences are videos

    def __init__(self, name: str, description: str, *, lenient_missing_ids: bool) -> None:
        self.name = name
        self.description = description
        self.lenient_missing_ids = lenient_missing_ids

    def sniff(self, path: Path) -> bool:
        if not is_refer_kitti(path):
            return False
        is_v2 = "v2" in Path(os.path.abspath(path)).name.lower()
        return is_v2 if self.lenient_missing_ids else True

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        if not is_refer_kitti(path):
            raise OmniptError(
                f"{path}: expected a Refer-KITTI folder holding {LABELS.as_posix()} and {EXPRESSIONS}/"
            )
        videos = sorted(
            {
                p.name
                for folder in (IMAGES, LABELS, EXPRESSIONS)
                if (path / folder).is_dir()
                for p in (path / folder).iterdir()
                if p.is_dir()
            }
        )
        if not videos:
            raise OmniptError(f"{path}: no video folders under {LABELS.as_posix()}")
        return [
            Unit(
                path / LABELS / vid,
                sum(
                    len(os.listdir(path / f / vid))
                    for f in (LABELS, EXPRESSIONS)
                    if (path / f / vid).is_dir()
                ),
                vid,
            )
            for vid in videos
        ]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {options.dataset or self.name: str(path.resolve())}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        vid = unit.name
        problems = options.problems
        dataset = options.dataset or self.name
        split = options.split or ("test" if vid in TEST_VIDEOS else "train")
        seq_uid = sequence_uid(dataset, split, vid)
        image_dir = root / IMAGES / vid
        images = numbered_files(image_dir, IMAGE_EXTENSIONS)
        if not images:
            problems.report(
                InputError(
                    image_dir,
                    None,
                    "no images: the labels are normalised, so the image size is needed",
                    f"{IMAGES.as_posix()}/<vid>/<frame:06d>.png",
                )
            )
            return
        first = image_dir / images[min(images)]
        width, height = image_size(first)
        if width is None or height is None:
            problems.report(InputError(first, None, "unreadable image", "a PNG or JPEG image"))
            return
        rel_dir = image_dir.relative_to(root).as_posix()
        frames = pl.DataFrame(
            {
                "frame_uid": [frame_uid(seq_uid, k + 1) for k in images],
                "frame_index": [k + 1 for k in images],
                "image_path": [f"{rel_dir}/{name}" for name in images.values()],
            },
            schema_overrides={"frame_index": pl.Int32},
        ).with_columns(
            sequence_uid=pl.lit(seq_uid),
            dataset=pl.lit(dataset),
            split=pl.lit(split),
            sequence=pl.lit(vid),
            width=pl.lit(width, pl.Int32),
            height=pl.lit(height, pl.Int32),
            timestamp=(pl.col("frame_index") - 1) / KITTI_FPS,
        )
        sequence = pl.DataFrame(
            {
                "sequence_uid": [seq_uid],
                "dataset": [dataset],
                "split": [split],
                "sequence": [vid],
                "fps": [KITTI_FPS],
                "length": [max(images) + 1],
                "width": [width],
                "height": [height],
                "image_dir": [rel_dir],
            }
        )
        boxes, present = self._read_labels(
            root / LABELS / vid, image_dir, images, seq_uid, width, height, problems
        )
        expressions, referents = self._read_expressions(root, vid, seq_uid, images, present, problems)
        batch: Batch = {"sequences": sequence, "frames": frames}
        if boxes:
            batch["boxes"] = pl.DataFrame(boxes, infer_schema_length=None)
        if expressions:
            batch["expressions"] = pl.DataFrame(
                expressions, schema_overrides={"views": pl.List(pl.String)}, infer_schema_length=None
            ).with_columns(dataset=pl.lit(dataset), split=pl.lit(split), sequence=pl.lit(vid))
        if referents:
            batch["referents"] = pl.DataFrame(
                referents,
                schema={"expression_uid": pl.String, "frame_uid": pl.String, "track_id": pl.Int64},
                orient="row",
            )
        yield batch

    # --- labels_with_ids ----------------------------------------------------------------------------

    def _read_labels(
        self,
        label_dir: Path,
        image_dir: Path,
        images: dict[int, str],
        seq_uid: str,
        width: int,
        height: int,
        problems: Problems,
    ) -> tuple[list[dict[str, Any]], dict[int, set[int]]]:
        """Box rows of every label file, and the ids present per KITTI frame."""
        boxes: list[dict[str, Any]] = []
        present: dict[int, set[int]] = {}
        for kitti_frame, name in numbered_files(label_dir, (".txt",)).items():
            path = label_dir / name
            if kitti_frame not in images:
                problems.report(
                    InputError(
                        path,
                        None,
                        f"frame {kitti_frame} has no image in {image_dir}",
                        "an image per label file",
                    )
                )
                continue
            fuid = frame_uid(seq_uid, kitti_frame + 1)
            ids = present.setdefault(kitti_frame, set())
            in_frame = 0
            for number, text in decode_lines(path, problems):
                if not text.strip():
                    continue
                try:
                    class_id, track_id, x, y, w, h = self._parse_label(text)
                except ValueError as exc:
                    problems.report(InputError(path, number, str(exc), EXPECTED_LABEL))
                    continue
                if track_id >= 0:
                    ids.add(track_id)
                boxes.append(
                    {
                        "box_uid": f"{fuid}/gt/{in_frame}",
                        "frame_uid": fuid,
                        "track_id": track_id if track_id >= 0 else None,
                        "category": CATEGORY,
                        "class_id": class_id,
                        "x1": x * width,
                        "y1": y * height,
                        "x2": (x + w) * width,
                        "y2": (y + h) * height,
                        "ignore": False,
                        "source": SOURCE_GT,
                    }
                )
                in_frame += 1
        return boxes, present

    @staticmethod
    def _parse_label(text: str) -> tuple[int, int, float, float, float, float]:
        fields = text.split()
        if len(fields) != 6:
            raise ValueError(f"{len(fields)} fields")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_number(f))
            raise ValueError(f"non-numeric value {bad!r}") from None
        if any(math.isnan(v) or math.isinf(v) for v in values):
            raise ValueError("NaN or infinite value")
        class_id, track_id, x, y, w, h = values
        if not class_id.is_integer():
            raise ValueError(f"class {class_id:g} is not an integer")
        if not track_id.is_integer():
            raise ValueError(f"id {track_id:g} is not an integer")
        if w < 0 or h < 0:
            raise ValueError(f"negative box size {w:g}x{h:g}")
        return int(class_id), int(track_id), x, y, w, h

    # --- expressions --------------------------------------------------------------------------------

    def _read_expressions(
        self,
        root: Path,
        vid: str,
        seq_uid: str,
        images: dict[int, str],
        present: dict[int, set[int]],
        problems: Problems,
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str, int]]]:
        expressions: list[dict[str, Any]] = []
        referents: list[tuple[str, str, int]] = []
        folder = root / EXPRESSIONS / vid
        files = (
            sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".json")
            if folder.is_dir()
            else []
        )
        for path in files:
            parsed = self._load_expression(path, problems)
            if parsed is None:
                continue
            text, record = parsed
            uid = f"{seq_uid}/{path.stem}"
            expressions.append(
                {
                    "expression_uid": uid,
                    "sentence": record["sentence"],
                    "raw_sentence": record.get("raw_sentence"),
                    "views": None,
                    "source_file": path.relative_to(root).as_posix(),
                }
            )
            label_at = max(text.find('"label"'), 0)
            for key, ids in sorted(record["label"].items(), key=lambda item: int(item[0])):
                kitti_frame = int(key)
                for track_id in sorted(set(ids)):
                    problem = self._referent_problem(kitti_frame, track_id, images, present)
                    if problem is None:
                        referents.append((uid, frame_uid(seq_uid, kitti_frame + 1), track_id))
                        continue
                    expected = f"ids listed in {LABELS.as_posix()}/{vid}/{kitti_frame:06d}.txt"
                    self._missing(
                        InputError(path, line_of(text, f'"{key}"', label_at), problem, expected), problems
                    )
        return expressions, referents

    @staticmethod
    def _referent_problem(
        kitti_frame: int, track_id: int, images: dict[int, str], present: dict[int, set[int]]
    ) -> str | None:
        """Why a frame's referred id has no box, or None when it has one."""
        where = f"frame {kitti_frame} (0-based): the expression names track {track_id}"
        if kitti_frame not in images:
            return f"{where}, but the frame has no image"
        if track_id not in present.get(kitti_frame, set()):
            return f"{where}, absent from the frame's labels"
        return None

    def _missing(self, error: InputError, problems: Problems) -> None:
        """A referent without a labelled box: an error, or (V2) a note in the manifest's problems."""
        if self.lenient_missing_ids:
            problems.errors.append(error)
        else:
            problems.report(error)

    @staticmethod
    def _load_expression(path: Path, problems: Problems) -> tuple[str, dict[str, Any]] | None:
        """The text and the validated record of an expression file, or None once reported."""
        data = path.read_bytes().removeprefix(BOM)
        try:
            record = parse_json(path, data, EXPECTED_EXPRESSION)
        except InputError as error:
            problems.report(error)
            return None
        text = data.decode("utf-8")  # parse_json has checked the bytes
        problem = _expression_problem(record)
        if problem is not None:
            message, needle = problem
            problems.report(InputError(path, line_of(text, needle), message, EXPECTED_EXPRESSION))
            return None
        record["label"] = {key: [_integer(i) for i in ids] for key, ids in record["label"].items()}
        return text, record


def _expression_problem(record: Any) -> tuple[str, str] | None:
    """What is wrong with an expression record and the text to find its line by, or None."""
    if not isinstance(record, dict):
        return "not a JSON object", ""
    if not isinstance(record.get("sentence"), str) or not record["sentence"].strip():
        return 'no "sentence" string', '"sentence"'
    if "raw_sentence" in record and not isinstance(record["raw_sentence"], str):
        return '"raw_sentence" is not a string', '"raw_sentence"'
    label = record.get("label")
    if not isinstance(label, dict):
        return '"label" is missing or not an object', '"label"'
    if not isinstance(record.get("ignore", []), list):
        return '"ignore" is not a list', '"ignore"'
    for key, ids in label.items():
        if not key.isdigit():
            return f"label key {key!r} is not a frame number", f'"{key}"'
        if not isinstance(ids, list):
            return f"label of frame {key} is not a list of ids", f'"{key}"'
        bad = next((i for i in ids if _integer(i) is None or _integer(i) < 0), None)
        if bad is not None:
            return f"frame {key}: id {bad!r} is not a non-negative integer", f'"{key}"'
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


READER = ReferKittiReader(
    "refer-kitti",
    "Refer-KITTI: KITTI images, labels_with_ids and expression JSONs (referring MOT)",
    lenient_missing_ids=False,
)
V2_READER = ReferKittiReader(
    "refer-kitti-v2",
    "Refer-KITTI-V2: as Refer-KITTI; ids missing from the labels are listed, not fatal",
    lenient_missing_ids=True,
)
