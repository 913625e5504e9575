"""The training demo: a small offline Qwen-VL learns to detect and track on the synthetic world, on a CPU.

Steps, each reused when its output already exists (so an interrupted demo continues where it stopped):

1. ``world/`` and ``stores/train``, ``stores/val``: a synthetic plaza drawn for a small model (few
   people, drawn large for its 28-pixel visual tokens, at the size it sees), its training scenes and its
   held-out validation scene read back as two stores;
2. ``builds/<name>``: the four stages' builds of the training store (:data:`DEMO_BUILDS`) and the probe
   build of the validation store;
3. ``model/``: the small random Qwen2.5-VL (:func:`omnipt_data.model.build_tiny_qwen_vl`), its tokenizer
   trained on the builds' prompts and answers;
4. ``checkpoints/``: the four-stage schedule of ``configs/schedule.tiny.toml``, which answers the held-out
   validation frames (exact format, box F1) and tracks the validation sequence (HOTA) before training and
   after each stage, and writes the learning curve and a picture of a held-out frame.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from omnipt_data.errors import OmniptError
from omnipt_data.train.schedule import ScheduleResult, load_schedule, run_schedule

#: The world's frames are drawn at the size the model sees: 224x168 pixels, 8x6 visual tokens.
DEMO_WIDTH, DEMO_HEIGHT = 224, 168
DEMO_MAX_PIXELS = DEMO_WIDTH * DEMO_HEIGHT
#: Frames per tracker clip: the previous frame's boxes and ids are given, the next frame is answered.
DEMO_TRACK_LENGTH = 2
#: Tokens an answer may take (the longest answers, a tracked clip of five people, take about 100).
DEMO_MAX_NEW_TOKENS = 128
#: The tiny model's size (see :data:`omnipt_data.model.tiny.SIZES`).
DEMO_MODEL_SIZE = "small"
DEMO_CONFIG = "schedule.tiny.toml"
#: Rows of each build whose texts train the model's tokenizer.
_CORPUS_ROWS = 400


def demo_world(seed: int = 0) -> Any:
    """Few people (about two in view), drawn with twice the default lens, nobody standing still (standing
    people are ignore regions of MOT ground truth: drawn, but never in an answer), on a ground shaded from
    left to right (the vision tower's patches know only their relative positions). The last scene is the
    validation split."""
    from omnipt_data.synth import WorldConfig

    return WorldConfig(
        seed=seed,
        scenes=20,
        frames=32,
        views=1,
        people=2,
        width=DEMO_WIDTH,
        height=DEMO_HEIGHT,
        static_fraction=0.0,
        plaza=8.0,
        zoom=2.0,
        ground_ramp=1.0,
    )


#: The learnability benchmark's model size: within its CPU budget, more steps of a shallower model.
LEARNING_MODEL_SIZE = "shallow"


def learning_world(seed: int = 0) -> Any:
    """The learnability benchmark's world: the demo's, in 500 scenes of 4 frames, the last 40 held out,
    people drawn three times the default size and left out below 10 pixels of width in view. Many scenes,
    not many frames: on a few long scenes a small model learns each scene's look and where its people
    walk instead of reading where they are; a box a few pixels wide at the edge breaks its format. Forty
    held-out scenes (80 to 120 frames with people), not ten: on ten, box F1 differed by 0.3 between
    two seeds whose models were 0.1 apart on 120 frames of a third world."""
    from dataclasses import replace

    return replace(demo_world(seed), scenes=500, frames=4, val_scenes=40, zoom=3.0, min_visible_width=10)


@dataclass(frozen=True)
class DemoBuild:
    stage: str
    tasks: list[str]
    split: str = "train"
    params: dict[str, Any] = field(default_factory=dict)


#: The builds the schedule trains on (every frame; tracking clips of :data:`DEMO_TRACK_LENGTH` frames, one
#: per frame), and the probe: the validation scene's frames, never trained on.
_CLIPS = {"clip_track.length": DEMO_TRACK_LENGTH, "clip_track.stride": 1}
DEMO_BUILDS: dict[str, DemoBuild] = {
    "format-rl": DemoBuild("format-rl", ["ground_all"], params={"frame_stride": 1}),
    "mid": DemoBuild("mid", ["detect"], params={"frame_stride": 1}),
    "sft": DemoBuild("sft", ["clip_track"], params=_CLIPS),
    "track-rl": DemoBuild("track-rl", ["clip_track"], params=_CLIPS),
    "probe": DemoBuild("format-rl", ["ground_all"], split="val", params={"frame_stride": 1}),
}


def configs_root() -> Path:
    """The project's ``configs/`` folder (beside the package in a checkout)."""
    return Path(__file__).resolve().parents[2] / "configs"


def prepare_demo_inputs(
    out: Path, *, seed: int = 0, console: Console, world: Any = None, model_size: str = DEMO_MODEL_SIZE
) -> dict[str, Path]:
    """The world (``world``, a ``WorldConfig``, else :func:`demo_world`), its train and val stores, the
    builds and the model (of ``model_size``) under ``out`` (reused if present)."""
    from omnipt_data.build import BuildOptions, build
    from omnipt_data.convert import convert
    from omnipt_data.model import build_tiny_qwen_vl
    from omnipt_data.readers import ReadOptions
    from omnipt_data.synth import synthesize

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"world": out / "world", "model": out / "model"}
    if not paths["world"].is_dir():
        synthesize(paths["world"], world or demo_world(seed), formats=("mot",))
    for split in ("train", "val"):
        paths[f"store:{split}"] = store = out / "stores" / split
        if not store.is_dir():
            convert("mot", paths["world"] / "mot" / split, store, options=ReadOptions(), show_progress=False)
    console.print(f"world and stores: {paths['world']}, {out / 'stores'} (train, val)")
    for name, spec in DEMO_BUILDS.items():
        target = out / "builds" / name
        if not target.is_dir():
            manifest = build(
                BuildOptions(
                    stage=spec.stage,
                    stores=[paths[f"store:{spec.split}"]],
                    out=target,
                    seed=seed,
                    tasks=spec.tasks,
                    params=spec.params,
                    exports=("native", "trl"),
                    max_pixels=DEMO_MAX_PIXELS,
                    show_progress=False,
                )
            )
            console.print(
                f"build {name}: {manifest['samples']} samples ({', '.join(spec.tasks)}) -> {target}"
            )
        paths[f"build:{name}"] = target
    if not paths["model"].is_dir():
        corpus = list(build_texts([paths[f"build:{name}"] for name in DEMO_BUILDS]))
        build_tiny_qwen_vl(paths["model"], seed=seed, size=model_size, corpus=corpus)
    console.print(f"{model_size} model: {paths['model']}")
    return paths


