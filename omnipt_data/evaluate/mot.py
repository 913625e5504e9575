"""MOT evaluation with TrackEval: HOTA, CLEAR (MOTA, MOTP, IDSW, MT/PT/ML, Frag) and Identity (IDF1).

The numbers are TrackEval's own, to the last bit (tested against TrackEval reading the same files): the
per-frame data TrackEval's ``MotChallenge2DBox.get_preprocessed_seq_data`` hands its metrics (MOTChallenge
protocol below, IoU with TrackEval's arithmetic) is built here on whole arrays rather than frame by
frame; ``trackeval.metrics.CLEAR``, ``Identity`` and ``Count`` score it, and HOTA is TrackEval's
``eval_sequence`` with its loop over the alphas done on arrays; sequences are combined with the metrics'
``combine_sequences`` (detections pooled over sequences, not an average of per-sequence scores). TrackEval
is imported when scoring starts. ``protocol="devkit"`` scores CLEAR MOT and IDF1 with the MOTChallenge
MATLAB devkit's rules instead (:mod:`omnipt_data.evaluate.devkit`).

MOTChallenge preprocessing (TrackEval, benchmarks MOT16/MOT17/MOT20):

1. similarity is box IoU (``xywh``);
2. in every frame, predictions are matched to *all* ground-truth boxes (Hungarian on IoU >= 0.5); those
   matched to a distractor class (2 person_on_vehicle, 7 static_person, 8 distractor, 12 reflection; and
   6 non_mot_vehicle on MOT20) are removed;
3. ground truth keeps only class 1 (pedestrian) rows whose ``conf`` flag is not 0.

MOT15 has no class semantics: no prediction is removed and every ground-truth row whose flag is not 0 is
a pedestrian (TrackEval skips step 2 and the class test of step 3 for ``BENCHMARK='MOT15'``). A 10-column
ground truth (the MOT15 layout) therefore selects MOT15 unless a benchmark is given.

Reported values: ``HOTA``, ``DetA``, ``AssA``, ``DetRe``, ``DetPr``, ``AssRe``, ``AssPr``, ``LocA``,
``OWTA`` are the mean over the 19 alphas 0.05..0.95 (what TrackEval reports), the per-alpha arrays are
kept in :attr:`EvalResult.curves`; CLEAR uses IoU >= 0.5 (MOTA = 1 - (FN + FP + IDSW) / GT,
MOTP = mean IoU of matches, which is the MOTChallenge devkit's ``(1 - distance)`` convention); Identity
matches whole trajectories (IDF1 = 2 IDTP / (GT + predictions)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.evaluate.motchallenge import (
    DISTRACTORS,
    FramePairs,
    MotFile,
    check_frames,
    read_gt,
    read_pred,
    seq_length,
)
from omnipt_data.evaluate.report import COMBINED, EvalResult

BENCHMARKS = ("MOT15", "MOT16", "MOT17", "MOT20")
MOT_CLASS_IDS = {
    "pedestrian": 1,
    "person_on_vehicle": 2,
    "car": 3,
    "bicycle": 4,
    "motorbike": 5,
    "non_mot_vehicle": 6,
    "static_person": 7,
    "distractor": 8,
    "occluder": 9,
    "occluder_on_ground": 10,
    "occluder_full": 11,
    "reflection": 12,
    "crowd": 13,
}
MOT_KEY_METRICS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW", "CLR_FP", "CLR_FN", "MT", "ML")
# TrackEval's HOTA localisation thresholds (``HOTA().array_labels``), without importing TrackEval.
ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.arange(0.05, 0.99, 0.05))
MOT_PROTOCOLS = ("trackeval", "devkit")

SequenceArrays = tuple[np.ndarray, np.ndarray, int]


_EPS = float(np.finfo("float").eps)


def _box_iou_pairs(gt_boxes: np.ndarray, pred_boxes: np.ndarray) -> np.ndarray:
    """IoU of ``xywh`` boxes row by row, operation for operation as TrackEval's ``_calculate_box_ious``
    (so the values are the same to the last bit)."""
    g = gt_boxes.copy()
    p = pred_boxes.copy()
    g[:, 2] = g[:, 0] + g[:, 2]
    g[:, 3] = g[:, 1] + g[:, 3]
    p[:, 2] = p[:, 0] + p[:, 2]
    p[:, 3] = p[:, 1] + p[:, 3]
    width = np.maximum(np.minimum(g[:, 2], p[:, 2]) - np.maximum(g[:, 0], p[:, 0]), 0)
    height = np.maximum(np.minimum(g[:, 3], p[:, 3]) - np.maximum(g[:, 1], p[:, 1]), 0)
    intersection = width * height
    area1 = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    area2 = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    union = area1 + area2 - intersection
    intersection[(area1 <= 0 + _EPS) | (area2 <= 0 + _EPS) | (union <= 0 + _EPS)] = 0
    union[union <= 0 + _EPS] = 1
    return intersection / union


def _duplicate(frames: np.ndarray, ids: np.ndarray) -> tuple[int, int] | None:
    """The first (frame, id) that appears twice, if any."""
    keys = frames.astype(np.int64) * (1 << 32) + ids.astype(np.int64)
    unique, counts = np.unique(keys, return_counts=True)
    if len(counts) and counts.max() > 1:
        key = int(unique[np.argmax(counts > 1)])
        return key >> 32, key & 0xFFFFFFFF
    return None


def _preprocessed(name: str, gt: np.ndarray, pred: np.ndarray, length: int, benchmark: str) -> dict[str, Any]:
    """The dict TrackEval's ``MotChallenge2DBox.get_preprocessed_seq_data`` gives its metrics for files
    holding these rows (MOTChallenge protocol in the module docstring), built on whole arrays rather
    than frame by frame: same ids, same similarity blocks, same order."""
    from scipy.optimize import linear_sum_assignment

    for label, rows in (("Ground-truth has", gt), ("Tracker predicts", pred)):
        duplicate = _duplicate(rows[:, 0], rows[:, 1])
        if duplicate is not None:
            raise OmniptError(
                f"sequence {name}: {label} the same ID more than once in a single timestep "
                f"(frame {duplicate[0]}, id {duplicate[1]})"
            )
    gt = gt[np.argsort(gt[:, 0], kind="stable")]
    pred = pred[np.argsort(pred[:, 0], kind="stable")]
    gt_frames = gt[:, 0].astype(np.int64)
    pred_frames = pred[:, 0].astype(np.int64)
    pairs = FramePairs.of(gt_frames, pred_frames, length)
    gt_index, pred_index = pairs.gt_index, pairs.pred_index
    gt_bounds, pred_bounds, pair_bounds = pairs.gt_bounds, pairs.pred_bounds, pairs.pair_bounds
    similarity = _box_iou_pairs(gt[gt_index, 2:6], pred[pred_index, 2:6])

    keep_pred = np.ones(len(pred), dtype=bool)
    distractors = DISTRACTORS.get(benchmark)
    gt_classes = gt[:, 7].astype(np.int64)
    if distractors is not None:
        # Only frames holding a distractor can lose a prediction; each is matched as TrackEval does.
        frames_with = np.unique(gt_frames[np.isin(gt_classes, distractors)])
        for frame in frames_with.tolist():
            g0, g1 = gt_bounds[frame - 1], gt_bounds[frame]
            p0, p1 = pred_bounds[frame - 1], pred_bounds[frame]
            if p1 == p0:
                continue
            block = similarity[pair_bounds[frame - 1] : pair_bounds[frame]].reshape(g1 - g0, p1 - p0)
            scores = block.copy()
            scores[scores < 0.5 - _EPS] = 0
            rows, cols = linear_sum_assignment(-scores)
            matched = scores[rows, cols] > 0 + _EPS
            rows, cols = rows[matched], cols[matched]
            keep_pred[p0 + cols[np.isin(gt_classes[g0 + rows], distractors)]] = False
        keep_gt = (gt[:, 6].astype(np.int64) != 0) & (gt_classes == MOT_CLASS_IDS["pedestrian"])
    else:
        keep_gt = gt[:, 6].astype(np.int64) != 0

    keep_pair = keep_gt[gt_index] & keep_pred[pred_index]
    similarity = similarity[keep_pair]
    gt = gt[keep_gt]
    pred = pred[keep_pred]
    gt_frames, pred_frames = gt_frames[keep_gt], pred_frames[keep_pred]
    _, gt_ids = np.unique(gt[:, 1].astype(np.int64), return_inverse=True)
    _, pred_ids = np.unique(pred[:, 1].astype(np.int64), return_inverse=True)
    gt_bounds = np.searchsorted(gt_frames, np.arange(1, length + 2), side="left").tolist()
    pred_bounds = np.searchsorted(pred_frames, np.arange(1, length + 2), side="left").tolist()
    pair_bounds = np.concatenate([[0], np.cumsum(np.diff(gt_bounds) * np.diff(pred_bounds))]).tolist()
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for t in range(length):
        g0, g1, p0, p1 = gt_bounds[t], gt_bounds[t + 1], pred_bounds[t], pred_bounds[t + 1]
        data["gt_ids"].append(gt_ids[g0:g1])
        data["tracker_ids"].append(pred_ids[p0:p1])
        data["similarity_scores"].append(
            similarity[pair_bounds[t] : pair_bounds[t + 1]].reshape(g1 - g0, p1 - p0)
        )
    data.update(
        num_tracker_dets=len(pred),
        num_gt_dets=len(gt),
        num_tracker_ids=int(pred_ids.max()) + 1 if len(pred) else 0,
        num_gt_ids=int(gt_ids.max()) + 1 if len(gt) else 0,
        num_timesteps=length,
        seq=name,
    )
    return data


def _normalise_gt(gt: np.ndarray, name: str) -> np.ndarray:
    gt = np.asarray(gt, dtype=np.float64)
    if gt.size == 0:
        return np.zeros((0, 9))
    if gt.ndim != 2 or not 6 <= gt.shape[1] <= 9:
        raise OmniptError(f"sequence {name}: ground truth must be an (N, 6..9) array, got shape {gt.shape}")
    out = np.ones((len(gt), 9))
    out[:, : gt.shape[1]] = gt
    return out


def _normalise_pred(pred: np.ndarray, name: str) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    if pred.size == 0:
        return np.zeros((0, 7))
    if pred.ndim != 2 or pred.shape[1] < 6:
        raise OmniptError(f"sequence {name}: predictions must be an (N, 6+) array, got shape {pred.shape}")
    out = np.ones((len(pred), 7))
    out[:, : min(7, pred.shape[1])] = pred[:, :7]
    return out


def _check_arrays(name: str, gt: np.ndarray, pred: np.ndarray, length: int) -> None:
    for label, rows in (("ground truth", gt), ("predictions", pred)):
        if not len(rows):
            continue
        frames, ids = rows[:, 0], rows[:, 1]
        if not np.all(np.isfinite(rows[:, :6])):
            raise OmniptError(f"sequence {name}: {label} hold non-finite frames, ids or boxes")
        if np.any(frames != np.round(frames)) or np.any(ids != np.round(ids)):
            raise OmniptError(f"sequence {name}: {label} frames and ids must be integers")
        if frames.min() < 1 or frames.max() > length:
            raise OmniptError(
                f"sequence {name}: {label} frames span {int(frames.min())}..{int(frames.max())}, "
                f"outside 1..{length}"
            )
        if ids.min() < 0:
            raise OmniptError(f"sequence {name}: {label} hold a negative id ({int(ids.min())})")


def _fields(metric: Any) -> tuple[list[str], list[str], list[str]]:
    """(integer scalars, float scalars, per-alpha arrays) of a TrackEval metric."""
    arrays = list(metric.float_array_fields) + list(metric.integer_array_fields)
    return list(metric.integer_fields), list(metric.float_fields), arrays


def _row(
    results: Mapping[str, dict[str, Any]], metrics: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    row: dict[str, Any] = {}
    curves: dict[str, list[float]] = {}
    for metric_name, metric in metrics.items():
        res = results[metric_name]
        integers, floats, arrays = _fields(metric)
        for field in arrays:
            values = np.asarray(res[field], dtype=float)
            curves[field] = [float(v) for v in values]
            if field in metric.float_array_fields:
                row[field] = float(np.mean(values))
        for field in floats:
            row[field] = float(res[field])
        for field in integers:
            row[field] = round(float(res[field]))
    if curves:
        curves = {"alpha": list(ALPHAS), **curves}
    return row, curves


METRIC_FAMILIES = ("HOTA", "CLEAR", "Identity", "Count")


def _hota_sequence(metric: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``trackeval.metrics.HOTA.eval_sequence`` with its loop over the 19 alphas done on arrays.

    The per-frame steps (similarity-weighted potential matches, the alignment-weighted assignment) are
    TrackEval's own operations; per alpha, matches are counted from the assignment and the localisation
    sums are accumulated in TrackEval's order (sequential within a frame, then frame after frame, which
    ``cumsum`` reproduces), so every figure is the same to the last bit.
    """
    from scipy.optimize import linear_sum_assignment

    alphas = metric.array_labels
    res: dict[str, Any] = {}
    for field in metric.float_array_fields + metric.integer_array_fields:
        res[field] = np.zeros(len(alphas), dtype=float)
    for field in metric.float_fields:
        res[field] = 0
    if data["num_tracker_dets"] == 0 or data["num_gt_dets"] == 0:
        missing = "HOTA_FN" if data["num_tracker_dets"] == 0 else "HOTA_FP"
        count = data["num_gt_dets"] if missing == "HOTA_FN" else data["num_tracker_dets"]
        res[missing] = count * np.ones(len(alphas), dtype=float)
        res["LocA"] = np.ones(len(alphas), dtype=float)
        res["LocA(0)"] = 1.0
        return res

    potential = np.zeros((data["num_gt_ids"], data["num_tracker_ids"]))
    gt_id_count = np.zeros((data["num_gt_ids"], 1))
    tracker_id_count = np.zeros((1, data["num_tracker_ids"]))
    for gt_ids_t, tracker_ids_t, similarity in zip(
        data["gt_ids"], data["tracker_ids"], data["similarity_scores"], strict=True
    ):
        denominator = similarity.sum(0)[np.newaxis, :] + similarity.sum(1)[:, np.newaxis] - similarity
        sim_iou = np.zeros_like(similarity)
        mask = denominator > 0 + _EPS
        sim_iou[mask] = similarity[mask] / denominator[mask]
        potential[gt_ids_t[:, np.newaxis], tracker_ids_t[np.newaxis, :]] += sim_iou
        gt_id_count[gt_ids_t] += 1
        tracker_id_count[0, tracker_ids_t] += 1
    alignment = potential / (gt_id_count + tracker_id_count - potential)

    matched_gt, matched_tracker, matched_sim, frame_sizes = [], [], [], []
    for gt_ids_t, tracker_ids_t, similarity in zip(
        data["gt_ids"], data["tracker_ids"], data["similarity_scores"], strict=True
    ):
        if len(gt_ids_t) == 0 or len(tracker_ids_t) == 0:
            continue
        score = alignment[gt_ids_t[:, np.newaxis], tracker_ids_t[np.newaxis, :]] * similarity
        rows, cols = linear_sum_assignment(-score)
        matched_gt.append(gt_ids_t[rows])
        matched_tracker.append(tracker_ids_t[cols])
        matched_sim.append(similarity[rows, cols])
        frame_sizes.append(len(rows))
    if not frame_sizes:  # no frame holds both: nothing matches at any alpha
        matched_gt, matched_tracker = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        matched_sim, frame_sizes = [np.zeros(0)], [0]
    gt_ids = np.concatenate(matched_gt)
    tracker_ids = np.concatenate(matched_tracker)
    sims = np.concatenate(matched_sim)
    # The matches of frame i fill row i of a zero-padded table, in assignment order.
    sizes = np.asarray(frame_sizes)
    table = np.zeros((len(sizes), max(int(sizes.max()), 1)))
    table_rows = np.repeat(np.arange(len(sizes)), sizes)
    table_cols = np.arange(len(sims)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    cells = data["num_gt_ids"] * data["num_tracker_ids"]
    for a, alpha in enumerate(alphas):
        kept = sims >= alpha - _EPS
        count = int(kept.sum())
        res["HOTA_TP"][a] = count
        res["HOTA_FN"][a] = data["num_gt_dets"] - count
        res["HOTA_FP"][a] = data["num_tracker_dets"] - count
        table[:] = 0.0
        table[table_rows[kept], table_cols[kept]] = sims[kept]
        res["LocA"][a] = np.cumsum(np.cumsum(table, axis=1)[:, -1])[-1]
        keys = gt_ids[kept] * data["num_tracker_ids"] + tracker_ids[kept]
        matches = np.bincount(keys, minlength=cells).reshape(potential.shape).astype(float)
        ass_a = matches / np.maximum(1, gt_id_count + tracker_id_count - matches)
        res["AssA"][a] = np.sum(matches * ass_a) / np.maximum(1, res["HOTA_TP"][a])
        ass_re = matches / np.maximum(1, gt_id_count)
        res["AssRe"][a] = np.sum(matches * ass_re) / np.maximum(1, res["HOTA_TP"][a])
        ass_pr = matches / np.maximum(1, tracker_id_count)
        res["AssPr"][a] = np.sum(matches * ass_pr) / np.maximum(1, res["HOTA_TP"][a])
    res["LocA"] = np.maximum(1e-10, res["LocA"]) / np.maximum(1e-10, res["HOTA_TP"])
    return metric._compute_final_fields(res)


def _metrics(threshold: float, families: Sequence[str]) -> dict[str, Any]:
    from trackeval.metrics import CLEAR, HOTA, Count, Identity

    config = {"THRESHOLD": threshold, "PRINT_CONFIG": False}
    makers = {
        "HOTA": HOTA,
        "CLEAR": lambda: CLEAR(dict(config)),
        "Identity": lambda: Identity(dict(config)),
        "Count": Count,
    }
    unknown = [f for f in families if f not in makers]
    if unknown:
        raise OmniptError(f"unknown metric family {unknown[0]!r} (expected {', '.join(METRIC_FAMILIES)})")
    return {family: makers[family]() for family in families}


def evaluate_sequences(
    sequences: Mapping[str, SequenceArrays],
    *,
    benchmark: str = "MOT17",
    threshold: float = 0.5,
    task: str = "mot",
    families: Sequence[str] = METRIC_FAMILIES,
) -> EvalResult:
    """Score in-memory sequences with TrackEval.

    ``sequences`` maps a name to ``(gt, pred, length)``: ``gt`` rows ``frame,id,x,y,w,h,conf,class,
    visibility`` (6 to 9 columns; missing ones default to 1), ``pred`` rows ``frame,id,x,y,w,h,conf``
    (6+ columns), 1-based frames in ``1..length``, boxes top-left ``xywh`` in pixels. ``threshold`` is the
    IoU for CLEAR and Identity matches; ``families`` selects TrackEval metrics among ``HOTA``, ``CLEAR``,
    ``Identity`` and ``Count``. Returns one row per sequence and ``COMBINED``.
    """
    if benchmark not in BENCHMARKS:
        raise OmniptError(f"unknown benchmark {benchmark!r} (expected one of {', '.join(BENCHMARKS)})")
    if not sequences:
        raise OmniptError("no sequences to evaluate")
    if COMBINED in sequences:
        raise OmniptError(f"a sequence may not be called {COMBINED}")
    metrics = _metrics(threshold, families)
    per_sequence: dict[str, dict[str, Any]] = {}
    for name, (gt_rows, pred_rows, length) in sequences.items():
        gt = _normalise_gt(gt_rows, name)
        pred = _normalise_pred(pred_rows, name)
        length = int(length)
        _check_arrays(name, gt, pred, length)
        if benchmark != "MOT15" and len(gt):
            invalid = np.setdiff1d(np.unique(gt[:, 7]), list(MOT_CLASS_IDS.values()))
            if len(invalid):
                raise OmniptError(
                    f"sequence {name}: gt class {invalid[0]:g} is not a MOTChallenge class (1..13): "
                    "use benchmark MOT15 to treat every row as a pedestrian"
                )
        data = _preprocessed(name, gt, pred, length, benchmark)
        per_sequence[name] = {
            key: _hota_sequence(metric, data) if key == "HOTA" else metric.eval_sequence(data)
            for key, metric in metrics.items()
        }

    rows: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, list[float]]] = {}
    for name, results in per_sequence.items():
        rows[name], curves[name] = _row(results, metrics)
    combined = {
        key: metric.combine_sequences({name: res[key] for name, res in per_sequence.items()})
        for key, metric in metrics.items()
    }
    rows[COMBINED], curves[COMBINED] = _row(combined, metrics)
    protocol = dict.fromkeys(families, "trackeval")
    return EvalResult(task=task, rows=rows, key_metrics=MOT_KEY_METRICS, curves=curves, protocol=protocol)


