"""RSTPReid (Zhu et al., ACM MM 2021): MSMT17 person images, five per person, two captions each.

``RSTPReid/data_captions.json`` is a JSON array of ``{"id": 0, "img_path": "3903_c14_0007.jpg",
"captions": [str, str], "split": "train" | "val" | "test"}``; ids start at 0 and images live under
``RSTPReid/imgs/<img_path>`` (the layout the IRRA loader reads). The camera is taken from the image name
(``<pid>_c<camera>_<n>.jpg``) when it has that shape. Variants accepted: ``file_path`` in place of
``img_path``, and, for another file name, any JSON array whose records carry ``img_path`` and
``captions``. Image sizes come from the image headers when ``imgs/`` exists; a record whose image is
missing there is an error.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from omnipt_data.readers.person_text import PersonTextReader

EXPECTED = 'a JSON array of {"id": int, "img_path": str, "captions": ["<caption>", ...], "split": str}'
CAMERA = re.compile(r"^\d+_c(\d+)_")


class RstpReidReader(PersonTextReader):
    name: ClassVar[str] = "rstpreid"
    description: ClassVar[str] = "RSTPReid data_captions.json: person images with captions"
    dataset: ClassVar[str] = "RSTPReid"
    annotation_files: ClassVar[tuple[str, ...]] = ("data_captions.json",)
    path_keys: ClassVar[tuple[str, ...]] = ("img_path", "file_path")
    expected: ClassVar[str] = EXPECTED
    claim_order: ClassVar[int] = 20

    def claims(self, record: dict[str, Any]) -> bool:
        return "img_path" in record and "captions" in record

    def camera_of(self, file_path: str) -> int | None:
        match = CAMERA.match(file_path.rsplit("/", 1)[-1])
        return int(match.group(1)) if match else None


READER = RstpReidReader()
