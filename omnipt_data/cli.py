"""The ``omnipt-data`` command line."""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path
from typing import Annotated

import click
import orjson
import typer
from rich.markup import escape
from typer.core import TyperCommand

from omnipt_data.console import make_console
from omnipt_data.errors import OmniptError

app = typer.Typer(
    name="omnipt-data",
    help="Build, audit and close the loop on training data for OmniPT-style pedestrian models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = make_console()
err = make_console(stderr=True)

Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
QuietConvert = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar and no 'wrote' line (problems still shown).")
]


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to create.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 0,
    scenes: Annotated[int, typer.Option(help="Number of scenes (sequences per view).")] = 4,
    frames: Annotated[int, typer.Option(help="Frames per sequence.")] = 48,
    views: Annotated[int, typer.Option(help="Synchronised camera views per scene.")] = 1,
    people: Annotated[int, typer.Option(help="Average number of people on the plaza.")] = 8,
    width: Annotated[int, typer.Option(help="Image width in pixels.")] = 640,
    height: Annotated[int, typer.Option(help="Image height in pixels.")] = 360,
    fps: Annotated[float, typer.Option(help="Frame rate.")] = 10.0,
    val_scenes: Annotated[
        int, typer.Option(min=1, help="The last this many scenes are the validation split.")
    ] = 1,
    formats: Annotated[
        str, typer.Option(help="Comma-separated native formats to write (default: all).")
    ] = "",
    render: Annotated[
        bool, typer.Option(help="Render JPEG frames (--no-render writes annotations only).")
    ] = True,
    defects: Annotated[
        str, typer.Option(help="Plant known defects for audits: KIND,... or 'all' (see world.json).")
    ] = "",
    overwrite: Overwrite = False,
) -> None:
    """Generate the synthetic pedestrian world and write it in native dataset formats."""
    from omnipt_data.synth import WorldConfig, synthesize
    from omnipt_data.synth.defects import parse_defects

    config = WorldConfig(
        seed=seed,
        scenes=scenes,
        frames=frames,
        views=views,
        people=people,
        width=width,
        height=height,
        fps=fps,
        val_scenes=val_scenes,
    )
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip()) or None
    world = synthesize(
        out_dir,
        config,
        formats=chosen,
        render=render,
        overwrite=overwrite,
        defects=parse_defects(defects, render=render),
    )
    tracks = world.boxes.select("scene", "track_id").n_unique()
    out.print(
        f"[green]wrote[/] {out_dir}: {len(world.scenes)} scenes x {views} view(s) x {frames} frames, "
        f"{world.boxes.height} boxes, {tracks} people"
    )


