"""What every reader provides, and the helpers they share.

A reader turns one native format into store batches. ``units`` lists the pieces of work (a sequence
folder, an annotation file) so that ``convert`` can show progress and stream: ``read_unit`` yields
``{table: DataFrame}`` batches for one unit, never the whole dataset at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Protocol

import polars as pl

from omnipt_data.errors import InputError, Problems

Batch = dict[str, pl.DataFrame]
BOM = b"\xef\xbb\xbf"


@dataclass
class ReadOptions:
    """Options every reader honours; ``dataset``/``split`` override what the reader infers."""

    dataset: str | None = None
    split: str | None = None
    lenient: bool = False
    prediction_name: str | None = None
    problems: Problems = field(default_factory=Problems)

    def __post_init__(self) -> None:
        self.problems.lenient = self.lenient


@dataclass(frozen=True)
class Unit:
    """One piece of a dataset that a reader converts in one go; ``size`` weighs it for progress."""

    path: Path
    size: int
    name: str


class Reader(Protocol):
    name: str
    version: str
    description: str
    # Readers whose rows hold sequences declare ``videos``: True for videos (frames in time order), False
    # for image collections; ``convert`` writes it into the sequences' ``video`` column.

    def sniff(self, path: Path) -> bool:
        """Whether ``path`` looks like this format (used by ``convert auto``)."""
        ...

    def units(self, path: Path, options: ReadOptions) -> list[Unit]: ...

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]: ...

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        """Where each dataset's relative image paths start."""
        ...


def decode_lines(path: Path, problems: Problems) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` of a text file, 1-based; bad UTF-8 is reported with file:line.

    A UTF-8 byte-order mark (Windows editors write one) is dropped; CRLF line ends are accepted.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problems.report(
                    InputError(path, number, f"bad UTF-8 byte at column {exc.start + 1}", "UTF-8 text")
                )
                continue
            yield number, text


def escapes(relative: str) -> bool:
    """Whether a path written in an annotation file leaves the folder it is relative to."""
    if ".." not in relative and ":" not in relative and not relative.startswith(("/", "\\")):
        return False  # the common case, without building two path objects per image
    posix = PurePosixPath(relative.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or PureWindowsPath(relative).is_absolute()


def escape_problem(relative: str) -> str:
    return f"path {relative!r} leaves the dataset folder"


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def image_size(path: Path) -> tuple[int | None, int | None]:
    """Width and height from an image's header (no full decode), or (None, None) if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError):
        return None, None
