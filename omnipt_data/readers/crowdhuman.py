"""CrowdHuman ``.odgt``: one JSON object per line, one line per image.

``{"ID": "273271,1a0d6000b9e1f5b7", "gtboxes": [{"tag": "person" | "mask", "fbox": [x, y, w, h],
"vbox": [...], "hbox": [...], "extra": {"box_id": 0, "occ": 0, "ignore": 0}, "head_attr": {"ignore": 0,
"occ": 0, "unsure": 0}}]}``. The full box becomes the box, the visible and head boxes ride beside it;
``tag == "mask"`` (crowds, reflections) and ``extra.ignore == 1`` mark ignore regions; ``extra`` and
``head_attr`` are kept verbatim in the ``extra`` column as JSON. Images live in ``Images/<ID>.jpg`` next
to the annotation file (CrowdHuman's own layout; ``CrowdHuman_train01/Images`` variants are searched too);
their sizes are read from the image headers when the images are present. The split comes from the file
name (``annotation_train.odgt`` -> train, ``annotation_val.odgt`` -> val).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers.base import (
    Batch,
    ReadOptions,
    Unit,
    decode_lines,
    escape_problem,
    escapes,
    file_size,
    image_size,
)
from omnipt_data.schema import SOURCE_GT, frame_uid, sequence_uid

DATASET = "crowdhuman"
BATCH_IMAGES = 2000
EXPECTED_LINE = 'one JSON object per line: {"ID": str, "gtboxes": [{"tag", "fbox": [x, y, w, h], ...}]}'


def _box(value: Any, key: str) -> list[float] | None:
    """Validate an ``[x, y, w, h]`` list; returns corners or raises ValueError with what is wrong."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError(f"{key} is {value!r}, not a list of 4 numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{key} has a non-numeric value: {value!r}")
    x, y, w, h = (float(v) for v in value)
    if any(v != v or v in (float("inf"), float("-inf")) for v in (x, y, w, h)):
        raise ValueError(f"{key} has NaN or infinite values")
    if w < 0 or h < 0:
        raise ValueError(f"{key} has a negative size {w:g}x{h:g}")
    return [x, y, x + w, y + h]


def split_of(path: Path) -> str:
    stem = path.stem.lower()
    for split in ("train", "val", "test"):
        if split in stem:
            return split
    return "train"


def find_images_dir(folder: Path) -> Path | None:
    for candidate in [folder / "Images", *sorted(folder.glob("CrowdHuman_*/Images"))]:
        if candidate.is_dir():
            return candidate
    return None


