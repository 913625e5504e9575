"""Reward functions: hand-computed values, maxima on ground truth, TRL calling conventions, fuzzing."""

from __future__ import annotations

import math
import random
import time

import orjson
import pytest

from omnipt_data.answers import BOX_FORMATS, Answer, Box, render_answer, render_count, render_yes_no
from omnipt_data.rewards import (
    COMBINED_WEIGHTS,
    REWARD_NAMES,
    REWARDS,
    box_f1,
    caption_score,
    combined_weights,
    completion_text,
    format_score,
    identity_consistency,
    iou_matrix,
    load_solution,
    make_solution,
    mean_matched_iou,
    referring_precision_recall,
    rouge_l,
    score,
    stage1_reward,
    stage4_reward,
    task_family,
)

SIZE = (640, 480)
GT_TWO = Answer.single_image([Box(0, 0, 10, 10), Box(20, 0, 30, 10)])
# One box exact, one shifted by half its width: IoU = 50 / (100 + 100 - 50) = 1/3.
PRED_HALF = Answer.single_image([Box(0, 0, 10, 10), Box(25, 0, 35, 10)])


def tracks(shuffle_frame: int | None = None, offset: int = 0) -> Answer:
    """Three people over four frames; optionally swap two ids in one frame, or shift every id."""
    frames = {}
    for frame in range(1, 5):
        ids = [1, 2, 3]
        if frame == shuffle_frame:
            ids = [2, 1, 3]
        frames[frame] = [
            Box(10 + 2 * frame, 20, 60 + 2 * frame, 200, ids[0] + offset),
            Box(200, 30 + frame, 260, 220 + frame, ids[1] + offset),
            Box(400 - frame, 50, 470 - frame, 300, ids[2] + offset),
        ]
    return Answer.from_frames(frames)


def semantic_answer() -> Answer:
    answer = tracks()
    answer.captions = {1: "a woman in a red coat", 2: "a man with a black bag", 3: "a child on a scooter"}
    answer.interactions = {(1, 2): ["talk.v.01"], (3, 1): ["follow.v.01"]}
    answer.summary = "three people cross the square"
    return answer


# --------------------------------------------------------------------------------------------------
# Hand-computed IoU and the stage rewards
# --------------------------------------------------------------------------------------------------


def test_iou_matrix_values():
    iou = iou_matrix(PRED_HALF.boxes(), GT_TWO.boxes())
    assert iou[0, 0] == 1.0
    assert iou[1, 1] == pytest.approx(1 / 3)
    assert iou[0, 1] == 0.0
    degenerate = iou_matrix([Box(5, 5, 5, 9), Box(9, 9, 1, 1)], [Box(5, 5, 5, 9)])
    assert degenerate.tolist() == [[0.0], [0.0]]


def test_mean_matched_iou_counts_unmatched_boxes_as_zero():
    assert mean_matched_iou(PRED_HALF, GT_TWO) == pytest.approx((1 + 1 / 3) / 2)
    # An extra wrong prediction: the mean runs over max(n_pred, n_gt) = 3.
    extra = Answer.single_image([*PRED_HALF.boxes(), Box(300, 300, 310, 310)])
    assert mean_matched_iou(extra, GT_TWO) == pytest.approx((1 + 1 / 3) / 3)
    assert mean_matched_iou(Answer.single_image([]), GT_TWO) == 0.0
    assert mean_matched_iou(Answer.single_image([]), Answer.single_image([])) == 1.0
    assert mean_matched_iou([], []) == 1.0


def test_stage_rewards_hand_computed():
    solution = make_solution(GT_TWO, task="grounding", image_size=SIZE)
    text = render_answer(PRED_HALF, "omnipt", SIZE)
    # F = 2, IoU = 2/3: R1 = 2 * (1/3 + 1/2) = 5/3, R4 = 2 * 2/3 = 4/3.
    assert stage1_reward(text, solution) == pytest.approx(5 / 3)
    assert stage4_reward(text, solution) == pytest.approx(4 / 3)
    # The same boxes in Qwen's JSON: F = 0.6.
    other = render_answer(PRED_HALF, "qwen2.5", SIZE)
    assert stage1_reward(other, solution) == pytest.approx(0.6 * 5 / 6)
    assert stage4_reward(other, solution) == pytest.approx(0.6 * 2 / 3)


