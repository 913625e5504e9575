"""``build``: stores -> one stage's training samples, rendered from templates, exported, with a manifest.

A build streams: samplers yield drafts one sequence (or one dataset's persons) at a time, each draft is
rendered and written at once to sharded JSONL files of every requested export. Every random choice is
drawn from a generator seeded by ``(seed, stage, task, draft key)``, so the same stores and seed give
byte-identical files whatever the order or sharding of the work. The build is written into a temporary
folder renamed into place at the end: an error leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import orjson

from omnipt_data import __version__
from omnipt_data.answers import (
    PROCESSOR_PRESETS,
    Answer,
    model_image_size,
    normalize_box_format,
    parse_scalar,
    render_answer,
    scale_answer,
)
from omnipt_data.atomic import atomic_directory
from omnipt_data.build.draft import Draft, Image, negative_share
from omnipt_data.build.engines import ENGINES, Rendered, render_source, render_source_on_ray
from omnipt_data.build.exporters import (
    CHECKED_WITH,
    CONVERTERS,
    EXPORTS,
    llamafactory_dataset_info,
    write_swift_reward_plugin,
)
from omnipt_data.build.samplers import SAMPLERS
from omnipt_data.build.source import BuildSource, draws_for
from omnipt_data.build.templates import RL_STAGES, Template, format_hints, load_templates
from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.rewards import make_solution
from omnipt_data.store import file_sha256, write_json

MANIFEST = "manifest.json"
_WORDS = re.compile(r"\w+|[^\w\s]")


@dataclass
class BuildOptions:
    stage: str
    stores: list[Path]
    out: Path
    seed: int = 0
    tasks: list[str] | None = None
    box_format: str = "omnipt"
    processor: str = "qwen2.5-vl"
    min_pixels: int | None = None
    max_pixels: int | None = None
    exports: tuple[str, ...] = ("native",)
    shard_size: int = 5000
    sample_rate: float = 1.0
    max_per_task: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    context_tokens: int = 32768
    tokenizer: Path | None = None
    overwrite: bool = False
    show_progress: bool = True
    materialize: bool = False  # write the resized frames/crops under OUT/images and point the samples there
    engine: str = "local"  # "ray": a Ray Data pipeline sharded by scene (see engines.py)
    ray_address: str | None = None


def seeded(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256("|".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def template_params(template: Template, overrides: dict[str, Any]) -> dict[str, Any]:
    """The template's ``[params]`` with overrides: ``key`` applies to every task, ``task.key`` to one."""
    params = dict(template.params)
    for key, value in overrides.items():
        task, _, name = key.rpartition(".")
        if not task or task == template.task:
            params[name] = value
    return params


class TokenCounter:
    """Text tokens with the model's tokenizer when given, else estimated (words and punctuation)."""

    def __init__(self, tokenizer: Path | None):
        self.exact = tokenizer is not None
        self._tokenizer = None
        if tokenizer is not None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))

    def __call__(self, text: str) -> int:
        if self._tokenizer is not None:
            return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        return len(_WORDS.findall(text))


@dataclass
class _Stats:
    samples: int = 0
    by_dataset: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    empty_by_dataset: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tokens: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def summary(self, context: int) -> dict[str, Any]:
        ordered = sorted(self.tokens)

        def pct(p: float) -> int:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0

        return {
            "samples": self.samples,
            "by_dataset": dict(sorted(self.by_dataset.items())),
            "empty_share": {
                d: round(self.empty_by_dataset[d] / n, 4) for d, n in sorted(self.by_dataset.items())
            },
            "skipped": self.skipped,
            "tokens": {
                "min": ordered[0] if ordered else 0,
                "mean": round(sum(ordered) / len(ordered), 1) if ordered else 0,
                "p50": pct(0.5),
                "p95": pct(0.95),
                "max": ordered[-1] if ordered else 0,
                "over_context": sum(t > context for t in ordered),
            },
        }


