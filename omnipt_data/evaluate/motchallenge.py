"""Reading MOTChallenge ground-truth and result files into arrays, with file:line errors.

Ground truth rows become ``frame, id, x, y, w, h, conf, class, visibility`` (9 float columns, boxes
top-left ``xywh`` in pixels, 1-based frames):

- 9 columns (MOT16, MOT17, MOT20, DanceTrack, SportsMOT): taken as they are; ``conf`` is the evaluation
  flag (0 = ignored), ``class`` the MOTChallenge class id;
- 10 columns (MOT15): ``conf`` then world ``x, y, z`` (-1); MOT15 has no classes, so every row is a
  pedestrian (class 1) with visibility 1, as TrackEval's MOT15 handling treats it;
- 6 to 8 columns: the missing trailing columns default to ``conf = 1``, ``class = 1``, ``visibility = 1``.

Result (tracker) rows become ``frame, id, x, y, w, h, conf`` (7 columns): the MOTChallenge submission
format ``frame,id,x,y,w,h,conf,-1,-1,-1`` and its shorter variants (6 columns: ``conf = 1``); the
trailing world or class columns are not used.

Values may be separated by commas or white space; blank lines are skipped. A row whose fields are not
numbers, a fractional or negative frame/id, a frame below 1, or the same id twice in one frame is an
:class:`~omnipt_data.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import configparser
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omnipt_data.errors import InputError

GT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "class", "visibility")
PRED_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf")
GT_EXPECTED = "frame,id,x,y,w,h,conf,class,visibility (MOT16+) or frame,id,x,y,w,h,conf,-1,-1,-1 (MOT15)"
PRED_EXPECTED = "frame,id,x,y,w,h,conf[,-1,-1,-1]"
_SPLIT = re.compile(r"[,\s]+")
# Per benchmark, the classes whose matched predictions the MOTChallenge protocol removes (person on
# vehicle, static person, distractor, reflection; and non-MOT vehicle on MOT20), in TrackEval and the devkit.
DISTRACTORS = {"MOT16": (2, 7, 8, 12), "MOT17": (2, 7, 8, 12), "MOT20": (2, 6, 7, 8, 12)}


@dataclass(frozen=True)
class MotFile:
    """One parsed file: ``rows`` as described in the module docstring, ``lines`` the 1-based source line
    of each row, ``columns`` the number of fields the file uses (10 marks the MOT15 layout)."""

    path: Path
    rows: np.ndarray
    lines: np.ndarray
    columns: int

    @property
    def is_mot15(self) -> bool:
        return self.columns == 10

    @property
    def max_frame(self) -> int:
        return int(self.rows[:, 0].max()) if len(self.rows) else 0


def _read_text(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a folder", "a text file") from None
    except OSError as exc:
        raise InputError(path, None, f"cannot be read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(path, line, f"bad UTF-8 byte at offset {exc.start}", "UTF-8 text") from None
    return text.splitlines()


def _parse_fast(text: list[str], frame_offset: int) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The common case parsed in C: comma-separated rows of one width (6 to 10), every field a number,
    frames and ids whole, frames >= 1 after the offset, ids >= 0. ``None`` for anything else, which the
    line-by-line parser then reads (and explains, when it is malformed)."""
    numbered = [(number, line) for number, line in enumerate(text, start=1) if line.strip()]
    if not numbered:
        return None
    try:
        rows = np.loadtxt(
            io.StringIO("\n".join(line for _, line in numbered)),
            delimiter=",",
            ndmin=2,
            dtype=np.float64,
            comments=None,
        )
    except ValueError:
        return None
    width = rows.shape[1]
    if len(rows) != len(numbered) or not 6 <= width <= 10:
        return None
    head = rows[:, :6]
    if not np.isfinite(head).all():
        return None
    rows[:, 0] += frame_offset
    frames, ids = rows[:, 0], rows[:, 1]
    whole = (frames == np.floor(frames)).all() and (ids == np.floor(ids)).all()
    if not whole or frames.min() < 1 or ids.min() < 0:
        return None
    return rows, np.fromiter((number for number, _ in numbered), dtype=np.int64, count=len(numbered)), width


