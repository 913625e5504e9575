"""SYNTH-PEDES (Zuo et al., PLIP, NeurIPS 2024): synthesised person descriptions with six attributes.

``SYNTH-PEDES/synthpedes_dataset.json`` is a JSON array of ``{"id": 7, "file_path": "Part1/7/1.jpg",
"attributes": ["man,black hair,black shirt,pink shorts,black shoes,unknown"], "captions": [str, str],
"prompt_caption": [str]}`` (the layout in the PLIP README); images sit beside the JSON in ``Part1`` ...
``Part11``. The attribute string holds six comma-separated values, kept as ``{name, value}`` pairs named
``gender, hair, upper_clothing, lower_clothing, shoes, belongings``. The template caption(s) of
``prompt_caption`` follow the captions in ``captions``. Records have no split: it is ``--split`` or
``train``. Variants accepted: ``attributes`` as one string, as six strings, as a ``{name: value}``
object or as a list of ``{"name", "value"}`` objects; no ``attributes`` (null) and no
``prompt_caption``. Image sizes come from the image headers when the record's ``PartN`` folder exists;
a record whose image is missing there is an error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from omnipt_data.readers.person_text import PersonTextReader

ATTRIBUTE_NAMES = ("gender", "hair", "upper_clothing", "lower_clothing", "shoes", "belongings")
EXPECTED = (
    'a JSON array of {"id": int, "file_path": str, "attributes": ["gender,hair,upper,lower,shoes,'
    'belongings"], "captions": ["<caption>", ...], "prompt_caption": ["<caption>"]}'
)


def parse_attributes(value: Any) -> list[dict[str, str]] | None:
    """SYNTH-PEDES attributes in any of the accepted shapes as ``{name, value}`` pairs."""
    if value is None:
        return None
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return [{"name": str(k), "value": v} for k, v in value.items()]
    pairs = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
    if pairs and all(isinstance(v.get("name"), str) and isinstance(v.get("value"), str) for v in value):
        return [{"name": v["name"], "value": v["value"]} for v in value]
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        values = [part.strip() for v in value for part in v.split(",")] if len(value) == 1 else value
        if len(values) == len(ATTRIBUTE_NAMES):
            return [{"name": n, "value": v} for n, v in zip(ATTRIBUTE_NAMES, values, strict=True)]
        raise ValueError(f'"attributes" has {len(values)} values, not {len(ATTRIBUTE_NAMES)}')
    raise ValueError(f'"attributes" is {value!r}, not a list holding one comma-separated string')


class SynthPedesReader(PersonTextReader):
    name: ClassVar[str] = "synth-pedes"
    description: ClassVar[str] = "SYNTH-PEDES synthpedes_dataset.json: person images, captions and attributes"
    dataset: ClassVar[str] = "SYNTH-PEDES"
    annotation_files: ClassVar[tuple[str, ...]] = ("synthpedes_dataset.json",)
    caption_keys: ClassVar[tuple[str, ...]] = ("captions", "prompt_caption")
    image_dir: ClassVar[str] = ""
    expected: ClassVar[str] = EXPECTED
    claim_order: ClassVar[int] = 10

    def claims(self, record: dict[str, Any]) -> bool:
        return ("attributes" in record or "prompt_caption" in record) and "captions" in record

    def parse_attributes(self, record: dict[str, Any]) -> list[dict[str, str]] | None:
        return parse_attributes(record.get("attributes"))


READER = SynthPedesReader()
