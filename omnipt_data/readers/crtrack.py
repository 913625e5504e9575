"""CRTrack: cross-view referring MOT (synchronised camera views, one identity per person across views).

Two layouts, two readers:

- ``crtrack``, the dataset as released: ``CRTrack_{In,Cross}-domain/images/<split>/<Scene>_View<k>/``,
  each view a MOTChallenge sequence (``seqinfo.ini``, ``gt/gt.txt`` rows ``frame,id,x,y,w,h,1,1,1``,
  images in ``img1/``, named ``<digits>.jpg`` or ``<Scene>_View<k>_<digits>.jpg``), ids shared by the
  views of a scene; the sentences are in ``labels_with_ids_text/<split>/tackled_text/<Scene>.txt``, one
  ``<Scene>_<sentence>:<id1>,<id2>,...`` a line (an empty id list is accepted: a sentence naming nobody).
  ``SRC`` is a domain folder (``CRTrack_In-domain``) or a folder holding the domain folders.
- ``crtrack-eval``, the authors' evaluation ground truth: ``<Scene>_<sentence>/gt/View<k>.txt`` holding
  only the referred people (MOTChallenge rows). The boxes of a scene are the union over its sentences
  (one box per view, frame and id; two sentences giving different boxes is an error); every view has
  the frames ``1..N``, ``N`` being the scene's last annotated frame in any view (the views are
  synchronised); there are no images, so paths and sizes are null. The split is ``test`` (the released
  ground truth is the test split) unless ``--split`` says otherwise.

In the store a scene is one ``sequence`` whose views are ``View1``, ``View2``, ... (one ``sequences`` row
each), the same person has the same ``track_id`` in every view (one identity), and each sentence is one
``expressions`` row (``views``: the scene's views) with a ``referents`` row per frame of each view where a
named id has a box. A sentence naming an id that is no track of the scene is an error (file:line).
The dataset is ``crtrack-in-domain`` or ``crtrack-cross-domain`` when the path says so, else ``crtrack``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from omnipt_data.errors import InputError, OmniptError, Problems
from omnipt_data.readers.base import Batch, ReadOptions, Unit, decode_lines, file_size, image_size
from omnipt_data.readers.mot import COLUMNS as MOT_COLUMNS
from omnipt_data.readers.mot import IMAGE_EXTENSIONS, mot_boxes, parse_mot_file, sequence_info
from omnipt_data.schema import SOURCE_GT, frame_uid, sequence_uid

VIEW_FOLDER = re.compile(r"^(?P<scene>[^_]+)_(?P<view>View(?P<number>\d+))$")
VIEW_FILE = re.compile(r"^View(?P<number>\d+)\.txt$")
TRAILING_DIGITS = re.compile(r"(\d+)$")
TEXT_DIR = Path("labels_with_ids_text")
EXPECTED_LINE = "<Scene>_<sentence>:<id1>,<id2>,... (ids may be empty)"
EVAL_SPLIT = "test"


def dataset_name(path: Path) -> str:
    """``crtrack-in-domain`` / ``crtrack-cross-domain`` from the path, else ``crtrack``."""
    text = str(path.resolve()).lower()
    for domain in ("cross-domain", "in-domain"):
        if domain in text:
            return f"crtrack-{domain}"
    return "crtrack"


def view_number(view: str) -> int:
    return int(view.removeprefix("View"))


@dataclass(frozen=True)
class View:
    """One camera of a scene: its name and MOTChallenge sequence folder."""

    name: str  # View1, View2, ...
    folder: Path


def scene_views(split_dir: Path) -> dict[str, list[View]]:
    """Scene -> its ``<Scene>_View<k>`` sequence folders in view order."""
    scenes: dict[str, list[View]] = {}
    for folder in sorted(split_dir.iterdir()) if split_dir.is_dir() else []:
        match = VIEW_FOLDER.match(folder.name)
        if folder.is_dir() and match:
            scenes.setdefault(match["scene"], []).append(View(match["view"], folder))
    return {
        scene: sorted(views, key=lambda v: view_number(v.name)) for scene, views in sorted(scenes.items())
    }


def domain_folders(path: Path) -> list[Path]:
    """The domain folders (holding ``images/<split>/<Scene>_View<k>``) at or just under ``path``."""
    if not path.is_dir():
        return []
    candidates = [path] if (path / "images").is_dir() else sorted(p for p in path.iterdir() if p.is_dir())
    return [
        c
        for c in candidates
        if (c / "images").is_dir() and any(scene_views(s) for s in (c / "images").iterdir() if s.is_dir())
    ]


def frame_images(folder: Path) -> dict[int, str]:
    """Frame -> image name; the frame is the name's trailing digits (``000001``, ``Gate2_View1_000001``)."""
    images: dict[int, str] = {}
    if not folder.is_dir():
        return images
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            match = TRAILING_DIGITS.search(stem)
            if ext.lower() in IMAGE_EXTENSIONS and match:
                images[int(match.group(1))] = entry.name
    return images


