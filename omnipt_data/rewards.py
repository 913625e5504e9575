"""Verifiable rewards for the RL stages (format RL, tracking RL), and TRL-ready reward callables.

Every reward reads a model completion with :func:`omnipt_data.answers.parse_answer` and scores it
against a sample's ``solution``; every one returns a finite float and never raises on the completion
text (a malformed *solution* is a build bug and raises ``ValueError``).

Matching
--------
Frames of the prediction and the ground truth are paired by ``(view name, frame index)``; when both
hold exactly one frame they are paired whatever their keys. Inside a frame, boxes are matched one to
one with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``): for the mean IoU the total
IoU is maximised; at an IoU threshold ``t`` the number of pairs with ``IoU >= t`` is maximised (ties
broken by IoU). At most :data:`MAX_PREDICTED_BOXES` predicted boxes per frame take part in matching;
the extra ones still count as unmatched predictions.

Rewards (``n_p``, ``n_g``: predicted and ground-truth boxes of a frame; sums run over paired frames)
--------------------------------------------------------------------------------------------------------
- ``format``: the paper's ``F``: 2.0 exact format, 0.6 another box format present (or a box fragment
  unreadable), 0.4 no box fragment found (see ``format_status`` in :mod:`omnipt_data.answers`).
- mean IoU: ``IoU = sum(IoU of matched pairs) / sum(max(n_p, n_g))``; unmatched boxes on either side
  count 0; an empty answer for an empty ground truth has IoU 1.
- ``stage1``: ``R1 = F * (IoU / 2 + 0.5)``, in [0.2, 2.0]; garbage text scores the floor 0.2 (0.4 when
  the ground truth is empty, since an empty reading then has IoU 1).
- ``stage4``: ``R4 = F * IoU``, in [0, 2.0]; garbage text scores 0 on a non-empty ground truth.
- ``box_f1``: at each threshold ``t``, ``F1_t = 2 TP_t / (sum n_p + sum n_g)`` (1 when both are 0),
  averaged over the thresholds (default 0.5).
- ``identity``: IDF1-like consistency. Matched pairs at IoU >= 0.5 whose ground-truth box has a track
  id are collected over all frames (and views); a co-occurrence matrix ``C[p, g]`` counts the frames in
  which predicted id ``p`` matched ground-truth id ``g``; the best global one-to-one mapping ``M``
  (Hungarian on ``C``) gives ``identity = sum C[p, M(p)] / #pairs``. Predicted boxes without an id
  never agree. It is 1.0 when the ground truth has no track ids (not applicable) and 0.0 when nothing
  matched. It judges identities only; detection quality is ``box_f1``'s job.
- ``referring``: precision / recall / F1 of the referred targets at IoU >= 0.5 over all frames:
  ``P = TP / sum n_p``, ``R = TP / sum n_g``, ``F1 = 2PR / (P + R)``. An empty answer to a negative
  sentence (nobody referred) scores P = R = F1 = 1; an empty answer to a positive sentence scores 0; any
  box for a negative sentence scores F1 = 0.
- ``caption``: ROUGE-L F-measure on case-folded word tokens (``\\w+``), ``beta = 1.2``:
  ``F = (1 + beta^2) P R / (R + beta^2 P)`` with ``P = LCS / len(candidate)``, ``R = LCS / len(reference)``,
  best over the references. Description samples score the whole answer text against
  ``solution["references"]``; semantic MOT samples average, over the parts the ground truth has, the
  mean caption score per ground-truth track (the prediction's caption of the id mapped to it by the
  identity mapping, 0 when none), the F1 of ``(source, target, label)`` interaction triples through the
  same mapping, and the summary's score.
- ``scalar``: 1.0 when ``Answer: <value>`` equals the solution's scalar (numbers compared as numbers,
  text case-insensitively, a trailing period ignored), else 0.0.
- ``combined``: ``sum(w_k * c_k) / sum(w_k)`` over the task family's components in
  :data:`COMBINED_WEIGHTS`, with ``format`` normalised to ``F / 2``; ``identity`` is left out when the
  ground truth has no track ids, ``caption`` when it has no text to compare. A solution may name another
  reward in ``solution["reward"]`` (e.g. ``"stage1"`` for format-RL samples) to use instead.
  Families (:func:`task_family`, from keywords of ``solution["task"]``) and their weights:

  ==========  ====================================================  =====================================
  family      task names containing                                 weights
  ==========  ====================================================  =====================================
  tracking    mot, track, position                                  format .2, box_f1 .4, identity .4
  referring   refer, rmot (crmot too)                               format .2, referring .5, identity .3
  semantic    semantic, smot                                        format .2, box_f1 .3, identity .2,
                                                                    caption .3
  text        caption, descri                                       caption 1
  scalar      count, yes, verif, reid, attribute, question, vqa,    scalar 1
              retriev
  boxes       anything else (grounding, detection)                  format .2, box_f1 .8
  ==========  ====================================================  =====================================

Solutions
---------
:func:`make_solution` builds the JSON-serialisable dict that RL samples carry: ``task``, ``box_format``,
``image_size`` (the resized ``[w, h]``), ``answer`` (:func:`omnipt_data.answers.answer_to_dict` of the
ground truth, quantized exactly as its rendered text, so the rendered ground truth scores the maximum),
``references`` and ``reward``. A JSON string of that dict is accepted too (a safe column type when
solutions of different tasks share one Arrow table).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import orjson

from omnipt_data.answers import (
    DEFAULT_BOX_FORMAT,
    Answer,
    Box,
    ParsedAnswer,
    Size,
    answer_from_dict,
    answer_region,
    answer_to_dict,
    normalize_box_format,
    parse_answer,
    parse_scalar,
    quantize_answer,
)

log = logging.getLogger(__name__)

FORMAT_SCORES: dict[str, float] = {"exact": 2.0, "other": 0.6, "none": 0.4}
MAX_FORMAT_SCORE = FORMAT_SCORES["exact"]
MATCH_IOU = 0.5
ROUGE_BETA = 1.2
MAX_PREDICTED_BOXES = 1000
MAX_CAPTION_TOKENS = 1000

# Component weights of the ``combined`` reward per task family (renormalised over applicable parts).
COMBINED_WEIGHTS: dict[str, dict[str, float]] = {
    "boxes": {"format": 0.2, "box_f1": 0.8},
    "tracking": {"format": 0.2, "box_f1": 0.4, "identity": 0.4},
    "referring": {"format": 0.2, "referring": 0.5, "identity": 0.3},
    "semantic": {"format": 0.2, "box_f1": 0.3, "identity": 0.2, "caption": 0.3},
    "text": {"caption": 1.0},
    "scalar": {"scalar": 1.0},
}

FramesLike = Answer | Mapping[Hashable, Sequence[Box]] | Sequence[Box]
RewardFunction = Callable[..., list[float]]


# --------------------------------------------------------------------------------------------------
# Solutions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Solution:
    """The ground truth of one RL sample, as the rewards read it."""

    task: str
    box_format: str
    image_size: Size | None
    answer: Answer
    references: tuple[str, ...] = ()
    reward: str | None = None


def make_solution(
    answer: Answer,
    *,
    task: str,
    box_format: str = DEFAULT_BOX_FORMAT,
    image_size: Size | None,
    references: Iterable[str] = (),
    reward: str | None = None,
) -> dict[str, Any]:
    """The ``solution`` dict of an RL sample; ``answer`` is in resized-image pixels, ``image_size`` (w, h).

    The answer is stored quantized as :func:`omnipt_data.answers.render_answer` writes it, so the
    rendered ground truth scores each reward's maximum.
    """
    fmt = normalize_box_format(box_format)
    if reward is not None and reward not in _COMPONENTS and reward != "combined":
        raise ValueError(f"unknown reward {reward!r} (expected one of {', '.join(REWARD_NAMES)})")
    return {
        "task": task,
        "box_format": fmt,
        "image_size": None if image_size is None else [image_size[0], image_size[1]],
        "answer": answer_to_dict(quantize_answer(answer, fmt, image_size)),
        "references": [str(text) for text in references],
        "reward": reward,
    }


def load_solution(solution: Solution | Mapping[str, Any] | str | bytes) -> Solution:
    """A :class:`Solution` from its dict or JSON text; raises ``ValueError`` when it is malformed."""
    if isinstance(solution, Solution):
        return solution
    if isinstance(solution, str | bytes):
        return _solution_from_json(solution)
    if not isinstance(solution, Mapping):
        raise ValueError(f"a solution must be a dict or JSON text (got {type(solution).__name__})")
    try:
        return Solution(
            task=str(solution.get("task") or ""),
            box_format=normalize_box_format(solution.get("box_format") or DEFAULT_BOX_FORMAT),
            image_size=_solution_size(solution.get("image_size")),
            answer=answer_from_dict(solution.get("answer") or {}),
            references=tuple(str(text) for text in solution.get("references") or ()),
            reward=solution.get("reward") or None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"malformed solution ({error}); build it with rewards.make_solution") from error


@lru_cache(maxsize=256)
def _solution_from_json(text: str | bytes) -> Solution:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"solution is not valid JSON ({error})") from error
    return load_solution(data)


def _solution_size(value: Any) -> Size | None:
    if value is None:
        return None
    width, height = (float(v) for v in value)
    if not (width > 0 and height > 0 and math.isfinite(width * height)):
        raise ValueError(f"image_size must be two positive numbers (got {value!r})")
    return (width, height)


# --------------------------------------------------------------------------------------------------
# Geometry and matching
# --------------------------------------------------------------------------------------------------


def iou_matrix(pred: Sequence[Box], gt: Sequence[Box]) -> np.ndarray:
    """IoU of every predicted box (rows) with every ground-truth box (columns); empty boxes give 0."""
    a, b = _corners(pred), _corners(gt)
    with np.errstate(all="ignore"):
        width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
        height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
        inter = np.clip(width, 0, None) * np.clip(height, 0, None)
        union = _areas(a)[:, None] + _areas(b)[None, :] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return np.nan_to_num(np.clip(iou, 0.0, 1.0))


def _corners(boxes: Sequence[Box]) -> np.ndarray:
    return np.array([box.corners for box in boxes], dtype=np.float64).reshape(-1, 4)


def _areas(corners: np.ndarray) -> np.ndarray:
    return np.clip(corners[:, 2] - corners[:, 0], 0, None) * np.clip(corners[:, 3] - corners[:, 1], 0, None)


def match_boxes(iou: np.ndarray, threshold: float | None = None) -> list[tuple[int, int, float]]:
    """Hungarian pairs ``(pred index, gt index, IoU)``: max total IoU, or max pairs with IoU >= threshold."""
    from scipy.optimize import linear_sum_assignment  # here: the CLI starts without SciPy

    if iou.size == 0:
        return []
    weights = iou if threshold is None else _count_first_weights(iou, threshold)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    floor = 0.0 if threshold is None else threshold
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= floor]


def _count_first_weights(iou: np.ndarray, threshold: float) -> np.ndarray:
    """Weights whose maximum has the most pairs at IoU >= threshold, then the highest IoU among them."""
    return np.where(iou >= threshold, 1.0 + iou / (min(iou.shape) + 1), 0.0)


@dataclass(slots=True)
class _FramePair:
    """The boxes of one frame on both sides; ``pred_count`` counts predictions beyond the matching cap."""

    pred: list[Box]
    gt: list[Box]
    pred_count: int


def _frame_map(frames: FramesLike) -> dict[Hashable, list[Box]]:
    if isinstance(frames, Answer):
        merged: dict[Hashable, list[Box]] = {}
        for key, boxes in frames.frame_items():
            merged.setdefault(key, []).extend(boxes)
        return merged
    if isinstance(frames, Mapping):
        return {key: list(boxes) for key, boxes in frames.items()}
    return {(None, None): list(frames)}


def _paired_frames(pred: FramesLike, gt: FramesLike) -> list[_FramePair]:
    pred_map, gt_map = _frame_map(pred), _frame_map(gt)
    if len(pred_map) == 1 and len(gt_map) == 1:
        pairs = [(next(iter(pred_map.values())), next(iter(gt_map.values())))]
    else:
        keys = list(gt_map) + [key for key in pred_map if key not in gt_map]
        pairs = [(pred_map.get(key, []), gt_map.get(key, [])) for key in keys]
    return [_FramePair(p[:MAX_PREDICTED_BOXES], g, len(p)) for p, g in pairs]


def _frame_matches(pair: _FramePair, threshold: float | None) -> list[tuple[int, int, float]]:
    if not pair.pred or not pair.gt:
        return []
    return match_boxes(iou_matrix(pair.pred, pair.gt), threshold)


# --------------------------------------------------------------------------------------------------
# Box, identity and referring metrics
# --------------------------------------------------------------------------------------------------


def mean_matched_iou(pred: FramesLike, gt: FramesLike) -> float:
    """``sum(IoU of Hungarian-matched pairs) / sum over frames of max(n_pred, n_gt)``; 1.0 if both empty."""
    total, denominator = 0.0, 0
    for pair in _paired_frames(pred, gt):
        total += sum(iou for _, _, iou in _frame_matches(pair, None))
        denominator += max(pair.pred_count, len(pair.gt))
    return 1.0 if denominator == 0 else total / denominator


def box_f1(pred: FramesLike, gt: FramesLike, thresholds: Sequence[float] = (MATCH_IOU,)) -> float:
    """``mean over t of 2 TP_t / (n_pred + n_gt)`` with Hungarian matching at IoU >= t; 1.0 if both empty."""
    if not thresholds:
        raise ValueError("box_f1 needs at least one IoU threshold")
    pairs = _paired_frames(pred, gt)
    counts = sum(pair.pred_count + len(pair.gt) for pair in pairs)
    if counts == 0:
        return 1.0
    scores = [2 * sum(len(_frame_matches(pair, t)) for pair in pairs) / counts for t in thresholds]
    return float(np.mean(scores))


@dataclass(frozen=True, slots=True)
class PrecisionRecall:
    """Precision, recall and F1 of referred targets."""

    precision: float
    recall: float
    f1: float


def referring_precision_recall(
    pred: FramesLike, gt: FramesLike, threshold: float = MATCH_IOU
) -> PrecisionRecall:
    """``P = TP / n_pred``, ``R = TP / n_gt``, ``F1 = 2PR / (P + R)`` over all frames at IoU >= threshold.

    An empty side is vacuously perfect on its own ratio: nothing predicted for nobody referred scores
    1, 1, 1; nothing predicted for a referred target gives P = 1, R = 0, F1 = 0; boxes for nobody
    referred give P = 0, R = 1, F1 = 0.
    """
    pairs = _paired_frames(pred, gt)
    n_pred = sum(pair.pred_count for pair in pairs)
    n_gt = sum(len(pair.gt) for pair in pairs)
    true_positives = sum(len(_frame_matches(pair, threshold)) for pair in pairs)
    precision = true_positives / n_pred if n_pred else 1.0
    recall = true_positives / n_gt if n_gt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return PrecisionRecall(precision, recall, f1)


def identity_consistency(
    pred_frames: FramesLike, gt_frames: FramesLike, threshold: float = MATCH_IOU
) -> float:
    """IDF1-like id consistency: ``sum C[p, M(p)] / #matched pairs`` (see the module docstring)."""
    gt_map = _frame_map(gt_frames)
    if not any(box.track_id is not None for boxes in gt_map.values() for box in boxes):
        return 1.0
    pairs = _id_pairs(pred_frames, gt_frames, threshold)
    if not pairs:
        return 0.0
    mapping = _best_id_mapping(pairs)
    agreeing = sum(1 for p, g in pairs if p is not None and mapping.get(p) == g)
    return agreeing / len(pairs)