@pytest.mark.parametrize("box_format", BOX_FORMATS)
def test_ground_truth_scores_the_documented_maxima(box_format):
    answer = semantic_answer()
    solution = make_solution(answer, task="semantic_mot", box_format=box_format, image_size=SIZE)
    text = render_answer(answer, box_format, SIZE)
    assert score("format", text, solution) == 2.0
    assert score("stage1", text, solution) == 2.0
    assert score("stage4", text, solution) == 2.0
    for name in ("box_f1", "identity", "referring", "caption", "combined"):
        assert score(name, text, solution) == 1.0, name


def test_float_ground_truth_still_scores_the_maximum_once_quantized():
    answer = Answer.single_image([Box(10.3, 20.7, 99.49, 150.51, 1), Box(300.5, 10.5, 350.5, 90.5, 2)])
    for box_format in BOX_FORMATS:
        solution = make_solution(answer, task="detection", box_format=box_format, image_size=(333, 251))
        text = render_answer(answer, box_format, (333, 251))
        assert stage1_reward(text, solution) == 2.0


def test_garbage_scores_the_formula_floors():
    solution = make_solution(GT_TWO, task="grounding", image_size=SIZE)
    assert format_score("lorem ipsum") == 0.4
    assert stage1_reward("lorem ipsum", solution) == pytest.approx(0.2)
    assert stage4_reward("lorem ipsum", solution) == 0.0
    assert score("box_f1", "lorem ipsum", solution) == 0.0
    assert score("combined", "lorem ipsum", solution) == pytest.approx(0.2 * 0.2)
    empty_solution = make_solution(Answer.single_image([]), task="grounding", image_size=SIZE)
    assert stage1_reward("lorem ipsum", empty_solution) == pytest.approx(0.4)
    assert stage1_reward("None", empty_solution) == 2.0


def test_format_score_levels():
    assert format_score("<bbox>1,2,3,4</bbox>") == 2.0
    assert format_score('{"bbox_2d": [1, 2, 3, 4]}') == 0.6
    assert format_score('{"bbox_2d": [1, 2, 3, 4]}', "qwen2.5") == 2.0
    assert format_score("<box>(1,2),(3,4)</box>", "qwen3") == 0.6
    assert format_score("no boxes") == 0.4


# --------------------------------------------------------------------------------------------------
# Box F1, identity, referring
# --------------------------------------------------------------------------------------------------


def test_box_f1_hand_computed():
    # Matches at IoU >= 0.5: only the exact box (the shifted one has IoU 1/3). TP = 1, F1 = 2 / 4.
    assert box_f1(PRED_HALF, GT_TWO) == 0.5
    # IoU 0.6 passes 0.5 but not 0.75: F1 = (1 + 0.5) / 2 when averaged over both thresholds.
    shifted = Answer.single_image([Box(0, 0, 10, 10), Box(22.5, 0, 32.5, 10)])
    assert iou_matrix(shifted.boxes()[1:], GT_TWO.boxes()[1:])[0, 0] == pytest.approx(0.6)
    assert box_f1(shifted, GT_TWO, thresholds=(0.5, 0.75)) == pytest.approx(0.75)
    assert box_f1([], []) == 1.0
    assert box_f1([], GT_TWO) == 0.0
    with pytest.raises(ValueError):
        box_f1(PRED_HALF, GT_TWO, thresholds=())


def test_box_f1_pairs_frames_by_key():
    gt = tracks()
    shifted_frames = Answer.from_frames({i + 10: boxes for (_, i), boxes in gt.frame_items()})
    assert box_f1(gt, gt) == 1.0
    assert box_f1(shifted_frames, gt) == 0.0


def test_identity_consistency():
    gt = tracks()
    assert identity_consistency(gt, gt) == 1.0
    # Consistent but different numbering is perfect: the mapping is global and one-to-one.
    assert identity_consistency(tracks(offset=10), gt) == 1.0
    # Ids 1 and 2 swapped in one of four frames: the best mapping keeps 3 of 4 frames for tracks 1, 2.
    assert identity_consistency(tracks(shuffle_frame=2), gt) == pytest.approx(10 / 12)
    no_ids = gt.map_boxes(lambda b: Box(b.x1, b.y1, b.x2, b.y2))
    assert identity_consistency(no_ids, gt) == 0.0
    assert identity_consistency(Answer(), gt) == 0.0
    assert identity_consistency(gt, no_ids) == 1.0


def test_identity_works_across_views():
    gt = Answer.from_views({"a": {1: [Box(0, 0, 10, 10, 5)]}, "b": {1: [Box(50, 50, 60, 60, 5)]}})
    same = Answer.from_views({"a": {1: [Box(0, 0, 10, 10, 1)]}, "b": {1: [Box(50, 50, 60, 60, 1)]}})
    split = Answer.from_views({"a": {1: [Box(0, 0, 10, 10, 1)]}, "b": {1: [Box(50, 50, 60, 60, 2)]}})
    assert identity_consistency(same, gt) == 1.0
    assert identity_consistency(split, gt) == 0.5


