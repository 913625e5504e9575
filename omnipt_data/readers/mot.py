"""MOTChallenge family: MOT15/16/17/20, DanceTrack, SportsMOT (ground truth, detections, tracker results).

Layouts accepted (``SRC`` given to ``convert mot``):

- a dataset root with split folders (``MOT17/train/MOT17-02-FRCNN/``, ``dancetrack/val/dancetrack0004/``),
  a split folder of sequences, or one sequence folder holding ``seqinfo.ini``, ``gt/gt.txt``,
  ``det/det.txt`` and an image folder (``img1``; DanceTrack's 8-digit names are found by listing it);
- a bare ``gt.txt`` (or a folder holding one) with neither ``seqinfo.ini`` nor images: the sequence
  length is the last annotated frame and image sizes stay unknown (null).

Rows (``frame,id,left,top,width,height,...``, 1-based frames, pixels):

- 9 columns, MOT16 and later: ``conf`` is the evaluation flag (0 = ignore), then ``class`` and
  ``visibility``;
- 10 columns, MOT15 ground truth and detection files: ``conf`` then world ``x,y,z`` (-1); no class, so
  boxes are ``pedestrian`` with a null ``class_id``;
- 6 to 8 columns: tracker results without the trailing columns.

``det/det.txt`` rows become boxes with ``source = "det"`` and their score as ``confidence``; a results
folder of ``<sequence>.txt`` files (reader ``mot-results``) becomes ``source = "model:NAME"``.
Coordinates are kept as the files give them (MOTChallenge's 1-based pixel convention is not shifted).
"""

from __future__ import annotations

import configparser
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from omnipt_data.errors import InputError, OmniptError, Problems
from omnipt_data.readers.base import (
    Batch,
    ReadOptions,
    Unit,
    decode_lines,
    escapes,
    file_size,
    image_size,
)
from omnipt_data.schema import SOURCE_DET, SOURCE_GT, SOURCE_PREDICTION_PREFIX, frame_uid, sequence_uid

MOT_CLASSES = {
    1: "pedestrian",
    2: "person_on_vehicle",
    3: "car",
    4: "bicycle",
    5: "motorbike",
    6: "non_mot_vehicle",
    7: "static_person",
    8: "distractor",
    9: "occluder",
    10: "occluder_on_ground",
    11: "occluder_full",
    12: "reflection",
    13: "crowd",
}
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "c7", "c8", "c9")
KNOWN_DATASETS = (
    ("dancetrack", "dancetrack"),
    ("sportsmot", "sportsmot"),
    ("mot20", "MOT20"),
    ("mot17", "MOT17"),
    ("mot16", "MOT16"),
    ("mot15", "MOT15"),
    ("2dmot2015", "MOT15"),
)


@dataclass(frozen=True)
class SequenceInfo:
    name: str
    folder: Path
    length: int | None
    width: int | None
    height: int | None
    fps: float | None
    image_dir: str
    image_ext: str
    gt: Path | None
    det: Path | None


# --- parsing ---------------------------------------------------------------------------------------


def _check_row(values: list[float], ncols: int, seq_length: int | None, *, needs_id: bool) -> str | None:
    """The problem with one parsed row, or None."""
    if any(math.isnan(v) or math.isinf(v) for v in values):
        return "NaN or infinite value"
    frame, track, _, _, w, h = values[:6]
    if frame != int(frame) or frame < 1:
        return f"frame {frame:g} is not a positive integer"
    if seq_length is not None and frame > seq_length:
        return f"frame {int(frame)} is outside the sequence (seqLength {seq_length})"
    if track != int(track) or (needs_id and track < 0):
        return f"id {track:g} is not a non-negative integer"
    if w < 0 or h < 0:
        return f"negative box size {w:g}x{h:g}"
    return None


