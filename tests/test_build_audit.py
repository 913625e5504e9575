"""The build audit sees content: a clean build of the synthetic world has no content finding; hand-made
faults (a dataset answering only "nothing", a clip of an image collection, a duplicate, an answer that
copies the prompt, lopsided yes/no answers, too many empty answers) are each found where they were made,
and the report carries the per-dataset table and its plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from omnipt_data.answers import Answer, parse_answer, render_answer
from omnipt_data.audit import run_audit
from omnipt_data.build import BuildOptions, build
from omnipt_data.build.source import BuildSource
from omnipt_data.convert import convert
from omnipt_data.evaluate.captions import relations_to_triples

CONTENT_CHECKS = [
    "empty_answers_only",
    "temporal_from_non_video",
    "empty_share_above_target",
    "duplicate_samples",
    "answer_repeats_prompt",
    "answer_imbalance",
    "content_by_dataset",
    "answer_distribution",
]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def _answer(record: dict, text: str) -> None:
    record["messages"][-1]["content"][0]["text"] = text


@pytest.fixture(scope="module")
def clean_build(small_world, tmp_path_factory) -> Path:
    _, world = small_world
    root = tmp_path_factory.mktemp("content")
    stores = [convert(f, world / f, root / f, show_progress=False).store.path for f in ("mot", "coco")]
    out = root / "build"
    build(
        BuildOptions(
            stage="mid",
            stores=stores,
            out=out,
            tasks=["position_prediction", "visibility", "count"],
            show_progress=False,
        )
    )
    return out


def test_clean_build_has_no_content_finding(clean_build, tmp_path):
    audit = run_audit(clean_build, tmp_path / "report", checks=CONTENT_CHECKS, show_progress=False)
    flagged = {r.name: r.count for r in audit.results if r.severity != "info" and r.count}
    assert flagged == {}
    table = {(f["task"], f["dataset"]): f for f in audit.result("content_by_dataset").findings}
    # position prediction only from the MOT videos; COCO's image collection feeds counting only
    assert set(table) == {
        ("count", "coco"),
        ("count", "mot"),
        ("position_prediction", "mot"),
        ("visibility", "mot"),
    }
    assert table[("position_prediction", "mot")]["negative_share"] == 0.0
    assert table[("count", "mot")]["negative_share"] == 0.1
    visibility = table[("visibility", "mot")]
    assert visibility["commonest_share"] == pytest.approx(0.5, abs=0.05)  # the template's yes_share
    answers = {f["answer"]: f["samples"] for f in audit.result("answer_distribution").findings}
    assert set(answers) == {"yes", "no"} and abs(answers["yes"] - answers["no"]) <= 1
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # findings, token lengths, empty shares, answers
    assert "<h2>Content per task and dataset</h2>" in page
    assert "<td>position_prediction</td><td>mot</td>" in page and "<td>count</td><td>coco</td>" in page
    manifest = json.loads((clean_build / "manifest.json").read_text())
    skipped = manifest["tasks"]["position_prediction"]["skipped"]
    assert skipped == [{"dataset": "coco", "reason": "not videos (image collections)", "sequences": 2}]


def test_hand_made_faults_are_found_where_they_were_made(clean_build, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(clean_build, bad)
    native = bad / "native"

    prediction = native / "position_prediction" / "mid-position_prediction-00000.jsonl"
    records = _lines(prediction)
    copier = records[0]
    size = tuple(copier["image_sizes"][0])
    instruction = copier["messages"][-2]["content"][-1]["text"]
    given = parse_answer(instruction, "omnipt", size).answer.boxes()
    assert given  # the prompt gives frame 1's boxes; the answer now copies them into frame 4
    _answer(copier, render_answer(Answer.from_frames({4: given}), "omnipt", size))
    coco = BuildSource(clean_build.parent / "coco")
    coco_images = coco.store.read("frames").select(coco.absolute_path())["image_path"].sort().to_list()
    collage = records[1]
    collage["images"] = coco_images[:4]
    half = len(records) // 2
    for record in records[2 : 2 + half]:
        _answer(record, "Frame 4:")  # nobody: more empty answers than the template's 0%
    _write(prediction, records)

    visibility = native / "visibility" / "mid-visibility-00000.jsonl"
    records = _lines(visibility)
    for record in records:
        _answer(record, "Answer: yes")
    _write(visibility, records)

    count = native / "count" / "mid-count-00000.jsonl"
    records = _lines(count)
    for record in records:
        if record["dataset"] == "coco":
            _answer(record, "Answer: 0")
    records.append(records[0])
    _write(count, records)

    audit = run_audit(bad, tmp_path / "report", checks=CONTENT_CHECKS, show_progress=False)
    flagged = {r.name: r.count for r in audit.results if r.severity != "info" and r.count}
    assert flagged == {
        "empty_answers_only": 1,
        "temporal_from_non_video": 1,
        "empty_share_above_target": 1,
        "duplicate_samples": 1,
        "answer_repeats_prompt": 1,
        "answer_imbalance": 1,
    }
    only = audit.result("empty_answers_only").findings[0]
    assert (only["task"], only["dataset"]) == ("count", "coco")
    collage_finding = audit.result("temporal_from_non_video").findings[0]
    assert collage_finding["record_id"] == collage["id"] and collage_finding["sequence"].startswith("coco/")
    assert audit.result("answer_repeats_prompt").findings[0]["record_id"] == copier["id"]
    above = audit.result("empty_share_above_target").findings[0]
    assert (above["task"], above["dataset"]) == ("position_prediction", "mot")
    imbalance = audit.result("answer_imbalance").findings[0]
    assert (imbalance["task"], imbalance["share"]) == ("visibility", 1.0)


def test_evaluation_reads_interactions_said_in_words_as_the_store_synsets():
    words = {"1-2": ["walks with", "passes"], "3-1": ["approaches"], "2-3": ["hold.v.01"]}
    assert relations_to_triples(words) == {
        (1, 2, "accompany.v.02"),
        (1, 2, "pass.v.01"),
        (3, 1, "approach.v.01"),
        (2, 3, "hold.v.01"),
    }
