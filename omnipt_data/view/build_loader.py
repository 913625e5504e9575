"""Load a build's native records into FiftyOne: one sample per image, the answer drawn on it.

A record's user turns hold images, each optionally preceded by its label in the prompt (``Frame 3:``,
``View2, frame 1:``), and an instruction; the assistant turn holds the answer. The answer's boxes are
parsed back with :func:`omnipt_data.answers.parse_answer` in the model's image space (the size the
builder rendered the turn with: its first image's ``image_sizes`` entry) and scaled back to that
image's ``original_sizes`` entry, so the ``answer_boxes`` are drawn where the store had them. A frame of
the answer goes to the image whose label names the same view and frame number; an answer without
frame headers goes to the turn's only (else last) image; without labels, ``Frame n`` is the turn's n-th
image. Boxes given in the prompt (previous frames, a target person) become ``prompt_boxes`` the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from omnipt_data.answers import Answer, ParsedAnswer, parse_answer, scale_answer
from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.view.fiftyone_loader import (
    WINDOW_FRAMES,
    DatasetWriter,
    Entry,
    LoadResult,
    connect,
    default_name,
    finish,
)

MANIFEST = "manifest.json"
IMAGE_PLACEHOLDER = "<image>"
RECORD_KEYS = ("id", "images", "image_sizes", "original_sizes", "messages")
# An image's label in the prompt: "Frame 3:", "frame 3", "View2, frame 1:".
_LABEL = re.compile(r"^\s*(?:(?P<view>[^,:\n]+?)\s*,\s*)?frame\s+(?P<n>\d+)\s*:?\s*$", re.IGNORECASE)

FrameKey = tuple[str | None, int | None]


@dataclass
class _Image:
    position: int  # 0-based index into the record's images
    label: str | None  # the text right before it in the prompt, when that is an image label
    view: str | None = None
    number: int | None = None


@dataclass
class _Turn:
    images: list[_Image] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # the prompt, images as placeholders
    instruction: list[str] = field(default_factory=list)  # the prompt's text without image labels
    answer: str = ""

    @property
    def prompt(self) -> str:
        return "".join(self.parts).strip()


def _turns(record: dict[str, Any]) -> list[_Turn]:
    """The record's user/assistant exchanges, images numbered in record order."""
    turns: list[_Turn] = []
    position = 0
    for message in record.get("messages", []):
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if role == "user":
            turn = _Turn()
            pending: str | None = None  # the last text part, until we know if an image follows
            for part in content or []:
                if part.get("type") == "image":
                    match = _LABEL.match(pending) if pending is not None else None
                    image = _Image(position, pending.strip() if match else None)
                    if match:
                        image.view, image.number = match["view"], int(match["n"])
                    elif pending is not None:
                        turn.instruction.append(pending)
                    pending = None
                    turn.images.append(image)
                    turn.parts.append(IMAGE_PLACEHOLDER)
                    position += 1
                else:
                    if pending is not None:
                        turn.instruction.append(pending)
                    pending = str(part.get("text", ""))
                    turn.parts.append(pending)
            if pending is not None:
                turn.instruction.append(pending)
            turns.append(turn)
        elif role == "assistant" and turns:
            turns[-1].answer += "".join(
                str(p.get("text", "")) for p in (content or []) if p.get("type") == "text"
            )
    return turns


def _place(turn: _Turn, key: FrameKey) -> _Image | None:
    """The image of ``turn`` that an answer frame ``(view, number)`` is about."""
    view, number = key
    if not turn.images:
        return None
    if number is None:
        return turn.images[-1]
    labelled = [image for image in turn.images if image.number is not None]
    if labelled:
        exact = [i for i in labelled if i.number == number and (view is None or i.view == view)]
        if len(exact) == 1:
            return exact[0]
        if view is not None:  # "View View1:" headers vs "View1, frame 1:" labels may differ in case
            loose = [i for i in labelled if i.number == number and (i.view or "").lower() == view.lower()]
            return loose[0] if len(loose) == 1 else None
        return None
    return turn.images[number - 1] if 1 <= number <= len(turn.images) else None


def _parsed(text: str, record: dict[str, Any], turn: _Turn) -> tuple[ParsedAnswer, Answer] | None:
    """``text`` parsed in the turn's model image space, and its boxes scaled back to original pixels."""
    if not turn.images:
        return None
    first = turn.images[0].position
    model, original = record["image_sizes"][first], record["original_sizes"][first]
    try:
        parsed = parse_answer(text, record.get("box_format") or "omnipt", tuple(model))
    except ValueError as exc:  # an unknown box format; the text itself never raises
        raise OmniptError(f"record {record['id']}: {exc}") from None
    return parsed, scale_answer(parsed.answer, tuple(model), tuple(original))


