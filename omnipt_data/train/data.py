"""A build's TRL export as the datasets TRL's trainers take, plus held-out samples for probing.

A build (``omnipt-data build ... --export trl``) holds ``trl/<task>/*.jsonl`` rows (see
:func:`omnipt_data.build.exporters.to_trl`): conversational ``prompt`` (typed content parts, one
``{"type": "image"}`` per image) and ``images`` (absolute paths, or paths relative to the build in a
``--materialize`` build, which can therefore move: they are resolved against the build folder here),
plus ``completion`` for SFT stages or ``solution`` (a JSON string) and ``task`` for the RL stages.

- :func:`sft_dataset`: ``prompt`` / ``completion`` / ``images`` for ``SFTTrainer`` (loss on the
  completion only). An RL build works too: its completion is the solution's answer rendered as the
  build rendered it, so format-RL data can warm-start a model that never emits a box.
- :func:`grpo_dataset`: ``prompt`` / ``images`` / ``solution`` / ``task`` for ``GRPOTrainer``; the
  reward callables of :mod:`omnipt_data.rewards` read ``solution``.
- :func:`held_out_rows`: a deterministic handful of samples (smallest content hash), whose images the
  trainers then leave out.

Several builds train together (their rows concatenated in one schema) when they resize images alike.

Images stay paths on disk until a batch needs them (``datasets`` ``Image`` feature), and the rows are
read through ``datasets``' JSON loader (Arrow, memory-mapped), so memory does not grow with the build.
:func:`apply_pixel_bounds` makes the processor resize images exactly as the build did, which is what
keeps the boxes in the answers on the pixels the model sees.
"""

from __future__ import annotations

import hashlib
import heapq
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from omnipt_data.answers import PROCESSOR_PRESETS, render_answer
from omnipt_data.build.templates import RL_STAGES
from omnipt_data.errors import OmniptError
from omnipt_data.rewards import load_solution

TRL_EXPORT = "trl"
MANIFEST = "manifest.json"
#: Rows whose image files are checked for existence up front (a moved build fails at once, not mid-run).
_CHECKED_ROWS = 64

Row = dict[str, Any]


@dataclass(frozen=True)
class Build:
    """A finished build folder with a TRL export, and what its manifest says about it."""

    path: Path
    stage: str
    tasks: tuple[str, ...]
    box_format: str
    processor: str
    min_pixels: int
    max_pixels: int

    @property
    def is_rl(self) -> bool:
        """RL builds carry ``solution`` columns; the others carry ``completion``."""
        return self.stage in RL_STAGES

    def files(self, tasks: Sequence[str] | None = None) -> list[Path]:
        """The TRL JSONL shards of ``tasks`` (default: every task with samples), in a stable order."""
        chosen = self.select_tasks(tasks)
        return [f for task in chosen for f in sorted((self.path / TRL_EXPORT / task).glob("*.jsonl"))]

    def select_tasks(self, tasks: Sequence[str] | None) -> tuple[str, ...]:
        if not tasks:
            return self.tasks
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise OmniptError(
                f"{self.path}: no samples for task(s) {', '.join(unknown)} "
                f"(this {self.stage} build has: {', '.join(self.tasks) or 'none'})"
            )
        return tuple(tasks)