def _parse_lines(
    path: Path, text: list[str], *, gt: bool, frame_offset: int = 0
) -> tuple[list[list[float]], list[int], int]:
    """Parse numeric rows line by line (``frame_offset`` added to each frame); returns the rows, their
    line numbers and the column count used."""
    expected = GT_EXPECTED if gt else PRED_EXPECTED
    rows: list[list[float]] = []
    lines: list[int] = []
    width = 0
    for number, raw in enumerate(text, start=1):
        text = raw.strip().strip(",").strip()
        if not text:
            continue
        fields = _SPLIT.split(text)
        if len(fields) < 6:
            raise InputError(path, number, f"{len(fields)} fields", expected)
        if len(fields) > 10:
            raise InputError(path, number, f"{len(fields)} fields (at most 10 are known)", expected)
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise InputError(path, number, f"{bad!r} is not a number", expected) from None
        if not all(math.isfinite(v) for v in values[:6]):
            raise InputError(path, number, "frame, id and box must be finite numbers", expected)
        values[0] += frame_offset
        frame, track = values[0], values[1]
        if frame != int(frame) or track != int(track):
            raise InputError(path, number, "frame and id must be integers", expected)
        if frame < 1:
            raise InputError(
                path,
                number,
                f"frame {int(frame)} (frames start at 1; shift 0-based files with a frame offset)",
                expected,
            )
        if track < 0:
            raise InputError(path, number, f"negative id {int(track)}", "ids >= 0")
        rows.append(values)
        lines.append(number)
        width = max(width, len(values))
    return rows, lines, width


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_unique(path: Path, rows: np.ndarray, lines: np.ndarray) -> None:
    """The same id twice in one frame is an error (TrackEval refuses it too)."""
    if len(rows) < 2:
        return
    keys = rows[:, 0].astype(np.int64) * (1 << 32) + rows[:, 1].astype(np.int64)
    order = np.argsort(keys, kind="stable")
    dup = np.nonzero(keys[order][1:] == keys[order][:-1])[0]
    if len(dup):
        first, second = order[dup[0]], order[dup[0] + 1]
        raise InputError(
            path,
            int(lines[second]),
            f"id {int(rows[second, 1])} appears twice in frame {int(rows[second, 0])} "
            f"(also at line {int(lines[first])})",
            "one box per id and frame",
        )


def read_gt(path: Path | str, *, frame_offset: int = 0) -> MotFile:
    """Read a MOTChallenge ground-truth file into ``frame,id,x,y,w,h,conf,class,visibility`` rows.

    ``frame_offset`` is added to every frame (1 turns a 0-based file into MOTChallenge's 1-based frames).
    """
    path = Path(path)
    text = _read_text(path)
    fast = _parse_fast(text, frame_offset)
    if fast is not None:
        parsed, line_array, width = fast
        rows = np.ones((len(parsed), 9), dtype=np.float64)
        kept = 7 if width == 10 else width  # MOT15: conf, then world x/y/z; class and visibility stay 1
        rows[:, :kept] = parsed[:, :kept]
        _check_unique(path, rows, line_array)
        return MotFile(path, rows, line_array, width)
    raw, lines, width = _parse_lines(path, text, gt=True, frame_offset=frame_offset)
    rows = np.ones((len(raw), 9), dtype=np.float64)
    for i, values in enumerate(raw):
        if len(values) == 10:
            rows[i, :7] = values[:7]  # MOT15: conf, then world x/y/z; class and visibility stay 1
        else:
            rows[i, : len(values)] = values[:9]
    line_array = np.asarray(lines, dtype=np.int64)
    _check_unique(path, rows, line_array)
    return MotFile(path, rows, line_array, width)


