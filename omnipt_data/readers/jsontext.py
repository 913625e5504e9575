"""JSON files with places: decode errors and bad values are reported as ``file:line`` (and column).

``load_json`` parses a whole JSON document; when it is malformed the error names the line and column that
the JSON decoder stopped at (bad UTF-8 likewise). ``locate`` finds where a value sits in the text, e.g.
``("objects", 3)`` -> the line and column of the fourth object, so that a structurally wrong value is
reported where it is written. It is only called on the error path, so its cost does not matter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from omnipt_data.errors import InputError
from omnipt_data.readers.base import BOM

_WHITESPACE = " \t\n\r"


def line_and_column(data: bytes | str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset (or byte offset, for bytes)."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1
    start = data.rfind(newline, 0, offset) + 1
    return line, offset - start + 1


def decode_error(path: Path, data: bytes, expected: str) -> InputError:
    """The ``InputError`` for a document that does not parse: where the decoder stopped, and why."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = line_and_column(data, exc.start)
        return InputError(path, line, f"bad UTF-8 byte at column {column}", expected)
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return InputError(path, exc.lineno, f"invalid JSON at column {exc.colno}: {exc.msg}", expected)
    except RecursionError:
        return InputError(path, None, "invalid JSON: nested too deeply", expected)
    # Python's decoder accepts NaN and Infinity, which are not JSON: point at the first one
    constant = re.search(r"(?<![\w\"])(NaN|-?Infinity)(?![\w\"])", text)
    if constant:
        line, column = line_and_column(text, constant.start())
        return InputError(
            path, line, f"invalid JSON at column {column}: {constant.group()} is not a number", expected
        )
    return InputError(path, None, "invalid JSON", expected)


def parse_json(path: Path, data: bytes, expected: str) -> Any:
    """Parse a document's bytes (a leading byte-order mark is dropped); raises :class:`InputError` with
    the line and column of a syntax error, or ``empty file`` for one of only whitespace."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if not data.strip():
        raise InputError(path, 1, "empty file", expected)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise decode_error(path, data, expected) from None


def read_document(path: Path, expected: str) -> bytes:
    """The bytes of ``path``; raises :class:`InputError` when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(path, None, f"unreadable ({exc.strerror})", expected) from None


def load_json(path: Path, expected: str) -> Any:
    """Parse ``path``; raises :class:`InputError` with the line and column of a syntax error."""
    return parse_json(path, read_document(path, expected), expected)


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def locate(text: str, steps: Sequence[str | int]) -> tuple[int, int] | None:
    """Line and column where the value at ``steps`` (object keys and array indices) starts, or None."""
    decoder = json.JSONDecoder()
    pos = _skip_whitespace(text, 0)
    try:
        for step in steps:
            opener = text[pos]
            if opener == "{" and isinstance(step, str):
                pos = _object_member(text, pos, step, decoder)
            elif opener == "[" and isinstance(step, int):
                pos = _array_element(text, pos, step, decoder)
            else:
                return None
            if pos < 0:
                return None
    except (IndexError, ValueError):
        return None
    return line_and_column(text, pos)


def _object_member(text: str, pos: int, key: str, decoder: json.JSONDecoder) -> int:
    """Offset of the value of ``key`` in the object starting at ``pos``; -1 when absent."""
    pos = _skip_whitespace(text, pos + 1)
    while text[pos] != "}":
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip_whitespace(text, pos)
        if text[pos] != ":":
            return -1
        pos = _skip_whitespace(text, pos + 1)
        if name == key:
            return pos
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_whitespace(text, pos)
        if text[pos] == ",":
            pos = _skip_whitespace(text, pos + 1)
    return -1


def _array_element(text: str, pos: int, index: int, decoder: json.JSONDecoder) -> int:
    """Offset of element ``index`` of the array starting at ``pos``; -1 when it is shorter."""
    pos = _skip_whitespace(text, pos + 1)
    current = 0
    while text[pos] != "]":
        if current == index:
            return pos
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip_whitespace(text, pos)
        if text[pos] == ",":
            pos = _skip_whitespace(text, pos + 1)
        current += 1
    return -1


def value_error(path: Path, steps: Sequence[str | int], problem: str, expected: str) -> InputError:
    """An ``InputError`` for a bad value, placed at the line (and column) where the value is written."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = ""
    place = locate(text, steps) if text else None
    where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps).lstrip(".")
    if place is None:
        return InputError(path, None, f"{where}: {problem}", expected)
    line, column = place
    return InputError(path, line, f"{where} (column {column}): {problem}", expected)
