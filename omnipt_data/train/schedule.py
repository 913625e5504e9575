"""The OmniPT schedule: format RL -> mid-training -> SFT -> tracking RL, chained from one TOML file.

Config format (paths are relative to the root: ``--root``, else ``[schedule] root``, else the config
file's folder)::

    [schedule]
    model = "models/Qwen2.5-VL-7B-Instruct"   # the first stage starts from it
    out = "runs/omnipt"                        # stage i writes <out>/<i:02d>-<name>

    [probe]                                    # optional: held out, answered before and after
    data = "builds/format-rl"                  # an RL build
    samples = 16
    max_new_tokens = 256
    after_each_stage = true

    [defaults]                                 # any stage option, for every stage
    batch_size = 4
    bf16 = "auto"

    [[stage]]
    name = "format-rl"
    trainer = "grpo"                           # sft or grpo
    data = "builds/format-rl"
    max_steps = 500
    lr = 1e-6
    num_generations = 8

    [[stage]]
    name = "mid"
    trainer = "sft"
    data = ["builds/mid", "builds/format-rl"]   # one build or several, trained together
    epochs = 1

A stage option is any field of :class:`~omnipt_data.train.runner.TrainOptions` (``tasks``, ``epochs``,
``max_steps``, ``lr``, ``batch_size``, ``grad_accum``, ``lora``, ...) and, for GRPO stages, of
:class:`~omnipt_data.train.grpo.GRPOOptions` (``num_generations``, ``max_completion_length``,
``reward``, ...); ``model``, ``out`` and the probe settings belong to the schedule.

Each stage starts from the previous stage's checkpoint. Re-running the schedule skips a stage whose
folder holds a finished run trained from the current base, resumes an interrupted stage from its last
checkpoint, and trains again a finished stage whose base has been retrained since. The held-out probe
samples' images are left out of every stage's training data.
"""

from __future__ import annotations

import shutil
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from omnipt_data.errors import OmniptError
from omnipt_data.store import write_json
from omnipt_data.train.data import Build, Row, images_of, open_build
from omnipt_data.train.grpo import GRPOOptions, train_grpo
from omnipt_data.train.probe import ProbeResult, probe
from omnipt_data.train.runner import (
    TrainOptions,
    base_finished_at,
    held_out,
    is_complete,
    last_checkpoint,
    process_state,
    read_record,
)
from omnipt_data.train.sft import train_sft

TRAINERS = ("sft", "grpo")
SUMMARY = "schedule.json"
BASE_PROBE = "probe-base.json"
#: Written into a stage's folder when it starts: which base it trains from.
STAGE_BASE = "stage-base.json"
#: Stage options the schedule sets itself.
_RESERVED = {
    "model",
    "out",
    "probe_data",
    "probe_samples",
    "probe_before",
    "probe_max_new_tokens",
    "exclude_images",
    "resume",
    "overwrite",
    "show_progress",
}
_PATH_OPTIONS = {"data"}


@dataclass
class StageConfig:
    name: str
    trainer: str
    data: list[Path]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeConfig:
    data: Path
    samples: int = 8
    max_new_tokens: int = 128
    after_each_stage: bool = True


@dataclass
class ScheduleConfig:
    model: Path
    out: Path
    stages: list[StageConfig]
    probe: ProbeConfig | None = None
    source: Path | None = None

    def stage_dir(self, index: int) -> Path:
        return self.out / f"{index + 1:02d}-{self.stages[index].name}"


@dataclass
class StageOutcome:
    name: str
    trainer: str
    out: Path
    status: str  # trained, resumed, skipped, retrained
    steps: int
    last_log: dict[str, Any] | None
    probe: ProbeResult | None


@dataclass
class ScheduleResult:
    before: ProbeResult | None
    stages: list[StageOutcome]
    seconds: float

    @property
    def after(self) -> ProbeResult | None:
        return self.stages[-1].probe if self.stages else None


# --------------------------------------------------------------------------------------------------
# The config file
# --------------------------------------------------------------------------------------------------