def open_build(path: Path) -> Build:
    """Read a build's manifest; raise :class:`OmniptError` when it is missing or has no TRL export."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise OmniptError(f"{path}: not a build (no {MANIFEST}; make one with `omnipt-data build`)")
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
        options = manifest["options"]
        stage = str(manifest["stage"])
        task_counts = {task: int(stats["samples"]) for task, stats in manifest["tasks"].items()}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise OmniptError(f"{manifest_path}: unreadable build manifest ({error})") from None
    if TRL_EXPORT not in options.get("exports", ()) or not (path / TRL_EXPORT).is_dir():
        raise OmniptError(f"{path}: the build has no TRL export (rebuild it with --export trl)")
    processor = str(options.get("processor") or "qwen2.5-vl")
    if processor not in PROCESSOR_PRESETS:
        raise OmniptError(f"{manifest_path}: unknown processor {processor!r}")
    preset = PROCESSOR_PRESETS[processor]
    return Build(
        path=path,
        stage=stage,
        tasks=tuple(task for task, count in task_counts.items() if count > 0),
        box_format=str(options.get("box_format") or "omnipt"),
        processor=processor,
        min_pixels=int(options.get("min_pixels") or preset.min_pixels),
        max_pixels=int(options.get("max_pixels") or preset.max_pixels),
    )


def read_rows(build: Build, tasks: Sequence[str] | None = None) -> Iterator[Row]:
    """Stream the TRL rows of ``tasks``, shard by shard, their images resolved against the build."""
    for file in build.files(tasks):
        with open(file, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        row = orjson.loads(line)
                    except orjson.JSONDecodeError as error:
                        raise OmniptError(f"{file}:{number}: not a JSON row ({error})") from None
                    row["images"] = media_paths(build.path, row.get("images") or ())
                    yield row


def media_paths(root: Path | str, images: Iterable[str]) -> list[str]:
    """Image paths as the trainers open them: a path relative to the build (a materialized build's
    ``images/...``) joined to the build folder ``root``, an absolute one as it is."""
    return [image if os.path.isabs(image) else os.path.join(root, image) for image in map(str, images)]


def sample_key(row: Row) -> str:
    """A stable content hash of a row's task, prompt and images (independent of shard layout and order).

    Images count by their last three path parts (``<sequence>/img1/000001.jpg``), so the key does not
    change when the data moves to another folder or machine.
    """
    images = ["/".join(Path(image).parts[-3:]) for image in row.get("images") or ()]
    content = [row.get("task"), images, row.get("prompt")]
    payload = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


def held_out_rows(build: Build, count: int, tasks: Sequence[str] | None = None) -> list[Row]:
    """The ``count`` rows with the smallest :func:`sample_key`: the same handful whatever the shards."""
    if count <= 0:
        return []
    keyed = heapq.nsmallest(count, ((sample_key(row), row) for row in read_rows(build, tasks)), key=_first)
    return [row for _, row in keyed]


def _first(item: tuple[str, Row]) -> str:
    return item[0]


def images_of(rows: Iterable[Row]) -> frozenset[str]:
    """Every image path the rows use."""
    return frozenset(str(image) for row in rows for image in row.get("images") or ())


def completion_text(solution: str | dict[str, Any]) -> str:
    """The answer text an RL sample's solution encodes, exactly as the build rendered it.

    Text and scalar answers keep their original text in ``references``; box answers are rendered from the
    (already quantized) answer in the solution's box format and image size.
    """
    loaded = load_solution(solution)
    if loaded.references:
        return loaded.references[0]
    return render_answer(loaded.answer, loaded.box_format, loaded.image_size)


def generation_prompt(row: Row) -> list[dict[str, Any]]:
    """A row's prompt with each image part holding its file path, ready for batched generation."""
    images = iter(row.get("images") or ())
    messages = []
    for message in row["prompt"]:
        parts = []
        for part in message["content"]:
            if part.get("type") == "image":
                parts.append({"type": "image", "image": next(images)})
            else:
                parts.append({"type": "text", "text": part.get("text") or ""})
        messages.append({"role": message["role"], "content": parts})
    return messages


def check_compatible(builds: Sequence[Build]) -> None:
    """Builds trained together must resize images alike (their boxes live in those pixels)."""
    first = builds[0]
    for other in builds[1:]:
        if (other.processor, other.min_pixels, other.max_pixels) != (
            first.processor,
            first.min_pixels,
            first.max_pixels,
        ):
            raise OmniptError(
                f"{other.path} resizes images for {other.processor} with min/max pixels "
                f"{other.min_pixels}/{other.max_pixels} but {first.path} for {first.processor} with "
                f"{first.min_pixels}/{first.max_pixels}: build them with the same --processor and pixels"
            )


def tasks_by_build(
    builds: Sequence[Build], tasks: Sequence[str] | None
) -> list[tuple[Build, tuple[str, ...]]]:
    """Each build with the chosen tasks it holds; a chosen task no build holds is an error."""
    if not tasks:
        return [(build, build.tasks) for build in builds]
    missing = [t for t in tasks if not any(t in build.tasks for build in builds)]
    if missing:
        held = sorted({t for build in builds for t in build.tasks})
        raise OmniptError(
            f"no samples for task(s) {', '.join(missing)} in {', '.join(str(b.path) for b in builds)} "
            f"(tasks there: {', '.join(held) or 'none'})"
        )
    chosen = [(build, tuple(t for t in tasks if t in build.tasks)) for build in builds]
    return [(build, picked) for build, picked in chosen if picked]


def sft_dataset(
    builds: Sequence[Build],
    tasks: Sequence[str] | None = None,
    *,
    exclude_images: frozenset[str] = frozenset(),
    cache_dir: Path | None = None,
) -> Any:
    """``prompt`` / ``completion`` / ``images`` rows of one or more builds for ``SFTTrainer``."""
    parts = []
    for build, picked in tasks_by_build(builds, tasks):
        dataset = _load(build, picked, exclude_images, cache_dir)
        if "completion" not in dataset.column_names and "solution" not in dataset.column_names:
            raise OmniptError(f"{build.path}: rows have neither a completion nor a solution")
        parts.append(_canonical(dataset, "sft", build.path))
    return _with_images(_concatenate(parts, builds, exclude_images))


def grpo_dataset(
    builds: Sequence[Build],
    tasks: Sequence[str] | None = None,
    *,
    exclude_images: frozenset[str] = frozenset(),
    cache_dir: Path | None = None,
) -> Any:
    """``prompt`` / ``images`` / ``solution`` / ``task`` rows of RL builds for ``GRPOTrainer``."""
    for build in builds:
        require_rl(build)
    parts = [
        _canonical(_load(build, picked, exclude_images, cache_dir), "grpo", build.path)
        for build, picked in tasks_by_build(builds, tasks)
    ]
    return _with_images(_concatenate(parts, builds, exclude_images))


