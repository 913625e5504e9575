"""CRTrack cross-view referring MOT metrics: CVRIDF1 and CVRMA, following the CRTrack authors' evaluation.

Layout (the released ``CRMOT_evaluation`` data): ground truth ``<gt>/<Scene>_<sentence>/gt/View<k>.txt``
(``frame,id,x,y,w,h,...``, ids shared across the views of a scene) and results
``<pred>/<Scene>_<sentence>/View<k>.txt``. The released CRTracker results hold corners
``frame,id,x1,y1,x2,y2,...`` (their widths and heights match the ground truth only when read that way),
which is the default ``pred_box_format``; ``"xywh"`` reads MOTChallenge-style results. A view missing from
a result folder counts as an empty result.

Protocol, per sentence (one ``<Scene>_<sentence>`` folder; views in ``View<k>`` order):

- **CVRIDF1**: the views are concatenated in time into one sequence. View ``m`` is shifted by the sum,
  over the views before it, of ``1 +`` that view's last frame (over its ground truth and its results);
  IDF1 (IoU >= 0.5, one global identity matching) is computed on that sequence.
- **CVRMA**: the views are interleaved: frame ``f`` of view ``m`` (0-based view index, ``V`` views)
  becomes frame ``f * V + m``; CVRMA is MOTA (IoU >= 0.5) on that sequence.
- As in the MOTChallenge devkit the authors run, result rows after the last ground-truth frame of the
  built sequence are dropped (so, for CVRIDF1, results in views after the last view that has ground
  truth are not counted), frames below 1 are dropped, and no class or flag filtering is applied to the
  ground truth; boxes are written with two decimals before scoring.
- A sentence's CVRMA is clipped at 0 (negative MOTA counts as 0).

A scene's score is the mean over its sentences (the scene is the folder name up to the first ``_``), and
``COMBINED`` is the mean over all sentences (the authors' "All scenes" row), for both metrics. CLEAR and
Identity are computed by TrackEval (their CLEAR and Identity equal the devkit's MOTA and IDF1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.evaluate.mot import evaluate_sequences
from omnipt_data.evaluate.motchallenge import read_gt, read_pred
from omnipt_data.evaluate.report import COMBINED, EvalResult

BoxFormat = Literal["xyxy", "xywh"]
CRMOT_KEY_METRICS = ("CVRIDF1", "CVRMA", "CVRIDP", "CVRIDR", "IDSW", "CLR_FP", "CLR_FN")
_VIEW = re.compile(r"^View(\d+)\.txt$", re.IGNORECASE)

ViewArrays = tuple[np.ndarray, np.ndarray]


def _view_index(path: Path) -> int:
    match = _VIEW.match(path.name)
    return int(match.group(1)) if match else -1


def _views(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and _VIEW.match(p.name)), key=_view_index)


def _to_xywh(rows: np.ndarray, box_format: BoxFormat) -> np.ndarray:
    rows = np.array(rows, dtype=np.float64, copy=True)
    if box_format == "xyxy" and len(rows):
        rows[:, 4] = rows[:, 4] - rows[:, 2]
        rows[:, 5] = rows[:, 5] - rows[:, 3]
    elif box_format not in ("xyxy", "xywh"):
        raise OmniptError(f"unknown box format {box_format!r} (expected xyxy or xywh)")
    return rows


def load_crtrack(
    gt_dir: Path | str, pred_dir: Path | str, *, pred_box_format: BoxFormat = "xyxy"
) -> dict[str, dict[str, ViewArrays]]:
    """Read the released layout into ``{sentence: {view: (gt, pred)}}``, rows ``frame,id,x,y,w,h``."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    for path, what in ((gt_dir, "ground truth"), (pred_dir, "results")):
        if not path.is_dir():
            raise InputError(path, None, f"{what} folder not found", "a folder of <Scene>_<sentence> folders")
    sentences: dict[str, dict[str, ViewArrays]] = {}
    for folder in sorted(p for p in gt_dir.iterdir() if p.is_dir()):
        view_folder = folder / "gt" if (folder / "gt").is_dir() else folder
        views = _views(view_folder)
        if not views:
            raise InputError(folder, None, "no View<k>.txt files", f"{folder}/gt/View1.txt ...")
        result_folder = pred_dir / folder.name
        if not result_folder.is_dir():
            raise InputError(
                pred_dir, None, f"no results for {folder.name!r}", f"{result_folder}/View1.txt ..."
            )
        per_view: dict[str, ViewArrays] = {}
        for view in views:
            gt = read_gt(view).rows[:, :6]
            pred_file = result_folder / view.name
            pred = read_pred(pred_file).rows[:, :6] if pred_file.is_file() else np.zeros((0, 6))
            per_view[view.stem] = (gt, _to_xywh(pred, pred_box_format))
        sentences[folder.name] = per_view
    if not sentences:
        raise InputError(gt_dir, None, "no sentence folders", "<Scene>_<sentence>/gt/View1.txt ...")
    return sentences


