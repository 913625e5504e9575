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

cityscapesScripts' loader (``helpers/annotation.py``, ``CsBbox2d``) also reads objects written as
``amodal``/``modal`` (the full and visible boxes; ``amodal`` alone stands for both), sizes that ``int()``
accepts, and a top-level ``ignore`` list of ``{"2d": [x, y, w, h]}`` regions: so does this reader.

The original release, ``anno_train.mat`` / ``anno_val.mat`` (in ``SRC``, its ``annotations/`` folder, or
given directly), is read too: one cell array of images ``{cityname, im_name, bbs}``, each ``bbs`` row
``[class, x1, y1, w, h, instance_id, x1_vis, y1_vis, w_vis, h_vis]`` with the class ids above; images are
looked for in ``leftImg8bit/<split>/<city>/`` beside the file or its ``annotations/`` folder (sizes from
their headers; null without them). A malformed image entry is reported by its index in the cell array.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers.base import Batch, ReadOptions, Unit, file_size, image_size
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
EXPECTED_OBJECT = (
    f'an object with "label" in {sorted(LABELS)}, "bbox" and "bboxVis" (or "amodal" and "modal") '
    "= [x, y, w, h]"
)
CLASS_NAMES = {class_id: label for label, class_id in LABELS.items()}
MAT_NAME = re.compile(r"^anno_(train|val|test)\.mat$")
EXPECTED_MAT = (
    "a CityPersons anno_<split>.mat: one cell array of {cityname, im_name, bbs} with bbs rows "
    "[class, x1, y1, w, h, instance_id, x1_vis, y1_vis, w_vis, h_vis]"
)


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