def require_rl(build: Build) -> None:
    """GRPO scores answers against solutions, which only the RL stages' builds carry."""
    if not build.is_rl:
        raise OmniptError(
            f"{build.path}: GRPO needs RL builds (stage {' or '.join(RL_STAGES)}) whose samples carry "
            f"solutions; this one is a {build.stage} build (train it with `train sft`)"
        )


def _features(kind: str) -> Any:
    """One Arrow schema per trainer, so the rows of several builds concatenate."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    columns: dict[str, Any] = {"prompt": List(message)}
    if kind == "sft":
        columns["completion"] = List(message)
    columns["images"] = List(Value("string"))
    if kind == "grpo":
        columns["solution"] = Value("string")
        columns["task"] = Value("string")
    return Features(columns)


def _concatenate(parts: list[Any], builds: Sequence[Build], exclude_images: frozenset[str]) -> Any:
    from datasets import concatenate_datasets

    parts = [part for part in parts if len(part)]
    if not parts:
        held_out = " that do not use held-out images" if exclude_images else ""
        raise OmniptError(
            f"no samples{held_out} in {', '.join(str(b.path) for b in builds)}; nothing to train on"
        )
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def _canonical(dataset: Any, kind: str, root: Path) -> Any:
    """The trainer's columns in :func:`_features`' schema (the JSON loader may type mixed content parts
    as JSON strings), with SFT completions rendered from the solutions of RL rows."""
    features = _features(kind)
    return dataset.map(
        _canonical_row,
        fn_kwargs={"kind": kind, "root": str(root)},
        features=features,
        remove_columns=[c for c in dataset.column_names if c not in features],
        desc=f"prepare {kind} rows",
    )


def _canonical_row(row: Row, kind: str, root: str) -> Row:
    out: Row = {"prompt": _messages(row["prompt"]), "images": media_paths(root, row["images"])}
    if kind == "grpo":
        out["solution"], out["task"] = row["solution"], row["task"]
    elif row.get("completion"):
        out["completion"] = _messages(row["completion"])
    else:
        text = completion_text(row["solution"])
        out["completion"] = [{"role": "assistant", "content": [{"type": "text", "text": text}]}]
    return out


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "role": message["role"],
            "content": [
                {"type": part["type"], "text": part.get("text") if part["type"] == "text" else None}
                for part in message["content"]
            ],
        }
        for message in messages
    ]


def _load(build: Build, tasks: Sequence[str], exclude_images: frozenset[str], cache_dir: Path | None) -> Any:
    from datasets import load_dataset

    files = build.files(tasks)
    if not files:
        raise OmniptError(f"{build.path}: the build has no samples in its TRL export")
    _check_images(build, tasks)
    dataset = load_dataset(
        "json",
        data_files=[str(f) for f in files],
        split="train",
        cache_dir=str(cache_dir) if cache_dir else None,
    )
    if exclude_images:
        root = build.path
        dataset = dataset.filter(
            lambda images: not any(image in exclude_images for image in media_paths(root, images)),
            input_columns="images",
            desc="leave out held-out images",
        )
    return dataset


def _with_images(dataset: Any) -> Any:
    from datasets import Image, List

    return dataset.cast_column("images", List(Image()))


def _check_images(build: Build, tasks: Sequence[str] | None) -> None:
    for index, row in enumerate(read_rows(build, tasks)):
        if index >= _CHECKED_ROWS:
            return
        for image in row.get("images") or ():
            if not Path(image).is_file():
                raise OmniptError(
                    f"{build.path}: sample images are missing (e.g. {image}); a build refers to the stores' "
                    "images by absolute path (rebuild it where they are, or build with --materialize to "
                    "keep the images inside the build)"
                )


def apply_pixel_bounds(processor: Any, build: Build) -> str | None:
    """Make ``processor`` resize images as ``build`` did; returns a note when its bounds changed.

    The build rendered every box in the pixels of the image its processor preset and ``min_pixels`` /
    ``max_pixels`` produce, so the model must see images resized the same way. Raises
    :class:`OmniptError` when the build was made for another patch geometry (e.g. a Qwen3-VL build for a
    Qwen2.5-VL model).
    """
    image_processor = processor.image_processor
    factor = int(image_processor.patch_size) * int(image_processor.merge_size)
    preset = PROCESSOR_PRESETS[build.processor]
    if factor != preset.factor:
        raise OmniptError(
            f"{build.path}: built for {build.processor} ({preset.factor}-pixel visual tokens) but the "
            f"model's processor makes {factor}-pixel tokens; rebuild with the model's --processor"
        )
    size = image_processor.size
    current = (_size_value(size, "shortest_edge"), _size_value(size, "longest_edge"))
    wanted = (build.min_pixels, build.max_pixels)
    if current == wanted:
        return None
    image_processor.size = {"shortest_edge": wanted[0], "longest_edge": wanted[1]}
    return (
        f"processor pixel bounds set to the build's min_pixels={wanted[0]}, max_pixels={wanted[1]} "
        f"(the checkpoint had {current[0]}, {current[1]})"
    )


def _size_value(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return None if value is None else int(value)
