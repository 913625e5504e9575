"""Write the world as MOTChallenge sequences: ``mot/<split>/<scene>[_View<k>]/``.

Each sequence has ``seqinfo.ini``, ``gt/gt.txt`` (9 columns; standing people are class 7
``static_person`` with the evaluation flag 0), ``det/det.txt`` (jittered detections with scores,
missed and false boxes) and, when rendered, ``img1/000001.jpg``...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

STATIC_CLASS = 7
PEDESTRIAN_CLASS = 1


def sequence_name(world: World, scene: str, view: int) -> str:
    return scene if world.config.views == 1 else f"{scene}_View{view}"


def split_of(world: World, scene_index: int) -> str:
    """The last ``val_scenes`` scenes are the validation split when there are more scenes than that."""
    config = world.config
    held_out = config.scenes > config.val_scenes and scene_index >= config.scenes - config.val_scenes
    return "val" if held_out else "train"


def gt_rows(boxes: pl.DataFrame) -> pl.DataFrame:
    """MOTChallenge gt columns of the world's boxes of one sequence (frame-major, then id)."""
    return boxes.sort("frame", "track_id").select(
        "frame",
        pl.col("track_id").alias("id"),
        "x",
        "y",
        "w",
        "h",
        pl.when(pl.col("static")).then(0).otherwise(1).alias("flag"),
        pl.when(pl.col("static")).then(STATIC_CLASS).otherwise(PEDESTRIAN_CLASS).alias("class"),
        "visibility",
    )


def _detections(boxes: pl.DataFrame, rng: np.random.Generator, width: int, height: int) -> str:
    lines = []
    for frame, x, y, w, h, vis in boxes.select("frame", "x", "y", "w", "h", "visibility").iter_rows():
        if rng.random() > 0.2 + 0.8 * vis:
            continue  # hidden people are often missed
        jitter = rng.normal(0, 0.05, size=4) * np.array([w, h, w, h])
        score = float(np.clip(0.5 + 0.5 * vis + rng.normal(0, 0.1), 0.05, 1.0))
        lines.append(
            (frame, x + jitter[0], y + jitter[1], max(1.0, w + jitter[2]), max(1.0, h + jitter[3]), score)
        )
    frames = int(boxes["frame"].max() or 0)
    for _ in range(int(rng.poisson(0.3 * frames))):
        w = float(rng.uniform(0.03, 0.3) * min(width, height / 2.5))
        lines.append(
            (
                int(rng.integers(1, frames + 1)),
                float(rng.uniform(0, width - w)),
                float(rng.uniform(0, height - 2.5 * w)),
                w,
                2.5 * w,
                float(rng.uniform(0.05, 0.5)),
            )
        )
    lines.sort(key=lambda r: r[0])
    return "".join(f"{f},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.3f},-1,-1,-1\n" for f, x, y, w, h, s in lines)


def write_mot(world: World, out: Path, frames: RenderedFrames) -> list[Path]:
    """Write every scene and view; returns the sequence folders."""
    config = world.config
    folders = []
    for s, scene in enumerate(world.scenes):
        for view in range(1, config.views + 1):
            name = sequence_name(world, scene.name, view)
            folder = out / "mot" / split_of(world, s) / name
            boxes = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == view))
            (folder / "gt").mkdir(parents=True, exist_ok=True)
            (folder / "det").mkdir(parents=True, exist_ok=True)
            (folder / "seqinfo.ini").write_text(
                "[Sequence]\n"
                f"name={name}\nimDir=img1\nframeRate={config.fps:g}\nseqLength={config.frames}\n"
                f"imWidth={config.width}\nimHeight={config.height}\nimExt=.jpg\n"
            )
            rows = gt_rows(boxes)
            (folder / "gt" / "gt.txt").write_text(
                "".join(
                    f"{f},{i},{x},{y},{w},{h},{fl},{c},{v:g}\n"
                    for f, i, x, y, w, h, fl, c, v in rows.iter_rows()
                )
            )
            rng = np.random.default_rng([config.seed, s, view])
            (folder / "det" / "det.txt").write_text(_detections(boxes, rng, config.width, config.height))
            for frame in range(1, config.frames + 1):
                frames.place(scene.name, view, frame, folder / "img1" / f"{frame:06d}.jpg")
            folders.append(folder)
    return folders
