"""Write sampled frames of every view as COCO: ``coco/annotations/*.json`` + ``coco/<split>2017/``.

Per split (``train2017``, ``val2017``) two files, as COCO ships them:

- ``instances_<split>2017.json``: people (category 1 ``person``) and the bags they carry (27 ``backpack``,
  31 ``handbag``, boxes where the renderer draws them), without keypoints;
- ``person_keypoints_<split>2017.json``: the same people with 17 keypoints each (see :func:`keypoints`).

Every sampled frame is an image, also those without anyone in them. People with nothing visible are not
annotated; standing people are ``iscrowd = 1`` regions (no keypoints, as COCO's crowd annotations);
``area`` is the visible box's area and ``segmentation`` its polygon. Images are placed when rendered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

PERSON = {"id": 1, "name": "person", "supercategory": "person"}
BAGS = {
    "backpack": {"id": 27, "name": "backpack", "supercategory": "accessory"},
    "handbag": {"id": 31, "name": "handbag", "supercategory": "accessory"},
}
KEYPOINT_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# Where each keypoint sits in a person's box, as fractions of its width and height (the person faces us,
# so their left is the image's right).
KEYPOINT_LAYOUT = (
    (0.50, 0.06),
    (0.56, 0.05),
    (0.44, 0.05),
    (0.62, 0.06),
    (0.38, 0.06),
    (0.72, 0.20),
    (0.28, 0.20),
    (0.78, 0.35),
    (0.22, 0.35),
    (0.80, 0.48),
    (0.20, 0.48),
    (0.62, 0.55),
    (0.38, 0.55),
    (0.62, 0.76),
    (0.38, 0.76),
    (0.62, 0.97),
    (0.38, 0.97),
)


def collection(split: str) -> str:
    return f"{split}2017"


def image_file_name(scene: str, view: int, frame: int) -> str:
    return f"{scene}_View{view}_{frame:06d}.jpg"


def keypoints(row: dict[str, Any], width: int, height: int) -> tuple[list[int], int]:
    """17 x 3 ``x, y, v`` from the box: v = 2 inside the visible box, 1 hidden, 0 (at 0, 0) off-image."""
    values: list[int] = []
    for fx, fy in KEYPOINT_LAYOUT:
        x, y = row["x"] + round(fx * row["w"]), row["y"] + round(fy * row["h"])
        if not (0 <= x < width and 0 <= y < height):
            values += [0, 0, 0]
            continue
        visible = row["vis_x1"] <= x < row["vis_x2"] and row["vis_y1"] <= y < row["vis_y2"]
        values += [x, y, 2 if visible else 1]
    return values, sum(1 for v in values[2::3] if v > 0)


def bag_box(row: dict[str, Any], bag: str) -> list[int] | None:
    """The ``[x, y, w, h]`` the renderer gives a person's bag (None when too small to see)."""
    x, y, w, h = row["x"], row["y"], row["w"], row["h"]
    torso_top, torso_bottom = y + max(1, round(h * 0.13)), y + round(h * 0.55)
    if bag == "backpack":
        x1, y1, x2, y2 = x, torso_top + 2, x + round(w * 0.2), torso_bottom - 2
    else:
        x1, y1, x2, y2 = x + w - round(w * 0.15), torso_bottom - 4, x + w, torso_bottom + round(h * 0.1)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return [x1, y1, x2 - x1, y2 - y1]


def _person_annotation(row: dict[str, Any], ann_id: int, image_id: int) -> dict:
    vx1, vy1, vx2, vy2 = row["vis_x1"], row["vis_y1"], row["vis_x2"], row["vis_y2"]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": PERSON["id"],
        "bbox": [row["x"], row["y"], row["w"], row["h"]],
        "area": float((vx2 - vx1) * (vy2 - vy1)),
        "iscrowd": int(row["static"]),
        "segmentation": [[vx1, vy1, vx2, vy1, vx2, vy2, vx1, vy2]],
    }


def coco_files(world: World, every: int) -> dict[str, dict[str, dict]]:
    """``{split: {"instances": {...}, "person_keypoints": {...}}}`` for frames 1, 1 + every, ..."""
    config = world.config
    per_split: dict[str, dict[str, list]] = {}
    for s, scene in enumerate(world.scenes):
        split = split_of(world, s)
        parts = per_split.setdefault(split, {"images": [], "instances": [], "keypoints": []})
        bags = {p.track_id: p.bag for p in scene.people}
        scene_rows = world.boxes.filter(pl.col("scene") == scene.name)
        for view in range(1, config.views + 1):
            for frame in range(1, config.frames + 1, every):
                image_id = len(parts["images"]) + 1
                parts["images"].append(
                    {
                        "id": image_id,
                        "file_name": image_file_name(scene.name, view, frame),
                        "width": config.width,
                        "height": config.height,
                    }
                )
                rows = scene_rows.filter((pl.col("view") == view) & (pl.col("frame") == frame))
                for row in rows.sort("track_id").iter_rows(named=True):
                    if row["vis_x1"] is None:
                        continue
                    person = _person_annotation(row, len(parts["instances"]) + 1, image_id)
                    parts["instances"].append(person)
                    points, count = keypoints(row, config.width, config.height)
                    if row["static"]:
                        points, count = [0] * 3 * len(KEYPOINT_NAMES), 0
                    parts["keypoints"].append({**person, "keypoints": points, "num_keypoints": count})
                    bag = bags[row["track_id"]]
                    box = bag_box(row, bag) if bag in BAGS else None
                    if box is not None:
                        parts["instances"].append(
                            {
                                "id": len(parts["instances"]) + 1,
                                "image_id": image_id,
                                "category_id": BAGS[bag]["id"],
                                "bbox": box,
                                "area": float(box[2] * box[3]),
                                "iscrowd": 0,
                            }
                        )
    info = {"description": "omnipt-data synthetic pedestrian world", "version": "1.0"}
    files = {}
    for split, parts in per_split.items():
        files[split] = {
            "instances": {
                "info": info,
                "licenses": [],
                "images": parts["images"],
                "annotations": parts["instances"],
                "categories": [PERSON, *BAGS.values()],
            },
            "person_keypoints": {
                "info": info,
                "licenses": [],
                "images": parts["images"],
                "annotations": parts["keypoints"],
                "categories": [{**PERSON, "keypoints": list(KEYPOINT_NAMES)}],
            },
        }
    return files


def write_coco(world: World, out: Path, frames: RenderedFrames, *, every: int = 8) -> Path:
    """Write both annotation files per split and place the sampled frames."""
    folder = out / "coco"
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    for split, files in coco_files(world, every).items():
        for kind, payload in files.items():
            (folder / "annotations" / f"{kind}_{collection(split)}.json").write_bytes(orjson.dumps(payload))
        for image in files["instances"]["images"]:
            scene, view, frame = image["file_name"].removesuffix(".jpg").rsplit("_", 2)
            target = folder / collection(split) / image["file_name"]
            frames.place(scene, int(view.removeprefix("View")), int(frame), target)
    return folder
