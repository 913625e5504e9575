"""Box checks: geometry (outside the image, zero area, absurd aspect), duplicates, class and size mix.

The pairwise checks (two boxes of one frame; one frame and the next) run with NumPy over one frame at a
time, on batches of sequences read lazily, so memory holds one batch, never the store.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from omnipt_data.audit.base import (
    STORE,
    Check,
    StoreContext,
    empty_findings,
    link_columns,
)
from omnipt_data.progress import progress_bar

# A pedestrian box is about 0.4 times as wide as it is tall; sitting people and cyclists reach 1-2, cars
# (Refer-KITTI) 3. Outside [0.1, 5] no object of these datasets fits: the box is a typo.
MIN_ASPECT = 0.1
MAX_ASPECT = 5.0
DUPLICATE_IOU = 0.95
# A swap: each of two tracks' boxes continues the other's previous box (IoU >= 0.5) and not its own
# (IoU < 0.5). People who cross closely and quickly can look alike for a frame; they do not meet both.
SWAP_IOU = 0.5
HEIGHT_BINS = (0, 16, 32, 64, 128, 256, 512)
ASPECT_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 5.0)


def _fmt(column: str) -> pl.Expr:
    """A coordinate as short text (integers without ``.0``)."""
    value = pl.col(column)
    return (
        pl.when(value == value.round(0))
        .then(value.cast(pl.Int64).cast(pl.String))
        .otherwise(value.round(2).cast(pl.String))
    )


def box_text() -> pl.Expr:
    return pl.format("({}, {}, {}, {})", _fmt("x1"), _fmt("y1"), _fmt("x2"), _fmt("y2"))


def inside_image() -> pl.Expr:
    """The box overlaps the image (true when the image size is unknown)."""
    return pl.col("width").is_null() | (
        (pl.col("x2") > 0)
        & (pl.col("y2") > 0)
        & (pl.col("x1") < pl.col("width"))
        & (pl.col("y1") < pl.col("height"))
    )


def sane_aspect() -> pl.Expr:
    ratio = pl.col("w") / pl.col("h")
    return ratio.is_between(MIN_ASPECT, MAX_ASPECT)


def positive_area() -> pl.Expr:
    return (pl.col("w") > 0) & (pl.col("h") > 0)


def box_outside_image(ctx: StoreContext) -> pl.DataFrame:
    found = (
        ctx.boxes()
        .filter(pl.col("width").is_not_null() & ~inside_image())
        .sort("sequence", "frame_index", "box_uid")
        .with_columns(
            detail=pl.format(
                "box {} lies wholly outside the {}x{} image", box_text(), pl.col("width"), pl.col("height")
            )
        )
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index"])


def box_partly_outside_image(ctx: StoreContext) -> pl.DataFrame:
    past = (
        (pl.col("x1") < 0)
        | (pl.col("y1") < 0)
        | (pl.col("x2") > pl.col("width"))
        | (pl.col("y2") > pl.col("height"))
    )
    found = (
        ctx.boxes()
        .filter(pl.col("width").is_not_null() & inside_image() & past)
        .sort("sequence", "frame_index", "box_uid")
        .with_columns(
            detail=pl.format("box {} crosses the border of the {}x{} image", box_text(), "width", "height")
        )
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index"])


def zero_area_box(ctx: StoreContext) -> pl.DataFrame:
    found = (
        ctx.boxes()
        .filter(~positive_area())
        .sort("sequence", "frame_index", "box_uid")
        .with_columns(detail=pl.format("box {} has width {} and height {}", box_text(), _fmt("w"), _fmt("h")))
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index"])


def absurd_aspect_ratio(ctx: StoreContext) -> pl.DataFrame:
    # Ignore regions (crowds, masks) take any shape; only boxes of objects are held to a body's shape.
    found = (
        ctx.boxes()
        .filter(positive_area() & ~pl.col("ignore").fill_null(False) & ~sane_aspect())
        .sort("sequence", "frame_index", "box_uid")
        .with_columns(aspect=(pl.col("w") / pl.col("h")).round(3))
        .with_columns(
            detail=pl.format(
                "box {} has width/height {} (expected {} to {})",
                box_text(),
                pl.col("aspect"),
                pl.lit(MIN_ASPECT),
                pl.lit(MAX_ASPECT),
            )
        )
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index", "aspect"])


def duplicate_frame_track(ctx: StoreContext) -> pl.DataFrame:
    found = (
        ctx.boxes()
        .filter(pl.col("track_id").is_not_null())
        .group_by("sequence", "frame_uid", "frame_index", "track_id", "image")
        .agg(pl.col("box_uid").sort().alias("box_uids"))
        .filter(pl.col("box_uids").list.len() > 1)
        .sort("sequence", "frame_index", "track_id")
        .with_columns(
            box_uid=pl.col("box_uids").list.first(),
            detail=pl.format(
                "track {} has {} boxes in this frame: {}",
                "track_id",
                pl.col("box_uids").list.len(),
                pl.col("box_uids").list.join(", "),
            ),
        )
        .collect()
    )
    return link_columns(found, ["track_id", "frame_index", "box_uids"])


PAIR_COLUMNS = (
    "sequence",
    "frame_uid",
    "frame_index",
    "box_uid",
    "track_id",
    "image",
    "x1",
    "y1",
    "x2",
    "y2",
)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of corner boxes ``a`` (N, 4) against ``b`` (M, 4)."""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def motion_boxes(ctx: StoreContext) -> pl.LazyFrame:
    """Tracked boxes fit for motion checks: positive area, on the image, a sane shape, one per
    (frame, track). Boxes that fail are reported by their own checks and would only echo there."""
    boxes = ctx.boxes().filter(pl.col("track_id").is_not_null())
    doubled = boxes.group_by("frame_uid", "track_id").agg(pl.len().alias("n")).filter(pl.col("n") > 1)
    return boxes.filter(positive_area() & inside_image() & sane_aspect()).join(
        doubled.select("frame_uid", "track_id"), on=["frame_uid", "track_id"], how="anti"
    )


