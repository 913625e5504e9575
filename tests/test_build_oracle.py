"""The round-trip oracle: every sample of every stage, task and dataset built from the synthetic world's
stores says what the stores say.

Each answer (and each box a prompt gives) is parsed with :mod:`omnipt_data.answers`, mapped back to the
original image's pixels and compared with the store: boxes to one model pixel (the box format's integer
rounding), track ids one-to-one with the store's across frames and views, referring answers the
sentence's referents whatever their category, captions, summaries and interactions verbatim (words read
back as the store's synsets), yes/no and choice answers against identities and visibilities. Tasks about
people draw only from datasets whose categories say person; temporal tasks only from videos.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from omnipt_data.answers import (
    Answer,
    Box,
    parse_answer,
    parse_count,
    parse_scalar,
    parse_yes_no,
    scale_answer,
)
from omnipt_data.build import BuildOptions, build
from omnipt_data.build.draft import PERSON_CATEGORIES
from omnipt_data.build.source import BuildSource, draws_for
from omnipt_data.build.templates import STAGES, load_templates
from omnipt_data.convert import convert
from omnipt_data.demo import STAGE_STORES
from omnipt_data.interactions import synset_of

TOLERANCE_MODEL_PX = 1.01  # x, y, w, h are rounded separately: a corner may move by one model pixel


@dataclass
class World:
    """Every store of the build, indexed by what a sample names: image paths."""

    frames: dict[str, dict[str, Any]] = field(default_factory=dict)  # abs path -> frame row
    boxes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    video: dict[str, bool | None] = field(default_factory=dict)
    person_datasets: set[str] = field(default_factory=set)
    referents: dict[str, set[tuple[str, int]]] = field(default_factory=lambda: defaultdict(set))
    semantics: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)  # abs path -> identity row
    sentences: dict[str, str] = field(default_factory=dict)  # expression uid -> sentence


def load_world(stores: list[Path]) -> World:
    world = World()
    for path in stores:
        source = BuildSource(path)
        world.person_datasets |= source.person_datasets()
        world.video.update({s.uid: s.video for s in source.sequences()})
        frames = source.store.read("frames").with_columns(source.absolute_path().alias("abs_path"))
        world.frames.update({r["abs_path"]: r for r in frames.iter_rows(named=True)})
        boxes = source.store.read("boxes").filter((pl.col("source") == "gt") & ~pl.col("ignore"))
        for row in boxes.iter_rows(named=True):
            world.boxes[row["frame_uid"]].append(row)
        expressions = source.store.read("expressions")
        world.sentences.update(dict(zip(expressions["expression_uid"], expressions["sentence"], strict=True)))
        for uid, frame_uid, track in source.store.read("referents").iter_rows():
            world.referents[uid].add((frame_uid, track))
        for row in source.store.read("semantics").iter_rows(named=True):
            world.semantics[row["sequence_uid"]].append(row)
        for row in source.store.read("identities").iter_rows(named=True):
            world.identities[source.image_path(row["dataset"], row["image_path"])] = row
    return world


@dataclass
class Turn:
    images: list[str]
    instruction: str
    answer: str


def turns_of(record: dict[str, Any]) -> list[Turn]:
    turns, images, instruction = [], [], ""
    for message in record["messages"]:
        parts = message["content"]
        if message["role"] == "user":
            images = [p["image"] for p in parts if p["type"] == "image"]
            instruction = [p["text"] for p in parts if p["type"] == "text"][-1]
        elif message["role"] == "assistant":
            turns.append(Turn(images, instruction, parts[0]["text"]))
    return turns


def _expected(row: dict[str, Any], frame: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """A store box as an answer can show it: clipped to the image (None when nothing is left)."""
    x1, y1 = max(row["x1"], 0.0), max(row["y1"], 0.0)
    x2, y2 = min(row["x2"], frame["width"]), min(row["y2"], frame["height"])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


class Oracle:
    """Checks one build's records against the world; ``problems`` lists what disagrees."""

    def __init__(self, world: World, manifest: dict[str, Any]):
        self.world, self.manifest = world, manifest
        self.problems: list[str] = []
        self.checked: dict[tuple[str, str], int] = defaultdict(int)

    def fail(self, record: dict[str, Any], text: str) -> None:
        self.problems.append(
            f"{record['stage']}/{record['task']}/{record['dataset']} {record['key']}: {text}"
        )

    # --- mapping answers back ---------------------------------------------------------------------

    def original(self, record: dict[str, Any], k: int, text: str) -> tuple[Answer, float]:
        """``text`` parsed in the model image of record image ``k``, mapped back to original pixels, and
        the tolerance of one model pixel there."""
        model, original = record["image_sizes"][k], record["original_sizes"][k]
        parsed = parse_answer(text, record["box_format"], tuple(model))
        tolerance = TOLERANCE_MODEL_PX * max(original[0] / model[0], original[1] / model[1])
        return scale_answer(parsed.answer, tuple(model), tuple(original)), tolerance

    def frame(self, record: dict[str, Any], image: str) -> dict[str, Any] | None:
        found = self.world.frames.get(image)
        if found is None:
            self.fail(record, f"image {image} is no frame of the build's stores")
        return found

    def match(
        self,
        record: dict[str, Any],
        where: str,
        got: list[Box],
        rows: list[dict[str, Any]],
        frame: dict[str, Any],
        tolerance: float,
        ids: dict[int, int] | None,
    ) -> None:
        """``got`` are exactly ``rows`` (store boxes of ``frame``); with ``ids`` (answer id -> store track,
        shared across the record's frames and views) the ids must map one-to-one."""
        expected = [(r, e) for r in rows if (e := _expected(r, frame)) is not None]
        left = list(got)
        for row, corners in expected:
            hit = next(
                (
                    b
                    for b in left
                    if all(abs(a - c) <= tolerance for a, c in zip(b.corners, corners, strict=True))
                ),
                None,
            )
            if hit is None:
                self.fail(
                    record, f"{where}: store box of track {row['track_id']} {corners} is not in the answer"
                )
                continue
            left.remove(hit)
            if ids is not None:
                if hit.track_id is None:
                    self.fail(record, f"{where}: a box without id")
                elif ids.setdefault(hit.track_id, row["track_id"]) != row["track_id"]:
                    self.fail(
                        record,
                        f"{where}: id {hit.track_id} names tracks {ids[hit.track_id]} and {row['track_id']}",
                    )
        for box in left:
            self.fail(record, f"{where}: answer box {box.corners} (id {box.track_id}) is in no store box")
        if ids is not None and len(set(ids.values())) != len(ids):
            self.fail(record, f"{where}: two ids name one track ({ids})")

    # --- what a task asks ---------------------------------------------------------------------------

    def people(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r["category"] in PERSON_CATEGORIES]

    def check(self, record: dict[str, Any]) -> None:
        template = self.manifest["templates"][record["task"]]
        sampler, params = template["sampler"], template.get("params")
        if params is None:  # a build that did not record them: the template's own
            params = next(t.params for t in load_templates(record["stage"]) if t.task == record["task"])
        self.checked[(record["task"], record["dataset"])] += 1
        draws = draws_for(sampler, params)
        frames = [self.world.frames.get(i) for i in record["images"]]
        if draws.people and record["dataset"] not in self.world.person_datasets:
            self.fail(record, "a task about people drawn from a dataset whose categories do not say person")
        if draws.videos:
            for seq in {f["sequence_uid"] for f in frames if f is not None}:
                if self.world.video.get(seq) is not True:
                    self.fail(record, f"a temporal task drawn from {seq}, which is not a video")
        getattr(self, f"check_{sampler}")(record, params)

    def _single(self, record: dict[str, Any]) -> tuple[Turn, dict[str, Any] | None]:
        turn = turns_of(record)[0]
        return turn, self.frame(record, turn.images[0])

    def check_grounding(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        turn, frame = self._single(record)
        if frame is None:
            return
        answer, tol = self.original(record, 0, turn.answer)
        floor = float(params.get("min_visibility", 0.0))
        rows = [
            r for r in self.people(self.world.boxes[frame["frame_uid"]]) if (r["visibility"] or 1.0) >= floor
        ]
        self.match(record, "image", answer.boxes(), rows, frame, tol, None)

    def check_counting(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        turn, frame = self._single(record)
        if frame is not None:
            people = len(self.people(self.world.boxes[frame["frame_uid"]]))
            if parse_count(turn.answer) != people:
                self.fail(record, f"answer {turn.answer!r}, the store holds {people} people")

    def check_visibility(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        turn, frame = self._single(record)
        if frame is None:
            return
        (box,), tol = (lambda a: (a[0].boxes(), a[1]))(self.original(record, 0, turn.instruction))
        rows = [
            r
            for r in self.people(self.world.boxes[frame["frame_uid"]])
            if (e := _expected(r, frame))
            and all(abs(a - c) <= tol for a, c in zip(box.corners, e, strict=True))
        ]
        if len(rows) != 1:
            self.fail(record, f"the prompt's box matches {len(rows)} store boxes")
        elif parse_yes_no(turn.answer) != (rows[0]["visibility"] >= float(params.get("threshold", 0.5))):
            self.fail(record, f"answer {turn.answer!r} for visibility {rows[0]['visibility']}")

    def _clip_frames(
        self, record: dict[str, Any], images: list[str], by_view: bool = False
    ) -> dict[tuple[str | None, int], tuple[int, dict[str, Any]]]:
        """(view, n) -> (record image index, frame row); n counts frames (within each view when
        ``by_view``, else the view is None) from 1."""
        out, per_view = {}, defaultdict(int)
        for image in images:
            frame = self.frame(record, image)
            if frame is None:
                continue
            view = frame["view"] if by_view else None
            per_view[view] += 1
            out[(view, per_view[view])] = (record["images"].index(image), frame)
        return out

    def check_clip(self, record: dict[str, Any], params: dict[str, Any]) -> dict[int, int]:
        """Boxes and ids of every frame the prompt gives or the answer holds; returns answer id -> track."""
        ids: dict[int, int] = {}
        for t, turn in enumerate(turns_of(record), start=1):
            frames = self._clip_frames(record, turn.images)
            k0 = frames[(None, 1)][0] if (None, 1) in frames else 0
            given, tol = self.original(record, k0, turn.instruction)
            answer, _ = self.original(record, k0, turn.answer)
            given_ids = {b.track_id for b in given.boxes()}
            given_tracks = None
            for part, parsed in (("prompt", given), ("answer", answer)):
                for (_, n), boxes in parsed.frame_items():
                    if (None, n) not in frames:
                        self.fail(record, f"turn {t} {part} frame {n} is not among the clip's images")
                        continue
                    _, frame = frames[(None, n)]
                    rows = [
                        r
                        for r in self.people(self.world.boxes[frame["frame_uid"]])
                        if r["track_id"] is not None
                    ]
                    if part == "answer" and params.get("only_given"):
                        given_tracks = given_tracks or {ids.get(i) for i in given_ids}
                        rows = [r for r in rows if r["track_id"] in given_tracks]
                    self.match(record, f"turn {t} {part} frame {n}", boxes, rows, frame, tol, ids)
        return ids

    def check_referring(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        turn = turns_of(record)[0]
        expression = record["meta"]["expression"]
        referred = self.world.referents.get(expression, set())  # none: a sentence that names nobody
        if self.world.sentences[expression] not in turn.instruction:
            self.fail(record, f"the prompt does not hold the sentence {self.world.sentences[expression]!r}")
        frames = self._clip_frames(record, turn.images, by_view=params.get("views") == "all")
        k0 = next(iter(frames.values()))[0] if frames else 0
        answer, tol = self.original(record, k0, turn.answer)

        def rows(frame: dict[str, Any]) -> list[dict[str, Any]]:
            return [
                r
                for r in self.world.boxes[frame["frame_uid"]]
                if (frame["frame_uid"], r["track_id"]) in referred
            ]

        if params.get("single_image"):
            _, frame = frames[next(iter(frames))]
            self.match(record, "image", answer.boxes(), rows(frame), frame, tol, None)
            return
        ids: dict[int, int] = {}
        said = {key for key, _ in answer.frame_items()}
        for view, n in frames:
            if (view, n) not in said:
                self.fail(record, f"view {view} frame {n} has no part in the answer")
        for (view, n), boxes in answer.frame_items():
            found = frames.get((view, n))
            if found is None:
                self.fail(record, f"answer view {view} frame {n} is not among the clip's images")
                continue
            self.match(record, f"view {view} frame {n}", boxes, rows(found[1]), found[1], tol, ids)

    def check_semantic(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        ids = self.check_clip(record, params)
        turn = turns_of(record)[0]
        frames = self._clip_frames(record, turn.images)
        answer, _ = self.original(record, 0, turn.answer)
        semantics = self.world.semantics[frames[(None, 1)][1]["sequence_uid"]]
        captions = {r["track_id"]: r["text"] for r in semantics if r["kind"] == "track_caption"}
        for tid, text in answer.captions.items():
            if captions.get(ids.get(tid)) != text:
                self.fail(
                    record, f"caption of {tid}: {text!r}, the store says {captions.get(ids.get(tid))!r}"
                )
        missing = {t for t in ids.values() if t in captions} - {ids.get(t) for t in answer.captions}
        if missing:
            self.fail(record, f"tracks {sorted(missing)} have store captions the answer leaves out")
        store = {
            (r["track_id"], r["other_track_id"], r["name"])
            for r in semantics
            if r["kind"] == "interaction"
            and r["track_id"] in ids.values()
            and r["other_track_id"] in ids.values()
        }
        said = {
            (ids.get(a), ids.get(b), synset_of(w))
            for (a, b), words in answer.interactions.items()
            for w in words
        }
        if said != store:
            self.fail(record, f"interactions {sorted(said)} != store {sorted(store)}")
        if any(re.fullmatch(r"[a-z_]+\.v\.\d\d", w) for ws in answer.interactions.values() for w in ws):
            self.fail(record, "interactions said as synset ids, not words")
        summary = [r["text"] for r in semantics if r["kind"] == "summary"]
        if ids and answer.summary != (summary[0] if summary else None):
            self.fail(record, f"summary {answer.summary!r} != store {summary[:1]}")

    def check_track_caption(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        turn, frame = self._single(record)
        if frame is None:
            return
        given, tol = self.original(record, 0, turn.instruction)
        (box,) = given.boxes()
        rows = [
            r
            for r in self.people(self.world.boxes[frame["frame_uid"]])
            if (e := _expected(r, frame))
            and all(abs(a - c) <= tol for a, c in zip(box.corners, e, strict=True))
        ]
        captions = {
            r["track_id"]: r["text"]
            for r in self.world.semantics[frame["sequence_uid"]]
            if r["kind"] == "track_caption"
        }
        if not any(captions.get(r["track_id"]) == turn.answer for r in rows):
            self.fail(record, f"caption {turn.answer!r} is no store caption of the person at {box.corners}")

    # --- persons ------------------------------------------------------------------------------------

    def persons(self, record: dict[str, Any]) -> list[dict[str, Any]] | None:
        rows = [self.world.identities.get(i) for i in record["images"]]
        if None in rows:
            self.fail(record, "an image is no identity of the build's stores")
            return None
        return rows  # type: ignore[return-value]

    def check_reid_pair(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        rows = self.persons(record)
        if rows and parse_yes_no(turns_of(record)[0].answer) != (
            rows[0]["person_uid"] == rows[1]["person_uid"]
        ):
            self.fail(record, "the same-person answer disagrees with the identities")

    def check_retrieval(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        rows, turn = self.persons(record), turns_of(record)[0]
        if not rows:
            return
        chosen = rows[parse_count(turn.answer) - 1]
        matching = [r for r in rows if any(c in turn.instruction for c in r["captions"])]
        if (
            not any(c in turn.instruction for c in chosen["captions"])
            or len({r["person_uid"] for r in matching}) != 1
        ):
            self.fail(record, f"candidate {turn.answer!r} is not the one person the caption describes")

    def check_person_caption(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        rows, turn = self.persons(record), turns_of(record)[0]
        if rows and turn.answer not in rows[0]["captions"]:
            self.fail(record, f"{turn.answer!r} is no caption of the person")

    def check_person_attribute(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        rows, turn = self.persons(record), turns_of(record)[0]
        if rows:
            attrs = {(a["name"].replace("_", " "), a["value"]) for a in rows[0]["attributes"]}
            if not any(
                name in turn.instruction and value == parse_scalar(turn.answer) for name, value in attrs
            ):
                self.fail(record, f"{turn.answer!r} is no attribute of the person asked about")

    def check_caption_match(self, record: dict[str, Any], params: dict[str, Any]) -> None:
        rows, turn = self.persons(record), turns_of(record)[0]
        if rows:
            own = any(c in turn.instruction for c in rows[0]["captions"])
            if parse_yes_no(turn.answer) != own:
                self.fail(
                    record, f"answer {turn.answer!r}, the caption is {'' if own else 'not '}the person's"
                )


def check_build(out: Path, world: World) -> Oracle:
    manifest = json.loads((out / "manifest.json").read_text())
    oracle = Oracle(world, manifest)
    for path in sorted((out / "native").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            oracle.check(json.loads(line))
    return oracle


PEDESTRIAN_VIDEOS = ("BenSMOT", "crtrack-in-domain", "mot")
TRACKING = {
    "clip_track": PEDESTRIAN_VIDEOS,
    "mot_step": PEDESTRIAN_VIDEOS,
    "rmot": ("crtrack-in-domain", "refer-kitti"),
    "crmot": ("crtrack-in-domain",),
    "smot": ("BenSMOT",),
}
# The task/dataset pairs the synthetic world's stores feed (refer-kitti's boxes say "object": only its
# referring tasks; COCO and CrowdHuman are image collections: no temporal task).
EXPECTED: dict[str, dict[str, tuple[str, ...]]] = {
    "format-rl": {"ground_all": ("citypersons", "coco", "crowdhuman")},
    "mid": {
        "attribute": ("SYNTH-PEDES",),
        "count": ("coco", "crowdhuman", "mot"),
        "describe_person": ("CUHK-PEDES", "SYNTH-PEDES"),
        "detect": ("coco", "crowdhuman", "mot"),
        "position_prediction": ("mot",),
        "refer_ground": ("refer-kitti",),
        "reid_pair": ("CUHK-PEDES", "market1501"),  # SYNTH-PEDES has one image per person: no positives
        "retrieval": ("CUHK-PEDES", "SYNTH-PEDES"),
        "text_alignment": ("CUHK-PEDES", "SYNTH-PEDES"),
        "visibility": ("mot",),
    },
    "sft": {**TRACKING, "describe_track": ("BenSMOT",)},
    "track-rl": TRACKING,
}


@pytest.fixture(scope="module")
def world_stores(small_world, tmp_path_factory) -> dict[str, Path]:
    _, world = small_world
    root = tmp_path_factory.mktemp("oracle-stores")
    names = sorted({n for names in STAGE_STORES.values() for n in names})
    stores = {n: convert(n, world / n, root / n, show_progress=False).store.path for n in names}
    # the store says which sequences are videos, as each reader declares it
    for name, video in (("mot", True), ("refer-kitti", True), ("coco", False), ("crowdhuman", False)):
        assert set(pl.read_parquet(stores[name] / "sequences.parquet")["video"]) == {video}
    return stores


def test_every_sample_of_every_stage_says_what_the_store_says(world_stores, tmp_path):
    started = time.perf_counter()
    for stage in STAGES:
        stores = [world_stores[n] for n in STAGE_STORES[stage]]
        out = tmp_path / stage
        manifest = build(BuildOptions(stage=stage, stores=stores, out=out, show_progress=False))
        oracle = check_build(out, load_world(stores))
        assert oracle.problems == [], f"{len(oracle.problems)} problems:\n" + "\n".join(oracle.problems[:20])
        # every task of the stage was built and checked, and no task/dataset pair answers only "nothing"
        assert {task for task, _ in oracle.checked} == {t.task for t in load_templates(stage)}
        assert set(oracle.checked) == {(t, d) for t, ds in EXPECTED[stage].items() for d in ds}
        for task, stats in manifest["tasks"].items():
            for dataset, share in stats["empty_share"].items():
                assert share < 1.0, f"{stage}/{task}/{dataset}: only empty answers"
        skipped = {
            (task, note["dataset"], note["reason"].split(" (")[0])
            for task, stats in manifest["tasks"].items()
            for note in stats["skipped"]
        }
        if stage == "mid":
            assert {
                ("position_prediction", "coco", "not videos"),
                ("position_prediction", "crowdhuman", "not videos"),
                ("count", "refer-kitti", "its box categories"),
            } <= skipped
            # referring samples name cars and people alike; a tenth are negatives on purpose
            assert 0.0 < manifest["tasks"]["refer_ground"]["empty_share"]["refer-kitti"] < 0.2
    print(f"oracle over four stages: {time.perf_counter() - started:.1f} s")
