"""CRTrack cross-view referring MOT metrics: CVRIDF1 and CVRMA, following the CRTrack authors' evaluation.

Layout (the released ``CRMOT_evaluation`` data): ground truth ``<gt>/<Scene>_<sentence>/gt/View<k>.txt``
(``frame,id,x,y,w,h,...``, ids shared across the views of a scene) and results
``<pred>/<Scene>_<sentence>/View<k>.txt``. The released CRTracker results hold corners
``frame,id,x1,y1,x2,y2,...`` (their widths and heights match the ground truth only when read that way),
which is the default ``pred_box_format``; ``"xywh"`` reads MOTChallenge-style results. A view missing from
a result folder counts as an empty result.

Protocol, per sentence (one ``<Scene>_<sentence>`` folder; views in ``View<k>`` order), as the authors'
``cv_test/prepare_cross_view_eval.py`` builds two MOTChallenge files and their MATLAB devkit
(``matlab_devkit/evaluateTracking.m``) scores them:

- **CVRIDF1**: the views are concatenated in time into one sequence. View ``m`` is shifted by the sum,
  over the views before it, of ``1 +`` that view's last frame (over its ground truth and its results);
  CVRIDF1 is the devkit's IDF1 (IoU >= 0.5, one global identity matching) on that sequence.
- **CVRMA**: the views are interleaved: frame ``f`` of view ``m`` (0-based view index, ``V`` views, every
  ground-truth view file counted) becomes frame ``f * V + m``; CVRMA is the devkit's MOTA (IoU >= 0.5) on
  that sequence, clipped at 0 (a negative MOTA counts as 0; no ground truth at all gives 0). Under the
  devkit's ID-switch rule an identity change counts only when the object is annotated in the previous
  frame, which in the interleaved sequence is usually another view (see :mod:`.devkit`).
- The authors' preparation quirks are kept: a view file holding exactly one row is read by
  ``np.loadtxt`` as one dimension and skipped (no rows, and no part in the frame shift); boxes are
  written with ``%.2f`` (result corners become ``x, y, x2 - x, y2 - y`` first) and read back; the devkit
  drops frames below 1 and result rows after the last ground-truth frame of the built sequence (so, for
  CVRIDF1, results in views after the last view that has ground truth are not counted); the ground truth
  is written with flag -1, so no row is ignored and no class filtering applies. (Run with benchmark
  MOT16, the devkit also passes the results through ``preprocessResult.m``, whose ``dlmwrite`` keeps
  five significant digits; that changes no figure of Gate2 or Circle and is not reproduced.)

A scene's score is the mean over its sentences (the scene is the folder name up to the first ``_``), and
``COMBINED`` is the mean over all sentences (the authors' "All scenes" row), for both metrics. The other
counts of a sentence row (``IDSW``, ``CLR_FP``, ...) are the devkit's, from the interleaved sequence
(CLEAR) and the concatenated one (``IDTP``, ``IDFP``, ``IDFN``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.evaluate.devkit import PROTOCOL, clear_mot, id_measures
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


def written_2f(values: np.ndarray) -> np.ndarray:
    """The numbers ``'%.2f' % v`` writes, read back: correctly rounded decimals, which ``np.round`` (a
    scaled product) misses when the product lands on a tie."""
    values = np.asarray(values, dtype=np.float64)
    out = np.round(values, 2)
    scaled = values * 100.0
    near_tie = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6
    for index in zip(*np.nonzero(near_tie), strict=True):
        out[index] = float(f"{values[index]:.2f}")
    return out


def _one_row_dropped(rows: np.ndarray) -> np.ndarray:
    """The authors' reader skips a file of exactly one row (``np.loadtxt`` gives it one dimension)."""
    return rows[:0] if len(rows) == 1 else rows


def _devkit_sequence(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-decimal boxes, frames >= 1, results clipped to the last ground-truth frame."""
    gt = gt[gt[:, 0] >= 1].copy()
    pred = pred[pred[:, 0] >= 1].copy()
    gt[:, 2:6] = written_2f(gt[:, 2:6])
    pred[:, 2:6] = written_2f(pred[:, 2:6])
    last = int(gt[:, 0].max()) if len(gt) else 0
    return gt, pred[pred[:, 0] <= last]


def evaluate_crmot_arrays(
    sentences: Mapping[str, Mapping[str, ViewArrays]], *, threshold: float = 0.5
) -> EvalResult:
    """CVRIDF1 and CVRMA from ``{sentence: {view: (gt, pred)}}`` with rows ``frame,id,x,y,w,h`` (``xywh``,
    1-based frames); views are taken in the mapping's order. Rows: each sentence, each scene, ``COMBINED``."""
    if not sentences:
        raise OmniptError("no sentences to evaluate")
    rows: dict[str, dict[str, float | int]] = {}
    skipped = 0
    for name, views in sentences.items():
        if not views:
            raise OmniptError(f"sentence {name!r} has no views")
        arrays = []
        for g, p in views.values():
            g = np.asarray(g, float)[:, :6].reshape(-1, 6)
            p = np.asarray(p, float)[:, :6].reshape(-1, 6)
            skipped += (len(g) == 1) + (len(p) == 1)
            arrays.append((_one_row_dropped(g), _one_row_dropped(p)))
        idf = id_measures(*_devkit_sequence(*_concatenated(arrays)), threshold=threshold)
        clear = clear_mot(*_devkit_sequence(*_interleaved(arrays)), threshold=threshold)
        mota = clear["MOTA"] if clear["CLR_TP"] + clear["CLR_FN"] else 0.0
        rows[name] = {
            "CVRIDF1": idf["IDF1"],
            "CVRMA": max(float(mota), 0.0),
            "CVRMA_unclipped": mota,
            "CVRIDP": idf["IDP"],
            "CVRIDR": idf["IDR"],
            "IDTP": idf["IDTP"],
            "IDFP": idf["IDFP"],
            "IDFN": idf["IDFN"],
            "CLR_TP": clear["CLR_TP"],
            "CLR_FP": clear["CLR_FP"],
            "CLR_FN": clear["CLR_FN"],
            "IDSW": clear["IDSW"],
            "MOTP": clear["MOTP"],
            "Frag": clear["Frag"],
            "Views": len(views),
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
    if skipped:
        notes.append(f"{skipped} one-row view files skipped, as the authors' preparation does")
    protocol = dict.fromkeys(("CVRIDF1", "CVRMA", "CVRMA_unclipped", "CVRIDP", "CVRIDR"), PROTOCOL)
    protocol.update(CLEAR=PROTOCOL, Identity=PROTOCOL)
    return EvalResult(task="crmot", rows=rows, key_metrics=CRMOT_KEY_METRICS, notes=notes, protocol=protocol)


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