def read_pred(path: Path | str, *, frame_offset: int = 0) -> MotFile:
    """Read a MOTChallenge result file into ``frame,id,x,y,w,h,conf`` rows (``frame_offset`` as in
    :func:`read_gt`)."""
    path = Path(path)
    text = _read_text(path)
    fast = _parse_fast(text, frame_offset)
    if fast is not None:
        parsed, line_array, width = fast
        rows = np.ones((len(parsed), 7), dtype=np.float64)
        rows[:, : min(width, 7)] = parsed[:, :7]
        _check_unique(path, rows, line_array)
        return MotFile(path, rows, line_array, width)
    raw, lines, width = _parse_lines(path, text, gt=False, frame_offset=frame_offset)
    rows = np.ones((len(raw), 7), dtype=np.float64)
    for i, values in enumerate(raw):
        rows[i, : min(len(values), 7)] = values[:7]
    line_array = np.asarray(lines, dtype=np.int64)
    _check_unique(path, rows, line_array)
    return MotFile(path, rows, line_array, width)


@dataclass(frozen=True)
class FramePairs:
    """Every (ground-truth row, result row) pair sharing a frame, for rows sorted by 1-based frame.

    Pairs run ground truth major within a frame, so frame ``t + 1``'s pairs, ``pair_bounds[t]`` to
    ``pair_bounds[t + 1]``, form a (its ground-truth rows) x (its result rows) block; ``gt_bounds`` and
    ``pred_bounds`` delimit each frame's rows the same way.
    """

    gt_index: np.ndarray
    pred_index: np.ndarray
    gt_bounds: np.ndarray
    pred_bounds: np.ndarray
    pair_bounds: np.ndarray

    @classmethod
    def of(cls, gt_frames: np.ndarray, pred_frames: np.ndarray, length: int) -> FramePairs:
        gt_frames = np.asarray(gt_frames, dtype=np.int64)
        pred_frames = np.asarray(pred_frames, dtype=np.int64)
        gt_bounds = np.searchsorted(gt_frames, np.arange(1, length + 2), side="left")
        pred_bounds = np.searchsorted(pred_frames, np.arange(1, length + 2), side="left")
        gt_counts, pred_counts = np.diff(gt_bounds), np.diff(pred_bounds)
        pair_bounds = np.concatenate([[0], np.cumsum(gt_counts * pred_counts)])
        per_row = pred_counts[gt_frames - 1]
        gt_index = np.repeat(np.arange(len(gt_frames)), per_row)
        starts = np.repeat(np.cumsum(per_row) - per_row, per_row)
        pred_index = np.repeat(pred_bounds[gt_frames - 1], per_row) + np.arange(len(gt_index)) - starts
        return cls(gt_index, pred_index, gt_bounds, pred_bounds, pair_bounds)


def read_seqinfo(path: Path | str) -> dict[str, str]:
    """The ``[Sequence]`` section of a ``seqinfo.ini`` (keys as written: ``seqLength``, ``imWidth``...)."""
    path = Path(path)
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string("\n".join(_read_text(path)), source=str(path))
    except configparser.Error as exc:
        raise InputError(
            path, getattr(exc, "lineno", None), "not an INI file", "[Sequence] section"
        ) from None
    if not parser.has_section("Sequence"):
        raise InputError(path, None, "no [Sequence] section", "[Sequence] with seqLength")
    return dict(parser.items("Sequence"))


def seq_length(path: Path | str) -> int:
    """``seqLength`` from a ``seqinfo.ini``."""
    info = read_seqinfo(path)
    value = info.get("seqLength")
    if value is None:
        raise InputError(path, None, "no seqLength in [Sequence]", "seqLength = <frames>")
    try:
        length = int(value)
    except ValueError:
        raise InputError(
            path, None, f"seqLength {value!r} is not an integer", "seqLength = <frames>"
        ) from None
    if length < 0:
        raise InputError(path, None, f"seqLength {length} is negative", "seqLength >= 0")
    return length


def check_frames(file: MotFile, length: int, source: Path) -> None:
    """Every frame must lie in ``1..length`` (``length`` read from ``source``)."""
    if not len(file.rows):
        return
    beyond = np.nonzero(file.rows[:, 0] > length)[0]
    if len(beyond):
        i = int(beyond[0])
        raise InputError(
            file.path,
            int(file.lines[i]),
            f"frame {int(file.rows[i, 0])} is beyond the sequence length {length} given by {source}",
            f"frames 1..{length}",
        )
