"""BenSMOT (Li et al., ECCV 2024, "Beyond MOT: Semantic Multi-Object Tracking"): tracks that are described.

Layout (the dataset's own ``BenSMOT.md``): ``BenSMOT/{train,test}/<category>/<sequence>/`` holding
``gt/gt.txt`` (MOTChallenge rows, read with the MOT reader's parser), ``imgs/001.jpg ...`` (the number is
the frame index; frames may be sampled sparsely), ``video_caption.txt`` (the clip summary),
``instance_captions.txt`` (one ``woman0: A woman in ...`` line per track) and ``interactions.graphml``
(directed edges between tracks, labelled with WordNet synsets). A sequence is ``<category>/<sequence>``.

- Track ids: the k-th non-blank line of ``instance_captions.txt`` is track ``k`` of ``gt.txt`` ("the
  order of their appearance corresponds to the trajectory numbers"); the name (``woman0``) is kept in the
  ``name`` column of its ``track_caption`` row.
- ``interactions.graphml``: nodes are the instance names (their id, or a ``name``/``label`` data value);
  when a node name is not among the caption names, the nodes are numbered 1, 2, ... in document order
  instead. An edge's label is its ``relationship`` data value (``relation``, ``interaction``, ``label``
  are accepted too, else its first data value): one synset or a comma-separated list. Each synset becomes
  one ``interaction`` row (``track_id`` -> ``other_track_id``, ``name`` = the synset), lower-cased with a
  stray leading dot or space removed, as the authors' SMOTer code does.
- The combined files of the authors' code, ``video_summary.json`` (``{"<category>/<seq>": summary}``),
  ``instance_caption.json`` (``{"<category>/<seq>": {"<track_id>": caption}}``) and ``relation.json``
  (``{"<category>/<seq>": {"<src>-<dst>": ["hold.v.01", ...]}}``) are read from the dataset root (the
  folder holding ``train``/``test``) or the folder given; they fill in what a sequence's own files lack.

Semantics rows carry ``source = "gt"``. Frames are the images found in ``imgs/``, or 1 .. the last
annotated frame when there are no images; sizes come from the first image's header. The rows of a frame
without an image are left out, as the authors' converter leaves them out, and listed in the manifest's
``problems`` without stopping. A relation naming a track that ``gt.txt`` lacks is an error. Malformed
input is reported as ``file:line`` (XML errors at the parser's line).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.errors import InputError, OmniptError, Problems
from omnipt_data.readers.base import BOM, Batch, ReadOptions, Unit, decode_lines, file_size, image_size
from omnipt_data.readers.jsontext import parse_json
from omnipt_data.readers.mot import list_images, mot_boxes, parse_mot_file
from omnipt_data.schema import SOURCE_GT, frame_uid, sequence_uid

DATASET = "BenSMOT"
SPLITS = ("train", "test", "val")
SEMANTIC_FILES = ("video_caption.txt", "instance_captions.txt", "interactions.graphml")
COMBINED_FILES = ("video_summary.json", "instance_caption.json", "relation.json")
LABEL_KEYS = ("relationship", "relation", "relations", "interaction", "interactions", "label", "predicate")
NAME_KEYS = ("name", "label", "instance")
MAX_DEPTH = 3
SNIFF_FOLDERS = 2000  # `convert auto` gives up on BenSMOT after looking into this many folders
EXPECTED_CAPTION = "'<name>: <caption>' lines, e.g. 'woman0: A woman in a red coat ...'"
EXPECTED_GRAPHML = "a GraphML document with <node id=...> and <edge source=... target=...> elements"
EXPECTED_SUMMARY = 'a JSON object {"<category>/<sequence>": "<summary>"}'
EXPECTED_CAPTIONS = 'a JSON object {"<category>/<sequence>": {"<track_id>": "<caption>"}}'
EXPECTED_RELATIONS = 'a JSON object {"<category>/<sequence>": {"<src>-<dst>": ["<synset>", ...]}}'
PAIR = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")
EDGE_TAG = re.compile(rb"<(?:[\w.-]+:)?edge[\s/>]")


@dataclass
class Semantics:
    """What one sequence says about its tracks, from its own files or the combined JSONs."""

    summary: str | None = None
    captions: dict[int, tuple[str | None, str]] = field(default_factory=dict)  # id -> (name, caption)
    interactions: set[tuple[int, int, str]] = field(default_factory=set)


# --- discovery -------------------------------------------------------------------------------------


def is_sequence(folder: Path) -> bool:
    return (folder / "gt" / "gt.txt").is_file() or any((folder / f).is_file() for f in SEMANTIC_FILES)


def find_sequences(root: Path) -> list[Path]:
    """BenSMOT sequence folders under ``root`` (itself, or up to three levels down), sorted by path."""
    if root.is_file():
        root = root.parent
    if is_sequence(root):
        return [root]
    found: list[Path] = []
    level = [root]
    for _ in range(MAX_DEPTH):
        children = [child for folder in level for child in _subfolders(folder)]
        found += [c for c in children if is_sequence(c)]
        level = [c for c in children if not is_sequence(c)]
    return sorted(found)


def _subfolders(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.is_dir() and e.name not in ("imgs", "img1", "gt"))


def dataset_root(path: Path) -> Path:
    """The folder holding the split folders (where images and the combined JSONs are found from)."""
    path = path.parent if path.is_file() else path
    if is_sequence(path):
        return path.parent.parent.parent if path.parent.parent.name in SPLITS else path.parent.parent
    if path.name in SPLITS:
        return path.parent
    if path.parent.name in SPLITS:
        return path.parent.parent
    return path


def _names(folder: Path) -> tuple[str, str]:
    """The sequence's split and ``<category>/<sequence>`` key from its place in the tree."""
    split = folder.parent.parent.name if folder.parent.parent.name in SPLITS else "train"
    return split, f"{folder.parent.name}/{folder.name}"


