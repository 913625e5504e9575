"""Evaluation: MOT (TrackEval HOTA/CLEAR/Identity, or the MOTChallenge devkit's CLEAR MOT and IDF1),
referring MOT, CRTrack cross-view metrics, semantic-MOT text metrics, and the outputs (terminal table,
JSON, CSV, HOTA-over-alpha plot).

- :func:`evaluate_mot` / :func:`evaluate_sequences`: MOTChallenge files or in-memory arrays;
- :func:`evaluate_devkit`: CLEAR MOT and ID measures with the MOTChallenge devkit's rules;
- :func:`evaluate_rmot`: Refer-KITTI style, one sequence per ``<video>+<expression>``;
- :func:`evaluate_crmot`: CVRIDF1 and CVRMA as the CRTrack authors compute them;
- :func:`caption_metrics`, :func:`interaction_prf`: BLEU/METEOR/ROUGE-L/CIDEr-D and interaction P/R/F1.

Names are loaded on first use (the command line imports this package when it starts, and the metric
modules pull in SciPy and, when scoring, TrackEval).
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    **dict.fromkeys(
        (
            "PRF",
            "bleu",
            "caption_metrics",
            "cider_d",
            "evaluate_captions",
            "evaluate_interactions",
            "interaction_prf",
            "meteor",
            "read_captions",
            "read_relations",
            "relations_to_triples",
            "rouge_l",
            "tokenize",
        ),
        "captions",
    ),
    **dict.fromkeys(("evaluate_crmot", "evaluate_crmot_arrays", "load_crtrack"), "crmot"),
    **dict.fromkeys(("clear_mot", "evaluate_devkit", "id_measures"), "devkit"),
    **dict.fromkeys(
        (
            "ALPHAS",
            "BENCHMARKS",
            "discover",
            "discover_rmot",
            "evaluate_mot",
            "evaluate_rmot",
            "evaluate_sequences",
        ),
        "mot",
    ),
    **dict.fromkeys(("MotFile", "read_gt", "read_pred", "read_seqinfo"), "motchallenge"),
    **dict.fromkeys(
        (
            "COMBINED",
            "EvalResult",
            "build_table",
            "plot_alpha_curves",
            "print_table",
            "write_csv",
            "write_json",
        ),
        "report",
    ),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
