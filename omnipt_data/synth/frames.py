"""Rendered frames of the world, drawn once and placed (hard-linked) into every format that needs them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from omnipt_data.synth.render import render_frames
from omnipt_data.synth.world import World


@dataclass
class RenderedFrames:
    """``path(scene, view, frame)`` of each rendered JPEG; ``None`` everywhere when not rendering."""

    world: World
    root: Path | None

    @classmethod
    def render(cls, world: World, root: Path | None) -> RenderedFrames:
        if root is None:
            return cls(world, None)
        for s, scene in enumerate(world.scenes):
            for view in range(1, world.config.views + 1):
                boxes = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == view))
                per_frame: dict[int, list[tuple]] = {}
                rows = boxes.select("frame", "depth", "track_id", "x", "y", "w", "h").iter_rows()
                for frame, depth, *rest in rows:
                    per_frame.setdefault(frame, []).append((depth, *rest))
                render_frames(
                    scene,
                    s,
                    view,
                    per_frame,
                    root / scene.name / f"View{view}",
                    ground_ramp=world.config.ground_ramp,
                )
        return cls(world, root)

    @property
    def rendered(self) -> bool:
        return self.root is not None

    def path(self, scene: str, view: int, frame: int) -> Path | None:
        return None if self.root is None else self.root / scene / f"View{view}" / f"{frame:06d}.jpg"

    def place(self, scene: str, view: int, frame: int, target: Path) -> None:
        """Put the frame at ``target`` (a hard link when possible); nothing when not rendering."""
        source = self.path(scene, view, frame)
        if source is None:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