# --- the per-sequence files ------------------------------------------------------------------------


def read_summary(path: Path, problems: Problems) -> str | None:
    text = " ".join(line.strip() for _, line in decode_lines(path, problems) if line.strip())
    return text or None


def read_instance_captions(path: Path, problems: Problems) -> dict[int, tuple[str | None, str]]:
    """Track id -> (name, caption): the k-th non-blank line is track k."""
    captions: dict[int, tuple[str | None, str]] = {}
    lines_of: dict[str, int] = {}
    track = 0
    for number, text in decode_lines(path, problems):
        if not text.strip():
            continue
        track += 1
        name, colon, caption = text.partition(":")
        name = name.strip()
        if not colon or not name or " " in name:
            problems.report(
                InputError(path, number, "no '<name>:' at the start of the line", EXPECTED_CAPTION)
            )
            continue
        if name in lines_of:
            problem = f"instance {name!r} already named on line {lines_of[name]}"
            problems.report(InputError(path, number, problem, EXPECTED_CAPTION))
            continue
        lines_of[name] = number
        captions[track] = (name, caption.strip())
    return captions


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _data_values(element: ET.Element, keys: dict[str, str]) -> dict[str, str]:
    return {
        keys.get(d.get("key", ""), d.get("key", "")): (d.text or "").strip()
        for d in element
        if _local(d.tag) == "data"
    }


def normalise_synset(label: str) -> str:
    return label.strip().lstrip(". ").strip().lower()


