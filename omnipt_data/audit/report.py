"""The audit report: ``audit.json`` (the checks and their findings) and ``index.html`` (a summary table,
plots drawn with matplotlib's Agg backend and embedded as PNG, and the first findings of every check)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import orjson

from omnipt_data import __version__
from omnipt_data.audit.base import BUILD, CheckResult
from omnipt_data.audit.builds import CONTENT_COLUMNS, scan

SHOWN_IN_HTML = 50
SEVERITY_COLOURS = {"error": "#c0392b", "warning": "#d68910", "info": "#2e86c1"}
LINK_ORDER = ("file_line", "record_id", "sequence", "frame_uid", "box_uid", "image", "task")
THUMBNAILS_PER_CHECK = 4
THUMBNAIL_SIZE = 220  # pixels, the longer side
THUMBNAIL_MARGIN = 24  # pixels of context at least around a finding's boxes
OTHER_BOX_COLOUR = "#1abc9c"  # the second box of a pair (overlaps, duplicates)
CAPTION_LINKS = ("box_uid", "frame_uid", "record_id", "file_line", "sequence")  # the most precise first


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: the report is written to files
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _bars(
    title: str, labels: list[str], values: list[float], xlabel: str, ylabel: str, colours: Any = None
) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 3.2))
    axis.bar(range(len(values)), values, color=colours or "#2e86c1")
    axis.set_xticks(
        range(len(labels)),
        labels,
        rotation=45 if len(labels) > 6 else 0,
        ha="right" if len(labels) > 6 else "center",
    )
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    return _png(figure)


def _findings_plot(results: list[CheckResult]) -> str | None:
    flagged = [r for r in results if r.severity != "info" and r.count]
    if not flagged:  # nothing found: nothing to chart
        return None
    return _bars(
        "Findings per check",
        [r.name for r in flagged],
        [r.count for r in flagged],
        "",
        "findings",
        [SEVERITY_COLOURS[r.severity] for r in flagged],
    )


def _distribution(result: CheckResult | None, label: str, value: str, title: str, xlabel: str) -> str | None:
    if result is None or not result.findings:
        return None
    rows = result.findings
    return _bars(title, [str(r[label]) for r in rows], [r[value] for r in rows], xlabel, value)


def _token_plot(context: Any) -> str | None:
    tokens = scan(context).tokens
    if not any(tokens.values()):
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 3.2))
    everything = [t for values in tokens.values() for t in values]
    high = max(max(everything), context.context) * 1.1
    low = max(1, min(everything) * 0.9)
    import numpy as np

    edges = np.geomspace(low, high, 40)
    for task, values in sorted(tokens.items()):
        if values:
            axis.hist(values, bins=edges, histtype="step", linewidth=1.5, label=f"{task} ({len(values)})")
    axis.axvline(
        context.context, color=SEVERITY_COLOURS["error"], linestyle="--", label=f"context {context.context}"
    )
    axis.set_xscale("log")
    axis.set_title("Tokens per record (images + text) against the context")
    axis.set_xlabel("tokens")
    axis.set_ylabel("records")
    axis.legend(fontsize=8)
    return _png(figure)


def plots(results: list[CheckResult], kind: str, context: Any) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every plot the results allow."""
    by_name = {r.name: r for r in results}
    drawn: list[tuple[str, str | None]] = [("Findings per check", _findings_plot(results))]
    if kind == BUILD:
        drawn += [
            ("Token lengths", _token_plot(context)),
            (
                "Task balance",
                _distribution(by_name.get("task_balance"), "task", "samples", "Samples per task", "task"),
            ),
            (
                "Empty answers per task and dataset",
                _distribution(
                    by_name.get("content_by_dataset"),
                    "pair",
                    "empty_share",
                    "Share of empty answers per task / dataset",
                    "task / dataset",
                ),
            ),
            (
                "Answers of yes/no and choice tasks",
                _distribution(
                    by_name.get("answer_distribution"),
                    "pair",
                    "share",
                    "Answers per task / dataset",
                    "task / dataset: answer",
                ),
            ),
        ]
    else:
        drawn += [
            (
                "Class distribution",
                _distribution(
                    by_name.get("class_distribution"), "category", "boxes", "Boxes per category", "category"
                ),
            ),
            (
                "Box sizes",
                _distribution(
                    by_name.get("box_size_distribution"), "height_px", "boxes", "Box heights", "pixels"
                ),
            ),
            (
                "Aspect ratios",
                _distribution(
                    by_name.get("aspect_ratio_distribution"),
                    "aspect",
                    "boxes",
                    "Box aspect ratios",
                    "width / height",
                ),
            ),
            (
                "Track lengths",
                _distribution(by_name.get("track_lengths"), "length", "tracks", "Track lengths", "frames"),
            ),
        ]
    return [(title, png) for title, png in drawn if png is not None]


