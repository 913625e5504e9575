"""The answer grammar: one text form for boxes, tracks, views and semantics, rendered and parsed.

Builders render ground-truth answers with :func:`render_answer`; the reward functions, the pre-labeler
and the viewers read model output with :func:`parse_answer`. Both work on one structure,
:class:`Answer`: views -> frames -> boxes, plus captions, interactions, a summary and a scalar answer.

Coordinates
-----------
A :class:`Box` in an :class:`Answer` holds corners ``x1, y1, x2, y2`` in pixels of the image *the model
sees* (the processor's resized image, see :func:`smart_resize` and :func:`model_image_size`); the
canonical store keeps original-image pixels, so builders call :func:`scale_answer` first. ``image_size``
is always ``(width, height)`` of that resized image. Rendering clips every box to the image (a model
cannot see outside it) and rounds to the format's integer grid; :func:`quantize_answer` applies exactly
that clipping and rounding, so a reward's ground truth can equal what the rendered text encodes.

Box formats (``box_format``)
----------------------------
``omnipt`` (default), the paper's ``<bbox>x,y,w,h</bbox>`` (top-left, width, height, integers in resized
pixels), one box per line, the track id before it::

    Frame 1:
    <id>3</id><bbox>12,40,30,88</bbox>
    <id>5</id><bbox>200,35,41,120</bbox>
    Frame 2:
    <id>3</id><bbox>14,41,30,87</bbox>

``qwen2.5``, Qwen2.5-VL's native JSON in a fenced block per frame, corners in absolute resized pixels::

    Frame 1:
    ```json
    [
    \t{"bbox_2d": [12, 40, 42, 128], "id": 3, "label": "person"}
    ]
    ```

``qwen3``, the same JSON on a 0-1000 relative scale: ``q = round(v / size * 1000)`` (half up), read back
as ``v = q * size / 1000``::

    ```json
    [
    \t{"bbox_2d": [19, 83, 66, 267], "id": 3, "label": "person"}
    ]
    ```

Layout of an answer
-------------------
- A single-image answer has no header. A clip answer has a ``Frame <n>:`` line per frame, followed by
  that frame's boxes; an empty frame keeps its header. ``<n>`` is whatever the builder numbers frames
  with (1-based positions in the sample are recommended); rewards pair frames by ``(view, n)``.
- Multi-view answers (cross-view referring) group frames under ``View <name>:`` lines.
- An empty single-image answer is ``None`` (omnipt) or an empty list ``[]`` in the fence (qwen formats).
- Semantic lines follow the boxes: ``Caption <id>: <text>``, ``Interaction <id>-<id>: <label>[, ...]``,
  ``Summary: <text>``; a counting or yes/no answer is ``Answer: <value>`` (see :func:`render_count`,
  :func:`render_yes_no`, :func:`parse_count`, :func:`parse_yes_no`).

A semantic MOT answer in ``omnipt``::

    Frame 1:
    <id>1</id><bbox>10,20,30,60</bbox>
    <id>2</id><bbox>50,20,30,60</bbox>
    Caption 1: a woman in a red coat
    Caption 2: a man with a bag
    Interaction 1-2: talk.v.01, walk.v.01
    Summary: two people talk while walking

Parsing (never raises)
----------------------
Closed ``<think>...</think>`` blocks are dropped; when an ``<answer>`` tag is present only its content
is read. Lines are classified as headers, semantic lines or body; bodies are scanned for box fragments
of every known layout:

- ``<bbox>a,b,c,d</bbox>`` (optionally ``<id>n</id>`` before it): read as ``x,y,w,h`` (layout
  ``omnipt``). It is read as corners instead (layout ``bbox_corners``, another format) when the content
  is ``(x1,y1),(x2,y2)`` or ``[x1,y1,x2,y2]``, or when, with ``image_size`` known, the ``x,y,w,h``
  reading leaves the image (``a + c > W`` or ``b + d > H``) while the corner reading fits it
  (``a < c <= W`` and ``b < d <= H``). Rendered boxes are clipped, so a rendered box always fits.
- ``{"bbox_2d": [x1, y1, x2, y2], "id": n, "label": s}`` (layout ``qwen_json``): corners, absolute for
  ``omnipt``/``qwen2.5``, relative 0-1000 for ``qwen3``. Objects keyed ``bbox`` or ``box`` are layout
  ``json_bbox``, read the same way.
- ``<box>(x1,y1),(x2,y2)</box>`` (Qwen-VL v1, layout ``qwen_vl_box``): corners, relative 0-1000.
- a bare list of four numbers ``[x1, y1, x2, y2]`` (layout ``bare_list``): corners, on the JSON scale of
  the requested format.

``format_status`` is ``"exact"`` when at least one box was read, every box is in the requested layout
(``omnipt`` for ``omnipt``, ``qwen_json`` for the qwen formats) with unsigned integer literals, and no
box fragment failed to parse; also ``"exact"`` for a well-formed empty answer (no box fragment, no stray
text, and the format's empty marker ``None``/``[]`` or, for ``omnipt``, frame headers). It is
``"other"`` when any box is in another layout, uses decimals or signs, or a box fragment could not be
read (``unparsed`` counts those: unreadable tag contents, non-finite or out-of-range numbers, truncated
tags); it is ``"none"`` when no box fragment is found. Relative coordinates stay on the 0-1000 scale
when ``image_size`` is missing or invalid.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

FormatStatus = Literal["exact", "other", "none"]

BOX_FORMATS: tuple[str, ...] = ("omnipt", "qwen2.5", "qwen3")
DEFAULT_BOX_FORMAT = "omnipt"
RELATIVE_SCALE = 1000
DEFAULT_LABEL = "person"

# Parsing bounds: text beyond MAX_TEXT_CHARS is ignored; a coordinate beyond MAX_COORDINATE in absolute
# value is unreadable (no image is that large, and it keeps areas finite).
MAX_TEXT_CHARS = 4_000_000
MAX_COORDINATE = 1e7
MAX_IMAGE_SIDE = 1_000_000

_FORMAT_ALIASES = {
    "omnipt": "omnipt",
    "xywh": "omnipt",
    "qwen2.5": "qwen2.5",
    "qwen2.5-vl": "qwen2.5",
    "qwen2_5": "qwen2.5",
    "qwen25": "qwen2.5",
    "qwen3": "qwen3",
    "qwen3-vl": "qwen3",
}
_EXACT_LAYOUT = {"omnipt": "omnipt", "qwen2.5": "qwen_json", "qwen3": "qwen_json"}
_EMPTY_MARKER = {"omnipt": "none", "qwen2.5": "[]", "qwen3": "[]"}


# --------------------------------------------------------------------------------------------------
# The structure
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Box:
    """One person box: corners in resized-image pixels, an optional track id and a label."""

    x1: float
    y1: float
    x2: float
    y2: float
    track_id: int | None = None
    label: str = DEFAULT_LABEL

    @property
    def corners(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


FrameKey = tuple[str | None, int | None]


@dataclass(slots=True)
class Frame:
    """The boxes of one image; ``index`` is None for a single-image answer (no ``Frame`` header)."""

    index: int | None
    boxes: list[Box] = field(default_factory=list)


@dataclass(slots=True)
class View:
    """The frames of one camera view; ``name`` is None when the answer has no ``View`` headers."""

    name: str | None
    frames: list[Frame] = field(default_factory=list)


@dataclass(slots=True)
class Answer:
    """A whole answer: boxes by view and frame, plus semantics and an optional scalar answer."""

    views: list[View] = field(default_factory=list)
    captions: dict[int, str] = field(default_factory=dict)
    interactions: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    summary: str | None = None
    scalar: str | None = None

    @classmethod
    def single_image(cls, boxes: Iterable[Box]) -> Answer:
        """An answer about one image: no headers."""
        return cls(views=[View(None, [Frame(None, list(boxes))])])

    @classmethod
    def from_frames(cls, frames: Mapping[int, Iterable[Box]]) -> Answer:
        """A clip answer, ``{frame number: boxes}`` in the mapping's order."""
        return cls(views=[View(None, _frames_from_mapping(frames))])

    @classmethod
    def from_views(cls, views: Mapping[str, Mapping[int, Iterable[Box]]]) -> Answer:
        """A multi-view answer, ``{view name: {frame number: boxes}}``."""
        return cls(views=[View(name, _frames_from_mapping(frames)) for name, frames in views.items()])

    def frame_items(self) -> Iterator[tuple[FrameKey, list[Box]]]:
        """``((view name, frame index), boxes)`` for every frame, in answer order."""
        for view in self.views:
            for frame in view.frames:
                yield (view.name, frame.index), frame.boxes

    def boxes(self) -> list[Box]:
        """Every box of every frame."""
        return [box for _, boxes in self.frame_items() for box in boxes]

    def map_boxes(self, transform: Callable[[Box], Box]) -> Answer:
        """A copy with ``transform`` applied to every box."""
        views = [
            View(
                view.name, [Frame(frame.index, [transform(b) for b in frame.boxes]) for frame in view.frames]
            )
            for view in self.views
        ]
        return replace(self, views=views, captions=dict(self.captions), interactions=dict(self.interactions))


