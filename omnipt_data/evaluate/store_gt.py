"""Ground truth straight from a store: each sequence's (or view's) boxes as MOTChallenge gt rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from omnipt_data.errors import OmniptError
from omnipt_data.evaluate.mot import evaluate_sequences
from omnipt_data.evaluate.motchallenge import read_pred
from omnipt_data.evaluate.report import EvalResult
from omnipt_data.schema import view_sequence_name
from omnipt_data.store import Store


def store_gt_arrays(store: Path) -> dict[str, tuple[np.ndarray, int]]:
    """``{result name: (gt rows frame,id,x,y,w,h,flag,class,visibility, length)}``; MOT classes kept,
    other categories count as pedestrians (class 1), ignore regions get the flag 0."""
    s = Store.open(store)
    frames = s.read("frames").select("frame_uid", "sequence", "view", "frame_index")
    boxes = s.read("boxes").filter((pl.col("source") == "gt") & pl.col("track_id").is_not_null())
    rows = boxes.join(frames, on="frame_uid").select(
        "sequence",
        "view",
        pl.col("frame_index").cast(pl.Float64),
        pl.col("track_id").cast(pl.Float64),
        "x1",
        "y1",
        (pl.col("x2") - pl.col("x1")).alias("w"),
        (pl.col("y2") - pl.col("y1")).alias("h"),
        pl.when(pl.col("ignore")).then(0.0).otherwise(1.0).alias("flag"),
        pl.col("class_id").cast(pl.Float64).fill_null(1.0),
        pl.col("visibility").cast(pl.Float64).fill_null(1.0),
    )
    lengths = frames.group_by("sequence", "view").agg(pl.col("frame_index").max().alias("length"))
    out = {}
    for sequence, view, length in lengths.sort("sequence", "view").iter_rows():
        part = rows.filter((pl.col("sequence") == sequence) & (pl.col("view").eq_missing(view)))
        out[view_sequence_name(sequence, view)] = (part.drop("sequence", "view").to_numpy(), int(length))
    return out


def evaluate_truth_in_image(store: Path) -> EvalResult:
    """TrackEval's score of the store's own ground truth, each box cut at the image border, against that
    ground truth: the most a tracker reaches when it answers in image pixels, as every answer here does,
    while MOTChallenge ground truth keeps the whole box of a person the border cuts."""
    from omnipt_data.answers import Box, clip_box

    s = Store.open(store)
    sizes = (
        s.read("frames").group_by("sequence", "view").agg(pl.col("width").first(), pl.col("height").first())
    )
    size_of = {view_sequence_name(q, v): (w, h) for q, v, w, h in sizes.iter_rows()}
    sequences = {}
    for name, (gt, length) in store_gt_arrays(store).items():
        rows = []
        for frame, track, x, y, w, h, flag, *_ in gt:
            box = clip_box(Box(x, y, x + w, y + h), size_of[name])
            if flag == 1 and box.width > 0 and box.height > 0:
                rows.append((frame, track, box.x1, box.y1, box.width, box.height, 1.0))
        sequences[name] = (gt, np.array(rows, dtype=np.float64).reshape(-1, 7), length)
    return evaluate_sequences(sequences)


def evaluate_store(store: Path, pred: Path, *, protocol: str = "trackeval") -> EvalResult:
    """Score ``pred/<sequence>[_<view>].txt`` against the store's ground truth with TrackEval, or with
    the MOTChallenge devkit's rules (``protocol="devkit"``)."""
    if not Path(pred).is_dir():
        raise OmniptError(f"{pred}: expected a folder of <sequence>.txt results")
    sequences = {}
    for name, (gt, length) in store_gt_arrays(store).items():
        path = Path(pred) / f"{name}.txt"
        if not path.is_file():
            raise OmniptError(f"{path}: no results for sequence {name}")
        sequences[name] = (gt, read_pred(path).rows, length)
    if protocol == "devkit":
        from omnipt_data.evaluate.devkit import evaluate_devkit

        return evaluate_devkit({name: (g, p) for name, (g, p, _) in sequences.items()}, benchmark="MOT17")
    return evaluate_sequences(sequences)
