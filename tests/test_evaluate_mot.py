"""MOT evaluation: TrackEval numbers on real MOT15 data against the MOTChallenge devkit, hand-computed
cases, MOTChallenge preprocessing, referring-MOT pooling, file errors and the ``eval`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer
from tud_campus import DEVKIT_COUNTS, DEVKIT_PERCENT, TUD
from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.errors import InputError, OmniptError
from omnipt_data.evaluate import (
    ALPHAS,
    COMBINED,
    evaluate_mot,
    evaluate_rmot,
    evaluate_sequences,
    read_gt,
    read_pred,
)


def write_rows(path: Path, rows: list[list[float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(f"{v:g}" for v in row) + "\n" for row in rows))


def box_rows(track_boxes: dict[int, tuple[float, float]], frames: range) -> list[list[float]]:
    """Helper: constant 50x100 boxes at the given top-left corners, one per id and frame."""
    return [[f, tid, x, y, 50, 100, 1, 1, 1] for f in frames for tid, (x, y) in track_boxes.items()]


# --- TUD-Campus against the devkit ----------------------------------------------------------------


def test_tud_campus_matches_the_motchallenge_devkit() -> None:
    result = evaluate_mot(TUD / "gt.txt", TUD / "test.txt")
    assert result.names == ["TUD-Campus"]
    row = result.rows["TUD-Campus"]
    for metric, percent in DEVKIT_PERCENT.items():
        if metric == "MOTAL":
            continue  # not a TrackEval measure
        assert row[metric] == pytest.approx(percent / 100, abs=5e-4), metric  # rounding of one decimal
    for metric, count in DEVKIT_COUNTS.items():
        assert row[metric] == count, metric
        assert isinstance(row[metric], int)
    assert row["FP_per_frame"] == pytest.approx(0.18, abs=5e-3)  # FAR over the 71 frames
    assert row["CLR_Frames"] == 71
    # Exact values behind the rounded figures.
    assert row["CLR_TP"] == 209 and row["GT_Dets"] == 359 and row["Dets"] == 222
    assert row["MOTA"] == pytest.approx((209 - 13 - 7) / 359, abs=1e-12)
    assert row["IDTP"] == 162 and row["IDFP"] == 60 and row["IDFN"] == 197
    assert row["IDF1"] == pytest.approx(2 * 162 / (359 + 222), abs=1e-12)
    # The devkit's MOTAL uses log10(IDSW + 1); TrackEval's uses log10(IDSW): both from the same counts.
    assert 1 - (150 + 13 + math.log10(7 + 1)) / 359 == pytest.approx(0.543, abs=5e-4)
    assert row["MOTAL"] == pytest.approx((209 - 13 - math.log10(7)) / 359, abs=1e-12)
    # One sequence: COMBINED equals it.
    assert result.combined["HOTA"] == pytest.approx(row["HOTA"], abs=1e-12)
    assert result.combined["IDF1"] == pytest.approx(row["IDF1"], abs=1e-12)


def test_tud_campus_hota_is_the_alpha_mean_and_keeps_the_curve() -> None:
    result = evaluate_mot(TUD / "gt.txt", TUD / "test.txt")
    curves = result.curves["TUD-Campus"]
    assert curves["alpha"] == pytest.approx(list(ALPHAS))
    assert len(curves["alpha"]) == 19 and curves["alpha"][0] == pytest.approx(0.05)
    for metric in ("HOTA", "DetA", "AssA"):
        assert result.rows["TUD-Campus"][metric] == pytest.approx(np.mean(curves[metric]), abs=1e-12)
    assert result.rows["TUD-Campus"]["HOTA"] == pytest.approx(0.39140, abs=5e-5)
    # HOTA = sqrt(DetA * AssA) at every alpha; the curve falls as the IoU threshold rises.
    hota, deta, assa = (np.asarray(curves[m]) for m in ("HOTA", "DetA", "AssA"))
    assert np.allclose(hota, np.sqrt(deta * assa))
    assert np.all(np.diff(deta) <= 1e-12)


def test_mot15_layout_selects_mot15_and_folder_layouts_agree(tmp_path: Path) -> None:
    direct = evaluate_mot(TUD / "gt.txt", TUD / "test.txt")
    assert "benchmark MOT15 preprocessing" in direct.notes
    # Folder of sequence folders with gt/gt.txt and seqinfo.ini, results as <sequence>.txt.
    seq = tmp_path / "gt" / "TUD-Campus"
    (seq / "gt").mkdir(parents=True)
    (seq / "gt" / "gt.txt").symlink_to(TUD / "gt.txt")
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=TUD-Campus\nseqLength=71\nframeRate=25\n")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "TUD-Campus.txt").symlink_to(TUD / "test.txt")
    folder = evaluate_mot(tmp_path / "gt", tmp_path / "pred")
    assert folder.names == ["TUD-Campus"]
    for metric in ("HOTA", "MOTA", "IDF1", "IDSW", "Frag"):
        assert folder.combined[metric] == pytest.approx(direct.combined[metric], abs=1e-12)
    # A longer seqLength adds empty frames: no detection changes, the frame count does.
    (seq / "seqinfo.ini").write_text("[Sequence]\nseqLength=80\n")
    longer = evaluate_mot(tmp_path / "gt", tmp_path / "pred")
    assert longer.combined["CLR_Frames"] == 80
    assert longer.combined["MOTA"] == pytest.approx(direct.combined["MOTA"], abs=1e-12)
    # A seqLength shorter than the data is an error naming the file and line.
    (seq / "seqinfo.ini").write_text("[Sequence]\nseqLength=70\n")
    with pytest.raises(InputError, match=r"gt\.txt:\d+: frame 71 is beyond the sequence length 70"):
        evaluate_mot(tmp_path / "gt", tmp_path / "pred")


# --- hand-computed cases ----------------------------------------------------------------------------


def test_perfect_tracker_scores_one() -> None:
    gt = read_gt(TUD / "gt.txt").rows
    pred = gt[:, :7].copy()
    result = evaluate_sequences({"TUD-Campus": (gt, pred, 71)})
    row = result.combined
    for metric in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR"):
        assert row[metric] == pytest.approx(1.0, abs=1e-12), metric
    assert row["IDSW"] == 0 and row["CLR_FP"] == 0 and row["CLR_FN"] == 0 and row["Frag"] == 0
    assert row["MT"] == 8 and row["ML"] == 0


def test_one_id_swap_loses_what_it_should() -> None:
    """Two well separated people over 10 frames; from frame 8 on the tracker swaps their ids.

    CLEAR: every box is matched (TP = 20, FP = FN = 0) and each person changes tracker id once at frame 8,
    so IDSW = 2 and MOTA = (20 - 0 - 2) / 20 = 0.9. Identity: the best global matching keeps gt 1 -> pred 1
    and gt 2 -> pred 2 for frames 1-7, IDTP = 14, IDFP = IDFN = 6, IDF1 = 14 / (14 + 3 + 3) = 0.7.
    HOTA: DetA = 1 at every alpha; the 7 + 7 matches of the kept pairs have association 7 / (7 + 3 + 3),
    the 3 + 3 swapped ones 3 / (3 + 7 + 7), so AssA = (14 * 7/13 + 6 * 3/17) / 20 and HOTA = sqrt(AssA).
    """
    frames = range(1, 11)
    gt = np.array(box_rows({1: (100, 100), 2: (400, 100)}, frames), dtype=float)
    pred = gt[:, :7].copy()
    swapped = pred[:, 0] >= 8
    pred[swapped, 1] = 3 - pred[swapped, 1]  # 1 <-> 2
    row = evaluate_sequences({"swap": (gt, pred, 10)}).combined
    assert row["CLR_TP"] == 20 and row["CLR_FP"] == 0 and row["CLR_FN"] == 0
    assert row["IDSW"] == 2
    assert row["MOTA"] == pytest.approx(0.9, abs=1e-12)
    assert row["IDTP"] == 14 and row["IDFP"] == 6 and row["IDFN"] == 6
    assert row["IDF1"] == pytest.approx(0.7, abs=1e-12)
    assert row["DetA"] == pytest.approx(1.0, abs=1e-12)
    assa = (14 * 7 / 13 + 6 * 3 / 17) / 20
    assert row["AssA"] == pytest.approx(assa, abs=1e-12)
    assert row["HOTA"] == pytest.approx(math.sqrt(assa), abs=1e-12)
    assert row["Frag"] == 0 and row["MT"] == 2


def test_missed_frames_count_fn_and_fragmentation() -> None:
    """Two people, 10 frames; the tracker misses person 1 in frames 4-5 and tracks person 2 throughout:
    TP 18, FN 2, MOTA 0.9, one fragmentation, no switch; IDTP 18, IDFN 2, IDF1 = 36 / 38."""
    gt = np.array(box_rows({1: (100, 100), 2: (400, 100)}, range(1, 11)), dtype=float)
    keep = ~((gt[:, 1] == 1) & (gt[:, 0] >= 4) & (gt[:, 0] <= 5))
    row = evaluate_sequences({"gap": (gt, gt[keep, :7], 10)}).combined
    assert (row["CLR_TP"], row["CLR_FN"], row["CLR_FP"], row["IDSW"], row["Frag"]) == (18, 2, 0, 0, 1)
    assert row["MOTA"] == pytest.approx(0.9, abs=1e-12)
    assert row["IDF1"] == pytest.approx(36 / 38, abs=1e-12)
    assert row["MT"] == 1 and row["PT"] == 1  # tracked 80% of its frames is not "more than 80%"
    # TrackEval leaves its per-frame track state untouched in frames where the tracker outputs nothing,
    # so a gap during which the tracker is silent altogether is not counted as a fragmentation.
    alone = gt[gt[:, 1] == 1]
    silent = alone[(alone[:, 0] < 4) | (alone[:, 0] > 5), :7]
    quiet = evaluate_sequences({"silent": (alone, silent, 10)}).combined
    assert (quiet["CLR_TP"], quiet["CLR_FN"], quiet["Frag"]) == (8, 2, 0)


def test_the_truth_cut_at_the_image_border_misses_only_above_its_own_overlap(tmp_path: Path) -> None:
    """A store's truth, each box cut at the border, scored against the whole boxes: two people in two
    frames of a 100x100 image, one inside, one whose box reaches 19 px above the top (the cut box overlaps
    the whole by IoU 31/50 = 0.62). HOTA's 12 thresholds up to 0.60 match both (1 each); the 7 above
    match only the first: DetA 2 / (2 + 2 + 2), AssA 1."""
    from omnipt_data.convert import convert
    from omnipt_data.evaluate.store_gt import evaluate_truth_in_image

    source = tmp_path / "seq"
    source.mkdir()
    (source / "seqinfo.ini").write_text("[Sequence]\nname=seq\nseqLength=2\nimWidth=100\nimHeight=100\n")
    write_rows(
        source / "gt" / "gt.txt",
        [[f, 1, 10, 10, 20, 40, 1, 1, 1] for f in (1, 2)]
        + [[f, 2, 50, -19, 20, 50, 1, 1, 1] for f in (1, 2)],
    )
    store = convert("mot", source, tmp_path / "store", show_progress=False).store
    row = evaluate_truth_in_image(store.path).combined
    assert row["HOTA"] == pytest.approx((12 + 7 * math.sqrt(1 / 3)) / 19, abs=1e-9)
    assert (row["CLR_TP"], row["CLR_FN"], row["CLR_FP"]) == (4, 0, 0)


# --- MOTChallenge preprocessing ---------------------------------------------------------------------


def preprocessing_case(distractor_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame 1: a pedestrian (id 1), a distractor-class box (id 2) and a zero-flagged pedestrian (id 3);
    the tracker covers ids 1 and 2 exactly and nothing else."""
    gt = np.array(
        [
            [1, 1, 100, 100, 50, 100, 1, 1, 1.0],
            [1, 2, 300, 100, 50, 100, 1, distractor_class, 1.0],
            [1, 3, 500, 100, 50, 100, 0, 1, 1.0],
        ]
    )
    pred = np.array([[1, 11, 100, 100, 50, 100, 0.9], [1, 12, 300, 100, 50, 100, 0.9]])
    return gt, pred


