"""The answer grammar: exact renderings, round trips, layout detection, robustness, resize rule."""

from __future__ import annotations

import math

import orjson
import pytest

from omnipt_data.answers import (
    BOX_FORMATS,
    PROCESSOR_PRESETS,
    Answer,
    Box,
    Frame,
    View,
    answer_from_dict,
    answer_region,
    answer_to_dict,
    clip_answer,
    model_image_size,
    normalize_box_format,
    parse_answer,
    parse_count,
    parse_scalar,
    parse_yes_no,
    quantize_answer,
    render_answer,
    render_count,
    render_yes_no,
    scale_answer,
    scale_boxes,
    smart_resize,
)

SIZE = (640, 480)


def clip_answer_fixture() -> Answer:
    return Answer.from_frames(
        {
            1: [Box(12, 40, 42, 128, 3), Box(200, 35, 241, 155, 5)],
            2: [],
            3: [Box(14, 41, 44, 128, 3)],
        }
    )


def multi_view_fixture() -> Answer:
    return Answer.from_views(
        {
            "left": {1: [Box(10, 10, 60, 200, 7)], 2: [Box(12, 10, 62, 200, 7)]},
            "right": {1: [Box(300, 50, 340, 170, 7), Box(400, 60, 430, 150, 9)], 2: []},
        }
    )


def semantic_fixture() -> Answer:
    answer = Answer.from_frames(
        {1: [Box(10, 20, 40, 80, 1), Box(50, 20, 80, 80, 2)], 2: [Box(12, 20, 42, 80, 1)]}
    )
    answer.captions = {1: "a woman in a red coat", 2: "a man with a bag"}
    answer.interactions = {(1, 2): ["talk.v.01", "walk.v.01"]}
    answer.summary = "two people talk while walking"
    return answer


FIXTURES = {
    "single": lambda: Answer.single_image([Box(12, 40, 42, 128), Box(100, 100, 180, 300)]),
    "single_ids": lambda: Answer.single_image([Box(12, 40, 42, 128, 1), Box(100, 100, 180, 300, 2)]),
    "clip": clip_answer_fixture,
    "multi_view": multi_view_fixture,
    "semantic": semantic_fixture,
    "empty_single": lambda: Answer.single_image([]),
    "empty_clip": lambda: Answer.from_frames({1: [], 2: []}),
}


# --------------------------------------------------------------------------------------------------
# Exact renderings (the grammar by example)
# --------------------------------------------------------------------------------------------------


def test_render_omnipt_clip_exact_text():
    assert render_answer(clip_answer_fixture(), "omnipt", SIZE) == (
        "Frame 1:\n"
        "<id>3</id><bbox>12,40,30,88</bbox>\n"
        "<id>5</id><bbox>200,35,41,120</bbox>\n"
        "Frame 2:\n"
        "Frame 3:\n"
        "<id>3</id><bbox>14,41,30,87</bbox>"
    )


def test_render_qwen25_single_exact_text():
    answer = Answer.single_image([Box(12, 40, 42, 128, 3)])
    assert render_answer(answer, "qwen2.5", SIZE) == (
        '```json\n[\n\t{"bbox_2d": [12, 40, 42, 128], "id": 3, "label": "person"}\n]\n```'
    )


def test_render_qwen3_uses_relative_scale():
    answer = Answer.single_image([Box(12, 40, 42, 128, 3), Box(0, 0, 640, 480)])
    assert render_answer(answer, "qwen3", SIZE) == (
        "```json\n[\n"
        '\t{"bbox_2d": [19, 83, 66, 267], "id": 3, "label": "person"},\n'
        '\t{"bbox_2d": [0, 0, 1000, 1000], "label": "person"}\n'
        "]\n```"
    )


def test_render_multi_view_and_semantic_lines():
    text = render_answer(multi_view_fixture(), "omnipt", SIZE)
    assert text.splitlines()[:4] == [
        "View left:",
        "Frame 1:",
        "<id>7</id><bbox>10,10,50,190</bbox>",
        "Frame 2:",
    ]
    assert "View right:" in text
    semantic = render_answer(semantic_fixture(), "omnipt", SIZE).splitlines()
    assert semantic[-4:] == [
        "Caption 1: a woman in a red coat",
        "Caption 2: a man with a bag",
        "Interaction 1-2: talk.v.01, walk.v.01",
        "Summary: two people talk while walking",
    ]


