"""``omnipt-data synth``: generate the synthetic pedestrian world and write it in native formats."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import polars as pl

from omnipt_data.atomic import atomic_directory
from omnipt_data.errors import OmniptError
from omnipt_data.store import write_json
from omnipt_data.synth.formats.crowdhuman import write_crowdhuman
from omnipt_data.synth.formats.mot import write_mot
from omnipt_data.synth.world import World, WorldConfig, generate_world

__all__ = ["FORMATS", "World", "WorldConfig", "generate_world", "synthesize"]

FORMATS = ("mot", "crowdhuman")


def synthesize(
    out: Path,
    config: WorldConfig,
    *,
    formats: tuple[str, ...] = FORMATS,
    render: bool = True,
    crowdhuman_every: int = 8,
    overwrite: bool = False,
) -> World:
    """Generate the world and write it under ``out`` (atomically), one folder per native format.

    ``out/truth/`` holds the world's own ground truth (boxes and people) as Parquet, for comparison.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise OmniptError(f"unknown synthetic formats {sorted(unknown)}; known: {', '.join(FORMATS)}")
    world = generate_world(config)
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        if "mot" in formats:
            write_mot(world, tmp, render=render)
        if "crowdhuman" in formats:
            mot_root = tmp / "mot" if render and "mot" in formats else None
            write_crowdhuman(world, tmp, every=crowdhuman_every, mot_root=mot_root)
        truth = tmp / "truth"
        truth.mkdir()
        world.boxes.write_parquet(truth / "boxes.parquet")
        people_table(world).write_parquet(truth / "people.parquet")
        write_json(
            tmp / "world.json",
            {
                "config": asdict(config),
                "formats": list(formats),
                "rendered": render,
                "boxes": world.boxes.height,
            },
        )
    return world


def people_table(world: World) -> pl.DataFrame:
    rows = [
        {
            "scene": scene.name,
            "track_id": p.track_id,
            "enter_frame": p.enter_frame,
            "exit_frame": p.exit_frame,
            **p.attributes(),
        }
        for scene in world.scenes
        for p in scene.people
    ]
    return pl.DataFrame(rows)