# --- files -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceFiles:
    """Where one sequence's ground truth, result and (optional) ``seqinfo.ini`` are."""

    name: str
    gt: Path
    pred: Path
    seqinfo: Path | None


def _sequence_name(gt_file: Path) -> str:
    """``<seq>/gt/gt.txt`` -> ``<seq>``; ``<seq>/gt.txt`` -> ``<seq>``."""
    parent = gt_file.parent
    return parent.parent.name if parent.name == "gt" and parent.parent.name else parent.name


def _seqinfo_for(gt_file: Path) -> Path | None:
    for folder in (gt_file.parent, gt_file.parent.parent):
        candidate = folder / "seqinfo.ini"
        if candidate.is_file():
            return candidate
    return None


def _gt_in_folder(folder: Path) -> Path | None:
    for candidate in (folder / "gt" / "gt.txt", folder / "gt.txt"):
        if candidate.is_file():
            return candidate
    return None


def _pred_for(pred: Path, name: str) -> Path:
    if pred.is_file():
        return pred
    for candidate in (pred / f"{name}.txt", pred / "data" / f"{name}.txt"):
        if candidate.is_file():
            return candidate
    raise InputError(pred, None, f"no result for sequence {name}", f"{pred / (name + '.txt')}")


def discover(gt: Path | str, pred: Path | str) -> list[SequenceFiles]:
    """Pair ground-truth and result files.

    Layouts: ``gt`` a file and ``pred`` a file (one sequence, named after the folder holding the ground
    truth, or the folder above ``gt/``); ``gt`` one sequence folder (``gt/gt.txt`` or ``gt.txt``); ``gt`` a
    folder of such sequence folders. ``pred`` is then a folder of ``<sequence>.txt`` files (the
    MOTChallenge submission layout; TrackEval's ``<tracker>/data/<sequence>.txt`` is accepted too) or,
    for a single sequence, the result file itself.
    """
    gt, pred = Path(gt), Path(pred)
    if not gt.exists():
        raise InputError(gt, None, "not found", "a gt.txt file or a folder of sequences")
    if not pred.exists():
        raise InputError(pred, None, "not found", "a result file or a folder of <sequence>.txt files")
    if gt.is_file():
        gt_files = [gt]
    elif (single := _gt_in_folder(gt)) is not None:
        gt_files = [single]
    else:
        gt_files = [f for sub in sorted(p for p in gt.iterdir() if p.is_dir()) if (f := _gt_in_folder(sub))]
        if not gt_files:
            raise InputError(gt, None, "no sequences found", "<sequence>/gt/gt.txt under the folder")
    if pred.is_file() and len(gt_files) > 1:
        raise InputError(
            pred, None, f"one result file for {len(gt_files)} sequences", "a folder of <sequence>.txt"
        )
    out = []
    for gt_file in gt_files:
        name = _sequence_name(gt_file)
        out.append(SequenceFiles(name, gt_file, _pred_for(pred, name), _seqinfo_for(gt_file)))
    return out