def _frames_from_mapping(frames: Mapping[int, Iterable[Box]]) -> list[Frame]:
    return [Frame(int(index), list(boxes)) for index, boxes in frames.items()]


@dataclass(slots=True)
class ParsedAnswer:
    """What :func:`parse_answer` read, and how well the text followed the requested format.

    ``unparsed`` counts box fragments that yielded no box; ``stray_lines`` counts non-blank lines that
    are neither grammar nor box; ``layouts`` names the box layouts seen (see the module docstring).
    """

    answer: Answer
    format_status: FormatStatus
    unparsed: int = 0
    stray_lines: int = 0
    layouts: tuple[str, ...] = ()

    @property
    def box_count(self) -> int:
        return len(self.answer.boxes())


def normalize_box_format(box_format: str) -> str:
    """The canonical name of a box format (``omnipt``, ``qwen2.5``, ``qwen3``); raises on others."""
    name = _FORMAT_ALIASES.get(str(box_format).strip().lower())
    if name is None:
        raise ValueError(f"unknown box format {box_format!r} (expected one of {', '.join(BOX_FORMATS)})")
    return name


# --------------------------------------------------------------------------------------------------
# Geometry: scaling, clipping and the formats' integer grids
# --------------------------------------------------------------------------------------------------

Size = tuple[float, float]
BoxLike = Box | Sequence[float]


