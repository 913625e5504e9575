"""Build checks: answers that do not parse, boxes in the wrong coordinate convention, token lengths
against the model's context, task balance, and files changed since the build; and content: the share
of empty answers per task and dataset against the template's ``negative_share``, temporal samples drawn
from image collections, duplicated samples, answers that repeat the prompt's boxes, and the answers of
yes/no and choice tasks.

The audit reads the ``native`` export (the only one that keeps ``image_sizes`` and the box format) one
line at a time. Token counts are recomputed per record the way :mod:`omnipt_data.build.builder` counts
them: image tokens from ``image_sizes`` (``(w // factor) * (h // factor)`` per image, ``factor`` = patch
size x merge size of the record's processor) plus the text tokens of each turn's instruction and answer,
with the build's tokenizer when it is available here and the builder's estimate otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.answers import (
    PROCESSOR_PRESETS,
    ParsedAnswer,
    model_image_size,
    parse_answer,
    parse_count,
    parse_scalar,
    parse_yes_no,
)
from omnipt_data.audit.base import BUILD, Check
from omnipt_data.build.builder import MANIFEST, TokenCounter
from omnipt_data.build.source import BuildSource
from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.store import file_sha256

EDGE_TOLERANCE = 0.5  # pixels: rendered boxes are integers inside the image
TOKEN_BINS = (0, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
STAT_KEYS = ("min", "mean", "p50", "p95", "max", "over_context")
# Empty-answer shares above the template's negative_share by more than this (plus sampling noise) are
# reported; so are yes/no and choice answers whose commonest value exceeds its target by as much.
SHARE_TOLERANCE = 0.05
ANSWER_TOLERANCE = 0.15
MIN_SAMPLES_FOR_SHARES = 10
#: The per-task-and-dataset content table (the ``content_by_dataset`` rows as the report shows them).
CONTENT_COLUMNS = (
    "task",
    "dataset",
    "samples",
    "empty",
    "empty_share",
    "negative_share",
    "commonest_answer",
    "commonest_share",
)


def is_build(path: Path) -> bool:
    """``path`` holds a build manifest (a stage and its tasks)."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        payload = orjson.loads(manifest.read_bytes())
    except orjson.JSONDecodeError:
        return False
    return isinstance(payload, dict) and "stage" in payload and "tasks" in payload