@dataclass(frozen=True)
class Sentence:
    """One line of a tackled_text file."""

    line: int
    text: str
    track_ids: tuple[int, ...]


def parse_tackled_text(path: Path, scene: str, problems: Problems) -> list[Sentence]:
    """The sentences of a ``tackled_text/<Scene>.txt`` file, each with its line and ids."""
    sentences: list[Sentence] = []
    first_line: dict[str, int] = {}
    prefix = f"{scene}_"
    for number, text in decode_lines(path, problems):
        if not text.strip():
            continue
        head, colon, ids_text = text.rpartition(":")
        if not colon:
            problems.report(InputError(path, number, "no ':' before the ids", EXPECTED_LINE))
            continue
        if not head.startswith(prefix) or not head[len(prefix) :].strip():
            problems.report(
                InputError(path, number, f"the sentence does not start with {prefix!r}", EXPECTED_LINE)
            )
            continue
        sentence = head[len(prefix) :].strip()
        fields = [f.strip() for f in ids_text.split(",") if f.strip()]
        bad = next((f for f in fields if not f.isdigit()), None)
        if bad is not None:
            problems.report(
                InputError(path, number, f"id {bad!r} is not a non-negative integer", EXPECTED_LINE)
            )
            continue
        if sentence in first_line:
            problems.report(
                InputError(
                    path,
                    number,
                    f"sentence repeats line {first_line[sentence]}",
                    "each sentence once per scene",
                )
            )
            continue
        first_line[sentence] = number
        sentences.append(Sentence(number, sentence, tuple(sorted({int(f) for f in fields}))))
    return sentences


def _frames(
    seq_uid: str,
    dataset: str,
    split: str,
    scene: str,
    view: str,
    length: int,
    image_paths: list[str | None],
    size: tuple[int | None, int | None],
    fps: float | None,
) -> pl.DataFrame:
    width, height = size
    return pl.DataFrame(
        {
            "frame_uid": [frame_uid(seq_uid, i) for i in range(1, length + 1)],
            "frame_index": pl.int_range(1, length + 1, eager=True).cast(pl.Int32),
            "image_path": pl.Series(image_paths, dtype=pl.String),
        }
    ).with_columns(
        sequence_uid=pl.lit(seq_uid),
        dataset=pl.lit(dataset),
        split=pl.lit(split),
        sequence=pl.lit(scene),
        view=pl.lit(view),
        width=pl.lit(width, pl.Int32),
        height=pl.lit(height, pl.Int32),
        timestamp=((pl.col("frame_index") - 1) / fps) if fps else pl.lit(None, pl.Float64),
    )


def _sequence(
    seq_uid: str,
    dataset: str,
    split: str,
    scene: str,
    view: str,
    length: int,
    size: tuple[int | None, int | None],
    fps: float | None,
    image_dir: str | None,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sequence_uid": [seq_uid],
            "dataset": [dataset],
            "split": [split],
            "sequence": [scene],
            "view": [view],
            "fps": [fps],
            "length": [length],
            "width": [size[0]],
            "height": [size[1]],
            "image_dir": [image_dir],
        },
        schema_overrides={"fps": pl.Float64, "width": pl.Int32, "height": pl.Int32, "image_dir": pl.String},
    )


def _referents(boxes: pl.DataFrame, expression_uid: str, track_ids: tuple[int, ...]) -> pl.DataFrame:
    """One referent per frame (of every view) where one of ``track_ids`` has a box."""
    return (
        boxes.filter(pl.col("track_id").is_in(list(track_ids)))
        .select(pl.lit(expression_uid).alias("expression_uid"), "frame_uid", "track_id")
        .unique(maintain_order=True)
    )