def load_sequences(
    files: list[SequenceFiles],
    *,
    benchmark: str | None = None,
    frame_offset: int = 0,
    pred_frame_offset: int = 0,
) -> tuple[dict[str, SequenceArrays], str]:
    """Read the files of :func:`discover`; returns the arrays and the benchmark that applies.

    ``benchmark`` None means MOT15 when every ground truth uses the 10-column MOT15 layout, else MOT17.
    Other than for MOT15, ground-truth classes must be MOTChallenge's 1..13 (an error names the line).
    ``frame_offset`` is added to the frames of both files, ``pred_frame_offset`` to the results' only.
    """
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise OmniptError(f"unknown benchmark {benchmark!r} (expected one of {', '.join(BENCHMARKS)})")
    loaded: list[tuple[str, MotFile, MotFile, int]] = []
    for item in files:
        gt_file = read_gt(item.gt, frame_offset=frame_offset)
        pred_file = read_pred(item.pred, frame_offset=frame_offset + pred_frame_offset)
        if item.seqinfo is not None:
            length = seq_length(item.seqinfo)
            check_frames(gt_file, length, item.seqinfo)
            check_frames(pred_file, length, item.seqinfo)
        else:
            length = max(gt_file.max_frame, pred_file.max_frame)
        if any(name == item.name for name, *_ in loaded):
            raise InputError(item.gt, None, f"sequence name {item.name} appears twice")
        loaded.append((item.name, gt_file, pred_file, length))
    chosen = benchmark or ("MOT15" if all(gt.is_mot15 for _, gt, _, _ in loaded) else "MOT17")
    if chosen != "MOT15":
        for _, gt_file, _, _ in loaded:
            bad = np.nonzero(~np.isin(gt_file.rows[:, 7], list(MOT_CLASS_IDS.values())))[0]
            if len(bad):
                i = int(bad[0])
                raise InputError(
                    gt_file.path,
                    int(gt_file.lines[i]),
                    f"class {gt_file.rows[i, 7]:g} is not a MOTChallenge class ({chosen} preprocessing)",
                    "classes 1..13, or benchmark MOT15 to treat every row as a pedestrian",
                )
    return {name: (gt.rows, pred.rows, length) for name, gt, pred, length in loaded}, chosen


