"""The main job on the embedded default: the synthetic world through every stage of the toolkit."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from omnipt_data.convert import convert
from omnipt_data.readers import ReadOptions
from omnipt_data.summary import store_summary
from omnipt_data.synth import WorldConfig, synthesize


def run_demo(out: Path, *, seed: int = 0, console: Console) -> dict[str, Path]:
    """synth -> convert (MOT, CrowdHuman) -> summary; each step says what it wrote and where."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    world_dir = out / "world"
    config = WorldConfig(seed=seed, scenes=4, frames=48, views=2)
    world = synthesize(world_dir, config, overwrite=True)
    console.print(
        f"[bold]1. synth[/]: {world.boxes.height} boxes, {len(world.scenes)} scenes x 2 views -> {world_dir}"
    )
    stores = {}
    for step, (fmt, source) in enumerate(
        (("mot", world_dir / "mot"), ("crowdhuman", world_dir / "crowdhuman")), 2
    ):
        target = out / "stores" / fmt
        result = convert(fmt, source, target, options=ReadOptions(), overwrite=True, show_progress=False)
        counts = result.store.manifest["counts"]
        console.print(
            f"[bold]{step}. convert {fmt}[/]: {counts['frames']} frames, {counts['boxes']} boxes, "
            f"{counts['tracks']} tracks -> {target}"
        )
        stores[fmt] = target
    for fmt, target in stores.items():
        summary = store_summary(target)
        for row in summary["by_dataset"]:
            console.print(
                f"   {fmt}: {row['dataset']}/{row['split']}: {row['sequences']} sequences, "
                f"{row['frames']} frames, {row['boxes']} boxes, {row['tracks']} tracks"
            )
    console.print(f"[green]done[/] in {time.perf_counter() - started:.1f} s; everything is under {out}")
    return stores