def split_labels(value: Any) -> list[str] | None:
    """Synsets from a list or a comma-separated string; None when the value is neither."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return [label for label in (normalise_synset(v) for v in value) if label]


def read_graphml(path: Path, names: dict[str, int], problems: Problems) -> set[tuple[int, int, str]]:
    """``(source track, target track, synset)`` of every labelled edge."""
    data = path.read_bytes()
    if not data.removeprefix(BOM).strip():
        problems.report(InputError(path, 1, "empty file", EXPECTED_GRAPHML))
        return set()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        problem = f"malformed XML ({str(exc).split(':')[0]})"
        problems.report(InputError(path, exc.position[0], problem, EXPECTED_GRAPHML))
        return set()
    if _local(root.tag) != "graphml":
        problems.report(InputError(path, 1, f"the root element is <{_local(root.tag)}>", EXPECTED_GRAPHML))
        return set()
    keys = {k.get("id", ""): k.get("attr.name") or k.get("id", "") for k in root if _local(k.tag) == "key"}
    nodes: list[tuple[str, str]] = []
    edges: list[ET.Element] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "node":
            values = _data_values(element, keys)
            label = next((values[k] for k in NAME_KEYS if values.get(k)), None)
            nodes.append((element.get("id", ""), label or element.get("id", "")))
        elif tag == "edge":
            edges.append(element)
    if all(name in names for _, name in nodes):
        track_of = {node: names[name] for node, name in nodes}
    else:
        track_of = {node: k for k, (node, _) in enumerate(nodes, start=1)}
    lines = [data.count(b"\n", 0, m.start()) + 1 for m in EDGE_TAG.finditer(data)]
    found: set[tuple[int, int, str]] = set()
    for index, edge in enumerate(edges):
        line = lines[index] if index < len(lines) else None
        ends = [edge.get("source", ""), edge.get("target", "")]
        unknown = [end for end in ends if end not in track_of]
        if unknown:
            problems.report(
                InputError(path, line, f"edge end {unknown[0]!r} is not a node", EXPECTED_GRAPHML)
            )
            continue
        values = _data_values(edge, keys)
        value = next((values[k] for k in LABEL_KEYS if values.get(k)), None)
        value = value or next((v for v in values.values() if v), None)
        labels = split_labels(value) if value else []
        if not labels:
            problems.report(InputError(path, line, "edge without an interaction label", EXPECTED_GRAPHML))
            continue
        found.update((track_of[ends[0]], track_of[ends[1]], label) for label in labels)
    return found


# --- the combined JSON files -----------------------------------------------------------------------


@dataclass(frozen=True)
class Combined:
    """One combined JSON file: its parsed object and raw bytes (to find the line of a key)."""

    path: Path
    data: bytes
    entries: dict[str, Any]

    def line_of(self, *keys: str) -> int:
        """Line of the nested key ``keys`` (searched in order), or 1 when it cannot be found."""
        offset = 0
        for key in keys:
            found = self.data.find(orjson.dumps(key), offset)
            if found < 0:
                break
            offset = found
        return self.data.count(b"\n", 0, offset) + 1


@lru_cache(maxsize=8)
def _load_combined(path: Path, stamp: tuple[int, int]) -> Combined | InputError:
    data = path.read_bytes().removeprefix(BOM)
    try:
        entries = parse_json(path, data, "a JSON object")
    except InputError as error:
        return error
    if not isinstance(entries, dict):
        return InputError(path, 1, f"a JSON {type(entries).__name__}, not an object", "a JSON object")
    return Combined(path, data, entries)


def combined_files(path: Path, problems: Problems) -> dict[str, Combined]:
    """The combined JSONs found in the dataset root or the given folder, by file name."""
    folders = [dataset_root(path), path.parent if path.is_file() else path]
    found: dict[str, Combined] = {}
    for name in COMBINED_FILES:
        candidate = next((f / name for f in folders if (f / name).is_file()), None)
        if candidate is None:
            continue
        stat = candidate.stat()
        loaded = _load_combined(candidate, (stat.st_mtime_ns, stat.st_size))
        if isinstance(loaded, InputError):
            if not any(error is loaded for error in problems.errors):  # once per file, not per sequence
                problems.report(loaded)
        else:
            found[name] = loaded
    return found


def _combined_summary(source: Combined, key: str, problems: Problems) -> str | None:
    value = source.entries[key]
    if isinstance(value, str):
        return value.strip() or None
    problem = f"the summary of {key!r} is {type(value).__name__}, not a string"
    problems.report(InputError(source.path, source.line_of(key), problem, EXPECTED_SUMMARY))
    return None


def _combined_captions(source: Combined, key: str, problems: Problems) -> dict[int, tuple[str | None, str]]:
    value = source.entries[key]
    if not isinstance(value, dict):
        problem = f"the captions of {key!r} are a {type(value).__name__}, not an object"
        problems.report(InputError(source.path, source.line_of(key), problem, EXPECTED_CAPTIONS))
        return {}
    captions: dict[int, tuple[str | None, str]] = {}
    for track, caption in value.items():
        if not track.strip().isdigit() or not isinstance(caption, str):
            problem = f"{track!r}: {caption!r} is not a track id and a caption"
            problems.report(InputError(source.path, source.line_of(key, track), problem, EXPECTED_CAPTIONS))
            continue
        captions[int(track)] = (None, caption.strip())
    return captions


def _combined_relations(
    source: Combined, key: str, tracks: set[int] | None, problems: Problems
) -> set[tuple[int, int, str]]:
    value = source.entries[key]
    if not isinstance(value, dict):
        problem = f"the relations of {key!r} are a {type(value).__name__}, not an object"
        problems.report(InputError(source.path, source.line_of(key), problem, EXPECTED_RELATIONS))
        return set()
    found: set[tuple[int, int, str]] = set()
    for pair, labels in value.items():
        match = PAIR.match(pair)
        synsets = split_labels(labels)
        if match is None or synsets is None:
            problem = f"{pair!r}: {labels!r} is not '<src>-<dst>': [\"<synset>\", ...]"
            problems.report(InputError(source.path, source.line_of(key, pair), problem, EXPECTED_RELATIONS))
            continue
        src, dst = int(match.group(1)), int(match.group(2))
        unknown = next((t for t in (src, dst) if tracks is not None and t not in tracks), None)
        if unknown is not None:
            problem = f"{pair!r}: track {unknown} is not in gt/gt.txt"
            problems.report(
                InputError(
                    source.path, source.line_of(key, pair), problem, "pairs of the sequence's track ids"
                )
            )
            continue
        found.update((src, dst, label) for label in synsets)
    return found


# --- the reader ------------------------------------------------------------------------------------


class BenSmotReader:
    name = "bensmot"
    videos = True  # its sequences are videos
    version = "1"
    description = "BenSMOT semantic MOT: tracks, per-track captions, interactions and clip summaries"

    def sniff(self, path: Path) -> bool:
        """A combined JSON, or a sequence with a caption or interaction file within three levels."""
        try:
            if path.is_file():
                return path.name in COMBINED_FILES or path.name in SEMANTIC_FILES
            if any((path / name).is_file() for name in COMBINED_FILES):
                return True
            level, budget = [path], SNIFF_FOLDERS
            for _ in range(MAX_DEPTH + 1):
                deeper: list[Path] = []
                for folder in level:
                    if any((folder / name).is_file() for name in SEMANTIC_FILES):
                        return True
                    budget -= 1
                    if budget <= 0:
                        return False
                    if not (folder / "gt" / "gt.txt").is_file():
                        deeper += _subfolders(folder)
                level = deeper
            return False
        except OSError:
            return False

    def units(self, path: Path, options: ReadOptions) -> list[Unit]:
        sequences = find_sequences(path)
        if not sequences:
            raise OmniptError(f"{path}: no BenSMOT sequence found (a folder with gt/gt.txt and captions)")
        return [
            Unit(s, sum(file_size(s / f) for f in ("gt/gt.txt", *SEMANTIC_FILES)), "/".join(s.parts[-2:]))
            for s in sequences
        ]

    def image_roots(self, path: Path, options: ReadOptions) -> dict[str, str]:
        return {options.dataset or DATASET: str(dataset_root(path).resolve())}

    def read_unit(self, root: Path, unit: Unit, options: ReadOptions) -> Iterator[Batch]:
        folder = unit.path
        problems = options.problems
        dataset = options.dataset or DATASET
        inferred_split, key = _names(folder)
        split = options.split or inferred_split
        seq_uid = sequence_uid(dataset, split, key)
        base = dataset_root(root)

        gt = folder / "gt" / "gt.txt"
        rows = parse_mot_file(gt, None, problems) if gt.is_file() else None
        image_folder = folder / "imgs"
        images = list_images(image_folder) if image_folder.is_dir() else None
        if images is not None and rows is not None:
            rows = self._keep_imaged(gt, rows, images, image_folder, problems)
        if images:
            indices = sorted(images)
            width, height = image_size(image_folder / images[indices[0]])
        else:
            last = int(rows["frame"].max() or 0) if rows is not None and rows.height else 0
            indices, width, height = list(range(1, last + 1)), None, None
        rel_dir = image_folder.relative_to(base).as_posix() if folder.is_relative_to(base) else "imgs"
        names = [images[i] if images else f"{i:03d}.jpg" for i in indices]
        frames = pl.DataFrame(
            {
                "frame_uid": [frame_uid(seq_uid, i) for i in indices],
                "frame_index": pl.Series(indices, dtype=pl.Int32),
                "image_path": [f"{rel_dir}/{n}" for n in names],
            }
        ).with_columns(
            sequence_uid=pl.lit(seq_uid),
            dataset=pl.lit(dataset),
            split=pl.lit(split),
            sequence=pl.lit(key),
            width=pl.lit(width, pl.Int32),
            height=pl.lit(height, pl.Int32),
        )
        sequence = pl.DataFrame(
            {
                "sequence_uid": [seq_uid],
                "dataset": [dataset],
                "split": [split],
                "sequence": [key],
                "length": pl.Series([max(indices, default=0)], dtype=pl.Int32),
                "width": pl.Series([width], dtype=pl.Int32),
                "height": pl.Series([height], dtype=pl.Int32),
                "image_dir": [rel_dir],
            }
        )
        batch: Batch = {"sequences": sequence, "frames": frames}
        if rows is not None and rows.height:
            batch["boxes"] = mot_boxes(
                rows, seq_uid=seq_uid, source=SOURCE_GT, layout_columns=rows.width - 1, is_gt=True
            )
        tracks = set(rows["id"].cast(pl.Int64).to_list()) if rows is not None else None
        semantics = self._semantics(folder, key, combined_files(root, problems), tracks, problems)
        batch["semantics"] = semantic_rows(seq_uid, semantics)
        yield batch

    @staticmethod
    def _keep_imaged(
        gt: Path, rows: pl.DataFrame, images: dict[int, str], folder: Path, problems: Problems
    ) -> pl.DataFrame:
        """Drop the rows of frames that have no image, listing them in the manifest's problems.

        The authors' converter (SMOTer ``tools/convert_bensmot2coco.py``) reads only the frames that
        have an image and passes over the other rows; so does this reader, without stopping.
        """
        missing = rows.filter(~pl.col("frame").cast(pl.Int64).is_in(list(images)))
        for frame, line in missing.select(pl.col("frame").cast(pl.Int64), "line").iter_rows():
            problems.errors.append(
                InputError(gt, line, f"frame {frame} has no image in {folder}", "an image per frame")
            )
        return rows.filter(pl.col("frame").cast(pl.Int64).is_in(list(images)))

    @staticmethod
    def _semantics(
        folder: Path, key: str, combined: dict[str, Combined], tracks: set[int] | None, problems: Problems
    ) -> Semantics:
        """The sequence's own files first; the combined JSONs for what they lack."""

        def entry(name: str) -> Combined | None:
            source = combined.get(name)
            return source if source is not None and key in source.entries else None

        found = Semantics()
        summary, captions, graph = (folder / name for name in SEMANTIC_FILES)
        if summary.is_file():
            found.summary = read_summary(summary, problems)
        elif source := entry("video_summary.json"):
            found.summary = _combined_summary(source, key, problems)
        if captions.is_file():
            found.captions = read_instance_captions(captions, problems)
        elif source := entry("instance_caption.json"):
            found.captions = _combined_captions(source, key, problems)
        if graph.is_file():
            names = {name: track for track, (name, _) in found.captions.items() if name}
            found.interactions = read_graphml(graph, names, problems)
        elif source := entry("relation.json"):
            found.interactions = _combined_relations(source, key, tracks, problems)
        return found