def _id_pairs(pred: FramesLike, gt: FramesLike, threshold: float) -> list[tuple[int | None, int]]:
    """``(predicted id, ground-truth id)`` of every matched pair whose ground-truth box has an id."""
    pairs: list[tuple[int | None, int]] = []
    for pair in _paired_frames(pred, gt):
        for r, c, _ in _frame_matches(pair, threshold):
            gt_id = pair.gt[c].track_id
            if gt_id is not None:
                pairs.append((pair.pred[r].track_id, gt_id))
    return pairs


def _best_id_mapping(pairs: Sequence[tuple[int | None, int]]) -> dict[int, int]:
    """The one-to-one predicted-id -> gt-id mapping that maximises co-occurring matched frames."""
    counts: dict[tuple[int, int], int] = {}
    for p, g in pairs:
        if p is not None:
            counts[(p, g)] = counts.get((p, g), 0) + 1
    if not counts:
        return {}
    pred_ids = sorted({p for p, _ in counts})
    gt_ids = sorted({g for _, g in counts})
    pred_row = {p: i for i, p in enumerate(pred_ids)}
    gt_column = {g: j for j, g in enumerate(gt_ids)}
    matrix = np.zeros((len(pred_ids), len(gt_ids)))
    for (p, g), count in counts.items():
        matrix[pred_row[p], gt_column[g]] = count
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(matrix, maximize=True)
    return {pred_ids[r]: gt_ids[c] for r, c in zip(rows, cols, strict=True) if matrix[r, c] > 0}