def _parse_slowly(
    path: Path, ncols: int, seq_length: int | None, problems: Problems, *, needs_id: bool
) -> pl.DataFrame:
    """Line-by-line parse that names the first bad line (or skips bad lines when lenient)."""
    rows: list[list[float]] = []
    lines: list[int] = []
    expected = f"{ncols} comma-separated numbers: {','.join(COLUMNS[:ncols])}"
    for number, text in decode_lines(path, problems):
        if not text.strip():
            continue
        fields = text.split(",")
        if len(fields) != ncols:
            problems.report(InputError(path, number, f"{len(fields)} columns", expected))
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_number(f))
            problems.report(InputError(path, number, f"non-numeric value {bad.strip()!r}", expected))
            continue
        problem = _check_row(values, ncols, seq_length, needs_id=needs_id)
        if problem:
            problems.report(InputError(path, number, problem, expected))
            continue
        rows.append(values)
        lines.append(number)
    frame = pl.DataFrame(rows, schema=[(c, pl.Float64) for c in COLUMNS[:ncols]], orient="row")
    return frame.with_columns(pl.Series("line", lines, dtype=pl.Int64))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_count(path: Path, problems: Problems) -> int | None:
    for _, text in decode_lines(path, problems):
        if text.strip():
            return len(text.split(","))
    return None


def parse_mot_file(
    path: Path, seq_length: int | None, problems: Problems, *, needs_id: bool = True
) -> pl.DataFrame:
    """Parse a MOTChallenge text file into float columns ``frame, id, x, y, w, h, conf[, c7..c9]``.

    The fast path is polars' CSV reader plus vectorised checks; any failure falls back to a line-by-line
    parse that reports the offending line.
    """
    ncols = _column_count(path, problems)
    if ncols is None:
        return pl.DataFrame(schema=[(c, pl.Float64) for c in COLUMNS[:6]] + [("line", pl.Int64)])
    if not 6 <= ncols <= 10:
        problems.report(InputError(path, 1, f"{ncols} columns", "6 to 10 comma-separated columns"))
        return _parse_slowly(path, 10 if ncols > 10 else 6, seq_length, problems, needs_id=needs_id)
    names = list(COLUMNS[:ncols])
    try:
        frame = pl.read_csv(path, has_header=False, schema=dict.fromkeys(names, pl.Float64))
    except (pl.exceptions.PolarsError, UnicodeDecodeError):
        return _parse_slowly(path, ncols, seq_length, problems, needs_id=needs_id)
    if frame.width != ncols or not _all_valid(frame, seq_length, needs_id=needs_id):
        return _parse_slowly(path, ncols, seq_length, problems, needs_id=needs_id)
    return frame.with_row_index("line", offset=1).with_columns(pl.col("line").cast(pl.Int64))


def _all_valid(frame: pl.DataFrame, seq_length: int | None, *, needs_id: bool) -> bool:
    values = frame.to_numpy()  # one float array: a null (an empty field) becomes NaN and fails below
    if not np.isfinite(values).all():
        return False
    frames, ids, widths, heights = values[:, 0], values[:, 1], values[:, 4], values[:, 5]
    rules = [frames >= 1, frames == np.floor(frames), ids == np.floor(ids), widths >= 0, heights >= 0]
    if needs_id:
        rules.append(ids >= 0)
    if seq_length is not None:
        rules.append(frames <= seq_length)
    return all(rule.all() for rule in rules)


# --- discovery -------------------------------------------------------------------------------------


def _read_seqinfo(folder: Path) -> dict[str, str]:
    path = folder / "seqinfo.ini"
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text(encoding="utf-8-sig"))
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InputError(
            path, getattr(exc, "lineno", None), f"unreadable seqinfo.ini ({exc})", "an INI file"
        ) from None
    if "Sequence" not in parser:
        raise InputError(path, None, "no [Sequence] section", "[Sequence] with name, imDir, seqLength, ...")
    return dict(parser["Sequence"])


def _int_field(info: dict[str, str], key: str, folder: Path) -> int | None:
    value = info.get(key.lower())
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(
            folder / "seqinfo.ini", None, f"{key}={value!r} is not an integer", f"{key}=<integer>"
        ) from None