def _concatenated(views: list[ViewArrays]) -> tuple[np.ndarray, np.ndarray]:
    """Views one after another in time (offset: previous views' last frame + 1, summed)."""
    gts, preds, offset = [], [], 0
    for gt, pred in views:
        last = max(int(gt[:, 0].max()) if len(gt) else 0, int(pred[:, 0].max()) if len(pred) else 0)
        for rows, out in ((gt, gts), (pred, preds)):
            shifted = rows.copy()
            shifted[:, 0] += offset
            out.append(shifted)
        offset += last + 1
    return np.concatenate(gts), np.concatenate(preds)


def _interleaved(views: list[ViewArrays]) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``f`` of view ``m`` (0-based) becomes ``f * V + m``."""
    count = len(views)
    gts, preds = [], []
    for m, (gt, pred) in enumerate(views):
        for rows, out in ((gt, gts), (pred, preds)):
            moved = rows.copy()
            moved[:, 0] = moved[:, 0] * count + m
            out.append(moved)
    return np.concatenate(gts), np.concatenate(preds)


def _devkit_sequence(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Two-decimal boxes, frames >= 1, results clipped to the last ground-truth frame."""
    gt = gt[gt[:, 0] >= 1].copy()
    pred = pred[pred[:, 0] >= 1].copy()
    gt[:, 2:6] = np.round(gt[:, 2:6], 2)
    pred[:, 2:6] = np.round(pred[:, 2:6], 2)
    last = int(gt[:, 0].max()) if len(gt) else 0
    pred = pred[pred[:, 0] <= last]
    gt_rows = np.ones((len(gt), 9))
    gt_rows[:, :6] = gt[:, :6]
    pred_rows = np.ones((len(pred), 7))
    pred_rows[:, :6] = pred[:, :6]
    return gt_rows, pred_rows, last


def evaluate_crmot_arrays(
    sentences: Mapping[str, Mapping[str, ViewArrays]], *, threshold: float = 0.5
) -> EvalResult:
    """CVRIDF1 and CVRMA from ``{sentence: {view: (gt, pred)}}`` with rows ``frame,id,x,y,w,h`` (``xywh``,
    1-based frames); views are taken in the mapping's order. Rows: each sentence, each scene, ``COMBINED``."""
    if not sentences:
        raise OmniptError("no sentences to evaluate")
    concat: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    inter: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for name, views in sentences.items():
        if not views:
            raise OmniptError(f"sentence {name!r} has no views")
        arrays = [
            (np.asarray(g, float)[:, :6].reshape(-1, 6), np.asarray(p, float)[:, :6].reshape(-1, 6))
            for g, p in views.values()
        ]
        concat[name] = _devkit_sequence(*_concatenated(arrays))
        inter[name] = _devkit_sequence(*_interleaved(arrays))
    by_time = evaluate_sequences(
        concat, benchmark="MOT15", threshold=threshold, task="crmot", families=("Identity",)
    )
    by_frame = evaluate_sequences(
        inter, benchmark="MOT15", threshold=threshold, task="crmot", families=("CLEAR",)
    )

    rows: dict[str, dict[str, float | int]] = {}
    for name in sentences:
        idf = by_time.rows[name]
        clear = by_frame.rows[name]
        rows[name] = {
            "CVRIDF1": idf["IDF1"],
            "CVRMA": max(float(clear["MOTA"]), 0.0),
            "CVRMA_unclipped": clear["MOTA"],
            "CVRIDP": idf["IDP"],
            "CVRIDR": idf["IDR"],
            "IDTP": idf["IDTP"],
            "IDFP": idf["IDFP"],
            "IDFN": idf["IDFN"],
            "CLR_TP": clear["CLR_TP"],
            "CLR_FP": clear["CLR_FP"],
            "CLR_FN": clear["CLR_FN"],
            "IDSW": clear["IDSW"],
            "Views": len(sentences[name]),
        }
    scenes: dict[str, list[str]] = {}
    for name in sentences:
        scenes.setdefault(name.split("_", 1)[0], []).append(name)

    def mean_row(names: list[str]) -> dict[str, float | int]:
        return {
            "CVRIDF1": float(np.mean([rows[n]["CVRIDF1"] for n in names])),
            "CVRMA": float(np.mean([rows[n]["CVRMA"] for n in names])),
            "Sentences": len(names),
        }

    for scene, names in scenes.items():
        if scene in rows:
            raise OmniptError(f"scene name {scene!r} collides with a sentence name")
        rows[scene] = mean_row(names)
    rows[COMBINED] = mean_row(list(sentences))
    notes = [
        "CVRIDF1/CVRMA per sentence; scenes and COMBINED are means over sentences (CRTrack protocol)",
    ]
    return EvalResult(task="crmot", rows=rows, key_metrics=CRMOT_KEY_METRICS, notes=notes)


def evaluate_crmot(
    gt_dir: Path | str,
    pred_dir: Path | str,
    *,
    pred_box_format: BoxFormat = "xyxy",
    threshold: float = 0.5,
) -> EvalResult:
    """CVRIDF1 and CVRMA of a CRTrack result folder against the ground-truth folder (protocol above)."""
    return evaluate_crmot_arrays(
        load_crtrack(gt_dir, pred_dir, pred_box_format=pred_box_format), threshold=threshold
    )