# --------------------------------------------------------------------------------------------------
# Text metrics
# --------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.casefold())[:MAX_CAPTION_TOKENS] if isinstance(text, str) else []


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: Sequence[str], reference: Sequence[str], beta: float = ROUGE_BETA) -> float:
    """ROUGE-L F-measure of two token lists: ``(1 + b^2) P R / (R + b^2 P)`` from their LCS."""
    lcs = _lcs_length(candidate, reference) if candidate and reference else 0
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return (1 + beta**2) * precision * recall / (recall + beta**2 * precision)


def caption_score(pred_text: str, ref_texts: str | Iterable[str], beta: float = ROUGE_BETA) -> float:
    """The best ROUGE-L F-measure (beta 1.2, case-folded ``\\w+`` tokens) of a caption over references."""
    references = [ref_texts] if isinstance(ref_texts, str) else list(ref_texts)
    candidate = _tokens(pred_text)
    return max((rouge_l(candidate, _tokens(ref), beta) for ref in references), default=0.0)


def semantic_text_score(pred: Answer, gt: Answer, threshold: float = MATCH_IOU) -> float:
    """Mean of the caption, interaction and summary scores the ground truth has (1.0 if it has none)."""
    to_gt = _best_id_mapping(_id_pairs(pred, gt, threshold))
    from_gt = {g: p for p, g in to_gt.items()}
    parts: list[float] = []
    if gt.captions:
        per_track = [
            caption_score(pred.captions.get(from_gt.get(g), ""), text) for g, text in gt.captions.items()
        ]
        parts.append(sum(per_track) / len(per_track))
    if gt.interactions:
        parts.append(_interaction_f1(pred, gt, to_gt))
    if gt.summary:
        parts.append(caption_score(pred.summary or "", gt.summary))
    return sum(parts) / len(parts) if parts else 1.0


