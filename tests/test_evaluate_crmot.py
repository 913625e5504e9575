"""CRTrack cross-view referring MOT: the authors' Gate2 and Circle figures, the protocol on hand-made cases,
the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.errors import InputError
from omnipt_data.evaluate import COMBINED, evaluate_crmot, evaluate_crmot_arrays, load_crtrack
from omnipt_data.evaluate.crmot import written_2f

FIXTURES = Path(__file__).resolve().parent / "data" / "real"
CRTRACK = FIXTURES / "crtrack"
CIRCLE = FIXTURES / "crtrack-circle"


def track(person: int, frames: range, x: float = 100.0) -> np.ndarray:
    """Rows ``frame,id,x,y,w,h`` of one person standing still."""
    return np.array([[f, person, x, 50.0, 40.0, 90.0] for f in frames], dtype=float).reshape(-1, 6)


def test_gate2_reproduces_the_authors_figures() -> None:
    """CRTracker on the in-domain scene Gate2: CVRIDF1 91.60 and CVRMA 73.40 in the authors' spreadsheets."""
    result = evaluate_crmot(CRTRACK / "gt", CRTRACK / "pred")
    assert len([n for n in result.names if n.startswith("Gate2_")]) == 5
    assert result.rows["Gate2"]["CVRIDF1"] == pytest.approx(0.9160, abs=5e-5)
    assert result.rows["Gate2"]["CVRMA"] == pytest.approx(0.7340, abs=5e-5)
    assert result.combined["CVRIDF1"] == pytest.approx(0.9160, abs=5e-5)
    assert result.combined["CVRMA"] == pytest.approx(0.7340, abs=5e-5)
    assert result.combined["Sentences"] == 5
    # The scene score is the mean over sentences, with negative CVRMA counted as 0.
    sentences = [result.rows[n] for n in result.names if n.startswith("Gate2_")]
    assert result.combined["CVRMA"] == pytest.approx(np.mean([r["CVRMA"] for r in sentences]))
    shoes = result.rows["Gate2_A man wearing a black coat, black trousers and white shoes"]
    assert shoes["CVRMA_unclipped"] < 0 and shoes["CVRMA"] == 0.0
    # Only view 1 has ground truth for that sentence: the results in views 2 and 3 lie after the last
    # ground-truth frame once the views are concatenated, and the protocol drops them for CVRIDF1.
    assert shoes["IDTP"] + shoes["IDFP"] == 1337  # = the rows of View1.txt
    assert shoes["CLR_FP"] > shoes["IDFP"]  # interleaved frames keep most of views 2-3 for CVRMA


def test_circle_reproduces_every_published_sentence() -> None:
    """Scene Circle, 20 sentences: CVRIDF1, CVRMA and the CVRMA run's TP/FP/FN as the authors publish
    them, and the scene means (CVRIDF1 58.38, CVRMA 42.44). The devkit's ID-switch rule makes the
    difference: for "A man wearing a black coat and black trousers" it counts 241 switches where every
    change of match (TrackEval's rule) gives 482."""
    with (FIXTURES / "crtrack-published.csv").open(newline="") as handle:
        published = {row["sequence"]: row for row in csv.DictReader(handle)}
    result = evaluate_crmot(CIRCLE / "gt", CIRCLE / "pred")
    sentences = [n for n in result.names if n.startswith("Circle_")]
    assert len(sentences) == 20 and set(sentences) <= set(published)
    for name in [*sentences, "Circle"]:
        row, paper = result.rows[name], published[name]
        assert 100 * row["CVRIDF1"] == pytest.approx(float(paper["CVRIDF1"]), abs=1e-4), name
        assert 100 * row["CVRMA"] == pytest.approx(float(paper["CVRMA"]), abs=1e-4), name
        if name != "Circle":
            counts = (row["CLR_TP"], row["CLR_FP"], row["CLR_FN"])
            assert counts == tuple(int(paper[k]) for k in ("CVRMA_TP", "CVRMA_FP", "CVRMA_FN")), name
    assert result.rows["Circle_A man wearing a black coat and black trousers"]["IDSW"] == 241
    assert result.protocol_of("CVRMA") == "devkit" and result.protocol_of("IDSW") == "devkit"


