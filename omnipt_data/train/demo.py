"""The training demo: the tiny offline Qwen-VL learns the answer format on the synthetic world, on a CPU.

Steps, each reused when its output already exists (so an interrupted demo continues where it stopped):

1. ``model/``: the tiny random Qwen2.5-VL (:func:`omnipt_data.model.build_tiny_qwen_vl`);
2. ``world/`` and ``stores/mot``: the synthetic plaza seen by two cameras, read back as a store;
3. ``builds/<stage>``: the four stage builds, with images capped at :data:`DEMO_MAX_PIXELS` so a CPU step
   stays short;
4. ``checkpoints/``: the four-stage schedule of ``configs/schedule.tiny.toml``, which logs the format
   reward and box F1 of greedy answers to held-out format-RL samples before training and after each stage.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from omnipt_data.errors import OmniptError
from omnipt_data.train.schedule import ScheduleResult, load_schedule, run_schedule

#: Images at most 16 visual tokens (a 640x360 frame becomes 140x84 pixels): a CPU step stays short.
DEMO_MAX_PIXELS = 16 * 28 * 28
#: The tasks each stage's build holds (the ones a MOT store feeds).
DEMO_TASKS: dict[str, list[str]] = {
    "format-rl": ["ground_all"],
    "mid": ["detect", "count", "visibility"],
    "sft": ["mot_step"],
    "track-rl": ["mot_step"],
}
DEMO_CONFIG = "schedule.tiny.toml"


def configs_root() -> Path:
    """The project's ``configs/`` folder (beside the package in a checkout)."""
    return Path(__file__).resolve().parents[2] / "configs"


def prepare_demo_inputs(out: Path, *, seed: int = 0, console: Console) -> dict[str, Path]:
    """The tiny model, the world, its MOT store and the four builds under ``out`` (reused if present)."""
    from omnipt_data.build import BuildOptions, build
    from omnipt_data.convert import convert
    from omnipt_data.model import build_tiny_qwen_vl
    from omnipt_data.readers import ReadOptions
    from omnipt_data.synth import WorldConfig, synthesize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"model": out / "model", "world": out / "world", "store": out / "stores" / "mot"}
    if not paths["model"].is_dir():
        build_tiny_qwen_vl(paths["model"], seed=seed)
    console.print(f"tiny model: {paths['model']}")
    if not paths["world"].is_dir():
        synthesize(paths["world"], WorldConfig(seed=seed, scenes=4, frames=48, views=2), formats=("mot",))
    if not paths["store"].is_dir():
        convert("mot", paths["world"] / "mot", paths["store"], options=ReadOptions(), show_progress=False)
    console.print(f"world and store: {paths['world']}, {paths['store']}")
    for stage, tasks in DEMO_TASKS.items():
        target = out / "builds" / stage
        if not target.is_dir():
            manifest = build(
                BuildOptions(
                    stage=stage,
                    stores=[paths["store"]],
                    out=target,
                    seed=seed,
                    tasks=tasks,
                    exports=("native", "trl"),
                    max_pixels=DEMO_MAX_PIXELS,
                    show_progress=False,
                )
            )
            console.print(f"build {stage}: {manifest['samples']} samples ({', '.join(tasks)}) -> {target}")
        paths[f"build:{stage}"] = target
    return paths


def run_training_demo(
    out: Path,
    *,
    seed: int = 0,
    console: Console | None = None,
    config: Path | None = None,
    show_progress: bool = True,
) -> ScheduleResult:
    """Prepare the inputs, run the schedule on them and print the probes before and after training."""
    console = console or Console()
    out = Path(out)
    config_path = Path(config) if config else configs_root() / DEMO_CONFIG
    if not config_path.is_file():
        raise OmniptError(f"{config_path}: the demo's schedule config is missing")
    started = time.perf_counter()
    prepare_demo_inputs(out, seed=seed, console=console)
    schedule = load_schedule(config_path, root=out)
    result = run_schedule(schedule, console=console, show_progress=show_progress)
    if result.before and result.after:
        console.print(
            f"[bold]format reward[/] {result.before.format_reward:.3f} -> {result.after.format_reward:.3f}, "
            f"[bold]exact format[/] {result.before.exact_format:.0%} -> {result.after.exact_format:.0%}, "
            f"[bold]box F1[/] {result.before.box_f1:.3f} -> {result.after.box_f1:.3f} "
            f"({sum(s.steps for s in result.stages)} steps, {time.perf_counter() - started:.0f} s)"
        )
        for example in result.after.examples[:1]:
            console.print(f"an answer after training:\n{example}", highlight=False)
    return result