def load_schedule(path: Path, *, root: Path | None = None) -> ScheduleConfig:
    """Read and check a schedule config; every problem is an :class:`OmniptError` naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OmniptError(f"{path}: no such schedule config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise OmniptError(f"{path}: invalid TOML ({error})") from None
    _only(path, "the top level", data, {"schedule", "probe", "defaults", "stage"})
    head = _table(path, data, "schedule")
    _only(path, "[schedule]", head, {"model", "out", "root"})
    base = Path(root) if root is not None else _resolve(path.parent, head.get("root", "."))

    def where(value: Any, what: str) -> Path:
        if not isinstance(value, str) or not value:
            raise OmniptError(f"{path}: {what} must be a path (a non-empty string)")
        return _resolve(base, value)

    for key in ("model", "out"):
        if key not in head:
            raise OmniptError(f"{path}: [schedule] needs {key}")
    probe_config = None
    if "probe" in data:
        table = _table(path, data, "probe")
        _only(path, "[probe]", table, {"data", "samples", "max_new_tokens", "after_each_stage"})
        if "data" not in table:
            raise OmniptError(f"{path}: [probe] needs data (an RL build)")
        probe_config = ProbeConfig(
            data=where(table["data"], "[probe] data"),
            samples=_typed(path, "[probe] samples", table.get("samples", 8), int),
            max_new_tokens=_typed(path, "[probe] max_new_tokens", table.get("max_new_tokens", 128), int),
            after_each_stage=_typed(
                path, "[probe] after_each_stage", table.get("after_each_stage", True), bool
            ),
        )
    defaults = _table(path, data, "defaults") if "defaults" in data else {}
    raw_stages = data.get("stage")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise OmniptError(f"{path}: no [[stage]] tables (a schedule needs at least one stage)")
    stages: list[StageConfig] = []
    for number, raw in enumerate(raw_stages, 1):
        merged = {**defaults, **raw}
        label = f"stage {number} ({merged.get('name', '?')})"
        for key in ("name", "trainer", "data"):
            if key not in merged:
                raise OmniptError(f"{path}: {label} needs {key}")
        trainer = merged.pop("trainer")
        if trainer not in TRAINERS:
            raise OmniptError(f"{path}: {label}: trainer {trainer!r} (expected {' or '.join(TRAINERS)})")
        name = str(merged.pop("name"))
        if not name or "/" in name or name in {s.name for s in stages}:
            raise OmniptError(f"{path}: {label}: stage names must be unique, non-empty, without '/'")
        raw_data = merged.pop("data")
        listed = raw_data if isinstance(raw_data, list) and raw_data else [raw_data]
        stage_data = [where(item, f"{label} data") for item in listed]
        allowed = (GRPOOptions if trainer == "grpo" else TrainOptions).option_names() - _RESERVED
        unknown = sorted(set(merged) - allowed)
        if unknown:
            raise OmniptError(
                f"{path}: {label}: unknown option(s) {', '.join(unknown)} for a {trainer} stage "
                f"(known: {', '.join(sorted(allowed - _PATH_OPTIONS))})"
            )
        options = _checked_options(path, label, trainer, merged)
        stages.append(StageConfig(name=name, trainer=trainer, data=stage_data, options=options))
    return ScheduleConfig(
        model=where(head["model"], "[schedule] model"),
        out=where(head["out"], "[schedule] out"),
        stages=stages,
        probe=probe_config,
        source=path,
    )


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _table(path: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise OmniptError(f"{path}: [{key}] must be a table")
    return value


def _only(path: Path, where: str, table: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise OmniptError(
            f"{path}: unknown key(s) {', '.join(unknown)} in {where} (known: {', '.join(sorted(known))})"
        )


def _typed(path: Path, what: str, value: Any, kind: type) -> Any:
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise OmniptError(f"{path}: {what} must be {kind.__name__} (got {value!r})")
    return value


def _checked_options(path: Path, label: str, trainer: str, options: dict[str, Any]) -> dict[str, Any]:
    """Type-check stage options against the options dataclass's defaults (ints may stand for floats)."""
    cls = GRPOOptions if trainer == "grpo" else TrainOptions
    defaults = {f.name: f.default for f in fields(cls)}
    checked: dict[str, Any] = {}
    for key, value in options.items():
        default = defaults[key]
        if key == "tasks":
            if isinstance(value, str):
                value = [t.strip() for t in value.split(",") if t.strip()]
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise OmniptError(f"{path}: {label}: tasks must be a list of task names")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise OmniptError(f"{path}: {label}: {key} must be true or false (got {value!r})")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif default is not None and not isinstance(value, type(default)):
            raise OmniptError(f"{path}: {label}: {key} must be {type(default).__name__} (got {value!r})")
        elif default is None and not (isinstance(value, int) and not isinstance(value, bool)):
            # The options without a default value (max_steps, max_length, num_workers) are integers.
            raise OmniptError(f"{path}: {label}: {key} must be an integer (got {value!r})")
        checked[key] = value
    return checked


