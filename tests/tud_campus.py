"""The real TUD-Campus sample (MOT15) and the MOTChallenge devkit's figures for it.

The devkit (evaluateTracking, MOT15) on the CEM demo result for TUD-Campus, as printed in the devkit's
readme and quoted by py-motmetrics' README ("MOTChallenge compatibility")::

     IDF1  IDP  IDR| Rcll  Prcn   FAR| GT  MT  PT  ML|   FP    FN  IDs   FM| MOTA  MOTP MOTAL
     55.8 73.0 45.1| 58.2  94.1  0.18|  8   1   6   1|   13   150    7    7| 52.6  72.3  54.3

MOTP is (1 - mean distance) * 100 with distance 1 - IoU, i.e. the mean IoU.
"""

from pathlib import Path

TUD = Path(__file__).resolve().parent / "data" / "real" / "mot15" / "TUD-Campus"
DEVKIT_PERCENT = {
    "IDF1": 55.8,
    "IDP": 73.0,
    "IDR": 45.1,
    "CLR_Re": 58.2,
    "CLR_Pr": 94.1,
    "MOTA": 52.6,
    "MOTP": 72.3,
    "MOTAL": 54.3,
}
DEVKIT_COUNTS = {"GT_IDs": 8, "MT": 1, "PT": 6, "ML": 1, "CLR_FP": 13, "CLR_FN": 150, "IDSW": 7, "Frag": 7}