def evaluate_mot(
    gt: Path | str,
    pred: Path | str,
    *,
    benchmark: str | None = None,
    frame_offset: int = 0,
    threshold: float = 0.5,
    protocol: str = "trackeval",
) -> EvalResult:
    """Evaluate MOTChallenge files (layouts in :func:`discover`).

    ``benchmark`` picks the preprocessing (``MOT15``, ``MOT16``, ``MOT17``, ``MOT20``); by default MOT15
    when every ground truth uses the 10-column MOT15 layout, else MOT17. Without ``seqinfo.ini`` a
    sequence lasts up to its last annotated or predicted frame. ``frame_offset`` is added to every frame
    of both files (1 for 0-based files). ``protocol``: ``trackeval`` (HOTA, CLEAR, Identity as TrackEval
    computes them) or ``devkit`` (CLEAR MOT and ID measures as the MOTChallenge MATLAB devkit computes
    them, see :mod:`omnipt_data.evaluate.devkit`; no HOTA).
    """
    if protocol not in MOT_PROTOCOLS:
        raise OmniptError(f"unknown protocol {protocol!r} (expected one of {', '.join(MOT_PROTOCOLS)})")
    files = discover(gt, pred)
    sequences, chosen = load_sequences(files, benchmark=benchmark, frame_offset=frame_offset)
    if protocol == "devkit":
        from omnipt_data.evaluate.devkit import evaluate_devkit

        result = evaluate_devkit(
            {name: (g, p) for name, (g, p, _) in sequences.items()}, benchmark=chosen, threshold=threshold
        )
    else:
        result = evaluate_sequences(sequences, benchmark=chosen, threshold=threshold, task="mot")
    result.notes.append(f"benchmark {chosen} preprocessing")
    return result