def test_gate2_sentences_equal_the_published_table() -> None:
    with (FIXTURES / "crtrack-published.csv").open(newline="") as handle:
        published = {row["sequence"]: row for row in csv.DictReader(handle)}
    result = evaluate_crmot(CRTRACK / "gt", CRTRACK / "pred")
    for name in [*result.names, COMBINED]:
        paper = published["Gate2" if name == COMBINED else name]
        assert 100 * result.rows[name]["CVRIDF1"] == pytest.approx(float(paper["CVRIDF1"]), abs=1e-4)
        assert 100 * result.rows[name]["CVRMA"] == pytest.approx(float(paper["CVRMA"]), abs=1e-4)


def test_authors_preparation_quirks() -> None:
    """Boxes pass through ``'%.2f'`` (0.015 is written 0.01, where ``np.round`` gives 0.02), and a view
    file of one row is skipped: the single result box in view 2 (interleaved frame 1 * 2 + 1 = 3, inside
    the ground truth's frames 2..6) would otherwise be a false positive."""
    assert written_2f(np.array([0.015, 0.025, 0.155, 12.345])).tolist() == [0.01, 0.03, 0.15, 12.35]
    assert np.round(0.015, 2) == 0.02
    views = {
        "View1": (track(1, range(1, 4)), track(1, range(1, 4))),
        "View2": (np.zeros((0, 6)), track(2, range(1, 2))),
    }
    result = evaluate_crmot_arrays({"Hall_a person": views})
    assert result.rows["Hall_a person"]["CLR_FP"] == 0
    assert result.rows["Hall_a person"]["CVRMA"] == pytest.approx(1.0)
    assert any("one-row" in note for note in result.notes)
    views["View2"] = (np.zeros((0, 6)), track(2, range(1, 3)))
    assert evaluate_crmot_arrays({"Hall_a person": views}).rows["Hall_a person"]["CLR_FP"] == 2


def test_released_results_hold_corners() -> None:
    """Read as corners, the result boxes have the ground truth's size; read as xywh they do not."""
    sentences = load_crtrack(CRTRACK / "gt", CRTRACK / "pred")
    gt, pred = sentences["Gate2_A man wearing a black coat and black trousers"]["View1"]
    first_gt = gt[gt[:, 0] == gt[0, 0]]
    first_pred = pred[pred[:, 0] == 3]
    assert np.median(first_pred[:, 4]) == pytest.approx(np.median(first_gt[:, 4]), rel=0.3)
    name = "Gate2_A man riding a bicycle"
    corners = evaluate_crmot_arrays({name: sentences[name]}).rows[name]
    as_xywh = load_crtrack(CRTRACK / "gt", CRTRACK / "pred", pred_box_format="xywh")
    wrong = evaluate_crmot_arrays({name: as_xywh[name]}).rows[name]
    assert corners["CVRIDF1"] > 0.9 and wrong["CVRIDF1"] < 0.5