def _interaction_f1(pred: Answer, gt: Answer, to_gt: Mapping[int, int]) -> float:
    gt_triples = {(s, t, label) for (s, t), labels in gt.interactions.items() for label in labels}
    pred_triples = {
        (to_gt.get(s), to_gt.get(t), label)
        for (s, t), labels in pred.interactions.items()
        for label in labels
    }
    if not gt_triples and not pred_triples:
        return 1.0
    hits = len(gt_triples & pred_triples)
    return 2 * hits / (len(gt_triples) + len(pred_triples))


def _normalized_scalar(value: str) -> str | float:
    text = value.strip().rstrip(".!").strip().casefold()
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


# --------------------------------------------------------------------------------------------------
# Rewards on completion text
# --------------------------------------------------------------------------------------------------


_CACHED_TEXT_CHARS = 65536


@lru_cache(maxsize=128)
def _parse_cached(text: str, box_format: str, image_size: Size | None) -> ParsedAnswer:
    return parse_answer(text, box_format, image_size)


class _Scoring:
    """One completion against one solution; the completion is parsed once for all components."""

    def __init__(self, text: str, solution: Solution):
        self.text = text
        self.solution = solution
        self.gt = solution.answer

    @cached_property
    def parsed(self) -> ParsedAnswer:
        solution = self.solution
        if len(self.text) > _CACHED_TEXT_CHARS:
            return parse_answer(self.text, solution.box_format, solution.image_size)
        return _parse_cached(self.text, solution.box_format, solution.image_size)

    @property
    def format(self) -> float:
        return FORMAT_SCORES[self.parsed.format_status]

    @cached_property
    def mean_iou(self) -> float:
        return mean_matched_iou(self.parsed.answer, self.gt)


