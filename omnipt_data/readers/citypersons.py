"""CityPersons: Cityscapes-style JSON boxes, one file per image.

Layout (the Cityscapes downloads ``gtBbox_cityPersons_trainval.zip`` and ``leftImg8bit_trainvaltest.zip``
unpacked side by side; ``SRC`` may be the dataset root, ``gtBbox_cityPersons_trainval``,
``gtBboxCityPersons``, a split folder, a city folder or one JSON file)::

    gtBbox_cityPersons_trainval/gtBboxCityPersons/<split>/<city>/<city>_<seq>_<frame>_gtBboxCityPersons.json
    leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png

``gtBboxCityPersons`` directly under the root and ``leftImg8bit_trainvaltest/leftImg8bit`` are accepted too.
Each file is ``{"imgWidth", "imgHeight", "objects": [{"label", "bbox": [x, y, w, h], "bboxVis": [x, y, w,
h], "instanceId"}]}`` (the fields cityscapesScripts' ``CsBbox2d`` reads). Labels and their class ids
(the ids of cityscapesScripts' ``labels_cityPersons.py`` and of the original MATLAB annotations):
0 ``ignore`` (fake humans: posters, reflections), 1 ``pedestrian``, 2 ``rider``, 3 ``sitting person``,
4 ``person (other)``, 5 ``person group``. ``ignore`` and ``person group`` are ignore regions. ``bbox`` is
the full-body box (for classes 1 and 2; for the others it equals the visible box), ``bboxVis`` the visible
part. ``instanceId`` and any other object keys ride in ``extra``.

A malformed file (bad JSON, a bad object) is reported at its line; ``--lenient`` skips the whole file
(its image is left out rather than kept with a person unannotated).

Store: one sequence per split and city (``citypersons/train/aachen``), one frame per JSON file in file-name
order, sizes from ``imgWidth``/``imgHeight``, image paths relative to the folder holding ``leftImg8bit``.

Not read: the original MATLAB release (``anno_train.mat``/``anno_val.mat``, rows ``[class, x1, y1, w, h,
instance_id, x1_vis, y1_vis, w_vis, h_vis]``) exists only as ``.mat`` files, not as text; convert those
with the JSON release instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers.base import Batch, ReadOptions, Unit, file_size
from omnipt_data.readers.jsontext import load_json, value_error
from omnipt_data.schema import SOURCE_GT, frame_uid, sequence_uid

DATASET = "citypersons"
ANNOTATION_SUFFIX = "_gtBboxCityPersons.json"
IMAGE_SUFFIX = "_leftImg8bit.png"
ANNOTATION_DIR = "gtBboxCityPersons"
IMAGE_DIR = "leftImg8bit"
SPLITS = ("train", "val", "test")
LABELS: dict[str, int] = {
    "ignore": 0,
    "pedestrian": 1,
    "rider": 2,
    "sitting person": 3,
    "person (other)": 4,
    "person group": 5,
}
IGNORE_LABELS = frozenset({"ignore", "person group"})
EXPECTED_FILE = (
    '{"imgWidth": int, "imgHeight": int, "objects": [{"label", "bbox": [x, y, w, h], '
    '"bboxVis": [x, y, w, h], "instanceId"}]}'
)
EXPECTED_OBJECT = f'an object with "label" in {sorted(LABELS)}, "bbox" and "bboxVis" = [x, y, w, h]'


def xywh_corners(value: Any, key: str) -> tuple[float, float, float, float]:
    """Corners of an ``[x, y, w, h]`` list; raises ValueError saying what is wrong."""
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError(f"{key} is {value!r}, not a list of 4 numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{key} has a non-numeric value: {value!r}")
    x, y, w, h = (float(v) for v in value)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise ValueError(f"{key} has NaN or infinite values")
    if w < 0 or h < 0:
        raise ValueError(f"{key} has a negative size {w:g}x{h:g}")
    return x, y, x + w, y + h


def _annotation_top(city_dir: Path) -> Path:
    """The folder holding the split folders (``gtBboxCityPersons`` in the official layout)."""
    split_dir = city_dir.parent
    return split_dir.parent if split_dir.name in SPLITS else city_dir.parent


def image_layout(city_dir: Path) -> tuple[Path, Path | None]:
    """The dataset root that image paths are relative to, and the ``leftImg8bit`` folder if present."""
    top = _annotation_top(city_dir)
    candidates = [top.parent, top.parent.parent]
    for root in candidates:
        for images in (root / IMAGE_DIR, root / "leftImg8bit_trainvaltest" / IMAGE_DIR):
            if images.is_dir():
                return root, images
    root = top.parent.parent if top.parent.name.lower().startswith("gtbbox") else top.parent
    return root, None


def find_annotations(path: Path) -> list[Path]:
    """Every ``*_gtBboxCityPersons.json`` under ``path`` (or ``path`` itself), sorted."""
    if path.is_file():
        return [path] if path.name.endswith(ANNOTATION_SUFFIX) else []
    return sorted(path.rglob(f"*{ANNOTATION_SUFFIX}"))


class CityPersonsReader:
    name = "citypersons"
    videos = False  # its sequences are image collections
    version = "1"
    description = "CityPersons gtBboxCityPersons JSON files (full and visible boxes, ignore regions)"

    def sniff(self, path: Path) -> bool:
        """A JSON file, a city or split folder holding them, or a folder holding ``gtBboxCityPersons``."""
        if path.is_file():
            return path.name.endswith(ANNOTATION_SUFFIX)
        if not path.is_dir():
            return False
        if (path / ANNOTATION_DIR).is_dir() or (
            path / "gtBbox_cityPersons_trainval" / ANNOTATION_DIR
        ).is_dir():
            return True
        return any(next(path.glob("*/" * depth + f"*{ANNOTATION_SUFFIX}"), None) for depth in range(3))

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        files = find_annotations(path)
        if not files:
            raise OmniptError(
                f"{path}: no *{ANNOTATION_SUFFIX} file (expected {ANNOTATION_DIR}/<split>/<city>/)"
            )
        cities: dict[Path, int] = {}
        for file in files:
            cities[file.parent] = cities.get(file.parent, 0) + file_size(file)
        return [
            Unit(city, size, f"{self._split(city, options)}/{city.name}") for city, size in cities.items()
        ]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        files = find_annotations(path)
        folder = files[0].parent if files else (path.parent if path.is_file() else path)
        root, _ = image_layout(folder)
        return {options.dataset or DATASET: str(root.resolve())}

    @staticmethod
    def _split(city_dir: Path, options: ReadOptions) -> str:
        if options.split:
            return options.split
        return city_dir.parent.name if city_dir.parent.name in SPLITS else "train"

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        dataset = options.dataset or DATASET
        split = self._split(unit.path, options)
        city = unit.path.name
        seq_uid = sequence_uid(dataset, split, city)
        image_root, images_dir = image_layout(unit.path)
        relative_dir = (
            (images_dir / split / city).relative_to(image_root).as_posix()
            if images_dir
            else f"{IMAGE_DIR}/{split}/{city}"
        )
        files = [root] if root.is_file() else sorted(unit.path.glob(f"*{ANNOTATION_SUFFIX}"))
        frames: list[dict[str, Any]] = []
        boxes: list[dict[str, Any]] = []
        for file in files:
            record = self._parse_file(file, options)
            if record is None:
                continue
            image_name = file.name[: -len(ANNOTATION_SUFFIX)] + IMAGE_SUFFIX
            if images_dir and not (images_dir / split / city / image_name).is_file():
                options.problems.report(
                    InputError(
                        file,
                        None,
                        f"no image {image_name} in {images_dir / split / city}",
                        "an image per annotation file",
                    )
                )
                continue
            index = len(frames) + 1
            fuid = frame_uid(seq_uid, index)
            frames.append(
                {
                    "frame_uid": fuid,
                    "frame_index": index,
                    "image_path": f"{relative_dir}/{image_name}",
                    "width": record["imgWidth"],
                    "height": record["imgHeight"],
                }
            )
            boxes.extend(self._boxes(record["objects"], fuid))
        sizes = {(f["width"], f["height"]) for f in frames}
        width, height = sizes.pop() if len(sizes) == 1 else (None, None)
        batch: Batch = {
            "sequences": pl.DataFrame(
                {
                    "sequence_uid": [seq_uid],
                    "dataset": [dataset],
                    "split": [split],
                    "sequence": [city],
                    "length": [len(frames)],
                    "width": [width],
                    "height": [height],
                    "image_dir": [relative_dir],
                },
                schema_overrides={"length": pl.Int32, "width": pl.Int32, "height": pl.Int32},
            )
        }
        if frames:
            batch["frames"] = pl.DataFrame(
                frames, schema_overrides={"frame_index": pl.Int32, "width": pl.Int32, "height": pl.Int32}
            ).with_columns(
                sequence_uid=pl.lit(seq_uid),
                dataset=pl.lit(dataset),
                split=pl.lit(split),
                sequence=pl.lit(city),
            )
        if boxes:
            batch["boxes"] = pl.DataFrame(boxes, infer_schema_length=None)
        yield batch

    @staticmethod
    def _parse_file(path: Path, options: ReadOptions) -> dict[str, Any] | None:
        """The validated record of one file (boxes as corners), or None when it was reported."""
        try:
            record = load_json(path, EXPECTED_FILE)
        except InputError as error:
            options.problems.report(error)
            return None
        if not isinstance(record, dict):
            options.problems.report(InputError(path, 1, "not a JSON object", EXPECTED_FILE))
            return None
        for key in ("imgWidth", "imgHeight"):
            value = record.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                options.problems.report(
                    value_error(path, [key], f"{key} is {value!r}, not a positive integer", EXPECTED_FILE)
                )
                return None
        objects = record.get("objects")
        if not isinstance(objects, list):
            options.problems.report(
                value_error(path, ["objects"], '"objects" is missing or not a list', EXPECTED_FILE)
            )
            return None
        parsed = []
        for k, obj in enumerate(objects):
            try:
                parsed.append(CityPersonsReader._parse_object(obj))
            except ValueError as exc:
                options.problems.report(value_error(path, ["objects", k], str(exc), EXPECTED_OBJECT))
                return None
        return {"imgWidth": record["imgWidth"], "imgHeight": record["imgHeight"], "objects": parsed}

    @staticmethod
    def _parse_object(obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise ValueError(f"{obj!r} is not an object")
        label = obj.get("label")
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}")
        full = xywh_corners(obj.get("bbox"), "bbox")
        visible = xywh_corners(obj["bboxVis"], "bboxVis") if obj.get("bboxVis") is not None else None
        extra = {k: v for k, v in obj.items() if k not in ("label", "bbox", "bboxVis")}
        return {"label": label, "full": full, "visible": visible, "extra": extra}

    @staticmethod
    def _boxes(objects: list[dict[str, Any]], fuid: str) -> list[dict[str, Any]]:
        rows = []
        for k, obj in enumerate(objects):
            full = obj["full"]
            visible = obj["visible"] or (None, None, None, None)
            rows.append(
                {
                    "box_uid": f"{fuid}/gt/{k}",
                    "frame_uid": fuid,
                    "category": obj["label"],
                    "class_id": LABELS[obj["label"]],
                    "x1": full[0],
                    "y1": full[1],
                    "x2": full[2],
                    "y2": full[3],
                    "vis_x1": visible[0],
                    "vis_y1": visible[1],
                    "vis_x2": visible[2],
                    "vis_y2": visible[3],
                    "ignore": obj["label"] in IGNORE_LABELS,
                    "source": SOURCE_GT,
                    "extra": orjson.dumps(obj["extra"], option=orjson.OPT_SORT_KEYS).decode(),
                }
            )
        return rows


READER = CityPersonsReader()
