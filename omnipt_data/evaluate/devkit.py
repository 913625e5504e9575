"""CLEAR MOT and the ID measures as the MOTChallenge MATLAB devkit computes them, rule for rule.

The reference is the devkit the CRTrack authors ship in ``CRMOT_evaluation/matlab_devkit`` (the
MOTChallenge devkit): ``utils/clearMOTMex.cpp`` (per-frame matching), ``utils/CLEAR_MOT_HUN.m`` (MOTA,
MOTP, MT/PT/ML, fragmentations), ``utils/IDmeasures.m`` with ``utils/costBlockMex.cpp`` (IDF1) and
``evaluateTracking.m`` (data preparation). Its rules, and where TrackEval's CLEAR differs:

- **Matching, per frame.** Last frame's correspondences are kept first, while the ground-truth object and
  its tracker id are both present and ``1 - IoU <= 1 - threshold`` (0.5); the rest is a minimum-cost
  assignment of the unmatched objects to the unmatched tracker boxes on ``1 - IoU`` (pairs farther than
  that forbidden): as many matches as possible, then the smallest total distance, ties broken by the order of
  the pair (sorted object id, then sorted tracker id; the devkit adds ``1e-9 * k`` to the k-th allowed
  pair). TrackEval instead maximises the summed IoU with a bonus for last frame's matches.
- **ID switch.** Counted when an object matched now was matched before to another tracker id *and the
  object is present in the previous frame* (matched or not). An object that reappears after a gap with a
  new tracker id is no switch. TrackEval counts every change of tracker id.
- **MT/PT/ML.** With ``r`` = matched frames / annotated frames of an object: ML when ``r < 0.2``; else PT
  when ``r <= 0.8`` and the last result frame is at least the object's number of annotated frames (the
  devkit compares with that count where it means the object's last frame); else MT when ``r >= 0.8``;
  otherwise (``0.2 <= r < 0.8`` and results ending early) the object is in none of the three.
- **Fragmentations.** Between an object's first and last matched frame, every matched frame followed by
  a frame without a match counts, frames where the object is not annotated included.
- **MOTP** ``= 1 - sum(1 - IoU) / matches``; **MOTAL** uses ``log10(IDSW + 1)``; **FAR** = FP per frame
  up to the last ground-truth frame.
- **ID measures.** Each ground-truth trajectory and each result trajectory is matched as a whole
  (minimum-cost matching), a frame counting as a match when the two boxes have ``IoU >= threshold``;
  ``IDF1 = 2 IDTP / (GT + results)``, ``IDP = IDTP / results`` (0 without results),
  ``IDR = IDTP / GT``. (The devkit pairs a trajectory's frames assuming rows sorted by frame; the counts
  here do not depend on row order, which equals the devkit on frame-sorted files.)

Preparation (``evaluateTracking.m``): ground-truth rows flagged 0 and frames below 1 are dropped, result
rows after the last ground-truth frame are dropped; ids are renumbered in sorted order (which keeps the
tie order above). The MOTChallenge benchmarks MOT16/17/20 also remove result boxes matched to
distractor classes and keep class-1 ground truth, as the MOTChallenge release of the devkit does (the
CRTrack copy comments the class filter out: its ground truth carries class -1; see :func:`prepare`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from omnipt_data.errors import OmniptError
from omnipt_data.evaluate.motchallenge import DISTRACTORS, FramePairs
from omnipt_data.evaluate.report import COMBINED, EvalResult

PROTOCOL = "devkit"
DEVKIT_KEY_METRICS = ("MOTA", "MOTP", "IDF1", "IDSW", "CLR_FP", "CLR_FN", "MT", "PT", "ML", "Frag")
_COUNTS = ("CLR_TP", "CLR_FP", "CLR_FN", "IDSW", "MT", "PT", "ML", "Frag", "GT_IDs", "CLR_Frames")
_ID_COUNTS = ("IDTP", "IDFP", "IDFN", "GT_Dets", "Dets")


def _sort_by_frame(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows[:, 0], kind="stable")
    return rows[order], rows[order, 0].astype(np.int64)


def _renumber(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids mapped to 0..n-1 in sorted order (the devkit's ``[~, ~, ic] = unique(ids)``)."""
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64), len(unique)


def iou_devkit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``xywh`` boxes row by row, with the devkit's arithmetic (``boxiou`` in clearMOTMex.cpp)."""
    l1, t1, w1, h1 = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    l2, t2, w2, h2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    x_overlap = np.maximum(0.0, np.minimum(l1 + w1, l2 + w2) - np.maximum(l1, l2))
    y_overlap = np.maximum(0.0, np.minimum(t1 + h1, t2 + h2) - np.maximum(t1, t2))
    intersection = x_overlap * y_overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        return intersection / (w1 * h1 + w2 * h2 - intersection)