def sequence_info(folder: Path) -> SequenceInfo:
    info = _read_seqinfo(folder)
    gt = next((p for p in (folder / "gt" / "gt.txt", folder / "gt.txt") if p.is_file()), None)
    det = folder / "det" / "det.txt"
    fps = info.get("framerate")
    image_dir = info.get("imdir", "img1")
    if escapes(image_dir):
        text = (folder / "seqinfo.ini").read_text(encoding="utf-8-sig")
        line = next((n for n, t in enumerate(text.splitlines(), 1) if t.lower().startswith("imdir")), None)
        raise InputError(
            folder / "seqinfo.ini",
            line,
            f"imDir {image_dir!r} leaves the sequence folder",
            "imDir=<a folder inside the sequence folder>, e.g. img1",
        )
    return SequenceInfo(
        name=info.get("name", folder.name),
        folder=folder,
        length=_int_field(info, "seqLength", folder),
        width=_int_field(info, "imWidth", folder),
        height=_int_field(info, "imHeight", folder),
        fps=float(fps) if fps else None,
        image_dir=image_dir,
        image_ext=info.get("imext", ".jpg"),
        gt=gt,
        det=det if det.is_file() else None,
    )


def _is_sequence(folder: Path) -> bool:
    return any((folder / p).is_file() for p in ("seqinfo.ini", "gt/gt.txt", "gt.txt"))


def find_sequences(root: Path) -> list[Path]:
    """Sequence folders under ``root`` (itself, or up to two levels down), sorted by path."""
    if root.is_file():
        return [root.parent]
    if _is_sequence(root):
        return [root]
    found = [p for p in sorted(root.iterdir()) if p.is_dir() and _is_sequence(p)]
    for child in sorted(root.iterdir()):
        if child.is_dir() and not _is_sequence(child):
            found += [p for p in sorted(child.iterdir()) if p.is_dir() and _is_sequence(p)]
    return found


def infer_dataset(path: Path) -> str:
    text = str(path.resolve()).lower()
    for needle, name in KNOWN_DATASETS:
        if needle in text:
            return name
    return "mot"


def infer_split(folder: Path) -> str:
    parent = folder.parent.name.lower()
    return parent if parent in SPLITS else "train"


def list_images(folder: Path) -> dict[int, str]:
    """Frame index -> file name for the images of a sequence (6- or 8-digit names alike)."""
    images: dict[int, str] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() in IMAGE_EXTENSIONS and stem.isdigit():
                images[int(stem)] = entry.name
    return images


# --- the reader ------------------------------------------------------------------------------------