class ConvertCommand(TyperCommand):
    """``convert``, whose help ends with a panel of the formats and how ``auto`` picks one (built when help
    is asked for: the readers are imported only then)."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        from rich.panel import Panel
        from rich.table import Table
        from typer import rich_utils

        from omnipt_data.readers import READERS, SNIFF_ORDER

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", no_wrap=True)
        grid.add_column()
        for name in sorted(READERS):
            grid.add_row(name, READERS[name].description)
        grid.add_row(
            "auto",
            "each reader looks at the path's folder and file names (and, for JSON files, the keys of "
            "their records), in this order, and the first that recognises it reads it: "
            + ", ".join(SNIFF_ORDER),
        )
        rich_utils._get_rich_console().print(
            Panel(
                grid,
                title="Formats",
                title_align=rich_utils.ALIGN_OPTIONS_PANEL,
                border_style=rich_utils.STYLE_OPTIONS_PANEL_BORDER,
            )
        )


@app.command(cls=ConvertCommand)
def convert(
    format_name: Annotated[
        str, typer.Argument(metavar="FORMAT", help="A format of the list below, or 'auto' to detect it.")
    ],
    source: Annotated[Path, typer.Argument(help="The native dataset (folder or file).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Store folder to create.")],
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: inferred).")] = None,
    split: Annotated[str | None, typer.Option(help="Split name (default: inferred).")] = None,
    lenient: Annotated[bool, typer.Option(help="Skip and count malformed rows instead of stopping.")] = False,
    name: Annotated[
        str | None, typer.Option(help="Prediction name for result files (source model:NAME).")
    ] = None,
    overwrite: Overwrite = False,
    quiet: QuietConvert = False,
) -> None:
    """Convert a native dataset into a canonical store."""
    from omnipt_data.convert import convert as run_convert
    from omnipt_data.readers import ReadOptions, detect_format

    if format_name == "auto":
        format_name = detect_format(source)
        err.print(f"detected format: [bold]{format_name}[/]")
    options = ReadOptions(dataset=dataset, split=split, lenient=lenient, prediction_name=name)
    result = run_convert(
        format_name, source, out_dir, options=options, overwrite=overwrite, show_progress=not quiet
    )
    counts = result.store.manifest["counts"]
    shown = ("sequences", "frames", "boxes", "tracks", "identities", "persons", "expressions", "semantics")
    if not quiet:
        out.print(f"[green]wrote[/] {out_dir}: " + ", ".join(f"{counts[k]} {k}" for k in shown if counts[k]))
    if result.skipped_rows:
        err.print(f"[yellow]skipped {result.skipped_rows} malformed row(s)[/]; see manifest.json 'problems'")
        for line in result.store.manifest["problems"]["examples"][:5]:
            err.print(f"  {line}")


@app.command()
def merge(
    stores: Annotated[list[Path], typer.Argument(help="Two or more stores.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Store folder to create.")],
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Union stores into one, with unique ids and a combined manifest."""
    from omnipt_data.merge import merge_stores

    merged = merge_stores(stores, out_dir, overwrite=overwrite, show_progress=not quiet)
    counts = merged.manifest["counts"]
    skipped = merged.manifest["source"]["skipped_duplicates"]
    out.print(
        f"[green]wrote[/] {out_dir}: {counts['datasets']} datasets, {counts['frames']} frames, "
        f"{counts['boxes']} boxes, {counts['identities']} identity images"
        + (f"; skipped {len(skipped)} duplicate store(s)" if skipped else "")
    )