def format_score(text: str, box_format: str = DEFAULT_BOX_FORMAT, image_size: Size | None = None) -> float:
    """The paper's ``F``: 2.0 exact format, 0.6 another box format, 0.4 no box fragment."""
    return FORMAT_SCORES[parse_answer(text, box_format, image_size).format_status]


def stage1_reward(text: str, solution: Solution | Mapping[str, Any] | str) -> float:
    """Format-RL reward ``F * (IoU / 2 + 0.5)`` (mean matched IoU), in [0.2, 2.0]."""
    return score("stage1", text, solution)


def stage4_reward(text: str, solution: Solution | Mapping[str, Any] | str) -> float:
    """Tracking-RL reward ``F * IoU`` (mean matched IoU), in [0, 2.0]."""
    return score("stage4", text, solution)


def _caption_component(scoring: _Scoring) -> float:
    if scoring.solution.references:
        return caption_score(answer_region(scoring.text), scoring.solution.references)
    return semantic_text_score(scoring.parsed.answer, scoring.gt)


def _scalar_component(scoring: _Scoring) -> float:
    given = parse_scalar(scoring.text)
    expected = scoring.gt.scalar or ""
    return float(given is not None and _normalized_scalar(given) == _normalized_scalar(expected))


def _combined_component(scoring: _Scoring) -> float:
    solution = scoring.solution
    if solution.reward and solution.reward != "combined":
        return _evaluate(solution.reward, scoring)
    weights = combined_weights(solution)
    total = 0.0
    for name, weight in weights.items():
        value = _evaluate(name, scoring)
        total += weight * (value / MAX_FORMAT_SCORE if name == "format" else value)
    return total / sum(weights.values())