def _size(value: Any) -> int | None:
    """An image size as cityscapesScripts reads it (``int(...)``: 2048, 2048.0 or "2048"), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


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


def find_mat_files(path: Path) -> list[Path]:
    """The original release's ``anno_<split>.mat`` files: ``path`` itself, or in it or in its
    ``annotations/`` folder."""
    if path.is_file():
        return [path] if MAT_NAME.match(path.name) else []
    folders = [f for f in (path, path / "annotations") if f.is_dir()]
    return sorted(p for f in folders for p in f.glob("anno_*.mat") if MAT_NAME.match(p.name))


def mat_split(path: Path) -> str:
    match = MAT_NAME.match(path.name)
    return match.group(1) if match else "train"


def mat_layout(mat: Path) -> tuple[Path, Path | None]:
    """The dataset root image paths are relative to, and the ``leftImg8bit`` folder if present."""
    folder = mat.parent
    candidates = [folder.parent, folder] if folder.name == "annotations" else [folder, folder.parent]
    for root in candidates:
        for images in (root / IMAGE_DIR, root / "leftImg8bit_trainvaltest" / IMAGE_DIR):
            if images.is_dir():
                return root, images
    return candidates[0], None


def _mat_image(cell: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """City, image name and parsed objects of one image of the ``.mat`` cell array."""
    import numpy as np

    record = cell[0, 0] if getattr(cell, "ndim", 0) == 2 else cell
    city = str(np.asarray(record["cityname"]).ravel()[0])
    image_name = str(np.asarray(record["im_name"]).ravel()[0])
    if "/" in city or "/" in image_name or ".." in (city, image_name):
        raise ValueError(f"city {city!r} or image {image_name!r} is not a plain name")
    rows = np.asarray(record["bbs"], dtype=np.float64)
    if rows.size == 0:
        return city, image_name, []
    if rows.ndim != 2 or rows.shape[1] != 10:
        raise ValueError(f"{image_name}: bbs has shape {rows.shape}, not (n, 10)")
    if not np.isfinite(rows).all():
        raise ValueError(f"{image_name}: bbs has NaN or infinite values")
    objects = []
    for k, row in enumerate(rows.tolist()):
        class_id = int(row[0])
        if row[0] != class_id or class_id not in CLASS_NAMES:
            raise ValueError(f"{image_name}: bbs row {k + 1} has class {row[0]:g}, not 0 to 5")
        full = xywh_corners(row[1:5], f"bbs row {k + 1} box")
        visible = xywh_corners(row[6:10], f"bbs row {k + 1} visible box")
        extra = {"instanceId": int(row[5])}
        objects.append({"label": CLASS_NAMES[class_id], "full": full, "visible": visible, "extra": extra})
    return city, image_name, objects


def find_annotations(path: Path) -> list[Path]:
    """Every ``*_gtBboxCityPersons.json`` under ``path`` (or ``path`` itself), sorted."""
    if path.is_file():
        return [path] if path.name.endswith(ANNOTATION_SUFFIX) else []
    return sorted(path.rglob(f"*{ANNOTATION_SUFFIX}"))


class CityPersonsReader:
    name = "citypersons"
    videos = False  # its sequences are image collections
    version = "1"
    description = "CityPersons gtBboxCityPersons JSON or the original anno_<split>.mat (full, visible boxes)"

    def sniff(self, path: Path) -> bool:
        """A JSON file, a city or split folder holding them, or a folder holding ``gtBboxCityPersons``."""
        if path.is_file():
            return path.name.endswith(ANNOTATION_SUFFIX) or bool(find_mat_files(path))
        if not path.is_dir():
            return False
        if (
            find_mat_files(path)
            or (path / ANNOTATION_DIR).is_dir()
            or (path / "gtBbox_cityPersons_trainval" / ANNOTATION_DIR).is_dir()
        ):
            return True
        return any(next(path.glob("*/" * depth + f"*{ANNOTATION_SUFFIX}"), None) for depth in range(3))

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        files = find_annotations(path)
        mats = find_mat_files(path)
        if not files and not mats:
            raise OmniptError(
                f"{path}: no *{ANNOTATION_SUFFIX} file (expected {ANNOTATION_DIR}/<split>/<city>/) "
                "and no anno_<split>.mat"
            )
        cities: dict[Path, int] = {}
        for file in files:
            cities[file.parent] = cities.get(file.parent, 0) + file_size(file)
        return [
            Unit(city, size, f"{self._split(city, options)}/{city.name}") for city, size in cities.items()
        ] + [Unit(mat, file_size(mat), mat.name) for mat in mats]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        files = find_annotations(path)
        mats = find_mat_files(path)
        if files or not mats:
            folder = files[0].parent if files else (path.parent if path.is_file() else path)
            root, _ = image_layout(folder)
        else:
            root, _ = mat_layout(mats[0])
        return {options.dataset or DATASET: str(root.resolve())}

    @staticmethod
    def _split(city_dir: Path, options: ReadOptions) -> str:
        if options.split:
            return options.split
        return city_dir.parent.name if city_dir.parent.name in SPLITS else "train"

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        if unit.path.suffix == ".mat":
            yield from self._read_mat(unit.path, options)
            return
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
        yield _city_batch(dataset, split, city, relative_dir, frames, boxes)

    def _read_mat(self, path: Path, options: ReadOptions) -> Iterator[Batch]:
        """The original release: one cell array of images, ``bbs`` rows ``[class, x1, y1, w, h,
        instance_id, x1_vis, y1_vis, w_vis, h_vis]`` (the CityPersons repository's annotations/README.txt)."""
        from scipy.io import loadmat

        dataset = options.dataset or DATASET
        split = options.split or mat_split(path)
        try:
            content = loadmat(path)
        except Exception as exc:  # scipy raises OSError, IndexError, MatReadError, ... for damaged files
            options.problems.report(
                InputError(path, None, f"not a readable MATLAB file ({exc})", EXPECTED_MAT)
            )
            return
        cells = [(key, value) for key, value in content.items() if not key.startswith("__")]
        if len(cells) != 1 or getattr(cells[0][1], "dtype", None) is None or cells[0][1].dtype.kind != "O":
            options.problems.report(InputError(path, None, "no single cell array of images", EXPECTED_MAT))
            return
        name, cell_array = cells[0]
        image_root, images_dir = mat_layout(path)
        cities: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
        for k, cell in enumerate(cell_array.ravel()):
            try:
                city, image_name, objects = _mat_image(cell)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                options.problems.report(InputError(path, None, f"{name}[{k}]: {exc}", EXPECTED_MAT))
                continue
            if images_dir and not (images_dir / split / city / image_name).is_file():
                problem = f"{name}[{k}]: no image {image_name} in {images_dir / split / city}"
                options.problems.report(InputError(path, None, problem, "an image per annotated image"))
                continue
            cities.setdefault(city, []).append((image_name, objects))
        for city, images in cities.items():
            seq_uid = sequence_uid(dataset, split, city)
            relative_dir = (
                (images_dir / split / city).relative_to(image_root).as_posix()
                if images_dir
                else f"{IMAGE_DIR}/{split}/{city}"
            )
            frames: list[dict[str, Any]] = []
            boxes: list[dict[str, Any]] = []
            for index, (image_name, objects) in enumerate(images, start=1):
                fuid = frame_uid(seq_uid, index)
                width, height = (
                    image_size(images_dir / split / city / image_name) if images_dir else (None, None)
                )
                frames.append(
                    {
                        "frame_uid": fuid,
                        "frame_index": index,
                        "image_path": f"{relative_dir}/{image_name}",
                        "width": width,
                        "height": height,
                    }
                )
                boxes.extend(self._boxes(objects, fuid))
            yield _city_batch(dataset, split, city, relative_dir, frames, boxes)

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
        sizes = {}
        for key in ("imgWidth", "imgHeight"):
            sizes[key] = _size(record.get(key))
            if sizes[key] is None:
                problem = f"{key} is {record.get(key)!r}, not a positive integer"
                options.problems.report(value_error(path, [key], problem, EXPECTED_FILE))
                return None
        objects = record.get("objects")
        if not isinstance(objects, list):
            options.problems.report(
                value_error(path, ["objects"], '"objects" is missing or not a list', EXPECTED_FILE)
            )
            return None
        ignores = record.get("ignore", [])
        if not isinstance(ignores, list):
            options.problems.report(value_error(path, ["ignore"], '"ignore" is not a list', EXPECTED_FILE))
            return None
        parsed = []
        for key, items, parse in (
            ("objects", objects, CityPersonsReader._parse_object),
            ("ignore", ignores, CityPersonsReader._parse_ignore),
        ):
            for k, obj in enumerate(items):
                try:
                    parsed.append(parse(obj))
                except ValueError as exc:
                    options.problems.report(value_error(path, [key, k], str(exc), EXPECTED_OBJECT))
                    return None
        return {"imgWidth": sizes["imgWidth"], "imgHeight": sizes["imgHeight"], "objects": parsed}

    @staticmethod
    def _parse_object(obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise ValueError(f"{obj!r} is not an object")
        label = obj.get("label")
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}")
        # cityscapesScripts' CsBbox2d reads bbox/bboxVis, else amodal/modal, else amodal for both
        full_key, visible_key = ("bbox", "bboxVis") if "bbox" in obj else ("amodal", "modal")
        full = xywh_corners(obj.get(full_key), full_key)
        visible = xywh_corners(obj[visible_key], visible_key) if obj.get(visible_key) is not None else None
        if full_key == "amodal" and visible_key not in obj:
            visible = full
        extra = {k: v for k, v in obj.items() if k not in ("label", full_key, visible_key)}
        return {"label": label, "full": full, "visible": visible, "extra": extra}

    @staticmethod
    def _parse_ignore(obj: Any) -> dict[str, Any]:
        """An entry of the top-level ``ignore`` list (cityscapesScripts' CsIgnore2d: a ``2d`` box)."""
        if not isinstance(obj, dict):
            raise ValueError(f"{obj!r} is not an object")
        label = obj.get("label", "ignore")
        box = xywh_corners(obj.get("2d"), "2d")
        extra = {k: v for k, v in obj.items() if k not in ("label", "2d")}
        return {
            "label": label if label in IGNORE_LABELS else "ignore",
            "full": box,
            "visible": box,
            "extra": extra,
        }

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


def _city_batch(
    dataset: str,
    split: str,
    city: str,
    relative_dir: str,
    frames: list[dict[str, Any]],
    boxes: list[dict[str, Any]],
) -> Batch:
    """One city's ``sequences`` row with its frames and boxes."""
    seq_uid = sequence_uid(dataset, split, city)
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
    return batch


READER = CityPersonsReader()
