"""User-facing errors: bad input names its file and line; the CLI prints them without a traceback."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class OmniptError(Exception):
    """An error caused by the user's input or options, shown as one clear message."""


class InputError(OmniptError):
    """Malformed input at a known place: ``file:line: problem (expected ...)``."""

    def __init__(self, path: Path | str, line: int | None, problem: str, expected: str | None = None):
        self.path = Path(path)
        self.line = line
        self.problem = problem
        self.expected = expected
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        message = f"{where}: {problem}"
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)


@dataclass
class Problems:
    """Collects malformed rows: raises on the first one unless ``lenient``, then counts them all."""

    lenient: bool = False
    errors: list[InputError] = field(default_factory=list)
    shown: int = 20

    def report(self, error: InputError) -> None:
        if not self.lenient:
            raise error
        self.errors.append(error)

    @property
    def count(self) -> int:
        return len(self.errors)

    def summary(self) -> list[str]:
        """The first ``shown`` messages by file and line (stable when units are read in parallel)."""
        ordered = sorted(self.errors, key=lambda e: (str(e.path), e.line or 0, e.problem))
        return [str(e) for e in ordered[: self.shown]]
