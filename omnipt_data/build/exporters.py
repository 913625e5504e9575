"""Exporters: the native build record rewritten for the trainers people use.

- ``native``: the record itself: ``messages`` with typed content parts (``{"type": "image", "image":
  path}`` / ``{"type": "text", "text": ...}``), ``images``, ``image_sizes`` (what the model sees),
  ``solution`` (RL) and provenance.
- ``llamafactory``: ShareGPT-style ``messages`` (string contents with one ``<image>`` per image),
  ``images`` and, for tasks whose template has one, ``system``; ``dataset_info.json`` has one entry per
  task (``formatting: sharegpt``) declaring only the columns its rows carry.
- ``swift``: ms-swift's ``messages`` + ``images`` with the answer text exactly as the prompt describes it
  (our box format, boxes in the pixels of the image the model sees), and for RL stages ``solution`` (a
  JSON string) and ``task``, which ms-swift's GRPO hands to the reward plugin the build ships
  (``swift/omnipt_rewards.py``). ms-swift's grounding ``objects`` are not used: its Qwen2.5-VL template
  renders them in a convention set by ``QWENVL_BBOX_FORMAT`` (corner pairs by default), which no prompt
  of ours describes and our parsers and rewards do not read.
- ``trl``: Hugging Face ``datasets`` JSON: conversational ``prompt``/``completion`` for SFT stages,
  ``prompt`` + ``solution`` (a JSON string, so every row has one Arrow type) for GRPO stages, ``images``;
  loadable with ``datasets.load_dataset("json", data_files=...)``.

Images are named as the native record names them: absolute paths to the stores' images, or, in a
``--materialize`` build, paths relative to the build folder (``images/<hash>_<w>x<h>.jpg``), so the
build can move: each trainer then takes the build folder as its media root (LLaMA-Factory's
``media_dir``, ms-swift's working folder; our TRL runner resolves them against the build itself).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
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


def to_swift(record: Record) -> Record:
    """ShareGPT-style messages (``<image>`` per image) with the literal answer text, plus the solution
    of RL samples for the reward plugin."""
    out: Record = {"messages": _flat_messages(record), "images": record["images"]}
    if record.get("solution") is not None:
        out["solution"] = _solution_json(record["solution"])
        out["task"] = record["task"]
    return out


def _solution_json(solution: dict[str, Any]) -> str:
    return orjson.dumps(solution, option=orjson.OPT_SORT_KEYS).decode()


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
        out["solution"] = _solution_json(record["solution"])
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


def llamafactory_dataset_info(stage: str, tasks: dict[str, bool]) -> dict[str, Any]:
    """``dataset_info.json`` entries: one dataset per task (``{task: has a system prompt}``), its folder
    relative to the export root. The ``system`` column is declared only where the rows carry it:
    LLaMA-Factory's loader stops on a declared column that a row lacks."""
    entries = {}
    for task, has_system in tasks.items():
        columns = {"messages": "messages", "images": "images"}
        if has_system:
            columns["system"] = "system"
        entries[llamafactory_dataset_name(stage, task)] = {
            "file_name": task,
            "formatting": "sharegpt",
            "columns": columns,
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            },
        }
    return entries


def llamafactory_dataset_name(stage: str, task: str) -> str:
    """The name a task's export has in ``dataset_info.json`` (what a config's ``dataset:`` lists)."""
    return f"omnipt_{stage.replace('-', '_')}_{task}"


#: The trainer releases each export was checked against (the conformance tests install exactly these:
#: ``scripts/trainer-env``); builds record them in their manifest.
CHECKED_WITH: dict[str, dict[str, str]] = {
    "llamafactory": {"llamafactory": "0.9.5"},
    "swift": {"ms-swift": "4.6.0"},
    "trl": {"trl": "1.16.0", "datasets": "5.2.0"},
}
SWIFT_REWARD_PLUGIN = "omnipt_rewards.py"


def write_swift_reward_plugin(folder: Path) -> Path:
    """Ship the ms-swift reward plugin with an RL build: ``swift rlhf --rlhf_type grpo --external_plugins
    FOLDER/omnipt_rewards.py --reward_funcs omnipt_combined`` scores with :mod:`omnipt_data.rewards`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SWIFT_REWARD_PLUGIN
    shutil.copyfile(Path(__file__).with_name("swift_plugin.py"), target)
    return target
