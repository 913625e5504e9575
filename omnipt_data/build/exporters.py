"""Exporters: the native build record rewritten for the trainers people use.

- ``native``: the record itself: ``messages`` with typed content parts (``{"type": "image", "image":
  path}`` / ``{"type": "text", "text": ...}``), ``images``, ``image_sizes`` (what the model sees),
  ``solution`` (RL) and provenance.
- ``llamafactory``: ShareGPT-style ``messages`` (string contents with one ``<image>`` per image) and
  ``images``, plus ``dataset_info.json`` with one entry per task (``formatting: sharegpt``).
- ``swift``: ms-swift's ``messages`` + ``images``; boxes become ``<bbox>`` placeholders with
  ``objects: {"ref", "bbox", "bbox_type": "real"}`` in original-image pixels, so ms-swift renders them
  in the trained model's convention after its own resize (use ``native``/``trl`` to keep our box text).
- ``trl``: Hugging Face ``datasets`` JSON: conversational ``prompt``/``completion`` for SFT stages,
  ``prompt`` + ``solution`` (a JSON string, so every row has one Arrow type) for GRPO stages, ``images``;
  loadable with ``datasets.load_dataset("json", data_files=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

EXPORTS = ("native", "llamafactory", "swift", "trl")
IMAGE_TOKEN = "<image>"

Record = dict[str, Any]


def _flat_messages(record: Record, image_token: str = IMAGE_TOKEN) -> list[dict[str, str]]:
    messages = []
    for message in record["messages"]:
        text = "".join(
            image_token if part["type"] == "image" else part["text"] for part in message["content"]
        )
        messages.append({"role": message["role"], "content": text})
    return messages


def to_native(record: Record) -> Record:
    return record


def to_llamafactory(record: Record) -> Record:
    messages = _flat_messages(record)
    out: Record = {"messages": [m for m in messages if m["role"] != "system"], "images": record["images"]}
    system = [m["content"] for m in messages if m["role"] == "system"]
    if system:
        out["system"] = system[0]
    return out


_OMNIPT_BOX = re.compile(r"<bbox>\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*</bbox>")
_JSON_BOX = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")


def _to_original(
    values: tuple[int, ...], box_format: str, model: list[int], original: list[int]
) -> list[float]:
    """A box of our text (model pixels, or 0-1000 for qwen3) as corners in original-image pixels."""
    a, b, c, d = values
    if box_format == "omnipt":
        c, d = a + c, b + d
    if box_format == "qwen3":
        sx, sy = original[0] / 1000, original[1] / 1000
    else:
        sx, sy = original[0] / model[0], original[1] / model[1]
    return [round(a * sx, 2), round(b * sy, 2), round(c * sx, 2), round(d * sy, 2)]


def to_swift(record: Record) -> Record:
    """Every box of the conversation becomes a ``<bbox>`` placeholder, in order, with its corners in
    ``objects.bbox`` (original pixels of the first image)."""
    messages = _flat_messages(record)
    boxes: list[list[float]] = []
    if record["image_sizes"]:
        pattern = _OMNIPT_BOX if record["box_format"] == "omnipt" else _JSON_BOX
        model, original = record["image_sizes"][0], record["original_sizes"][0]

        def placeholder(match: re.Match[str]) -> str:
            boxes.append(
                _to_original(tuple(int(g) for g in match.groups()), record["box_format"], model, original)
            )
            return "<bbox>"

        for message in messages:
            # ms-swift reads every literal "<bbox>" as a placeholder: the format hint must not hold one.
            text = message["content"].replace("<bbox>x,y,w,h</bbox>", "a box x,y,w,h")
            message["content"] = pattern.sub(placeholder, text)
    out: Record = {"messages": messages, "images": record["images"]}
    if boxes:
        out["objects"] = {"ref": [], "bbox": boxes, "bbox_type": "real"}
    return out


def _typed(message: dict[str, Any]) -> dict[str, Any]:
    parts = [
        {"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]}
        for p in message["content"]
    ]
    return {"role": message["role"], "content": parts}


def to_trl(record: Record) -> Record:
    messages = [_typed(m) for m in record["messages"]]
    out: Record = {"prompt": messages[:-1], "images": record["images"]}
    if record.get("solution") is not None:
        out["solution"] = orjson.dumps(record["solution"], option=orjson.OPT_SORT_KEYS).decode()
        out["task"] = record["task"]
    else:
        out["completion"] = messages[-1:]
    return out


CONVERTERS: dict[str, Callable[[Record], Record]] = {
    "native": to_native,
    "llamafactory": to_llamafactory,
    "swift": to_swift,
    "trl": to_trl,
}


def llamafactory_dataset_info(stage: str, tasks: list[str]) -> dict[str, Any]:
    """``dataset_info.json`` entries: one dataset per task, its folder relative to the export root."""
    return {
        f"omnipt_{stage.replace('-', '_')}_{task}": {
            "file_name": task,
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images", "system": "system"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            },
        }
        for task in tasks
    }