_COMPONENTS: dict[str, Callable[[_Scoring], float]] = {
    "format": lambda c: c.format,
    "stage1": lambda c: c.format * (c.mean_iou / 2 + 0.5),
    "stage4": lambda c: c.format * c.mean_iou,
    "box_f1": lambda c: box_f1(c.parsed.answer, c.gt),
    "identity": lambda c: identity_consistency(c.parsed.answer, c.gt),
    "referring": lambda c: referring_precision_recall(c.parsed.answer, c.gt).f1,
    "caption": _caption_component,
    "scalar": _scalar_component,
    "combined": _combined_component,
}
REWARD_NAMES: tuple[str, ...] = tuple(_COMPONENTS)


def _evaluate(name: str, scoring: _Scoring) -> float:
    value = float(_COMPONENTS[name](scoring))
    return value if math.isfinite(value) else 0.0


def task_family(task: str) -> str:
    """The reward family of a task name: semantic, referring, tracking, text, scalar or boxes."""
    name = task.casefold()
    if "semantic" in name or "smot" in name:
        return "semantic"
    if "refer" in name or "rmot" in name:
        return "referring"
    if any(key in name for key in ("mot", "track", "position")):
        return "tracking"
    if any(key in name for key in ("caption", "descri")):
        return "text"
    if any(
        key in name for key in ("count", "yes", "verif", "reid", "attribute", "question", "vqa", "retriev")
    ):
        return "scalar"
    return "boxes"


