"""Write sampled frames of the world's first view as CrowdHuman: ``crowdhuman/Images`` + ``.odgt``.

People with visibility under 5% are not annotated (as in CrowdHuman); standing people become ``mask``
ignore regions; ``extra.occ`` marks occluded people and ``head_attr.occ`` people less than half visible.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl

from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

MIN_VISIBILITY = 0.05


def image_id(scene: str, frame: int) -> str:
    return f"{scene}_{frame:06d}"


def crowdhuman_records(world: World, every: int) -> dict[str, list[dict]]:
    """The odgt records per split: frames 1, 1 + every, ... of view 1 of each scene."""
    records: dict[str, list[dict]] = {}
    for s, scene in enumerate(world.scenes):
        view1 = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == 1))
        for frame in range(1, world.config.frames + 1, every):
            rows = view1.filter((pl.col("frame") == frame) & (pl.col("visibility") >= MIN_VISIBILITY))
            gtboxes = []
            for k, r in enumerate(rows.sort("track_id").iter_rows(named=True)):
                gtboxes.append(
                    {
                        "tag": "mask" if r["static"] else "person",
                        "fbox": [r["x"], r["y"], r["w"], r["h"]],
                        "vbox": [
                            r["vis_x1"],
                            r["vis_y1"],
                            r["vis_x2"] - r["vis_x1"],
                            r["vis_y2"] - r["vis_y1"],
                        ],
                        "hbox": [
                            r["head_x1"],
                            r["head_y1"],
                            r["head_x2"] - r["head_x1"],
                            r["head_y2"] - r["head_y1"],
                        ],
                        "extra": {"box_id": k, "occ": int(r["visibility"] < 1.0), "ignore": int(r["static"])},
                        "head_attr": {"ignore": 0, "occ": int(r["visibility"] < 0.5), "unsure": 0},
                    }
                )
            records.setdefault(split_of(world, s), []).append(
                {"ID": image_id(scene.name, frame), "gtboxes": gtboxes}
            )
    return records


def write_crowdhuman(world: World, out: Path, frames: RenderedFrames, *, every: int = 8) -> Path:
    """Write the odgt files and place the sampled frames in ``Images/``."""
    folder = out / "crowdhuman"
    (folder / "Images").mkdir(parents=True, exist_ok=True)
    for split, records in crowdhuman_records(world, every).items():
        (folder / f"annotation_{split}.odgt").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        for record in records:
            scene, frame = record["ID"].rsplit("_", 1)
            frames.place(scene, 1, int(frame), folder / "Images" / f"{record['ID']}.jpg")
    return folder
