"""Semantic-MOT text metrics (BenSMOT): BLEU-1..4, METEOR, ROUGE-L, CIDEr-D for clip summaries and
per-track captions, and interaction precision/recall/F1 over ``(src, dst, label)`` triples.

Everything runs offline with no data files. Inputs are aligned lists: ``references[i]`` is the list of
reference texts of item ``i`` (a video's summary, or one track's caption) and ``candidates[i]`` its
generated text. Texts are tokenised first:

- ``"coco"`` (default) approximates the PTB tokenisation coco-caption applies: lower case, clitics split
  (``man's`` -> ``man 's``, ``don't`` -> ``do n't``), punctuation dropped, hyphenated words and decimals
  kept whole;
- ``"whitespace"`` splits the raw text on white space, case and punctuation kept (what BenSMOT's
  released script feeds coco-caption's ROUGE-L and CIDEr scorers, which it calls without the tokenizer).

Definitions (coco-caption's, unless noted):

- **BLEU-n** (corpus level): clipped n-gram matches and candidate n-gram counts are summed over all
  items; ``BLEU-n = BP * (prod_{k<=n} p_k)^(1/n)`` with ``p_k = (matches_k + 1e-15) / (guesses_k + 1e-9)``
  and brevity penalty ``BP = exp(1 - r/c)`` when ``c < r``, where ``c`` is the total candidate length and
  ``r`` the sum of each item's *closest* reference length (ties: the shorter). BenSMOT's released script
  instead passes untokenised strings to NLTK's ``corpus_bleu``, which then counts character n-grams, so
  its BLEU is not comparable with this word-level BLEU.
- **METEOR** (exact matching only): the candidate is aligned to each reference on identical tokens (most
  matches; among the matches, a greedy left-to-right choice that prefers the reference position
  continuing the current chunk). ``P = m/|cand|``, ``R = m/|ref|``, ``Fmean = P R / (alpha P + (1-alpha) R)``
  with alpha = 0.9, penalty ``gamma (chunks/m)^beta`` with gamma = 0.5, beta = 3, score
  ``Fmean (1 - penalty)``; the best reference counts and the corpus score is the mean over items. Stem
  and WordNet synonym matching (METEOR's other modules) are not applied: no WordNet data is available
  offline, so scores are lower than NLTK's or METEOR 1.5's where captions use synonyms or inflections.
- **ROUGE-L**: ``LCS``-based ``P_lcs = LCS/|cand|`` and ``R_lcs = LCS/|ref|``, each maximised over the
  references, ``F = (1 + beta^2) P R / (R + beta^2 P)`` with beta = 1.2; mean over items.
- **CIDEr-D**: n-grams 1..4 weighted by TF-IDF, ``tf * (log N - log max(1, df))`` with ``N`` the number of
  items and ``df`` the number of items whose references contain the n-gram (document frequencies come
  from the references of the evaluated set); per n, the similarity to a reference is
  ``sum_g min(c_g, r_g) r_g / (|c| |r|)`` (clipped candidate weights) times the length penalty
  ``exp(-(l_c - l_r)^2 / (2 sigma^2))``, sigma = 6 (``l`` counts bigrams, as coco-caption does); the mean
  over n, averaged over the references, times 10; mean over items. With a single item ``log N = 0`` and
  every weight is 0, so CIDEr-D needs a set of several items.
- **Interactions**: micro precision, recall and F1 over ``(video, src, dst, label)`` triples (the same as
  BenSMOT's micro-averaged multi-label scores over aligned pairs). Track ids must already be in the
  ground truth's id space.

The ``bensmot`` protocol (:func:`bensmot_caption_metrics`) computes what SMOTer's released script
(``eval_vu.py``) prints for BenSMOT summaries and captions, with its inputs as it passes them:

- **BLEU**: NLTK's ``corpus_bleu(gts, preds)`` on the raw strings, so over *characters* (spaces and
  punctuation included, case kept): clipped character n-gram counts summed over items, each item's
  n-gram total counted as at least 1, ``BLEU = BP exp(sum_n log(p_n) / 4)`` for n = 1..4 with
  ``BP = exp(1 - r/c)`` when ``c <= r`` (``r``: the closest reference length, the shorter on ties; 0
  when ``c = 0``); 0 when no character matches; an order with no match counts as
  ``sys.float_info.min`` (NLTK's method0), which leaves the score near 0.
- **METEOR**: NLTK's ``meteor_score`` against the *first* reference, on the texts with ``,`` and ``.``
  removed and split on single spaces, lower-cased: hypothesis words matched from the last to the first,
  each to the last free identical reference word, then the same on Porter stems; ``P``, ``R``,
  ``Fmean = P R / (0.9 P + 0.1 R)``, chunks counted over the matches in hypothesis order, score
  ``Fmean (1 - 0.5 (chunks / matches)^3)``; the mean over items. NLTK's third stage, WordNet synonyms,
  needs the WordNet data and is not applied (scores are lower where captions use synonyms).
- **ROUGE-L**: coco-caption's scorer on the raw strings split on single spaces (as defined above).
- **CIDEr**: coco-caption's CIDEr-D on the raw strings split on white space (case and punctuation kept).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from omnipt_data.errors import InputError, OmniptError
from omnipt_data.evaluate.report import COMBINED, EvalResult
from omnipt_data.interactions import synset_of

Tokenizer = Literal["coco", "whitespace"]
Triple = tuple[Hashable, Hashable, str]
CAPTION_KEY_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
BENSMOT_KEY_METRICS = ("BLEU", "METEOR", "ROUGE-L", "CIDEr")
CAPTION_PROTOCOLS = ("coco-caption", "bensmot")
INTERACTION_KEY_METRICS = ("precision", "recall", "f1", "tp", "fp", "fn")

_CLITIC = re.compile(r"(?i)(?<=[^\W_])('(?:s|re|ve|ll|d|m)|n't)\b")
_TOKEN = re.compile(r"n't|'[^\W_]+|[^\W_]+(?:[-.][^\W_]+)*")


def tokenize(text: str, mode: Tokenizer = "coco") -> list[str]:
    """Split a text into tokens (see the module docstring for the two modes)."""
    if mode == "whitespace":
        return text.split()
    if mode != "coco":
        raise OmniptError(f"unknown tokenizer {mode!r} (expected coco or whitespace)")
    lowered = text.lower()
    lowered = _CLITIC.sub(lambda m: " " + m.group(1), lowered)
    return _TOKEN.findall(lowered)


def _prepare(
    references: Sequence[Sequence[str]], candidates: Sequence[str], tokenizer: Tokenizer
) -> tuple[list[list[list[str]]], list[list[str]]]:
    if len(references) != len(candidates):
        raise OmniptError(f"{len(references)} reference sets for {len(candidates)} candidates")
    refs = []
    for i, group in enumerate(references):
        if isinstance(group, str):
            group = [group]
        if not group:
            raise OmniptError(f"item {i} has no reference text")
        refs.append([tokenize(text, tokenizer) for text in group])
    return refs, [tokenize(text, tokenizer) for text in candidates]


def _ngram_counts(tokens: Sequence[str], max_n: int) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for n in range(1, max_n + 1):
        for i in range(len(tokens) - n + 1):
            counts[tuple(tokens[i : i + n])] += 1
    return counts


# --- BLEU ------------------------------------------------------------------------------------------


def bleu_tokens(
    references: Sequence[Sequence[Sequence[str]]], candidates: Sequence[Sequence[str]], max_n: int = 4
) -> list[float]:
    """Corpus BLEU-1..``max_n`` of tokenised texts (coco-caption's definition, closest reference length)."""
    tiny, small = 1e-15, 1e-9
    matches = [0] * max_n
    guesses = [0] * max_n
    cand_len = 0
    ref_len = 0
    for refs, cand in zip(references, candidates, strict=True):
        max_ref: dict[tuple[str, ...], int] = {}
        for ref in refs:
            for gram, count in _ngram_counts(ref, max_n).items():
                max_ref[gram] = max(max_ref.get(gram, 0), count)
        length = len(cand)
        cand_len += length
        ref_len += min((abs(len(ref) - length), len(ref)) for ref in refs)[1]
        for gram, count in _ngram_counts(cand, max_n).items():
            matches[len(gram) - 1] += min(count, max_ref.get(gram, 0))
        for k in range(max_n):
            guesses[k] += max(0, length - k)
    scores = []
    product = 1.0
    ratio = (cand_len + tiny) / (ref_len + small)
    for k in range(max_n):
        product *= (matches[k] + tiny) / (guesses[k] + small)
        score = product ** (1.0 / (k + 1))
        if ratio < 1:
            score *= math.exp(1 - 1 / ratio)
        scores.append(score)
    return scores


def bleu(
    references: Sequence[Sequence[str]],
    candidates: Sequence[str],
    *,
    max_n: int = 4,
    tokenizer: Tokenizer = "coco",
) -> list[float]:
    """Corpus BLEU-1..``max_n`` of texts."""
    refs, cands = _prepare(references, candidates, tokenizer)
    return bleu_tokens(refs, cands, max_n)


# --- METEOR (exact match) --------------------------------------------------------------------------


def _align(hyp: Sequence[str], ref: Sequence[str]) -> list[tuple[int, int]]:
    """Exact-match alignment (hyp index, ref index): greedy, continuing the current chunk when possible."""
    positions: dict[str, list[int]] = defaultdict(list)
    for j, word in enumerate(ref):
        positions[word].append(j)
    used = [False] * len(ref)
    alignment: list[tuple[int, int]] = []
    previous: tuple[int, int] | None = None
    for i, word in enumerate(hyp):
        free = [j for j in positions.get(word, ()) if not used[j]]
        if not free:
            continue
        choice = free[0]
        if previous is not None and previous[0] == i - 1 and previous[1] + 1 in free:
            choice = previous[1] + 1
        used[choice] = True
        previous = (i, choice)
        alignment.append(previous)
    return alignment


def meteor_tokens(
    hyp: Sequence[str],
    refs: Sequence[Sequence[str]],
    *,
    alpha: float = 0.9,
    beta: float = 3.0,
    gamma: float = 0.5,
) -> float:
    """Exact-match METEOR of one tokenised candidate against its references (best reference)."""
    best = 0.0
    for ref in refs:
        alignment = _align(hyp, ref)
        m = len(alignment)
        if m == 0:
            continue
        precision = m / len(hyp)
        recall = m / len(ref)
        fmean = precision * recall / (alpha * precision + (1 - alpha) * recall)
        chunks = 1 + sum(
            1 for (h0, r0), (h1, r1) in itertools.pairwise(alignment) if not (h1 == h0 + 1 and r1 == r0 + 1)
        )
        penalty = gamma * (chunks / m) ** beta
        best = max(best, fmean * (1 - penalty))
    return best


def meteor(
    references: Sequence[Sequence[str]], candidates: Sequence[str], *, tokenizer: Tokenizer = "coco"
) -> float:
    """Mean exact-match METEOR over items."""
    refs, cands = _prepare(references, candidates, tokenizer)
    if not cands:
        return 0.0
    return sum(meteor_tokens(c, r) for r, c in zip(refs, cands, strict=True)) / len(cands)


# --- ROUGE-L ---------------------------------------------------------------------------------------


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            current[j] = previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1])
        previous = current
    return previous[-1]


