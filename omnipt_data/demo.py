"""The main job on the embedded default: the synthetic world through the whole loop.

synth -> convert (every format) -> audit -> build (all four stages, every export) -> train the tiny model
through the four-stage schedule -> track the validation sequences -> eval -> pre-label a new clip ->
push the predictions for review (with --review: into the local Label Studio it starts, or into the one
configured). Each step prints what it did and where its output is.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from omnipt_data.convert import convert
from omnipt_data.readers import ReadOptions
from omnipt_data.synth import WRITERS, WorldConfig, synthesize

if TYPE_CHECKING:
    from omnipt_data.annotate.server import LocalServer

# The stores each stage draws from (a stage skips the tasks its stores cannot feed).
STAGE_STORES = {
    "format-rl": ["crowdhuman", "citypersons", "coco"],
    "mid": ["crowdhuman", "coco", "mot", "market1501", "cuhk-pedes", "synth-pedes", "refer-kitti"],
    "sft": ["mot", "refer-kitti", "crtrack", "bensmot"],
    "track-rl": ["mot", "refer-kitti", "crtrack", "bensmot"],
}
EXPORTS = ("native", "llamafactory", "swift", "trl")


class Steps:
    """Numbered, timed step lines."""

    def __init__(self, console: Console):
        self.console, self.number, self.started = console, 0, time.perf_counter()

    def say(self, title: str, detail: str) -> None:
        self.number += 1
        self.console.print(f"[bold]{self.number}. {title}[/]: {detail}", highlight=False)


def run_demo(
    out: Path, *, seed: int = 0, console: Console, train: bool = True, review: bool = False
) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(console)
    paths: dict[str, Path] = {}

    world_dir = out / "world"
    world = synthesize(world_dir, WorldConfig(seed=seed, scenes=4, frames=48, views=2), overwrite=True)
    steps.say(
        "synth",
        f"{world.boxes.height} boxes, {len(world.scenes)} scenes x 2 views, {len(WRITERS)} formats"
        f" -> {world_dir}",
    )

    stores: dict[str, Path] = {}
    for fmt in WRITERS:
        source = world_dir / fmt
        if not source.exists() or not any(source.iterdir()):
            continue
        target = out / "stores" / fmt
        counts = convert(
            fmt, source, target, options=ReadOptions(), overwrite=True, show_progress=False
        ).store.manifest["counts"]
        stores[fmt] = target
        console.print(
            f"   {fmt}: {counts['frames']} frames, {counts['boxes']} boxes, {counts['tracks']} tracks, "
            f"{counts['identities']} person images, {counts['expressions']} expressions, "
            f"{counts['semantics']} semantics",
            highlight=False,
        )
    steps.say("convert", f"{len(stores)} stores -> {out / 'stores'}")

    from omnipt_data.audit import run_audit

    report = out / "reports" / "audit-mot"
    audit = run_audit(stores["mot"], report, show_progress=False)
    flagged = {c.name: c.count for c in audit.results if c.severity in ("error", "warning") and c.count}
    steps.say(
        "audit",
        f"{len(audit.results)} checks on the MOT store, findings {flagged or 'none'}"
        f" -> {report / 'index.html'}",
    )

    from omnipt_data.build import BuildOptions, build

    for stage, names in STAGE_STORES.items():
        target = out / "builds" / stage
        manifest = build(
            BuildOptions(
                stage=stage,
                stores=[stores[n] for n in names if n in stores],
                out=target,
                seed=seed,
                exports=EXPORTS,
                overwrite=True,
                show_progress=False,
            )
        )
        built = {t: s["samples"] for t, s in manifest["tasks"].items() if s["samples"]}
        console.print(f"   {stage}: {manifest['samples']} samples {built}", highlight=False)
    steps.say("build", f"4 stages x {len(EXPORTS)} exports ({', '.join(EXPORTS)}) -> {out / 'builds'}")

    if not train:
        if review:
            steps.say("review push", "skipped: --no-train makes no predictions to review")
        return paths
    from omnipt_data.train.demo import (
        DEMO_MAX_NEW_TOKENS,
        DEMO_MAX_PIXELS,
        DEMO_TRACK_LENGTH,
        run_training_demo,
    )

    result = run_training_demo(out / "train", seed=seed, console=console, show_progress=False)
    checkpoint = result.stages[-1].out
    paths["checkpoint"] = checkpoint
    steps.say(
        "train", f"{len(result.stages)} stages, {sum(s.steps for s in result.stages)} steps -> {checkpoint}"
    )

    from omnipt_data.evaluate.store_gt import evaluate_store
    from omnipt_data.infer.run import ModelRunner, prelabel, run_track
    from omnipt_data.infer.tracker import PromptMaker

    runner = ModelRunner.load(checkpoint, batch_size=8, max_new_tokens=DEMO_MAX_NEW_TOKENS)
    prompts = PromptMaker(max_pixels=DEMO_MAX_PIXELS)
    tracked = out / "track"
    val_store = out / "train" / "stores" / "val"  # the held-out scene: never trained on
    summary = run_track(runner, val_store, tracked, length=DEMO_TRACK_LENGTH, prompts=prompts, overwrite=True)
    steps.say(
        "track",
        f"{summary['sequences']} validation sequences, {summary['boxes']} boxes, "
        f"{summary['unparsed']} unparsable answers -> {tracked}",
    )
    result_eval = evaluate_store(val_store, tracked)
    combined = result_eval.combined
    from omnipt_data.evaluate.report import write_json

    write_json(result_eval, out / "reports" / "eval.json")
    from omnipt_data.train.curve import CURVE_PNG, PROBE_FRAME_PNG

    schedule_out = checkpoint.parent
    pictures = [name for name in (PROBE_FRAME_PNG, CURVE_PNG) if (schedule_out / name).is_file()]
    for name in pictures:
        shutil.copyfile(schedule_out / name, out / "reports" / name)
    steps.say(
        "eval",
        f"HOTA {combined['HOTA']:.3f}, MOTA {combined['MOTA']:.3f}, IDF1 {combined['IDF1']:.3f} "
        f"(held-out scene, a small model after minutes on a CPU) -> {out / 'reports' / 'eval.json'}"
        + (f", {' and '.join(pictures)} beside it" if pictures else ""),
    )

    clip = out / "new-clip" / "world"
    synthesize(
        clip, WorldConfig(seed=seed + 1, scenes=1, frames=12, views=1), formats=("mot",), overwrite=True
    )
    video = out / "new-clip" / "frames" / "clip-01"  # unlabeled frames, as a camera would give them
    video.mkdir(parents=True, exist_ok=True)
    for image in sorted((clip / "mot").glob("*/*/img1/*.jpg")):
        if not (video / image.name).exists():
            os.link(image, video / image.name)
    predictions = out / "stores" / "predictions"
    labelled = prelabel(
        runner,
        video.parent,
        predictions,
        tasks=("tracks", "captions"),
        length=6,
        prompts=prompts,
        overwrite=True,
        model_name="omnipt-tiny-demo",
    )
    steps.say(
        "prelabel",
        f"{labelled['boxes']} boxes, {labelled['semantics']} semantic rows, "
        f"{labelled['unparsed_answers']} unparsable answers -> {predictions}",
    )

    review_step(out, predictions, steps, start_server=review)
    console.print(f"[green]done[/] in {time.perf_counter() - steps.started:.0f} s; everything is under {out}")
    return paths


# The demo's review projects: the pre-labelled frames one by one, and the clip as a video with tracks.
REVIEW_PROJECTS = {"boxes": "omnipt-data demo: frames", "tracks": "omnipt-data demo: tracks"}


def review_step(out: Path, predictions: Path, steps: Steps, *, start_server: bool) -> None:
    """Push the predictions for review: to the Label Studio that ``LABEL_STUDIO_URL`` and
    ``LABEL_STUDIO_API_KEY`` name, else (``--review``) to the project's local one, started here and left
    running, with its address and login printed."""
    from omnipt_data.annotate.labelstudio import API_KEY_ENV, URL_ENV, connect
    from omnipt_data.annotate.push import push

    configured = bool(os.environ.get(URL_ENV) and os.environ.get(API_KEY_ENV))
    if not configured and not start_server:
        steps.say(
            "review push",
            "skipped: run the demo with --review to start a local Label Studio and review the "
            f"predictions there (or set {URL_ENV} and {API_KEY_ENV} to use yours)",
        )
        return
    server: LocalServer | None = None
    if configured:
        conn, document_root = connect(), None
    else:
        from omnipt_data.annotate.server import LOGIN_FILE, start_local_server

        steps.console.print("   starting the local Label Studio (the first time installs it: minutes)")
        server = start_local_server(out / "labelstudio", out)
        conn, document_root = connect(server.url, server.api_key), server.document_root
    pushed = []
    for kind, title in REVIEW_PROJECTS.items():
        report = push(conn, predictions, title, kind=kind, document_root=document_root, show_progress=False)
        pushed.append(
            f"   {title!r} ({kind}): {report.created} new, {report.unchanged} unchanged, "
            f"{report.reviewed} reviewed tasks -> {conn.url}/projects/{report.project_id}/data"
        )
    steps.say("review push", f"{len(pushed)} projects in Label Studio at {conn.url}")
    for line in pushed:
        steps.console.print(line, highlight=False)
    if server is not None:
        login = server.data_dir / LOGIN_FILE
        for line in (
            f"open {server.url} and log in as {server.email} with password {server.password} "
            f"(kept in {login}, with the API key)",
            f"then: {URL_ENV}={server.url} {API_KEY_ENV}=<api_key in {login.name}> omnipt-data review pull "
            f"--project {REVIEW_PROJECTS['boxes']!r} --out {out / 'stores' / 'reviewed'}",
            f"the server keeps running; stop it with {server.stop_command()}",
        ):
            steps.console.print(f"   {line}", highlight=False)