def test_render_empty_answers():
    assert render_answer(Answer.single_image([]), "omnipt") == "None"
    assert render_answer(Answer.single_image([]), "qwen2.5") == "```json\n[]\n```"
    assert render_answer(Answer.from_frames({1: [], 2: []}), "omnipt") == "Frame 1:\nFrame 2:"


def test_render_clips_to_image_and_rounds_half_up():
    answer = Answer.single_image([Box(-5.0, 10.5, 700.2, 479.6)])
    assert render_answer(answer, "omnipt", SIZE) == "<bbox>0,11,640,469</bbox>"
    assert (
        render_answer(answer, "qwen2.5", SIZE).splitlines()[2]
        == '\t{"bbox_2d": [0, 11, 640, 480], "label": "person"}'
    )


def test_render_rejects_unparseable_names_and_missing_size():
    with pytest.raises(ValueError, match="view name"):
        render_answer(Answer.from_views({"cam:1": {1: []}}), "omnipt", SIZE)
    with pytest.raises(ValueError, match="image_size"):
        render_answer(Answer.single_image([Box(1, 1, 5, 5)]), "qwen3")
    bad_label = semantic_fixture()
    bad_label.interactions = {(1, 2): ["hold, carry"]}
    with pytest.raises(ValueError, match="interaction label"):
        render_answer(bad_label, "omnipt", SIZE)
    with pytest.raises(ValueError, match="unknown box format"):
        render_answer(Answer(), "yolo")


# --------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("box_format", ["omnipt", "qwen2.5"])
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_round_trip_is_exact_for_integer_boxes(box_format, name):
    answer = FIXTURES[name]()
    parsed = parse_answer(render_answer(answer, box_format, SIZE), box_format, SIZE)
    assert parsed.answer == answer
    assert parsed.format_status == "exact"
    assert parsed.unparsed == 0
    assert parsed.stray_lines == 0


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_round_trip_qwen3_within_rounding(name):
    answer = FIXTURES[name]()
    parsed = parse_answer(render_answer(answer, "qwen3", SIZE), "qwen3", SIZE)
    assert parsed.format_status == "exact"
    assert parsed.answer == quantize_answer(answer, "qwen3", SIZE)
    got, want = parsed.answer.boxes(), answer.boxes()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.track_id == w.track_id
        assert abs(g.x1 - w.x1) <= SIZE[0] / 2000 + 1e-9
        assert abs(g.x2 - w.x2) <= SIZE[0] / 2000 + 1e-9
        assert abs(g.y1 - w.y1) <= SIZE[1] / 2000 + 1e-9
        assert abs(g.y2 - w.y2) <= SIZE[1] / 2000 + 1e-9
    assert parsed.answer.captions == answer.captions
    assert parsed.answer.interactions == answer.interactions


@pytest.mark.parametrize("box_format", BOX_FORMATS)
def test_round_trip_of_float_boxes_equals_quantized(box_format):
    answer = Answer.from_frames({1: [Box(10.4, 20.6, 99.5, 150.49, 4)], 2: [Box(0.2, 0.7, 639.9, 479.2, 4)]})
    parsed = parse_answer(render_answer(answer, box_format, SIZE), box_format, SIZE)
    assert parsed.answer == quantize_answer(answer, box_format, SIZE)


def test_quantize_is_idempotent():
    answer = Answer.single_image([Box(10.37, 20.61, 99.5, 150.49)])
    for box_format in BOX_FORMATS:
        once = quantize_answer(answer, box_format, (333, 271))
        assert quantize_answer(once, box_format, (333, 271)) == once


