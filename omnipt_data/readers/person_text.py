"""What the person-text readers share: JSON-array streaming, record checks and ``identities`` rows.

CUHK-PEDES, ICFG-PEDES, RSTPReid and SYNTH-PEDES each ship one JSON array of per-image records
(``{"id", "file_path" | "img_path", "captions", ...}``). :func:`iter_json_array` walks such an array
without loading it whole: the file is memory-mapped, a regular expression finds the brackets outside
strings, and each top-level record is decoded on its own with ``orjson``; a malformed record is reported
with the line on which it starts (or the line of the JSON error inside it). Each record becomes one
``identities`` row; the images of one ``id`` share a ``person_uid`` (``<dataset>/<id>``), so a person's
images and captions are one identity.

Each dataset module subclasses :class:`PersonTextReader` with its file names, key names and quirks.
``convert auto`` tells the datasets apart by file name first; for a JSON file with another name it
looks at the keys of the first record (see :meth:`PersonTextReader.claims`).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError, Problems
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
from omnipt_data.schema import TABLES

BATCH_RECORDS = 5000
SPLITS = ("train", "val", "test")
# Everything up to the next bracket that is not inside a string (strings are skipped whole), then it.
_BRACKET = re.compile(rb'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+([\[\]{}])')
_WHITESPACE = b" \t\r\n"
_SNIFF_FILES = 20


class _LineCounter:
    """1-based line of a byte offset, counted incrementally for increasing offsets."""

    def __init__(self, data: mmap.mmap):
        self.data = data
        self.offset = 0
        self.line = 1

    def at(self, offset: int) -> int:
        if offset < self.offset:
            return 1 + self.data[:offset].count(b"\n")
        self.line += self.data[self.offset : offset].count(b"\n")
        self.offset = offset
        return self.line


def iter_json_array(path: Path, problems: Problems, expected: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, record)`` for every element of the JSON array in ``path``.

    Problems (not an array, a record that does not parse, a truncated file, stray values between
    records) are reported to ``problems`` as ``file:line`` errors; in lenient mode the bad record is
    skipped and reading goes on with the next one.
    """
    if file_size(path) == 0:
        problems.report(InputError(path, 1, "empty file", expected))
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield from _scan(path, data, problems, expected)


def _scan(path: Path, data: mmap.mmap, problems: Problems, expected: str) -> Iterator[tuple[int, Any]]:
    lines = _LineCounter(data)
    start = len(BOM) if data[: len(BOM)] == BOM else 0
    while start < len(data) and data[start : start + 1] in (b" ", b"\t", b"\r", b"\n"):
        start += 1
    if start == len(data):
        problems.report(InputError(path, 1, "empty file", expected))
        return
    if data[start : start + 1] != b"[":
        problems.report(InputError(path, lines.at(start), "the file is not a JSON array", expected))
        return
    depth, record_start, gap_start, records = 0, 0, start + 1, 0
    for match in _BRACKET.finditer(data, start + 1):
        token, at, after = match.group(1), match.start(1), match.end(1)
        if depth == 0:
            gap = data[gap_start:at].strip(_WHITESPACE)
            if gap != (b"," if records and token != b"]" else b""):
                raw = data[gap_start:at]
                stray = len(raw) - len(raw.lstrip(_WHITESPACE + b","))
                where = lines.at(gap_start + stray if gap.strip(b",") else at)
                shown = gap[:20].decode("utf-8", "replace") or "no comma"
                problems.report(InputError(path, where, f"unexpected {shown!r} between records", expected))
            if token == b"]":
                if data[after:].strip(_WHITESPACE):
                    problems.report(InputError(path, lines.at(after), "data after the JSON array", expected))
                return
            if token == b"}":
                problems.report(InputError(path, lines.at(at), "an unmatched '}'", expected))
                gap_start, records = after, records + 1
            else:
                depth, record_start = 1, at
            continue
        if token == b"{" or token == b"[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                line = lines.at(record_start)
                gap_start, records = after, records + 1
                try:
                    yield line, orjson.loads(data[record_start:after])
                except orjson.JSONDecodeError as exc:
                    where = line + exc.lineno - 1
                    problems.report(InputError(path, where, f"invalid JSON ({exc.msg})", expected))
    if depth > 0:
        problem = "truncated JSON: this record is not closed"
        problems.report(InputError(path, lines.at(record_start), problem, expected))
    else:
        problem = "truncated JSON: the array is not closed with ']'"
        problems.report(InputError(path, lines.at(len(data)), problem, expected))


def first_record(path: Path) -> Any:
    """The first element of a JSON array file, or None when it is not one (never raises)."""
    try:
        return next(iter_json_array(path, Problems(lenient=True), ""), (0, None))[1]
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class PersonRecord:
    """One checked record: an image of person ``pid`` with its captions."""

    pid: int
    file_path: str
    captions: list[str]
    split: str | None
    attributes: list[dict[str, str]] | None
    camera: int | None


_FAMILY: list[PersonTextReader] = []


