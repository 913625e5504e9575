"""``audit`` command: run the audit checks on a store or a build and write the report.

Registered by the main CLI as ``app.command("audit")(audit_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from omnipt_data.console import make_console
from omnipt_data.errors import OmniptError

FAIL_ON = ("never", "error", "warning")
SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "blue"}


def audit_command(
    target: Annotated[Path, typer.Argument(metavar="STORE|BUILD", help="A store folder or a build folder.")],
    report: Annotated[Path, typer.Option("--report", help="Folder for audit.json and index.html.")],
    source: Annotated[str, typer.Option(help="Store boxes to audit: gt, det or model:NAME.")] = "gt",
    images: Annotated[
        bool, typer.Option("--images/--no-images", help="Read the images (missing, unreadable, near-copies).")
    ] = True,
    context: Annotated[
        int | None, typer.Option(help="Model context in tokens for a build (default: the build's).")
    ] = None,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="Run only this check (repeatable).")
    ] = None,
    max_findings: Annotated[int, typer.Option(help="Findings kept per check in audit.json.")] = 1000,
    fiftyone: Annotated[
        bool,
        typer.Option(
            help="Tag the flagged samples in the FiftyOne dataset 'omnipt-data view' made of TARGET."
        ),
    ] = False,
    fiftyone_dataset: Annotated[
        str | None,
        typer.Option(help="Tag the flagged samples in this FiftyOne dataset (implies --fiftyone)."),
    ] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 on findings of this severity: never, error, warning.")
    ] = "never",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Audit a store or a build: bad boxes, broken tracks, leaks, near-copies, unparsable answers."""
    from omnipt_data.audit import run_audit

    if fail_on not in FAIL_ON:
        raise OmniptError(f"--fail-on {fail_on!r}: expected one of {', '.join(FAIL_ON)}")
    if max_findings < 0:
        raise OmniptError("--max-findings must be 0 or more")
    audit = run_audit(
        target,
        report,
        source=source,
        check_images=images,
        context_tokens=context,
        max_findings=max_findings,
        checks=check or None,
        show_progress=not quiet,
    )
    console = make_console()
    table = Table(title=f"audit of {audit.kind} {target}")
    for column in ("check", "severity", "findings"):
        table.add_column(column, justify="right" if column == "findings" else "left")
    for result in audit.results:
        style = SEVERITY_STYLE[result.severity] if result.count and result.severity != "info" else ""
        table.add_row(result.name, result.severity, str(result.count), style=style)
    console.print(table)
    console.print(f"report: {report / 'index.html'} and {report / 'audit.json'}")
    if fiftyone or fiftyone_dataset:
        from omnipt_data.audit.tagging import default_dataset_name, tag_findings_in_fiftyone

        name = fiftyone_dataset or default_dataset_name(target, audit.kind)
        tagged = tag_findings_in_fiftyone(name, audit.results)
        console.print(
            f"FiftyOne {name}: tagged "
            + (", ".join(f"{n} sample(s) audit:{c}" for c, n in tagged.items()) or "nothing")
        )
    totals = audit.by_severity()
    if (fail_on == "error" and totals["error"]) or (
        fail_on == "warning" and totals["error"] + totals["warning"]
    ):
        raise typer.Exit(1)