def scale_boxes(boxes: Iterable[BoxLike], from_size: Size, to_size: Size) -> list[BoxLike]:
    """Map boxes from an image of ``from_size`` (w, h) to ``to_size``: ``x' = x * w_to / w_from``.

    Accepts :class:`Box` objects (returned as boxes) or 4-sequences ``x1, y1, x2, y2`` (returned as
    tuples); the usual call maps original pixels to the model's resized pixels.
    """
    sx, sy = _scale_factors(from_size, to_size)
    return [_scale_one(box, sx, sy) for box in boxes]


def scale_answer(answer: Answer, from_size: Size, to_size: Size) -> Answer:
    """A copy of ``answer`` with every box scaled from ``from_size`` to ``to_size`` (w, h)."""
    sx, sy = _scale_factors(from_size, to_size)
    return answer.map_boxes(lambda box: _scale_one(box, sx, sy))


def _scale_factors(from_size: Size, to_size: Size) -> tuple[float, float]:
    (fw, fh), (tw, th) = from_size, to_size
    if min(fw, fh, tw, th) <= 0:
        raise ValueError(f"image sizes must be positive (got {from_size} -> {to_size})")
    return tw / fw, th / fh


def _scale_one(box: BoxLike, sx: float, sy: float) -> BoxLike:
    if isinstance(box, Box):
        return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy, box.track_id, box.label)
    x1, y1, x2, y2 = box
    return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)


def clip_box(box: Box, image_size: Size | None) -> Box:
    """``box`` clipped to ``[0, W] x [0, H]`` (only to ``>= 0`` without a size), with ``x2 >= x1``."""
    x1, y1, x2, y2 = (max(0.0, v) for v in box.corners)
    if image_size is not None:
        width, height = image_size
        x1, x2 = min(x1, width), min(x2, width)
        y1, y2 = min(y1, height), min(y2, height)
    return Box(x1, y1, max(x1, x2), max(y1, y2), box.track_id, box.label)  # not replace(): hot, and slow


def clip_answer(answer: Answer, image_size: Size, *, drop_empty: bool = True) -> Answer:
    """A copy with boxes clipped to the image; boxes with no area left are dropped if ``drop_empty``."""
    clipped = answer.map_boxes(lambda box: clip_box(box, image_size))
    if drop_empty:
        for _, boxes in clipped.frame_items():
            boxes[:] = [b for b in boxes if b.width > 0 and b.height > 0]
    return clipped


def quantize_answer(answer: Answer, box_format: str, image_size: Size | None) -> Answer:
    """``answer`` as its rendered text encodes it: clipped, rounded to the format's grid, read back.

    ``parse_answer(render_answer(a, f, s), f, s).answer`` equals ``quantize_answer(a, f, s)``.
    """
    fmt = normalize_box_format(box_format)
    size = _render_size(image_size, fmt, answer)
    return answer.map_boxes(lambda box: _box_from_grid(_grid_values(box, fmt, size), fmt, size, box))


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _to_relative(value: float, side: float) -> int:
    return _round_half_up(value / side * RELATIVE_SCALE)


def _from_relative(value: float, side: float) -> float:
    return value * side / RELATIVE_SCALE


def _grid_values(box: Box, fmt: str, size: Size | None) -> tuple[int, int, int, int]:
    """The four integers a format writes for ``box``: xywh (omnipt), corners, or relative corners."""
    x1, y1, x2, y2 = clip_box(box, size).corners
    if fmt == "qwen3":
        assert size is not None
        width, height = size
        return (
            _to_relative(x1, width),
            _to_relative(y1, height),
            _to_relative(x2, width),
            _to_relative(y2, height),
        )
    c1, r1, c2, r2 = (_round_half_up(v) for v in (x1, y1, x2, y2))
    if fmt == "omnipt":
        return (c1, r1, c2 - c1, r2 - r1)
    return (c1, r1, c2, r2)


def _box_from_grid(values: Sequence[float], fmt: str, size: Size | None, template: Box) -> Box:
    a, b, c, d = values
    if fmt == "omnipt":
        corners = (a, b, a + c, b + d)
    elif fmt == "qwen3" and size is not None:
        corners = (
            _from_relative(a, size[0]),
            _from_relative(b, size[1]),
            _from_relative(c, size[0]),
            _from_relative(d, size[1]),
        )
    else:
        corners = (a, b, c, d)
    return replace(template, x1=corners[0], y1=corners[1], x2=corners[2], y2=corners[3])


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