@dataclass
class BuildContext:
    """A build being audited; the one pass over its records is shared by every build check."""

    path: Path
    context_tokens: int | None = None  # None: the build's own
    show_progress: bool = True
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.cached("manifest", lambda: orjson.loads((self.path / MANIFEST).read_bytes()))

    @property
    def context(self) -> int:
        if self.context_tokens is not None:
            return self.context_tokens
        return int(self.manifest.get("options", {}).get("context_tokens") or 32768)

    def cached(self, key: str, compute: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def native_files(self) -> list[str]:
        files = sorted(
            f for f in self.manifest.get("files", {}) if f.startswith("native/") and f.endswith(".jsonl")
        )
        if not files and self.manifest.get("samples"):
            raise OmniptError(
                f"{self.path}: the build has no native export; rebuild with --export native,... to audit it"
            )
        return files


@dataclass
class Turn:
    """One assistant answer and what the model saw for it."""

    index: int
    instruction: str
    answer: str
    sizes: list[tuple[int, int]]  # model (w, h) of the turn's images
    originals: list[tuple[int, int]]


@dataclass
class Scan:
    """Everything the build checks need, from one pass over the records."""

    unparsable: list[dict[str, Any]] = field(default_factory=list)
    unparsed_by_task: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    box_tasks: set[str] = field(default_factory=set)
    outside: list[dict[str, Any]] = field(default_factory=list)
    resize: list[dict[str, Any]] = field(default_factory=list)
    missing_images: list[dict[str, Any]] = field(default_factory=list)
    over_context: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    token_counting: str = ""
    content: dict[tuple[str, str], Content] = field(default_factory=lambda: defaultdict(Content))
    # multi-image records: (where, image numbers, sequences the record's meta names); each path once
    clips: list[tuple[dict[str, Any], tuple[int, ...], list[str]]] = field(default_factory=list)
    image_numbers: dict[str, int] = field(default_factory=dict)
    first_of: dict[bytes, str] = field(default_factory=dict)  # sample digest -> first record id
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    repeats: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Content:
    """What one task's samples of one dataset answer."""

    samples: int = 0
    empty: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # scalar answers (yes/no, choices, counts)
    yes_no: int = 0


def _records(ctx: BuildContext) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for name in ctx.native_files():
        with open(ctx.path / name, "rb") as handle:
            for line, text in enumerate(handle, start=1):
                if text.strip():
                    yield name, line, orjson.loads(text)


def _turns(record: dict[str, Any]) -> list[Turn]:
    """The record's turns: each assistant message with the preceding user message's images."""
    sizes = [tuple(s) for s in record.get("image_sizes") or []]
    originals = [tuple(s) for s in record.get("original_sizes") or []]
    turns, seen, pending, instruction = [], 0, [], ""
    for message in record.get("messages") or []:
        parts = message.get("content") or []
        if message.get("role") == "user":
            count = sum(p.get("type") == "image" for p in parts)
            pending = list(range(seen, seen + count))
            seen += count
            texts = [p.get("text", "") for p in parts if p.get("type") == "text"]
            instruction = texts[-1] if texts else ""
        elif message.get("role") == "assistant":
            answer = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
            turns.append(
                Turn(
                    len(turns) + 1,
                    instruction,
                    answer,
                    [sizes[k] for k in pending if k < len(sizes)],
                    [originals[k] for k in pending if k < len(originals)],
                )
            )
    return turns


def _token_counter(ctx: BuildContext) -> tuple[TokenCounter, str]:
    recorded = ctx.manifest.get("options", {}).get("tokenizer")
    if recorded and Path(recorded).exists():
        return TokenCounter(Path(recorded)), "tokenizer"
    return TokenCounter(None), "estimated"


def _convention_hint(box: tuple[float, float, float, float], original: tuple[int, int] | None) -> str:
    """What a box that leaves the model image fits instead, as a guess at the convention it was made in."""
    _, _, x2, y2 = box
    if original and x2 <= original[0] + EDGE_TOLERANCE and y2 <= original[1] + EDGE_TOLERANCE:
        return f"fits the original {original[0]}x{original[1]} image: original pixels instead of the model's?"
    if max(x2, y2) <= 1000 + EDGE_TOLERANCE:
        return "fits a 0-1000 grid: relative coordinates (qwen3) in an absolute format?"
    return "fits no known image space"


def _outside(box: tuple[float, float, float, float], size: tuple[int, int]) -> bool:
    x1, y1, x2, y2 = box
    return min(x1, y1) < -EDGE_TOLERANCE or x2 > size[0] + EDGE_TOLERANCE or y2 > size[1] + EDGE_TOLERANCE


def is_empty_answer(text: str, parsed: ParsedAnswer) -> bool:
    """The answer says there is nothing: a well-formed answer without a box or semantics, or a count 0."""
    if parse_count(text) == 0:
        return True
    answer = parsed.answer
    has_semantics = answer.captions or answer.interactions or answer.summary or answer.scalar
    return parsed.format_status == "exact" and not parsed.box_count and not has_semantics


def _repeats_prompt(turn: Turn, parsed: ParsedAnswer, box_format: str) -> bool:
    """The answer's boxes (with their ids) are exactly one frame of the boxes the prompt gives."""
    if not parsed.box_count or not turn.sizes:
        return False
    said = sorted((b.track_id, b.corners) for b in parsed.answer.boxes())
    given = parse_answer(turn.instruction, box_format, turn.sizes[0]).answer
    return any(sorted((b.track_id, b.corners) for b in boxes) == said for _, boxes in given.frame_items())


def _sample_digest(record: dict[str, Any]) -> bytes:
    """What a model is shown and taught: images and messages (ids, keys and meta left out)."""
    return hashlib.sha256(orjson.dumps([record.get("images"), record.get("messages")])).digest()[:16]


def scan(ctx: BuildContext) -> Scan:
    return ctx.cached("scan", lambda: _scan(ctx))


def _scan(ctx: BuildContext) -> Scan:
    result = Scan()
    count_tokens, result.token_counting = _token_counter(ctx)
    options = ctx.manifest.get("options", {})
    checked_images: dict[str, bool] = {}
    total = int(ctx.manifest.get("samples") or 0)
    with progress_bar("audit: build records", total=total, enabled=ctx.show_progress) as advance:
        for name, line, record in _records(ctx):
            where = {
                "record_id": record.get("id"),
                "task": record.get("task"),
                "file": name,
                "line": line,
                "file_line": f"{name}:{line}",
            }
            processor = record.get("processor") or options.get("processor") or "qwen2.5-vl"
            factor = PROCESSOR_PRESETS[processor].factor if processor in PROCESSOR_PRESETS else 28
            box_format = record.get("box_format") or options.get("box_format") or "omnipt"
            tokens = sum((w // factor) * (h // factor) for w, h in record.get("image_sizes") or [])
            for k, (size, original) in enumerate(
                zip(record.get("image_sizes") or [], record.get("original_sizes") or [], strict=False)
            ):
                if processor not in PROCESSOR_PRESETS:
                    continue
                expected = model_image_size(
                    tuple(original),
                    processor,
                    min_pixels=options.get("min_pixels"),
                    max_pixels=options.get("max_pixels"),
                )
                if tuple(size) != expected:
                    result.resize.append(
                        {
                            **where,
                            "image_index": k,
                            "detail": f"image {k} is given as {size[0]}x{size[1]} but {processor} resizes "
                            f"{original[0]}x{original[1]} to {expected[0]}x{expected[1]}",
                        }
                    )
            for image in record.get("images") or []:
                if image not in checked_images:  # a materialized build's images are relative to it
                    checked_images[image] = (ctx.path / image).is_file()
                if not checked_images[image]:
                    result.missing_images.append(
                        {**where, "image": image, "detail": f"image not found: {image}"}
                    )
            content = result.content[(str(where["task"]), str(record.get("dataset")))]
            content.samples += 1
            all_empty = True
            digest = _sample_digest(record)
            if digest in result.first_of:
                first = result.first_of[digest]
                result.duplicates.append(
                    {**where, "same_as": first, "detail": f"the same images and messages as record {first}"}
                )
            else:
                result.first_of[digest] = str(record.get("id"))
            images = record.get("images") or []
            if len(images) > 1:
                meta = record.get("meta") or {}
                claimed = meta.get("sequences") or ([meta["sequence"]] if meta.get("sequence") else [])
                numbers = tuple(result.image_numbers.setdefault(i, len(result.image_numbers)) for i in images)
                result.clips.append((where, numbers, claimed))
            for turn in _turns(record):
                tokens += count_tokens(turn.instruction) + count_tokens(turn.answer)
                size = turn.sizes[0] if turn.sizes else None
                original = turn.originals[0] if turn.originals else None
                parsed = parse_answer(turn.answer, box_format, size)
                all_empty = all_empty and is_empty_answer(turn.answer, parsed)
                scalar = parse_scalar(turn.answer)
                if scalar is not None:
                    content.answers[scalar.lower()] += 1
                    content.yes_no += parse_yes_no(turn.answer) is not None
                if _repeats_prompt(turn, parsed, box_format):
                    result.repeats.append(
                        {
                            **where,
                            "turn": turn.index,
                            "detail": f"turn {turn.index}: the answer's {parsed.box_count} box(es) are those "
                            "the prompt gives for one of its frames",
                        }
                    )
                if parsed.format_status == "exact" and parsed.box_count:
                    result.box_tasks.add(where["task"])
                if parsed.format_status != "exact":
                    finding = {
                        **where,
                        "turn": turn.index,
                        "format_status": parsed.format_status,
                        "layouts": ",".join(parsed.layouts),
                        "unparsed": parsed.unparsed,
                        "detail": f"turn {turn.index}: format {parsed.format_status} "
                        f"(layouts {','.join(parsed.layouts) or 'none'}, {parsed.unparsed} unreadable "
                        f"fragment(s)): {turn.answer[:80]!r}",
                    }
                    if parsed.format_status == "other":
                        result.unparsable.append(finding)
                    else:  # no box at all: fine for a caption or count, not for a box task (decided later)
                        result.unparsed_by_task[where["task"]].append(finding)
                if size is None:
                    continue
                for text, role in ((turn.answer, "answer"), (turn.instruction, "prompt")):
                    boxes = (
                        parsed.answer.boxes()
                        if role == "answer"
                        else parse_answer(text, box_format, size).answer.boxes()
                    )
                    for box in boxes:
                        if _outside(box.corners, size):
                            corners = ", ".join(f"{v:g}" for v in box.corners)
                            result.outside.append(
                                {
                                    **where,
                                    "turn": turn.index,
                                    "role": role,
                                    "box": list(box.corners),
                                    "detail": f"turn {turn.index} {role} box ({corners}) leaves the "
                                    f"{size[0]}x{size[1]} model image; "
                                    f"{_convention_hint(box.corners, original)}",
                                }
                            )
            content.empty += all_empty
            result.tokens[where["task"]].append(tokens)
            if tokens > ctx.context:
                result.over_context.append(
                    {
                        **where,
                        "tokens": tokens,
                        "detail": f"{tokens} tokens exceed the {ctx.context}-token context",
                    }
                )
            advance(1)
    return result


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=dict.fromkeys([*columns, "detail"], pl.String))
    return pl.DataFrame(rows, infer_schema_length=None).select(
        [*[c for c in columns if c in rows[0]], "detail"]
    )


LINK = ["record_id", "task", "file", "line", "file_line"]


def answer_unparsable(ctx: BuildContext) -> pl.DataFrame:
    found = scan(ctx)
    rows = list(found.unparsable)
    for task in sorted(found.box_tasks):
        rows += found.unparsed_by_task.get(task, [])
    rows.sort(key=lambda r: (r["file"], r["line"], r["turn"]))
    return _frame(rows, [*LINK, "turn", "format_status", "layouts", "unparsed"])


def answer_box_outside_model_image(ctx: BuildContext) -> pl.DataFrame:
    return _frame(scan(ctx).outside, [*LINK, "turn", "role", "box"])


def image_size_not_processor_resize(ctx: BuildContext) -> pl.DataFrame:
    return _frame(scan(ctx).resize, [*LINK, "image_index"])


def build_image_missing(ctx: BuildContext) -> pl.DataFrame:
    return _frame(scan(ctx).missing_images, [*LINK, "image"])


def record_over_context(ctx: BuildContext) -> pl.DataFrame:
    return _frame(scan(ctx).over_context, [*LINK, "tokens"])


def build_file_modified(ctx: BuildContext) -> pl.DataFrame:
    rows = []
    for name, digest in sorted(ctx.manifest.get("files", {}).items()):
        path = ctx.path / name
        if not path.is_file():
            rows.append({"file": name, "detail": f"{name} is listed in the manifest but missing"})
        elif file_sha256(path) != digest:
            rows.append({"file": name, "detail": f"{name} changed since the build (SHA-256 differs)"})
    return _frame(rows, ["file"])


def token_statistics(tokens: list[int], context: int) -> dict[str, float | int]:
    """The builder's per-task token statistics (see ``_Stats.summary`` in the builder)."""
    ordered = sorted(tokens)

    def pct(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0

    return {
        "min": ordered[0] if ordered else 0,
        "mean": round(sum(ordered) / len(ordered), 1) if ordered else 0,
        "p50": pct(0.5),
        "p95": pct(0.95),
        "max": ordered[-1] if ordered else 0,
        "over_context": sum(t > context for t in ordered),
    }


def _modified_tasks(ctx: BuildContext) -> set[str]:
    modified = build_file_modified(ctx)
    return {
        f.split("/")[1] for f in modified["file"].to_list() if f.startswith("native/") and f.count("/") >= 2
    }


def token_stats_mismatch(ctx: BuildContext) -> pl.DataFrame:
    found = scan(ctx)
    built_with = ctx.manifest.get("token_counting", "")
    counted_alike = built_with.startswith("tokenizer") == (found.token_counting == "tokenizer")
    if not counted_alike:
        tokenizer = ctx.manifest.get("options", {}).get("tokenizer")
        return _frame(
            [
                {
                    "task": "*",
                    "detail": f"the build counted tokens with the tokenizer {tokenizer}, which is not here: "
                    "token statistics were not compared (estimates used for lengths)",
                }
            ],
            ["task"],
        )
    # The manifest's context, not --context: it is the one the manifest's over_context counts against.
    context = int(ctx.manifest.get("options", {}).get("context_tokens") or 32768)
    modified = _modified_tasks(ctx)
    rows = []
    for task, stats in sorted(ctx.manifest.get("tasks", {}).items()):
        if task in modified:
            continue  # reported as a modified file; its statistics describe the file as built
        recorded = stats.get("tokens", {})
        got = token_statistics(found.tokens.get(task, []), context)
        differing = [k for k in STAT_KEYS if not math.isclose(float(recorded.get(k, 0)), float(got[k]))]
        samples = len(found.tokens.get(task, []))
        if samples != stats.get("samples", 0):
            differing.insert(0, "samples")
        if differing:
            parts = ", ".join(
                f"{k} {stats.get('samples') if k == 'samples' else recorded.get(k)} -> "
                f"{samples if k == 'samples' else got[k]}"
                for k in differing
            )
            rows.append({"task": task, "detail": f"{task}: manifest vs records: {parts}"})
    return _frame(rows, ["task"])


def _bin_labels() -> list[str]:
    labels = [f"{lo}-{hi}" for lo, hi in itertools.pairwise(TOKEN_BINS)]
    return [*labels, f">={TOKEN_BINS[-1]}"]


def token_lengths(ctx: BuildContext) -> pl.DataFrame:
    found = scan(ctx)
    rows = []
    labels = _bin_labels()
    for task, tokens in sorted(found.tokens.items()):
        frame = pl.DataFrame({"tokens": tokens}, schema={"tokens": pl.Int64})
        index = frame.select(
            pl.sum_horizontal([(pl.col("tokens") >= edge).cast(pl.Int32) for edge in TOKEN_BINS[1:]]).alias(
                "bin"
            )
        )["bin"]
        counts = index.value_counts().sort("bin")
        for k, n in counts.iter_rows():
            rows.append(
                {
                    "task": task,
                    "tokens": labels[k],
                    "low": TOKEN_BINS[k],
                    "records": n,
                    "detail": f"{task}: {n} record(s) of {labels[k]} tokens (context {ctx.context})",
                }
            )
    return _frame(rows, ["task", "tokens", "low", "records"])


def task_balance(ctx: BuildContext) -> pl.DataFrame:
    tasks = ctx.manifest.get("tasks", {})
    total = sum(int(s.get("samples", 0)) for s in tasks.values()) or 1
    rows = []
    for task, stats in sorted(tasks.items(), key=lambda item: (-int(item[1].get("samples", 0)), item[0])):
        n = int(stats.get("samples", 0))
        datasets = ", ".join(f"{d}:{c}" for d, c in sorted(stats.get("by_dataset", {}).items())) or "-"
        rows.append(
            {
                "task": task,
                "samples": n,
                "share": round(n / total, 4),
                "datasets": datasets,
                "detail": f"{task}: {n} sample(s), {100 * n / total:.1f}% of the build ({datasets})",
            }
        )
    return _frame(rows, ["task", "samples", "share", "datasets"])


def _params(ctx: BuildContext, task: str) -> dict[str, Any]:
    """The template parameters the build used for ``task`` (empty for builds that did not record them)."""
    return ctx.manifest.get("templates", {}).get(task, {}).get("params") or {}


def _negative_target(ctx: BuildContext, task: str) -> float:
    return float(_params(ctx, task).get("negative_share") or 0.0)


def _kind_of_answers(ctx: BuildContext, task: str, content: Content) -> str | None:
    """``yes_no`` or ``choice`` when the pair's answers are one of a few values, else None."""
    if content.samples and content.yes_no == content.samples:
        return "yes_no"
    if "candidates" in _params(ctx, task) and content.answers:
        return "choice"
    return None


def content_by_dataset(ctx: BuildContext) -> pl.DataFrame:
    rows = []
    for (task, dataset), content in sorted(scan(ctx).content.items()):
        share = content.empty / content.samples if content.samples else 0.0
        target = _negative_target(ctx, task)
        common, common_n = (content.answers.most_common(1) or [("", 0)])[0]
        kind = _kind_of_answers(ctx, task, content)
        answers = f", commonest answer {common!r} {common_n}/{content.samples}" if kind else ""
        rows.append(
            {
                "task": task,
                "dataset": dataset,
                "pair": f"{task} / {dataset}",
                "samples": content.samples,
                "empty": content.empty,
                "empty_share": round(share, 4),
                "negative_share": target,
                "commonest_answer": common if kind else None,
                "commonest_share": round(common_n / content.samples, 4) if kind else None,
                "detail": f"{task} / {dataset}: {content.empty} of {content.samples} answer(s) empty "
                f"({100 * share:.1f}%, template's negative share {100 * target:.0f}%){answers}",
            }
        )
    return _frame(rows, [*CONTENT_COLUMNS[:2], "pair", *CONTENT_COLUMNS[2:]])


def empty_answers_only(ctx: BuildContext) -> pl.DataFrame:
    rows = [
        {
            "task": task,
            "dataset": dataset,
            "samples": content.samples,
            "detail": f"{task} / {dataset}: all {content.samples} answer(s) are empty: the dataset teaches "
            "the task to answer nothing",
        }
        for (task, dataset), content in sorted(scan(ctx).content.items())
        if content.samples and content.empty == content.samples
    ]
    return _frame(rows, ["task", "dataset", "samples"])


def empty_share_above_target(ctx: BuildContext) -> pl.DataFrame:
    rows = []
    for (task, dataset), content in sorted(scan(ctx).content.items()):
        n = content.samples
        if n < MIN_SAMPLES_FOR_SHARES or content.empty == n:
            continue  # too few to judge, or reported as empty_answers_only
        share, target = content.empty / n, _negative_target(ctx, task)
        noise = 2 * math.sqrt(max(target, 0.01) * (1 - target) / n)
        if share > target + SHARE_TOLERANCE + noise:
            rows.append(
                {
                    "task": task,
                    "dataset": dataset,
                    "empty_share": round(share, 4),
                    "negative_share": target,
                    "detail": f"{task} / {dataset}: {100 * share:.1f}% of {n} answers are empty, "
                    f"the template asks for {100 * target:.0f}%",
                }
            )
    return _frame(rows, ["task", "dataset", "empty_share", "negative_share"])


@dataclass
class FrameIndex:
    """The build's stores as the clip check needs them."""

    sequence_of: dict[str, str] = field(default_factory=dict)  # absolute image path -> sequence uid
    video: dict[str, bool | None] = field(default_factory=dict)  # sequence uid -> the store's video flag
    missing: list[str] = field(default_factory=list)  # stores that are not here


def _frame_index(ctx: BuildContext, images: set[str]) -> FrameIndex:
    wanted = pl.DataFrame({"abs_path": sorted(images)}, schema={"abs_path": pl.String})
    index = FrameIndex()
    for entry in ctx.manifest.get("stores", []):
        path = Path(entry.get("path", ""))
        if not (path / MANIFEST).is_file():
            index.missing.append(str(path))
            continue
        source = BuildSource(path)
        index.video.update({s.uid: s.video for s in source.sequences()})
        found = (
            source.store.scan("frames")
            .select("sequence_uid", source.absolute_path().alias("abs_path"))
            .join(wanted.lazy(), on="abs_path", how="semi")
            .collect()
        )
        index.sequence_of.update({image: uid for uid, image in found.iter_rows()})
    return index


def temporal_from_non_video(ctx: BuildContext) -> pl.DataFrame:
    found = scan(ctx)
    index = ctx.cached("frame_index", lambda: _frame_index(ctx, set(found.image_numbers)))
    sequence_of = {n: index.sequence_of[i] for i, n in found.image_numbers.items() if i in index.sequence_of}
    rows = [
        {"file": store, "detail": f"store {store} is not here: clips were not checked against it"}
        for store in index.missing
    ]
    for where, images, claimed in found.clips:
        per_sequence = Counter(sequence_of[i] for i in images if i in sequence_of)
        if not per_sequence:  # images not in the stores (a materialised build): the sequences it names
            per_sequence = Counter({uid: len(images) for uid in claimed})
        for uid, n in sorted(per_sequence.items()):
            if n > 1 and index.video.get(uid) is False:
                rows.append(
                    {
                        **where,
                        "sequence": uid,
                        "detail": f"{n} images of {uid}, which its store says is an image collection, "
                        "shown as frames of one clip",
                    }
                )
    return _frame(rows, [*LINK, "sequence"])


def duplicate_samples(ctx: BuildContext) -> pl.DataFrame:
    return _frame(scan(ctx).duplicates, [*LINK, "same_as"])


def answer_repeats_prompt(ctx: BuildContext) -> pl.DataFrame:
    return _frame(scan(ctx).repeats, [*LINK, "turn"])


def answer_distribution(ctx: BuildContext) -> pl.DataFrame:
    rows = []
    for (task, dataset), content in sorted(scan(ctx).content.items()):
        if _kind_of_answers(ctx, task, content) is None:
            continue
        for value, n in sorted(content.answers.items()):
            rows.append(
                {
                    "task": task,
                    "dataset": dataset,
                    "pair": f"{task} / {dataset}: {value}",
                    "answer": value,
                    "samples": n,
                    "share": round(n / content.samples, 4),
                    "detail": f"{task} / {dataset}: {n} of {content.samples} answer {value!r}",
                }
            )
    return _frame(rows, ["task", "dataset", "pair", "answer", "samples", "share"])


def answer_imbalance(ctx: BuildContext) -> pl.DataFrame:
    rows = []
    for (task, dataset), content in sorted(scan(ctx).content.items()):
        kind = _kind_of_answers(ctx, task, content)
        n = content.samples
        if kind is None or n < MIN_SAMPLES_FOR_SHARES:
            continue
        params = _params(ctx, task)
        if kind == "yes_no":
            share, target = content.answers["yes"] / n, float(params.get("yes_share", 0.5))
            off = abs(share - target) > ANSWER_TOLERANCE
            what = f"{100 * share:.0f}% answer yes, the template asks for {100 * target:.0f}%"
        else:
            common, count = content.answers.most_common(1)[0]
            share, target = count / n, 1 / int(params["candidates"])
            off = share > target + ANSWER_TOLERANCE
            what = f"{100 * share:.0f}% answer {common!r}, {100 * target:.0f}% expected of each choice"
        if off:
            rows.append(
                {
                    "task": task,
                    "dataset": dataset,
                    "share": round(share, 4),
                    "detail": f"{task} / {dataset}: {what} ({n} samples): a constant answer scores well",
                }
            )
    return _frame(rows, ["task", "dataset", "share"])


CHECKS = [
    Check(
        "answer_unparsable",
        "error",
        BUILD,
        "Answers that do not parse exactly in the build's box format (parse_answer format_status is not "
        "'exact'; in tasks whose answers hold boxes, an answer with none counts too).",
        answer_unparsable,
    ),
    Check(
        "answer_box_outside_model_image",
        "error",
        BUILD,
        "Boxes in an answer or prompt that leave the image the model sees: another coordinate convention "
        "(original pixels, a 0-1000 grid, corners read as x,y,w,h).",
        answer_box_outside_model_image,
    ),
    Check(
        "image_size_not_processor_resize",
        "error",
        BUILD,
        "Records whose image_sizes are not what the processor makes of original_sizes: boxes would be "
        "scaled to the wrong image.",
        image_size_not_processor_resize,
    ),
    Check(
        "build_image_missing",
        "warning",
        BUILD,
        "Images a record names that do not exist here.",
        build_image_missing,
    ),
    Check(
        "record_over_context",
        "warning",
        BUILD,
        "Records longer (image + text tokens) than the model's context: a trainer truncates or drops them.",
        record_over_context,
    ),
    Check(
        "token_stats_mismatch",
        "warning",
        BUILD,
        "Tasks whose manifest token statistics differ from the records' recomputed ones.",
        token_stats_mismatch,
    ),
    Check(
        "build_file_modified",
        "warning",
        BUILD,
        "Files that changed (or vanished) since the build wrote its manifest.",
        build_file_modified,
    ),
    Check(
        "empty_answers_only",
        "error",
        BUILD,
        "Task/dataset pairs whose every answer is empty (no box, count 0): the dataset teaches the task to "
        "answer nothing (a category filter or a referent lookup that finds nothing).",
        empty_answers_only,
    ),
    Check(
        "temporal_from_non_video",
        "error",
        BUILD,
        "Samples that show several images of one sequence as a clip where the store says the sequence is "
        "an image collection, not a video.",
        temporal_from_non_video,
    ),
    Check(
        "empty_share_above_target",
        "warning",
        BUILD,
        "Task/dataset pairs with more empty answers than the template's negative_share allows.",
        empty_share_above_target,
    ),
    Check(
        "duplicate_samples",
        "warning",
        BUILD,
        "Records that show the same images with the same messages as an earlier record.",
        duplicate_samples,
    ),
    Check(
        "answer_repeats_prompt",
        "warning",
        BUILD,
        "Answers whose boxes are exactly those the prompt gives for one of its frames (a position "
        "prediction that copies frame 1 teaches nothing about motion).",
        answer_repeats_prompt,
    ),
    Check(
        "answer_imbalance",
        "warning",
        BUILD,
        "Yes/no and choice tasks whose answers stray from the template's balance (yes_share, one choice "
        "in candidates): a constant answer would score well.",
        answer_imbalance,
    ),
    Check("token_lengths", "info", BUILD, "Records per token length, per task.", token_lengths),
    Check("task_balance", "info", BUILD, "Samples per task.", task_balance),
    Check(
        "content_by_dataset",
        "info",
        BUILD,
        "Per task and dataset: samples, empty answers against the template's negative share, and the "
        "commonest answer of yes/no and choice tasks.",
        content_by_dataset,
    ),
    Check(
        "answer_distribution",
        "info",
        BUILD,
        "Answers of yes/no and choice tasks, per task and dataset.",
        answer_distribution,
    ),
]