class _Shards:
    """Sharded JSONL files per (export, task): ``<export>/<task>/<stage>-<task>-00000.jsonl``."""

    def __init__(self, root: Path, stage: str, shard_size: int):
        self.root, self.stage, self.shard_size = root, stage, shard_size
        self.handles: dict[tuple[str, str], IO[bytes]] = {}
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def write(self, export: str, task: str, record: dict[str, Any]) -> None:
        key = (export, task)
        n = self.counts[key]
        if n % self.shard_size == 0:
            if key in self.handles:
                self.handles[key].close()
            folder = self.root / export / task
            folder.mkdir(parents=True, exist_ok=True)
            self.handles[key] = open(folder / f"{self.stage}-{task}-{n // self.shard_size:05d}.jsonl", "wb")  # noqa: SIM115 -- closed in close()
        self.handles[key].write(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n")
        self.counts[key] = n + 1

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()


class Renderer:
    """Turns drafts into native records: phrasing, resizing, box text, messages, solution.

    With ``staging`` (the build's temporary folder), images are materialised: resized to what the model
    sees, written once under ``staging/images`` and referenced relative to the build (``images/NAME``),
    so the finished build can be copied to another machine.
    """

    def __init__(self, options: BuildOptions, staging: Path | None = None):
        self.options = options
        self.staging = staging if options.materialize else None
        self.box_format = normalize_box_format(options.box_format)
        if options.processor not in PROCESSOR_PRESETS:
            raise OmniptError(
                f"unknown processor {options.processor!r}; known: {', '.join(PROCESSOR_PRESETS)}"
            )
        self.hints = format_hints()
        self.factor = PROCESSOR_PRESETS[options.processor].factor

    def model_size(self, size: tuple[int, int]) -> tuple[int, int]:
        opts = self.options
        return model_image_size(size, opts.processor, min_pixels=opts.min_pixels, max_pixels=opts.max_pixels)

    def image_tokens(self, size: tuple[int, int]) -> int:
        return (size[0] // self.factor) * (size[1] // self.factor)

    def _text(self, value: Any, original: tuple[int, int], model: tuple[int, int]) -> Any:
        if isinstance(value, Answer):
            return render_answer(scale_answer(value, original, model), self.box_format, model)
        return value

    def _materialized(self, image: Image) -> Image:
        """The image resized to the model's size under OUT/images (same original size: boxes unchanged)."""
        if self.staging is None:
            return image
        from PIL import Image as PILImage

        size = self.model_size(image.size)
        name = f"{hashlib.sha256(image.path.encode()).hexdigest()[:20]}_{size[0]}x{size[1]}.jpg"
        staged = self.staging / "images" / name
        if not staged.exists():
            staged.parent.mkdir(parents=True, exist_ok=True)
            try:
                partial = staged.with_name(f"{name}.{os.getpid()}.partial")  # workers may race on one image
                with PILImage.open(image.path) as source:
                    source.convert("RGB").resize(size, PILImage.Resampling.BICUBIC).save(
                        partial, "JPEG", quality=95
                    )
                os.replace(partial, staged)
            except OSError as exc:
                raise OmniptError(f"{image.path}: cannot materialise ({exc})") from None
        return Image(f"images/{name}", image.size, image.label)

    def _content(self, template: Template, images: list[Image], instruction: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for image in images:
            if template.image_label:
                parts.append({"type": "text", "text": template.image_label.format(**image.label) + " "})
            parts.append({"type": "image", "image": image.path})
            if template.image_label:
                parts.append({"type": "text", "text": "\n"})
        parts.append({"type": "text", "text": instruction})
        return parts

    def render(
        self, template: Template, draft: Draft, count_tokens: TokenCounter
    ) -> tuple[dict[str, Any], int]:
        rng = seeded(self.options.seed, template.stage, template.task, draft.key)
        messages: list[dict[str, Any]] = []
        if template.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": template.system}]})
        images, sizes, originals, tokens = [], [], [], 0
        solution = None
        for turn in draft.turns:
            turn = replace(turn, images=[self._materialized(i) for i in turn.images])
            original = turn.images[0].size
            model = self.model_size(original)
            context = {k: self._text(v, original, model) for k, v in turn.context.items()}
            context["format_hint"] = self.hints[self.box_format]["hint"]
            context["format_hint_plain"] = self.hints[self.box_format]["plain"]
            instruction = template.instruction(rng, context)
            if isinstance(turn.answer, Answer):
                scaled = scale_answer(turn.answer, original, model)
                answer_text = render_answer(scaled, self.box_format, model)
                if template.stage in RL_STAGES:
                    solution = make_solution(
                        scaled,
                        task=template.task,
                        box_format=self.box_format,
                        image_size=model,
                        reward=template.reward,
                    )
            else:
                answer_text = turn.answer
                if template.stage in RL_STAGES:
                    solution = make_solution(
                        Answer(scalar=parse_scalar(answer_text)),
                        task=template.task,
                        box_format=self.box_format,
                        image_size=model,
                        references=[answer_text],
                        reward=template.reward,
                    )
            messages.append({"role": "user", "content": self._content(template, turn.images, instruction)})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer_text}]})
            for image in turn.images:
                size = self.model_size(image.size)
                images.append(image.path)
                sizes.append(list(size))
                originals.append(list(image.size))
                tokens += self.image_tokens(size)
            tokens += count_tokens(instruction) + count_tokens(answer_text)
        record = {
            "id": hashlib.sha256(f"{template.stage}|{template.task}|{draft.key}".encode()).hexdigest()[:16],
            "stage": template.stage,
            "task": template.task,
            "dataset": draft.dataset,
            "key": draft.key,
            "box_format": self.box_format,
            "processor": self.options.processor,
            "images": images,
            "image_sizes": sizes,
            "original_sizes": originals,
            "messages": messages,
            "solution": solution,
            "meta": {**draft.meta, "negative": draft.empty},
        }
        return record, tokens


