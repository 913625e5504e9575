"""The canonical store's tables: every table and column with its dtype.

A store is a directory holding one Parquet file per table plus ``manifest.json``. Tables are long (one
row per thing) and join on string uids that stay unique when stores are merged:

- ``sequences``: one row per sequence (a video, one camera view of a scene, or an image collection);
  ``video`` says which: true for frames in time order, false for an image collection, null unknown;
- ``frames``: one row per image (a video frame, a detection image); ``frame_index`` is 1-based;
- ``boxes``: one row per person box in a frame, with optional visible and head boxes;
- ``identities``: one row per person crop (ReID, person text), with captions and attributes;
- ``expressions`` / ``referents``: referring sentences and, per frame, the track ids they refer to;
- ``semantics``: track captions, attributes, pair interactions and clip summaries.

Coordinates are pixels of the original image, corners ``x1, y1, x2, y2`` (x2/y2 exclusive edges, so
``w = x2 - x1``). Null means "unknown" (image size of a bare ``gt.txt``, a detection-only box's track).
"""

from __future__ import annotations

import polars as pl

SCHEMA_VERSION = 1

# Where a box came from: ground truth, a detector/tracker file, a model, or a person's review.
SOURCE_GT = "gt"
SOURCE_DET = "det"
SOURCE_PREDICTION_PREFIX = "model:"
SOURCE_REVIEW_PREFIX = "review:"

ATTRIBUTE = pl.Struct({"name": pl.String, "value": pl.String})

TABLES: dict[str, dict[str, pl.DataType]] = {
    "sequences": {
        "sequence_uid": pl.String(),
        "dataset": pl.String(),
        "split": pl.String(),
        "sequence": pl.String(),
        "view": pl.String(),
        "fps": pl.Float64(),
        "length": pl.Int32(),
        "width": pl.Int32(),
        "height": pl.Int32(),
        "image_dir": pl.String(),
        "video": pl.Boolean(),
    },
    "frames": {
        "frame_uid": pl.String(),
        "sequence_uid": pl.String(),
        "dataset": pl.String(),
        "split": pl.String(),
        "sequence": pl.String(),
        "view": pl.String(),
        "frame_index": pl.Int32(),
        "image_path": pl.String(),
        "width": pl.Int32(),
        "height": pl.Int32(),
        "timestamp": pl.Float64(),
    },
    "boxes": {
        "box_uid": pl.String(),
        "frame_uid": pl.String(),
        "track_id": pl.Int64(),
        "category": pl.String(),
        "class_id": pl.Int16(),
        "x1": pl.Float64(),
        "y1": pl.Float64(),
        "x2": pl.Float64(),
        "y2": pl.Float64(),
        "vis_x1": pl.Float64(),
        "vis_y1": pl.Float64(),
        "vis_x2": pl.Float64(),
        "vis_y2": pl.Float64(),
        "head_x1": pl.Float64(),
        "head_y1": pl.Float64(),
        "head_x2": pl.Float64(),
        "head_y2": pl.Float64(),
        "visibility": pl.Float32(),
        "confidence": pl.Float32(),
        "ignore": pl.Boolean(),
        "source": pl.String(),
        "extra": pl.String(),
    },
    "identities": {
        "image_uid": pl.String(),
        "person_uid": pl.String(),
        "dataset": pl.String(),
        "split": pl.String(),
        "pid": pl.Int64(),
        "camera": pl.Int32(),
        "sequence": pl.String(),
        "frame_index": pl.Int32(),
        "image_path": pl.String(),
        "width": pl.Int32(),
        "height": pl.Int32(),
        "junk": pl.Boolean(),
        "distractor": pl.Boolean(),
        "captions": pl.List(pl.String()),
        "attributes": pl.List(ATTRIBUTE),
    },
    "expressions": {
        "expression_uid": pl.String(),
        "dataset": pl.String(),
        "split": pl.String(),
        "sequence": pl.String(),
        "sentence": pl.String(),
        "raw_sentence": pl.String(),
        "views": pl.List(pl.String()),
        "source_file": pl.String(),
    },
    "referents": {
        "expression_uid": pl.String(),
        "frame_uid": pl.String(),
        "track_id": pl.Int64(),
    },
    "semantics": {
        "semantic_uid": pl.String(),
        "sequence_uid": pl.String(),
        "kind": pl.String(),
        "track_id": pl.Int64(),
        "other_track_id": pl.Int64(),
        "name": pl.String(),
        "text": pl.String(),
        "source": pl.String(),
    },
}

# Each table's key: unique within a store, checked by `validate`.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "sequences": ("sequence_uid",),
    "frames": ("frame_uid",),
    "boxes": ("box_uid",),
    "identities": ("image_uid",),
    "expressions": ("expression_uid",),
    "referents": ("expression_uid", "frame_uid", "track_id"),
    "semantics": ("semantic_uid",),
}

SEMANTIC_KINDS = ("track_caption", "track_attribute", "interaction", "summary")


def schema(table: str) -> pl.Schema:
    """The polars schema of ``table``."""
    try:
        return pl.Schema(TABLES[table])
    except KeyError:
        raise KeyError(f"unknown table {table!r}; tables are {', '.join(TABLES)}") from None


def empty(table: str) -> pl.DataFrame:
    """An empty frame of ``table``'s schema."""
    return pl.DataFrame(schema=schema(table))


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Give ``df`` exactly ``table``'s columns, order and dtypes; absent columns become null.

    Raises ``ValueError`` on a column the table does not have, so a reader's typo is caught early.
    """
    target = schema(table)
    unknown = [c for c in df.columns if c not in target]
    if unknown:
        raise ValueError(f"table {table!r} has no column(s) {unknown}")
    return df.select(
        (pl.col(name).cast(dtype, strict=True) if name in df.columns else pl.lit(None, dtype)).alias(name)
        for name, dtype in target.items()
    )


def sequence_uid(dataset: str, split: str, sequence: str, view: str | None = None) -> str:
    """``dataset/split/sequence[/view]``: unique across stores of different datasets."""
    base = f"{dataset}/{split}/{sequence}"
    return f"{base}/{view}" if view else base


def view_sequence_name(sequence: str, view: str | None) -> str:
    """One view of a scene named as a sequence of its own (per-view tracking and results files)."""
    return f"{sequence}_{view}" if view else sequence


def frame_uid(seq_uid: str, frame_index: int) -> str:
    """A frame's uid: its sequence uid and 1-based index."""
    return f"{seq_uid}#{frame_index}"