def render_answer(
    answer: Answer, box_format: str = DEFAULT_BOX_FORMAT, image_size: Size | None = None
) -> str:
    """The answer's text in ``box_format`` (see the module docstring); ``image_size`` is (w, h).

    Boxes are clipped to the image and rounded (half up) to the format's integer grid. ``image_size`` is
    required by ``qwen3`` when the answer has boxes. Caption, summary and scalar texts are written on one
    line (whitespace runs collapse to one space). Raises ``ValueError`` on a view name holding ``:`` or
    an interaction label holding ``,`` (they would not parse back).
    """
    fmt = normalize_box_format(box_format)
    size = _render_size(image_size, fmt, answer)
    lines: list[str] = []
    for view in answer.views:
        if view.name is not None:
            lines.append(f"View {_checked_view_name(view.name)}:")
        for frame in view.frames:
            if frame.index is not None:
                lines.append(f"Frame {int(frame.index)}:")
            lines.extend(_render_boxes(frame, fmt, size))
    lines.extend(_render_semantics(answer))
    return "\n".join(lines)


def _render_size(image_size: Size | None, fmt: str, answer: Answer) -> Size | None:
    if image_size is None:
        if fmt == "qwen3" and answer.boxes():
            raise ValueError("the qwen3 box format needs image_size=(width, height) to write relative boxes")
        return None
    width, height = image_size
    if not (width > 0 and height > 0):
        raise ValueError(f"image_size must be positive (got {image_size})")
    return (width, height)


def _checked_view_name(name: str) -> str:
    text = _one_line(name)
    if not text or ":" in text:
        raise ValueError(f"view name {name!r} must be non-empty and hold no ':'")
    return text


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _render_boxes(frame: Frame, fmt: str, size: Size | None) -> list[str]:
    if fmt == "omnipt":
        if not frame.boxes:
            return ["None"] if frame.index is None else []
        return [_render_omnipt_box(box, size) for box in frame.boxes]
    return _render_json_boxes(frame.boxes, fmt, size)


def _render_omnipt_box(box: Box, size: Size | None) -> str:
    x, y, w, h = _grid_values(box, "omnipt", size)
    prefix = f"<id>{int(box.track_id)}</id>" if box.track_id is not None else ""
    return f"{prefix}<bbox>{x},{y},{w},{h}</bbox>"


def _render_json_boxes(boxes: Sequence[Box], fmt: str, size: Size | None) -> list[str]:
    if not boxes:
        return ["```json", "[]", "```"]
    objects = [json.dumps(_json_object(box, fmt, size), ensure_ascii=False) for box in boxes]
    body = [f"\t{text}," for text in objects[:-1]] + [f"\t{objects[-1]}"]
    return ["```json", "[", *body, "]", "```"]


def _json_object(box: Box, fmt: str, size: Size | None) -> dict[str, object]:
    obj: dict[str, object] = {"bbox_2d": list(_grid_values(box, fmt, size))}
    if box.track_id is not None:
        obj["id"] = int(box.track_id)
    obj["label"] = box.label
    return obj


def _render_semantics(answer: Answer) -> list[str]:
    lines = [f"Caption {int(tid)}: {_one_line(text)}" for tid, text in sorted(answer.captions.items())]
    for (source, target), labels in sorted(answer.interactions.items()):
        lines.append(f"Interaction {int(source)}-{int(target)}: {', '.join(_checked_labels(labels))}")
    if answer.summary is not None:
        lines.append(f"Summary: {_one_line(answer.summary)}")
    if answer.scalar is not None:
        lines.append(f"Answer: {_one_line(answer.scalar)}")
    return lines


def _checked_labels(labels: Iterable[str]) -> list[str]:
    cleaned = [_one_line(label) for label in labels]
    for label in cleaned:
        if not label or "," in label:
            raise ValueError(f"interaction label {label!r} must be non-empty and hold no ','")
    return cleaned


def render_count(count: int) -> str:
    """A counting answer: ``Answer: 7``."""
    return f"Answer: {int(count)}"


def render_yes_no(value: bool) -> str:
    """A yes/no answer: ``Answer: yes`` or ``Answer: no``."""
    return f"Answer: {'yes' if value else 'no'}"


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

_NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_NUMBER = re.compile(_NUM)
_PLAIN_INT = re.compile(r"[0-9]+")
_PLAIN4 = re.compile(rf"\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*")
_BRACKET4 = re.compile(rf"\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]\s*")
_PAIRS = re.compile(rf"\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*(?:,\s*)?\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*")
_ID = re.compile(r"\s*([0-9]{1,18})\s*")

_FRAGMENT = re.compile(
    r"(?P<omnipt>(?:<id>(?P<id>[^<>]{0,40})</id>\s{0,40})?<bbox>(?P<bbox>[^<>]{0,300})</bbox>)"
    r"|(?P<v1>(?:<ref>[^<>]{0,300}</ref>\s{0,40})?<box>(?P<box>[^<>]{0,300})</box>)"
    r"|(?P<json>\{[^{}<>]{0,2000}\})"
    r"|(?P<list>\[[^\[\]{}<>]{0,400}\])",
    re.IGNORECASE,
)
_BROKEN_BOX = re.compile(r"<bbox|<box>|bbox_2d", re.IGNORECASE)
_JSON_BOX_KEYS = (("bbox_2d", "qwen_json"), ("bbox", "json_bbox"), ("box", "json_bbox"))
_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_PUNCTUATION = re.compile(r"[\[\]{},;]+")