def _pairs(gt: np.ndarray, pred: np.ndarray, frames: int) -> tuple[FramePairs, np.ndarray]:
    """The same-frame pairs of frame-sorted rows and their IoU (the devkit's arithmetic)."""
    pairs = FramePairs.of(gt[:, 0], pred[:, 0], frames)
    return pairs, iou_devkit(gt[pairs.gt_index, 2:6], pred[pairs.pred_index, 2:6])


def clear_mot(gt: np.ndarray, pred: np.ndarray, *, threshold: float = 0.5) -> dict[str, Any]:
    """The devkit's CLEAR MOT of one sequence (rules in the module docstring).

    ``gt`` and ``pred`` are rows ``frame,id,x,y,w,h`` (more columns ignored), prepared as the devkit
    prepares them (:func:`prepare`); ``threshold`` is the IoU a match needs (the devkit compares the
    distance ``1 - IoU`` with ``1 - threshold``). Returns counts and ratios under TrackEval's names
    (``CLR_TP``...).
    """
    farthest = 1.0 - threshold
    gt, gt_frames = _sort_by_frame(np.asarray(gt, dtype=np.float64).reshape(-1, max(6, np.shape(gt)[-1])))
    pred, pred_frames = _sort_by_frame(
        np.asarray(pred, dtype=np.float64).reshape(-1, max(6, np.shape(pred)[-1]))
    )
    from scipy.optimize import linear_sum_assignment

    gt_ids, gt_count = _renumber(gt[:, 1])
    pred_ids, _ = _renumber(pred[:, 1])
    last_gt = int(gt_frames[-1]) if len(gt) else 0
    last_pred = int(pred_frames[-1]) if len(pred) else 0
    frames = max(last_gt, last_pred)
    pairs, iou = _pairs(gt, pred, frames)
    distance = (1.0 - iou).tolist()
    gt_id_list, pred_id_list = gt_ids.tolist(), pred_ids.tolist()
    gb, pb, qb = pairs.gt_bounds.tolist(), pairs.pred_bounds.tolist(), pairs.pair_bounds.tolist()

    previous: dict[int, int] = {}  # object -> tracker matched in the previous frame
    last_tracker: dict[int, int] = {}  # object -> tracker of its latest match, any earlier frame
    last_matched: dict[int, int] = {}  # object -> frame of its latest match
    matched_frames = [0] * gt_count
    fragments = [0] * gt_count
    present_before: set[int] = set()
    tp = fp = fn = switches = 0
    total_distance = 0.0
    for t in range(frames):
        objects = gt_id_list[gb[t] : gb[t + 1]]
        boxes = pred_id_list[pb[t] : pb[t + 1]]
        if not objects or not boxes:  # nothing to match: every box a false positive, every object missed
            fp += len(boxes)
            fn += len(objects)
            previous = {}
            present_before = set(objects)
            continue
        width = len(boxes)
        offset = qb[t]
        row_of = {o: k for k, o in enumerate(objects)}
        col_of = {b: k for k, b in enumerate(boxes)}
        current: dict[int, int] = {}
        for obj in sorted(previous):
            tracker = previous[obj]
            if (
                obj in row_of
                and tracker in col_of
                and distance[offset + row_of[obj] * width + col_of[tracker]] <= farthest
            ):
                current[obj] = tracker
        free_objects = sorted(o for o in objects if o not in current)
        taken = set(current.values())
        free_boxes = sorted(b for b in boxes if b not in taken)
        if len(free_objects) == 1 or len(free_boxes) == 1:
            # One match at most: the allowed pair of least distance + 1e-9 * its order.
            best: tuple[float, int, int] | None = None
            order = 0
            for o in free_objects:
                for b in free_boxes:
                    d = distance[offset + row_of[o] * width + col_of[b]]
                    if d <= farthest:
                        cost = d + 1e-9 * order
                        order += 1
                        if best is None or cost < best[0]:
                            best = (cost, o, b)
            if best is not None:
                current[best[1]] = best[2]
        elif free_objects and free_boxes:
            block = np.array(
                [[distance[offset + row_of[o] * width + col_of[b]] for b in free_boxes] for o in free_objects]
            )
            allowed = block <= farthest
            if allowed.any():
                ranks = np.cumsum(allowed.ravel()).reshape(allowed.shape) - 1
                # Most matches first (each allowed pair is worth more than any sum of distances), then
                # the smallest distance, then the devkit's tie order.
                big = min(allowed.shape) + 1.0 + 1e-9 * allowed.size
                costs = np.where(allowed, block + 1e-9 * ranks - big, 0.0)
                rows, cols = linear_sum_assignment(costs)
                for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                    if allowed[r, c]:
                        current[free_objects[r]] = free_boxes[c]
        for obj, tracker in current.items():
            if obj in present_before and obj in last_tracker and last_tracker[obj] != tracker:
                switches += 1
            if obj in last_matched and t - last_matched[obj] > 1:
                fragments[obj] += 1
            last_tracker[obj] = tracker
            last_matched[obj] = t
            matched_frames[obj] += 1
            total_distance += distance[offset + row_of[obj] * width + col_of[tracker]]
        tp += len(current)
        fp += width - len(current)
        fn += len(objects) - len(current)
        previous = current
        present_before = set(objects)

    annotated = np.bincount(gt_ids, minlength=gt_count).tolist()
    mt = pt = ml = 0
    for obj in range(gt_count):
        ratio = matched_frames[obj] / annotated[obj]
        if ratio < 0.2:
            ml += 1
        elif len(pred) and last_pred >= annotated[obj] and ratio <= 0.8:
            pt += 1
        elif ratio >= 0.8:
            mt += 1
    return _clear_ratios(
        {
            "CLR_TP": tp,
            "CLR_FP": fp,
            "CLR_FN": fn,
            "IDSW": switches,
            "MT": mt,
            "PT": pt,
            "ML": ml,
            "Frag": sum(fragments),
            "GT_IDs": gt_count,
            "CLR_Frames": last_gt,
            "MOTP_sum": total_distance,
        }
    )


