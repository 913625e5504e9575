"""``omnipt-data audit``: data-quality checks on a store or a build, with a JSON and an HTML report.

Checks live one family per module (:mod:`~omnipt_data.audit.boxes`, :mod:`~omnipt_data.audit.tracks`,
:mod:`~omnipt_data.audit.images`, :mod:`~omnipt_data.audit.splits`, :mod:`~omnipt_data.audit.expressions`
for stores; :mod:`~omnipt_data.audit.builds` for builds); :data:`CHECKS` registers them all in report
order. :func:`run_audit` runs the ones that apply to the target and writes ``audit.json`` (the list of
checks with their findings) and ``index.html`` (a summary, the plots and the first findings of each check).

Names are resolved lazily (they live in :mod:`omnipt_data.audit.run`), so the command line's help does not
import the checks and their libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnipt_data.audit.run import CHECKS, SEVERITIES, AuditResult, Check, CheckResult, run_audit

__all__ = ["CHECKS", "SEVERITIES", "AuditResult", "Check", "CheckResult", "run_audit"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("omnipt_data.audit.run"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