_THINK_TAG = re.compile(r"</?think>", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"</?answer>", re.IGNORECASE)

# Header prefixes, keyed by the first letter of the stripped line; adjacent character classes are
# disjoint so matching stays linear on any line. The text after the match is the header's tail.
_HEADERS: dict[str, tuple[str, re.Pattern[str]]] = {
    "v": ("view", re.compile(r"[ \t]*view[ \t]+", re.IGNORECASE)),
    "f": ("frame", re.compile(r"[ \t]*frame[ \t]+([0-9]{1,9})[ \t]*:", re.IGNORECASE)),
    "c": ("caption", re.compile(r"[ \t]*caption[ \t]+([0-9]{1,18})[ \t]*:", re.IGNORECASE)),
    "i": (
        "interaction",
        re.compile(r"[ \t]*interaction[ \t]+([0-9]{1,18})[ \t]*-[ \t]*([0-9]{1,18})[ \t]*:", re.IGNORECASE),
    ),
    "s": ("summary", re.compile(r"[ \t]*summary[ \t]*:", re.IGNORECASE)),
    "a": ("scalar", re.compile(r"[ \t]*answer[ \t]*:", re.IGNORECASE)),
}
_MAX_VIEW_NAME = 200


@dataclass(frozen=True, slots=True)
class _Header:
    kind: str
    groups: tuple[str, ...]
    tail: str


def answer_region(text: str) -> str:
    """The part of a completion that holds the answer: ``<think>`` blocks dropped, ``<answer>`` kept.

    Closed ``<think>...</think>`` blocks are removed (an unclosed one is kept); if an ``<answer>`` tag
    remains, the content of the last one (to its ``</answer>`` or the end of the text) is returned,
    else the whole remaining text.
    """
    text = _drop_think_blocks(text[:MAX_TEXT_CHARS])
    opening = None
    for match in _ANSWER_TAG.finditer(text):
        if match.group().lower() == "<answer>":
            opening = match
    if opening is None:
        return text
    closing = _ANSWER_TAG.search(text, opening.end())
    return text[opening.end() : closing.start() if closing else len(text)]


def _drop_think_blocks(text: str) -> str:
    pieces: list[str] = []
    position, open_at = 0, None
    for match in _THINK_TAG.finditer(text):
        if match.group().lower() == "<think>":
            open_at = match.start() if open_at is None else open_at
        elif open_at is not None:
            pieces.append(text[position:open_at])
            position, open_at = match.end(), None
    pieces.append(text[position:])
    return "".join(pieces)


def parse_answer(
    text: str, box_format: str = DEFAULT_BOX_FORMAT, image_size: Size | None = None
) -> ParsedAnswer:
    """Read an answer in ``box_format`` from any text; never raises on the text.

    Boxes come back as corners in resized-image pixels (relative formats are mapped with
    ``image_size`` = (w, h) when it is valid). See the module docstring for how layouts are told apart
    and how ``format_status`` is decided. Raises ``ValueError`` only for an unknown ``box_format``.
    """
    fmt = normalize_box_format(box_format)
    parser = _Parser(fmt, _valid_size(image_size))
    parser.feed(answer_region(text if isinstance(text, str) else ""))
    return parser.result()


def _valid_size(image_size: Any) -> Size | None:
    try:
        width, height = (float(v) for v in image_size)
    except (TypeError, ValueError, OverflowError):
        return None
    if 0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE:
        return (width, height)
    return None


@dataclass(slots=True)
class _ReadBox:
    box: Box
    layout: str
    plain: bool


def _to_number(literal: str) -> float | None:
    value = float(literal)
    return value if math.isfinite(value) and abs(value) <= MAX_COORDINATE else None


def _numbers(literals: Sequence[str]) -> tuple[list[float] | None, bool]:
    """Finite, in-range values of number literals (None if any is not), and whether all are plain."""
    values = [v for v in (_to_number(lit) for lit in literals) if v is not None]
    if len(values) != len(literals):
        return None, False
    return values, all(_PLAIN_INT.fullmatch(lit) is not None for lit in literals)


def _json_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_COORDINATE else None


def _json_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 10**18 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    if isinstance(value, str) and _ID.fullmatch(value):
        return int(value)
    return None