def _clear_ratios(counts: dict[str, Any]) -> dict[str, Any]:
    """MOTA, MOTP, MOTAL, recall, precision and FAR from summed counts (CLEAR_MOT_HUN.m)."""
    tp, fp, fn, switches = counts["CLR_TP"], counts["CLR_FP"], counts["CLR_FN"], counts["IDSW"]
    objects = tp + fn
    out = dict(counts)
    out["MOTA"] = 1.0 - (fn + fp + switches) / objects if objects else -math.inf
    out["MOTP"] = 1.0 - counts["MOTP_sum"] / tp if tp else 0.0
    out["MOTAL"] = 1.0 - (fn + fp + math.log10(switches + 1)) / objects if objects else -math.inf
    out["CLR_Re"] = tp / objects if objects else 0.0
    out["CLR_Pr"] = tp / (tp + fp) if tp + fp else 0.0
    out["FP_per_frame"] = fp / counts["CLR_Frames"] if counts["CLR_Frames"] else 0.0
    return out


def id_measures(gt: np.ndarray, pred: np.ndarray, *, threshold: float = 0.5) -> dict[str, Any]:
    """The devkit's IDF1, IDP, IDR with IDTP/IDFP/IDFN of one sequence (rows as in :func:`clear_mot`)."""
    gt, gt_frames = _sort_by_frame(np.asarray(gt, dtype=np.float64).reshape(-1, max(6, np.shape(gt)[-1])))
    pred, pred_frames = _sort_by_frame(
        np.asarray(pred, dtype=np.float64).reshape(-1, max(6, np.shape(pred)[-1]))
    )
    from scipy.optimize import linear_sum_assignment

    gt_ids, gt_count = _renumber(gt[:, 1])
    pred_ids, pred_count = _renumber(pred[:, 1])
    frames = max(int(gt_frames[-1]) if len(gt) else 0, int(pred_frames[-1]) if len(pred) else 0)
    idtp = 0
    if gt_count and pred_count:
        pairs, iou = _pairs(gt, pred, frames)
        # costBlockMex counts a frame as missed when IoU < threshold (so an undefined IoU matches).
        hit = ~(iou < threshold)
        key = gt_ids[pairs.gt_index[hit]] * pred_count + pred_ids[pairs.pred_index[hit]]
        matches = np.bincount(key, minlength=gt_count * pred_count).reshape(gt_count, pred_count)
        rows, cols = linear_sum_assignment(matches, maximize=True)
        idtp = int(matches[rows, cols].sum())
    return _id_ratios({"IDTP": idtp, "IDFN": len(gt) - idtp, "IDFP": len(pred) - idtp})


