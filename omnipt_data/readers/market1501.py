"""Market-1501 and DukeMTMC-reID: person crops whose file names carry the annotations.

Layout (``SRC`` is the dataset folder, e.g. ``Market-1501-v15.09.15/`` or ``DukeMTMC-reID/``, a parent
holding it as torchreid expects, e.g. ``market1501/Market-1501-v15.09.15/``, or one split folder)::

    bounding_box_train/   split "train"
    bounding_box_test/    split "gallery"
    query/                split "query"
    gt_bbox/              split "gt_bbox": Market's hand-drawn boxes (optional)

File names (the fields torchreid's loaders read, plus the rest of the name):

- Market-1501 ``0002_c1s1_000451_03.jpg``: person id, camera 1, sequence ``s1`` of that camera, frame
  451, box 3 of that frame; pid ``-1`` is junk (a bad detection), ``0000`` a distractor (no person);
- DukeMTMC-reID ``0001_c2_f0046182.jpg``: person id, camera 2, frame 46182; no sequence.

Each crop becomes one ``identities`` row: ``person_uid = "<dataset>/<pid>"`` (query and gallery share
their ids; the junk and distractor crops share the uids ``<dataset>/-1`` and ``<dataset>/0`` and are
flagged ``junk`` / ``distractor``, so filter on the flags before forming same-person pairs), camera,
sequence and frame from the name, width and height from the image header, the image path relative to the
dataset folder. Files that are not images (Market ships ``Thumbs.db``) are passed over; an image whose
name does not follow the pattern is an error naming the file and the expected pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.readers.base import Batch, ReadOptions, Unit, image_size
from omnipt_data.readers.mot import IMAGE_EXTENSIONS

SPLIT_FOLDERS: dict[str, str] = {
    "bounding_box_train": "train",
    "query": "query",
    "bounding_box_test": "gallery",
    "gt_bbox": "gt_bbox",
}
BATCH_IMAGES = 5000
SNIFF_IMAGES = 20
JUNK_PID = -1
DISTRACTOR_PID = 0


@dataclass(frozen=True)
class CropName:
    """What a crop's file name says."""

    pid: int
    camera: int
    sequence: str | None
    frame: int | None


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


class ReidFolderReader:
    """One class for the datasets of the Market-1501 folder layout; each instance knows its name pattern."""

    version = "1"

    def __init__(
        self,
        name: str,
        description: str,
        pattern: str,
        expected: str,
        folder_names: tuple[str, ...],
    ):
        self.name = name
        self.description = description
        self.pattern = re.compile(pattern, re.IGNORECASE)
        self.expected = expected
        self.folder_names = folder_names

    # --- file names --------------------------------------------------------------------------------

    def parse_name(self, file_name: str) -> CropName | None:
        match = self.pattern.fullmatch(file_name)
        if match is None:
            return None
        fields = match.groupdict()
        sequence = fields.get("sequence")
        frame = fields.get("frame")
        return CropName(
            pid=int(fields["pid"]),
            camera=int(fields["camera"]),
            sequence=f"s{int(sequence)}" if sequence is not None else None,
            frame=int(frame) if frame is not None else None,
        )

    # --- discovery ---------------------------------------------------------------------------------

    def dataset_folder(self, path: Path) -> Path:
        """The folder holding the split folders (``path`` itself, a known child, or a split's parent)."""
        if path.name in SPLIT_FOLDERS:
            return path.parent
        if any((path / split).is_dir() for split in SPLIT_FOLDERS):
            return path
        for name in self.folder_names:
            if any((path / name / split).is_dir() for split in SPLIT_FOLDERS):
                return path / name
        return path

    def split_folders(self, path: Path) -> list[Path]:
        if path.name in SPLIT_FOLDERS and path.is_dir():
            return [path]
        folder = self.dataset_folder(path)
        return [folder / split for split in SPLIT_FOLDERS if (folder / split).is_dir()]

    def sniff(self, path: Path) -> bool:
        """Split folders whose first images (a few, in name order) include one of this dataset's names."""
        if not path.is_dir():
            return False
        for folder in self.split_folders(path):
            names = sorted(p.name for p in folder.iterdir() if is_image(p))[:SNIFF_IMAGES]
            if names:
                return any(self.parse_name(name) is not None for name in names)
        return False

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        folders = self.split_folders(path)
        if not folders:
            raise OmniptError(
                f"{path}: no {', '.join(SPLIT_FOLDERS)} folder (expected the {self.name} dataset folder)"
            )
        return [Unit(f, sum(1 for p in f.iterdir() if is_image(p)), f.name) for f in folders]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {options.dataset or self.name: str(self.dataset_folder(path).resolve())}

    # --- reading -----------------------------------------------------------------------------------

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        dataset = options.dataset or self.name
        split = options.split or SPLIT_FOLDERS[unit.path.name]
        rows: list[dict[str, Any]] = []
        for image in sorted(p for p in unit.path.iterdir() if is_image(p)):
            crop = self.parse_name(image.name)
            if crop is None:
                options.problems.report(
                    InputError(image, None, f"file name {image.name!r} does not parse", self.expected)
                )
                continue
            width, height = image_size(image)
            rows.append(
                {
                    "image_uid": f"{dataset}/{split}/{image.name}",
                    "person_uid": f"{dataset}/{crop.pid}",
                    "dataset": dataset,
                    "split": split,
                    "pid": crop.pid,
                    "camera": crop.camera,
                    "sequence": crop.sequence,
                    "frame_index": crop.frame,
                    "image_path": f"{unit.path.name}/{image.name}",
                    "width": width,
                    "height": height,
                    "junk": crop.pid == JUNK_PID,
                    "distractor": crop.pid == DISTRACTOR_PID,
                }
            )
            if len(rows) >= BATCH_IMAGES:
                yield {"identities": identity_frame(rows)}
                rows = []
        if rows:
            yield {"identities": identity_frame(rows)}


def identity_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """``identities`` rows as a frame with the store's integer widths."""
    return pl.DataFrame(
        rows,
        schema_overrides={
            "pid": pl.Int64,
            "camera": pl.Int32,
            "sequence": pl.String,
            "frame_index": pl.Int32,
            "width": pl.Int32,
            "height": pl.Int32,
        },
    )


MARKET_READER = ReidFolderReader(
    name="market1501",
    description="Market-1501 crops: bounding_box_train/test, query, gt_bbox (pid, camera, frame from names)",
    pattern=r"(?P<pid>-1|\d+)_c(?P<camera>\d+)s(?P<sequence>\d+)_(?P<frame>\d+)_(?P<box>\d+)\.(?:jpe?g|png|bmp)",
    expected="Market-1501 names <pid>_c<camera>s<sequence>_<frame>_<box>.jpg, e.g. 0002_c1s1_000451_03.jpg",
    folder_names=("Market-1501-v15.09.15", "Market-1501"),
)
DUKE_READER = ReidFolderReader(
    name="dukemtmc",
    description="DukeMTMC-reID crops: bounding_box_train/test, query (pid, camera, frame from names)",
    pattern=r"(?P<pid>-1|\d+)_c(?P<camera>\d+)_f(?P<frame>\d+)\.(?:jpe?g|png|bmp)",
    expected="DukeMTMC-reID names <pid>_c<camera>_f<frame>.jpg, e.g. 0001_c2_f0046182.jpg",
    folder_names=("DukeMTMC-reID",),
)