def rouge_l_tokens(hyp: Sequence[str], refs: Sequence[Sequence[str]], *, beta: float = 1.2) -> float:
    """ROUGE-L F of one candidate: precision and recall each maximised over the references."""
    precisions, recalls = [], []
    for ref in refs:
        lcs = _lcs(hyp, ref)
        precisions.append(lcs / len(hyp) if hyp else 0.0)
        recalls.append(lcs / len(ref) if ref else 0.0)
    p, r = max(precisions), max(recalls)
    if p == 0 or r == 0:
        return 0.0
    return (1 + beta**2) * p * r / (r + beta**2 * p)


def rouge_l(
    references: Sequence[Sequence[str]], candidates: Sequence[str], *, tokenizer: Tokenizer = "coco"
) -> float:
    """Mean ROUGE-L over items."""
    refs, cands = _prepare(references, candidates, tokenizer)
    if not cands:
        return 0.0
    return sum(rouge_l_tokens(c, r) for r, c in zip(refs, cands, strict=True)) / len(cands)


# --- CIDEr-D ---------------------------------------------------------------------------------------


def cider_d_tokens(
    references: Sequence[Sequence[Sequence[str]]],
    candidates: Sequence[Sequence[str]],
    *,
    max_n: int = 4,
    sigma: float = 6.0,
) -> tuple[float, list[float]]:
    """CIDEr-D of tokenised texts: (corpus mean, per-item scores). Document frequencies come from the
    references of these items."""
    ref_counts = [[_ngram_counts(ref, max_n) for ref in refs] for refs in references]
    cand_counts = [_ngram_counts(cand, max_n) for cand in candidates]
    df: Counter[tuple[str, ...]] = Counter()
    for counts in ref_counts:
        df.update({gram for c in counts for gram in c})
    log_items = math.log(float(len(references))) if references else 0.0

    def vector(
        counts: Counter[tuple[str, ...]],
    ) -> tuple[list[dict[tuple[str, ...], float]], list[float], int]:
        vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(max_n)]
        norms = [0.0] * max_n
        bigrams = 0
        for gram, tf in counts.items():
            n = len(gram) - 1
            weight = float(tf) * (log_items - math.log(max(1.0, float(df[gram]))))
            vec[n][gram] = weight
            norms[n] += weight * weight
            if n == 1:
                bigrams += tf
        return vec, [math.sqrt(v) for v in norms], bigrams

    scores = []
    for refs, cand in zip(ref_counts, cand_counts, strict=True):
        vec_c, norm_c, len_c = vector(cand)
        total = 0.0
        for ref in refs:
            vec_r, norm_r, len_r = vector(ref)
            delta = float(len_c - len_r)
            per_n = []
            for n in range(max_n):
                value = sum(min(w, vec_r[n].get(g, 0.0)) * vec_r[n].get(g, 0.0) for g, w in vec_c[n].items())
                if norm_c[n] != 0 and norm_r[n] != 0:
                    value /= norm_c[n] * norm_r[n]
                value *= math.exp(-(delta**2) / (2 * sigma**2))
                per_n.append(value)
            total += sum(per_n) / max_n
        scores.append(10.0 * total / len(refs))
    mean = sum(scores) / len(scores) if scores else 0.0
    return mean, scores