def _id_ratios(counts: dict[str, int]) -> dict[str, Any]:
    idtp, idfp, idfn = counts["IDTP"], counts["IDFP"], counts["IDFN"]
    n_gt, n_pred = idtp + idfn, idtp + idfp
    out: dict[str, Any] = {**counts, "GT_Dets": n_gt, "Dets": n_pred}
    out["IDF1"] = 2 * idtp / (n_gt + n_pred) if n_gt + n_pred else 0.0
    out["IDP"] = idtp / n_pred if n_pred else 0.0
    out["IDR"] = idtp / n_gt if n_gt else 0.0
    return out


def _min_cost_matches(distance: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Most pairs with ``distance <= threshold``, then the smallest total distance (Hungarian.m on a
    matrix whose forbidden pairs are Inf)."""
    from scipy.optimize import linear_sum_assignment

    allowed = distance <= threshold
    if not allowed.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    big = min(allowed.shape) + 1.0
    rows, cols = linear_sum_assignment(np.where(allowed, distance - big, 0.0))
    keep = allowed[rows, cols]
    return rows[keep], cols[keep]


def prepare(gt: np.ndarray, pred: np.ndarray, *, benchmark: str = "MOT15") -> tuple[np.ndarray, np.ndarray]:
    """The devkit's data preparation (evaluateTracking.m, preprocessResult.m).

    ``gt`` rows ``frame,id,x,y,w,h,flag,class,visibility``, ``pred`` rows ``frame,id,x,y,w,h,...``. On
    MOT16/17/20 the result boxes that a per-frame minimum-cost matching (``1 - IoU <= 0.5``) pairs with a
    distractor (:data:`DISTRACTORS`) are removed, and only class-1 ground truth is kept; then ground
    truth flagged 0 and frames below 1 are dropped, and results after the last ground-truth frame.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    distractors = DISTRACTORS.get(benchmark)
    if distractors is not None and len(gt) and len(pred):
        keep = np.ones(len(pred), dtype=bool)
        gt_sorted, _ = _sort_by_frame(gt)
        order = np.argsort(pred[:, 0], kind="stable")
        pred_sorted = pred[order]
        frames = int(max(gt_sorted[-1, 0], pred_sorted[-1, 0]))
        pairs, iou = _pairs(gt_sorted, pred_sorted, frames)
        is_distractor = np.isin(gt_sorted[:, 7], distractors)
        for t in range(frames):
            g0, g1 = pairs.gt_bounds[t], pairs.gt_bounds[t + 1]
            p0, p1 = pairs.pred_bounds[t], pairs.pred_bounds[t + 1]
            if g1 == g0 or p1 == p0 or not is_distractor[g0:g1].any():
                continue
            block = 1.0 - iou[pairs.pair_bounds[t] : pairs.pair_bounds[t + 1]].reshape(g1 - g0, p1 - p0)
            rows, cols = _min_cost_matches(block, 0.5)
            hit = is_distractor[g0 + rows]
            keep[order[p0 + cols[hit]]] = False
        pred = pred[keep]
    if distractors is not None:
        gt = gt[gt[:, 7] == 1]
    gt = gt[(gt[:, 6] != 0) & (gt[:, 0] >= 1)]
    pred = pred[pred[:, 0] >= 1]
    last = gt[:, 0].max() if len(gt) else 0
    return gt, pred[pred[:, 0] <= last]


def evaluate_devkit(
    sequences: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    benchmark: str = "MOT15",
    threshold: float = 0.5,
    task: str = "mot",
    prepared: bool = False,
) -> EvalResult:
    """CLEAR MOT and ID measures of each sequence with the devkit's rules, and ``COMBINED`` from the
    summed counts (as the devkit's benchmark summary). ``sequences`` maps a name to ``(gt, pred)`` rows
    as :func:`prepare` takes them; ``prepared=True`` skips that preparation."""
    if not sequences:
        raise OmniptError("no sequences to evaluate")
    if COMBINED in sequences:
        raise OmniptError(f"a sequence may not be called {COMBINED}")
    rows: dict[str, dict[str, Any]] = {}
    for name, (gt, pred) in sequences.items():
        if not prepared:
            gt, pred = prepare(gt, pred, benchmark=benchmark)
        rows[name] = {
            **clear_mot(gt, pred, threshold=threshold),
            **id_measures(gt, pred, threshold=threshold),
        }
    totals = {key: sum(row[key] for row in rows.values()) for key in (*_COUNTS, "MOTP_sum", *_ID_COUNTS)}
    rows[COMBINED] = {**_clear_ratios(totals), **_id_ratios({k: totals[k] for k in ("IDTP", "IDFP", "IDFN")})}
    return EvalResult(
        task=task,
        rows=rows,
        key_metrics=DEVKIT_KEY_METRICS,
        protocol={"CLEAR": PROTOCOL, "Identity": PROTOCOL},
    )
