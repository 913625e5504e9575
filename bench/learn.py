"""Learnability: does the data teach a small model to detect and track? A check on every build change.

The training demo's inputs (:mod:`omnipt_data.train.demo`) on the benchmark's own world (many short
scenes, ten held out; :func:`~omnipt_data.train.demo.learning_world`): its train and validation stores and
the four stages' builds go through the four-stage schedule of
``configs/schedule.learn.toml`` on a small offline Qwen2.5-VL, on the CPU. Targets, checked after the
schedule (exit status 1 when one is missed):

- exact answer format >= 95 % on the held-out probe after every stage (later stages must not wash out
  what earlier stages taught);
- box F1 at IoU 0.5 >= 0.5 on the held-out validation frames;
- HOTA >= 0.3 tracking the validation sequences.

Beside the targets, the HOTA of the validation truth's own boxes cut at the image border says what a
tracker answering in image pixels can reach (the ground truth keeps the whole box of a person the border
cuts); each probe's image reliance (loss per answer token with another frame's image minus
with its own; about 0 when the model ignores its images) shows whether the answers come from the pictures.

``python bench/learn.py --out runs/bench-learn`` (or ``scripts/bench-learn``) writes there the inputs,
the checkpoints with the learning curve (``checkpoints/curve.json``, ``curve.png``), and ``report.json``
with the figures, the wall and CPU time and each stage's seconds per step, beside ``probe-frame.png`` and
``curve.png`` (a held-out frame with its true boxes and the answers before and after training, and the
curve). Re-running reuses what is there (delete the folder for a fresh run).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "schedule.learn.toml"
TARGETS = {"exact_format": 0.95, "box_f1": 0.5, "hota": 0.3}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user and system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def check(result: Any, reachable_hota: float | None) -> tuple[dict[str, Any], list[str]]:
    """The figures reached and the targets missed."""
    stages = result.stages
    formats = {s.name: s.probe.exact_format for s in stages if s.probe is not None}
    reliance = {s.name: s.probe.image_reliance for s in stages if s.probe is not None}
    last = stages[-1]
    figures = {
        "exact_format_per_stage": formats,
        "image_reliance_per_stage": reliance,
        "box_f1": last.probe.box_f1 if last.probe else None,
        "hota": last.hota,
        "hota_of_truth_in_image": reachable_hota,
        "before": {
            "exact_format": result.before.exact_format if result.before else None,
            "box_f1": result.before.box_f1 if result.before else None,
            "hota": result.before_hota,
            "image_reliance": result.before.image_reliance if result.before else None,
        },
    }
    missed = [
        f"exact format {value:.0%} after {name} (target {TARGETS['exact_format']:.0%})"
        for name, value in formats.items()
        if value < TARGETS["exact_format"]
    ]
    if len(formats) < len(stages):
        missed.append("not every stage was probed")
    for key in ("box_f1", "hota"):
        value = figures[key]
        if value is None or value < TARGETS[key]:
            shown = "none" if value is None else f"{value:.3f}"
            missed.append(f"{key} {shown} (target {TARGETS[key]})")
    return figures, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-learn")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from omnipt_data.evaluate.store_gt import evaluate_truth_in_image
    from omnipt_data.store import write_json
    from omnipt_data.train.curve import CURVE_PNG, PROBE_FRAME_PNG
    from omnipt_data.train.demo import LEARNING_MODEL_SIZE, learning_world, run_training_demo
    from omnipt_data.train.schedule import load_schedule

    console = Console()
    started, cpu = time.perf_counter(), cpu_seconds()
    result = run_training_demo(
        args.out,
        seed=args.seed,
        console=console,
        config=args.config,
        show_progress=False,
        world=learning_world(args.seed),
        model_size=LEARNING_MODEL_SIZE,
    )
    schedule = load_schedule(args.config, root=args.out)
    track = schedule.probe.track if schedule.probe else None
    reachable = float(evaluate_truth_in_image(track).combined["HOTA"]) if track else None
    figures, missed = check(result, reachable)
    schedule_out = schedule.out
    for name in (PROBE_FRAME_PNG, CURVE_PNG):
        if (schedule_out / name).is_file():
            shutil.copyfile(schedule_out / name, args.out / name)
    report = {
        "config": str(args.config),
        "targets": TARGETS,
        "figures": figures,
        "missed": missed,
        "steps": {s.name: s.steps for s in result.stages},
        "statuses": {s.name: s.status for s in result.stages},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(cpu_seconds() - cpu, 1),
        # A slower machine and a heavier benchmark both raise the CPU time; the step time tells them apart.
        "seconds_per_step": {
            s.name: round(s.last_log["train_runtime"] / s.steps, 3)
            for s in result.stages
            if s.steps and s.last_log and "train_runtime" in s.last_log
        },
    }
    write_json(args.out / "report.json", report)
    formats = ", ".join(f"{k} {v:.0%}" for k, v in figures["exact_format_per_stage"].items())
    reliance = ", ".join(
        f"{k} {v:+.3f}" for k, v in figures["image_reliance_per_stage"].items() if v is not None
    )
    step_times = ", ".join(f"{k} {v:.2f}" for k, v in report["seconds_per_step"].items()) + " s a step"
    console.print(
        f"learnability: exact format {formats}; box F1 {figures['box_f1'] or 0:.3f}, "
        f"HOTA {figures['hota'] or 0:.3f} (the truth cut at the image border: {reachable or 0:.3f}); "
        f"image reliance (nats) {reliance}; {report['wall_seconds']:.0f} s, "
        f"{report['cpu_seconds'] / 60:.1f} CPU minutes ({step_times}) -> {args.out / 'report.json'}"
    )
    for line in missed:
        console.print(f"[red]missed[/]: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
