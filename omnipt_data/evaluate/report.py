"""Evaluation results and their outputs: a rich terminal table, JSON, CSV and a HOTA-over-alpha plot.

JSON is keyed by row name (sequence, expression, sentence or scene) with ``COMBINED`` last; each row maps
metric names to numbers (ratios as fractions in [0, 1], counts as integers) and, where the metric has
per-alpha values (HOTA family), a nested ``per_alpha`` object with the alpha thresholds and the arrays, and
a ``protocol`` object naming, for each figure, the protocol that produced it (:data:`PROTOCOLS`). CSV holds
the scalar metrics only, one row per name, and a ``protocol`` column; the terminal table lists the
protocols under the table.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

COMBINED = "COMBINED"
Number = float | int

# Shorter column headers for the terminal table.
_HEADERS = {"CLR_FP": "FP", "CLR_FN": "FN", "CLR_TP": "TP"}
# Shown as they are, not as percentages, in the terminal table.
_NOT_PERCENT = frozenset({"CIDEr", "FP_per_frame", "MOTP_sum"})
# The evaluation protocols a figure may come from, with how they are shown.
PROTOCOLS = {
    "trackeval": "TrackEval",
    "devkit": "MOTChallenge MATLAB devkit",
    "coco-caption": "coco-caption",
    "bensmot": "SMOTer's released caption evaluation",
    "micro": "micro-averaged over triples",
}


@dataclass
class EvalResult:
    """Metrics per row plus ``COMBINED``.

    ``rows`` maps a name to ``{metric: value}``; ``curves`` maps a name to per-alpha arrays
    (``{"alpha": [...], "HOTA": [...], "DetA": [...], ...}``) where the task has them; ``key_metrics``
    are the columns of the terminal table; ``notes`` carry protocol remarks worth showing to the user;
    ``protocol`` maps a metric (or its TrackEval family: ``HOTA``, ``CLEAR``, ``Identity``) to the key of
    :data:`PROTOCOLS` that produced it.
    """

    task: str
    rows: dict[str, dict[str, Number]]
    key_metrics: tuple[str, ...]
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    protocol: dict[str, str] = field(default_factory=dict)

    def protocol_of(self, metric: str) -> str | None:
        """The protocol behind ``metric``: its own entry, else its family's."""
        if metric in self.protocol:
            return self.protocol[metric]
        family = METRIC_FAMILY.get(metric)
        return self.protocol.get(family) if family else None

    @property
    def combined(self) -> dict[str, Number]:
        return self.rows[COMBINED]

    @property
    def names(self) -> list[str]:
        """Row names other than ``COMBINED``, in order."""
        return [name for name in self.rows if name != COMBINED]

    def to_json(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name in [*self.names, COMBINED]:
            row: dict[str, Any] = {key: _plain(value) for key, value in self.rows[name].items()}
            protocols = {key: p for key in self.rows[name] if (p := self.protocol_of(key)) is not None}
            if protocols:
                row["protocol"] = protocols
            if name in self.curves:
                row["per_alpha"] = {
                    key: [_plain(v) for v in values] for key, values in self.curves[name].items()
                }
            out[name] = row
        return out


# TrackEval's metric families, so that a result can name the protocol of a whole family at once.
_HOTA_FIELDS = (
    "HOTA DetA AssA DetRe DetPr AssRe AssPr LocA OWTA HOTA(0) LocA(0) HOTALocA(0) HOTA_TP HOTA_FN HOTA_FP"
)
_CLEAR_FIELDS = (
    "MOTA MOTP MODA CLR_Re CLR_Pr MTR PTR MLR sMOTA CLR_F1 FP_per_frame MOTAL MOTP_sum CLR_TP CLR_FN CLR_FP "
    "IDSW MT PT ML Frag CLR_Frames"
)
METRIC_FAMILY = {
    **dict.fromkeys(_HOTA_FIELDS.split(), "HOTA"),
    **dict.fromkeys(_CLEAR_FIELDS.split(), "CLEAR"),
    **dict.fromkeys(("IDF1", "IDR", "IDP", "IDTP", "IDFN", "IDFP"), "Identity"),
}


def _plain(value: Any) -> Any:
    """Python ``int``/``float`` from numpy scalars; NaN and infinities become ``None`` in JSON."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iub":
        return int(value)
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def format_value(metric: str, value: Number | None) -> str:
    """Terminal formatting: counts as integers, ratios as percentages with two decimals."""
    if value is None:
        return "-"
    if isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu"):
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        return "-"
    if metric in _NOT_PERCENT:
        return f"{number:.3f}"
    return f"{100.0 * number:.2f}"


def build_table(result: EvalResult, metrics: Sequence[str] | None = None) -> Table:
    """Rows x key metrics, ``COMBINED`` last (ratios shown as percentages)."""
    metrics = tuple(metrics or result.key_metrics)
    table = Table(title=f"{result.task} evaluation", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("name", overflow="fold", min_width=8)
    for metric in metrics:
        table.add_column(_HEADERS.get(metric, metric), justify="right", no_wrap=True)
    for name in result.names:
        table.add_row(name, *(format_value(m, result.rows[name].get(m)) for m in metrics))
    table.add_section()
    table.add_row(COMBINED, *(format_value(m, result.combined.get(m)) for m in metrics), style="bold")
    return table


def print_table(result: EvalResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(build_table(result))
    line = protocol_line(result)
    if line:
        console.print(f"[dim]{line}[/dim]", highlight=False)
    for note in result.notes:
        console.print(f"[dim]note: {note}[/dim]")


def protocol_line(result: EvalResult) -> str:
    """``protocol: MOTA, IDF1, ... = MOTChallenge MATLAB devkit`` for the table's columns."""
    groups: dict[str, list[str]] = {}
    for metric in result.key_metrics:
        protocol = result.protocol_of(metric)
        if protocol is not None:
            groups.setdefault(protocol, []).append(_HEADERS.get(metric, metric))
    parts = [f"{', '.join(metrics)} = {PROTOCOLS.get(p, p)}" for p, metrics in groups.items()]
    return f"protocol: {'; '.join(parts)}" if parts else ""


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(result: EvalResult, path: Path | str) -> Path:
    path = Path(path)
    text = json.dumps(result.to_json(), indent=2, ensure_ascii=False, allow_nan=False)
    _write_atomic(path, (text + "\n").encode("utf-8"))
    return path


def write_csv(result: EvalResult, path: Path | str) -> Path:
    """One line per row name (``COMBINED`` last); columns are the union of the scalar metrics."""
    path = Path(path)
    columns: list[str] = []
    for row in result.rows.values():
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    protocols = sorted({p for column in columns if (p := result.protocol_of(column)) is not None})
    writer.writerow(["name", *columns, *(["protocol"] if protocols else [])])
    for name in [*result.names, COMBINED]:
        row = result.rows[name]
        cells = []
        for column in columns:
            value = _plain(row[column]) if column in row else None
            cells.append("" if value is None else repr(value) if isinstance(value, float) else str(value))
        if protocols:
            cells.append("+".join(protocols))
        writer.writerow([name, *cells])
    _write_atomic(path, buffer.getvalue().encode("utf-8"))
    return path


def plot_alpha_curves(
    result: EvalResult, path: Path | str, *, metrics: Sequence[str] = ("HOTA", "DetA", "AssA")
) -> Path | None:
    """PNG of HOTA, DetA and AssA over the localisation threshold alpha for ``COMBINED`` (solid, with its
    alpha-mean in the legend) and each row (faint). Returns ``None`` when the result has no curves."""
    if COMBINED not in result.curves:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    figure = Figure(figsize=(7.0, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    colours = {"HOTA": "tab:red", "DetA": "tab:blue", "AssA": "tab:green"}
    combined = result.curves[COMBINED]
    alphas = combined["alpha"]
    for name in result.names:
        curves = result.curves.get(name)
        if not curves:
            continue
        for metric in metrics:
            axes.plot(curves["alpha"], curves[metric], color=colours.get(metric), alpha=0.15, linewidth=0.8)
    for metric in metrics:
        values = combined[metric]
        mean = sum(values) / len(values)
        axes.plot(
            alphas, values, color=colours.get(metric), linewidth=2.0, label=f"{metric} ({100 * mean:.2f})"
        )
    axes.set_xlabel("localisation threshold alpha")
    axes.set_ylabel("score")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left")
    count = len(result.names)
    axes.set_title(f"{result.task}: {COMBINED} of {count} sequence{'' if count == 1 else 's'}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    _write_atomic(path, buffer.getvalue())
    return path