class CRTrackReader:
    name = "crtrack"
    videos = True  # its sequences are videos
    version = "1"
    description = "CRTrack cross-view referring MOT: <Scene>_View<k> MOTChallenge sequences + tackled_text"

    def sniff(self, path: Path) -> bool:
        try:
            return bool(domain_folders(path))
        except OSError:
            return False

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        domains = domain_folders(path)
        if not domains:
            raise OmniptError(f"{path}: no CRTrack views found (expected images/<split>/<Scene>_View<k>/)")
        units = []
        for domain in domains:
            for split_dir in sorted(p for p in (domain / "images").iterdir() if p.is_dir()):
                scenes = scene_views(split_dir)
                self._check_texts(domain, split_dir.name, scenes, options.problems)
                for scene, views in scenes.items():
                    size = sum(file_size(v.folder / "gt" / "gt.txt") for v in views)
                    units.append(Unit(split_dir, size, scene))
        return units

    @staticmethod
    def _check_texts(domain: Path, split: str, scenes: dict[str, list[View]], problems: Problems) -> None:
        """Sentence files must belong to a scene that has views."""
        text_dir = domain / TEXT_DIR / split / "tackled_text"
        for path in sorted(text_dir.glob("*.txt")) if text_dir.is_dir() else []:
            if path.stem not in scenes:
                problems.report(
                    InputError(
                        path,
                        None,
                        f"scene {path.stem} has no view folders in {domain / 'images' / split}",
                        "images/<split>/<Scene>_View<k>/ for every tackled_text/<Scene>.txt",
                    )
                )

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {options.dataset or dataset_name(d): str(d.resolve()) for d in domain_folders(path)}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        split_dir, scene = unit.path, unit.name
        domain = split_dir.parent.parent
        dataset = options.dataset or dataset_name(domain)
        split = options.split or split_dir.name
        views = scene_views(split_dir)[scene]
        tables: dict[str, list[pl.DataFrame]] = {"sequences": [], "frames": [], "boxes": []}
        for view in views:
            try:
                read = self._read_view(domain, view, dataset, split, scene, options.problems)
            except InputError as error:  # an unusable seqinfo.ini: --lenient leaves the view out
                options.problems.report(error)
                continue
            for table, df in read.items():
                tables[table].append(df)
        batch: Batch = {table: pl.concat(dfs) for table, dfs in tables.items() if dfs}
        text = domain / TEXT_DIR / split_dir.name / "tackled_text" / f"{scene}.txt"
        if text.is_file():
            boxes = batch.get("boxes", pl.DataFrame(schema={"frame_uid": pl.String, "track_id": pl.Int64}))
            batch.update(
                self._read_sentences(
                    text, domain, boxes, [v.name for v in views], dataset, split, scene, options.problems
                )
            )
        yield batch

    @staticmethod
    def _read_sentences(
        text: Path,
        domain: Path,
        boxes: pl.DataFrame,
        views: list[str],
        dataset: str,
        split: str,
        scene: str,
        problems: Problems,
    ) -> Batch:
        """``expressions`` and ``referents`` of a scene's tackled_text file."""
        tracks = set(boxes["track_id"].drop_nulls().to_list())
        expressions: list[dict[str, object]] = []
        referents: list[pl.DataFrame] = []
        for sentence in parse_tackled_text(text, scene, problems):
            unknown = [t for t in sentence.track_ids if t not in tracks]
            if unknown:
                problems.report(
                    InputError(
                        text,
                        sentence.line,
                        f"id {unknown[0]} is no track of scene {scene} in any view",
                        "ids from the scene's gt/gt.txt files",
                    )
                )
                continue
            uid = f"{sequence_uid(dataset, split, scene)}/{sentence.text}"
            expressions.append(
                {
                    "expression_uid": uid,
                    "sentence": sentence.text,
                    "views": views,
                    "source_file": f"{text.relative_to(domain).as_posix()}:{sentence.line}",
                }
            )
            referents.append(_referents(boxes, uid, sentence.track_ids))
        if not expressions:
            return {}
        return {
            "expressions": pl.DataFrame(
                expressions, schema_overrides={"views": pl.List(pl.String)}
            ).with_columns(dataset=pl.lit(dataset), split=pl.lit(split), sequence=pl.lit(scene)),
            "referents": pl.concat(referents),
        }

    @staticmethod
    def _read_view(
        domain: Path, view: View, dataset: str, split: str, scene: str, problems: Problems
    ) -> dict[str, pl.DataFrame]:
        info = sequence_info(view.folder)
        seq_uid = sequence_uid(dataset, split, scene, view.name)
        rows = parse_mot_file(info.gt, info.length, problems) if info.gt else None
        length = info.length
        if length is None:
            length = int(rows["frame"].max() or 0) if rows is not None and rows.height else 0
        image_folder = view.folder / info.image_dir
        images = frame_images(image_folder)
        size = (info.width, info.height)
        if images and None in size:
            size = image_size(image_folder / images[min(images)])
        if images and rows is not None and info.gt is not None:
            missing = rows.filter(~pl.col("frame").cast(pl.Int64).is_in(list(images))).head(1)
            if missing.height:
                problems.report(
                    InputError(
                        info.gt,
                        int(missing["line"].item()),
                        f"frame {int(missing['frame'].item())} has no image in {image_folder}",
                        "an image per annotated frame",
                    )
                )
        rel_dir = image_folder.relative_to(domain).as_posix()
        names = [images.get(i, f"{i:06d}{info.image_ext}") for i in range(1, length + 1)]
        tables = {
            "sequences": _sequence(
                seq_uid, dataset, split, scene, view.name, length, size, info.fps, rel_dir
            ),
            "frames": _frames(
                seq_uid,
                dataset,
                split,
                scene,
                view.name,
                length,
                [f"{rel_dir}/{n}" for n in names],
                size,
                info.fps,
            ),
        }
        if rows is not None and rows.height:
            tables["boxes"] = mot_boxes(
                rows, seq_uid=seq_uid, source=SOURCE_GT, layout_columns=rows.width - 1, is_gt=True
            )
        return tables