@pytest.mark.parametrize("distractor", [2, 7, 8, 12])
def test_predictions_on_distractors_are_removed(distractor: int) -> None:
    gt, pred = preprocessing_case(distractor)
    row = evaluate_sequences({"s": (gt, pred, 1)}, benchmark="MOT17").combined
    # The zero-flagged pedestrian is ignored, the distractor's prediction vanishes: one perfect match.
    assert (row["CLR_TP"], row["CLR_FP"], row["CLR_FN"]) == (1, 0, 0)
    assert row["GT_Dets"] == 1 and row["Dets"] == 1


def test_non_pedestrian_classes_and_mot20() -> None:
    gt, pred = preprocessing_case(6)  # non_mot_vehicle: a distractor on MOT20 only
    mot17 = evaluate_sequences({"s": (gt, pred, 1)}, benchmark="MOT17").combined
    assert (mot17["CLR_TP"], mot17["CLR_FP"], mot17["CLR_FN"]) == (1, 1, 0)  # kept as a false positive
    mot20 = evaluate_sequences({"s": (gt, pred, 1)}, benchmark="MOT20").combined
    assert (mot20["CLR_TP"], mot20["CLR_FP"], mot20["CLR_FN"]) == (1, 0, 0)
    # MOT15: no classes; every flagged row is a pedestrian, nothing is removed.
    mot15 = evaluate_sequences({"s": (gt, pred, 1)}, benchmark="MOT15").combined
    assert (mot15["CLR_TP"], mot15["CLR_FP"], mot15["CLR_FN"]) == (2, 0, 0)
    with pytest.raises(OmniptError, match="unknown benchmark"):
        evaluate_sequences({"s": (gt, pred, 1)}, benchmark="MOT99")


