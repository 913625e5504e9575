"""CUHK-PEDES (Li et al., CVPR 2017): person images with two free-form English descriptions each.

``CUHK-PEDES/reid_raw.json`` is a JSON array of ``{"split": "train" | "val" | "test", "captions": [str,
...], "file_path": "CUHK01/0363004.png", "processed_tokens": [[str, ...], ...], "id": 1}``; ids start at 1
and images live under ``CUHK-PEDES/imgs/<file_path>`` (the layout the IRRA and TextReID loaders read).
Variants accepted: the original release's ``caption_all.json`` (same records without ``split``: the split
is ``--split`` or ``train``) and, for another file name, any JSON array whose records carry ``file_path``
and ``captions`` (PLIP's ``CUHK-PEDES-train.json`` split files, for instance). ``processed_tokens`` is
not kept: it is the captions, tokenised. Image sizes come from the image headers when ``imgs/`` exists; a
record whose image is missing there is an error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from omnipt_data.readers.person_text import PersonTextReader

EXPECTED = (
    'a JSON array of {"id": int, "file_path": str, "captions": ["<caption>", ...], "split": str, '
    '"processed_tokens": [...]}'
)


class CuhkPedesReader(PersonTextReader):
    name: ClassVar[str] = "cuhk-pedes"
    description: ClassVar[str] = "CUHK-PEDES reid_raw.json (or caption_all.json): person images with captions"
    dataset: ClassVar[str] = "CUHK-PEDES"
    annotation_files: ClassVar[tuple[str, ...]] = ("reid_raw.json", "caption_all.json")
    path_keys: ClassVar[tuple[str, ...]] = ("file_path", "img_path")
    expected: ClassVar[str] = EXPECTED
    claim_order: ClassVar[int] = 40  # the most generic layout: claims what the others leave

    def claims(self, record: dict[str, Any]) -> bool:
        return "file_path" in record and "captions" in record


READER = CuhkPedesReader()
