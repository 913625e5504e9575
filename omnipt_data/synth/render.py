"""Draw the synthetic world's frames: a plaza, then people far to near (so nearer people occlude)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from omnipt_data.synth.world import COLOURS, Camera, Scene

SKIN = (224, 172, 140)
JPEG_QUALITY = 88


def _background(camera: Camera, scene_index: int, ramp: float = 0.0) -> Image.Image:
    height, width = camera.height, camera.width
    # Horizon: the image row of a ground point far ahead of the camera.
    ahead = camera.rotation[2] * np.array([1.0, 0.0, 1.0])
    far = camera.position * np.array([1.0, 0.0, 1.0]) + 1e4 * ahead / np.linalg.norm(ahead)
    pixels, _ = camera.project(far[None, :])
    horizon = int(np.clip(np.nan_to_num(pixels[0, 1], nan=height / 3), 0, height))
    y = np.arange(height, dtype=np.float32)[:, None]
    sky = np.array([150, 185, 220], np.float32) * (1 - 0.3 * y / max(horizon, 1))
    ground_tint = np.array([110 + 10 * (scene_index % 3), 110, 100], np.float32)
    ground = ground_tint * (0.8 + 0.3 * (y - horizon) / max(height - horizon, 1))
    rows = np.where(y < horizon, sky, ground)
    image = np.broadcast_to(rows[:, None, :], (height, width, 3))
    if ramp:
        # Bluish on the left to reddish on the right: where a patch lies shows in its own pixels.
        x = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :, None]
        image = image + ramp * x * np.array([90.0, 0.0, -90.0], np.float32)
    return Image.fromarray(np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8)))


def _draw_person(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], upper: str, lower: str, bag: str
) -> None:
    x, y, w, h = box
    head_h = max(1, round(h * 0.13))
    head_w = max(1, round(w * 0.45))
    hx = x + (w - head_w) // 2
    draw.ellipse([hx, y, hx + head_w, y + head_h], fill=SKIN)
    torso_top, torso_bottom = y + head_h, y + round(h * 0.55)
    draw.rectangle([x + round(w * 0.1), torso_top, x + w - round(w * 0.1), torso_bottom], fill=COLOURS[upper])
    leg_w = max(1, round(w * 0.3))
    draw.rectangle(
        [x + round(w * 0.15), torso_bottom, x + round(w * 0.15) + leg_w, y + h], fill=COLOURS[lower]
    )
    draw.rectangle(
        [x + w - round(w * 0.15) - leg_w, torso_bottom, x + w - round(w * 0.15), y + h], fill=COLOURS[lower]
    )
    if bag == "backpack":
        draw.rectangle([x, torso_top + 2, x + round(w * 0.2), torso_bottom - 2], fill=(60, 45, 30))
    elif bag == "handbag":
        draw.rectangle(
            [x + w - round(w * 0.15), torso_bottom - 4, x + w, torso_bottom + round(h * 0.1)],
            fill=(90, 30, 60),
        )


def render_frames(
    scene: Scene,
    scene_index: int,
    view: int,
    frame_rows: dict[int, list[tuple]],
    out_dir: Path,
    *,
    digits: int = 6,
    ground_ramp: float = 0.0,
) -> None:
    """Write ``<frame>.jpg`` for every frame of one view; ``frame_rows[f]`` = (depth, track, x, y, w, h).

    ``ground_ramp`` (0 to 1) tints the background from blue on the left to red on the right."""
    camera = scene.cameras[view - 1]
    people = {p.track_id: p for p in scene.people}
    background = _background(camera, scene_index, ground_ramp)
    out_dir.mkdir(parents=True, exist_ok=True)
    for frame in range(1, scene.frames + 1):
        image = background.copy()
        draw = ImageDraw.Draw(image)
        for _, track_id, x, y, w, h in sorted(frame_rows.get(frame, []), reverse=True):
            person = people[track_id]
            _draw_person(draw, (x, y, w, h), person.upper, person.lower, person.bag)
        image.save(out_dir / f"{frame:06d}.jpg", quality=JPEG_QUALITY)
