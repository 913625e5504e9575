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
    track = "stores/val"                       # optional: a store whose sequences are tracked
    track_length = 2                           # frames per tracker clip

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

With ``[probe] track``, each probed checkpoint also tracks that store's sequences (prompted as the probe
build renders its samples) and TrackEval's HOTA joins the probe. The schedule's ``out`` folder then holds
the learning curve (``curve.json``, ``curve.png``: exact format, box F1 and HOTA before training and after
each probed stage) and ``probe-frame.png``, a held-out frame with its true boxes and the answers before and
after training.
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
from omnipt_data.train.curve import (
    PROBE_FRAME_PNG,
    CurvePoint,
    busiest_example,
    draw_probe_frame,
    tracking_hota,
    write_curve,
)
from omnipt_data.train.data import Build, Row, images_of, open_build
from omnipt_data.train.grpo import GRPOOptions, train_grpo
from omnipt_data.train.probe import EXAMPLES_KEPT, ProbeResult, probe
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
#: The tracking results of a probed checkpoint (in its folder; ``tracking-base`` for the base model), with
#: their HOTA cached beside them (``tracking.json``).
TRACKING_DIR = "tracking"
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
    track: Path | None = None
    track_length: int = 2


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
    hota: float | None = None


@dataclass
class ScheduleResult:
    before: ProbeResult | None
    stages: list[StageOutcome]
    seconds: float
    before_hota: float | None = None

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
        _only(
            path,
            "[probe]",
            table,
            {"data", "samples", "max_new_tokens", "after_each_stage", "track", "track_length"},
        )
        if "data" not in table:
            raise OmniptError(f"{path}: [probe] needs data (an RL build)")
        probe_config = ProbeConfig(
            data=where(table["data"], "[probe] data"),
            samples=_typed(path, "[probe] samples", table.get("samples", 8), int),
            max_new_tokens=_typed(path, "[probe] max_new_tokens", table.get("max_new_tokens", 128), int),
            after_each_stage=_typed(
                path, "[probe] after_each_stage", table.get("after_each_stage", True), bool
            ),
            track=where(table["track"], "[probe] track") if "track" in table else None,
            track_length=_typed(path, "[probe] track_length", table.get("track_length", 2), int),
        )
        if probe_config.track_length < 2:
            raise OmniptError(f"{path}: [probe] track_length must be at least 2 (a clip spans 2 frames)")
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
    before = before_hota = None
    if probe_build is not None and state.is_main_process:
        before = _base_probe(config, probe_build, probe_rows, console)
        before_hota = _hota(config, config.model, config.out / f"{TRACKING_DIR}-base", probe_build, console)
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
            _track_stage(config, outcomes[-1], probe_build, console)
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
        _track_stage(config, outcomes[-1], probe_build, console)
        model = out
    result = ScheduleResult(
        before=before, stages=outcomes, seconds=time.perf_counter() - started, before_hota=before_hota
    )
    if state.is_main_process:
        write_json(config.out / SUMMARY, _summary(config, result))
        if result.before is not None:
            write_curve(curve_points(result), config.out, title=f"learning curve ({config.out.name})")
            _draw_probe_frame(config, result, probe_rows)
        console.print(summary_table(result))
    state.wait_for_everyone()
    return result


def curve_points(result: ScheduleResult) -> list[CurvePoint]:
    """The base model's probe and each probed stage's, with the steps trained so far."""
    before = result.before
    points = [
        CurvePoint(
            "base",
            0,
            before.exact_format if before else None,
            before.box_f1 if before else None,
            result.before_hota,
            before.image_reliance if before else None,
        )
    ]
    steps = 0
    for stage in result.stages:
        steps += stage.steps
        if stage.probe is not None:
            probed = stage.probe
            points.append(
                CurvePoint(
                    stage.name, steps, probed.exact_format, probed.box_f1, stage.hota, probed.image_reliance
                )
            )
    return points


def _draw_probe_frame(config: ScheduleConfig, result: ScheduleResult, rows: list[Row]) -> None:
    """The held-out frame with the most people among those whose answers the probes keep."""
    before, after = result.before, result.after
    if before is None or after is None or not rows:
        return
    kept = min(len(before.examples), len(after.examples), EXAMPLES_KEPT, len(rows))
    if kept == 0:
        return
    index = busiest_example(rows, kept)
    answers = [("before training", before.examples[index]), ("after training", after.examples[index])]
    draw_probe_frame(rows[index], answers, config.out / PROBE_FRAME_PNG)


def _hota(config: ScheduleConfig, model: Path, out: Path, build: Build, console: Console) -> float | None:
    """HOTA of ``model`` on ``[probe] track``, cached beside the results for an unchanged checkpoint."""
    if config.probe is None or config.probe.track is None:
        return None
    key = {
        "model": str(model),
        "finished_at": base_finished_at(model),
        "store": str(config.probe.track),
        "length": config.probe.track_length,
        "max_new_tokens": config.probe.max_new_tokens,
    }
    cache = out.with_name(f"{out.name}.json")
    if cache.is_file():
        cached = orjson.loads(cache.read_bytes())
        if cached.get("key") == key:
            console.print(f"  tracking {config.probe.track.name}: HOTA {cached['HOTA']:.3f} (cached)")
            return float(cached["HOTA"])
    hota = tracking_hota(
        model,
        config.probe.track,
        out,
        build,
        length=config.probe.track_length,
        max_new_tokens=config.probe.max_new_tokens,
    )
    write_json(cache, {"key": key, "HOTA": hota})
    console.print(f"  tracking {config.probe.track.name}: HOTA {hota:.3f}")
    return hota


def _track_stage(
    config: ScheduleConfig, outcome: StageOutcome, build: Build | None, console: Console
) -> None:
    """Track ``[probe] track`` with a stage's checkpoint when the stage was probed."""
    if build is not None and outcome.probe is not None and process_state().is_main_process:
        outcome.hota = _hota(config, outcome.out, outcome.out / TRACKING_DIR, build, console)


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
    for column in (
        "stage",
        "trainer",
        "status",
        "steps",
        "format reward",
        "exact format",
        "box F1",
        "image reliance",
        "HOTA",
    ):
        table.add_column(column)
    rows: list[tuple[str, str, str, str, ProbeResult | None, float | None]] = [
        ("base", "", "", "", result.before, result.before_hota)
    ]
    rows += [(s.name, s.trainer, s.status, str(s.steps), s.probe, s.hota) for s in result.stages]
    for name, trainer, status, steps, probed, hota in rows:
        tracked = "" if hota is None else f"{hota:.3f}"
        if probed is None:
            table.add_row(name, trainer, status, steps, "", "", "", "", tracked)
        else:
            table.add_row(
                name,
                trainer,
                status,
                steps,
                f"{probed.format_reward:.3f}",
                f"{probed.exact_format:.0%}",
                f"{probed.box_f1:.3f}",
                "" if probed.image_reliance is None else f"{probed.image_reliance:+.3f}",
                tracked,
            )
    return table


def _summary(config: ScheduleConfig, result: ScheduleResult) -> dict[str, Any]:
    return {
        "config": str(config.source) if config.source else None,
        "model": str(config.model),
        "seconds": round(result.seconds, 1),
        "probe_before": result.before.to_dict() if result.before else None,
        "hota_before": result.before_hota,
        "stages": [
            {
                "name": s.name,
                "trainer": s.trainer,
                "out": str(s.out),
                "status": s.status,
                "steps": s.steps,
                "probe_after": s.probe.to_dict() if s.probe else None,
                "hota_after": s.hota,
            }
            for s in result.stages
        ],
    }