def test_referring_negative_and_positive_sentences():
    nobody = Answer.single_image([])
    negative = make_solution(nobody, task="rmot", image_size=SIZE)
    assert referring_precision_recall(nobody, nobody).f1 == 1.0
    assert score("referring", "None", negative) == 1.0
    assert score("combined", "None", negative) == 1.0
    assert score("referring", "<bbox>1,2,3,4</bbox>", negative) == 0.0
    positive = make_solution(GT_TWO, task="rmot", image_size=SIZE)
    assert score("referring", "None", positive) == 0.0
    result = referring_precision_recall(Answer.single_image(GT_TWO.boxes()[:1]), GT_TWO)
    assert (result.precision, result.recall) == (1.0, 0.5)
    assert result.f1 == pytest.approx(2 / 3)


# --------------------------------------------------------------------------------------------------
# Captions, semantics, scalars
# --------------------------------------------------------------------------------------------------


def test_rouge_l_hand_computed():
    # LCS("a man in red", "a man in a red coat") = 4: P = 1, R = 4/6.
    beta2 = 1.2**2
    expected = (1 + beta2) * 1 * (4 / 6) / (4 / 6 + beta2 * 1)
    assert caption_score("A man in RED", ["a man in a red coat"]) == pytest.approx(expected)
    assert caption_score("a man in a red coat", ["something else", "a man in a red coat"]) == 1.0
    assert caption_score("", ["a man"]) == 0.0
    assert caption_score("a man", []) == 0.0
    assert rouge_l(["x"], ["y"]) == 0.0


def test_semantic_caption_reward():
    answer = semantic_answer()
    solution = make_solution(answer, task="semantic_mot", image_size=SIZE)
    wrong = semantic_answer()
    wrong.captions = {1: "a dog", 2: "a car", 3: "a tree"}
    wrong.interactions = {}
    wrong.summary = "nothing happens"
    low = score("caption", render_answer(wrong, "omnipt", SIZE), solution)
    assert 0.0 <= low < 0.5
    # Captions follow identities: renumbered tracks with their captions still score 1.
    renumbered = tracks(offset=10)
    renumbered.captions = {i + 10: text for i, text in answer.captions.items()}
    renumbered.interactions = {(s + 10, t + 10): labels for (s, t), labels in answer.interactions.items()}
    renumbered.summary = answer.summary
    assert score("caption", render_answer(renumbered, "omnipt", SIZE), solution) == 1.0


def test_description_reward_uses_references():
    solution = make_solution(
        Answer(), task="description", image_size=SIZE, references=["a man in a red coat"]
    )
    assert score("caption", "A man in a red coat.", solution) == 1.0
    assert score("combined", "<think>hmm</think>a man in a red coat", solution) == 1.0
    assert score("combined", "the dog", solution) == 0.0


def test_scalar_rewards():
    count = make_solution(Answer(scalar="7"), task="counting", image_size=SIZE)
    assert score("combined", render_count(7), count) == 1.0
    assert score("combined", "Answer: 7.0", count) == 1.0
    assert score("combined", "Answer: 8", count) == 0.0
    yes = make_solution(Answer(scalar="yes"), task="reid_verification", image_size=SIZE)
    assert score("combined", render_yes_no(True), yes) == 1.0
    assert score("combined", "Answer: No", yes) == 0.0
    with pytest.raises(ValueError, match="no scalar answer"):
        score("combined", "Answer: 7", make_solution(Answer(), task="counting", image_size=SIZE))


# --------------------------------------------------------------------------------------------------
# Combined reward, task families, solutions
# --------------------------------------------------------------------------------------------------


def test_task_families_and_weights():
    assert task_family("mot_step") == "tracking"
    assert task_family("clip_tracking") == "tracking"
    assert task_family("crmot") == "referring"
    assert task_family("referring_grounding") == "referring"
    assert task_family("semantic_mot") == "semantic"
    assert task_family("person_description") == "text"
    assert task_family("counting") == "scalar"
    assert task_family("grounding") == "boxes"
    for weights in COMBINED_WEIGHTS.values():
        assert sum(weights.values()) == pytest.approx(1.0)
    no_ids = make_solution(GT_TWO, task="rmot", image_size=SIZE)
    assert combined_weights(load_solution(no_ids)) == {"format": 0.2, "referring": 0.5}