def semantic_rows(seq_uid: str, semantics: Semantics) -> pl.DataFrame:
    """``semantics`` rows: the summary, one caption per track, one row per (source, target, synset)."""
    rows: list[dict[str, Any]] = []
    if semantics.summary:
        rows.append({"semantic_uid": f"{seq_uid}/summary", "kind": "summary", "text": semantics.summary})
    for track, (name, caption) in sorted(semantics.captions.items()):
        rows.append(
            {
                "semantic_uid": f"{seq_uid}/track_caption/{track}",
                "kind": "track_caption",
                "track_id": track,
                "name": name,
                "text": caption,
            }
        )
    for src, dst, label in sorted(semantics.interactions):
        rows.append(
            {
                "semantic_uid": f"{seq_uid}/interaction/{src}-{dst}/{label}",
                "kind": "interaction",
                "track_id": src,
                "other_track_id": dst,
                "name": label,
            }
        )
    schema = {
        "semantic_uid": pl.String,
        "kind": pl.String,
        "track_id": pl.Int64,
        "other_track_id": pl.Int64,
        "name": pl.String,
        "text": pl.String,
    }
    frame = pl.DataFrame(rows, schema=schema)
    return frame.with_columns(sequence_uid=pl.lit(seq_uid), source=pl.lit(SOURCE_GT))


READER = BenSmotReader()
