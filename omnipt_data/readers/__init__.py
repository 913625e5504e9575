"""The reader registry: one reader per native format, each in its own module."""

from __future__ import annotations

from pathlib import Path

from omnipt_data.errors import OmniptError
from omnipt_data.readers import (
    bensmot,
    citypersons,
    coco,
    crowdhuman,
    crtrack,
    cuhk_pedes,
    icfg_pedes,
    market1501,
    mot,
    msmt17,
    refer_kitti,
    rstpreid,
    synth_pedes,
)
from omnipt_data.readers.base import Reader, ReadOptions, Unit

__all__ = ["READERS", "ReadOptions", "Reader", "Unit", "detect_format", "get_reader"]

READERS: dict[str, Reader] = {r.name: r for r in (mot.READER, mot.RESULTS_READER, crowdhuman.READER)}
READERS.update(
    {
        r.name: r
        for r in (
            citypersons.READER,
            coco.READER,
            market1501.MARKET_READER,
            market1501.DUKE_READER,
            msmt17.READER,
        )
    }
)

# `convert auto` tries the readers in this order: the most specific layouts first.
SNIFF_ORDER: tuple[str, ...] = ("crowdhuman", "mot", "mot-results")
# Detection and ReID layouts are recognised by their own folder and file names, before MOT folders.
SNIFF_ORDER = ("citypersons", "coco", "market1501", "dukemtmc", "msmt17", *SNIFF_ORDER)
# Referring MOT: Refer-KITTI (V2 first: it also wants "v2" in the folder name) and CRTrack, before MOT.
READERS.update(
    {r.name: r for r in (refer_kitti.READER, refer_kitti.V2_READER, crtrack.READER, crtrack.EVAL_READER)}
)
SNIFF_ORDER = ("refer-kitti-v2", "refer-kitti", "crtrack", "crtrack-eval", *SNIFF_ORDER)
# Person text (told apart by file name, else by record keys) and semantic MOT (BenSMOT), before MOT.
READERS.update(
    {
        r.name: r
        for r in (cuhk_pedes.READER, icfg_pedes.READER, rstpreid.READER, synth_pedes.READER, bensmot.READER)
    }
)
SNIFF_ORDER = ("synth-pedes", "rstpreid", "icfg-pedes", "cuhk-pedes", "bensmot", *SNIFF_ORDER)


def get_reader(name: str) -> Reader:
    try:
        return READERS[name]
    except KeyError:
        raise OmniptError(f"unknown format {name!r}; known formats: {', '.join(sorted(READERS))}") from None


def detect_format(path: Path) -> str:
    """The first reader in ``SNIFF_ORDER`` that recognises ``path``."""
    for name in SNIFF_ORDER:
        if READERS[name].sniff(path):
            return name
    raise OmniptError(f"{path}: no reader recognises this folder; pass the format explicitly")