# --------------------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------------------


def run_schedule(
    config: ScheduleConfig,
    *,
    console: Console | None = None,
    show_progress: bool = True,
    callbacks: tuple[Any, ...] = (),
) -> ScheduleResult:
    """Run (or resume) every stage in order; print and return what each did, with the probes."""
    console = console or Console(stderr=True)
    state = process_state()
    started = time.perf_counter()

    def say(text: str) -> None:
        if state.is_main_process:
            console.print(text)

    if not config.model.is_dir():
        raise OmniptError(f"[schedule] model {config.model}: no such checkpoint folder")
    config.out.mkdir(parents=True, exist_ok=True)
    probe_build, probe_rows = _probe_rows(config)
    held_out_images = images_of(probe_rows)
    before = None
    if probe_build is not None and state.is_main_process:
        before = _base_probe(config, probe_build, probe_rows, console)
    state.wait_for_everyone()

    model = config.model
    outcomes: list[StageOutcome] = []
    for index, stage in enumerate(config.stages):
        out = config.stage_dir(index)
        header = f"[bold]stage {index + 1}/{len(config.stages)} {stage.name}[/]: {stage.trainer}"
        # A stage (finished or interrupted) trained from another base than the one now in place, which
        # was retrained since, must train again from the start.
        base = base_finished_at(model)
        complete = is_complete(out)
        if complete and read_record(out).get("base_finished_at") == base:
            say(f"{header}: finished earlier, skipped")
            outcomes.append(_outcome(stage, out, "skipped", read_record(out)))
            model = out
            continue
        stale = complete or (out.is_dir() and _started_from(out) != base)
        if stale and state.is_main_process:
            shutil.rmtree(out)
        state.wait_for_everyone()
        status = "retrained" if stale else "resumed" if last_checkpoint(out) is not None else "trained"
        say(f"{header}: {'its base was retrained, training again' if stale else status}")
        if state.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / STAGE_BASE, {"base": str(model), "base_finished_at": base})
        state.wait_for_everyone()
        probe_here = bool(config.probe) and (config.probe.after_each_stage or index == len(config.stages) - 1)
        options = _stage_options(
            config,
            stage,
            model,
            out,
            held_out_images,
            probe_here,
            show_progress=show_progress,
        )
        runner = train_grpo if stage.trainer == "grpo" else train_sft
        runner(options, console=console, callbacks=callbacks)
        outcomes.append(_outcome(stage, out, status, read_record(out)))
        model = out
    result = ScheduleResult(before=before, stages=outcomes, seconds=time.perf_counter() - started)
    if state.is_main_process:
        write_json(config.out / SUMMARY, _summary(config, result))
        console.print(summary_table(result))
    state.wait_for_everyone()
    return result