class PersonTextReader:
    """A JSON array of per-image person records with captions; subclasses name the dataset's specifics."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    description: ClassVar[str]
    dataset: ClassVar[str]
    annotation_files: ClassVar[tuple[str, ...]]  # file names this dataset ships, preferred first
    path_keys: ClassVar[tuple[str, ...]] = ("file_path",)  # the image path key, variants after it
    caption_keys: ClassVar[tuple[str, ...]] = ("captions",)  # the first is required, the others optional
    image_dir: ClassVar[str] = "imgs"  # where file paths start, relative to the annotation file
    expected: ClassVar[str]
    claim_order: ClassVar[int]  # lower claims first when telling variants apart by keys

    def __init__(self) -> None:
        _FAMILY.append(self)
        _FAMILY.sort(key=lambda reader: reader.claim_order)

    # --- telling the datasets apart ---

    def claims(self, record: dict[str, Any]) -> bool:
        """Whether a record of an unknown file name looks like this dataset's."""
        return any(key in record for key in self.path_keys) and "captions" in record

    def sniff(self, path: Path) -> bool:
        try:
            return family_member(path) is self
        except OSError:
            return False

    # --- units ---

    def annotation_paths(self, path: Path) -> list[Path]:
        if path.is_file():
            return [path]
        for name in self.annotation_files:
            if (path / name).is_file():
                return [path / name]
        return [p for p in sorted(path.glob("*.json")) if family_member(p) is self]

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        files = self.annotation_paths(path) if path.exists() else []
        if not files:
            raise OmniptError(f"{path}: no {' or '.join(self.annotation_files)} found")
        return [Unit(f, file_size(f), f.name) for f in files]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        folder = path.parent if path.is_file() else path
        return {options.dataset or self.dataset: str(folder.resolve())}

    # --- records ---

    def parse_attributes(self, record: dict[str, Any]) -> list[dict[str, str]] | None:
        """The record's attributes as ``{name, value}`` pairs; None when the dataset has none."""
        return None

    def camera_of(self, file_path: str) -> int | None:
        """The camera encoded in an image name, when the dataset encodes one."""
        return None

    def parse_record(self, record: Any) -> PersonRecord:
        """Check one record; raises ValueError saying what is wrong."""
        if not isinstance(record, dict):
            raise ValueError(f"a record is a {type(record).__name__}, not a JSON object")
        pid = parse_id(record.get("id"))
        key = next((k for k in self.path_keys if k in record), self.path_keys[0])
        file_path = record.get(key)
        if not isinstance(file_path, str) or not file_path.strip():
            raise ValueError(f'"{key}" is {file_path!r}, not an image path')
        if escapes(file_path):
            raise ValueError(f'"{key}": {escape_problem(file_path)}')
        captions = string_list(record.get(self.caption_keys[0]), self.caption_keys[0], required=True)
        for extra in self.caption_keys[1:]:
            captions += string_list(record.get(extra), extra, required=False)
        split = record.get("split")
        if split is not None and not isinstance(split, str):
            raise ValueError(f'"split" is {split!r}, not a string')
        return PersonRecord(
            pid, file_path, captions, split, self.parse_attributes(record), self.camera_of(file_path)
        )

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        dataset = options.dataset or self.dataset
        folder = unit.path.parent
        base = folder / self.image_dir if self.image_dir else folder
        prefix = f"{self.image_dir}/" if self.image_dir else ""
        folders: dict[Path, bool] = {}
        seen: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        for line, raw in iter_json_array(unit.path, options.problems, self.expected):
            try:
                record = self.parse_record(raw)
            except ValueError as exc:
                options.problems.report(InputError(unit.path, line, str(exc), self.expected))
                continue
            image = base / record.file_path
            container = base if self.image_dir else base / Path(record.file_path).parts[0]
            if container not in folders:
                folders[container] = container.is_dir()
            if folders[container] and not image.is_file():
                problem = f"unknown image {record.file_path!r}: not in {container}"
                options.problems.report(InputError(unit.path, line, problem, "an image per record"))
                continue
            width, height = image_size(image) if folders[container] else (None, None)
            uid = f"{dataset}/{record.file_path}"
            seen[uid] = seen.get(uid, 0) + 1
            rows.append(
                {
                    "image_uid": uid if seen[uid] == 1 else f"{uid}#{seen[uid]}",
                    "person_uid": f"{dataset}/{record.pid}",
                    "dataset": dataset,
                    "split": options.split or record.split or "train",
                    "pid": record.pid,
                    "camera": record.camera,
                    "image_path": prefix + record.file_path,
                    "width": width,
                    "height": height,
                    "captions": record.captions,
                    "attributes": record.attributes,
                }
            )
            if len(rows) >= BATCH_RECORDS:
                yield {"identities": identities_frame(rows)}
                rows = []
        if rows:
            yield {"identities": identities_frame(rows)}


def family_member(path: Path) -> PersonTextReader | None:
    """The person-text reader that ``path`` (an annotation file or its folder) belongs to, if any."""
    if path.is_file():
        return _member_of_file(path)
    if not path.is_dir():
        return None
    for reader in _FAMILY:
        if any((path / name).is_file() for name in reader.annotation_files):
            return reader
    for candidate in sorted(path.glob("*.json"))[:_SNIFF_FILES]:
        member = _member_of_file(candidate)
        if member is not None:
            return member
    return None


def _member_of_file(path: Path) -> PersonTextReader | None:
    for reader in _FAMILY:
        if path.name in reader.annotation_files:
            return reader
    if path.suffix.lower() != ".json":
        return None
    record = first_record(path)
    if not isinstance(record, dict):
        return None
    return next((reader for reader in _FAMILY if reader.claims(record)), None)


def parse_id(value: Any) -> int:
    """A person id: a non-negative integer or a string of digits (ids count from 0 or 1)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f'"id" is {value!r}, not a non-negative integer')


def string_list(value: Any, key: str, *, required: bool) -> list[str]:
    """A list of strings under ``key``; a required one must be present and not empty."""
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'"{key}" is {_short(value)}, not a list of strings')
    if required and not value:
        raise ValueError(f'"{key}" is empty')
    return list(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def identities_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """``identities`` rows as a frame with the table's dtypes."""
    schema = TABLES["identities"]
    return pl.DataFrame(
        {column: pl.Series(column, [row[column] for row in rows], dtype=schema[column]) for column in rows[0]}
    )
