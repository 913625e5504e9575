"""``omnipt-data view``: load a store, a build or predictions into FiftyOne; optionally open the App."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from omnipt_data.console import make_console
from omnipt_data.errors import OmniptError

out = make_console()


def view_command(
    source: Annotated[
        Path, typer.Argument(metavar="STORE|BUILD|PREDICTIONS", help="A store or a build folder.")
    ],
    name: Annotated[
        str | None,
        typer.Option(help="FiftyOne dataset to load into (default: omnipt-<folder>); reuse it to add to it."),
    ] = None,
    launch: Annotated[bool, typer.Option("--launch", help="Start the FiftyOne App and wait.")] = False,
    port: Annotated[int, typer.Option(help="Port of the App (with --launch).")] = 5151,
    address: Annotated[str, typer.Option(help="Address the App listens on (with --launch).")] = "127.0.0.1",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Load a store, a build or predictions into FiftyOne (incremental: loading again updates)."""
    from omnipt_data.view.fiftyone_loader import describe_source, load_path

    if not 0 < port < 65536:
        raise OmniptError(f"--port {port}: expected a TCP port between 1 and 65535")
    describe_source(source)  # a bad path fails here, before FiftyOne is imported
    result = load_path(source, name=name, show_progress=not quiet)
    table = Table(title=f"FiftyOne dataset {result.name}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("samples", f"{result.samples:,}")
    if result.groups is not None:
        table.add_row("groups (instants)", f"{result.groups:,}")
    for what, count in (
        ("sequences", result.sequences),
        ("persons", result.persons),
        ("build records", result.records),
    ):
        if count:
            table.add_row(what, f"{count:,}")
    for field, count in result.labels.items():
        table.add_row(f"{field} boxes", f"{count:,}")
    for key, counts in result.evaluations.items():
        table.add_row(f"{key} tp / fp / fn", f"{counts['tp']:,} / {counts['fp']:,} / {counts['fn']:,}")
    out.print(table)
    out.print(
        f"dataset [bold]{result.name}[/]: {result.added:,} added, {result.updated:,} updated"
        + (f", {result.skipped_without_image:,} skipped (no image)" if result.skipped_without_image else "")
        + (f"; saved views: {', '.join(result.saved_views)}" if result.saved_views else ""),
        highlight=False,
    )
    if launch:
        _launch(result.name, address, port)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _launch(name: str, address: str, port: int) -> None:
    """Serve the App on ``address:port`` until interrupted (Ctrl-C or SIGTERM), then stop its server."""
    from omnipt_data.view.fiftyone_loader import connect

    # A shell starts background jobs with SIGINT ignored; restore Ctrl-C, and let SIGTERM stop the App
    # cleanly too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    fo = connect()
    session = fo.launch_app(fo.load_dataset(name), address=address, port=port, remote=True, auto=False)
    out.print(f"FiftyOne App: http://{address}:{port}/datasets/{name} (Ctrl-C stops it)", highlight=False)
    try:
        session.wait(-1)
    except KeyboardInterrupt:
        out.print("stopping the FiftyOne App")
    finally:
        session.close()
