"""The reader registry: one reader per native format, each in its own module.

A reader's module is imported only when its format is used (``convert mot`` imports the MOT reader
alone): importing every reader would add a good part of a second to each command's start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from pathlib import Path

from omnipt_data.errors import OmniptError
from omnipt_data.readers.base import Reader, ReadOptions, Unit

__all__ = ["READERS", "SNIFF_ORDER", "ReadOptions", "Reader", "Unit", "detect_format", "get_reader"]

# Each format's reader, as (module under omnipt_data.readers, attribute), in the order `convert auto`
# tries them: the most specific layouts first. Person text (told apart by file name, else by record keys)
# and semantic MOT (BenSMOT); referring MOT (Refer-KITTI V2 first: it also wants "v2" in the folder name,
# then CRTrack); detection and ReID layouts, recognised by their own folder and file names; MOT last.
_LOCATIONS: dict[str, tuple[str, str]] = {
    "synth-pedes": ("synth_pedes", "READER"),
    "rstpreid": ("rstpreid", "READER"),
    "icfg-pedes": ("icfg_pedes", "READER"),
    "cuhk-pedes": ("cuhk_pedes", "READER"),
    "bensmot": ("bensmot", "READER"),
    "refer-kitti-v2": ("refer_kitti", "V2_READER"),
    "refer-kitti": ("refer_kitti", "READER"),
    "crtrack": ("crtrack", "READER"),
    "crtrack-eval": ("crtrack", "EVAL_READER"),
    "citypersons": ("citypersons", "READER"),
    "coco": ("coco", "READER"),
    "market1501": ("market1501", "MARKET_READER"),
    "dukemtmc": ("market1501", "DUKE_READER"),
    "msmt17": ("msmt17", "READER"),
    "crowdhuman": ("crowdhuman", "READER"),
    "mot": ("mot", "READER"),
    "mot-results": ("mot", "RESULTS_READER"),
}

SNIFF_ORDER: tuple[str, ...] = tuple(_LOCATIONS)


class _Readers(Mapping[str, Reader]):
    """Format name -> reader; a reader's module is imported on first access to it."""

    def __getitem__(self, name: str) -> Reader:
        module, attribute = _LOCATIONS[name]
        return getattr(import_module(f"{__name__}.{module}"), attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(_LOCATIONS)

    def __len__(self) -> int:
        return len(_LOCATIONS)


READERS: Mapping[str, Reader] = _Readers()


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