class _Parser:
    """A line-oriented reader: headers and semantic lines switch state, body lines are scanned for boxes."""

    def __init__(self, fmt: str, size: Size | None):
        self.fmt = fmt
        self.size = size
        self.answer = Answer()
        self.view: View | None = None
        self.frame: Frame | None = None
        self.body: list[str] = []
        self.read: list[_ReadBox] = []
        self.unparsed = 0
        self.stray_lines = 0
        self.frame_headers = 0
        self.exact_empty_marker = False

    # -- lines --------------------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        for line in text.splitlines():
            header = _match_header(line)
            if header is None:
                self.body.append(line)
                continue
            self.flush_body()
            self.on_header(header)
        self.flush_body()

    def on_header(self, header: _Header) -> None:
        groups = header.groups
        if header.kind == "view":
            self.view = View(groups[0])
            self.answer.views.append(self.view)
            self.frame = None
            self.body.append(header.tail)
        elif header.kind == "frame":
            self.frame = Frame(int(groups[0]))
            self.current_view().frames.append(self.frame)
            self.frame_headers += 1
            self.body.append(header.tail)
        elif header.kind == "caption":
            self.answer.captions[int(groups[0])] = header.tail.strip()
        elif header.kind == "interaction":
            labels = [label.strip() for label in header.tail.split(",") if label.strip()]
            self.answer.interactions[(int(groups[0]), int(groups[1]))] = labels
        elif header.kind == "summary":
            self.answer.summary = header.tail.strip()
        else:
            self.answer.scalar = header.tail.strip()

    def current_view(self) -> View:
        if self.view is None:
            self.view = View(None)
            self.answer.views.append(self.view)
        return self.view

    def current_frame(self) -> Frame:
        if self.frame is None:
            self.frame = Frame(None)
            self.current_view().frames.append(self.frame)
        return self.frame

    # -- bodies -------------------------------------------------------------------------------------

    def flush_body(self) -> None:
        if not any(line.strip() for line in self.body):
            self.body = []
            return
        chunk, self.body = "\n".join(self.body), []
        pieces: list[str] = []
        position = 0
        for match in _FRAGMENT.finditer(chunk):
            consumed = self.on_fragment(match)
            if consumed:
                pieces.append(chunk[position : match.start()])
                pieces.append(" " * (match.end() - match.start()))
                position = match.end()
        pieces.append(chunk[position:])
        self.scan_residual("".join(pieces))

    def on_fragment(self, match: re.Match[str]) -> bool:
        """Read one fragment; True when it was box-like (read or counted as unparsed)."""
        if match.group("omnipt") is not None:
            read = self.read_bbox_tag(match.group("bbox"), match.group("id"))
        elif match.group("v1") is not None:
            read = self.read_v1_box(match.group("box"))
        elif match.group("json") is not None:
            read = self.read_json_object(match.group("json"))
        else:
            read = self.read_bare_list(match.group("list"))
        if read is None:
            return False
        if isinstance(read, _ReadBox):
            self.read.append(read)
            self.current_frame().boxes.append(read.box)
        else:
            self.unparsed += 1
        return True

    def scan_residual(self, residual: str) -> None:
        """Count truncated box tags and stray lines in what is left once fragments are blanked."""
        for line in residual.split("\n"):
            compact = "".join(line.split())
            if compact.lower() in ("none", "[]"):
                self.current_frame()
                self.exact_empty_marker |= compact.lower() == _EMPTY_MARKER[self.fmt]
            elif not compact or _FENCE.fullmatch(compact) or _PUNCTUATION.fullmatch(compact):
                continue
            elif _BROKEN_BOX.search(compact):
                self.unparsed += len(_BROKEN_BOX.findall(compact))
            else:
                self.stray_lines += 1

    # -- fragments ----------------------------------------------------------------------------------
    # Each reader returns a _ReadBox, False (box-like but unreadable) or None (not a box fragment).

    def read_bbox_tag(self, content: str, id_text: str | None) -> _ReadBox | bool:
        track_id = _parse_id(id_text)
        plain = _PLAIN4.fullmatch(content)
        if plain:
            values, is_plain = _numbers(plain.groups())
            if values is None:
                return False
            if self.looks_like_corners(values):
                return self.make(values, "bbox_corners", is_plain, absolute=True, track_id=track_id)
            return self.make_xywh(values, is_plain, track_id)
        decorated = _PAIRS.fullmatch(content) or _BRACKET4.fullmatch(content)
        if decorated:
            values, is_plain = _numbers(decorated.groups())
            if values is None:
                return False
            return self.make(values, "bbox_corners", is_plain, absolute=True, track_id=track_id)
        return False

    def read_v1_box(self, content: str) -> _ReadBox | bool:
        pairs = _PAIRS.fullmatch(content)
        if not pairs:
            return False
        values, is_plain = _numbers(pairs.groups())
        if values is None:
            return False
        return self.make(values, "qwen_vl_box", is_plain, absolute=False)

    def read_json_object(self, text: str) -> _ReadBox | bool | None:
        if "box" not in text.lower():
            return None
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return False
        if not isinstance(obj, dict):
            return False
        key, layout = next(((k, name) for k, name in _JSON_BOX_KEYS if k in obj), (None, ""))
        if key is None:
            return None
        coordinates = obj[key]
        if not isinstance(coordinates, list) or len(coordinates) != 4:
            return False
        values = [v for v in (_json_number(c) for c in coordinates) if v is not None]
        if len(values) != 4:
            return False
        is_plain = all(isinstance(v, int) and v >= 0 for v in coordinates)
        label = obj.get("label")
        return self.make(
            values,
            layout,
            is_plain,
            absolute=self.fmt != "qwen3",
            track_id=_json_id(obj.get("id")),
            label=label[:200] if isinstance(label, str) else DEFAULT_LABEL,
        )

    def read_bare_list(self, text: str) -> _ReadBox | bool | None:
        items = [item.strip() for item in text[1:-1].split(",")]
        if len(items) != 4 or not all(_NUMBER.fullmatch(item) for item in items):
            return None
        values, is_plain = _numbers(items)
        if values is None:
            return False
        return self.make(values, "bare_list", is_plain, absolute=self.fmt != "qwen3")

    # -- boxes --------------------------------------------------------------------------------------

    def looks_like_corners(self, values: Sequence[float]) -> bool:
        """Whether ``a,b,c,d`` in ``<bbox>`` fits the image only when read as corners."""
        if self.size is None:
            return False
        a, b, c, d = values
        width, height = self.size
        xywh_leaves = a + c > width or b + d > height
        corners_fit = a < c <= width and b < d <= height
        return xywh_leaves and corners_fit

    def make_xywh(self, values: Sequence[float], plain: bool, track_id: int | None) -> _ReadBox:
        x, y, w, h = values
        return _ReadBox(Box(x, y, x + w, y + h, track_id), "omnipt", plain)

    def make(
        self,
        values: Sequence[float],
        layout: str,
        plain: bool,
        *,
        absolute: bool,
        track_id: int | None = None,
        label: str = DEFAULT_LABEL,
    ) -> _ReadBox:
        x1, y1, x2, y2 = values
        if not absolute and self.size is not None:
            width, height = self.size
            x1, x2 = _from_relative(x1, width), _from_relative(x2, width)
            y1, y2 = _from_relative(y1, height), _from_relative(y2, height)
        return _ReadBox(Box(x1, y1, x2, y2, track_id, label), layout, plain)

    # -- result -------------------------------------------------------------------------------------

    def result(self) -> ParsedAnswer:
        layouts = {read.layout for read in self.read}
        if any(not read.plain for read in self.read):
            layouts.add("loose_numbers")
        return ParsedAnswer(
            answer=self.answer,
            format_status=self.status(),
            unparsed=self.unparsed,
            stray_lines=self.stray_lines,
            layouts=tuple(sorted(layouts)),
        )

    def status(self) -> FormatStatus:
        exact_layout = _EXACT_LAYOUT[self.fmt]
        if self.unparsed or any(read.layout != exact_layout or not read.plain for read in self.read):
            return "other"
        if self.read:
            return "exact"
        well_formed_empty = self.exact_empty_marker or (self.fmt == "omnipt" and self.frame_headers > 0)
        return "exact" if well_formed_empty and self.stray_lines == 0 else "none"


