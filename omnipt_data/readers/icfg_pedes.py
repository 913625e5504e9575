"""ICFG-PEDES (Ding et al., 2021): MSMT17 person images with one long English description each.

``ICFG-PEDES/ICFG-PEDES.json`` is a JSON array of ``{"id": 0, "file_path": "test/0027/0027_004_01_0303
morning_0020_0.jpg", "captions": [str], "processed_tokens": [[str, ...]], "split": "train" | "test"}``;
ids start at 0 (the IRRA loader checks that training ids run 0, 1, 2, ...), images live under
``ICFG-PEDES/imgs/<file_path>``. Variants accepted: ``ICFG_PEDES.json`` (the name the SSAN and PLIP code
uses) and, for another file name, records whose ``file_path`` starts with a ``train/`` or ``test/``
folder (how ICFG-PEDES paths look, unlike CUHK-PEDES' ``CUHK01/...``). ``processed_tokens`` is not kept.
Image sizes come from the image headers when ``imgs/`` exists; a record whose image is missing there is
an error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from omnipt_data.readers.person_text import PersonTextReader

EXPECTED = (
    'a JSON array of {"id": int, "file_path": "<split>/<pid>/<name>.jpg", "captions": ["<caption>", ...], '
    '"split": str}'
)


class IcfgPedesReader(PersonTextReader):
    name: ClassVar[str] = "icfg-pedes"
    description: ClassVar[str] = "ICFG-PEDES ICFG-PEDES.json: MSMT17 person images with captions"
    dataset: ClassVar[str] = "ICFG-PEDES"
    annotation_files: ClassVar[tuple[str, ...]] = ("ICFG-PEDES.json", "ICFG_PEDES.json")
    path_keys: ClassVar[tuple[str, ...]] = ("file_path", "img_path")
    expected: ClassVar[str] = EXPECTED
    claim_order: ClassVar[int] = 30

    def claims(self, record: dict[str, Any]) -> bool:
        path = record.get("file_path")
        return isinstance(path, str) and path.split("/", 1)[0] in ("train", "test") and "captions" in record


READER = IcfgPedesReader()