def trackeval_on_files(root: Path, sequences: dict, benchmark: str) -> dict:
    """TrackEval itself, reading MOTChallenge files: ``{sequence or COMBINED_SEQ: {family: results}}``."""
    import trackeval

    gt_root, trackers = root / "gt", root / "trackers"
    (gt_root / "seqmaps").mkdir(parents=True)
    (gt_root / "seqmaps" / f"{benchmark}-train.txt").write_text("name\n" + "\n".join(sequences) + "\n")
    for name, (gt, pred, length) in sequences.items():
        folder = gt_root / f"{benchmark}-train" / name
        write_rows(folder / "gt" / "gt.txt", gt.tolist())
        (folder / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nseqLength={length}\n")
        write_rows(trackers / f"{benchmark}-train" / "t" / "data" / f"{name}.txt", pred.tolist())
    evaluator = trackeval.Evaluator(
        {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "OUTPUT_SUMMARY": False}
        | {"OUTPUT_DETAILED": False, "PLOT_CURVES": False, "TIME_PROGRESS": False}
    )
    dataset = trackeval.datasets.MotChallenge2DBox(
        {"GT_FOLDER": str(gt_root), "TRACKERS_FOLDER": str(trackers), "BENCHMARK": benchmark}
        | {"SPLIT_TO_EVAL": "train", "TRACKERS_TO_EVAL": ["t"], "PRINT_CONFIG": False}
    )
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
    results, _ = evaluator.evaluate([dataset], metrics)
    return {seq: res["pedestrian"] for seq, res in results["MotChallenge2DBox"]["t"].items()}


@pytest.mark.parametrize("benchmark", ["MOT15", "MOT17", "MOT20"])
def test_same_figures_as_trackeval_reading_the_files(tmp_path: Path, benchmark: str) -> None:
    """Three noisy sequences with distractor classes, a non-MOT vehicle, zero-flagged rows, identity
    swaps and clutter, and one whose results never share a frame with its ground truth: every figure
    equals TrackEval's own, to the last bit."""
    rng = np.random.default_rng(1)
    classes = [1, 1, 1, 2, 7, 8, 12, 6]
    sequences = {}
    for k in range(3):
        gt, pred = [], []
        for f in range(1, 41):
            for i in range(1, 9):
                x, y = 60.0 * i + f, 30.0 * i
                gt.append([f, i, x, y, 40, 80, 0 if i == 3 and f % 5 == 0 else 1, classes[i - 1], 1])
                if rng.random() < 0.8:
                    track = i if f < 20 or i % 2 else i + 100
                    pred.append(
                        [f, track, *np.round([x + rng.normal(0, 8), y + rng.normal(0, 8)], 2), 40, 80, 1]
                    )
            if rng.random() < 0.3:
                pred.append([f, 500 + f, 300, 300, 30, 30, 1])
        sequences[f"S{k}"] = (np.array(gt, float), np.array(pred, float), 40)
    apart = sequences["S0"][1].copy()  # results only where the ground truth has no frame
    apart[:, 0] += 40
    sequences["S3"] = (sequences["S0"][0], apart, 80)
    ours = evaluate_sequences(sequences, benchmark=benchmark)
    theirs = trackeval_on_files(tmp_path, sequences, benchmark)
    for name in [*sequences, COMBINED]:
        reference = theirs["COMBINED_SEQ" if name == COMBINED else name]
        for family in ("HOTA", "CLEAR", "Identity"):
            for field, value in reference[family].items():
                mine = ours.curves[name][field] if np.ndim(value) else ours.rows[name][field]
                assert np.array_equal(mine, value), (name, family, field)


def test_sequences_combine_by_pooling() -> None:
    """COMBINED pools detections: MOTA over both sequences is not the mean of the two MOTAs."""
    good = np.array(box_rows({1: (100, 100)}, range(1, 11)), dtype=float)
    bad = np.array(box_rows({1: (100, 100)}, range(1, 3)), dtype=float)
    result = evaluate_sequences({"long": (good, good[:, :7], 10), "short": (bad, np.zeros((0, 7)), 2)})
    assert result.rows["long"]["MOTA"] == 1.0 and result.rows["short"]["MOTA"] == 0.0
    assert result.combined["MOTA"] == pytest.approx(10 / 12, abs=1e-12)
    assert result.combined["CLR_FN"] == 2 and result.combined["GT_Dets"] == 12
    assert list(result.rows) == ["long", "short", COMBINED]


# --- referring MOT ----------------------------------------------------------------------------------


def test_rmot_pools_expressions_and_reads_both_layouts(tmp_path: Path) -> None:
    women = box_rows({1: (100, 100)}, range(1, 11))
    cars = box_rows({4: (400, 100), 5: (600, 100)}, range(1, 4))
    pred_women = [r[:7] for r in women]  # perfect
    pred_cars = [[f, 9, x, y, w, h, 1] for f, tid, x, y, w, h, *_ in cars if tid == 4]  # misses id 5
    flat_gt, flat_pred = tmp_path / "flat_gt", tmp_path / "flat_pred"
    write_rows(flat_gt / "0005+women-walking" / "gt" / "gt.txt", women)
    write_rows(flat_gt / "0011+cars-parked" / "gt" / "gt.txt", cars)
    write_rows(flat_pred / "0005+women-walking.txt", pred_women)
    write_rows(flat_pred / "0011+cars-parked.txt", pred_cars)
    flat = evaluate_rmot(flat_gt, flat_pred)
    assert flat.names == ["0005+women-walking", "0011+cars-parked"]
    assert flat.rows["0005+women-walking"]["HOTA"] == pytest.approx(1.0)
    assert flat.rows["0011+cars-parked"]["MOTA"] == pytest.approx(0.5)
    assert flat.combined["MOTA"] == pytest.approx(13 / 16)  # pooled: 13 of 16 boxes, not (1 + 0.5) / 2
    assert flat.combined["DetA"] == pytest.approx(13 / 16)
    # The Refer-KITTI layout <video>/<expression>/{gt.txt,predict.txt} gives the same rows.
    nested = tmp_path / "results"
    write_rows(nested / "0005" / "women-walking" / "gt.txt", women)
    write_rows(nested / "0005" / "women-walking" / "predict.txt", pred_women)
    write_rows(nested / "0011" / "cars-parked" / "gt.txt", cars)
    write_rows(nested / "0011" / "cars-parked" / "predict.txt", pred_cars)
    layered = evaluate_rmot(nested, nested)
    assert layered.names == flat.names
    assert layered.combined["HOTA"] == pytest.approx(flat.combined["HOTA"], abs=1e-12)


def test_rmot_combines_expressions_as_transrmot_and_temprmot(tmp_path: Path) -> None:
    """Expression A: one person, 4 frames, tracked perfectly (TP 4, AssA 1). Expression B: one person,
    4 frames, tracked as 7 (frames 1-2) then 8 (frames 3-4), plus a stray box in frames 1-2 (TP 4,
    FP 2; each id pair matches 2 frames of 4 + 2 - 2: AssA 0.5). IoU is 1 everywhere, so every alpha
    agrees. Their COMBINED: DetA = 8 / (8 + 0 + 2), AssA = (4 * 1 + 4 * 0.5) / 8, HOTA = sqrt(0.6); not
    the mean of the expressions' HOTA (1 and sqrt(4/6 * 0.5))."""
    person = box_rows({1: (100, 100)}, range(1, 5))
    write_rows(tmp_path / "gt" / "0005+a" / "gt" / "gt.txt", person)
    write_rows(tmp_path / "gt" / "0005+b" / "gt" / "gt.txt", person)
    write_rows(tmp_path / "pred" / "0005+a.txt", [r[:7] for r in person])
    split = [[f, 7 if f <= 2 else 8, *rest[:5]] for f, _, *rest in person]
    stray = [[f, 9, 400, 400, 50, 100, 1] for f in (1, 2)]
    write_rows(tmp_path / "pred" / "0005+b.txt", split + stray)
    result = evaluate_rmot(tmp_path / "gt", tmp_path / "pred")
    assert result.rows["0005+a"]["HOTA"] == pytest.approx(1.0)
    assert result.rows["0005+b"]["AssA"] == pytest.approx(0.5)
    assert result.rows["0005+b"]["HOTA"] == pytest.approx(math.sqrt(4 / 6 * 0.5))
    assert result.combined["DetA"] == pytest.approx(0.8)
    assert result.combined["AssA"] == pytest.approx(0.75)
    assert result.combined["HOTA"] == pytest.approx(math.sqrt(0.6), abs=1e-12)
    assert result.protocol_of("HOTA") == "trackeval"


def test_rmot_frame_offsets(tmp_path: Path) -> None:
    rows = box_rows({1: (100, 100)}, range(0, 5))  # 0-based frames
    write_rows(tmp_path / "gt" / "0005+a" / "gt" / "gt.txt", rows)
    write_rows(tmp_path / "pred" / "0005+a.txt", [r[:7] for r in rows])
    with pytest.raises(InputError, match=r"gt\.txt:1: frame 0"):
        evaluate_rmot(tmp_path / "gt", tmp_path / "pred")
    shifted = evaluate_rmot(tmp_path / "gt", tmp_path / "pred", frame_offset=1)
    assert shifted.combined["HOTA"] == pytest.approx(1.0)
    # Results one frame behind the ground truth (a static box, so only the frame span differs).
    late = evaluate_rmot(tmp_path / "gt", tmp_path / "pred", frame_offset=1, pred_frame_offset=1)
    assert (late.combined["CLR_TP"], late.combined["CLR_FN"], late.combined["CLR_FP"]) == (4, 1, 1)


# --- reading files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1,1,10,10,5,5,1,1,1\n1,1,20,20,5,5,1,1,1\n",
            r":2: id 1 appears twice in frame 1 \(also at line 1\)",
        ),
        ("1,1,10,10,5,5,1,1,1\n2,1,ten,10,5,5,1,1,1\n", r":2: 'ten' is not a number"),
        ("1,1,10,10,5\n", r":1: 5 fields"),
        ("1.5,1,10,10,5,5,1,1,1\n", r":1: frame and id must be integers"),
        ("3,-1,10,10,5,5,1,1,1\n", r":1: negative id -1"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_gt(path)


def test_unknown_classes_need_mot15(tmp_path: Path) -> None:
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,10,50,90,1,1,1\n2,1,10,10,50,90,1,-1,1\n")
    pred = tmp_path / "pred.txt"
    pred.write_text("1,4,10,10,50,90,1\n2,4,10,10,50,90,1\n")
    with pytest.raises(InputError, match=r"gt\.txt:2: class -1 is not a MOTChallenge class \(MOT17"):
        evaluate_mot(gt, pred)
    row = evaluate_mot(gt, pred, benchmark="MOT15").combined
    assert row["MOTA"] == 1.0 and row["GT_Dets"] == 2


def test_reader_layouts(tmp_path: Path) -> None:
    gt = read_gt(TUD / "gt.txt")
    assert gt.is_mot15 and gt.rows.shape == (359, 9)
    assert np.all(gt.rows[:, 7] == 1) and np.all(gt.rows[:, 8] == 1)  # MOT15: pedestrians, visible
    pred = read_pred(TUD / "test.txt")
    assert pred.rows.shape == (222, 7) and pred.max_frame == 71
    assert pred.rows[0, :6] == pytest.approx([1, 3, 113.84, 274.5, 57.307, 130.05])
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("\n1 2 10 20 30 40\n\n2 2 11 21 30 40 0.5 -1 -1 -1\n")
    rows = read_pred(spaced).rows
    assert rows.tolist() == [[1, 2, 10, 20, 30, 40, 1], [2, 2, 11, 21, 30, 40, 0.5]]


# --- the eval command -------------------------------------------------------------------------------


def cli() -> typer.Typer:
    return app


def test_eval_command_writes_table_json_csv_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli(),
        [
            "eval",
            "--gt",
            str(TUD / "gt.txt"),
            "--pred",
            str(TUD / "test.txt"),
            "--json",
            str(out / "metrics.json"),
            "--csv",
            str(out / "metrics.csv"),
            "--report",
            str(out / "report"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "TUD-Campus" in result.output and "COMBINED" in result.output
    assert "52.65" in result.output  # MOTA in percent
    data = json.loads((out / "metrics.json").read_text())
    assert list(data) == ["TUD-Campus", COMBINED]
    assert data[COMBINED]["MOTA"] == pytest.approx(189 / 359)
    assert data[COMBINED]["IDSW"] == 7 and isinstance(data[COMBINED]["IDSW"], int)
    assert len(data[COMBINED]["per_alpha"]["HOTA"]) == 19
    assert np.mean(data[COMBINED]["per_alpha"]["HOTA"]) == pytest.approx(data[COMBINED]["HOTA"])
    lines = (out / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[0] == "name" and "HOTA" in header and "IDF1" in header
    assert [line.split(",")[0] for line in lines[1:]] == ["TUD-Campus", COMBINED]
    assert float(lines[2].split(",")[header.index("MOTA")]) == pytest.approx(189 / 359)
    png = out / "report" / "hota_alpha.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_command_user_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "gt.txt"
    bad.write_text("1,1,10,10,5,5,1,1,1\n1,2,10,x,5,5,1,1,1\n")
    runner = CliRunner()
    result = runner.invoke(cli(), ["eval", "--gt", str(bad), "--pred", str(TUD / "test.txt")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    message = result.output.strip()
    assert message.startswith("error: ") and f"{bad}:2:" in message and "'x' is not a number" in message
    assert len(message.splitlines()) == 1
    missing = runner.invoke(
        cli(), ["eval", "--gt", str(tmp_path / "nope.txt"), "--pred", str(TUD / "test.txt")]
    )
    assert missing.exit_code == 2 and "nope.txt" in missing.output and "not found" in missing.output
    task = runner.invoke(
        cli(), ["eval", "--gt", str(TUD / "gt.txt"), "--pred", str(TUD / "test.txt"), "--task", "dance"]
    )
    assert task.exit_code == 2 and "unknown task 'dance'" in task.output
