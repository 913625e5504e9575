"""The rich consoles the commands print through: one rule for their width."""

from __future__ import annotations

import os

from rich.console import Console

# Piped or captured output has no terminal to fit: rich would fold tables and messages at 80 columns,
# which makes logs hard to read. Such output is this wide instead, and messages are never folded.
PIPED_WIDTH = 200


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr): a terminal's width on a terminal, else ``PIPED_WIDTH`` columns
    (or ``COLUMNS`` when set) with long message lines kept whole."""
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return Console(stderr=stderr, width=PIPED_WIDTH, soft_wrap=True)