def _match_header(line: str) -> _Header | None:
    entry = _HEADERS.get(line.lstrip()[:1].lower())
    if entry is None:
        return None
    kind, pattern = entry
    match = pattern.match(line)
    if match is None:
        return None
    tail = line[match.end() :]
    if kind != "view":
        return _Header(kind, match.groups(), tail)
    name, colon, rest = tail.partition(":")
    if not colon or len(name) > _MAX_VIEW_NAME or not name.strip():
        return None
    return _Header(kind, (name.strip(),), rest)


def _parse_id(text: str | None) -> int | None:
    if text is None:
        return None
    match = _ID.fullmatch(text)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------------------
# Scalar answers
# --------------------------------------------------------------------------------------------------

_SCALAR_LINE = re.compile(r"^[ \t]*answer[ \t]*:([^\n]*)", re.IGNORECASE | re.MULTILINE)
_SHORT_ANSWER_CHARS = 32


def parse_scalar(text: str) -> str | None:
    """The value of the last ``Answer: <value>`` line, or the whole text when it is short and bare."""
    region = answer_region(text if isinstance(text, str) else "")
    lines = _SCALAR_LINE.findall(region)
    if lines:
        return lines[-1].strip()
    bare = region.strip()
    return bare if 0 < len(bare) <= _SHORT_ANSWER_CHARS and "\n" not in bare else None


def parse_count(text: str) -> int | None:
    """The integer of a counting answer (``Answer: 7`` -> 7), None when there is none."""
    value = (parse_scalar(text) or "").strip()
    match = re.fullmatch(r"\+?([0-9]{1,9})\.?", value)
    return int(match.group(1)) if match else None


def parse_yes_no(text: str) -> bool | None:
    """True for ``Answer: yes``, False for ``Answer: no`` (any case, trailing period), else None."""
    value = (parse_scalar(text) or "").strip().rstrip(".!").strip().lower()
    return {"yes": True, "no": False}.get(value)


# --------------------------------------------------------------------------------------------------
# Serialization (solutions, JSONL)
# --------------------------------------------------------------------------------------------------