def test_scalar_answers_round_trip():
    assert render_count(7) == "Answer: 7"
    assert render_yes_no(True) == "Answer: yes"
    assert render_yes_no(False) == "Answer: no"
    assert parse_count("Answer: 7") == 7
    assert parse_count("There are some.\nAnswer: 12.") == 12
    assert parse_count("7") == 7
    assert parse_count("Answer: seven") is None
    assert parse_yes_no("Answer: Yes.") is True
    assert parse_yes_no("no") is False
    assert parse_yes_no("Answer: maybe") is None
    assert parse_scalar("a very long explanation without any answer line at all, surely") is None
    answer = Answer(scalar="7")
    assert parse_answer(render_answer(answer), "omnipt").answer == answer


def test_dict_round_trip_is_json_serializable():
    answer = semantic_fixture()
    data = orjson.loads(orjson.dumps(answer_to_dict(answer)))
    assert answer_from_dict(data) == answer
    assert (
        answer_from_dict(orjson.loads(orjson.dumps(answer_to_dict(multi_view_fixture()))))
        == multi_view_fixture()
    )
    assert answer_from_dict({"views": None, "captions": None}) == Answer()


# --------------------------------------------------------------------------------------------------
# Layouts and format status
# --------------------------------------------------------------------------------------------------


def boxes_of(text: str, box_format: str = "omnipt", size=SIZE) -> list[tuple[float, ...]]:
    return [b.corners for b in parse_answer(text, box_format, size).answer.boxes()]


def test_qwen_json_under_omnipt_is_other_and_read_as_absolute_corners():
    parsed = parse_answer('```json\n[{"bbox_2d": [12, 40, 42, 128], "label": "person"}]\n```', "omnipt", SIZE)
    assert parsed.format_status == "other"
    assert parsed.layouts == ("qwen_json",)
    assert parsed.answer.boxes() == [Box(12, 40, 42, 128)]


def test_qwen_vl_v1_box_is_relative_corners():
    parsed = parse_answer("<ref>person</ref><box>(100,200),(500,1000)</box>", "omnipt", SIZE)
    assert parsed.format_status == "other"
    assert parsed.layouts == ("qwen_vl_box",)
    assert boxes_of("<box>(100,200),(500,1000)</box>") == [(64.0, 96.0, 320.0, 480.0)]


def test_bare_list_is_other_on_the_requested_json_scale():
    assert parse_answer("[12, 40, 42, 128]", "omnipt", SIZE).format_status == "other"
    assert boxes_of("[12, 40, 42, 128]", "qwen2.5") == [(12.0, 40.0, 42.0, 128.0)]
    assert boxes_of("[100, 200, 500, 1000]", "qwen3") == [(64.0, 96.0, 320.0, 480.0)]


def test_corners_inside_bbox_are_told_from_xywh():
    # 300,100,400,300 as x,y,w,h leaves a 640x480 image (300 + 400 > 640) but fits as corners.
    parsed = parse_answer("<bbox>300,100,400,300</bbox>", "omnipt", SIZE)
    assert parsed.format_status == "other"
    assert parsed.layouts == ("bbox_corners",)
    assert parsed.answer.boxes() == [Box(300, 100, 400, 300)]
    # The same numbers fit as x,y,w,h in a larger image: read as the exact format.
    assert parse_answer("<bbox>300,100,400,300</bbox>", "omnipt", (1280, 720)).format_status == "exact"
    assert boxes_of("<bbox>300,100,400,300</bbox>", size=(1280, 720)) == [(300.0, 100.0, 700.0, 400.0)]
    # Explicit corner layouts inside <bbox> are always corners.
    assert boxes_of("<bbox>(10,20),(30,40)</bbox>") == [(10.0, 20.0, 30.0, 40.0)]
    assert parse_answer("<bbox>[10,20,30,40]</bbox>", "omnipt", SIZE).layouts == ("bbox_corners",)


def test_decimal_or_signed_numbers_are_not_exact():
    parsed = parse_answer("<bbox>12.5,40,30,88</bbox>", "omnipt", SIZE)
    assert parsed.format_status == "other"
    assert parsed.layouts == ("loose_numbers", "omnipt")
    assert parsed.answer.boxes() == [Box(12.5, 40, 42.5, 128)]
    assert parse_answer('[{"bbox_2d": [1.0, 2, 3, 4]}]', "qwen2.5", SIZE).format_status == "other"


