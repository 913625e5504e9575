"""``eval`` command: score tracking results (or captions, interactions) and write table, JSON, CSV, plot.

Registered by the main CLI as ``app.command("eval")(eval_command)``. A user error (missing file,
malformed line, unknown task) prints one line naming the file and line and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from omnipt_data.console import make_console
from omnipt_data.errors import OmniptError

if TYPE_CHECKING:
    from omnipt_data.evaluate.report import EvalResult

TASKS = ("mot", "rmot", "crmot", "captions", "interactions")
PLOT_NAME = "hota_alpha.png"


def run_task(
    task: str,
    gt: Path,
    pred: Path,
    *,
    benchmark: str | None = None,
    frame_offset: int = 0,
    pred_frame_offset: int = 0,
    pred_box_format: str = "xyxy",
    protocol: str | None = None,
) -> EvalResult:
    """Dispatch one evaluation task (see :data:`TASKS`); ``protocol`` picks among the task's protocols
    (default: the first). TrackEval is imported only when a task uses it."""
    from omnipt_data.evaluate.captions import CAPTION_PROTOCOLS, evaluate_captions, evaluate_interactions
    from omnipt_data.evaluate.crmot import evaluate_crmot
    from omnipt_data.evaluate.mot import BENCHMARKS, MOT_PROTOCOLS, evaluate_mot, evaluate_rmot

    protocols = {
        "mot": MOT_PROTOCOLS,
        "rmot": ("trackeval",),
        "crmot": ("devkit",),
        "captions": CAPTION_PROTOCOLS,
        "interactions": ("micro",),
    }
    if task not in protocols:
        raise OmniptError(f"unknown task {task!r} (expected one of {', '.join(TASKS)})")
    choices = protocols[task]
    protocol = protocol or choices[0]
    if protocol not in choices:
        raise OmniptError(f"task {task} has no protocol {protocol!r} (expected one of {', '.join(choices)})")
    if task == "mot" and (Path(gt) / "manifest.json").is_file():
        from omnipt_data.evaluate.store_gt import evaluate_store

        return evaluate_store(gt, pred, protocol=protocol)
    if task == "mot":
        if benchmark is not None and benchmark not in BENCHMARKS:
            raise OmniptError(f"unknown benchmark {benchmark!r} (expected one of {', '.join(BENCHMARKS)})")
        return evaluate_mot(gt, pred, benchmark=benchmark, frame_offset=frame_offset, protocol=protocol)
    if task == "rmot":
        return evaluate_rmot(gt, pred, frame_offset=frame_offset, pred_frame_offset=pred_frame_offset)
    if task == "crmot":
        if pred_box_format not in ("xyxy", "xywh"):
            raise OmniptError(f"unknown box format {pred_box_format!r} (expected xyxy or xywh)")
        return evaluate_crmot(gt, pred, pred_box_format=pred_box_format)  # type: ignore[arg-type]
    if task == "captions":
        return evaluate_captions(gt, pred, protocol=protocol)
    return evaluate_interactions(gt, pred)


def eval_command(
    gt: Annotated[
        Path,
        typer.Option(
            "--gt",
            help="Ground truth: a store, a gt.txt, a sequence folder, a folder of sequences (mot, rmot), "
            "the CRTrack gt folder (crmot), or a JSON file (captions, interactions).",
            show_default=False,
        ),
    ],
    pred: Annotated[
        Path,
        typer.Option(
            "--pred",
            help="Results: a result file or a folder of <sequence>.txt (mot, rmot), the CRTrack results "
            "folder (crmot), or a JSON file (captions, interactions).",
            show_default=False,
        ),
    ],
    task: Annotated[str, typer.Option("--task", "-t", help=f"One of: {', '.join(TASKS)}.")] = "mot",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics as JSON here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write metrics as CSV here.")] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help=f"Folder for the HOTA/DetA/AssA-over-alpha plot ({PLOT_NAME})."),
    ] = None,
    benchmark: Annotated[
        str | None,
        typer.Option(
            "--benchmark", help="MOT preprocessing: MOT15, MOT16, MOT17 or MOT20 (default: from the files)."
        ),
    ] = None,
    frame_offset: Annotated[
        int, typer.Option("--frame-offset", help="Added to every frame of both files (1 for 0-based files).")
    ] = 0,
    pred_frame_offset: Annotated[
        int,
        typer.Option("--pred-frame-offset", help="rmot: added to the results' frames only."),
    ] = 0,
    pred_box_format: Annotated[
        str,
        typer.Option(
            "--pred-box-format", help="crmot result boxes: xyxy (as CRTrack releases them) or xywh."
        ),
    ] = "xyxy",
    protocol: Annotated[
        str | None,
        typer.Option(
            "--protocol",
            help="How figures are computed: mot: trackeval (default) or devkit (the MOTChallenge MATLAB "
            "devkit's CLEAR MOT and IDF1); captions: coco-caption (default) or bensmot (SMOTer's released "
            "scorer, character-level BLEU included). rmot is scored as TransRMOT/TempRMOT do, crmot as the "
            "CRTrack authors do.",
        ),
    ] = None,
) -> None:
    """Evaluate results against ground truth: HOTA/CLEAR/IDF1 (TrackEval), CVRIDF1/CVRMA, caption metrics."""
    from omnipt_data.evaluate.report import plot_alpha_curves, print_table, write_csv, write_json

    console = make_console()
    errors = make_console(stderr=True)
    try:
        result = run_task(
            task,
            gt,
            pred,
            benchmark=benchmark,
            frame_offset=frame_offset,
            pred_frame_offset=pred_frame_offset,
            pred_box_format=pred_box_format,
            protocol=protocol,
        )
        print_table(result, console)
        if json_out is not None:
            console.print(f"wrote {write_json(result, json_out)}")
        if csv_out is not None:
            console.print(f"wrote {write_csv(result, csv_out)}")
        if report is not None:
            plot = plot_alpha_curves(result, Path(report) / PLOT_NAME)
            if plot is None:
                console.print(f"no per-alpha curves for task {task}; no plot written")
            else:
                console.print(f"wrote {plot}")
    except OmniptError as exc:
        errors.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        errors.print(f"error: {where}{exc.strerror or exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
