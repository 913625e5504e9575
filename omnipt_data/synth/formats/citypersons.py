"""Write sampled frames of every view as CityPersons: ``citypersons/gtBbox_cityPersons_trainval/...``.

Each scene is a "city" and each view a Cityscapes sequence: ``<scene>_<view:06d>_<frame:06d>``. The JSON
files go to ``gtBbox_cityPersons_trainval/gtBboxCityPersons/<split>/<scene>/`` and, when rendered, the
frames to ``leftImg8bit/<split>/<scene>/`` as PNG. Labels follow CityPersons' conventions:

- people with nothing visible are not annotated;
- people less than ``IGNORE_BELOW`` visible are ``ignore`` regions (instanceId 0);
- standing people are ``sitting person``; walking people are ``pedestrian``, ``rider`` or ``person
  (other)``, drawn once per person (see :func:`walking_label`);
- ``bbox`` is the full box for pedestrians and riders and the visible box for the other labels, as in the
  CityPersons release; ``bboxVis`` is the visible box; ``instanceId`` is ``24000 + track`` (``25000 +
  track`` for riders), Cityscapes' ``label id * 1000 + instance`` numbering.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import polars as pl
from PIL import Image

from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

IGNORE_BELOW = 0.2
FULL_BOX_LABELS = ("pedestrian", "rider")
LABEL_SALT = 2017  # keeps this module's per-person draws apart from other writers'


def walking_label(seed: int, scene_index: int, track_id: int) -> str:
    """The label of a walking person: 80% pedestrian, 10% rider, 10% person (other)."""
    draw = float(np.random.default_rng([seed, scene_index, track_id, LABEL_SALT]).random())
    if draw < 0.1:
        return "rider"
    if draw < 0.2:
        return "person (other)"
    return "pedestrian"


def label_of(world: World, scene_index: int, row: dict) -> str | None:
    """The CityPersons label of one ground-truth row, or None when the person is not annotated."""
    if row["vis_x1"] is None:
        return None
    if row["visibility"] < IGNORE_BELOW:
        return "ignore"
    if row["static"]:
        return "sitting person"
    return walking_label(world.config.seed, scene_index, row["track_id"])


def annotation_name(scene: str, view: int, frame: int) -> str:
    return f"{scene}_{view:06d}_{frame:06d}"


def cityperson_objects(world: World, scene_index: int, rows: pl.DataFrame) -> list[dict]:
    """The ``objects`` of one image from its ground-truth rows."""
    objects = []
    for row in rows.sort("track_id").iter_rows(named=True):
        label = label_of(world, scene_index, row)
        if label is None:
            continue
        visible = [row["vis_x1"], row["vis_y1"], row["vis_x2"] - row["vis_x1"], row["vis_y2"] - row["vis_y1"]]
        full = [row["x"], row["y"], row["w"], row["h"]] if label in FULL_BOX_LABELS else visible
        instance = 0 if label == "ignore" else (25000 if label == "rider" else 24000) + row["track_id"]
        objects.append({"instanceId": instance, "label": label, "bbox": full, "bboxVis": visible})
    return objects


def write_citypersons(world: World, out: Path, frames: RenderedFrames, *, every: int = 8) -> Path:
    """Write one JSON file per sampled frame (frames 1, 1 + every, ... of every view) and its image."""
    config = world.config
    folder = out / "citypersons"
    for s, scene in enumerate(world.scenes):
        split = split_of(world, s)
        gt_dir = folder / "gtBbox_cityPersons_trainval" / "gtBboxCityPersons" / split / scene.name
        image_dir = folder / "leftImg8bit" / split / scene.name
        gt_dir.mkdir(parents=True, exist_ok=True)
        scene_rows = world.boxes.filter(pl.col("scene") == scene.name)
        for view in range(1, config.views + 1):
            for frame in range(1, config.frames + 1, every):
                rows = scene_rows.filter((pl.col("view") == view) & (pl.col("frame") == frame))
                record = {
                    "imgHeight": config.height,
                    "imgWidth": config.width,
                    "objects": cityperson_objects(world, s, rows),
                }
                name = annotation_name(scene.name, view, frame)
                (gt_dir / f"{name}_gtBboxCityPersons.json").write_bytes(
                    orjson.dumps(record, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
                )
                source = frames.path(scene.name, view, frame)
                if source is not None:
                    image_dir.mkdir(parents=True, exist_ok=True)
                    with Image.open(source) as image:
                        image.save(image_dir / f"{name}_leftImg8bit.png")
    return folder
