"""COCO instances JSON, person category only.

Layouts (``SRC`` is the dataset root, its ``annotations/`` folder, or one JSON file)::

    annotations/instances_<name>.json         e.g. instances_train2017.json, instances_val2017.json
    annotations/person_keypoints_<name>.json  the same person boxes plus 17 keypoints each
    <name>/<file_name>                        images (``images/<name>/`` is searched too)

When a folder holds both files of one ``<name>``, ``person_keypoints_<name>.json`` is read (it has every
person annotation of ``instances_<name>.json`` plus keypoints) so that no image is converted twice. Other
COCO-style files (any name) are read when passed directly.

Only the ``person`` category is kept (a category named ``pedestrian`` too, as some COCO-style exports name
it); images without an annotation of either are left out. ``iscrowd = 1`` boxes are ignore regions.
``bbox`` ``[x, y, w, h]`` becomes the box, the category id its ``class_id``; the rest of the annotation
(``id``, ``image_id``, ``area``, ``iscrowd``, ``keypoints`` as 17 x 3 values ``x, y, v``, ``num_keypoints``,
...) rides in ``extra`` (sorted-key JSON), without ``segmentation`` (polygons and RLE masks are not kept).
One sequence per file, named after it (``coco/train/train2017``); frames are numbered in the order of the
file's ``images`` list; sizes come from the image records (``width``, ``height``).

A file whose objects hold only COCO's own keys, each of the type it should have, with nothing to report, is
decoded straight into typed records (msgspec: the polygons are skipped, never built), which takes less than
half the time of a plain parse. Any other file is parsed as JSON (a syntax error is reported with its line
and column); its annotations are then checked and turned into rows a column at a time (no Python code runs
per annotation). Only when those checks find a problem are the annotations walked one by one, to report
each bad one at the line and column where it is written (COCO files are often one long line: the column
says where). Both ways give the same rows.
Images and annotations are matched by id as ``pycocotools.coco.COCO`` matches them (keys compared as
Python values). ``--lenient`` leaves out the images of bad person annotations, and the whole file when it
does not parse.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers.base import (
    BOM,
    Batch,
    ReadOptions,
    Unit,
    escape_problem,
    escapes,
    file_size,
    image_size,
)
from omnipt_data.readers.jsontext import parse_json, read_document, value_error
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
FRAME_COLUMNS = {
    "frame_uid": pl.String,
    "frame_index": pl.Int32,
    "image_path": pl.String,
    "width": pl.Int32,
    "height": pl.Int32,
}
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
    """Whether the annotation can be placed at all (its id, image and category are keys of the index)."""
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
        dataset = options.dataset or DATASET
        name = collection_name(unit.path)
        split = options.split or split_of(name)
        seq_uid = sequence_uid(dataset, split, name)
        base = dataset_root(unit.path)
        folder = images_dir(unit.path)
        relative = folder.relative_to(base).as_posix() if folder and folder.is_relative_to(base) else name
        sequence = {
            "sequence_uid": [seq_uid],
            "dataset": [dataset],
            "split": [split],
            "sequence": [name],
            "image_dir": [relative],
        }
        with collector_paused():
            tables = self._read_file(unit.path, folder, seq_uid, relative, options)
        if tables is None:
            yield {"sequences": pl.DataFrame(sequence)}
            return
        frames, boxes, box_frames = tables
        labels = {"sequence_uid": seq_uid, "dataset": dataset, "split": split, "sequence": name}
        frames = frames.with_columns(**{key: pl.lit(value) for key, value in labels.items()})
        boxes = boxes.with_columns(source=pl.lit(SOURCE_GT))
        sequence["length"] = [frames.height]
        sequence_row = {"sequences": pl.DataFrame(sequence, schema_overrides={"length": pl.Int32})}
        # batches of BATCH_IMAGES frames (and their boxes); the sequence row before a last, partial one
        full, rest = divmod(frames.height, BATCH_IMAGES)
        starts = np.searchsorted(box_frames, np.arange(full + 2) * BATCH_IMAGES + 1)
        for k in range(full + (rest > 0)):
            if k == full:
                yield sequence_row
            batch: Batch = {"frames": frames.slice(k * BATCH_IMAGES, BATCH_IMAGES)}
            if starts[k + 1] > starts[k]:
                batch["boxes"] = boxes.slice(starts[k], starts[k + 1] - starts[k])
            yield batch
        if not rest:
            yield sequence_row

    def _read_file(
        self, path: Path, folder: Path | None, seq_uid: str, relative: str, options: ReadOptions
    ) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray] | None:
        """The frames and boxes of one annotation file (see :meth:`_tables`), or None when it is unusable.

        The parsed document is the bulk of the memory; it is freed on return, before the rows are written.
        """
        try:
            raw = read_document(path, EXPECTED_FILE)
        except InputError as error:
            options.problems.report(error)
            return None
        typed = _typed_persons(raw, folder)
        if typed is not None:
            del raw
            return self._tables(*typed, seq_uid, relative, folder)
        try:
            data = parse_json(path, raw, EXPECTED_FILE)
        except InputError as error:
            options.problems.report(error)
            return None
        del raw
        persons = self._checked_persons(path, data, folder, options)
        if persons is None:
            return None
        images = data["images"]
        return self._tables(
            lambda k: (images[k]["file_name"], images[k].get("width"), images[k].get("height")),
            persons,
            seq_uid,
            relative,
            folder,
        )

    def _checked_persons(
        self, path: Path, data: Any, folder: Path | None, options: ReadOptions
    ) -> _Persons | None:
        """Check the file and the person annotations we read.

        Returns the person annotations to read (without those left out in lenient mode: bad ones and every
        one on an image with a bad one), or None when the file is unusable.
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
        category_names: dict[Any, str] = {}
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
            category_names[category["id"]] = category["name"]  # the last of a repeated id names it
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
        annotations = data["annotations"]
        columns = _index_columns(annotations)
        skipped_annotations: set[Any] = set()
        rows = None if columns is None else self._valid_rows(annotations, columns, images, person_categories)
        if rows is None:
            # only now walk the annotations one by one, to report each bad one where it is written
            found = self._report_annotations(
                path, annotations, images, person_categories, skipped_images, options
            )
            if found is None:
                return None
            skipped_annotations = found
            columns = _index_columns(annotations)
            assert columns is not None  # every annotation is indexable once the walk has passed
        ids, image_ids, category_ids = columns
        is_person = list(map(person_categories.__contains__, category_ids))
        person_images = set(compress(image_ids, is_person)) - skipped_images
        for image_id in sorted(person_images, key=images.__getitem__):
            k = images[image_id]
            problem = self._image_problem(data["images"][k], folder)
            if problem:
                problems.report(value_error(path, ["images", k], problem, EXPECTED_IMAGE))
                skipped_images.add(image_id)
        keep = is_person
        if skipped_images or skipped_annotations:
            keep = [
                person and id_ not in skipped_annotations and image_id not in skipped_images
                for person, id_, image_id in zip(is_person, ids, image_ids, strict=True)
            ]
        kept = list(compress(annotations, keep))
        if rows is None:
            rows = _person_rows(kept)
            assert rows is not None  # every annotation left has passed the checks
        elif keep is not is_person:
            kept_persons = np.fromiter(compress(keep, is_person), bool)
            rows = rows[0][kept_persons], rows[1][kept_persons]
        return _Persons(
            extras=_extras(kept),
            boxes=rows[0],
            ignore=rows[1],
            image_rows=list(map(images.__getitem__, compress(image_ids, keep))),
            category_ids=list(compress(category_ids, keep)),
            category_names=category_names,
        )

    @staticmethod
    def _valid_rows(
        annotations: list[Any],
        columns: tuple[list[Any], ...],
        images: dict[Any, int],
        person_categories: set[Any],
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """What :meth:`_annotation_problem` checks, on whole columns: when no annotation has a problem, the
        boxes and ignore flags of the person annotations (see :func:`_person_rows`), else None."""
        ids, image_ids, category_ids = columns
        if not {*map(type, chain(ids, image_ids, category_ids))} <= {int, str} or len(set(ids)) < len(ids):
            return None
        is_person = list(map(person_categories.__contains__, category_ids))
        if not all(map(images.__contains__, compress(image_ids, is_person))):
            return None
        return _person_rows(list(compress(annotations, is_person)))

    def _report_annotations(
        self,
        path: Path,
        annotations: list[Any],
        images: dict[Any, int],
        person_categories: set[Any],
        skipped_images: set[Any],
        options: ReadOptions,
    ) -> set[Any] | None:
        """Report each bad annotation; returns the ids to leave out (their images join ``skipped_images``),
        or None when an annotation cannot be placed at all."""
        skipped_annotations: set[Any] = set()
        image_of_annotation: dict[Any, Any] = {}
        for k, annotation in enumerate(annotations):
            problem = self._annotation_problem(annotation, images, image_of_annotation, person_categories)
            if problem is None:
                image_of_annotation[annotation["id"]] = annotation["image_id"]
                continue
            options.problems.report(value_error(path, ["annotations", k], problem, EXPECTED_ANNOTATION))
            if not _indexable(annotation):
                return None
            # lenient: leave out the whole image rather than keep it with a person unannotated
            skipped_annotations.add(annotation["id"])
            skipped_images.update({annotation["image_id"], image_of_annotation.get(annotation["id"])})
        return skipped_annotations

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
    def _tables(
        image_at: Callable[[int], tuple[str, Any, Any]],
        persons: _Persons,
        seq_uid: str,
        relative: str,
        folder: Path | None,
    ) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
        """The frames (images with a kept person, in file order) and their boxes (by frame, then as
        written), with each box's frame index. ``image_at(k)``: the ``file_name``, ``width`` and ``height``
        of the ``k``-th image record (None where the record has no size)."""
        frame_rows, frame_of_box = np.unique(np.asarray(persons.image_rows, np.int64), return_inverse=True)
        order = np.argsort(frame_of_box, kind="stable")
        box_frames = frame_of_box[order] + 1
        rank = np.arange(len(order)) - np.searchsorted(box_frames, box_frames)
        count = len(frame_rows)
        frame_uids = pl.Series([frame_uid(seq_uid, k) for k in range(1, count + 1)], dtype=pl.String)
        records = [image_at(k) for k in frame_rows.tolist()]
        sizes = [(width, height) for _, width, height in records]
        if folder is not None:
            sizes = [
                image_size(folder / name) if None in size else size
                for (name, _, _), size in zip(records, sizes, strict=True)
            ]
        frames = pl.DataFrame(
            {
                "frame_uid": frame_uids,
                "frame_index": np.arange(1, count + 1, dtype=np.int32),
                "image_path": [f"{relative}/{name}" for name, _, _ in records],
                "width": [width for width, _ in sizes],
                "height": [height for _, height in sizes],
            },
            schema=FRAME_COLUMNS,
        )
        xywh = persons.boxes[order]
        category_ids = persons.category_ids
        names = {c: persons.category_names[c] for c in set(category_ids)}
        class_ids = {c: c if isinstance(c, int) and -(2**15) <= c < 2**15 else None for c in names}
        gather = pl.Series(order)
        boxes = pl.DataFrame(
            {
                "box_uid": frame_uids.gather(box_frames - 1) + "/gt/" + pl.Series(rank).cast(pl.String),
                "frame_uid": frame_uids.gather(box_frames - 1),
                "category": pl.Series(list(map(names.__getitem__, category_ids)), dtype=pl.String).gather(
                    gather
                ),
                "class_id": pl.Series(list(map(class_ids.__getitem__, category_ids)), dtype=pl.Int16).gather(
                    gather
                ),
                "x1": xywh[:, 0],
                "y1": xywh[:, 1],
                "x2": xywh[:, 0] + xywh[:, 2],
                "y2": xywh[:, 1] + xywh[:, 3],
                "ignore": persons.ignore[order],
                "extra": persons.extras.gather(gather),
            },
            schema=BOX_COLUMNS,
        )
        return frames, boxes, box_frames


@dataclass
class _Persons:
    """The person annotations to read, in file order, with their images' places in ``images``."""

    extras: pl.Series  # the rest of each annotation (see :func:`_extras`)
    boxes: np.ndarray  # their bbox rows x, y, w, h
    ignore: np.ndarray  # iscrowd = 1
    image_rows: list[int]
    category_ids: list[Any]
    category_names: dict[Any, str]


class _Annotation(msgspec.Struct, forbid_unknown_fields=True):
    """An annotation with COCO's own keys only: a file with any other key takes the checking path, which
    keeps that key in ``extra``."""

    id: int | str
    image_id: int | str
    category_id: int | str
    bbox: tuple[float, float, float, float]
    area: int | float | msgspec.UnsetType = msgspec.UNSET
    iscrowd: int | msgspec.UnsetType = msgspec.UNSET
    keypoints: list[int | float] | msgspec.UnsetType | None = msgspec.UNSET
    num_keypoints: int | msgspec.UnsetType = msgspec.UNSET
    segmentation: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET  # skipped over, never built


#: The keys of :class:`_Annotation` that ride in ``extra`` (all but :data:`DROPPED_KEYS`).
_EXTRA_KEYS = tuple(sorted(set(_Annotation.__struct_fields__) - set(DROPPED_KEYS)))


class _Image(msgspec.Struct):
    id: int | str
    file_name: str
    width: int | None = None
    height: int | None = None


class _Category(msgspec.Struct):
    id: int | str
    name: str


class _Document(msgspec.Struct):
    images: list[_Image]
    annotations: list[_Annotation]
    categories: list[_Category]


_DECODER = msgspec.json.Decoder(_Document)


def _typed_persons(
    raw: bytes, folder: Path | None
) -> tuple[Callable[[int], tuple[str, Any, Any]], _Persons] | None:
    """What :meth:`CocoReader._checked_persons` gives (with the image records' lookup) for a file that
    decodes into :class:`_Document` and has nothing to report; None for any other file, which the
    checking path then parses, checks and reports on. Every check here is at least as strict as there."""
    try:
        document = _DECODER.decode(raw.removeprefix(BOM))
    except msgspec.DecodeError:  # a syntax error, another key, another type: the checking path says which
        return None
    person_categories = {c.id for c in document.categories if c.name in PERSON_NAMES}
    category_names = {c.id: c.name for c in document.categories}  # the last of a repeated id names it
    records = document.images
    images: dict[Any, int] = {}
    for k, image in enumerate(records):
        images.setdefault(image.id, k)
    ids = [a.id for a in document.annotations]
    if len(images) < len(records) or len(set(ids)) < len(ids):
        return None
    persons = [a for a in document.annotations if a.category_id in person_categories]
    del document
    if not all(a.image_id in images for a in persons):
        return None
    boxes = np.array([a.bbox for a in persons], np.float64).reshape(-1, 4)
    crowds = [0 if a.iscrowd is msgspec.UNSET else a.iscrowd for a in persons]
    keypoints = [a.keypoints for a in persons if a.keypoints]
    if (
        not _usable_boxes(boxes)
        or not {*crowds} <= {0, 1}
        or any(len(values) % 3 for values in keypoints)
        or not all(map(math.isfinite, chain.from_iterable(keypoints)))
    ):
        return None
    for image_id in {a.image_id for a in persons}:
        image = records[images[image_id]]
        record = {"file_name": image.file_name, "width": image.width, "height": image.height}
        if CocoReader._image_problem(record, folder):
            return None
    extras = _extras(
        [
            {key: value for key in _EXTRA_KEYS if (value := getattr(a, key)) is not msgspec.UNSET}
            for a in persons
        ]
    )
    found = _Persons(
        extras=extras,
        boxes=boxes,
        ignore=np.array(crowds, np.float64) == 1,
        image_rows=[images[a.image_id] for a in persons],
        category_ids=[a.category_id for a in persons],
        category_names=category_names,
    )
    return lambda k: (records[k].file_name, records[k].width, records[k].height), found


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Parsing and indexing a file makes millions of objects and no reference cycle: the cyclic garbage
    collector, left on, walks them over and over while they are being made (half the time of the parse)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _index_columns(annotations: list[Any]) -> tuple[list[Any], list[Any], list[Any]] | None:
    """The ``id``, ``image_id`` and ``category_id`` of every annotation; None when one lacks them."""
    try:
        ids, image_ids, category_ids = (list(map(itemgetter(key), annotations)) for key in INDEX_KEYS)
    except (KeyError, TypeError):  # a missing key, or an annotation that is not an object
        return None
    return ids, image_ids, category_ids


def _person_rows(annotations: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    """The boxes (rows ``x, y, w, h``) and ignore flags (``iscrowd = 1``) of person annotations; None when a
    ``bbox``, ``iscrowd`` or ``keypoints`` has a problem (as :meth:`CocoReader._annotation_problem` finds).

    The parser yields no NaN or infinity (orjson rejects them), so the types of the numbers say it all.
    """
    boxes = _box_array(annotations)
    crowds = list(map(dict.get, annotations, repeat("iscrowd"), repeat(0)))
    try:
        if boxes is None or not {*crowds} <= {0, 1}:
            return None
    except TypeError:  # an unhashable value (a list, an object) is not 0 or 1 either
        return None
    keypoints = list(map(dict.get, annotations, repeat("keypoints")))
    kinds = {*map(type, keypoints)}
    if not kinds <= {list, type(None)}:
        return None
    if list in kinds:
        lists = [*filter(None, keypoints)]  # empty lists hold no value to check
        if any(map((3).__rmod__, map(len, lists))):  # not x, y, v triples
            return None
        if not {*map(type, chain.from_iterable(lists))} <= {int, float}:
            return None
    return boxes, np.array(crowds, np.float64) == 1


def _box_array(annotations: list[dict[str, Any]]) -> np.ndarray | None:
    """The ``bbox`` of each annotation as rows ``x, y, w, h``; None when one is not 4 finite numbers with a
    size of at least 0."""
    try:
        boxes = list(map(itemgetter("bbox"), annotations))
    except KeyError:
        return None
    if not {*map(type, boxes)} <= {list} or not {*map(len, boxes)} <= {4}:
        return None
    values = list(chain.from_iterable(boxes))
    if not {*map(type, values)} <= {int, float}:
        return None
    xywh = np.array(values, np.float64).reshape(-1, 4)
    return xywh if _usable_boxes(xywh) else None


def _usable_boxes(xywh: np.ndarray) -> bool:
    """Whether every row ``x, y, w, h`` is finite with a size of at least 0 (what :func:`_check_box` asks of
    one box)."""
    return bool(np.isfinite(xywh).all()) and not (xywh[:, 2:] < 0).any()


def _extras(annotations: list[dict[str, Any]]) -> pl.Series:
    """Each annotation less :data:`DROPPED_KEYS` as sorted-key JSON, the bytes ``orjson.dumps`` writes for it.

    The dropped keys are taken out of the annotations themselves (the parsed file is ours and read by now),
    and the whole list is dumped at once with a marker string between the annotations, where the dump is
    split: one dump per annotation is several times slower.
    """
    for key in DROPPED_KEYS:
        list(map(dict.pop, annotations, repeat(key), repeat(None)))
    marked = orjson.dumps(
        [*chain.from_iterable(zip(annotations, repeat(_MARK)))], option=orjson.OPT_SORT_KEYS
    )
    inner = marked.decode()[1 : -len(f",{_MARK_JSON}]")] if annotations else ""
    pieces = inner.split(f",{_MARK_JSON},") if annotations else []
    if len(pieces) == len(annotations):
        return pl.Series("extra", pieces, pl.String)
    # an annotation that holds the marker string (in a list): the split is off, so one dump per annotation
    return pl.Series(
        "extra", [orjson.dumps(a, option=orjson.OPT_SORT_KEYS).decode() for a in annotations], pl.String
    )


# orjson writes this string as "\u0000" (control characters are escaped), so that between two objects of a
# dumped list it reads ',"\u0000",'
_MARK = "\x00"
_MARK_JSON = orjson.dumps(_MARK).decode()


READER = CocoReader()