def cider_d(
    references: Sequence[Sequence[str]], candidates: Sequence[str], *, tokenizer: Tokenizer = "coco"
) -> float:
    """Corpus CIDEr-D (mean over items)."""
    refs, cands = _prepare(references, candidates, tokenizer)
    return cider_d_tokens(refs, cands)[0]


# --- all caption metrics ---------------------------------------------------------------------------


def caption_metrics(
    references: Mapping[str, str | Sequence[str]],
    candidates: Mapping[str, str],
    *,
    tokenizer: Tokenizer = "coco",
) -> dict[str, float | int]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr (CIDEr-D) over the items of ``references``.

    Keys pair references with candidates; a reference without a candidate scores as an empty caption
    (counted in ``missing``), candidates without a reference are ignored.
    """
    keys = list(references)
    if not keys:
        raise OmniptError("no reference captions to evaluate")
    refs_text = [[references[k]] if isinstance(references[k], str) else list(references[k]) for k in keys]
    cands_text = [candidates.get(k, "") for k in keys]
    refs, cands = _prepare(refs_text, cands_text, tokenizer)
    bleus = bleu_tokens(refs, cands, 4)
    out: dict[str, float | int] = {f"BLEU-{n}": bleus[n - 1] for n in range(1, 5)}
    out["METEOR"] = sum(meteor_tokens(c, r) for r, c in zip(refs, cands, strict=True)) / len(cands)
    out["ROUGE-L"] = sum(rouge_l_tokens(c, r) for r, c in zip(refs, cands, strict=True)) / len(cands)
    out["CIDEr"] = cider_d_tokens(refs, cands)[0]
    out["items"] = len(keys)
    out["missing"] = sum(1 for k in keys if k not in candidates)
    return out


# --- SMOTer's released scorer (protocol "bensmot") -------------------------------------------------


def char_bleu(references: Sequence[Sequence[str]], candidates: Sequence[str], max_n: int = 4) -> float:
    """NLTK ``corpus_bleu`` of raw strings, which it reads as sequences of characters (module docstring)."""
    matches = [0] * max_n
    totals = [0] * max_n
    cand_len = ref_len = 0
    for refs, cand in zip(references, candidates, strict=True):
        cand_len += len(cand)
        ref_len += min((abs(len(ref) - len(cand)), len(ref)) for ref in refs)[1]
        for n in range(1, max_n + 1):
            counts = Counter(cand[i : i + n] for i in range(len(cand) - n + 1))
            most: dict[str, int] = {}
            for ref in refs:
                for gram, count in Counter(ref[i : i + n] for i in range(len(ref) - n + 1)).items():
                    most[gram] = max(most.get(gram, 0), count)
            matches[n - 1] += sum(min(count, most.get(gram, 0)) for gram, count in counts.items())
            totals[n - 1] += max(1, sum(counts.values()))
    if matches[0] == 0:
        return 0.0
    precisions = [m / t if m else sys.float_info.min for m, t in zip(matches, totals, strict=True)]
    penalty = 1.0 if cand_len > ref_len else 0.0 if cand_len == 0 else math.exp(1 - ref_len / cand_len)
    return penalty * math.exp(math.fsum(math.log(p) / max_n for p in precisions))


def _smoter_words(text: str) -> list[str]:
    return text.replace(",", "").replace(".", "").split(" ")


def _match_last_first(hyp: list[tuple[int, str]], ref: list[tuple[int, str]]) -> list[tuple[int, int]]:
    """NLTK METEOR's matching stage: hypothesis words from the last, each to the last equal free reference
    word; matched words leave both lists."""
    found = []
    for i in range(len(hyp) - 1, -1, -1):
        for j in range(len(ref) - 1, -1, -1):
            if hyp[i][1] == ref[j][1]:
                found.append((hyp[i][0], ref[j][0]))
                hyp.pop(i)
                ref.pop(j)
                break
    return found


def nltk_meteor(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    """NLTK's ``single_meteor_score`` with its exact and Porter-stem stages (no WordNet synonyms)."""
    from nltk.stem.porter import PorterStemmer

    stem = PorterStemmer().stem
    hyp = list(enumerate(word.lower() for word in hypothesis))
    ref = list(enumerate(word.lower() for word in reference))
    length_hyp, length_ref = len(hyp), len(ref)
    found = _match_last_first(hyp, ref)
    found += _match_last_first([(i, stem(w)) for i, w in hyp], [(j, stem(w)) for j, w in ref])
    found.sort(key=lambda pair: pair[0])
    if not found or not length_hyp or not length_ref:
        return 0.0
    precision, recall = len(found) / length_hyp, len(found) / length_ref
    fmean = precision * recall / (0.9 * precision + 0.1 * recall)
    chunks = 1 + sum(
        1 for (h0, r0), (h1, r1) in itertools.pairwise(found) if not (h1 == h0 + 1 and r1 == r0 + 1)
    )
    return (1 - 0.5 * (chunks / len(found)) ** 3) * fmean


