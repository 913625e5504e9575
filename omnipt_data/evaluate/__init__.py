"""Evaluation: MOT (TrackEval HOTA/CLEAR/Identity), referring MOT, CRTrack cross-view metrics, semantic-MOT
text metrics, and the outputs (terminal table, JSON, CSV, HOTA-over-alpha plot).

- :func:`evaluate_mot` / :func:`evaluate_sequences`: MOTChallenge files or in-memory arrays;
- :func:`evaluate_rmot`: Refer-KITTI style, one sequence per ``<video>+<expression>``;
- :func:`evaluate_crmot`: CVRIDF1 and CVRMA as the CRTrack authors compute them;
- :func:`caption_metrics`, :func:`interaction_prf`: BLEU/METEOR/ROUGE-L/CIDEr-D and interaction P/R/F1.
"""

from omnipt_data.evaluate.captions import (
    PRF,
    bleu,
    caption_metrics,
    cider_d,
    evaluate_captions,
    evaluate_interactions,
    interaction_prf,
    meteor,
    read_captions,
    read_relations,
    relations_to_triples,
    rouge_l,
    tokenize,
)
from omnipt_data.evaluate.crmot import evaluate_crmot, evaluate_crmot_arrays, load_crtrack
from omnipt_data.evaluate.mot import (
    ALPHAS,
    BENCHMARKS,
    discover,
    evaluate_mot,
    evaluate_rmot,
    evaluate_sequences,
)
from omnipt_data.evaluate.motchallenge import MotFile, read_gt, read_pred, read_seqinfo
from omnipt_data.evaluate.report import (
    COMBINED,
    EvalResult,
    build_table,
    plot_alpha_curves,
    print_table,
    write_csv,
    write_json,
)

__all__ = [
    "ALPHAS",
    "BENCHMARKS",
    "COMBINED",
    "PRF",
    "EvalResult",
    "MotFile",
    "bleu",
    "build_table",
    "caption_metrics",
    "cider_d",
    "discover",
    "discover_rmot",
    "evaluate_captions",
    "evaluate_crmot",
    "evaluate_crmot_arrays",
    "evaluate_interactions",
    "evaluate_mot",
    "evaluate_rmot",
    "evaluate_sequences",
    "interaction_prf",
    "load_crtrack",
    "meteor",
    "plot_alpha_curves",
    "print_table",
    "read_captions",
    "read_gt",
    "read_pred",
    "read_relations",
    "read_seqinfo",
    "relations_to_triples",
    "rouge_l",
    "tokenize",
    "write_csv",
    "write_json",
]