@app.command()
def info(
    store: Annotated[Path, typer.Argument(help="A store folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Show a store's counts, datasets and validation notes."""
    from rich.table import Table

    from omnipt_data.schema import TABLES
    from omnipt_data.summary import store_summary

    summary = store_summary(store)
    if as_json:
        sys.stdout.write(
            orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
        )
        return
    table = Table(title=f"store {store}")
    for column in ("table", "rows"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    for key in (*TABLES, "tracks", "persons", "datasets"):
        table.add_row(key, f"{summary[key]:,}")
    out.print(table)
    parts = Table(title="by dataset and split")
    for column in ("dataset", "split", "sequences", "frames", "boxes", "tracks"):
        parts.add_column(column)
    for row in summary["by_dataset"]:
        parts.add_row(*(str(row[c]) for c in ("dataset", "split", "sequences", "frames", "boxes", "tracks")))
    out.print(parts)
    out.print(f"size on disk: {summary['bytes'] / 1e6:.2f} MB, content hash {summary['content_hash'][:16]}")
    for check, finding in summary["validation"].items():
        examples = ", ".join(finding["examples"])
        out.print(f"[yellow]{finding['severity']}[/]: {check}: {finding['count']} (e.g. {examples})")


@app.command()
def validate(store: Annotated[Path, typer.Argument(help="A store folder.")]) -> None:
    """Check a store's invariants; exits 1 when it has errors."""
    from omnipt_data.store import Store
    from omnipt_data.store import validate as run_validate

    report = run_validate(Store.open(store).path)
    if not report.findings:
        out.print("[green]valid[/]: no errors, no warnings")
        return
    out.print(report.describe())
    if report.errors:
        raise typer.Exit(1)


def _parse_params(pairs: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise OmniptError(f"--param {pair!r}: expected KEY=VALUE or TASK.KEY=VALUE")
        try:
            params[key] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[key] = raw
    return params


@app.command()
def build(
    stage: Annotated[str, typer.Option(help="format-rl, mid, sft or track-rl.")],
    stores: Annotated[list[Path], typer.Option("--store", help="A store to draw from (repeatable).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Build folder to create.")],
    seed: Annotated[int, typer.Option(help="Seed of every random choice (same seed, same bytes).")] = 0,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks of the stage (default: all).")] = "",
    box_format: Annotated[
        str, typer.Option(help="omnipt (<bbox>x,y,w,h</bbox>), qwen2.5 or qwen3.")
    ] = "omnipt",
    processor: Annotated[
        str, typer.Option(help="Resize rule of the model: qwen2.5-vl or qwen3-vl.")
    ] = "qwen2.5-vl",
    min_pixels: Annotated[
        int | None, typer.Option(help="Processor min_pixels (default: the preset's).")
    ] = None,
    max_pixels: Annotated[
        int | None, typer.Option(help="Processor max_pixels (default: the preset's).")
    ] = None,
    export: Annotated[
        str, typer.Option(help="Comma-separated: native, llamafactory, swift, trl.")
    ] = "native",
    shard_size: Annotated[int, typer.Option(help="Samples per JSONL shard.")] = 5000,
    sample_rate: Annotated[float, typer.Option(help="Keep each sample with this probability.")] = 1.0,
    max_per_task: Annotated[int | None, typer.Option(help="At most this many samples per task.")] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Sampler option KEY=VALUE or TASK.KEY=VALUE.")
    ] = None,
    context_tokens: Annotated[int, typer.Option(help="Model context, for the token statistics.")] = 32768,
    tokenizer: Annotated[Path | None, typer.Option(help="Local tokenizer for exact token counts.")] = None,
    materialize: Annotated[
        bool, typer.Option(help="Write the resized frames/crops under OUT/images and reference those.")
    ] = False,
    engine: Annotated[str, typer.Option(help="local, or ray (Ray Data, sharded by scene).")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: RAY_ADDRESS, else a local instance).")
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Build one OmniPT stage's training data from stores, for the chosen trainers."""
    from rich.table import Table

    from omnipt_data.build import BuildOptions
    from omnipt_data.build import build as run_build

    options = BuildOptions(
        stage=stage,
        stores=stores,
        out=out_dir,
        seed=seed,
        tasks=[t.strip() for t in tasks.split(",") if t.strip()] or None,
        box_format=box_format,
        processor=processor,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        exports=tuple(e.strip() for e in export.split(",") if e.strip()),
        shard_size=shard_size,
        sample_rate=sample_rate,
        max_per_task=max_per_task,
        params=_parse_params(param or []),
        context_tokens=context_tokens,
        tokenizer=tokenizer,
        overwrite=overwrite,
        show_progress=not quiet,
        engine=engine,
        ray_address=ray_address,
        materialize=materialize,
    )
    manifest = run_build(options)
    table = Table(title=f"{stage} build -> {out_dir}")
    for column in ("task", "samples", "datasets", "tokens p50", "tokens max"):
        table.add_column(column)
    for task, stats in manifest["tasks"].items():
        empty = stats.get("empty_share", {})
        datasets = ", ".join(
            f"{d}:{n}" + (f" ({empty[d]:.0%} empty)" if empty.get(d) else "")
            for d, n in stats["by_dataset"].items()
        )
        table.add_row(
            task, str(stats["samples"]), datasets, str(stats["tokens"]["p50"]), str(stats["tokens"]["max"])
        )
    out.print(table)
    for task, stats in manifest["tasks"].items():
        for note in stats.get("skipped", []):
            out.print(f"{task}: skipped {note['dataset']} ({note['sequences']} sequences): {note['reason']}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo writes.")] = Path(
        "runs/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic world.")] = 0,
    train: Annotated[
        bool, typer.Option(help="Train, track, evaluate and pre-label (--no-train: the data steps only).")
    ] = True,
    review: Annotated[
        bool,
        typer.Option(
            "--review",
            help="Start the project's local Label Studio (scripts/labelstudio), push the predictions to it "
            "and print the address and login to open.",
        ),
    ] = False,
) -> None:
    """Run the main job on the embedded default: the synthetic world, end to end."""
    from omnipt_data.demo import run_demo

    run_demo(out_dir, seed=seed, console=out, train=train, review=review)


OPTIONAL_COMMANDS = ("track", "prelabel", "eval", "view", "audit", "train", "review")


def _register_optional_commands(only: str | None = None) -> None:
    """Register the commands whose packages are heavy to import; ``only``: just that one of them."""

    def wanted(*names: str) -> bool:
        return only is None or only in names

    if wanted("track", "prelabel"):
        from omnipt_data.infer.cli import prelabel_command, track_command

        app.command("track", help="Run the model as a tracker over sequences; MOTChallenge results.")(
            track_command
        )
        app.command("prelabel", help="Pre-label a store or frames with the model into a predictions store.")(
            prelabel_command
        )
    if wanted("eval"):
        from omnipt_data.evaluate.cli import eval_command

        app.command(
            "eval", help="Score tracker results: HOTA, CLEAR, Identity (TrackEval), CRTrack, captions."
        )(eval_command)
    if wanted("view"):
        from omnipt_data.view.cli import view_command

        app.command(
            "view", help="Load a store, a build or predictions into FiftyOne; --launch opens the App."
        )(view_command)
    if wanted("audit"):
        from omnipt_data.audit.cli import audit_command

        app.command(
            "audit", help="Audit a store or a build: checks, audit.json and an HTML report with plots."
        )(audit_command)
    if wanted("train"):
        from omnipt_data.train.cli import train_app

        app.add_typer(train_app, name="train")
    if wanted("review"):
        from omnipt_data.annotate.cli import review_app

        app.add_typer(review_app, name="review")


def _command_run(argv: list[str]) -> str | None:
    """The command this process runs as the command line (``omnipt-data NAME ...``), if it names one.

    Only that command's package is then imported: the others' (TrackEval, SciPy, FiftyOne's loaders)
    would add about a second to every start. Tests, ``--help`` and the like get every command.
    """
    core = {(info.name or info.callback.__name__).replace("_", "-") for info in app.registered_commands}
    from_cli = len(argv) > 1 and Path(argv[0]).name in ("omnipt-data", "cli.py")
    return argv[1] if from_cli and argv[1] in (*core, *OPTIONAL_COMMANDS) else None


_register_optional_commands(only=_command_run(sys.argv))


# Commands that have closed every store and written all their output when they return: a process that
# runs one of them skips the interpreter's teardown of polars, pyarrow and NumPy (about 0.15 s).
QUICK_EXIT_COMMANDS = ("convert", "merge", "info", "validate")


def _is_the_process() -> bool:
    """Whether the command line owns this process: started as ``omnipt-data`` or ``python -m
    omnipt_data.cli``, not called by a test or another program."""
    entry = sys.modules.get("__main__")
    spec = getattr(entry, "__spec__", None)
    return Path(getattr(entry, "__file__", None) or "").name == "omnipt-data" or (
        spec is not None and spec.name == "omnipt_data.cli"
    )


def _exit_now() -> None:
    """End the process at once, after the exit handlers and with stdout and stderr flushed."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    command = _command_run(sys.argv)
    try:
        app()
    except OmniptError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SystemExit as exc:
        if exc.code in (0, None) and command in QUICK_EXIT_COMMANDS and _is_the_process():
            _exit_now()
        raise


if __name__ == "__main__":
    main()
