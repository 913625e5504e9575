"""Where a build's drafts are drawn and rendered: in this process, or as a Ray Data pipeline.

Both engines yield ``(dataset, record, tokens)`` for one template over one store in the same order:
the Ray engine shards the store into units (a scene, or one dataset's persons; see
:class:`omnipt_data.build.source.BuildSource`), renders the units on the cluster's workers and reads
them back in unit order (``preserve_order``), so its output is byte-identical to the local engine's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from omnipt_data.build.samplers import SAMPLERS
from omnipt_data.build.source import BuildSource, Unit
from omnipt_data.build.templates import Template
from omnipt_data.errors import OmniptError

if TYPE_CHECKING:
    from omnipt_data.build.builder import BuildOptions, Renderer, TokenCounter

ENGINES = ("local", "ray")
Rendered = tuple[str, dict[str, Any], int]


def render_source(
    template: Template,
    source: BuildSource,
    params: dict[str, Any],
    options: BuildOptions,
    renderer: Renderer,
    count_tokens: TokenCounter,
) -> Iterator[Rendered]:
    """Draw the template's drafts from ``source``, keep each with ``sample_rate``, render them."""
    from omnipt_data.build.builder import seeded

    def rng_for(key: str) -> random.Random:
        return seeded(options.seed, template.stage, template.task, "sampler", key)

    for draft in SAMPLERS[template.sampler](source, params, rng_for):
        if (
            options.sample_rate < 1.0
            and seeded(options.seed, "keep", template.task, draft.key).random() >= options.sample_rate
        ):
            continue
        record, tokens = renderer.render(template, draft, count_tokens)
        yield draft.dataset, record, tokens


def _render_units(
    batch: dict[str, Any],
    template: Template,
    path: str,
    params: dict[str, Any],
    options: BuildOptions,
    staging: str | None,
) -> dict[str, list[Any]]:
    from omnipt_data.build.builder import Renderer, TokenCounter

    renderer = Renderer(options, staging=Path(staging) if staging else None)
    count_tokens = TokenCounter(options.tokenizer)
    out: dict[str, list[Any]] = {"dataset": [], "record": [], "tokens": []}
    for kind, key in zip(batch["kind"], batch["key"], strict=True):
        unit: Unit = (str(kind), str(key))
        source = BuildSource(path, unit)
        for dataset, record, tokens in render_source(
            template, source, params, options, renderer, count_tokens
        ):
            out["dataset"].append(dataset)
            out["record"].append(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
            out["tokens"].append(tokens)
    return out


def connect_ray(address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise OmniptError("--engine ray needs Ray: pip install 'omnipt-data[ray]'") from None
    if not ray.is_initialized():
        # A local instance unless an address (or RAY_ADDRESS) names a cluster.
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False


def render_source_on_ray(
    template: Template,
    source: BuildSource,
    params: dict[str, Any],
    options: BuildOptions,
    staging: Path | None = None,
) -> Iterator[Rendered]:
    """The same records as :func:`render_source`, rendered by Ray Data, one task per unit."""
    import ray.data

    connect_ray(options.ray_address)
    units = source.units()
    if not units:
        return
    dataset = ray.data.from_items([{"kind": kind, "key": key} for kind, key in units]).map_batches(
        _render_units,
        batch_size=1,
        fn_kwargs={
            "template": template,
            "path": str(source.path),
            "params": params,
            "options": options,
            "staging": str(staging) if staging else None,
        },
    )
    for row in dataset.iter_rows():
        yield str(row["dataset"]), orjson.loads(bytes(row["record"])), int(row["tokens"])