def _stage_options(
    config: ScheduleConfig,
    stage: StageConfig,
    model: Path,
    out: Path,
    held_out_images: frozenset[str],
    probe_here: bool,
    *,
    show_progress: bool,
) -> TrainOptions:
    cls = GRPOOptions if stage.trainer == "grpo" else TrainOptions
    probe_settings: dict[str, Any] = {}
    if config.probe and probe_here:
        probe_settings = {
            "probe_data": config.probe.data,
            "probe_samples": config.probe.samples,
            "probe_max_new_tokens": config.probe.max_new_tokens,
        }
    return cls(
        model=model,
        data=stage.data,
        out=out,
        probe_before=False,
        # Every stage leaves the held-out images out, whether or not it answers them afterwards.
        exclude_images=held_out_images,
        show_progress=show_progress,
        **probe_settings,
        **stage.options,
    )


def _probe_rows(config: ScheduleConfig) -> tuple[Build | None, list[Row]]:
    """The probe build and its held-out rows, the same ones every stage's run picks."""
    if config.probe is None:
        return None, []
    options = TrainOptions(
        model=config.model, data=config.probe.data, out=config.out, probe_samples=config.probe.samples
    )
    return held_out(options, open_build(config.probe.data))


def _base_probe(config: ScheduleConfig, probe_build: Build, rows: list[Row], console: Console) -> ProbeResult:
    """The starting model's probe, cached in ``<out>/probe-base.json`` for resumed runs."""
    assert config.probe is not None
    cache = config.out / BASE_PROBE
    key = {"model": str(config.model), "data": str(config.probe.data), "samples": config.probe.samples}
    if cache.is_file():
        cached = orjson.loads(cache.read_bytes())
        if cached.get("key") == key:
            result = ProbeResult.from_dict(cached["result"])
            console.print(f"before training: {result.describe()} (cached)")
            return result
    result = probe(config.model, rows, probe_build, max_new_tokens=config.probe.max_new_tokens)
    write_json(cache, {"key": key, "result": result.to_dict()})
    console.print(f"before training: {result.describe()}")
    return result


def _started_from(out: Path) -> float | str | None:
    """The base a stage's folder was started from (``"unknown"`` without the file)."""
    try:
        return orjson.loads((out / STAGE_BASE).read_bytes())["base_finished_at"]
    except (OSError, KeyError, TypeError, orjson.JSONDecodeError):
        return "unknown"


def _outcome(stage: StageConfig, out: Path, status: str, record: dict[str, Any]) -> StageOutcome:
    probed = record.get("probe_after")
    return StageOutcome(
        name=stage.name,
        trainer=stage.trainer,
        out=out,
        status=status,
        steps=int(record.get("steps", 0)),
        last_log=record.get("final_log"),
        probe=ProbeResult.from_dict(probed) if probed else None,
    )


def summary_table(result: ScheduleResult) -> Table:
    """Stages with their status, steps and probes, starting from the base model's probe."""
    table = Table(title=f"schedule ({result.seconds:.0f} s)")
    for column in ("stage", "trainer", "status", "steps", "format reward", "exact format", "box F1"):
        table.add_column(column)
    rows: list[tuple[str, str, str, str, ProbeResult | None]] = [("base", "", "", "", result.before)]
    rows += [(s.name, s.trainer, s.status, str(s.steps), s.probe) for s in result.stages]
    for name, trainer, status, steps, probed in rows:
        if probed is None:
            table.add_row(name, trainer, status, steps, "", "", "")
        else:
            table.add_row(
                name,
                trainer,
                status,
                steps,
                f"{probed.format_reward:.3f}",
                f"{probed.exact_format:.0%}",
                f"{probed.box_f1:.3f}",
            )
    return table


def _summary(config: ScheduleConfig, result: ScheduleResult) -> dict[str, Any]:
    return {
        "config": str(config.source) if config.source else None,
        "model": str(config.model),
        "seconds": round(result.seconds, 1),
        "probe_before": result.before.to_dict() if result.before else None,
        "stages": [
            {
                "name": s.name,
                "trainer": s.trainer,
                "out": str(s.out),
                "status": s.status,
                "steps": s.steps,
                "probe_after": s.probe.to_dict() if s.probe else None,
            }
            for s in result.stages
        ],
    }
