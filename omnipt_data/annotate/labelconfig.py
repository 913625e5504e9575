"""Label configs of the review kinds, and what the review loop reads from a config.

The configs are XML files in the project's ``annotate/`` folder, one per kind. The loop relies on a few
control names: ``box`` (rectangles or video tracks), ``caption`` (per-region text), ``summary`` (clip
text), ``sentence`` (a referring expression) and on every per-region ``<Choices>`` as an attribute of that
name. A project's own config (edited in Label Studio) is parsed the same way, so labels, attribute groups
and relation labels can be added there.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from omnipt_data.errors import OmniptError

KINDS = ("boxes", "tracks", "expressions", "interactions")
VIDEO_KINDS = ("tracks", "expressions", "interactions")

BOX = "box"
CAPTION = "caption"
SUMMARY = "summary"
SENTENCE = "sentence"


def config_dir() -> Path:
    """The ``annotate/`` folder beside the package (a source checkout) or inside it (an installed copy)."""
    here = Path(__file__).resolve().parents[2] / "annotate"
    return here if here.is_dir() else Path(__file__).resolve().parent / "configs"


def default_config_path(kind: str) -> Path:
    check_kind(kind)
    return config_dir() / f"{kind}.xml"


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise OmniptError(f"unknown review kind {kind!r} (expected one of {', '.join(KINDS)})")


@dataclass(frozen=True)
class ReviewConfig:
    """The parts of a label config that the push and the pull depend on."""

    object_name: str  # the Image or Video tag the regions belong to
    object_type: str  # "image" or "video"
    box_type: str  # result type of the boxes: "rectanglelabels" or "videorectangle"
    labels: tuple[str, ...]
    caption: bool
    summary: bool
    sentence: bool
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    relations: tuple[str, ...] = ()

    def missing_label(self, category: str) -> bool:
        return category not in self.labels


def _values(element: ET.Element, tag: str) -> tuple[str, ...]:
    return tuple(child.get("value", "") for child in element.iter(tag))


def parse_label_config(xml: str, *, origin: str = "label config") -> ReviewConfig:
    """Read the review-relevant controls of a Label Studio config; errors name what is missing."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise OmniptError(f"{origin}: not valid XML ({exc})") from None
    objects = {el.get("name"): el.tag.lower() for el in root.iter() if el.tag in ("Image", "Video")}
    if len(objects) != 1:
        raise OmniptError(f"{origin}: expected exactly one <Image> or <Video> tag, found {len(objects)}")
    ((object_name, object_type),) = objects.items()
    controls = {el.get("name"): el for el in root.iter() if el.get("name") and el.get("toName")}
    box = controls.get(BOX)
    if box is None:
        raise OmniptError(f'{origin}: no control named "{BOX}" (a <RectangleLabels> or <VideoRectangle>)')
    if box.tag == "RectangleLabels":
        box_type, labels = "rectanglelabels", _values(box, "Label")
    elif box.tag == "VideoRectangle":
        box_type = "videorectangle"
        # Video tracks take their labels from a <Labels> control on the same video.
        labels = tuple(
            value
            for el in controls.values()
            if el.tag == "Labels" and el.get("toName") == object_name
            for value in _values(el, "Label")
        )
    else:
        raise OmniptError(
            f'{origin}: control "{BOX}" is a <{box.tag}>, expected RectangleLabels or VideoRectangle'
        )
    if not labels:
        raise OmniptError(f"{origin}: the boxes have no <Label> values")

    def is_text(name: str, per_region: bool) -> bool:
        el = controls.get(name)
        return el is not None and el.tag == "TextArea" and (el.get("perRegion") == "true") == per_region

    attributes = {
        name: _values(el, "Choice")
        for name, el in controls.items()
        if el.tag == "Choices" and el.get("perRegion") == "true"
    }
    relations = tuple(value for el in root.iter("Relations") for value in _values(el, "Relation"))
    return ReviewConfig(
        object_name=object_name,
        object_type=object_type,
        box_type=box_type,
        labels=labels,
        caption=is_text(CAPTION, True),
        summary=is_text(SUMMARY, False),
        sentence=is_text(SENTENCE, False),
        attributes=attributes,
        relations=relations,
    )


def load_label_config(kind: str, path: Path | None = None) -> tuple[str, ReviewConfig]:
    """The XML of ``path`` (default: the kind's config) and its parsed form, checked against the kind."""
    path = Path(path) if path else default_config_path(kind)
    if not path.is_file():
        raise OmniptError(f"{path}: no such label config")
    xml = path.read_text()
    config = parse_label_config(xml, origin=str(path))
    check_config_kind(config, kind, origin=str(path))
    return xml, config


def check_config_kind(config: ReviewConfig, kind: str, *, origin: str) -> None:
    want = "video" if kind in VIDEO_KINDS else "image"
    if config.object_type != want:
        raise OmniptError(
            f"{origin}: kind {kind!r} needs a <{want.title()}> config, not <{config.object_type.title()}>"
        )
    if kind == "expressions" and not config.sentence:
        raise OmniptError(f'{origin}: kind "expressions" needs a <TextArea name="{SENTENCE}">')
    if kind == "interactions" and not config.relations:
        raise OmniptError(f'{origin}: kind "interactions" needs <Relations> with <Relation> values')