def bensmot_caption_metrics(
    references: Mapping[str, str | Sequence[str]], candidates: Mapping[str, str]
) -> dict[str, float | int]:
    """BLEU (characters), METEOR, ROUGE-L and CIDEr as SMOTer's released script computes them (module
    docstring); keys pair the texts as in :func:`caption_metrics`."""
    keys = list(references)
    if not keys:
        raise OmniptError("no reference captions to evaluate")
    refs = [[references[k]] if isinstance(references[k], str) else list(references[k]) for k in keys]
    if any(not group for group in refs):
        raise OmniptError("an item has no reference text")
    cands = [candidates.get(k, "") for k in keys]
    out: dict[str, float | int] = {"BLEU": char_bleu(refs, cands)}
    out["METEOR"] = sum(
        nltk_meteor(_smoter_words(r[0]), _smoter_words(c)) for r, c in zip(refs, cands, strict=True)
    ) / len(keys)
    out["ROUGE-L"] = sum(
        rouge_l_tokens(c.split(" "), [ref.split(" ") for ref in r]) for r, c in zip(refs, cands, strict=True)
    ) / len(keys)
    out["CIDEr"] = cider_d_tokens([[ref.split() for ref in r] for r in refs], [c.split() for c in cands])[0]
    out["items"] = len(keys)
    out["missing"] = sum(1 for k in keys if k not in candidates)
    return out


