"""COCO instances JSON, person category only (read through pycocotools).

Layouts (``SRC`` is the dataset root, its ``annotations/`` folder, or one JSON file)::

    annotations/instances_<name>.json         e.g. instances_train2017.json, instances_val2017.json
    annotations/person_keypoints_<name>.json  the same person boxes plus 17 keypoints each
    <name>/<file_name>                        images (``images/<name>/`` is searched too)

When a folder holds both files of one ``<name>``, ``person_keypoints_<name>.json`` is read (it has every
person annotation of ``instances_<name>.json`` plus keypoints) so that no image is converted twice. Other
COCO-style files (any name) are read when passed directly.

Only the ``person`` category is kept (a category named ``pedestrian`` too, as in CityPersons' COCO-style
evaluation files); images without a person annotation are left out. ``iscrowd = 1`` boxes are ignore
regions. ``bbox`` ``[x, y, w, h]`` becomes the box, the category id its ``class_id``; the rest of the
annotation (``id``, ``image_id``, ``area``, ``iscrowd``, ``keypoints`` as 17 x 3 values ``x, y, v``,
``num_keypoints``, ...) rides in ``extra`` (sorted-key JSON), without ``segmentation`` (polygons and RLE
masks are not kept). One sequence per file, named after it (``coco/train/train2017``); frames are numbered
in the order of the file's ``images`` list; sizes come from the image records (``width``, ``height``).

The file is parsed once (a syntax error is reported with its line and column), checked, and then indexed
with ``pycocotools.coco.COCO`` (its console messages are silenced); a bad annotation is reported at the
line and column where it is written (COCO files are often one long line: the column says where).
``--lenient`` leaves out the images of bad person annotations, and the whole file when it does not parse.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers.base import Batch, ReadOptions, Unit, escape_problem, escapes, file_size, image_size
from omnipt_data.readers.jsontext import load_json, value_error
from omnipt_data.schema import SOURCE_GT, frame_uid, sequence_uid

DATASET = "coco"
PERSON_NAMES = ("person", "pedestrian")
PREFIXES = ("person_keypoints_", "instances_")
BATCH_IMAGES = 2000
SPLITS = ("train", "val", "test")
EXPECTED_FILE = 'a COCO instances object {"images": [...], "annotations": [...], "categories": [...]}'
EXPECTED_ANNOTATION = (
    'an annotation {"id", "image_id", "category_id", "bbox": [x, y, w, h], "iscrowd": 0|1, '
    '"keypoints": [x, y, v, ...]}'
)
EXPECTED_IMAGE = 'an image {"id", "file_name": str, "width": int, "height": int}'
DROPPED_KEYS = ("bbox", "category_id", "segmentation")
INDEX_KEYS = ("id", "image_id", "category_id")
BOX_COLUMNS = {
    "box_uid": pl.String,
    "frame_uid": pl.String,
    "category": pl.String,
    "class_id": pl.Int16,
    "x1": pl.Float64,
    "y1": pl.Float64,
    "x2": pl.Float64,
    "y2": pl.Float64,
    "ignore": pl.Boolean,
    "extra": pl.String,
}


def collection_name(path: Path) -> str:
    """``instances_val2017.json`` -> ``val2017``; other files -> their stem."""
    stem = path.stem
    for prefix in PREFIXES:
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem


def split_of(name: str) -> str:
    lowered = name.lower()
    return next((s for s in SPLITS if s in lowered), "train")


def dataset_root(annotation_file: Path) -> Path:
    """The folder that image paths are relative to: the parent of ``annotations/``."""
    folder = annotation_file.parent
    return folder.parent if folder.name == "annotations" else folder


def images_dir(annotation_file: Path) -> Path | None:
    root, name = dataset_root(annotation_file), collection_name(annotation_file)
    return next((d for d in (root / name, root / "images" / name) if d.is_dir()), None)


def find_annotation_files(path: Path) -> list[Path]:
    """Annotation files of a folder, one per collection (``person_keypoints_*`` preferred)."""
    if path.is_file():
        return [path]
    folder = path / "annotations" if (path / "annotations").is_dir() else path
    chosen: dict[str, Path] = {}
    for prefix in reversed(PREFIXES):  # later prefixes win: person_keypoints_ over instances_
        for file in sorted(folder.glob(f"{prefix}*.json")):
            chosen[collection_name(file)] = file
    return [chosen[name] for name in sorted(chosen)]


def _looks_like_coco(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError:
        return False
    return b'"images"' in head and (b'"annotations"' in head or b'"categories"' in head)


def _indexable(annotation: Any) -> bool:
    """Whether pycocotools can index the annotation (it keys dictionaries on these fields)."""
    return isinstance(annotation, dict) and all(isinstance(annotation.get(k), int | str) for k in INDEX_KEYS)


def _number(value: Any) -> bool:
    # exact types: a JSON parser gives int and float (bool is an int subclass, and not a number here)
    return type(value) in (int, float) and math.isfinite(value)


def _check_box(value: Any) -> str | None:
    if type(value) is not list or len(value) != 4:
        return f"bbox is {value!r}, not a list of 4 numbers"
    if not all(map(_number, value)):
        return f"bbox has a non-numeric, NaN or infinite value: {value!r}"
    if value[2] < 0 or value[3] < 0:
        return f"bbox has a negative size {value[2]:g}x{value[3]:g}"
    return None


class CocoReader:
    name = "coco"
    videos = False  # its sequences are image collections
    version = "1"
    description = "COCO instances / person_keypoints JSON: person boxes, crowd regions, keypoints"

    def sniff(self, path: Path) -> bool:
        if path.is_file():
            return path.suffix == ".json" and (path.name.startswith(PREFIXES) or _looks_like_coco(path))
        return path.is_dir() and bool(find_annotation_files(path))

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        files = find_annotation_files(path)
        if not files:
            raise OmniptError(
                f"{path}: no COCO annotation file (annotations/instances_<name>.json or "
                "person_keypoints_<name>.json)"
            )
        return [Unit(f, file_size(f), f.name) for f in files]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        files = find_annotation_files(path)
        root = dataset_root(files[0]) if files else path
        return {options.dataset or DATASET: str(root.resolve())}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        coco_class = _coco_class()
        dataset = options.dataset or DATASET
        name = collection_name(unit.path)
        split = options.split or split_of(name)
        seq_uid = sequence_uid(dataset, split, name)
        base = dataset_root(unit.path)
        folder = images_dir(unit.path)
        relative = folder.relative_to(base).as_posix() if folder and folder.is_relative_to(base) else name
        try:
            data = load_json(unit.path, EXPECTED_FILE)
        except InputError as error:
            options.problems.report(error)
            data = None
        persons = self._checked_persons(unit.path, data, folder, options) if data is not None else None
        sequence = {
            "sequence_uid": [seq_uid],
            "dataset": [dataset],
            "split": [split],
            "sequence": [name],
            "image_dir": [relative],
        }
        if persons is None:
            yield {"sequences": pl.DataFrame(sequence)}
            return
        coco = coco_class()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        person_ids = coco.getCatIds(catNms=list(PERSON_NAMES))
        with_persons = set(coco.getImgIds(catIds=person_ids)) if person_ids else set()
        person_set, skipped_annotations = set(person_ids), persons["skipped_annotations"]
        frames: list[dict[str, Any]] = []
        boxes: list[tuple] = []
        count = 0
        for image in data["images"]:
            if image["id"] not in with_persons or image["id"] in persons["skipped_images"]:
                continue
            # what coco.loadAnns(coco.getAnnIds(imgIds=[id], catIds=person_ids)) gives, in one pass
            annotations = [
                a
                for a in coco.imgToAnns.get(image["id"], ())
                if a["category_id"] in person_set and a["id"] not in skipped_annotations
            ]
            count += 1
            fuid = frame_uid(seq_uid, count)
            width, height = image.get("width"), image.get("height")
            if (width is None or height is None) and folder is not None:
                width, height = image_size(folder / image["file_name"])
            frames.append(
                {
                    "frame_uid": fuid,
                    "frame_index": count,
                    "image_path": f"{relative}/{image['file_name']}",
                    "width": width,
                    "height": height,
                }
            )
            boxes.extend(self._boxes(annotations, fuid, coco.cats))
            if len(frames) >= BATCH_IMAGES:
                yield self._batch(frames, boxes, seq_uid, dataset, split, name)
                frames, boxes = [], []
        sequence["length"] = [count]
        yield {"sequences": pl.DataFrame(sequence, schema_overrides={"length": pl.Int32})}
        if frames:
            yield self._batch(frames, boxes, seq_uid, dataset, split, name)

    def _checked_persons(
        self, path: Path, data: Any, folder: Path | None, options: ReadOptions
    ) -> dict[str, set[Any]] | None:
        """Check what pycocotools indexes and the person annotations we read, before it sees them.

        Returns the image and annotation ids to skip (lenient mode), or None when the file is unusable.
        """
        problems = options.problems
        if not isinstance(data, dict):
            problems.report(InputError(path, 1, "not a JSON object", EXPECTED_FILE))
            return None
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                problems.report(value_error(path, [key], f'"{key}" is missing or not a list', EXPECTED_FILE))
                return None
        person_categories = set()
        for k, category in enumerate(data["categories"]):
            if not isinstance(category, dict) or not isinstance(category.get("id"), int | str):
                problems.report(
                    value_error(path, ["categories", k], "a category without an id", EXPECTED_FILE)
                )
                return None
            if not isinstance(category.get("name"), str):
                problems.report(
                    value_error(path, ["categories", k], "a category without a name", EXPECTED_FILE)
                )
                return None
            if category["name"] in PERSON_NAMES:
                person_categories.add(category["id"])
        images: dict[Any, int] = {}
        skipped_images: set[Any] = set()
        for k, image in enumerate(data["images"]):
            if not isinstance(image, dict) or not isinstance(image.get("id"), int | str):
                problems.report(
                    value_error(
                        path, ["images", k], "an image without an integer or string id", EXPECTED_IMAGE
                    )
                )
                return None
            if image["id"] in images:
                problems.report(
                    value_error(path, ["images", k], f"duplicate image id {image['id']!r}", EXPECTED_IMAGE)
                )
                skipped_images.add(image["id"])
            images.setdefault(image["id"], k)
        skipped_annotations: set[Any] = set()
        image_of_annotation: dict[Any, Any] = {}
        for k, annotation in enumerate(data["annotations"]):
            problem = self._annotation_problem(annotation, images, image_of_annotation, person_categories)
            if problem is None:
                image_of_annotation[annotation["id"]] = annotation["image_id"]
                continue
            problems.report(value_error(path, ["annotations", k], problem, EXPECTED_ANNOTATION))
            if not _indexable(annotation):
                return None  # pycocotools cannot index it at all
            # lenient: leave out the whole image rather than keep it with a person unannotated
            skipped_annotations.add(annotation["id"])
            skipped_images.update({annotation["image_id"], image_of_annotation.get(annotation["id"])})
        person_images = {
            a["image_id"]
            for a in data["annotations"]
            if a["category_id"] in person_categories and a["image_id"] not in skipped_images
        }
        for image_id in sorted(person_images, key=images.__getitem__):
            k = images[image_id]
            problem = self._image_problem(data["images"][k], folder)
            if problem:
                problems.report(value_error(path, ["images", k], problem, EXPECTED_IMAGE))
                skipped_images.add(image_id)
        return {"skipped_images": skipped_images, "skipped_annotations": skipped_annotations}

    @staticmethod
    def _annotation_problem(
        annotation: Any, images: dict[Any, int], seen_ids: dict[Any, Any], person_categories: set[Any]
    ) -> str | None:
        if not isinstance(annotation, dict):
            return "not an object"
        missing = [key for key in INDEX_KEYS if not isinstance(annotation.get(key), (int, str))]
        if missing:
            return f"missing or non-integer {', '.join(missing)}"
        if annotation["id"] in seen_ids:
            return f"duplicate annotation id {annotation['id']!r}"
        if annotation["category_id"] not in person_categories:
            return None
        if annotation["image_id"] not in images:
            return f"image_id {annotation['image_id']!r} is not in images"
        problem = _check_box(annotation.get("bbox"))
        if problem:
            return problem
        if annotation.get("iscrowd", 0) not in (0, 1):
            return f"iscrowd is {annotation['iscrowd']!r}, not 0 or 1"
        keypoints = annotation.get("keypoints")
        if keypoints is not None and (
            not isinstance(keypoints, list) or len(keypoints) % 3 or not all(map(_number, keypoints))
        ):
            return "keypoints is not a list of x, y, v triples"
        return None

    @staticmethod
    def _image_problem(image: dict[str, Any], folder: Path | None) -> str | None:
        file_name = image.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            return "file_name is missing or not a string"
        if escapes(file_name):
            return f"file_name: {escape_problem(file_name)}"
        for key in ("width", "height"):
            value = image.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                return f"{key} is {value!r}, not a positive integer"
        if folder is not None and not (folder / file_name).is_file():
            return f"no image {file_name} in {folder}"
        return None

    @staticmethod
    def _boxes(annotations: list[dict[str, Any]], fuid: str, categories: dict[Any, Any]) -> list[tuple]:
        """Rows of :data:`BOX_COLUMNS` (tuples: far cheaper to build and load than dictionaries)."""
        rows = []
        for k, annotation in enumerate(annotations):
            x, y, w, h = map(float, annotation["bbox"])
            category_id = annotation["category_id"]
            small_id = isinstance(category_id, int) and -(2**15) <= category_id < 2**15
            extra = {key: value for key, value in annotation.items() if key not in DROPPED_KEYS}
            rows.append(
                (
                    f"{fuid}/gt/{k}",
                    fuid,
                    categories[category_id]["name"],
                    category_id if small_id else None,
                    x,
                    y,
                    x + w,
                    y + h,
                    annotation.get("iscrowd", 0) == 1,
                    orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode(),
                )
            )
        return rows

    @staticmethod
    def _batch(
        frames: list[dict[str, Any]],
        boxes: list[tuple],
        seq_uid: str,
        dataset: str,
        split: str,
        name: str,
    ) -> Batch:
        frame_df = pl.DataFrame(
            frames, schema_overrides={"frame_index": pl.Int32, "width": pl.Int32, "height": pl.Int32}
        ).with_columns(
            sequence_uid=pl.lit(seq_uid), dataset=pl.lit(dataset), split=pl.lit(split), sequence=pl.lit(name)
        )
        batch: Batch = {"frames": frame_df}
        if boxes:
            batch["boxes"] = pl.DataFrame(boxes, schema=BOX_COLUMNS, orient="row").with_columns(
                source=pl.lit(SOURCE_GT)
            )
        return batch


def _coco_class() -> type:
    try:
        from pycocotools.coco import COCO
    except ImportError:
        raise OmniptError("the coco reader needs pycocotools: pip install 'omnipt-data[coco]'") from None
    return COCO


READER = CocoReader()
