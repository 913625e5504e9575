"""Write the world's people as person-text datasets: CUHK-PEDES, ICFG-PEDES, RSTPReid and SYNTH-PEDES.

The four layouts differ only in file and key names, id numbering, images per person, captions per image
and where the images go, so one writer serves them all (see ``LAYOUTS``). Every person of every scene
is one identity, numbered scene by scene in track-id order; their images are crops of the rendered
frames (any view) where they are at least ``MIN_VISIBILITY`` visible, wholly inside the image and at
least ``MIN_HEIGHT`` pixels tall, taken evenly spaced over those candidates. People with no such crop
are left out. Captions come from :mod:`omnipt_data.synth.captions`.

Without rendered frames (``synthesize(..., render=False)``) the annotation file is written alone, with
the same records: the readers then leave image sizes unknown, as they do for any dataset whose image
folder is absent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl
from PIL import Image

from omnipt_data.synth.captions import appearance, person_captions, prompt_caption, synth_pedes_attributes
from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

MIN_VISIBILITY = 0.8
MIN_HEIGHT = 20
JPEG_QUALITY = 90


@dataclass(frozen=True)
class Crop:
    """Where an identity image comes from in the world."""

    scene: str
    track_id: int
    view: int
    frame: int
    box: tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Layout:
    """What differs between the person-text datasets."""

    name: str
    annotation_file: str
    path_key: str
    id_base: int
    images_per_person: int
    captions_per_image: int
    image_dir: str  # "" when images sit beside the annotation file
    image_name: Callable[[int, str, int, Crop], str]  # (pid, split, index, crop) -> file path
    tokens: bool = False  # CUHK-PEDES and ICFG-PEDES carry processed_tokens
    split: bool = True  # SYNTH-PEDES records have no split
    attributes: bool = False  # SYNTH-PEDES: attributes and prompt_caption


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            "cuhk-pedes",
            "reid_raw.json",
            "file_path",
            1,
            2,
            2,
            "imgs",
            lambda pid, split, k, c: f"SYN/{pid:05d}_c{c.view}_{c.frame:04d}.jpg",
            tokens=True,
        ),
        Layout(
            "icfg-pedes",
            "ICFG-PEDES.json",
            "file_path",
            0,
            2,
            1,
            "imgs",
            lambda pid, split, k, c: f"{split}/{pid:04d}/{pid:04d}_c{c.view}_{c.frame:04d}.jpg",
            tokens=True,
        ),
        Layout(
            "rstpreid",
            "data_captions.json",
            "img_path",
            0,
            3,
            2,
            "imgs",
            lambda pid, split, k, c: f"{pid:04d}_c{c.view}_{c.frame:04d}.jpg",
        ),
        Layout(
            "synth-pedes",
            "synthpedes_dataset.json",
            "file_path",
            1,
            1,
            2,
            "",
            lambda pid, split, k, c: f"Part1/{pid}/{k}.jpg",
            split=False,
            attributes=True,
        ),
    )
}


@dataclass(frozen=True)
class PersonTextRecord:
    """One written record and the crop it shows."""

    record: dict[str, Any]
    crop: Crop


def _crops(world: World, scene: str, track_id: int, count: int) -> list[Crop]:
    config = world.config
    rows = (
        world.boxes.filter(
            (pl.col("scene") == scene)
            & (pl.col("track_id") == track_id)
            & (pl.col("visibility") >= MIN_VISIBILITY)
            & (pl.col("x") >= 0)
            & (pl.col("y") >= 0)
            & (pl.col("x") + pl.col("w") <= config.width)
            & (pl.col("y") + pl.col("h") <= config.height)
            & (pl.col("h") >= MIN_HEIGHT)
        )
        .sort("view", "frame")
        .select("view", "frame", "x", "y", "w", "h")
        .rows()
    )
    if len(rows) <= count:
        picked = rows
    elif count == 1:
        picked = [rows[len(rows) // 2]]
    else:
        picked = [rows[round(k * (len(rows) - 1) / (count - 1))] for k in range(count)]
    return [Crop(scene, track_id, v, f, (x, y, w, h)) for v, f, x, y, w, h in picked]


def tokens(caption: str) -> list[str]:
    """CUHK-PEDES-style processed tokens: lower-case words."""
    return re.findall(r"[a-z]+(?:-[a-z]+)*", caption.lower())


def person_text_records(world: World, name: str) -> list[PersonTextRecord]:
    """Every record the writer of format ``name`` puts in its annotation file, in file order."""
    layout = LAYOUTS[name]
    records: list[PersonTextRecord] = []
    pid = layout.id_base
    for s, scene in enumerate(world.scenes):
        split = split_of(world, s)
        for person in sorted(scene.people, key=lambda p: p.track_id):
            crops = _crops(world, scene.name, person.track_id, layout.images_per_person)
            if not crops:
                continue
            look = appearance(world, s, person)
            for k, crop in enumerate(crops):
                captions = person_captions(world, s, person, layout.captions_per_image, image=k)
                record: dict[str, Any] = {"id": pid, layout.path_key: layout.image_name(pid, split, k, crop)}
                if layout.attributes:
                    values = ",".join(value for _, value in synth_pedes_attributes(look))
                    record["attributes"] = [values]
                record["captions"] = captions
                if layout.attributes:
                    record["prompt_caption"] = [prompt_caption(look)]
                if layout.tokens:
                    record["processed_tokens"] = [tokens(c) for c in captions]
                if layout.split:
                    record["split"] = split
                records.append(PersonTextRecord(record, crop))
            pid += 1
    return records


def write_person_text(world: World, out: Path, frames: RenderedFrames, *, name: str) -> Path:
    """Write ``out/<name>/``: the annotation JSON (one record per line block) and, when rendered, crops."""
    layout = LAYOUTS[name]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    records = person_text_records(world, name)
    body = b",\n".join(orjson.dumps(r.record, option=orjson.OPT_INDENT_2) for r in records)
    (folder / layout.annotation_file).write_bytes(b"[\n" + body + b"\n]\n")
    if frames.rendered:
        images = folder / layout.image_dir if layout.image_dir else folder
        for item in records:
            crop = item.crop
            source = frames.path(crop.scene, crop.view, crop.frame)
            target = images / item.record[layout.path_key]
            target.parent.mkdir(parents=True, exist_ok=True)
            x, y, w, h = crop.box
            with Image.open(source) as frame:
                frame.crop((x, y, x + w, y + h)).save(target, quality=JPEG_QUALITY)
    return folder


def write_cuhk_pedes(world: World, out: Path, frames: RenderedFrames) -> Path:
    """``cuhk-pedes/reid_raw.json`` + ``imgs/``: ids from 1, two images per person, two captions each."""
    return write_person_text(world, out, frames, name="cuhk-pedes")


def write_icfg_pedes(world: World, out: Path, frames: RenderedFrames) -> Path:
    """``icfg-pedes/ICFG-PEDES.json`` + ``imgs/<split>/<pid>/``: ids from 0, one caption per image."""
    return write_person_text(world, out, frames, name="icfg-pedes")


def write_rstpreid(world: World, out: Path, frames: RenderedFrames) -> Path:
    """``rstpreid/data_captions.json`` + ``imgs/``: ``img_path`` keys, three images per person."""
    return write_person_text(world, out, frames, name="rstpreid")


def write_synth_pedes(world: World, out: Path, frames: RenderedFrames) -> Path:
    """``synth-pedes/synthpedes_dataset.json`` + ``Part1/<pid>/``: attributes and a prompt caption."""
    return write_person_text(world, out, frames, name="synth-pedes")
