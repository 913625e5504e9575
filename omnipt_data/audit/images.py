"""Image checks: missing or unreadable images, and near-duplicate images across the train/held-out line.

Each image is reduced to a 16 x 16 grey thumbnail (area averaging, decoded at reduced scale where the
format allows). Its average hash (aHash: one bit per thumbnail pixel, set when brighter than the
thumbnail's mean, 256 bits) shortlists candidate pairs by Hamming distance; a candidate is a
near-duplicate when its thumbnails differ by at most :data:`MAX_MEAN_DIFFERENCE` grey levels on average
and :data:`MAX_PIXEL_DIFFERENCE` anywhere. The second test matters: frames of one static camera, or
renderings of a plain scene, have nearly equal hashes without being copies. A re-encoded or resized copy
stays within a level or two everywhere; another moment of the same place, where someone has moved, differs
by tens of levels where they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image, UnidentifiedImageError

from omnipt_data.audit.base import STORE, Check, StoreContext, empty_findings, link_columns, split_group
from omnipt_data.progress import progress_bar

THUMB = 16
MAX_HASH_DISTANCE = 32  # of 256 bits: a shortlist, generous on purpose
MAX_MEAN_DIFFERENCE = 1.0  # grey levels (0-255), mean absolute difference of the thumbnails
MAX_PIXEL_DIFFERENCE = 6.0  # grey levels, largest absolute difference of one thumbnail pixel
CHUNK = 1024  # held-out images per block of comparisons (against 4 * CHUNK training images)


def thumbnail(path: Path) -> np.ndarray:
    """The 16 x 16 grey thumbnail of an image (float32, 0-255)."""
    with Image.open(path) as image:
        image.draft("L", (THUMB * 4, THUMB * 4))  # JPEG decodes at a reduced scale: much faster
        grey = image.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)
        return np.asarray(grey, dtype=np.float32)


def average_hash(thumb: np.ndarray) -> np.ndarray:
    """aHash bits of a thumbnail, packed into 32 bytes."""
    return np.packbits((thumb > thumb.mean()).ravel())


def hash_hex(bits: np.ndarray) -> str:
    return bits.tobytes().hex()


@dataclass
class ImageTable:
    """The images of a store, with thumbnails of those that could leak (other rows hold zeros)."""

    units: pl.DataFrame  # uid, sequence, split, side, image, exists
    thumbs: np.ndarray  # (N, 16, 16), valid for the rows of `units` with `readable`
    readable: np.ndarray  # (N,) bool
    errors: dict[int, str]  # row -> why the image could not be read


def _units(ctx: StoreContext) -> pl.DataFrame:
    frames = ctx.frames().select(
        pl.col("frame_uid").alias("uid"), pl.col("sequence_uid").alias("sequence"), "split", "image"
    )
    crops = ctx.with_image(ctx.scan("identities")).select(
        pl.col("image_uid").alias("uid"), pl.col("person_uid").alias("sequence"), "split", "image"
    )
    return (
        pl.concat([frames, crops])
        .filter(pl.col("image").is_not_null())
        .with_columns(side=split_group())
        .sort("uid")
        .collect()
    )


def image_table(ctx: StoreContext) -> ImageTable:
    return ctx.cached("images", lambda: _image_table(ctx))


def _image_table(ctx: StoreContext) -> ImageTable:
    units = _units(ctx)
    paths = units["image"].to_list()
    exists = np.array([Path(p).is_file() for p in paths], dtype=bool)
    # Only images on either side of a train/held-out line can leak; the rest need no thumbnail.
    sides = units["side"].to_list()
    both = {"train", "held_out"} <= set(sides)
    wanted = [k for k, (ok, side) in enumerate(zip(exists, sides, strict=True)) if ok and both and side]
    thumbs = np.zeros((len(paths), THUMB, THUMB), dtype=np.float32)
    readable = np.zeros(len(paths), dtype=bool)
    errors: dict[int, str] = {}
    with progress_bar("audit: image hashes", total=len(wanted), enabled=ctx.show_progress) as advance:
        for k in wanted:
            try:
                thumbs[k] = thumbnail(Path(paths[k]))
                readable[k] = True
            except (OSError, UnidentifiedImageError, ValueError) as error:
                errors[k] = f"{type(error).__name__}: {error}"
            advance(1)
    return ImageTable(units.with_columns(exists=pl.Series(exists)), thumbs, readable, errors)


def missing_image(ctx: StoreContext) -> pl.DataFrame:
    table = image_table(ctx)
    found = (
        table.units.filter(~pl.col("exists"))
        .rename({"uid": "frame_uid"})
        .with_columns(detail=pl.format("image not found: {}", "image"))
    )
    return link_columns(found, [])


def unreadable_image(ctx: StoreContext) -> pl.DataFrame:
    table = image_table(ctx)
    if not table.errors:
        return empty_findings("sequence", "frame_uid", "image")
    rows = sorted(table.errors)
    found = (
        table.units[rows]
        .rename({"uid": "frame_uid"})
        .with_columns(pl.Series("error", [table.errors[k] for k in rows]))
        .with_columns(detail=pl.format("image cannot be decoded ({})", "error"))
    )
    return link_columns(found, ["error"])


def near_duplicate_image(ctx: StoreContext) -> pl.DataFrame:
    table = image_table(ctx)
    sides = table.units["side"].to_numpy()
    train = np.flatnonzero((sides == "train") & table.readable)
    held_out = np.flatnonzero((sides == "held_out") & table.readable)
    if len(train) == 0 or len(held_out) == 0:
        return empty_findings("sequence", "frame_uid", "image")
    hashes = np.stack([average_hash(t) for t in table.thumbs])
    train_bits = np.unpackbits(hashes[train], axis=1).astype(np.float32)
    train_flat = table.thumbs[train].reshape(len(train), -1)
    rows = []
    for start in range(0, len(held_out), CHUNK):
        chunk = held_out[start : start + CHUNK]
        bits = np.unpackbits(hashes[chunk], axis=1).astype(np.float32)
        for train_start in range(0, len(train), 4 * CHUNK):
            block = slice(train_start, train_start + 4 * CHUNK)
            # Hamming distance of 0/1 vectors: |a| + |b| - 2 a.b, one matrix product per block
            hamming = (
                bits.sum(1)[:, None] + train_bits[block].sum(1)[None, :] - 2 * bits @ train_bits[block].T
            )
            for i, j in zip(*np.nonzero(hamming <= MAX_HASH_DISTANCE), strict=True):
                t = train_start + j
                difference = np.abs(table.thumbs[chunk[i]].ravel() - train_flat[t])
                mean, largest = float(difference.mean()), float(difference.max())
                if mean <= MAX_MEAN_DIFFERENCE and largest <= MAX_PIXEL_DIFFERENCE:
                    rows.append((int(chunk[i]), int(train[t]), int(hamming[i, j]), round(mean, 3), largest))
    if not rows:
        return empty_findings("sequence", "frame_uid", "image")
    pairs = pl.DataFrame(
        rows,
        schema={
            "row": pl.Int64,
            "train_row": pl.Int64,
            "hash_distance": pl.Int64,
            "mean_difference": pl.Float64,
            "max_difference": pl.Float64,
        },
        orient="row",
    )
    best = (
        pairs.sort("row", "mean_difference", "train_row")
        .group_by("row", maintain_order=True)
        .agg(pl.all().first(), pl.len().alias("train_matches"))
    )
    units = table.units.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    train_units = units.select(
        pl.col("row").alias("train_row"),
        pl.col("uid").alias("train_frame_uid"),
        pl.col("image").alias("train_image"),
        pl.col("split").alias("train_split"),
    )
    found = (
        best.join(units, on="row")
        .join(train_units, on="train_row")
        .rename({"uid": "frame_uid"})
        .with_columns(
            detail=pl.format(
                "{} image is a near-copy of {} image {} (grey levels differ by {} on average, {} at most; "
                "{} training match(es))",
                "split",
                "train_split",
                "train_frame_uid",
                "mean_difference",
                "max_difference",
                "train_matches",
            )
        )
        .sort("sequence", "frame_uid")
    )
    return link_columns(
        found,
        [
            "train_frame_uid",
            "train_image",
            "mean_difference",
            "max_difference",
            "hash_distance",
            "train_matches",
        ],
    )


CHECKS = [
    Check(
        "missing_image", "warning", STORE, "Frames or crops whose image file does not exist.", missing_image
    ),
    Check("unreadable_image", "error", STORE, "Image files that cannot be decoded.", unreadable_image),
    Check(
        "near_duplicate_image",
        "warning",
        STORE,
        "A held-out image that is a near-copy of a training image (perceptual hash, then thumbnails).",
        near_duplicate_image,
    ),
]