# --- interactions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PRF:
    """Micro precision, recall and F1 with their counts."""

    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def _triples(
    items: Mapping[str, Iterable[Triple]] | Iterable[Triple], directed: bool
) -> set[tuple[Hashable, Hashable, Hashable, str]]:
    if isinstance(items, Mapping):
        pairs = [(video, triple) for video, triples in items.items() for triple in triples]
    else:
        pairs = [(None, triple) for triple in items]
    out = set()
    for video, (src, dst, label) in pairs:
        if not directed and str(dst) < str(src):
            src, dst = dst, src
        out.add((video, src, dst, str(label)))
    return out


def interaction_prf(
    predicted: Mapping[str, Iterable[Triple]] | Iterable[Triple],
    ground_truth: Mapping[str, Iterable[Triple]] | Iterable[Triple],
    *,
    directed: bool = True,
) -> PRF:
    """Micro P/R/F1 of ``(src, dst, label)`` triples, given directly or per video (``{video: triples}``).

    ``P = TP / (TP + FP)``, ``R = TP / (TP + FN)``, ``F1 = 2PR / (P + R)``; 0 where a denominator is 0.
    ``directed=False`` treats ``(a, b)`` and ``(b, a)`` as the same pair.
    """
    pred = _triples(predicted, directed)
    gt = _triples(ground_truth, directed)
    tp = len(pred & gt)
    fp = len(pred - gt)
    fn = len(gt - pred)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1, tp, fp, fn)