def _frame_groups(frame: pl.DataFrame) -> list[tuple[int, int]]:
    """(start, stop) row ranges of each (sequence, frame) in a frame sorted by them."""
    if frame.height == 0:
        return []
    key = frame.select(pl.concat_str("sequence", pl.col("frame_index").cast(pl.String), separator="#"))
    change = key.to_series().ne(key.to_series().shift(1)).fill_null(True).to_numpy()
    starts = np.flatnonzero(change)
    stops = np.append(starts[1:], frame.height)
    return list(zip(starts.tolist(), stops.tolist(), strict=True))


def frame_pairs(ctx: StoreContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Duplicate boxes (IoU > 0.95 in one frame) and identity swaps (consecutive frames), in one pass."""
    return ctx.cached("pairwise", lambda: _pairwise(ctx))


def _pairwise(ctx: StoreContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    duplicates: list[dict] = []
    swaps: list[dict] = []
    batches = list(ctx.sequence_batches())
    with progress_bar("audit: box pairs", total=len(batches), enabled=ctx.show_progress) as advance:
        for batch in batches:
            rows = ctx.boxes().filter(pl.col("sequence").is_in(batch)).collect()
            doubled = (
                rows.filter(pl.col("track_id").is_not_null())
                .group_by("frame_uid", "track_id")
                .agg(pl.len().alias("n"))
                .filter(pl.col("n") > 1)
                .select("frame_uid", "track_id", doubled=pl.lit(True))
            )
            rows = (
                rows.join(doubled, on=["frame_uid", "track_id"], how="left")
                .filter(positive_area())
                .select(
                    *PAIR_COLUMNS,
                    motion=pl.col("track_id").is_not_null()
                    & inside_image()
                    & sane_aspect()
                    & pl.col("doubled").is_null(),
                )
                .sort("sequence", "frame_index", "box_uid")
            )
            _scan_frames(rows, duplicates, swaps)
            advance(1)
    duplicate_frame = pl.DataFrame(duplicates, schema=_DUPLICATE_SCHEMA, orient="row")
    swap_frame = pl.DataFrame(swaps, schema=_SWAP_SCHEMA, orient="row")
    return duplicate_frame, swap_frame


_DUPLICATE_SCHEMA = {
    "sequence": pl.String,
    "frame_uid": pl.String,
    "frame_index": pl.Int32,
    "box_uid": pl.String,
    "other_box_uid": pl.String,
    "track_id": pl.Int64,
    "other_track_id": pl.Int64,
    "image": pl.String,
    "iou": pl.Float64,
}
_SWAP_SCHEMA = {
    "sequence": pl.String,
    "frame_uid": pl.String,
    "frame_index": pl.Int32,
    "box_uid": pl.String,
    "track_id": pl.Int64,
    "other_track_id": pl.Int64,
    "image": pl.String,
    "iou_own": pl.Float64,
    "iou_swapped": pl.Float64,
}


def _scan_frames(rows: pl.DataFrame, duplicates: list[dict], swaps: list[dict]) -> None:
    corners = rows.select("x1", "y1", "x2", "y2").to_numpy().astype(np.float64)
    tracks = rows["track_id"].fill_null(-1).to_numpy()
    motion = rows["motion"].to_numpy()
    sequences = rows["sequence"].to_list()
    frame_uids = rows["frame_uid"].to_list()
    frame_indices = rows["frame_index"].to_list()
    box_uids = rows["box_uid"].to_list()
    images = rows["image"].to_list()
    previous: tuple[str, int, np.ndarray] | None = None  # (sequence, frame index, motion rows)
    for start, stop in _frame_groups(rows):
        here = np.arange(start, stop)
        if len(here) > 1:
            matrix = np.triu(_iou_matrix(corners[here], corners[here]), k=1)
            for i, j in zip(*np.nonzero(matrix > DUPLICATE_IOU), strict=True):
                a, b = here[i], here[j]
                duplicates.append(
                    {
                        "sequence": sequences[a],
                        "frame_uid": frame_uids[a],
                        "frame_index": frame_indices[a],
                        "box_uid": box_uids[a],
                        "other_box_uid": box_uids[b],
                        "track_id": None if tracks[a] < 0 else int(tracks[a]),
                        "other_track_id": None if tracks[b] < 0 else int(tracks[b]),
                        "image": images[a],
                        "iou": round(float(matrix[i, j]), 4),
                    }
                )
        current = here[motion[here]]
        sequence, index = sequences[start], frame_indices[start]
        if previous is not None and previous[0] == sequence and previous[1] == index - 1 and len(current) > 1:
            _find_swaps(
                current,
                previous[2],
                corners,
                tracks,
                swaps,
                sequences,
                frame_uids,
                frame_indices,
                box_uids,
                images,
            )
        previous = (sequence, index, current)


def _find_swaps(
    current: np.ndarray,
    before: np.ndarray,
    corners: np.ndarray,
    tracks: np.ndarray,
    swaps: list[dict],
    sequences: list[str],
    frame_uids: list[str],
    frame_indices: list[int],
    box_uids: list[str],
    images: list[str],
) -> None:
    if len(before) < 2:
        return
    matrix = _iou_matrix(corners[current], corners[before])
    before_tracks = tracks[before]
    column_of = {int(t): k for k, t in enumerate(before_tracks)}
    best: dict[int, tuple[int, float, float]] = {}  # track -> (other track, swapped IoU, own IoU)
    for i, row in enumerate(current):
        track = int(tracks[row])
        own_column = column_of.get(track)
        if own_column is None:
            continue
        others = matrix[i].copy()
        others[own_column] = -1.0
        j = int(np.argmax(others))
        own = float(matrix[i, own_column])
        if others[j] >= SWAP_IOU > own:
            best[track] = (int(before_tracks[j]), float(others[j]), own)
    for track, (other, swapped, own) in sorted(best.items()):
        if other > track and best.get(other, (None,))[0] == track:
            row = current[[int(tracks[r]) for r in current].index(track)]
            swaps.append(
                {
                    "sequence": sequences[row],
                    "frame_uid": frame_uids[row],
                    "frame_index": frame_indices[row],
                    "box_uid": box_uids[row],
                    "track_id": track,
                    "other_track_id": other,
                    "image": images[row],
                    "iou_own": round(own, 4),
                    "iou_swapped": round(swapped, 4),
                }
            )


def duplicate_box(ctx: StoreContext) -> pl.DataFrame:
    duplicates, _ = frame_pairs(ctx)
    if duplicates.height == 0:
        return empty_findings("sequence", "frame_uid", "box_uid", "image")
    found = duplicates.with_columns(
        detail=pl.format(
            "boxes {} and {} overlap with IoU {} (tracks {} and {})",
            "box_uid",
            "other_box_uid",
            "iou",
            pl.col("track_id").cast(pl.String).fill_null("-"),
            pl.col("other_track_id").cast(pl.String).fill_null("-"),
        )
    )
    return link_columns(found, ["other_box_uid", "track_id", "other_track_id", "frame_index", "iou"])


def class_distribution(ctx: StoreContext) -> pl.DataFrame:
    found = (
        ctx.boxes()
        .group_by(pl.col("category").fill_null("(none)"))
        .agg(pl.len().alias("boxes"), pl.col("ignore").fill_null(False).sum().alias("ignored"))
        .with_columns(share=(pl.col("boxes") / pl.col("boxes").sum()).round(4))
        .sort("boxes", "category", descending=[True, False])
        .with_columns(detail=pl.format("{}: {} boxes ({} ignore regions)", "category", "boxes", "ignored"))
        .collect()
    )
    return found


def _binned(values: pl.Expr, bins: tuple[float, ...], name: str) -> list[pl.Expr]:
    labels = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(bins)] + [f">={bins[-1]:g}"]
    lows = [*bins]
    index = pl.sum_horizontal([(values >= edge).cast(pl.Int32) for edge in bins[1:]])
    return [
        index.replace_strict(dict(enumerate(labels)), return_dtype=pl.String).alias(name),
        index.replace_strict(dict(enumerate(lows)), return_dtype=pl.Float64).alias("low"),
    ]


def _distribution(
    ctx: StoreContext, value: pl.Expr, bins: tuple[float, ...], name: str, what: str
) -> pl.DataFrame:
    return (
        ctx.boxes()
        .filter(positive_area())
        .select(_binned(value, bins, name))
        .group_by(name, "low")
        .agg(pl.len().alias("boxes"))
        .sort("low")
        .with_columns(detail=pl.format("{} {}: {} boxes", pl.lit(what), pl.col(name), "boxes"))
        .collect()
    )


def box_size_distribution(ctx: StoreContext) -> pl.DataFrame:
    return _distribution(ctx, pl.col("h"), HEIGHT_BINS, "height_px", "height (pixels)")


def aspect_ratio_distribution(ctx: StoreContext) -> pl.DataFrame:
    return _distribution(ctx, pl.col("w") / pl.col("h"), ASPECT_BINS, "aspect", "width/height")


CHECKS = [
    Check(
        "box_outside_image",
        "error",
        STORE,
        "Boxes that do not overlap their image at all: nobody can be seen there.",
        box_outside_image,
    ),
    Check(
        "zero_area_box",
        "error",
        STORE,
        "Boxes of zero (or negative) width or height.",
        zero_area_box,
    ),
    Check(
        "absurd_aspect_ratio",
        "warning",
        STORE,
        f"Boxes (not ignore regions) with width/height outside [{MIN_ASPECT}, {MAX_ASPECT}]: no person "
        "or vehicle has that shape.",
        absurd_aspect_ratio,
    ),
    Check(
        "duplicate_box",
        "warning",
        STORE,
        f"Two boxes of one frame with IoU above {DUPLICATE_IOU}: one object annotated twice.",
        duplicate_box,
    ),
    Check(
        "duplicate_frame_track",
        "error",
        STORE,
        "A track with more than one box in a frame.",
        duplicate_frame_track,
    ),
    Check(
        "box_partly_outside_image",
        "info",
        STORE,
        "Boxes that cross the image border (people entering or leaving; MOTChallenge keeps them unclipped).",
        box_partly_outside_image,
    ),
    Check("class_distribution", "info", STORE, "Boxes per category.", class_distribution),
    Check("box_size_distribution", "info", STORE, "Boxes per height (pixels).", box_size_distribution),
    Check(
        "aspect_ratio_distribution",
        "info",
        STORE,
        "Boxes per width/height ratio.",
        aspect_ratio_distribution,
    ),
]