def test_combined_tracking_hand_computed():
    gt = tracks()
    solution = make_solution(gt, task="mot", image_size=SIZE)
    text = render_answer(tracks(shuffle_frame=2), "omnipt", SIZE)
    # format 1 (normalised), box F1 1, identity 10/12.
    assert score("combined", text, solution) == pytest.approx(0.2 + 0.4 + 0.4 * 10 / 12)
    assert score("mot", text, solution) == score("combined", text, solution)


def test_solution_reward_override_and_json_text():
    solution = make_solution(GT_TWO, task="grounding", image_size=SIZE, reward="stage1")
    text = render_answer(PRED_HALF, "omnipt", SIZE)
    assert score("combined", text, solution) == pytest.approx(5 / 3)
    as_json = orjson.dumps(solution).decode()
    assert score("combined", text, as_json) == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="unknown reward"):
        make_solution(GT_TWO, task="grounding", image_size=SIZE, reward="bleu")


def test_malformed_solutions_raise_value_error():
    with pytest.raises(ValueError, match="JSON"):
        load_solution("{not json")
    with pytest.raises(ValueError, match="malformed solution"):
        load_solution({"answer": {"views": [{"frames": [{"boxes": [{"bbox": [1, 2]}]}]}]}})
    with pytest.raises(ValueError, match="box format"):
        load_solution({"box_format": "yolo"})
    with pytest.raises(ValueError):
        load_solution(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# TRL calling conventions
# --------------------------------------------------------------------------------------------------


def test_registry_names():
    required = {"format", "stage1", "stage4", "box_f1", "identity", "referring", "caption", "combined"}
    assert set(REWARDS) == set(REWARD_NAMES)
    assert required <= set(REWARDS)
    assert REWARDS["stage1"].__name__ == "omnipt_stage1"


def test_trl_callables_accept_strings_and_conversations():
    solution = make_solution(GT_TWO, task="grounding", image_size=SIZE)
    gt_text = render_answer(GT_TWO, "omnipt", SIZE)
    completions = [gt_text, "garbage", render_answer(PRED_HALF, "omnipt", SIZE)]
    rewards = REWARDS["stage1"](
        prompts=["p"] * 3, completions=completions, solution=[solution] * 3, extra=[1, 2, 3]
    )
    assert rewards == pytest.approx([2.0, 0.2, 5 / 3])
    conversational = [[{"role": "assistant", "content": text}] for text in completions]
    assert REWARDS["stage1"](["p"] * 3, conversational, solution=[solution] * 3) == pytest.approx(rewards)
    parts = [[{"role": "assistant", "content": [{"type": "text", "text": gt_text}]}]]
    assert REWARDS["stage4"](["p"], parts, solution=[orjson.dumps(solution).decode()]) == [2.0]


def test_trl_callables_need_solutions_except_format():
    assert REWARDS["format"](prompts=["p"], completions=["<bbox>1,2,3,4</bbox>"]) == [2.0]
    with pytest.raises(ValueError, match="solution"):
        REWARDS["stage1"](prompts=["p"], completions=["x"])
    with pytest.raises(ValueError, match="2 solutions"):
        REWARDS["stage1"](prompts=["p"], completions=["x"], solution=[{}, {}])


def test_completion_text_shapes():
    assert completion_text("abc") == "abc"
    assert completion_text({"role": "assistant", "content": "abc"}) == "abc"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"content": [{"type": "image"}, {"type": "text", "text": "t"}]}]) == "t"
    assert completion_text(None) == ""
    assert completion_text([1, 2]) == ""


