"""Boxes between the store (pixel corners) and Label Studio results (percentages of the image size).

Images: a ``rectanglelabels`` result per box. Videos: a ``videorectangle`` result per track whose
``sequence`` has a keyframe per frame (1-based positions in the video, ``time = (frame - 1) / fps``);
a keyframe with ``enabled: false`` ends the track's life until its next keyframe, and frames between an
enabled keyframe and the next one are interpolated linearly, as Label Studio's editor draws them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Corners = tuple[float, float, float, float]

# Two boxes closer than this (pixels, every corner) count as the same box: percentages round-trip floats.
SAME_BOX_PX = 0.01


@dataclass
class Region:
    """One region of a result list: a box (image) or a track (video), plus its per-region fields."""

    region_id: str
    label: str | None
    boxes: dict[int, Corners] = field(default_factory=dict)  # video position (1-based) or 1 -> corners
    caption: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class ParsedResult:
    regions: dict[str, Region] = field(default_factory=dict)
    relations: set[tuple[str, str, str]] = field(default_factory=set)  # (from region, to region, label)
    texts: dict[str, str] = field(default_factory=dict)  # non-per-region text areas by control name


def to_percent(box: Corners, width: float, height: float) -> dict[str, float]:
    x1, y1, x2, y2 = box
    return {
        "x": x1 / width * 100.0,
        "y": y1 / height * 100.0,
        "width": (x2 - x1) / width * 100.0,
        "height": (y2 - y1) / height * 100.0,
    }


def from_percent(value: dict[str, Any], width: float, height: float) -> Corners:
    """Pixel corners of a Label Studio rectangle; a rotated one becomes its axis-aligned bounding box."""
    x, y = value["x"] * width / 100.0, value["y"] * height / 100.0
    w, h = value["width"] * width / 100.0, value["height"] * height / 100.0
    angle = float(value.get("rotation") or 0.0)
    if angle % 360 == 0:
        return (x, y, x + w, y + h)
    # Label Studio rotates clockwise (y points down) around the top-left corner.
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    xs = [x + dx * cos - dy * sin for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
    ys = [y + dx * sin + dy * cos for dx, dy in ((0, 0), (w, 0), (w, h), (0, h))]
    return (min(xs), min(ys), max(xs), max(ys))


def same_box(a: Corners, b: Corners) -> bool:
    return all(abs(p - q) <= SAME_BOX_PX for p, q in zip(a, b, strict=True))


def rectangle_result(
    region_id: str, box: Corners, label: str, *, control: str, to_name: str, width: int, height: int
) -> dict[str, Any]:
    return {
        "id": region_id,
        "from_name": control,
        "to_name": to_name,
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {**to_percent(box, width, height), "rotation": 0, "rectanglelabels": [label]},
    }


def keyframes(boxes: dict[int, Corners], *, width: int, height: int, fps: float) -> list[dict[str, Any]]:
    """A keyframe per box; the last frame of each run of consecutive frames switches the track off, so the
    editor neither interpolates across a gap nor keeps the box alive after the track ends."""
    positions = sorted(boxes)
    frames = []
    for i, position in enumerate(positions):
        run_continues = i + 1 < len(positions) and positions[i + 1] == position + 1
        frames.append(
            {
                "frame": position,
                "enabled": run_continues,
                "rotation": 0,
                **to_percent(boxes[position], width, height),
                "time": (position - 1) / fps,
            }
        )
    return frames


def video_result(
    region_id: str,
    boxes: dict[int, Corners],
    label: str,
    *,
    control: str,
    to_name: str,
    width: int,
    height: int,
    fps: float,
    frames_count: int,
) -> dict[str, Any]:
    return {
        "id": region_id,
        "from_name": control,
        "to_name": to_name,
        "type": "videorectangle",
        "value": {
            "framesCount": frames_count,
            "duration": frames_count / fps,
            "sequence": keyframes(boxes, width=width, height=height, fps=fps),
            "labels": [label],
        },
    }


def expand_keyframes(
    sequence: Iterable[dict[str, Any]], *, frames_count: int, width: float, height: float
) -> dict[int, Corners]:
    """Per-frame pixel boxes of a video track, interpolated between keyframes like the editor does."""
    keys = sorted(sequence, key=lambda k: k["frame"])
    boxes: dict[int, Corners] = {}
    for i, key in enumerate(keys):
        start = int(key["frame"])
        if 1 <= start <= frames_count:
            boxes[start] = from_percent(key, width, height)
        if not key.get("enabled", True):
            continue
        following = keys[i + 1] if i + 1 < len(keys) else None
        end = int(following["frame"]) if following else frames_count + 1
        for position in range(start + 1, min(end, frames_count + 1)):
            if following is None:
                boxes[position] = from_percent(key, width, height)
                continue
            t = (position - start) / (end - start)
            mixed = {
                name: key.get(name, 0.0) + (following.get(name, 0.0) - key.get(name, 0.0)) * t
                for name in ("x", "y", "width", "height", "rotation")
            }
            boxes[position] = from_percent(mixed, width, height)
    return boxes