def test_omnipt_under_qwen_is_other():
    parsed = parse_answer("<id>2</id><bbox>12,40,30,88</bbox>", "qwen2.5", SIZE)
    assert parsed.format_status == "other"
    assert parsed.answer.boxes() == [Box(12, 40, 42, 128, 2)]


def test_no_box_is_none_and_stray_text_counted():
    parsed = parse_answer("I see three people walking.", "omnipt", SIZE)
    assert parsed.format_status == "none"
    assert parsed.stray_lines == 1
    assert parsed.answer == Answer()


def test_well_formed_empty_answers_are_exact():
    assert parse_answer("None", "omnipt").format_status == "exact"
    assert parse_answer("Frame 1:\nFrame 2:", "omnipt").format_status == "exact"
    assert parse_answer("```json\n[]\n```", "qwen3").format_status == "exact"
    assert parse_answer("None", "qwen2.5").format_status == "none"
    assert parse_answer("Frame 1:\nnobody here", "omnipt").format_status == "none"


def test_unparsable_fragments_are_counted_and_make_the_status_other():
    parsed = parse_answer(
        "<bbox>12,40,30,88</bbox>\n<bbox>1e309,nan,-5,-5</bbox>\n<bbox>12,40", "omnipt", SIZE
    )
    assert parsed.answer.boxes() == [Box(12, 40, 42, 128)]
    assert parsed.unparsed == 2
    assert parsed.format_status == "other"
    bad_json = parse_answer(
        '[{"bbox_2d": [1, 2, "x", 4]}, {"bbox_2d": [NaN, 1, 2, 3]}, {"bbox_2d": [1, 2]}]', "qwen2.5"
    )
    assert bad_json.unparsed == 3
    assert bad_json.answer.boxes() == []


def test_ids_labels_and_wrong_types_in_json():
    text = '[{"bbox_2d": [1, 2, 3, 4], "id": "7", "label": "rider"}, {"bbox_2d": [5, 6, 7, 8], "id": true}]'
    boxes = parse_answer(text, "qwen2.5", SIZE).answer.boxes()
    assert boxes == [Box(1, 2, 3, 4, 7, "rider"), Box(5, 6, 7, 8, None)]


def test_several_boxes_on_one_line_and_header_tails():
    text = "Frame 1: <id>1</id><bbox>1,2,3,4</bbox> <id>2</id><bbox>10,20,30,40</bbox>\nframe 2:"
    answer = parse_answer(text, "omnipt", SIZE).answer
    assert answer.views == [
        View(None, [Frame(1, [Box(1, 2, 4, 6, 1), Box(10, 20, 40, 60, 2)]), Frame(2, [])])
    ]


def test_think_blocks_are_dropped_and_answer_tags_read():
    text = "<think>maybe <bbox>1,1,1,1</bbox></think><answer><bbox>12,40,30,88</bbox></answer> trailing"
    assert answer_region(text) == "<bbox>12,40,30,88</bbox>"
    assert boxes_of(text) == [(12.0, 40.0, 42.0, 128.0)]
    assert answer_region("<think>unclosed <bbox>1,2,3,4</bbox>") == "<think>unclosed <bbox>1,2,3,4</bbox>"
    assert answer_region("x <answer>open to the end") == "open to the end"


def test_relative_boxes_stay_on_the_thousand_scale_without_a_size():
    assert boxes_of('[{"bbox_2d": [100, 200, 300, 400]}]', "qwen3", None) == [(100.0, 200.0, 300.0, 400.0)]
    assert boxes_of('[{"bbox_2d": [100, 200, 300, 400]}]', "qwen3", (-5, float("nan"))) == [
        (100.0, 200.0, 300.0, 400.0)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<bbox>",
        "<id>x</id><bbox>1,2,3,4</bbox>",
        "<bbox>" + "9" * 5000 + ",1,2,3</bbox>",
        "{" * 10000,
        "[" * 10000 + "]" * 10000,
        '{"bbox_2d": ' + "[" * 3000 + "]" * 3000 + "}",
        '{"bbox_2d": [' + "9" * 4500 + ", 1, 2, 3]}",
        "Frame 99999999999999999999:\nView :\nView " + "x" * 500 + ":",
        "Caption 1:\nInteraction 1-:\nSummary\nAnswer:",
        "\x00\x01\x1b[31m\ud800\u2028\u202e<bbox>1,2,3,4</bbox>",
        '```json\n[{"bbox_2d": [1, 2, 3, 4]',
    ],
)
def test_parse_never_raises(text):
    for box_format in BOX_FORMATS:
        parsed = parse_answer(text, box_format, SIZE)
        assert parsed.format_status in ("exact", "other", "none")
        for box in parsed.answer.boxes():
            assert all(math.isfinite(v) for v in box.corners)


