"""``track`` and ``prelabel`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omnipt_data.console import make_console

Model = Annotated[Path, typer.Option("--model", help="Local checkpoint folder (Qwen-VL family).")]
Input = Annotated[Path, typer.Option("--input", help="A store, or a folder of frames (or of frame folders).")]
Device = Annotated[str | None, typer.Option(help="cuda or cpu (default: cuda when available).")]
BatchSize = Annotated[int, typer.Option(help="Prompts per generate() call.")]
MaxImages = Annotated[int | None, typer.Option(help="Images per generate() call (size it to GPU memory).")]
Length = Annotated[int, typer.Option(help="Frames per clip (consecutive clips share one frame).")]
MaxPixels = Annotated[int | None, typer.Option(help="Processor max_pixels used to write box coordinates.")]
MaxNewTokens = Annotated[int, typer.Option(help="Generation budget per answer.")]

out = make_console()


def _runner(model: Path, device: str | None, batch_size: int, max_images: int | None, max_new_tokens: int):
    from omnipt_data.infer.run import ModelRunner

    return ModelRunner.load(
        model,
        device=device,
        batch_size=batch_size,
        max_images_per_batch=max_images,
        max_new_tokens=max_new_tokens,
    )


def track_command(
    model: Model,
    source: Input,
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder to create.")],
    expression: Annotated[str | None, typer.Option(help="Track only the people this sentence names.")] = None,
    views: Annotated[str | None, typer.Option(help="Comma-separated views of a cross-view store.")] = None,
    captions: Annotated[bool, typer.Option(help="Also describe every track (semantic MOT).")] = False,
    length: Length = 8,
    device: Device = None,
    batch_size: BatchSize = 8,
    max_images: MaxImages = None,
    max_pixels: MaxPixels = None,
    max_new_tokens: MaxNewTokens = 512,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Run the model as a tracker; writes MOTChallenge results (per expression / per view when asked)."""
    from omnipt_data.infer.run import run_track
    from omnipt_data.infer.tracker import PromptMaker

    runner = _runner(model, device, batch_size, max_images, max_new_tokens)
    summary = run_track(
        runner,
        source,
        out_dir,
        expression=expression,
        views=[v for v in (views or "").split(",") if v] or None,
        captions=captions,
        length=length,
        prompts=PromptMaker(max_pixels=max_pixels),
        overwrite=overwrite,
    )
    out.print(
        f"[green]tracked[/] {summary['sequences']} sequence(s): {summary['boxes']} boxes, "
        f"{summary['unparsed']} unparsable answer(s), {summary['seconds']} s -> {out_dir}"
    )


def prelabel_command(
    model: Model,
    source: Input,
    out_dir: Annotated[Path, typer.Option("--out", help="Predictions store to create.")],
    tasks: Annotated[
        str, typer.Option(help="tracks,captions,attributes,interactions,expressions")
    ] = "tracks,captions",
    name: Annotated[
        str | None, typer.Option(help="Model name in the provenance (default: folder name).")
    ] = None,
    length: Length = 8,
    device: Device = None,
    batch_size: BatchSize = 8,
    max_images: MaxImages = None,
    max_pixels: MaxPixels = None,
    max_new_tokens: MaxNewTokens = 512,
    engine: Annotated[
        str, typer.Option(help="local, or ray (Ray Data: scenes sharded over actors).")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster (default: RAY_ADDRESS or local).")
    ] = None,
    shard: Annotated[int, typer.Option(help="Scenes per Ray task.")] = 4,
    workers: Annotated[int, typer.Option(help="Ray actors, each holding one copy of the model.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Pre-label a store or frames with the model: a predictions store with provenance."""
    from omnipt_data.infer.run import prelabel
    from omnipt_data.infer.tracker import PromptMaker

    runner = _runner(model, device, batch_size, max_images, max_new_tokens)
    summary = prelabel(
        runner,
        source,
        out_dir,
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
        model_name=name,
        length=length,
        prompts=PromptMaker(max_pixels=max_pixels),
        overwrite=overwrite,
        engine=engine,
        ray_address=ray_address,
        shard=shard,
        workers=workers,
    )
    out.print(
        f"[green]pre-labelled[/] -> {out_dir}: {summary['boxes']} boxes, "
        f"{summary['semantics']} semantic rows, {summary['unparsed_answers']} unparsable answer(s); "
        f"model {summary['model']} "
        f"({(summary['checkpoint_hash'] or '')[:12]})"
    )