def with_negative_share(
    rendered: Iterator[Rendered], share: float, seed: int, task: str, spool_dir: Path
) -> Iterator[Rendered]:
    """The rendered samples of ``task``, in their order, each negative (empty answer) kept by a draw seeded
    with its key, at the rate that makes negatives ``share`` of the samples. The rate needs the counts of
    the whole store (empty frames gather in scenes where nobody walks, so a quota per scene keeps none of
    theirs): the samples wait in a spool file in ``spool_dir`` until the last one is drawn."""
    if share >= 1.0:
        yield from rendered
        return
    if share <= 0.0:
        yield from (item for item in rendered if not item[1]["meta"]["negative"])
        return
    positives = negatives = 0
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        for item in rendered:
            if item[1]["meta"]["negative"]:
                negatives += 1
            else:
                positives += 1
            spool.write(orjson.dumps(item) + b"\n")
        # all negatives when there are too few to make the share
        rate = min(1.0, share / (1.0 - share) * positives / negatives) if negatives else 0.0
        spool.seek(0)
        for line in spool:
            dataset, record, tokens = orjson.loads(line)
            negative = record["meta"]["negative"]
            if not negative or seeded(seed, "negative", task, record["key"]).random() < rate:
                yield dataset, record, tokens


def build(options: BuildOptions) -> dict[str, Any]:
    """Run a build; returns its manifest (also written to ``OUT/manifest.json``)."""
    unknown = [e for e in options.exports if e not in EXPORTS]
    if unknown:
        raise OmniptError(f"unknown export(s) {unknown}; exports are {', '.join(EXPORTS)}")
    if not options.stores:
        raise OmniptError("a build needs at least one --store")
    if options.engine not in ENGINES:
        raise OmniptError(f"unknown engine {options.engine!r}; engines are {', '.join(ENGINES)}")
    templates = load_templates(options.stage, options.tasks)
    missing = [t.sampler for t in templates if t.sampler not in SAMPLERS]
    if missing:
        raise OmniptError(f"templates name unknown sampler(s) {missing}; samplers: {', '.join(SAMPLERS)}")
    sources = [BuildSource(p) for p in options.stores]
    count_tokens = TokenCounter(options.tokenizer)
    stats: dict[str, _Stats] = {t.task: _Stats() for t in templates}
    with atomic_directory(options.out, overwrite=options.overwrite) as tmp:
        renderer = Renderer(options, staging=tmp)
        shards = _Shards(tmp, options.stage, options.shard_size)
        try:
            with progress_bar(
                f"build {options.stage}", total=len(templates) * len(sources), enabled=options.show_progress
            ) as advance:
                for template in templates:
                    params = template_params(template, options.params)
                    task_stats = stats[template.task]
                    for source in sources:
                        task_stats.skipped += source.excluded(draws_for(template.sampler, params))
                        if options.engine == "ray":
                            rendered = render_source_on_ray(template, source, params, options, staging=tmp)
                        else:
                            rendered = render_source(
                                template, source, params, options, renderer, count_tokens
                            )
                        share, task = negative_share(params), template.task
                        kept = with_negative_share(rendered, share, options.seed, task, spool_dir=tmp)
                        for dataset, record, tokens in kept:
                            if (
                                options.max_per_task is not None
                                and task_stats.samples >= options.max_per_task
                            ):
                                break
                            task_stats.samples += 1
                            task_stats.by_dataset[dataset] += 1
                            task_stats.empty_by_dataset[dataset] += bool(record["meta"]["negative"])
                            task_stats.tokens.append(tokens)
                            for export in options.exports:
                                shards.write(export, template.task, CONVERTERS[export](record))
                        advance(1)
        finally:
            shards.close()
        tasks_built = {t.task: t.system is not None for t in templates if stats[t.task].samples}
        if "llamafactory" in options.exports:
            write_json(
                tmp / "llamafactory" / "dataset_info.json",
                llamafactory_dataset_info(options.stage, tasks_built),
            )
        if "swift" in options.exports and options.stage in RL_STAGES:
            write_swift_reward_plugin(tmp / "swift")
        files = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "omnipt_data_version": __version__,
            "stage": options.stage,
            "options": {
                **{
                    k: v
                    for k, v in asdict(options).items()
                    if k
                    not in (
                        "stores",
                        "out",
                        "overwrite",
                        "show_progress",
                        "tokenizer",
                        "engine",
                        "ray_address",
                    )
                },
                "tokenizer": str(options.tokenizer) if options.tokenizer else None,
            },
            "stores": [
                {"path": str(s.store.path.resolve()), "content_hash": s.content_hash} for s in sources
            ],
            "exports_checked_with": {e: CHECKED_WITH[e] for e in options.exports if e in CHECKED_WITH},
            "templates": {
                t.task: {
                    "path": t.path.name,
                    "sampler": t.sampler,
                    "reward": t.reward,
                    "phrasings": len(t.instructions),
                    "params": template_params(t, options.params),
                }
                for t in templates
            },
            "tasks": {task: s.summary(options.context_tokens) for task, s in stats.items()},
            "samples": sum(s.samples for s in stats.values()),
            "token_counting": "tokenizer"
            if count_tokens.exact
            else "estimated (words and punctuation) + exact image tokens",
            "files": files,
        }
        write_json(tmp / MANIFEST, manifest)
    return manifest