def _detections(
    fo: ModuleType, answer: Answer | None, turn: _Turn, record: dict[str, Any]
) -> tuple[dict[int, list[Any]], int]:
    """Detections per image position, and how many boxes could not be placed on an image."""
    placed: dict[int, list[Any]] = {image.position: [] for image in turn.images}
    unplaced = 0
    if answer is None:
        return placed, unplaced
    for key, boxes in answer.frame_items():
        image = _place(turn, key)
        if image is None:
            unplaced += len(boxes)
            continue
        width, height = record["original_sizes"][image.position]
        for box in boxes:
            det = fo.Detection(
                label=box.label,
                bounding_box=[box.x1 / width, box.y1 / height, box.width / width, box.height / height],
                index=box.track_id,
            )
            if box.track_id is not None and box.track_id in answer.captions:
                det["caption"] = answer.captions[box.track_id]
            placed[image.position].append(det)
    return placed, unplaced


def _record_entries(fo: ModuleType, record: dict[str, Any], build: Path) -> list[Entry]:
    images = record.get("images") or []
    sizes, originals = record.get("image_sizes") or [], record.get("original_sizes") or []
    if not (len(images) == len(sizes) == len(originals)):
        raise OmniptError(
            f"record {record.get('id')}: {len(images)} images but {len(sizes)} image_sizes and "
            f"{len(originals)} original_sizes (expected one of each per image)"
        )
    entries = []
    for turn_number, turn in enumerate(_turns(record), start=1):
        answer = _parsed(turn.answer, record, turn)
        prompt = _parsed("".join(turn.instruction), record, turn)
        answer_boxes, answer_unplaced = _detections(fo, answer[1] if answer else None, turn, record)
        prompt_boxes, _ = _detections(fo, prompt[1] if prompt else None, turn, record)
        parsed = answer[0].answer if answer else Answer()
        for image in turn.images:
            path = Path(images[image.position])
            filepath = str(path if path.is_absolute() else (build / path).resolve())
            width, height = originals[image.position]
            fields = {
                "kind": "build",
                "record_id": record["id"],
                "position": image.position + 1,
                "turn": turn_number,
                "stage": record.get("stage"),
                "task": record.get("task"),
                "dataset": record.get("dataset"),
                "key": record.get("key"),
                "box_format": record.get("box_format"),
                "processor": record.get("processor"),
                "image_label": image.label,
                "view": image.view,
                "frame_number": image.number,
                "prompt": turn.prompt,
                "answer": turn.answer,
                "answer_format": answer[0].format_status if answer else None,
                "answer_unplaced": answer_unplaced,
                "answer_boxes": fo.Detections(detections=answer_boxes[image.position]),
                "prompt_boxes": fo.Detections(detections=prompt_boxes[image.position]),
                "summary": parsed.summary,
                "scalar_answer": parsed.scalar,
                "interactions": [
                    f"{a}-{b}: {', '.join(labels)}" for (a, b), labels in parsed.interactions.items()
                ]
                or None,
                "model_size": list(sizes[image.position]),
                "metadata": fo.ImageMetadata(width=width, height=height),
            }
            entries.append(Entry(f"{record['id']}/{image.position + 1}", filepath, fields))
    return entries


def _records(build: Path) -> Iterator[dict[str, Any]]:
    for path in sorted((build / "native").glob("*/*.jsonl")):
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise OmniptError(f"{path}:{number}: not a JSON record ({exc})") from None
                missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
                if missing:
                    raise OmniptError(
                        f"{path}:{number}: not a native build record, no {', '.join(missing)} "
                        f"(expected {', '.join(RECORD_KEYS)})"
                    )
                yield record


def load_build(path: Path | str, *, name: str | None = None, show_progress: bool = True) -> LoadResult:
    """Load (or update) the build at ``path`` into the FiftyOne dataset ``name``."""
    build = Path(path)
    manifest = orjson.loads((build / MANIFEST).read_bytes())
    if not (build / "native").is_dir():
        raise OmniptError(f"{build}: the build has no native export (rebuild with --export native,...)")
    name = name or default_name(build, "build")
    fo = connect()
    writer = DatasetWriter(fo, name, grouped_slice=None)
    result = LoadResult(name=name, kind="build")
    pending: list[Entry] = []

    def flush() -> None:
        writer.write(pending, writer.lookup([e.uid for e in pending]))
        pending.clear()

    with progress_bar(f"view {name}", total=manifest.get("samples") or 0, enabled=show_progress) as advance:
        for record in _records(build):
            pending.extend(_record_entries(fo, record, build))
            if len(pending) >= WINDOW_FRAMES:
                flush()
            advance(1)
        if pending:
            flush()
    writer.save_group_view("records", "record_id", "position", {"kind": "build"})
    writer.record_load(build, "build", hashlib.sha256((build / MANIFEST).read_bytes()).hexdigest())
    finish(writer, None, result, show_progress=show_progress)
    return result