def _image_file(image: str, context: Any) -> Path:
    path = Path(image)
    return path if path.is_absolute() else Path(context.path) / path


def _thumbnail(image: Path, boxes: list[tuple[float, float, float, float]], colour: str) -> str | None:
    """A JPEG (base64) of the frame, or of the crop around ``boxes`` with them drawn; None when the image
    cannot be read (a missing or broken image is a finding of its own)."""
    from PIL import Image, ImageDraw

    try:
        with Image.open(image) as opened:
            frame = opened.convert("RGB")
    except (OSError, ValueError):
        return None
    x1, y1 = min((b[0] for b in boxes), default=0), min((b[1] for b in boxes), default=0)
    x2, y2 = max((b[2] for b in boxes), default=0), max((b[3] for b in boxes), default=0)
    # Around the boxes when they meet the image; else (no box, or one wholly outside) the whole frame.
    if boxes and x2 >= 0 and y2 >= 0 and x1 <= frame.width and y1 <= frame.height:
        # Context around the boxes: their own size again on each side, at least THUMBNAIL_MARGIN pixels.
        margin = max(x2 - x1, y2 - y1, THUMBNAIL_MARGIN)
        left, top = max(0, int(x1 - margin)), max(0, int(y1 - margin))
        right, bottom = min(frame.width, int(x2 + margin) + 1), min(frame.height, int(y2 + margin) + 1)
        if right - left >= 2 and bottom - top >= 2:
            frame = frame.crop((left, top, right, bottom))
            boxes = [(a - left, b - top, c - left, d - top) for a, b, c, d in boxes]
    scale = THUMBNAIL_SIZE / max(frame.width, frame.height)
    frame = frame.resize(
        (max(1, round(frame.width * scale)), max(1, round(frame.height * scale))), Image.Resampling.BILINEAR
    )
    draw = ImageDraw.Draw(frame)
    for n, (a, b, c, d) in reversed(list(enumerate(boxes))):  # the finding's own box on top
        draw.rectangle(
            (a * scale, b * scale, max(a, c) * scale, max(b, d) * scale),
            outline=colour if n == 0 else OTHER_BOX_COLOUR,
            width=2,
        )
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=85)
    return base64.b64encode(buffer.getvalue()).decode()


def _box_uids(finding: dict[str, Any]) -> list[str]:
    """The boxes a finding is about: its own first, then the others of a pair or group."""
    uids = [finding.get("box_uid"), finding.get("other_box_uid"), *(finding.get("box_uids") or [])]
    return list(dict.fromkeys(u for u in uids if u))


def thumbnails(results: list[CheckResult], context: Any) -> dict[str, list[tuple[str, str]]]:
    """Per check, (base64 JPEG, caption) of its first findings that point at an image: the frame or crop
    with the finding's box (and the other boxes of a pair or group) drawn."""
    import polars as pl

    shown = {r.name: [f for f in r.findings if f.get("image")][:THUMBNAILS_PER_CHECK] for r in results}
    uids = {uid for rows in shown.values() for f in rows for uid in _box_uids(f)}
    corners: dict[str, tuple[float, float, float, float]] = {}
    if uids and hasattr(context, "store"):
        found = (
            context.scan("boxes")
            .filter(pl.col("box_uid").is_in(sorted(uids)))
            .select("box_uid", "x1", "y1", "x2", "y2")
            .collect()
        )
        corners = {uid: (a, b, c, d) for uid, a, b, c, d in found.iter_rows()}
    drawn: dict[str, list[tuple[str, str]]] = {}
    for result in results:
        for finding in shown[result.name]:
            boxes = [corners[u] for u in _box_uids(finding) if u in corners]
            colour = SEVERITY_COLOURS[result.severity]
            picture = _thumbnail(_image_file(finding["image"], context), boxes, colour)
            if picture is not None:
                where = next((str(finding[c]) for c in CAPTION_LINKS if finding.get(c)), "")
                drawn.setdefault(result.name, []).append((picture, f"{finding.get('detail') or ''}\n{where}"))
    return drawn