def _parse_pair(key: str) -> tuple[Hashable, Hashable] | None:
    parts = key.split("-")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    src: Hashable = int(parts[0]) if parts[0].isdigit() else parts[0]
    dst: Hashable = int(parts[1]) if parts[1].isdigit() else parts[1]
    return src, dst


def relations_to_triples(
    relations: Mapping[str, Sequence[str]], *, source: Path | str = "<relations>"
) -> set[Triple]:
    """BenSMOT ``{"<src>-<dst>": ["hold.v.01", ...]}`` to ``{(src, dst, label)}`` (numeric ids as ints;
    labels said in words, ``holds``, read as their synset)."""
    out: set[Triple] = set()
    for key, labels in relations.items():
        pair = _parse_pair(str(key))
        if pair is None:
            raise InputError(source, None, f"relation key {key!r}", '"<src>-<dst>" such as "1-2"')
        if isinstance(labels, str):
            labels = [labels]
        out.update((pair[0], pair[1], synset_of(str(label))) for label in labels)  # words a model says
    return out


# --- files -----------------------------------------------------------------------------------------


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"invalid JSON ({exc.msg})", "a JSON object") from None


def read_captions(path: Path | str) -> dict[str, list[str]]:
    """A captions JSON: ``{key: text}``, ``{key: [texts]}`` or nested ``{video: {track_id: text}}`` (BenSMOT's
    ``instance_caption.json``; keys become ``video/track_id``)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, None, f"top level is {type(data).__name__}", "a JSON object of captions")
    out: dict[str, list[str]] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, str):
            out[key] = [value]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        elif isinstance(value, dict):
            for sub, inner in value.items():
                add(f"{key}/{sub}", inner)
        else:
            raise InputError(
                path, None, f"value of {key!r} is {type(value).__name__}", "text or a list of texts"
            )

    for key, value in data.items():
        add(str(key), value)
    return out


def read_relations(path: Path | str) -> dict[str, set[Triple]]:
    """BenSMOT ``relation.json``: ``{video: {"<src>-<dst>": [labels]}}`` to ``{video: {(src, dst, label)}}``;
    a single video's ``{"<src>-<dst>": [labels]}`` is accepted too (video ``""``)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(path, None, f"top level is {type(data).__name__}", "a JSON object of relations")
    if all(isinstance(v, list) for v in data.values()):
        return {"": relations_to_triples(data, source=path)}
    out: dict[str, set[Triple]] = {}
    for video, relations in data.items():
        if not isinstance(relations, dict):
            raise InputError(
                path, None, f"value of {video!r} is {type(relations).__name__}", '{"<src>-<dst>": [labels]}'
            )
        out[str(video)] = relations_to_triples(relations, source=path)
    return out


