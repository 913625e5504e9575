"""Write person crops of the world as Market-1501 and DukeMTMC-reID folders.

Crops (see :func:`reid_crops`): per person and camera (view), up to ``CROPS_PER_CAMERA`` frames where the
person is at least ``MIN_VISIBILITY`` visible, evenly spread over those frames; the crop is the person's
box clipped to the image. Person ids run over the scenes' people in (scene, track) order from 1. The last
scene is the test split (when there are several): per person and camera its first crop is the query, the
others the gallery (``bounding_box_test``); the other scenes fill ``bounding_box_train``.

Market-1501 (``market1501/Market-1501-v15.09.15/``) also gets, in its gallery, junk crops (pid ``-1``: the
visible sliver of a person less than ``JUNK_BELOW`` visible, one per person and camera) and distractors
(pid ``0000``: background boxes drawn per test view), and ``gt_bbox/`` with every person crop again (the
"hand-drawn" boxes). Names: ``<pid>_c<view>s<scene>_<frame:06d>_<box:02d>.jpg``, the box number being the
person's rank (by track id) among the frame's boxes. DukeMTMC-reID (``dukemtmc/DukeMTMC-reID/``) has the
same people without junk, distractors or ``gt_bbox``: ``<pid>_c<view>_f<frame:07d>.jpg``.

A crop needs a rendered frame: when the world is not rendered these writers write nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image

from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

MIN_VISIBILITY = 0.5
JUNK_BELOW = 0.3
CROPS_PER_CAMERA = 3
DISTRACTORS_PER_VIEW = 2
DISTRACTOR_SALT = 1501  # keeps this module's draws apart from other writers'
JPEG_QUALITY = 92
PERSON, JUNK, DISTRACTOR = "person", "junk", "distractor"


@dataclass(frozen=True)
class Crop:
    """One person crop (or junk/distractor crop) of one rendered frame."""

    scene_index: int
    scene: str
    view: int
    frame: int
    track_id: int | None  # None for a distractor
    box_index: int
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 within the image
    kind: str
    test: bool

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


@dataclass(frozen=True)
class ReidImage:
    """A crop with its person id and the folder it goes to."""

    crop: Crop
    pid: int
    folder: str


def _clip(x1: int, y1: int, x2: int, y2: int, width: int, height: int) -> tuple[int, int, int, int]:
    return max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)


def _evenly(count: int, keep: int) -> list[int]:
    """``keep`` indices spread evenly over ``range(count)`` (all of them when there are fewer)."""
    if count <= keep:
        return list(range(count))
    return sorted({round(i * (count - 1) / (keep - 1)) for i in range(keep)})


def reid_crops(world: World) -> list[Crop]:
    """Every crop the ReID writers use, in (scene, view, track, frame) order, distractors last per view."""
    config = world.config
    crops: list[Crop] = []
    for s, scene in enumerate(world.scenes):
        test = split_of(world, s) == "val"
        rows = (
            world.boxes.filter(pl.col("scene") == scene.name)
            .sort("view", "frame", "track_id")
            .with_columns(box_index=pl.int_range(pl.len()).over("view", "frame"))
        )
        for view in range(1, config.views + 1):
            view_rows = rows.filter(pl.col("view") == view)
            for track_id in sorted(view_rows["track_id"].unique().to_list()):
                track = view_rows.filter(pl.col("track_id") == track_id).sort("frame")
                good = track.filter(pl.col("visibility") >= MIN_VISIBILITY)
                for k in _evenly(good.height, CROPS_PER_CAMERA):
                    r = good.row(k, named=True)
                    box = _clip(r["x"], r["y"], r["x"] + r["w"], r["y"] + r["h"], config.width, config.height)
                    crops.append(
                        Crop(s, scene.name, view, r["frame"], track_id, r["box_index"], box, PERSON, test)
                    )
                if not test:
                    continue
                junk = track.filter(
                    (pl.col("visibility") < JUNK_BELOW) & pl.col("vis_x1").is_not_null()
                ).head(1)
                for r in junk.iter_rows(named=True):
                    box = (r["vis_x1"], r["vis_y1"], r["vis_x2"], r["vis_y2"])
                    crops.append(
                        Crop(s, scene.name, view, r["frame"], track_id, r["box_index"], box, JUNK, test)
                    )
            if test:
                crops += _distractors(world, s, view, view_rows)
    return crops


def _distractors(world: World, scene_index: int, view: int, view_rows: pl.DataFrame) -> list[Crop]:
    config = world.config
    rng = np.random.default_rng([config.seed, scene_index, 0, DISTRACTOR_SALT, view])
    crops = []
    for j in range(DISTRACTORS_PER_VIEW):
        frame = int(rng.integers(1, config.frames + 1))
        h = max(8, round(float(rng.uniform(0.25, 0.6)) * config.height))
        w = max(4, round(0.41 * h))
        x = int(rng.integers(0, max(config.width - w, 0) + 1))
        y = int(rng.integers(0, max(config.height - h, 0) + 1))
        people_in_frame = view_rows.filter(pl.col("frame") == frame).height
        box = _clip(x, y, x + w, y + h, config.width, config.height)
        crops.append(
            Crop(
                scene_index,
                world.scenes[scene_index].name,
                view,
                frame,
                None,
                people_in_frame + j,
                box,
                DISTRACTOR,
                True,
            )
        )
    return crops


def person_ids(crops: list[Crop], *, first: int = 1) -> dict[tuple[int, int], int]:
    """Person id of each (scene index, track id) that has a person crop, numbered from ``first``."""
    people = sorted(
        {(c.scene_index, c.track_id) for c in crops if c.kind == PERSON and c.track_id is not None}
    )
    return {key: first + k for k, key in enumerate(people)}


def market_images(world: World, *, with_extras: bool = True) -> list[ReidImage]:
    """The Market-1501 images (DukeMTMC-reID: ``with_extras=False``, no junk, distractors or gt_bbox)."""
    crops = reid_crops(world)
    pids = person_ids(crops)
    images: list[ReidImage] = []
    queried: set[tuple[int, int]] = set()
    for crop in crops:
        if crop.kind == PERSON:
            pid = pids[(crop.scene_index, crop.track_id)]
            if not crop.test:
                folder = "bounding_box_train"
            elif (pid, crop.view) in queried:
                folder = "bounding_box_test"
            else:
                queried.add((pid, crop.view))
                folder = "query"
            images.append(ReidImage(crop, pid, folder))
            if with_extras:
                images.append(ReidImage(crop, pid, "gt_bbox"))
        elif with_extras:
            images.append(ReidImage(crop, -1 if crop.kind == JUNK else 0, "bounding_box_test"))
    return images


def market_name(image: ReidImage) -> str:
    c = image.crop
    pid = "-1" if image.pid == -1 else f"{image.pid:04d}"
    return f"{pid}_c{c.view}s{c.scene_index + 1}_{c.frame:06d}_{c.box_index:02d}.jpg"


def duke_name(image: ReidImage) -> str:
    c = image.crop
    return f"{image.pid:04d}_c{c.view}_f{c.frame:07d}.jpg"


def save_crops(frames: RenderedFrames, targets: list[tuple[Crop, Path]]) -> None:
    """Cut each crop out of its rendered frame (each frame opened once) and save it as JPEG."""
    by_frame: dict[tuple[str, int, int], list[tuple[Crop, Path]]] = defaultdict(list)
    for crop, target in targets:
        by_frame[(crop.scene, crop.view, crop.frame)].append((crop, target))
    for (scene, view, frame), items in sorted(by_frame.items()):
        source = frames.path(scene, view, frame)
        if source is None:
            continue
        with Image.open(source) as image:
            image.load()
            for crop, target in items:
                target.parent.mkdir(parents=True, exist_ok=True)
                image.crop(crop.box).save(target, quality=JPEG_QUALITY)


def write_market1501(world: World, out: Path, frames: RenderedFrames) -> Path:
    """Write ``market1501/Market-1501-v15.09.15/{bounding_box_train,bounding_box_test,query,gt_bbox}``."""
    folder = out / "market1501" / "Market-1501-v15.09.15"
    if frames.rendered:
        save_crops(frames, [(i.crop, folder / i.folder / market_name(i)) for i in market_images(world)])
    return folder


def write_dukemtmc(world: World, out: Path, frames: RenderedFrames) -> Path:
    """Write ``dukemtmc/DukeMTMC-reID/{bounding_box_train,bounding_box_test,query}``."""
    folder = out / "dukemtmc" / "DukeMTMC-reID"
    if frames.rendered:
        images = market_images(world, with_extras=False)
        save_crops(frames, [(i.crop, folder / i.folder / duke_name(i)) for i in images])
    return folder