# --- referring MOT ---------------------------------------------------------------------------------


def discover_rmot(gt_dir: Path | str, pred_dir: Path | str) -> list[SequenceFiles]:
    """Pair the expressions of a referring-MOT evaluation.

    Ground truth: ``<gt_dir>/<video>+<expression>/gt/gt.txt`` (the MOT layout with the expression in the
    sequence name) or ``<gt_dir>/<video>/<expression>/gt.txt`` (the Refer-KITTI evaluation layout).
    Results: ``<pred_dir>/<video>+<expression>.txt`` or ``<pred_dir>/<video>/<expression>/predict.txt``.
    Sequences are named ``<video>+<expression>``.
    """
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for path, what in ((gt_dir, "ground truth"), (pred_dir, "results")):
        if not path.is_dir():
            raise InputError(path, None, f"{what} folder not found", "a folder of expressions")
    found: list[tuple[str, Path]] = []
    for folder in sorted(p for p in gt_dir.iterdir() if p.is_dir()):
        direct = folder / "gt" / "gt.txt"
        if direct.is_file():
            found.append((folder.name, direct))
            continue
        for expression in sorted(p for p in folder.iterdir() if p.is_dir()):
            nested = expression / "gt.txt"
            if nested.is_file():
                found.append((f"{folder.name}+{expression.name}", nested))
    if not found:
        raise InputError(
            gt_dir,
            None,
            "no expressions found",
            "<video>+<expression>/gt/gt.txt or <video>/<expression>/gt.txt",
        )
    out = []
    for name, gt_file in found:
        video, _, expression = name.partition("+")
        candidates = [pred_dir / f"{name}.txt", pred_dir / "data" / f"{name}.txt"]
        if expression:
            candidates.append(pred_dir / video / expression / "predict.txt")
        pred_file = next((c for c in candidates if c.is_file()), None)
        if pred_file is None:
            raise InputError(pred_dir, None, f"no result for expression {name}", str(candidates[0]))
        out.append(SequenceFiles(name, gt_file, pred_file, _seqinfo_for(gt_file)))
    return out