class CRTrackEvalReader:
    """The evaluation ground truth ``<Scene>_<sentence>/gt/View<k>.txt`` as boxes, sentences and referents."""

    name = "crtrack-eval"
    videos = True  # its sequences are videos
    version = "1"
    description = "CRTrack evaluation ground truth: <Scene>_<sentence>/gt/View<k>.txt per sentence"

    def sniff(self, path: Path) -> bool:
        try:
            return bool(self._sentence_folders(path))
        except OSError:
            return False

    @staticmethod
    def _view_files(folder: Path) -> list[Path]:
        gt = folder / "gt"
        if not gt.is_dir():
            return []
        files = [p for p in gt.iterdir() if p.is_file() and VIEW_FILE.match(p.name)]
        return sorted(files, key=lambda p: int(VIEW_FILE.match(p.name)["number"]))

    def _sentence_folders(self, path: Path) -> list[Path]:
        if not path.is_dir():
            return []
        return [
            p
            for p in sorted(path.iterdir())
            if p.is_dir() and "_" in p.name and p.name.split("_", 1)[1] and self._view_files(p)
        ]

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        folders = self._sentence_folders(path)
        if not folders:
            raise OmniptError(f"{path}: no <Scene>_<sentence>/gt/View<k>.txt folders")
        sizes: dict[str, int] = {}
        for folder in folders:
            scene = folder.name.split("_", 1)[0]
            sizes[scene] = sizes.get(scene, 0) + sum(file_size(f) for f in self._view_files(folder))
        return [Unit(path, size, scene) for scene, size in sorted(sizes.items())]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        scene = unit.name
        dataset = options.dataset or dataset_name(root)
        split = options.split or EVAL_SPLIT
        base = sequence_uid(dataset, split, scene)
        folders = [f for f in self._sentence_folders(root) if f.name.split("_", 1)[0] == scene]
        views = {f.name.split("_", 1)[1]: [p.stem for p in self._view_files(f)] for f in folders}
        rows = self._consistent(self._read_rows(folders, options.problems), options.problems)
        length = int(rows["frame"].max() or 0) if rows.height else 0
        view_names = sorted({v for names in views.values() for v in names}, key=view_number)
        seq_uids = {v: sequence_uid(dataset, split, scene, v) for v in view_names}
        rows = rows.with_columns(
            frame_uid=pl.col("view").replace_strict(seq_uids, return_dtype=pl.String)
            + "#"
            + pl.col("frame").cast(pl.Int64).cast(pl.String)
        )
        no_size = (None, None)
        out: Batch = {
            "sequences": pl.concat(
                _sequence(seq_uids[v], dataset, split, scene, v, length, no_size, None, None)
                for v in view_names
            ),
            "frames": pl.concat(
                _frames(seq_uids[v], dataset, split, scene, v, length, [None] * length, no_size, None)
                for v in view_names
            ),
            "expressions": pl.DataFrame(
                {
                    "expression_uid": [f"{base}/{s}" for s in views],
                    "sentence": list(views),
                    "views": list(views.values()),
                    "source_file": [f"{scene}_{s}/gt" for s in views],
                },
                schema_overrides={"views": pl.List(pl.String)},
            ).with_columns(dataset=pl.lit(dataset), split=pl.lit(split), sequence=pl.lit(scene)),
        }
        if rows.height:
            # rows of 6 columns have no evaluation flag: they count as ground truth, not ignored
            rows = rows.with_columns(
                conf=pl.col("conf").fill_null(1.0) if "conf" in rows.columns else pl.lit(1.0)
            )
            layout = self._layout(rows)
            unique = rows.unique(["view", "frame", "id"], keep="first", maintain_order=True)
            out["boxes"] = pl.concat(
                mot_boxes(
                    unique.filter(pl.col("view") == v)
                    .sort("frame", "id")
                    .select(*MOT_COLUMNS[:layout], "line"),
                    seq_uid=seq_uids[v],
                    source=SOURCE_GT,
                    layout_columns=layout,
                    is_gt=True,
                )
                for v in view_names
            )
            out["referents"] = rows.select(
                (pl.lit(base + "/") + pl.col("sentence")).alias("expression_uid"),
                "frame_uid",
                pl.col("id").cast(pl.Int64).alias("track_id"),
            ).unique(maintain_order=True)
        yield out

    def _read_rows(self, folders: list[Path], problems: Problems) -> pl.DataFrame:
        """Every row of every sentence's view files, with its view, sentence, file and line."""
        parsed = []
        for folder in folders:
            sentence = folder.name.split("_", 1)[1]
            for path in self._view_files(folder):
                rows = parse_mot_file(path, None, problems)
                if rows.height:
                    parsed.append(
                        rows.with_columns(
                            view=pl.lit(path.stem), sentence=pl.lit(sentence), file=pl.lit(str(path))
                        )
                    )
        if not parsed:
            return pl.DataFrame(
                schema={
                    **{c: pl.Float64 for c in MOT_COLUMNS[:6]},
                    "line": pl.Int64,
                    "view": pl.String,
                    "sentence": pl.String,
                    "file": pl.String,
                }
            )
        return pl.concat(parsed, how="diagonal")

    @staticmethod
    def _layout(rows: pl.DataFrame) -> int:
        """How many MOTChallenge columns every row has (9 for the released ground truth, at least 7)."""
        for count in (9, 8):
            wanted = MOT_COLUMNS[6:count]
            if (
                all(c in rows.columns for c in wanted)
                and rows.select(wanted).null_count().sum_horizontal().item() == 0
            ):
                return count
        return 7

    @staticmethod
    def _consistent(rows: pl.DataFrame, problems: Problems) -> pl.DataFrame:
        """Rows whose box agrees with the first box given for the same view, frame and id."""
        first = rows.with_columns(
            *(
                pl.col(c).first().over("view", "frame", "id").alias(f"first_{c}")
                for c in ("x", "y", "w", "h")
            ),
            pl.col("file").first().over("view", "frame", "id").alias("first_file"),
            pl.col("line").first().over("view", "frame", "id").alias("first_line"),
        )
        differs = pl.any_horizontal(pl.col(c) != pl.col(f"first_{c}") for c in ("x", "y", "w", "h"))
        for row in first.filter(differs).iter_rows(named=True):
            problems.report(
                InputError(
                    row["file"],
                    row["line"],
                    f"frame {int(row['frame'])}, id {int(row['id'])}: the box differs from "
                    f"{row['first_file']}:{row['first_line']}",
                    "one box per view, frame and id across the sentences of a scene",
                )
            )
        return first.filter(~differs).select(rows.columns)


READER = CRTrackReader()
EVAL_READER = CRTrackEvalReader()
