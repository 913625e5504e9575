"""The MOTChallenge devkit's CLEAR MOT and ID measures: TUD-Campus against the devkit's table, and each
rule where it parts from TrackEval on a hand-made case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tud_campus import DEVKIT_COUNTS, DEVKIT_PERCENT, TUD
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.evaluate import COMBINED, evaluate_mot, evaluate_sequences
from omnipt_data.evaluate.devkit import clear_mot, evaluate_devkit, id_measures, prepare


def boxes(*rows: tuple[int, int, float]) -> np.ndarray:
    """Rows ``frame,id,x,0,100,100``: 100x100 boxes at ``x``."""
    return np.array([[f, i, x, 0.0, 100.0, 100.0] for f, i, x in rows], dtype=float).reshape(-1, 6)


def trackeval_row(gt: np.ndarray, pred: np.ndarray) -> dict:
    length = int(max(gt[:, 0].max(), pred[:, 0].max()))
    return evaluate_sequences({"s": (gt, pred, length)}, benchmark="MOT15").rows["s"]


def test_tud_campus_equals_the_devkit_table(tmp_path: Path) -> None:
    out = tmp_path / "devkit.json"
    args = ["eval", "--gt", str(TUD / "gt.txt"), "--pred", str(TUD / "test.txt"), "--protocol", "devkit"]
    run = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert run.exit_code == 0, run.output
    assert "MOTChallenge MATLAB devkit" in run.output
    row = json.loads(out.read_text())["TUD-Campus"]
    for metric, percent in DEVKIT_PERCENT.items():
        assert round(100 * row[metric], 1) == percent, metric
    for metric, count in DEVKIT_COUNTS.items():
        assert row[metric] == count, metric
    assert round(row["FP_per_frame"], 2) == 0.18
    assert row["MOTA"] == pytest.approx((359 - 150 - 13 - 7) / 359, abs=1e-12)
    assert row["protocol"]["MOTA"] == "devkit" and row["protocol"]["IDF1"] == "devkit"
    assert "HOTA" not in row
    default = evaluate_mot(TUD / "gt.txt", TUD / "test.txt")
    assert default.protocol_of("MOTA") == "trackeval" and default.protocol_of("HOTA") == "trackeval"


def test_a_switch_across_a_gap_counts_under_trackeval_only() -> None:
    """Person 1 in frames 1, 2, 4, 5 (not annotated in frame 3), tracked as 7 then as 8.

    The devkit counts a switch only when the person is annotated in the previous frame: none here, and
    the gap between matched frames 2 and 4 is a fragmentation. TrackEval: one switch, no fragmentation
    (it looks at annotated frames only). Annotated but missed in frame 3, the switch counts for both.
    """
    gt = boxes((1, 1, 0), (2, 1, 0), (4, 1, 0), (5, 1, 0))
    pred = boxes((1, 7, 0), (2, 7, 0), (4, 8, 0), (5, 8, 0))
    devkit = clear_mot(gt, pred)
    assert (devkit["IDSW"], devkit["Frag"]) == (0, 1)
    trackeval = trackeval_row(gt, pred)
    assert (trackeval["IDSW"], trackeval["Frag"]) == (1, 0)
    missed = np.vstack([gt, boxes((3, 1, 0))])
    assert clear_mot(missed, pred)["IDSW"] == 1 and trackeval_row(missed, pred)["IDSW"] == 1


def test_last_frames_correspondence_is_kept_while_it_clears_the_threshold() -> None:
    """Frame 1: person 1 matched to 7. Frame 2: box 7 moved 30 px (IoU 70*100 / 130*100 = 7/13 >= 0.5)
    and box 8 exactly on the person: 7 is kept, 8 is a false positive. Frame 3: only 8, a switch.
    MOTP = 1 - (0 + 6/13 + 0) / 3 = 11/13."""
    gt = boxes((1, 1, 0), (2, 1, 0), (3, 1, 0))
    pred = boxes((1, 7, 0), (2, 7, 30), (2, 8, 0), (3, 8, 0))
    row = clear_mot(gt, pred)
    assert (row["CLR_TP"], row["CLR_FP"], row["IDSW"]) == (3, 1, 1)
    assert row["MOTP"] == pytest.approx(11 / 13, abs=1e-12)
    # Needing IoU 0.7, box 7 no longer holds in frame 2: 8 takes over there (the switch moves a frame).
    strict = clear_mot(gt, pred, threshold=0.7)
    assert (strict["CLR_TP"], strict["CLR_FP"], strict["IDSW"], strict["MOTP"]) == (3, 1, 1, 1.0)


def test_only_the_previous_frame_is_remembered() -> None:
    """Person 1 matched to 7 in frame 1, not annotated in frame 2; in frame 3 box 7 (IoU 7/13) and box 8
    (IoU 1) are both on the person. The devkit keeps last frame's matches only, so frame 3 is a fresh
    minimum-cost assignment: 8 (distance 0), MOTP 1, no switch (frame 2 has no annotation). TrackEval
    remembers 7 from frame 1 and keeps it: MOTP (1 + 7/13) / 2."""
    gt = boxes((1, 1, 0), (3, 1, 0))
    pred = boxes((1, 7, 0), (3, 7, 30), (3, 8, 0))
    row = clear_mot(gt, pred)
    assert (row["CLR_TP"], row["CLR_FP"], row["IDSW"]) == (2, 1, 0)
    assert row["MOTP"] == pytest.approx(1.0, abs=1e-12)
    assert trackeval_row(gt, pred)["MOTP"] == pytest.approx((1 + 7 / 13) / 2, abs=1e-12)


def test_assignment_prefers_more_matches_then_less_distance() -> None:
    """Person 1 at x=0, person 2 at x=60; box 7 at x=30 overlaps both (IoU 7/13), box 8 at x=0 only
    person 1. Most matches: 1-8 and 2-7 (distances 0 and 6/13)."""
    gt = boxes((1, 1, 0), (1, 2, 60))
    pred = boxes((1, 7, 30), (1, 8, 0))
    row = clear_mot(gt, pred)
    assert (row["CLR_TP"], row["CLR_FP"], row["CLR_FN"]) == (2, 0, 0)
    assert row["MOTP"] == pytest.approx(1 - (6 / 13) / 2, abs=1e-12)


def test_mostly_tracked_partly_tracked_mostly_lost() -> None:
    """Person 1: 10 frames, matched in 5 (ratio 0.5); results end at frame 5, fewer than its 10
    annotated frames, so the devkit puts it in none of MT/PT/ML (TrackEval: PT). Person 2: frames 1-5,
    matched in 4 (ratio 0.8): PT (the devkit tests PT before MT). Person 3: frame 1 only, never matched:
    ML."""
    gt = np.vstack(
        [
            boxes(*[(f, 1, 0) for f in range(1, 11)]),
            boxes(*[(f, 2, 300) for f in range(1, 6)]),
            boxes((1, 3, 600)),
        ]
    )
    pred = np.vstack([boxes(*[(f, 7, 0) for f in range(1, 6)]), boxes(*[(f, 8, 300) for f in range(1, 5)])])
    row = clear_mot(gt, pred)
    assert (row["GT_IDs"], row["MT"], row["PT"], row["ML"]) == (3, 0, 1, 1)
    trackeval = trackeval_row(gt, pred)
    assert (trackeval["MT"], trackeval["PT"], trackeval["ML"]) == (0, 2, 1)


def test_id_measures_match_whole_trajectories() -> None:
    """Person 1 in frames 1-4, tracked as 7 (frames 1-2) then 8 (frames 3-4): one of the two ids is its
    identity, IDTP 2, IDF1 = 2 * 2 / (4 + 4); a box under IoU 0.5 is no identity match."""
    gt = boxes(*[(f, 1, 0) for f in range(1, 5)])
    pred = boxes((1, 7, 0), (2, 7, 0), (3, 8, 0), (4, 8, 0))
    row = id_measures(gt, pred)
    assert (row["IDTP"], row["IDFP"], row["IDFN"]) == (2, 2, 2)
    assert row["IDF1"] == pytest.approx(0.5)
    far = boxes((1, 7, 0), (2, 7, 60), (3, 8, 0), (4, 8, 0))  # IoU 40/160 in frame 2
    assert id_measures(gt, far)["IDTP"] == 2
    assert id_measures(gt, boxes((1, 7, 0), (2, 7, 60), (3, 7, 0), (4, 7, 0)))["IDTP"] == 3


def test_preparation_and_combined_counts() -> None:
    """Flag-0 ground truth is dropped, results after the last ground-truth frame too; on MOT17 a result
    box matched to a distractor (class 7) goes and only class-1 ground truth stays. COMBINED sums the
    counts of the sequences."""
    gt = np.array(
        [
            [1, 1, 0, 0, 100, 100, 1, 1, 1],
            [1, 2, 300, 0, 100, 100, 0, 1, 1],  # flag 0
            [2, 1, 0, 0, 100, 100, 1, 1, 1],
            [2, 3, 600, 0, 100, 100, 1, 7, 1],  # static person
        ]
    )
    pred = np.hstack([boxes((1, 7, 0), (2, 7, 0), (2, 9, 600), (3, 7, 0)), np.ones((4, 1))])
    mot15_gt, mot15_pred = prepare(gt, pred, benchmark="MOT15")
    assert len(mot15_gt) == 3 and mot15_pred[:, 0].max() == 2 and len(mot15_pred) == 3
    mot17_gt, mot17_pred = prepare(gt, pred, benchmark="MOT17")
    assert sorted(mot17_gt[:, 1]) == [1, 1] and sorted(mot17_pred[:, 1]) == [7, 7]
    result = evaluate_devkit({"a": (gt, pred), "b": (gt, pred)}, benchmark="MOT17")
    assert result.rows["a"]["MOTA"] == pytest.approx(1.0)
    assert result.rows[COMBINED]["CLR_TP"] == 4 and result.rows[COMBINED]["IDTP"] == 4
    as_mot15 = evaluate_devkit({"a": (gt, pred)}, benchmark="MOT15").rows["a"]
    assert (as_mot15["CLR_TP"], as_mot15["CLR_FP"]) == (3, 0)
