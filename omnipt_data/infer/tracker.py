"""Run the model as a tracker, clip by clip, with the prompts of the SFT templates.

The first frame of a sequence is grounded with the detection template; each following clip of
``length`` frames starts on the previous clip's last frame, whose boxes and ids are given in the prompt
(``sft/clip_track``), so ids carry forward as the model was taught. Referring tracking
(``sft/rmot``: a sentence instead of given boxes) and cross-view referring tracking (``sft/crmot``)
link clips by matching the boxes of their shared frame (Hungarian on IoU). All sequences advance in
lockstep, so every step is one batched ``generate`` over all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omnipt_data.answers import Answer, Box, parse_answer, scale_answer
from omnipt_data.build.builder import BuildOptions, Renderer, TokenCounter
from omnipt_data.build.draft import Draft, Image, Turn
from omnipt_data.build.templates import Template, load_templates
from omnipt_data.rewards import iou_matrix, match_boxes

Generate = Callable[[list[list[dict[str, Any]]]], list[str]]


@dataclass
class SequenceInput:
    """One sequence to track: frames in order (absolute paths, original sizes), per view."""

    name: str
    views: dict[str, list[Image]]  # view name ("" for single view) -> frames in order


@dataclass
class Track:
    frame: int  # 1-based position in the sequence
    track_id: int
    box: tuple[float, float, float, float]  # original pixels, corners
    view: str = ""


@dataclass
class SequenceResult:
    name: str
    tracks: list[Track] = field(default_factory=list)
    captions: dict[int, str] = field(default_factory=dict)
    raw_answers: list[str] = field(default_factory=list)
    unparsed: int = 0


def _template(stage: str, task: str) -> Template:
    return load_templates(stage, [task])[0]


class PromptMaker:
    """Prompts exactly as the builds render them (same templates, resize rule and box format)."""

    def __init__(
        self,
        box_format: str = "omnipt",
        processor: str = "qwen2.5-vl",
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        seed: int = 0,
    ):
        options = BuildOptions(
            stage="sft",
            stores=[],
            out=None,  # type: ignore[arg-type]
            box_format=box_format,
            processor=processor,
            max_pixels=max_pixels,
            min_pixels=min_pixels,
            seed=seed,
        )
        self.options = {
            "box_format": box_format,
            "processor": processor,
            "max_pixels": max_pixels,
            "min_pixels": min_pixels,
            "seed": seed,
        }
        self.renderer = Renderer(options)
        self.box_format = self.renderer.box_format
        self.tokens = TokenCounter(None)

    def prompt(
        self, template: Template, key: str, images: list[Image], context: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], tuple[int, int]]:
        draft = Draft(key, "", [Turn(images, context, "")])
        record, _ = self.renderer.render(template, draft, self.tokens)
        return record["messages"][:-1], tuple(record["image_sizes"][0])  # type: ignore[return-value]

    def read(self, text: str, model_size: tuple[int, int], original: tuple[int, int]) -> tuple[Answer, bool]:
        parsed = parse_answer(text, self.box_format, model_size)
        return scale_answer(
            parsed.answer, model_size, original
        ), parsed.format_status != "none" or not text.strip()


class ClipTracker:
    """Tracks many sequences at once; ``generate`` maps a batch of chat prompts to answer texts."""

    def __init__(self, generate: Generate, prompts: PromptMaker, *, length: int = 8):
        if length < 2:
            raise ValueError("a clip needs at least 2 frames")
        self.generate = generate
        self.prompts = prompts
        self.length = length
        self.detect = _template("mid", "detect")
        self.track_clip = _template("sft", "clip_track")
        self.refer = _template("sft", "rmot")
        self.cross_view = _template("sft", "crmot")

    def _windows(self, n: int) -> Iterator[tuple[int, int]]:
        start = 0
        while start < n - 1:
            end = min(start + self.length, n)
            yield start, end
            start = end - 1

    # --- MOT: carry ids through the given first frame -------------------------------------------

    def track(self, sequences: list[SequenceInput]) -> list[SequenceResult]:
        results = {s.name: SequenceResult(s.name) for s in sequences}
        frames = {s.name: s.views[next(iter(s.views))] for s in sequences}
        next_id = dict.fromkeys(results, 1)
        current: dict[str, list[Box]] = {}
        # step 0: ground the first frame
        batch = []
        for s in sequences:
            image = frames[s.name][0]
            batch.append((s.name, image, *self.prompts.prompt(self.detect, f"{s.name}#1", [image], {})))
        for (name, image, _, model_size), text in zip(
            batch, self.generate([b[2] for b in batch]), strict=True
        ):
            answer, ok = self.prompts.read(text, model_size, image.size)
            self._note(results[name], text, ok)
            boxes = []
            for box in answer.boxes():
                boxes.append(Box(*box.corners, _fresh_id(next_id, name)))
            current[name] = boxes
            results[name].tracks += [Track(1, b.track_id, b.corners) for b in boxes]
        # following clips: the last frame of one clip is given as the first of the next
        windows = {name: list(self._windows(len(f))) for name, f in frames.items()}
        for step in range(max((len(w) for w in windows.values()), default=0)):
            batch = []
            for name, spans in windows.items():
                if step >= len(spans):
                    continue
                start, end = spans[step]
                images = [Image(i.path, i.size, {"n": k}) for k, i in enumerate(frames[name][start:end], 1)]
                context = {
                    "given": Answer.from_frames({1: current[name]}),
                    "n_frames": len(images),
                    "given_frames": "1",
                    "last_frame": len(images),
                }
                batch.append(
                    (
                        name,
                        start,
                        images,
                        *self.prompts.prompt(self.track_clip, f"{name}@{start}", images, context),
                    )
                )
            if not batch:
                break
            texts = self.generate([b[3] for b in batch])
            for (name, start, images, _, model_size), text in zip(batch, texts, strict=True):
                answer, ok = self.prompts.read(text, model_size, images[0].size)
                self._note(results[name], text, ok)
                given = {b.track_id for b in current[name]}
                renamed: dict[int, int] = {}
                taken: dict[int, set[int]] = {}
                last: list[Box] = []
                for (_, index), boxes in answer.frame_items():
                    if index is None or not 2 <= index <= len(images):
                        continue
                    frame = start + index
                    for box in boxes:
                        tid = box.track_id if box.track_id in given else None
                        if tid is None:
                            key = box.track_id if box.track_id is not None else -len(renamed) - 1
                            if key not in renamed:
                                renamed[key] = _fresh_id(next_id, name)
                            tid = renamed[key]
                        tid = _unique_in_frame(tid, taken.setdefault(frame, set()), next_id, name)
                        results[name].tracks.append(Track(frame, tid, box.corners))
                        if index == len(images):
                            last.append(Box(*box.corners, tid))
                current[name] = last
        return [results[s.name] for s in sequences]

    # --- referring and cross-view referring: link clips on their shared frame ---------------------

    def track_referring(self, sequences: list[SequenceInput], sentence: str) -> list[SequenceResult]:
        results = {s.name: SequenceResult(s.name) for s in sequences}
        next_id = dict.fromkeys(results, 1)
        previous: dict[str, dict[str, list[Box]]] = {s.name: {} for s in sequences}
        spans = {s.name: list(self._windows(len(next(iter(s.views.values()))))) for s in sequences}
        for step in range(max((len(w) for w in spans.values()), default=0)):
            batch = []
            for s in sequences:
                if step >= len(spans[s.name]):
                    continue
                start, end = spans[s.name][step]
                views = list(s.views)
                multi = len(views) > 1
                images = [
                    Image(i.path, i.size, {"n": k, "view": v})
                    for v in views
                    for k, i in enumerate(s.views[v][start:end], 1)
                ]
                template = self.cross_view if multi else self.refer
                context = {"sentence": sentence, "n_frames": end - start, "n_views": len(views)}
                batch.append(
                    (
                        s.name,
                        start,
                        views,
                        images,
                        *self.prompts.prompt(template, f"{s.name}@{start}", images, context),
                    )
                )
            if not batch:
                break
            texts = self.generate([b[4] for b in batch])
            for (name, start, views, images, _, model_size), text in zip(batch, texts, strict=True):
                answer, ok = self.prompts.read(text, model_size, images[0].size)
                self._note(results[name], text, ok)
                per_view: dict[str, dict[int, list[Box]]] = {v: {} for v in views}
                for (view, index), boxes in answer.frame_items():
                    view = view if view in per_view else views[0]
                    if index is not None:
                        per_view[view][index] = boxes
                # map this clip's ids onto the running ids through the shared first frame
                mapping: dict[int | None, int] = {}
                for view in views:
                    before = previous[name].get(view, [])
                    now = per_view[view].get(1, [])
                    for i, j, _ in match_boxes(iou_matrix(now, before), 0.5):
                        if now[i].track_id is not None and before[j].track_id is not None:
                            mapping.setdefault(now[i].track_id, before[j].track_id)
                for view in views:
                    last: list[Box] = []
                    for index, boxes in sorted(per_view[view].items()):
                        if not 1 <= index <= end - start or (step > 0 and index == 1):
                            continue
                        taken: set[int] = set()
                        for box in boxes:
                            if box.track_id not in mapping:
                                mapping[box.track_id] = _fresh_id(next_id, name)
                            tid = _unique_in_frame(mapping[box.track_id], taken, next_id, name)
                            results[name].tracks.append(Track(start + index, tid, box.corners, view))
                            if index == end - start:
                                last.append(Box(*box.corners, tid))
                    previous[name][view] = last
        return [results[s.name] for s in sequences]

    @staticmethod
    def _note(result: SequenceResult, text: str, ok: bool) -> None:
        if not ok:
            result.unparsed += 1
            result.raw_answers.append(text)


def _unique_in_frame(track_id: int, taken: set[int], next_id: dict[str, int], name: str) -> int:
    """``track_id``, or a new id when a box of the same frame already has it: an answer that gives two
    boxes one id (a small model does) must not write a frame that holds an id twice, which evaluation
    rejects; the second box starts a track of its own."""
    if track_id in taken:
        track_id = _fresh_id(next_id, name)
    taken.add(track_id)
    return track_id


def _fresh_id(next_id: dict[str, int], name: str) -> int:
    """The next unused track id of sequence ``name``, taken."""
    next_id[name] += 1
    return next_id[name] - 1
