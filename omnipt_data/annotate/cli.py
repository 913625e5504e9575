"""``omnipt-data review push|pull|stats``: the Label Studio review loop.

The server's address and API key come from ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` (``--url``
overrides the address; the key is read only from the environment so it never lands in shell history).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from omnipt_data.console import make_console

review_app = typer.Typer(
    name="review",
    help="Review a model's predictions in Label Studio and bring the reviewed labels back as a store.",
    no_args_is_help=True,
)
out = make_console()
err = make_console(stderr=True)

Project = Annotated[str, typer.Option("--project", help="Label Studio project title (3+ characters).")]
Url = Annotated[
    str | None,
    typer.Option("--url", help="Label Studio address (default: $LABEL_STUDIO_URL).", show_default=False),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _print_json(payload: object) -> None:
    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n")


@review_app.command("push")
def push_command(
    pred_store: Annotated[
        Path, typer.Argument(help="A predictions store (boxes/semantics from model:NAME).")
    ],
    project: Project,
    kind: Annotated[
        str | None,
        typer.Option(
            help="boxes (per image), tracks (per sequence, as video), expressions (per sentence and view) or "
            "interactions (per sequence). Default: the project's kind, or boxes for a new project."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Which model:NAME to push when the store has several.")
    ] = None,
    url: Url = None,
    document_root: Annotated[
        Path | None,
        typer.Option(
            help="The server's local-files document root (default: $LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)."
        ),
    ] = None,
    media_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the review videos go, below the document root (default: ROOT/omnipt-review-media)."
        ),
    ] = None,
    label_config: Annotated[
        Path | None, typer.Option(help="Label config for a new project (default: annotate/<kind>.xml).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Tasks per import request.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """Send a predictions store to a project as tasks with predictions (re-runs add only what is missing)."""
    from omnipt_data.annotate.labelstudio import connect
    from omnipt_data.annotate.push import push

    report = push(
        connect(url),
        pred_store,
        project,
        kind=kind,
        model=model,
        document_root=document_root,
        media_dir=media_dir,
        label_config=label_config,
        batch_size=batch_size,
        show_progress=not quiet,
    )
    if as_json:
        _print_json(report.to_json())
        return
    out.print(
        f"[green]pushed[/] {report.model} to project {report.project!r} ({report.kind}): "
        f"{report.created} new, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.reviewed} reviewed left alone; "
        f"{report.project_tasks} task(s) in the project"
    )
    if report.reviewed_with_new_predictions:
        shown = ", ".join(report.reviewed_with_new_predictions[:5])
        err.print(
            f"[yellow]{len(report.reviewed_with_new_predictions)} reviewed task(s) kept their review "
            f"although the predictions changed[/] (e.g. {shown})"
        )
    for note, n in report.notes.items():
        err.print(f"[yellow]note:[/] {n} {note}")


@review_app.command("pull")
def pull_command(
    project: Project,
    out_dir: Annotated[Path, typer.Option("--out", help="Store folder to write (a full snapshot).")],
    url: Url = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUT even if it is not a pull of this project.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Write the project's reviewed labels into a store (source review:EMAIL), with the review decisions."""
    from omnipt_data.annotate.labelstudio import connect
    from omnipt_data.annotate.pull import pull

    result = pull(connect(url), project, out_dir, overwrite=overwrite, show_progress=not quiet)
    counts = result.store.manifest["counts"]
    tasks = result.tasks
    out.print(
        f"[green]wrote[/] {out_dir}: {counts['boxes']} boxes, {counts['semantics']} semantics rows, "
        f"{counts['expressions']} expressions from {tasks['reviewed']} reviewed task(s) "
        f"({tasks['pending']} pending, {tasks['skipped']} skipped)"
    )


@review_app.command("stats")
def stats_command(
    project: Project,
    url: Url = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    quiet: Quiet = False,
) -> None:
    """How much of the model's output reviewers accepted, edited, rejected or added, per kind and field."""
    from omnipt_data.annotate.labelstudio import connect
    from omnipt_data.annotate.stats import review_stats

    stats = review_stats(connect(url), project, show_progress=not quiet and not as_json)
    if as_json:
        _print_json(stats)
        return
    tasks = stats["tasks"]
    table = Table(
        title=f"review of {project!r}: {tasks['reviewed']}/{tasks['total']} task(s) reviewed, "
        f"{tasks['skipped']} skipped"
    )
    for column in ("kind", "field", "accepted", "edited", "rejected", "added", "accepted %"):
        table.add_column(column, justify="left" if column in ("kind", "field") else "right")
    for kind, fields in stats["kinds"].items():
        for field_name, c in fields.items():
            rate = "-" if c["accept_rate"] is None else f"{100 * c['accept_rate']:.1f}"
            table.add_row(
                kind,
                field_name,
                str(c["accepted"]),
                str(c["edited"]),
                str(c["rejected"]),
                str(c["added"]),
                rate,
            )
    out.print(table)
    if stats["reviewers"]:
        out.print("reviewers: " + ", ".join(stats["reviewers"]))
