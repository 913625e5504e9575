"""Run the audit checks on a store or a build: :data:`CHECKS` in report order, :func:`run_audit`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from omnipt_data.audit import boxes, builds, expressions, images, splits, tracks
from omnipt_data.audit.base import BUILD, SEVERITIES, STORE, Check, CheckResult, StoreContext
from omnipt_data.audit.builds import BuildContext, is_build
from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.store import MANIFEST, Store

__all__ = ["CHECKS", "SEVERITIES", "AuditResult", "Check", "CheckResult", "run_audit"]

CHECKS: list[Check] = [
    *boxes.CHECKS,
    *tracks.CHECKS,
    *images.CHECKS,
    *splits.CHECKS,
    *expressions.CHECKS,
    *builds.CHECKS,
]
DEFAULT_MAX_FINDINGS = 1000


@dataclass
class AuditResult:
    """What an audit found, and where its report is."""

    target: Path
    kind: str  # STORE or BUILD
    results: list[CheckResult]
    report_dir: Path

    def counts(self) -> dict[str, int]:
        return {r.name: r.count for r in self.results}

    def by_severity(self) -> dict[str, int]:
        """Findings per severity."""
        totals = dict.fromkeys(SEVERITIES, 0)
        for r in self.results:
            totals[r.severity] += r.count
        return totals

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)


def target_kind(path: Path) -> str:
    """STORE or BUILD, or a clear error for anything else."""
    if not path.exists():
        raise OmniptError(f"{path}: no such store or build")
    if is_build(path):
        return BUILD
    if (path / MANIFEST).is_file() and (path / "boxes.parquet").is_file():
        return STORE
    raise OmniptError(
        f"{path} is neither a store (manifest.json and tables) nor a build (manifest.json of a stage)"
    )


def _to_result(check: Check, found: object, max_findings: int) -> CheckResult:
    import polars as pl

    assert isinstance(found, pl.DataFrame)
    shown = found.head(max_findings)
    return CheckResult(
        name=check.name,
        severity=check.severity,
        description=check.description,
        count=found.height,
        findings=orjson.loads(shown.write_json()),
        truncated=found.height > max_findings,
    )


def run_audit(
    target: Path | str,
    report_dir: Path | str,
    *,
    source: str = "gt",
    check_images: bool = True,
    context_tokens: int | None = None,
    max_findings: int = DEFAULT_MAX_FINDINGS,
    checks: list[str] | None = None,
    show_progress: bool = True,
) -> AuditResult:
    """Audit a store or a build and write ``report_dir/audit.json`` and ``report_dir/index.html``.

    ``source`` picks the store's boxes to audit (``gt``, ``det``, ``model:NAME``...), ``check_images``
    turns the image checks (file reads) on or off, ``context_tokens`` overrides a build's context,
    ``checks`` limits the run to the named checks.
    """
    from omnipt_data.audit.report import write_report

    target = Path(target)
    kind = target_kind(target)
    if kind == STORE:
        context: object = StoreContext(Store.open(target), source=source, show_progress=show_progress)
    else:
        context = BuildContext(target, context_tokens=context_tokens, show_progress=show_progress)
    names = {c.name for c in CHECKS}
    unknown = sorted(set(checks or []) - names)
    if unknown:
        raise OmniptError(f"unknown check(s) {unknown}; checks: {', '.join(c.name for c in CHECKS)}")
    chosen = [
        c
        for c in CHECKS
        if c.target == kind
        and (checks is None or c.name in checks)
        and (check_images or c not in images.CHECKS)
    ]
    results = []
    with progress_bar(f"audit {kind}", total=len(chosen), enabled=show_progress) as advance:
        for check in chosen:
            results.append(_to_result(check, check.run(context), max_findings))
            advance(1)
    audit = AuditResult(target, kind, results, Path(report_dir))
    write_report(audit, context)
    return audit
