"""Write the world's first view as Refer-KITTI: ``refer-kitti/{KITTI,expression}``.

Scene ``s`` (0-based) becomes video ``f"{s:04d}"``. World frame ``f`` (1-based) is KITTI frame ``f - 1``
(0-based) everywhere: ``KITTI/training/image_02/<vid>/<f-1:06d>.png`` (the rendered JPEG converted to
PNG), ``KITTI/labels_with_ids/image_02/<vid>/<f-1:06d>.txt`` with one ``class id x y w h`` line per
person (class 2, top-left corner and size normalised by the image size, six decimals; only frames that
show someone have a file) and the expression label keys. Each expression of
:func:`~omnipt_data.synth.expressions.view_expressions` becomes ``expression/<vid>/<sentence with
hyphens>.json``; paraphrases carry the sentence they came from as ``raw_sentence`` (as Refer-KITTI-V2's
extended expressions do). Without rendering, only labels and expressions are written.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
from PIL import Image

from omnipt_data.synth.expressions import view_expressions
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

KITTI_CLASS = 2
VIEW = 1


def video_name(scene_index: int) -> str:
    return f"{scene_index:04d}"


def expression_file_name(sentence: str) -> str:
    return sentence.replace(" ", "-") + ".json"


def label_lines(boxes: pl.DataFrame, width: int, height: int) -> dict[int, str]:
    """KITTI frame (0-based) -> the text of its labels_with_ids file."""
    lines: dict[int, list[str]] = {}
    for frame, track_id, x, y, w, h in (
        boxes.sort("frame", "track_id").select("frame", "track_id", "x", "y", "w", "h").iter_rows()
    ):
        lines.setdefault(frame - 1, []).append(
            f"{KITTI_CLASS} {track_id} {x / width:.6f} {y / height:.6f} {w / width:.6f} {h / height:.6f}\n"
        )
    return {frame: "".join(rows) for frame, rows in lines.items()}


def write_refer_kitti(world: World, out: Path, frames: RenderedFrames) -> Path:
    """Write images, labels and expressions of view 1 of every scene; returns ``out/refer-kitti``."""
    root = out / "refer-kitti"
    config = world.config
    for s, scene in enumerate(world.scenes):
        vid = video_name(s)
        image_dir = root / "KITTI" / "training" / "image_02" / vid
        label_dir = root / "KITTI" / "labels_with_ids" / "image_02" / vid
        expression_dir = root / "expression" / vid
        for folder in (label_dir, expression_dir):
            folder.mkdir(parents=True, exist_ok=True)
        boxes = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == VIEW))
        for kitti_frame, text in label_lines(boxes, config.width, config.height).items():
            (label_dir / f"{kitti_frame:06d}.txt").write_text(text)
        if frames.rendered:
            image_dir.mkdir(parents=True, exist_ok=True)
            for frame in range(1, config.frames + 1):
                source = frames.path(scene.name, VIEW, frame)
                with Image.open(source) as image:
                    image.save(image_dir / f"{frame - 1:06d}.png")
        for expression in view_expressions(world, s, VIEW):
            payload: dict[str, object] = {
                "label": {str(frame - 1): list(ids) for frame, ids in expression.frames(VIEW).items()},
                "ignore": [],
                "video_name": vid,
                "sentence": expression.sentence,
            }
            if expression.raw_sentence is not None:
                payload["raw_sentence"] = expression.raw_sentence
            (expression_dir / expression_file_name(expression.sentence)).write_bytes(orjson.dumps(payload))
    return root
