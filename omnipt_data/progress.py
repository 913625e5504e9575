"""Progress bars for long work (rich), silent when disabled or when output is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from omnipt_data.console import make_console

console = make_console(stderr=True)


@contextmanager
def progress_bar(
    description: str, total: float, *, enabled: bool = True
) -> Iterator[Callable[[float], None]]:
    """Yield ``advance(amount)``; draws a bar on stderr when enabled."""
    if not enabled:
        yield lambda amount: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda amount: progress.advance(task, amount)