def mot_boxes(
    rows: pl.DataFrame, *, seq_uid: str, source: str, layout_columns: int, is_gt: bool
) -> pl.DataFrame:
    """Store ``boxes`` rows from parsed MOT columns (see :func:`parse_mot_file`)."""
    if layout_columns == 9 and is_gt:
        class_id = pl.col("c7").cast(pl.Int16)
        category = class_id.replace_strict(MOT_CLASSES, default="unknown", return_dtype=pl.String)
        visibility = pl.col("c8").cast(pl.Float32)
        ignore = pl.col("conf") == 0
        confidence = pl.lit(None, pl.Float32)
    else:
        class_id = pl.lit(None, pl.Int16)
        category = pl.lit("pedestrian")
        visibility = pl.lit(None, pl.Float32)
        ignore = (pl.col("conf") == 0) if is_gt else pl.lit(False)
        confidence = pl.lit(None, pl.Float32) if is_gt else pl.col("conf").cast(pl.Float32)
    if not rows["frame"].is_sorted():  # files are usually in frame order already
        rows = rows.sort("frame", maintain_order=True)
    # rows are sorted by frame: a box's ordinal in its frame is its row minus the frame's first row; each
    # distinct frame uid and ordinal suffix is formatted once, then gathered for the rows
    frames = rows["frame"].to_numpy()
    first = np.empty(frames.size, dtype=bool)
    first[:1] = True
    first[1:] = frames[1:] != frames[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    ordinal = np.arange(frames.size) - starts[group]
    uids = pl.Series([frame_uid(seq_uid, int(f)) for f in frames[starts]], dtype=pl.String).gather(group)
    suffixes = [f"/{source}/{k}" for k in range(int(ordinal.max()) + 1 if ordinal.size else 0)]
    box_uids = uids + pl.Series(suffixes, dtype=pl.String).gather(ordinal)
    return rows.with_columns(box_uids.alias("box_uid"), uids.alias("frame_uid")).select(
        "box_uid",
        "frame_uid",
        pl.when(pl.col("id") >= 0).then(pl.col("id").cast(pl.Int64)).alias("track_id"),
        category.alias("category"),
        class_id.alias("class_id"),
        pl.col("x").alias("x1"),
        pl.col("y").alias("y1"),
        (pl.col("x") + pl.col("w")).alias("x2"),
        (pl.col("y") + pl.col("h")).alias("y2"),
        visibility.alias("visibility"),
        confidence.alias("confidence"),
        ignore.alias("ignore"),
        pl.lit(source).alias("source"),
    )


class MotReader:
    name = "mot"
    videos = True  # its sequences are videos
    version = "1"
    description = "MOTChallenge (MOT15/16/17/20), DanceTrack, SportsMOT sequence folders or a bare gt.txt"

    def sniff(self, path: Path) -> bool:
        try:
            return bool(find_sequences(path))
        except OSError:
            return False

    def _root(self, path: Path) -> Path:
        return path.parent if path.is_file() else path

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        if path.is_file() and path.name != "gt.txt":
            raise OmniptError(f"{path}: expected a MOTChallenge folder or a gt.txt file")
        sequences = find_sequences(path)
        if not sequences:
            raise OmniptError(
                f"{path}: no MOTChallenge sequence found (a folder with seqinfo.ini or gt/gt.txt)"
            )
        return [
            Unit(s, sum(file_size(s / f) for f in ("gt/gt.txt", "gt.txt", "det/det.txt")), s.name)
            for s in sequences
        ]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {options.dataset or infer_dataset(path): str(self._dataset_root(path).resolve())}

    def _dataset_root(self, path: Path) -> Path:
        """Images are stored relative to the parent of the split folder (or of the sequence)."""
        root = self._root(path)
        if _is_sequence(root):
            return root.parent.parent if root.parent.name.lower() in SPLITS else root.parent
        return root.parent if root.name.lower() in SPLITS else root

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        try:
            info = sequence_info(unit.path)
        except InputError as error:  # an unusable seqinfo.ini: --lenient leaves the sequence out
            options.problems.report(error)
            return
        dataset = options.dataset or infer_dataset(root)
        split = options.split or infer_split(unit.path)
        base = self._dataset_root(root)
        seq_uid = sequence_uid(dataset, split, info.name)
        problems = options.problems

        gt_rows = parse_mot_file(info.gt, info.length, problems) if info.gt else None
        det_rows = parse_mot_file(info.det, info.length, problems, needs_id=False) if info.det else None
        length = info.length
        if length is None:
            lasts = [int(r["frame"].max() or 0) for r in (gt_rows, det_rows) if r is not None and r.height]
            if not lasts:
                problems.report(
                    InputError(
                        info.gt or info.det or unit.path,
                        None,
                        "no annotation rows, and no seqinfo.ini seqLength to say how long the sequence is",
                        "frame,id,x,y,w,h,... rows, or a seqinfo.ini with seqLength",
                    )
                )
                return
            length = max(lasts)
        image_folder = unit.path / info.image_dir
        images = list_images(image_folder) if image_folder.is_dir() else None
        width, height = info.width, info.height
        if images and (width is None or height is None):
            width, height = image_size(image_folder / images[min(images)])
        if images is not None:
            self._check_images(info, gt_rows, images, problems)

        digits = 8 if dataset == "dancetrack" else 6
        rel_dir = (
            (unit.path / info.image_dir).relative_to(base).as_posix()
            if unit.path.is_relative_to(base)
            else info.image_dir
        )
        names = [
            images.get(i, f"{i:0{digits}d}{info.image_ext}") if images else f"{i:0{digits}d}{info.image_ext}"
            for i in range(1, length + 1)
        ]
        indices = pl.int_range(1, length + 1, eager=True).cast(pl.Int32)
        frames = pl.DataFrame(
            {
                "frame_uid": [frame_uid(seq_uid, i) for i in range(1, length + 1)],
                "frame_index": indices,
                "image_path": [f"{rel_dir}/{n}" for n in names],
            }
        ).with_columns(
            sequence_uid=pl.lit(seq_uid),
            dataset=pl.lit(dataset),
            split=pl.lit(split),
            sequence=pl.lit(info.name),
            width=pl.lit(width, pl.Int32),
            height=pl.lit(height, pl.Int32),
            timestamp=((pl.col("frame_index") - 1) / info.fps) if info.fps else pl.lit(None, pl.Float64),
        )
        sequence = pl.DataFrame(
            {
                "sequence_uid": [seq_uid],
                "dataset": [dataset],
                "split": [split],
                "sequence": [info.name],
                "fps": [info.fps],
                "length": [length],
                "width": [width],
                "height": [height],
                "image_dir": [rel_dir],
            }
        )
        batch: Batch = {"sequences": sequence, "frames": frames}
        boxes = []
        if gt_rows is not None and gt_rows.height:
            boxes.append(
                mot_boxes(
                    gt_rows, seq_uid=seq_uid, source=SOURCE_GT, layout_columns=gt_rows.width - 1, is_gt=True
                )
            )
        if det_rows is not None and det_rows.height:
            boxes.append(
                mot_boxes(
                    det_rows,
                    seq_uid=seq_uid,
                    source=SOURCE_DET,
                    layout_columns=det_rows.width - 1,
                    is_gt=False,
                )
            )
        if boxes:
            batch["boxes"] = pl.concat(boxes)
        yield batch

    def _check_images(
        self, info: SequenceInfo, rows: pl.DataFrame | None, images: dict[int, str], problems: Problems
    ) -> None:
        if rows is None or info.gt is None:
            return
        missing = rows.filter(~pl.col("frame").cast(pl.Int64).is_in(list(images))).head(1)
        if missing.height:
            frame, line = int(missing["frame"].item()), int(missing["line"].item())
            problems.report(
                InputError(
                    info.gt,
                    line,
                    f"frame {frame} has no image in {info.folder / info.image_dir}",
                    "an image per annotated frame",
                )
            )


class MotResultsReader:
    """A folder of tracker results ``<sequence>.txt`` (MOTChallenge submission layout) as predictions."""

    name = "mot-results"
    videos = True  # its sequences are videos
    version = "1"
    description = (
        "MOTChallenge tracker results: a folder of <sequence>.txt files (boxes with source model:NAME)"
    )
    pattern = re.compile(r".+\.txt$")

    def sniff(self, path: Path) -> bool:
        return path.is_dir() and not find_sequences(path) and any(p.suffix == ".txt" for p in path.iterdir())

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        files = (
            [path]
            if path.is_file()
            else sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".txt")
        )
        if not files:
            raise OmniptError(f"{path}: no <sequence>.txt result files")
        return [Unit(f, file_size(f), f.stem) for f in files]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        dataset = options.dataset or infer_dataset(root)
        split = options.split or "train"
        seq_uid = sequence_uid(dataset, split, unit.name)
        source = SOURCE_PREDICTION_PREFIX + (options.prediction_name or root.name)
        rows = parse_mot_file(unit.path, None, options.problems, needs_id=False)
        length = int(rows["frame"].max() or 0) if rows.height else 0
        frames = pl.DataFrame(
            {"frame_index": pl.int_range(1, length + 1, eager=True).cast(pl.Int32)}
        ).with_columns(
            frame_uid=pl.lit(seq_uid + "#") + pl.col("frame_index").cast(pl.String),
            sequence_uid=pl.lit(seq_uid),
            dataset=pl.lit(dataset),
            split=pl.lit(split),
            sequence=pl.lit(unit.name),
        )
        sequence = pl.DataFrame(
            {
                "sequence_uid": [seq_uid],
                "dataset": [dataset],
                "split": [split],
                "sequence": [unit.name],
                "length": [length],
            }
        )
        batch: Batch = {"sequences": sequence, "frames": frames}
        if rows.height:  # a tracker that found nobody leaves an empty file
            batch["boxes"] = mot_boxes(
                rows, seq_uid=seq_uid, source=source, layout_columns=rows.width - 1, is_gt=False
            )
        yield batch


READER = MotReader()
RESULTS_READER = MotResultsReader()