def evaluate_rmot(
    gt_dir: Path | str, pred_dir: Path | str, *, frame_offset: int = 0, pred_frame_offset: int = 0
) -> EvalResult:
    """Referring MOT (Refer-KITTI protocol): every expression is a sequence ``<video>+<expression>``
    (layouts in :func:`discover_rmot`), scored and combined as TransRMOT's and TempRMOT's released
    evaluation does (their TrackEval fork, ``run_mot_challenge.py --METRICS HOTA`` over a seqmap of
    ``<video>+<expression>`` names, figures from ``COMBINED_SEQ``): per alpha, detections are pooled
    over the expressions (``DetA = sum TP / (sum TP + sum FN + sum FP)``) while association is scored
    within each expression and combined as the mean of the expressions' ``AssA`` weighted by their TP
    (identities never match across expressions); ``HOTA = sqrt(DetA * AssA)`` per alpha, then the alpha
    mean. Neither a mean of per-expression HOTA nor one sequence of all expressions. Every ground-truth
    row is a target (MOT15 preprocessing; the released ground truth has flag 1 and class 1 throughout,
    for which TrackEval's MOT17 preprocessing keeps the same rows).

    Frames: both files must use 1-based frames. Refer-KITTI numbers its images and label files from 0
    (``000000.png``); its reference evaluation writes the result of image ``i`` as frame ``i + 1``, but its
    ground-truth writer stores under frame ``k + 1`` the boxes of label file ``k + 1`` (the next image),
    selected by the ids the expression lists for frame ``k``. Ground truth made that way is one image
    ahead of the results; published Refer-KITTI numbers include this shift, ground truth written from the
    label file of image ``k`` does not. ``frame_offset`` is added to the frames of both files (1 for
    0-based files); ``pred_frame_offset`` is added to the results' frames only, to align results with
    ground truth written under the other convention (+1 moves results one frame later).
    """
    files = discover_rmot(gt_dir, pred_dir)
    sequences, _ = load_sequences(
        files, benchmark="MOT15", frame_offset=frame_offset, pred_frame_offset=pred_frame_offset
    )
    result = evaluate_sequences(sequences, benchmark="MOT15", task="rmot")
    result.notes.append(
        f"COMBINED of {len(result.names)} expressions as TransRMOT/TempRMOT report it: detections pooled, "
        "AssA weighted by each expression's TP"
    )
    return result
