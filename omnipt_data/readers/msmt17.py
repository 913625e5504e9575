"""MSMT17: person crops listed in ``list_{train,val,query,gallery}.txt``.

Layout (``SRC`` is ``MSMT17_V1/`` or ``MSMT17_V2/``, a parent holding one of them as torchreid expects, or
one list file)::

    list_train.txt, list_val.txt      images under train/       (V2: mask_train_v2/)
    list_query.txt, list_gallery.txt  images under test/        (V2: mask_test_v2/)

Each list line is ``<pid folder>/<image name> <pid>``, e.g. ``0000/0000_000_01_0303morning_0015_0.jpg 0``.
The pid comes from the line; the name is ``<pid>_<index>_<camera>_<date><time of day>_<n>_<n>[_...].jpg``:
the camera is its third field (1-based, as torchreid reads it) and the capture session (``0303morning``)
its fourth, kept as the ``sequence``. The last two numbers are not documented and are not read (no
``frame_index``). Person ids are numbered separately in ``train/`` and ``test/`` (both start at 0), so
``person_uid`` is ``msmt17/train/<pid>`` or ``msmt17/test/<pid>`` after the folder the image lives in
(``val`` images are train identities). MSMT17 has no junk or distractor ids.

When the image folders are present, every listed image must exist and its size is read from its header;
without them the lists still convert (sizes null).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from omnipt_data.readers.market1501 import identity_frame

DATASET = "msmt17"
LISTS: dict[str, str] = {"train": "train", "val": "train", "query": "test", "gallery": "test"}
IMAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "train": ("train", "mask_train_v2"),
    "test": ("test", "mask_test_v2"),
}
VERSION_FOLDERS = ("MSMT17_V1", "MSMT17_V2", "MSMT17")
BATCH_IMAGES = 5000
EXPECTED_LINE = (
    "<pid>/<name> <pid> with names <pid>_<index>_<camera>_<date><time of day>_<n>_<n>.jpg, "
    "e.g. 0000/0000_000_01_0303morning_0015_0.jpg 0"
)


def list_split(path: Path) -> str | None:
    """``list_query.txt`` -> ``query``; None for other files."""
    stem = path.stem
    if stem.startswith("list_") and stem[5:] in LISTS:
        return stem[5:]
    return None


def dataset_folder(path: Path) -> Path:
    """The folder holding the list files."""
    if path.is_file():
        return path.parent
    if any(path.glob("list_*.txt")):
        return path
    for name in VERSION_FOLDERS:
        if any((path / name).glob("list_*.txt")):
            return path / name
    return path


def image_folder(root: Path, role: str) -> tuple[str, Path | None]:
    """The folder name the list's paths start in, and the folder if it exists."""
    for name in IMAGE_FOLDERS[role]:
        if (root / name).is_dir():
            return name, root / name
    return IMAGE_FOLDERS[role][0], None


def parse_line(text: str) -> tuple[str, int, int, str | None]:
    """``(relative path, pid, camera, session)`` of a list line; raises ValueError saying what is wrong."""
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"{len(fields)} field(s) instead of 2 (image path and pid)")
    relative, pid_text = fields
    try:
        pid = int(pid_text)
    except ValueError:
        raise ValueError(f"pid {pid_text!r} is not an integer") from None
    if pid < 0:
        raise ValueError(f"pid {pid} is negative")
    if escapes(relative):
        raise ValueError(escape_problem(relative))
    name = relative.rsplit("/", 1)[-1]
    parts = name.rsplit(".", 1)[0].split("_")
    if len(parts) < 4 or not parts[2].isdigit():
        raise ValueError(f"image name {name!r} has no camera field")
    session = parts[3] if parts[3] else None
    return relative, pid, int(parts[2]), session


class Msmt17Reader:
    name = "msmt17"
    version = "1"
    description = "MSMT17 (V1, V2) list files list_{train,val,query,gallery}.txt with image folders"

    def sniff(self, path: Path) -> bool:
        if path.is_file():
            return list_split(path) is not None
        if not path.is_dir():
            return False
        return any(list_split(p) for p in dataset_folder(path).glob("list_*.txt"))

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        if path.is_file():
            if list_split(path) is None and options.split is None:
                raise OmniptError(f"{path}: expected list_train/val/query/gallery.txt (or pass --split)")
            return [Unit(path, file_size(path), path.name)]
        folder = dataset_folder(path)
        files = [folder / f"list_{split}.txt" for split in LISTS if (folder / f"list_{split}.txt").is_file()]
        if not files:
            raise OmniptError(f"{path}: no MSMT17 list file (list_train.txt, list_query.txt, ...)")
        return [Unit(f, file_size(f), f.name) for f in files]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {options.dataset or DATASET: str(dataset_folder(path).resolve())}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        dataset = options.dataset or DATASET
        list_name = list_split(unit.path)
        split = options.split or list_name or "train"
        role = LISTS.get(list_name or split, "train")
        folder_name, folder = image_folder(unit.path.parent, role)
        rows: list[dict[str, Any]] = []
        for number, text in decode_lines(unit.path, options.problems):
            if not text.strip():
                continue
            try:
                relative, pid, camera, session = parse_line(text)
            except ValueError as exc:
                options.problems.report(InputError(unit.path, number, str(exc), EXPECTED_LINE))
                continue
            width = height = None
            if folder is not None:
                if not (folder / relative).is_file():
                    options.problems.report(
                        InputError(unit.path, number, f"no image {relative} in {folder}", "a listed image")
                    )
                    continue
                width, height = image_size(folder / relative)
            rows.append(
                {
                    "image_uid": f"{dataset}/{split}/{relative}",
                    "person_uid": f"{dataset}/{role}/{pid}",
                    "dataset": dataset,
                    "split": split,
                    "pid": pid,
                    "camera": camera,
                    "sequence": session,
                    "image_path": f"{folder_name}/{relative}",
                    "width": width,
                    "height": height,
                    "junk": False,
                    "distractor": False,
                }
            )
            if len(rows) >= BATCH_IMAGES:
                yield {"identities": identity_frame(rows)}
                rows = []
        if rows:
            yield {"identities": identity_frame(rows)}


READER = Msmt17Reader()