# --------------------------------------------------------------------------------------------------
# Fuzzing: every reward returns a finite float on any text
# --------------------------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\n" * 1000,
    "<bbox>",
    "</bbox>",
    "<bbox>1,2,3",
    "<id>1</id>",
    "<id>",
    "<bbox>1e309,nan,-5,-5</bbox>",
    "<bbox>inf,inf,inf,inf</bbox>",
    "<bbox>-1,-1,-1,-1</bbox>",
    "<bbox>0,0,0,0</bbox>",
    "<bbox>" + "9" * 400 + ",1,1,1</bbox>",
    "<bbox>1,2,3,4,5</bbox>",
    "<bbox>(1,2),(3,4),(5,6)</bbox>",
    "<id>99999999999999999999999</id><bbox>1,2,3,4</bbox>",
    "<box>(1,2)(3,4)</box>",
    "<box>" * 1000,
    '{"bbox_2d": [1e400, 2, 3, 4]}',
    '{"bbox_2d": [' + "9" * 5000 + ", 2, 3, 4]}",
    '{"bbox_2d": [1, 2, 3, 4], "id": {"x": 1}}',
    '{"bbox_2d": "1,2,3,4"}',
    '{"bbox_2d": null, "id": [1]}',
    '{"bbox_2d": [true, false, 1, 2]}',
    '[{"bbox_2d": [1, 2, 3, 4], "id": 1e300, "label": 7}]',
    "[" * 5000,
    "{" * 5000 + "}" * 5000,
    '{"a": ' * 2000 + "1" + "}" * 2000,
    "```json\n[\n",
    "```json\n[{]}\n```",
    "Frame 1:\nFrame 1:\nFrame 1:",
    "Frame -1:\nFrame 0:\nFrame 999999999:",
    "View :\nView x:\nView " + "y" * 300 + ":",
    "Caption 1: \nCaption 1: again\nInteraction 1-1: ,,,\nSummary:\nAnswer:",
    "Interaction 99999999999999999999-1: x",
    "<think>" * 1000 + "<bbox>1,2,3,4</bbox>",
    "<answer>" * 1000 + "</answer>" * 1000,
    "\x00\x01\x02\x7f\x1b[0m\u200b\u202e\ufeff",
    "\ud800\udfff<bbox>1,2,3,4</bbox>",
    "１２,３４",
    "<bbox>１,２,３,４</bbox>",
    "<BBOX>1,2,3,4</BBOX>",
    "NaN",
    "None\nNone\n[]",
]


def random_strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    tags = ["<bbox>", "</bbox>", "<id>", "</id>", "<box>", "</box>", "<ref>", "</ref>", "<think>", "</think>"]
    tags += ["<answer>", "</answer>"]
    punctuation = ["(", ")", "[", "]", "{", "}", ":", ",", " ", "\n", "\t", "-", ".", '"', "```json", "```"]
    words = ['"bbox_2d"', '"id"', '"label"', "Frame ", "View ", "Caption ", "Interaction ", "Summary:"]
    words += ["Answer:", "nan", "inf", "1e309", "None", "[]", "true", "null"]
    pieces = tags + punctuation + words

    def one_piece() -> str:
        roll = rng.random()
        if roll < 0.55:
            return rng.choice(pieces)
        if roll < 0.85:
            return str(rng.choice([0, 1, 7, 42, 640, 1000, 10**6, 10**30, -3]))
        return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randint(1, 4)))

    return ["".join(one_piece() for _ in range(rng.randint(0, 80))) for _ in range(count)]


def fuzz_solutions() -> list[dict]:
    single = make_solution(GT_TWO, task="grounding", image_size=SIZE)
    return [
        single,
        make_solution(semantic_answer(), task="semantic_mot", box_format="qwen3", image_size=SIZE),
        make_solution(tracks(), task="mot", box_format="qwen2.5", image_size=SIZE),
        make_solution(Answer.single_image([]), task="rmot", image_size=SIZE),
        make_solution(Answer(scalar="3"), task="counting", image_size=SIZE),
        make_solution(Answer(), task="description", image_size=SIZE, references=["a man in red"]),
    ]


def applicable(name: str, solution: dict) -> bool:
    task = solution["task"]
    if name == "scalar":
        return task == "counting"
    if name == "caption":
        return task in ("semantic_mot", "description")
    return True


def assert_all_finite(texts: list[str]) -> None:
    solutions = fuzz_solutions()
    for index, text in enumerate(texts):
        solution = solutions[index % len(solutions)]
        for name in REWARD_NAMES:
            if applicable(name, solution):
                value = score(name, text, solution)
                assert isinstance(value, float) and math.isfinite(value), (name, text[:200])


def test_fuzz_hand_written_nasty_strings():
    assert_all_finite([text for text in NASTY for _ in range(len(fuzz_solutions()))])


def test_fuzz_seeded_random_strings():
    assert_all_finite(random_strings(3000, seed=20251125))


def test_fuzz_large_inputs_stay_fast():
    rng = random.Random(7)
    megabyte = "".join(rng.choice("<>[]{}(),0123456789 \nbox") for _ in range(1_000_000))
    many_boxes = "<id>1</id><bbox>1,2,3,4</bbox>\n" * 40_000
    texts = [
        megabyte,
        many_boxes,
        "<bbox>" * 200_000,
        "[" * 1_000_000,
        "a" * 1_000_000,
        " " * 1_000_000 + "x",
    ]
    start = time.perf_counter()
    assert_all_finite(texts)
    assert time.perf_counter() - start < 60
    solution = make_solution(GT_TWO, task="grounding", image_size=SIZE)
    # Forty thousand boxes for two: the mean IoU runs over all of them.
    assert stage4_reward(many_boxes, solution) == pytest.approx(0.0, abs=1e-3)