def _thumbnails_html(pictures: list[tuple[str, str]]) -> str:
    figures = "".join(
        f"<figure class='thumb'><img alt='finding' src='data:image/jpeg;base64,{jpeg}'>"
        f"<figcaption>{'<br>'.join(html.escape(line) for line in caption.splitlines())}</figcaption></figure>"
        for jpeg, caption in pictures
    )
    return f"<div class='thumbs'>{figures}</div>" if figures else ""


def _cell(value: Any) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    return html.escape("" if value is None else str(value))


def _findings_table(result: CheckResult) -> str:
    rows = result.findings[:SHOWN_IN_HTML]
    if not rows:
        return "<p class='none'>No findings.</p>"
    columns = [c for c in LINK_ORDER if c in rows[0]] + ["detail"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    more = (
        f"<p class='more'>{result.count - len(rows)} more in audit.json"
        + (" (truncated there too)" if result.truncated else "")
        + "</p>"
        if result.count > len(rows)
        else ""
    )
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _content_table(results: list[CheckResult]) -> str:
    """A build's samples per task and dataset: empty answers against the template's negative share and
    the commonest answer of yes/no and choice tasks (the ``content_by_dataset`` check's rows)."""
    rows = next((r.findings for r in results if r.name == "content_by_dataset"), [])
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in CONTENT_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in CONTENT_COLUMNS) + "</tr>" for r in rows
    )
    return f"<h2>Content per task and dataset</h2><table><tr>{head}</tr>{body}</table>"


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.sev { color: white; padding: 1px 6px; border-radius: 3px; font-size: 0.85em; }
.error { background: #c0392b; } .warning { background: #d68910; } .info { background: #2e86c1; }
.plots img { max-width: 48%; margin: 0.5%; border: 1px solid #eee; }
.none, .more { color: #666; font-style: italic; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.5em 0; }
.thumb { margin: 0; width: 220px; font-size: 0.8em; }
.thumb img { display: block; border: 1px solid #ccc; max-width: 220px; }
.thumb figcaption { color: #444; overflow-wrap: anywhere; }
"""


def render_html(
    target: Path,
    kind: str,
    results: list[CheckResult],
    figures: list[tuple[str, str]],
    pictures: dict[str, list[tuple[str, str]]] | None = None,
) -> str:
    summary_rows = "".join(
        f"<tr><td><a href='#{r.name}'>{r.name}</a></td>"
        f"<td><span class='sev {r.severity}'>{r.severity}</span></td>"
        f"<td>{r.count}</td><td>{html.escape(r.description)}</td></tr>"
        for r in results
    )
    images = "".join(
        f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'></figure>"
        for title, png in figures
    )
    sections = "".join(
        f"<h3 id='{r.name}'>{r.name} <span class='sev {r.severity}'>{r.severity}</span> {r.count}</h3>"
        f"<p>{html.escape(r.description)}</p>{_thumbnails_html((pictures or {}).get(r.name, []))}"
        f"{_findings_table(r)}"
        for r in results
    )
    flagged = {s: sum(r.count for r in results if r.severity == s) for s in ("error", "warning")}
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Audit of {html.escape(target.name)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Audit of {kind} {html.escape(str(target))}</h1>"
        f"<p>{flagged['error']} error and {flagged['warning']} warning finding(s); "
        f"omnipt-data {__version__}.</p>"
        f"<h2>Checks</h2><table><tr><th>check</th><th>severity</th><th>findings</th><th>what</th></tr>"
        f"{summary_rows}</table>{_content_table(results)}"
        + (f"<h2>Plots</h2><div class='plots'>{images}</div>" if images else "")
        + f"<h2>Findings</h2>{sections}</body></html>"
    )


def write_report(audit: Any, context: Any) -> None:
    """Write ``audit.json`` and ``index.html`` into the audit's report folder."""
    folder = Path(audit.report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    payload = [r.to_json() for r in audit.results]
    (folder / "audit.json").write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    figures = plots(audit.results, audit.kind, context)
    (folder / "index.html").write_text(
        render_html(audit.target, audit.kind, audit.results, figures, thumbnails(audit.results, context)),
        encoding="utf-8",
    )