def test_parse_accepts_non_text_and_bad_sizes():
    assert parse_answer(None, "omnipt", SIZE).format_status == "none"  # type: ignore[arg-type]
    assert parse_answer("<bbox>1,2,3,4</bbox>", "omnipt", "640x480").format_status == "exact"  # type: ignore[arg-type]


def test_box_format_aliases():
    assert normalize_box_format("Qwen2.5-VL") == "qwen2.5"
    assert normalize_box_format("qwen3-vl") == "qwen3"
    with pytest.raises(ValueError, match=r"expected one of omnipt, qwen2\.5, qwen3"):
        parse_answer("x", "coco")


# --------------------------------------------------------------------------------------------------
# Geometry helpers and the processors' resize rule
# --------------------------------------------------------------------------------------------------


def test_scale_boxes_and_answers():
    assert scale_boxes([(10, 20, 30, 40)], (100, 200), (50, 400)) == [(5.0, 40.0, 15.0, 80.0)]
    assert scale_boxes([Box(10, 20, 30, 40, 3)], (100, 200), (50, 400)) == [Box(5, 40, 15, 80, 3)]
    scaled = scale_answer(clip_answer_fixture(), (640, 480), (1280, 960))
    assert scaled.boxes()[0] == Box(24, 80, 84, 256, 3)
    back = scale_answer(scaled, (1280, 960), (640, 480))
    assert back == clip_answer_fixture()
    with pytest.raises(ValueError):
        scale_boxes([(0, 0, 1, 1)], (0, 10), (10, 10))


def test_clip_answer_drops_boxes_outside_the_image():
    answer = Answer.single_image([Box(-10, -10, 50, 50), Box(700, 10, 800, 50), Box(600, 400, 700, 500)])
    clipped = clip_answer(answer, SIZE)
    assert clipped.boxes() == [Box(0, 0, 50, 50), Box(600, 400, 640, 480)]
    assert len(clip_answer(answer, SIZE, drop_empty=False).boxes()) == 3


def test_smart_resize_matches_the_processor_rule():
    assert smart_resize(1080, 1920) == (1092, 1932)
    assert smart_resize(1080, 1920, max_pixels=1280 * 28 * 28) == (728, 1316)
    assert smart_resize(20, 20) == (56, 56)
    qwen3 = PROCESSOR_PRESETS["qwen3-vl"]
    assert qwen3.factor == 32
    assert PROCESSOR_PRESETS["qwen2.5-vl"].factor == 28
    assert smart_resize(100, 80, qwen3.factor, qwen3.min_pixels, qwen3.max_pixels) == (288, 256)
    assert model_image_size((80, 100), "qwen3-vl") == (256, 288)
    assert model_image_size((1920, 1080), "qwen2.5-vl", max_pixels=1280 * 28 * 28) == (1316, 728)


@pytest.mark.parametrize("preset_name", sorted(PROCESSOR_PRESETS))
def test_smart_resize_invariants(preset_name):
    preset = PROCESSOR_PRESETS[preset_name]
    for height, width in [(1, 150), (480, 640), (1080, 1920), (2160, 3840), (5000, 7000), (37, 2900)]:
        h, w = smart_resize(height, width, preset.factor, preset.min_pixels, preset.max_pixels)
        assert h % preset.factor == 0
        assert w % preset.factor == 0
        assert preset.min_pixels <= h * w <= preset.max_pixels
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2010)
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 10)