class CrowdHumanReader:
    name = "crowdhuman"
    videos = False  # its sequences are image collections
    version = "1"
    description = "CrowdHuman .odgt annotation files (full, visible and head boxes)"

    def sniff(self, path: Path) -> bool:
        if path.is_file():
            return path.suffix == ".odgt"
        return path.is_dir() and any(path.glob("*.odgt"))

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        files = [path] if path.is_file() else sorted(path.glob("*.odgt"))
        if not files:
            raise OmniptError(f"{path}: no .odgt annotation file")
        return [Unit(f, file_size(f), f.name) for f in files]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        folder = path.parent if path.is_file() else path
        return {options.dataset or DATASET: str(folder.resolve())}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        folder = root.parent if root.is_file() else root
        dataset = options.dataset or DATASET
        split = options.split or split_of(unit.path)
        seq_uid = sequence_uid(dataset, split, "images")
        images_dir = find_images_dir(folder)
        rel_images = images_dir.relative_to(folder).as_posix() if images_dir else "Images"
        listed = {p.stem: p.name for p in images_dir.iterdir()} if images_dir else None
        yield {
            "sequences": pl.DataFrame(
                {
                    "sequence_uid": [seq_uid],
                    "dataset": [dataset],
                    "split": [split],
                    "sequence": ["images"],
                    "image_dir": [rel_images],
                }
            )
        }
        frames: list[dict[str, Any]] = []
        boxes: list[dict[str, Any]] = []
        index = 0
        for number, text in decode_lines(unit.path, options.problems):
            if not text.strip():
                continue
            try:
                record = self._parse_line(text)
            except ValueError as exc:
                options.problems.report(InputError(unit.path, number, str(exc), EXPECTED_LINE))
                continue
            image_id = record["ID"]
            if listed is not None and image_id not in listed:
                options.problems.report(
                    InputError(
                        unit.path,
                        number,
                        f"unknown image {image_id!r}: not in {images_dir}",
                        "an image per ID",
                    )
                )
                continue
            index += 1
            file_name = listed[image_id] if listed else f"{image_id}.jpg"
            width, height = image_size(images_dir / file_name) if images_dir else (None, None)
            fuid = frame_uid(seq_uid, index)
            frames.append(
                {
                    "frame_uid": fuid,
                    "frame_index": index,
                    "image_path": f"{rel_images}/{file_name}",
                    "width": width,
                    "height": height,
                }
            )
            boxes.extend(self._boxes(record, fuid))
            if len(frames) >= BATCH_IMAGES:
                yield self._batch(frames, boxes, seq_uid, dataset, split)
                frames, boxes = [], []
        if frames:
            yield self._batch(frames, boxes, seq_uid, dataset, split)

    @staticmethod
    def _parse_line(text: str) -> dict[str, Any]:
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"truncated or invalid JSON ({exc})") from None
        if not isinstance(record, dict) or not isinstance(record.get("ID"), str):
            raise ValueError('no string "ID"')
        if escapes(record["ID"]):
            raise ValueError(f"ID: {escape_problem(record['ID'])}")
        gtboxes = record.get("gtboxes")
        if not isinstance(gtboxes, list):
            raise ValueError('"gtboxes" is missing or not a list')
        for k, box in enumerate(gtboxes):
            if not isinstance(box, dict) or box.get("tag") not in ("person", "mask"):
                raise ValueError(f'gtboxes[{k}] has no tag "person" or "mask"')
            try:
                box["_corners"] = {key: _box(box.get(key), key) for key in ("fbox", "vbox", "hbox")}
            except ValueError as exc:
                raise ValueError(f"gtboxes[{k}]: {exc}") from None
            if box["_corners"]["fbox"] is None:
                raise ValueError(f"gtboxes[{k}] has no fbox")
        return record

    @staticmethod
    def _boxes(record: dict[str, Any], fuid: str) -> list[dict[str, Any]]:
        rows = []
        for k, box in enumerate(record["gtboxes"]):
            corners = box["_corners"]
            extra = box.get("extra") or {}
            vis = corners["vbox"] or [None] * 4
            head = corners["hbox"] or [None] * 4
            rows.append(
                {
                    "box_uid": f"{fuid}/gt/{k}",
                    "frame_uid": fuid,
                    "category": box["tag"],
                    "x1": corners["fbox"][0],
                    "y1": corners["fbox"][1],
                    "x2": corners["fbox"][2],
                    "y2": corners["fbox"][3],
                    "vis_x1": vis[0],
                    "vis_y1": vis[1],
                    "vis_x2": vis[2],
                    "vis_y2": vis[3],
                    "head_x1": head[0],
                    "head_y1": head[1],
                    "head_x2": head[2],
                    "head_y2": head[3],
                    "ignore": box["tag"] == "mask" or extra.get("ignore") == 1,
                    "source": SOURCE_GT,
                    "extra": orjson.dumps(
                        {"extra": extra, "head_attr": box.get("head_attr") or {}}, option=orjson.OPT_SORT_KEYS
                    ).decode(),
                }
            )
        return rows

    @staticmethod
    def _batch(
        frames: list[dict[str, Any]], boxes: list[dict[str, Any]], seq_uid: str, dataset: str, split: str
    ) -> Batch:
        frame_df = pl.DataFrame(
            frames, schema_overrides={"width": pl.Int32, "height": pl.Int32, "frame_index": pl.Int32}
        )
        frame_df = frame_df.with_columns(
            sequence_uid=pl.lit(seq_uid),
            dataset=pl.lit(dataset),
            split=pl.lit(split),
            sequence=pl.lit("images"),
        )
        batch: Batch = {"frames": frame_df}
        if boxes:
            batch["boxes"] = pl.DataFrame(boxes, infer_schema_length=None)
        return batch


READER = CrowdHumanReader()
