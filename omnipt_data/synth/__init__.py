"""``omnipt-data synth``: generate the synthetic pedestrian world and write it in native formats."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import polars as pl

from omnipt_data.atomic import atomic_directory
from omnipt_data.errors import OmniptError
from omnipt_data.store import write_json
from omnipt_data.synth.defects import inject_defects
from omnipt_data.synth.formats.bensmot import write_bensmot
from omnipt_data.synth.formats.citypersons import write_citypersons
from omnipt_data.synth.formats.coco import write_coco
from omnipt_data.synth.formats.crowdhuman import write_crowdhuman
from omnipt_data.synth.formats.crtrack import write_crtrack
from omnipt_data.synth.formats.market1501 import write_dukemtmc, write_market1501
from omnipt_data.synth.formats.mot import write_mot
from omnipt_data.synth.formats.msmt17 import write_msmt17
from omnipt_data.synth.formats.person_text import (
    write_cuhk_pedes,
    write_icfg_pedes,
    write_rstpreid,
    write_synth_pedes,
)
from omnipt_data.synth.formats.refer_kitti import write_refer_kitti
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World, WorldConfig, generate_world

__all__ = ["WRITERS", "World", "WorldConfig", "generate_world", "synthesize"]

# One writer per native format: ``writer(world, out_root, frames)`` writes ``out_root/<format>/``.
WRITERS: dict[str, Callable[[World, Path, RenderedFrames], object]] = {
    "mot": write_mot,
    "crowdhuman": write_crowdhuman,
    "citypersons": write_citypersons,
    "coco": write_coco,
    "market1501": write_market1501,
    "dukemtmc": write_dukemtmc,
    "msmt17": write_msmt17,
    "refer-kitti": write_refer_kitti,
    "crtrack": write_crtrack,
    "cuhk-pedes": write_cuhk_pedes,
    "icfg-pedes": write_icfg_pedes,
    "rstpreid": write_rstpreid,
    "synth-pedes": write_synth_pedes,
    "bensmot": write_bensmot,
}


def synthesize(
    out: Path,
    config: WorldConfig,
    *,
    formats: tuple[str, ...] | None = None,
    render: bool = True,
    overwrite: bool = False,
    defects: tuple[str, ...] = (),
) -> World:
    """Generate the world and write it under ``out`` (atomically), one folder per native format.

    ``formats`` defaults to every format in ``WRITERS``. ``out/truth/`` holds the world's own ground
    truth (boxes and people) as Parquet, for comparison. ``defects`` plants known defects (see
    :mod:`omnipt_data.synth.defects`), listed in ``world.json``.
    """
    formats = tuple(WRITERS) if formats is None else formats
    unknown = sorted(set(formats) - set(WRITERS))
    if unknown:
        raise OmniptError(f"unknown synthetic formats {unknown}; known: {', '.join(WRITERS)}")
    world = generate_world(config)
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        frames = RenderedFrames.render(world, tmp / "_frames" if render else None)
        injected = inject_defects(world, defects, frames) if defects else {}
        for name in formats:
            WRITERS[name](world, tmp, frames)
        shutil.rmtree(tmp / "_frames", ignore_errors=True)
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
                "defects": injected,
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
