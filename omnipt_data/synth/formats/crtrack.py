"""Write the world as CRTrack: ``crtrack/CRTrack_In-domain/{images,labels_with_ids_text}``.

Every view of every scene is a MOTChallenge sequence ``images/<split>/<Scene>_View<k>/`` (``seqinfo.ini``,
``gt/gt.txt`` rows ``frame,id,x,y,w,h,1,1,1`` as CRTrack releases them, and, when rendered,
``img1/<Scene>_View<k>_<frame:06d>.jpg``); the ids are the world's identities, shared by the views of a
scene. The split is ``train``, and ``test`` for the validation scenes, the last ``val_scenes`` (CRTrack
has no validation split). The expressions of
:func:`~omnipt_data.synth.expressions.scene_expressions` go to
``labels_with_ids_text/<split>/tackled_text/<Scene>.txt``, one ``<Scene>_<sentence>:<id>,<id>,...`` a line
(a negative sentence has no ids after the colon).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from omnipt_data.synth.expressions import scene_expressions
from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

DOMAIN = "CRTrack_In-domain"


def crtrack_split(world: World, scene_index: int) -> str:
    return "test" if split_of(world, scene_index) == "val" else "train"


def view_folder_name(scene: str, view: int) -> str:
    return f"{scene}_View{view}"


def image_name(scene: str, view: int, frame: int) -> str:
    return f"{view_folder_name(scene, view)}_{frame:06d}.jpg"


def write_crtrack(world: World, out: Path, frames: RenderedFrames) -> Path:
    """Write every scene and view plus the scene's sentences; returns the domain folder."""
    config = world.config
    domain = out / "crtrack" / DOMAIN
    for s, scene in enumerate(world.scenes):
        split = crtrack_split(world, s)
        for view in range(1, config.views + 1):
            name = view_folder_name(scene.name, view)
            folder = domain / "images" / split / name
            (folder / "gt").mkdir(parents=True, exist_ok=True)
            (folder / "seqinfo.ini").write_text(
                "[Sequence]\n"
                f"name={name}\nimDir=img1\nframeRate={config.fps:g}\nseqLength={config.frames}\n"
                f"imWidth={config.width}\nimHeight={config.height}\nimExt=.jpg\n"
            )
            boxes = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == view))
            rows = boxes.sort("frame", "track_id").select("frame", "track_id", "x", "y", "w", "h").iter_rows()
            (folder / "gt" / "gt.txt").write_text(
                "".join(f"{f},{i},{x},{y},{w},{h},1,1,1\n" for f, i, x, y, w, h in rows)
            )
            for frame in range(1, config.frames + 1):
                frames.place(scene.name, view, frame, folder / "img1" / image_name(scene.name, view, frame))
        text_dir = domain / "labels_with_ids_text" / split / "tackled_text"
        text_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"{scene.name}_{e.sentence}:{','.join(str(t) for t in e.track_ids)}\n"
            for e in scene_expressions(world, s)
        ]
        (text_dir / f"{scene.name}.txt").write_text("".join(lines))
    return domain