def build_texts(builds: list[Path], rows: int = _CORPUS_ROWS) -> Iterator[str]:
    """The prompt and answer texts of the first ``rows`` samples of each build (tokenizer training text)."""
    from omnipt_data.train.data import completion_text, open_build, read_rows

    for path in builds:
        for index, row in enumerate(read_rows(open_build(path))):
            if index >= rows:
                break
            for message in row["prompt"]:
                yield from (part["text"] for part in message["content"] if part.get("text"))
            if row.get("completion"):
                yield from (part["text"] for part in row["completion"][0]["content"] if part.get("text"))
            elif row.get("solution"):
                yield completion_text(row["solution"])


def single_thread_on_cpu() -> None:
    """One torch thread on a CPU: the small model's matrices are too small to share out, and spinning
    threads on a busy machine cost several times the work itself."""
    import torch

    if not torch.cuda.is_available() and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)


def run_training_demo(
    out: Path,
    *,
    seed: int = 0,
    console: Console | None = None,
    config: Path | None = None,
    show_progress: bool = True,
    world: Any = None,
    model_size: str = DEMO_MODEL_SIZE,
) -> ScheduleResult:
    """Prepare the inputs (on ``world``, else :func:`demo_world`; a model of ``model_size``), run the
    schedule on them and print the probes before and after training."""
    console = console or Console()
    out = Path(out)
    config_path = Path(config) if config else configs_root() / DEMO_CONFIG
    if not config_path.is_file():
        raise OmniptError(f"{config_path}: the demo's schedule config is missing")
    started = time.perf_counter()
    prepare_demo_inputs(out, seed=seed, console=console, world=world, model_size=model_size)
    single_thread_on_cpu()
    schedule = load_schedule(config_path, root=out)
    result = run_schedule(schedule, console=console, show_progress=show_progress)
    if result.before and result.after:
        hota = ""
        if result.before_hota is not None and result.stages[-1].hota is not None:
            hota = f", [bold]HOTA[/] {result.before_hota:.3f} -> {result.stages[-1].hota:.3f}"
        console.print(
            f"[bold]exact format[/] {result.before.exact_format:.0%} -> {result.after.exact_format:.0%}, "
            f"[bold]box F1[/] {result.before.box_f1:.3f} -> {result.after.box_f1:.3f}{hota} "
            f"({sum(s.steps for s in result.stages)} steps, {time.perf_counter() - started:.0f} s); "
            f"learning curve and a held-out frame in {schedule.out}"
        )
        for example in result.after.examples[:1]:
            console.print(f"an answer after training:\n{example}", highlight=False)
    return result
