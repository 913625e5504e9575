"""Peer measurements, run in the benchmark's own environment (.venv-bench): Datumaro and py-motmetrics.

``python bench/peers.py KIND ARGS...`` (``datumaro FORMAT PATH...``, ``motmetrics GT PRED``) prints one
JSON object: ``seconds`` (the work alone, imports excluded) and what was read, so the caller can check
that every tool read the same thing. Timed from outside, the same command is the peer's whole process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def datumaro_import(fmt: str, *paths: str) -> dict:
    """Import each path on its own (Datumaro's ``mot_seq`` merges the sequences of one import by frame)."""
    import datumaro as dm

    started = time.perf_counter()
    items = boxes = 0
    for path in paths:
        dataset = dm.Dataset.import_from(path, fmt)
        items += len(dataset)
        boxes += sum(len(item.annotations) for item in dataset)
    return {"seconds": time.perf_counter() - started, "items": items, "boxes": boxes}


def motmetrics_eval(gt_root: str, pred_root: str) -> dict:
    import motmetrics as mm

    started = time.perf_counter()
    accumulators, names = [], []
    for seq in sorted(Path(gt_root).iterdir()):
        gt = mm.io.loadtxt(str(seq / "gt" / "gt.txt"), fmt="mot15-2D", min_confidence=1)
        pred = mm.io.loadtxt(str(Path(pred_root) / f"{seq.name}.txt"), fmt="mot15-2D")
        accumulators.append(mm.utils.compare_to_groundtruth(gt, pred, "iou", distth=0.5))
        names.append(seq.name)
    metrics = mm.metrics.create().compute_many(
        accumulators, names=names, metrics=["mota", "idf1"], generate_overall=True
    )
    overall = metrics.loc["OVERALL"]
    return {
        "seconds": time.perf_counter() - started,
        "MOTA": float(overall["mota"]),
        "IDF1": float(overall["idf1"]),
    }


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    result = {"datumaro": lambda: datumaro_import(*args), "motmetrics": lambda: motmetrics_eval(*args)}[
        kind
    ]()
    print(json.dumps(result))