def test_cross_view_identity_is_rewarded_and_switches_counted() -> None:
    """One person seen in 2 views for 3 frames each.

    Same tracker id in both views: everything matches, CVRIDF1 = CVRMA = 1. A new id in view 2: the
    concatenated sequence has 6 gt boxes, IDTP 3 -> CVRIDF1 = 3 / 6 = 0.5; interleaved (frames 2,3,4,5,6,7
    alternate between the views, the person is annotated in each) the tracker id changes at every frame
    after the first: 5 switches, CVRMA = (6 - 0 - 5) / 6.
    """
    gt = {"View1": track(1, range(1, 4)), "View2": track(1, range(1, 4))}
    same = {k: (v, v.copy()) for k, v in gt.items()}
    other = {"View1": (gt["View1"], track(5, range(1, 4))), "View2": (gt["View2"], track(6, range(1, 4)))}
    result = evaluate_crmot_arrays({"S_same id": same, "S_new id": other})
    assert result.rows["S_same id"]["CVRIDF1"] == pytest.approx(1.0)
    assert result.rows["S_same id"]["CVRMA"] == pytest.approx(1.0)
    assert result.rows["S_new id"]["CVRIDF1"] == pytest.approx(0.5)
    assert result.rows["S_new id"]["IDSW"] == 5
    assert result.rows["S_new id"]["CVRMA"] == pytest.approx(1 / 6)
    assert result.rows["S"]["CVRIDF1"] == pytest.approx(0.75)  # scene "S": mean of its two sentences
    assert result.combined["CVRMA"] == pytest.approx((1 + 1 / 6) / 2)


def test_results_after_the_last_ground_truth_frame_are_dropped() -> None:
    """Ground truth in view 1 only (frames 1-3); perfect there, plus 3 boxes in view 2.

    Concatenated, view 2 starts after view 1's last frame: its results are dropped, CVRIDF1 = 1.
    Interleaved (V = 2), view-2 frames 1, 2, 3 become 3, 5, 7; the last gt frame is 3 * 2 + 0 = 6, so the
    boxes at 3 and 5 stay as false positives: CVRMA = (3 - 2) / 3.
    """
    views = {
        "View1": (track(1, range(1, 4)), track(1, range(1, 4))),
        "View2": (np.zeros((0, 6)), track(2, range(1, 4))),
    }
    row = evaluate_crmot_arrays({"Hall_a person": views}).rows["Hall_a person"]
    assert row["CVRIDF1"] == pytest.approx(1.0)
    assert row["CLR_FP"] == 2
    assert row["CVRMA"] == pytest.approx(1 / 3)


def write_view(path: Path, rows: np.ndarray, corners: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for f, i, x, y, w, h in rows:
        box = (x, y, x + w, y + h) if corners else (x, y, w, h)
        lines.append(f"{int(f)},{int(i)}," + ",".join(f"{v:.2f}" for v in box) + ",1,-1,-1,-1\n")
    path.write_text("".join(lines))


def test_eval_command_crmot(tmp_path: Path) -> None:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    for view, person in (("View1", 1), ("View2", 1)):
        write_view(gt_dir / "Gate9_a man" / "gt" / f"{view}.txt", track(person, range(1, 6)), corners=False)
        write_view(pred_dir / "Gate9_a man" / f"{view}.txt", track(7, range(1, 6)), corners=True)
    out = tmp_path / "crmot.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--gt",
            str(gt_dir),
            "--pred",
            str(pred_dir),
            "--task",
            "crmot",
            "--json",
            str(out),
            "--report",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data[COMBINED]["CVRIDF1"] == pytest.approx(1.0)
    assert data[COMBINED]["CVRMA"] == pytest.approx(1.0)
    assert set(data) == {"Gate9_a man", "Gate9", COMBINED}
    assert data["Gate9_a man"]["protocol"]["CVRMA"] == "devkit"
    assert "MOTChallenge MATLAB devkit" in result.output
    assert "no per-alpha curves" in result.output
    (pred_dir / "Gate9_a man" / "View1.txt").rename(pred_dir / "View1.txt")
    (pred_dir / "Gate9_a man" / "View2.txt").unlink()
    (pred_dir / "Gate9_a man").rmdir()
    missing = CliRunner().invoke(
        app, ["eval", "--gt", str(gt_dir), "--pred", str(pred_dir), "--task", "crmot"]
    )
    assert missing.exit_code == 2 and "no results for 'Gate9_a man'" in missing.output


def test_missing_views_and_folders() -> None:
    with pytest.raises(InputError, match="folder not found"):
        evaluate_crmot(CRTRACK / "nope", CRTRACK / "pred")