def answer_to_dict(answer: Answer) -> dict[str, object]:
    """A JSON- and Arrow-friendly dict: lists of records instead of dicts keyed by ids."""
    return {
        "views": [
            {
                "name": view.name,
                "frames": [
                    {"index": frame.index, "boxes": [_box_to_dict(b) for b in frame.boxes]}
                    for frame in view.frames
                ],
            }
            for view in answer.views
        ],
        "captions": [{"id": tid, "text": text} for tid, text in sorted(answer.captions.items())],
        "interactions": [
            {"source": s, "target": t, "labels": list(labels)}
            for (s, t), labels in sorted(answer.interactions.items())
        ],
        "summary": answer.summary,
        "scalar": answer.scalar,
    }


def answer_from_dict(data: Mapping[str, Any]) -> Answer:
    """The inverse of :func:`answer_to_dict`; missing or null collections read as empty."""
    views = [
        View(view.get("name"), [_frame_from_dict(f) for f in view.get("frames") or []])
        for view in data.get("views") or []
    ]
    captions = {int(c["id"]): str(c["text"]) for c in data.get("captions") or []}
    interactions = {
        (int(i["source"]), int(i["target"])): [str(label) for label in i.get("labels") or []]
        for i in data.get("interactions") or []
    }
    return Answer(
        views=views,
        captions=captions,
        interactions=interactions,
        summary=_optional_text(data.get("summary")),
        scalar=_optional_text(data.get("scalar")),
    )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _frame_from_dict(data: Mapping[str, Any]) -> Frame:
    index = data.get("index")
    return Frame(None if index is None else int(index), [_box_from_dict(b) for b in data.get("boxes") or []])


def _box_to_dict(box: Box) -> dict[str, object]:
    return {"bbox": [box.x1, box.y1, box.x2, box.y2], "id": box.track_id, "label": box.label}


def _box_from_dict(data: Mapping[str, Any]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in data["bbox"])
    track_id = data.get("id")
    label = data.get("label") or DEFAULT_LABEL
    return Box(x1, y1, x2, y2, None if track_id is None else int(track_id), str(label))


# --------------------------------------------------------------------------------------------------
# The processors' resize rule
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessorPreset:
    """A Qwen-VL image processor's resize parameters: sides are multiples of ``patch * merge``."""

    patch_size: int
    merge_size: int
    min_pixels: int
    max_pixels: int

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


# qwen2.5-vl: 14-pixel patches merged 2x2 (factor 28), 4 to 16384 merged tokens per image, the values
# of Qwen2.5-VL's preprocessor_config (3136, 12845056). qwen3-vl: 16-pixel patches merged 2x2 (factor 32),
# its preprocessor_config's shortest_edge/longest_edge pixel budgets (65536, 16777216).
PROCESSOR_PRESETS: dict[str, ProcessorPreset] = {
    "qwen2.5-vl": ProcessorPreset(
        patch_size=14, merge_size=2, min_pixels=4 * 28 * 28, max_pixels=16384 * 28 * 28
    ),
    "qwen3-vl": ProcessorPreset(
        patch_size=16, merge_size=2, min_pixels=64 * 32 * 32, max_pixels=16384 * 32 * 32
    ),
}
MAX_ASPECT_RATIO = 200


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = 4 * 28 * 28,
    max_pixels: int = 16384 * 28 * 28,
) -> tuple[int, int]:
    """The (height, width) a Qwen-VL processor resizes an image to.

    Each side is rounded to the nearest multiple of ``factor`` (at least ``factor``); if the area then
    exceeds ``max_pixels``, both sides shrink by ``beta = sqrt(h * w / max_pixels)`` and round down to a
    multiple; if it is below ``min_pixels``, both grow by ``beta = sqrt(min_pixels / (h * w))`` and round
    up. The aspect ratio is kept within rounding; ratios above 200 are rejected (``ValueError``).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image sides must be positive (got height={height}, width={width})")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio above {MAX_ASPECT_RATIO} (height={height}, width={width})")
    resized_h = max(factor, round(height / factor) * factor)
    resized_w = max(factor, round(width / factor) * factor)
    if resized_h * resized_w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        resized_h = max(factor, math.floor(height / beta / factor) * factor)
        resized_w = max(factor, math.floor(width / beta / factor) * factor)
    elif resized_h * resized_w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        resized_h = math.ceil(height * beta / factor) * factor
        resized_w = math.ceil(width * beta / factor) * factor
    return resized_h, resized_w


def model_image_size(
    image_size: tuple[int, int],
    processor: str = "qwen2.5-vl",
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """The (width, height) a preset processor feeds the model for an image of ``image_size`` (w, h)."""
    if processor not in PROCESSOR_PRESETS:
        raise ValueError(f"unknown processor {processor!r} (expected one of {', '.join(PROCESSOR_PRESETS)})")
    preset = PROCESSOR_PRESETS[processor]
    width, height = image_size
    resized_h, resized_w = smart_resize(
        height,
        width,
        factor=preset.factor,
        min_pixels=preset.min_pixels if min_pixels is None else min_pixels,
        max_pixels=preset.max_pixels if max_pixels is None else max_pixels,
    )
    return resized_w, resized_h
