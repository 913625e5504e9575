"""Semantic-MOT text metrics and interaction P/R/F1 on small inputs with hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.errors import InputError, OmniptError
from omnipt_data.evaluate import (
    COMBINED,
    bleu,
    caption_metrics,
    cider_d,
    interaction_prf,
    meteor,
    read_relations,
    relations_to_triples,
    rouge_l,
    tokenize,
)
from omnipt_data.evaluate.captions import bensmot_caption_metrics, char_bleu, cider_d_tokens, nltk_meteor

REF = "the cat sat on the mat"
CAND = "the cat sat on a mat"


def test_tokenizer_modes() -> None:
    text = "A man's T-shirt, don't stop; 3.5 m. Isn't it?"
    assert tokenize(text) == ["a", "man", "'s", "t-shirt", "do", "n't", "stop", "3.5", "m", "is", "n't", "it"]
    assert tokenize(text, "whitespace") == [
        "A",
        "man's",
        "T-shirt,",
        "don't",
        "stop;",
        "3.5",
        "m.",
        "Isn't",
        "it?",
    ]
    with pytest.raises(OmniptError, match="unknown tokenizer"):
        tokenize(text, "nltk")  # type: ignore[arg-type]


def test_identical_sentences_score_one() -> None:
    refs, cands = [[REF], ["a woman walks a dog"]], [REF, "A woman walks a dog."]
    assert bleu(refs, cands) == pytest.approx([1.0, 1.0, 1.0, 1.0], abs=1e-8)
    assert rouge_l(refs, cands) == pytest.approx(1.0)
    # Exact METEOR of an identical sentence keeps a one-chunk penalty 0.5 * (1 / n)^3.
    n1, n2 = 6, 5
    assert meteor(refs, cands) == pytest.approx(((1 - 0.5 / n1**3) + (1 - 0.5 / n2**3)) / 2)


def test_bleu_by_hand() -> None:
    # Unigrams 5/6 (the second "the" is not in the candidate, "a" is not in the reference), bigrams 3/5
    # (the cat, cat sat, sat on), trigrams 2/4, 4-grams 1/3; equal lengths, so no brevity penalty.
    scores = bleu([[REF]], [CAND])
    assert scores[0] == pytest.approx(5 / 6, abs=1e-8)
    assert scores[1] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), abs=1e-8)
    assert scores[2] == pytest.approx((5 / 6 * 3 / 5 * 2 / 4) ** (1 / 3), abs=1e-8)
    assert scores[3] == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** (1 / 4), abs=1e-8)
    # Brevity penalty: a 2-word candidate against a 6-word reference, every n-gram correct: exp(1 - 6/2).
    short = bleu([[REF]], ["the cat"], max_n=2)
    assert short == pytest.approx([math.exp(-2), math.exp(-2)], abs=1e-8)
    # The closest reference length (3, not 7) sets r: no penalty for a 4-word candidate.
    closest = bleu([["the cat sat", "a cat sat on the red mat"]], ["the cat sat on"], max_n=1)
    assert closest[0] == pytest.approx(1.0, abs=1e-8)
    # Corpus level: matches and lengths are summed before dividing.
    corpus = bleu([[REF], ["a dog"]], [CAND, "a cat"], max_n=1)
    assert corpus[0] == pytest.approx((5 + 1) / (6 + 2), abs=1e-8)


def test_rouge_l_by_hand() -> None:
    assert rouge_l([[REF]], [CAND]) == pytest.approx(5 / 6)  # LCS 5 over 6 and 6
    p, r, beta = 1.0, 2 / 6, 1.2  # "the cat": LCS 2
    assert rouge_l([[REF]], ["the cat"]) == pytest.approx((1 + beta**2) * p * r / (r + beta**2 * p))
    assert rouge_l([[REF]], ["dogs bark"]) == 0.0


def test_meteor_by_hand() -> None:
    # 5 matches (the cat sat on | mat) in 2 chunks; P = R = 5/6, penalty 0.5 * (2/5)^3.
    assert meteor([[REF]], [CAND]) == pytest.approx(5 / 6 * (1 - 0.5 * (2 / 5) ** 3))
    # Fmean weights recall: P = 1, R = 2/6 -> P R / (0.9 P + 0.1 R); one chunk of 2.
    p, r = 1.0, 2 / 6
    assert meteor([[REF]], ["the cat"]) == pytest.approx(
        p * r / (0.9 * p + 0.1 * r) * (1 - 0.5 * (1 / 2) ** 3)
    )
    # Several references: the best one counts.
    assert meteor([["dogs bark", REF]], [REF]) == pytest.approx(1 - 0.5 / 6**3)
    assert meteor([[REF]], ["dogs bark"]) == 0.0


def test_cider_d_by_hand() -> None:
    """Two items, N = 2. Every n-gram occurs in one item's references: weight tf * log 2.

    Item 2 ("c d" for "c d"): unigram and bigram vectors equal (cosine 1), no 3- or 4-grams (0); mean over
    n = 2/4; times 10: 5.0. Item 1 ("a" for "a b"): unigram cosine 1/sqrt(2), no bigram; the length
    penalty compares bigram counts 0 and 1: exp(-1/72); 10 * (1/sqrt(2) * exp(-1/72)) / 4.
    """
    refs = [[["a", "b"]], [["c", "d"]]]
    mean, per_item = cider_d_tokens(refs, [["a"], ["c", "d"]])
    first = 10 * (1 / math.sqrt(2)) * math.exp(-1 / 72) / 4
    assert per_item == pytest.approx([first, 5.0])
    assert mean == pytest.approx((first + 5.0) / 2)
    # An n-gram in every item's references has weight log(2) - log(2) = 0.
    shared = cider_d_tokens([[["a", "b"]], [["a", "c"]]], [["a"], ["a"]])[1]
    assert shared == pytest.approx([0.0, 0.0])
    # A single item: log N = 0, every weight is 0.
    assert cider_d([[REF]], [REF]) == 0.0
    # Clipping: repeating a word does not raise the score above the reference's own weight.
    refs3 = [["the man walks"], ["a dog runs"], ["two kids play"]]
    once = cider_d(refs3, ["the man walks", "a dog runs", "two kids play"])
    assert once == pytest.approx(10 * 3 / 4)  # 1- to 3-grams match, no 4-grams
    assert cider_d(refs3, ["man man man", "a dog runs", "two kids play"]) < once


def test_caption_metrics_over_keys() -> None:
    references = {
        "v1": [REF, "a cat is sitting on the mat"],
        "v2": "two people shake hands",
        "v3": "a dog runs",
    }
    candidates = {"v1": CAND, "v2": "two people shake hands", "extra": "ignored"}
    scores = caption_metrics(references, candidates)
    assert set(scores) == {
        "BLEU-1",
        "BLEU-2",
        "BLEU-3",
        "BLEU-4",
        "METEOR",
        "ROUGE-L",
        "CIDEr",
        "items",
        "missing",
    }
    assert scores["items"] == 3 and scores["missing"] == 1
    rouge = (5 / 6 + 1.0 + 0.0) / 3  # v3 has no candidate: an empty caption scores 0
    assert scores["ROUGE-L"] == pytest.approx(rouge)
    assert scores["METEOR"] == pytest.approx((5 / 6 * (1 - 0.5 * (2 / 5) ** 3) + 1 - 0.5 / 4**3) / 3)
    assert 0 < scores["BLEU-4"] < scores["BLEU-1"] < 1
    with pytest.raises(OmniptError, match="no reference captions"):
        caption_metrics({}, {})


def test_interaction_prf_by_hand() -> None:
    gt = {(1, 2, "hold.v.01"), (2, 3, "walk.v.01")}
    pred = {(1, 2, "hold.v.01"), (1, 3, "talk.v.02"), (2, 1, "hold.v.01")}
    scores = interaction_prf(pred, gt)
    assert (scores.tp, scores.fp, scores.fn) == (1, 2, 1)
    assert scores.precision == pytest.approx(1 / 3)
    assert scores.recall == pytest.approx(1 / 2)
    assert scores.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    undirected = interaction_prf(pred, gt, directed=False)  # (2, 1) is (1, 2)
    assert (undirected.tp, undirected.fp, undirected.fn) == (1, 1, 1)
    # Per video, micro-averaged: the same pair in another video is another triple.
    per_video = interaction_prf({"a": [(1, 2, "hold")], "b": [(1, 2, "hold")]}, {"a": [(1, 2, "hold")]})
    assert (per_video.tp, per_video.fp, per_video.fn) == (1, 1, 0)
    empty = interaction_prf([], [])
    assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)


def test_relations_json(tmp_path: Path) -> None:
    assert relations_to_triples({"1-2": ["hold.v.01", "talk.v.02"], "3-1": ["follow.v.01"]}) == {
        (1, 2, "hold.v.01"),
        (1, 2, "talk.v.02"),
        (3, 1, "follow.v.01"),
    }
    path = tmp_path / "relation.json"
    path.write_text(json.dumps({"dance/0001": {"1-2": ["hold.v.01"]}, "sport/0003": {}}))
    assert read_relations(path) == {"dance/0001": {(1, 2, "hold.v.01")}, "sport/0003": set()}
    path.write_text(json.dumps({"dance/0001": {"1_2": ["hold.v.01"]}}))
    with pytest.raises(InputError, match=r"relation key '1_2'"):
        read_relations(path)
    path.write_text('{"dance/0001": ')
    with pytest.raises(InputError, match=r"relation\.json:1: invalid JSON"):
        read_relations(path)


def test_eval_command_captions_and_interactions(tmp_path: Path) -> None:
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps({"dance/0001": {"1": REF, "2": "a dog runs"}}))  # instance_caption.json layout
    pred.write_text(json.dumps({"dance/0001": {"1": CAND, "2": "a dog runs"}}))
    out = tmp_path / "captions.json"
    result = CliRunner().invoke(
        app, ["eval", "--gt", str(gt), "--pred", str(pred), "--task", "captions", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert list(data) == [COMBINED]
    assert data[COMBINED]["ROUGE-L"] == pytest.approx((5 / 6 + 1) / 2)
    assert data[COMBINED]["items"] == 2
    gt.write_text(json.dumps({"dance/0001": {"1-2": ["hold.v.01"], "2-3": ["walk.v.01"]}}))
    pred.write_text(json.dumps({"dance/0001": {"1-2": ["hold.v.01", "push.v.01"]}}))
    csv_out = tmp_path / "interactions.csv"
    result = CliRunner().invoke(
        app, ["eval", "--gt", str(gt), "--pred", str(pred), "--task", "interactions", "--csv", str(csv_out)]
    )
    assert result.exit_code == 0, result.output
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "name,precision,recall,f1,tp,fp,fn,protocol"
    assert lines[-1] == "COMBINED,0.5,0.5,0.5,1,1,1,micro"
    pred.write_text("[1, 2]")
    bad = CliRunner().invoke(app, ["eval", "--gt", str(gt), "--pred", str(pred), "--task", "interactions"])
    assert bad.exit_code == 2 and "pred.json: top level is list" in bad.output


# --- SMOTer's released scorer (protocol "bensmot") -------------------------------------------------


def test_bensmot_bleu_counts_characters() -> None:
    """NLTK's corpus_bleu on raw strings: "abcdx" against "abcde" matches 4 of 5 characters, 3 of 4
    character bigrams, 2 of 3 trigrams, 1 of 2 four-grams, same length: BLEU = (4/5 3/4 2/3 1/2)^(1/4).
    Word-level BLEU-4 of the same pair is 0. "abcd" against "abcdef": every order matches, brevity
    penalty exp(1 - 6/4). An order without a match counts as the smallest float: "ab" against "ab" has
    no character trigram at all, so its BLEU is about 1e-154."""
    assert char_bleu([["abcde"]], ["abcdx"]) == pytest.approx(
        (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25, abs=1e-12
    )
    assert bleu([["abcde"]], ["abcdx"])[3] < 1e-3
    assert char_bleu([["abcdef"]], ["abcd"]) == pytest.approx(math.exp(1 - 6 / 4), abs=1e-12)
    assert 0 < char_bleu([["ab"]], ["ab"]) < 1e-100
    assert char_bleu([["ab"]], ["xy"]) == 0.0 and char_bleu([["ab"]], [""]) == 0.0
    # Corpus level: counts summed over items, each item's n-gram total at least 1 ("xy" has no trigram
    # or four-gram yet adds 1 to both denominators): (6/7 4/5 2/4 1/3)^(1/4).
    both = char_bleu([["abcde"], ["xy"]], ["abcdx", "xy"])
    assert both == pytest.approx((6 / 7 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-12)


def test_bensmot_meteor_matches_from_the_end_and_on_stems() -> None:
    """ "the man walks dog" against "A man, walking dogs.": "man" matches exactly, then "walks"/"walking"
    and "dog"/"dogs" on their Porter stems: 3 matches in one chunk, P = R = 3/4, Fmean 3/4, score
    3/4 (1 - 0.5 / 27). "b a" against "a b a": "a" takes the last free "a" (NLTK matches from the end),
    so both matches form one chunk: P = 1, R = 2/3, penalty 0.5 (1/2)^3."""
    words = "A man, walking dogs.".replace(",", "").replace(".", "").split(" ")
    assert nltk_meteor(words, ["the", "man", "walks", "dog"]) == pytest.approx(0.75 * (1 - 0.5 / 27))
    fmean = (2 / 3) / (0.9 + 0.1 * 2 / 3)
    assert nltk_meteor(["a", "b", "a"], ["b", "a"]) == pytest.approx(fmean * (1 - 0.5 / 2**3))
    assert nltk_meteor(["a"], ["b"]) == 0.0


def test_bensmot_rouge_and_cider_take_the_raw_strings() -> None:
    """ROUGE-L splits on single spaces (two spaces leave an empty word: 2 of 3 recalled, F with
    beta 1.2); CIDEr splits on white space with case and punctuation kept, so "A man." shares no word
    with "a man" (coco-caption's tokenizer makes them equal)."""
    row = bensmot_caption_metrics({"k": "a  man"}, {"k": "a man"})
    precision, recall = 1.0, 2 / 3
    assert row["ROUGE-L"] == pytest.approx((1 + 1.44) * precision * recall / (recall + 1.44 * precision))
    refs = {"1": "A man.", "2": "a red car"}
    cands = {"1": "a man", "2": "a red car"}
    raw = bensmot_caption_metrics(refs, cands)
    coco = caption_metrics(refs, cands)
    assert raw["CIDEr"] == pytest.approx(
        cider_d_tokens([[["A", "man."]], [["a", "red", "car"]]], [["a", "man"], ["a", "red", "car"]])[0]
    )
    assert coco["CIDEr"] > raw["CIDEr"]
    assert raw["items"] == 2 and raw["missing"] == 0


def test_eval_command_bensmot_protocol(tmp_path: Path) -> None:
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps({"v/1": "abcde", "v/2": "xy"}))
    pred.write_text(json.dumps({"v/1": "abcdx", "v/2": "xy"}))
    out = tmp_path / "bensmot.json"
    args = ["eval", "--gt", str(gt), "--pred", str(pred), "--task", "captions", "--protocol", "bensmot"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text())[COMBINED]
    assert row["BLEU"] == pytest.approx((6 / 7 * 4 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-12)
    assert row["protocol"]["BLEU"] == "bensmot" and "SMOTer" in result.output
    wrong = CliRunner().invoke(app, [*args[:-1], "devkit"])
    assert wrong.exit_code == 2 and "task captions has no protocol 'devkit'" in wrong.output