def combined_weights(solution: Solution) -> dict[str, float]:
    """The weights ``combined`` applies to a solution: its family's, less the parts that do not apply."""
    weights = dict(COMBINED_WEIGHTS[task_family(solution.task)])
    answer = solution.answer
    if len(weights) > 1 and not any(box.track_id is not None for box in answer.boxes()):
        weights.pop("identity", None)
    if len(weights) > 1 and not _has_text(solution):
        weights.pop("caption", None)
    return weights


def score(task_or_reward: str, completion: Any, solution: Solution | Mapping[str, Any] | str) -> float:
    """One completion's reward: a reward name from :data:`REWARD_NAMES`, or a task name for ``combined``.

    ``completion`` is text or a conversational completion (see :func:`completion_text`).
    """
    loaded = load_solution(solution)
    if task_or_reward not in _COMPONENTS:
        loaded, task_or_reward = replace(loaded, task=task_or_reward), "combined"
    _check_solution(task_or_reward, loaded)
    return _evaluate(task_or_reward, _Scoring(completion_text(completion), loaded))


def _needed_components(name: str, solution: Solution) -> list[str]:
    if name != "combined":
        return [name]
    if solution.reward and solution.reward != "combined":
        return [solution.reward]
    return list(combined_weights(solution))


def _check_solution(name: str, solution: Solution) -> None:
    """Raise ``ValueError`` when a reward cannot score this solution (a build bug, not a model error)."""
    for needed in _needed_components(name, solution):
        if needed not in _COMPONENTS:
            raise ValueError(f"unknown reward {needed!r} (expected one of {', '.join(REWARD_NAMES)})")
        if needed == "scalar" and solution.answer.scalar is None:
            raise ValueError(f"the solution of task {solution.task!r} has no scalar answer to compare with")
        if needed == "caption" and not _has_text(solution):
            raise ValueError(
                f"the solution of task {solution.task!r} has no references or semantics to compare"
            )


def _has_text(solution: Solution) -> bool:
    answer = solution.answer
    return bool(solution.references or answer.captions or answer.interactions or answer.summary)


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, a message dict, or a list of messages (assistant ones joined).

    Message ``content`` may be a string or a list of parts (``{"type": "text", "text": ...}``); anything
    unreadable gives ``""``.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        replies = [m for m in messages if m.get("role") in (None, "assistant")] or messages
        return "\n".join(_content_text(m.get("content")) for m in replies)
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text") for p in content if isinstance(p, Mapping)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


# --------------------------------------------------------------------------------------------------
# TRL reward callables
# --------------------------------------------------------------------------------------------------


def _trl_reward(name: str) -> RewardFunction:
    def reward(
        prompts: Sequence[Any] | None = None, completions: Sequence[Any] | None = None, **kwargs: Any
    ) -> list[float]:
        items = list(completions or [])
        solutions = kwargs.get("solution")
        if solutions is None:
            if name != "format":
                raise ValueError(f"the {name!r} reward needs a `solution` column in the dataset")
            solutions = [{}] * len(items)
        if len(solutions) != len(items):
            raise ValueError(f"{len(items)} completions but {len(solutions)} solutions")
        loaded = [load_solution(s) for s in solutions]
        for solution in loaded:
            _check_solution(name, solution)
        return [_guarded(name, completion_text(c), s) for c, s in zip(items, loaded, strict=True)]

    reward.__name__ = reward.__qualname__ = f"omnipt_{name}"
    reward.__doc__ = (
        f"TRL reward ``{name}``: ``f(prompts, completions, solution=[...], **kwargs) -> list[float]``."
    )
    return reward


def _guarded(name: str, text: str, solution: Solution) -> float:
    """The reward, or 0.0 (logged) should scoring a completion fail unexpectedly during training."""
    try:
        return _evaluate(name, _Scoring(text, solution))
    except Exception:
        log.warning(
            "reward %s failed on a completion of %d characters; scoring 0", name, len(text), exc_info=True
        )
        return 0.0


# TRL GRPOTrainer reward functions by name: ``GRPOTrainer(reward_funcs=[REWARDS["combined"]], ...)``.
# Each is called as ``f(prompts=..., completions=..., solution=[...], **other columns)``.
REWARDS: dict[str, RewardFunction] = {name: _trl_reward(name) for name in REWARD_NAMES}