def evaluate_captions(
    gt: Path | str, pred: Path | str, *, tokenizer: Tokenizer = "coco", protocol: str = "coco-caption"
) -> EvalResult:
    """Caption metrics of a predicted captions JSON against a reference JSON (see :func:`read_captions`):
    coco-caption's (``protocol="coco-caption"``) or SMOTer's released scorer (``"bensmot"``)."""
    if protocol not in CAPTION_PROTOCOLS:
        raise OmniptError(f"unknown protocol {protocol!r} (expected one of {', '.join(CAPTION_PROTOCOLS)})")
    references = read_captions(gt)
    predicted = read_captions(pred)
    candidates = {key: texts[0] for key, texts in predicted.items() if texts}
    if protocol == "bensmot":
        row = bensmot_caption_metrics(references, candidates)
        notes = [
            "BLEU over characters (NLTK corpus_bleu on raw strings); METEOR without WordNet synonyms",
        ]
        keys = BENSMOT_KEY_METRICS
    else:
        row = caption_metrics(references, candidates, tokenizer=tokenizer)
        notes = ["METEOR uses exact matches only (no stemming or WordNet synonyms)"]
        keys = CAPTION_KEY_METRICS
    if row["missing"]:
        notes.append(f"{row['missing']} items have no prediction and score as empty captions")
    protocols = dict.fromkeys((*keys, "items", "missing"), protocol)
    rows = {COMBINED: row}
    return EvalResult(task="captions", rows=rows, key_metrics=keys, notes=notes, protocol=protocols)


def evaluate_interactions(gt: Path | str, pred: Path | str, *, directed: bool = True) -> EvalResult:
    """Interaction P/R/F1 per video and ``COMBINED`` (micro over all videos) from two relation JSONs."""
    truth = read_relations(gt)
    predicted = read_relations(pred)
    rows: dict[str, dict[str, float | int]] = {}
    for video in truth:
        if video:
            rows[video] = asdict(
                interaction_prf(predicted.get(video, set()), truth[video], directed=directed)
            )
    rows[COMBINED] = asdict(interaction_prf(predicted, truth, directed=directed))
    protocol = dict.fromkeys(INTERACTION_KEY_METRICS, "micro")
    return EvalResult(task="interactions", rows=rows, key_metrics=INTERACTION_KEY_METRICS, protocol=protocol)
