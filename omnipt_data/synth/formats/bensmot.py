"""Write the world as BenSMOT: ``bensmot/{train,test}/crossing_plaza/<scene>/`` from each scene's view 1.

Each sequence holds ``gt/gt.txt`` (9 MOTChallenge columns, every person a pedestrian with flag 1),
``imgs/001.jpg ...`` (when rendered), ``video_caption.txt``, ``instance_captions.txt`` and
``interactions.graphml``; ``bensmot/`` also gets the combined ``video_summary.json``,
``instance_caption.json`` and ``relation.json`` of the authors' code. As in BenSMOT, tracks are numbered
1, 2, ... in order of first appearance (ties by world track id), and the k-th caption line names track
k (``woman0``, ``man0``, ``woman1``: a counter per gender). The validation scenes (the last
``val_scenes``) are the test split. Captions, interactions and the summary come from
:mod:`omnipt_data.synth.captions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import polars as pl

from omnipt_data.store import write_json
from omnipt_data.synth.captions import appearance, clip_summary, interactions, track_caption
from omnipt_data.synth.formats.mot import split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

CATEGORY = "crossing_plaza"
VIEW = 1
GRAPHML_NS = "http://graphml.graphdrawing.org/xmlns"


@dataclass(frozen=True)
class Track:
    track_id: int  # BenSMOT's number: 1, 2, ... in order of first appearance
    world_track_id: int
    name: str
    caption: str


@dataclass(frozen=True)
class Sequence:
    """One BenSMOT sequence as the world makes it."""

    split: str
    key: str  # "<category>/<sequence>"
    scene: str
    tracks: list[Track]
    interactions: list[tuple[int, int, str]]  # BenSMOT track ids, sorted
    summary: str
    boxes: pl.DataFrame  # frame, track_id (BenSMOT's), x, y, w, h, visibility


def bensmot_sequences(world: World) -> list[Sequence]:
    """The sequences the writer produces, with their ground truth."""
    sequences = []
    for s, scene in enumerate(world.scenes):
        view = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == VIEW))
        order = view.group_by("track_id").agg(pl.col("frame").min().alias("first")).sort("first", "track_id")
        number = {world_id: k for k, world_id in enumerate(order["track_id"].to_list(), start=1)}
        people = {p.track_id: p for p in scene.people}
        counters: dict[str, int] = {}
        tracks = []
        for world_id, k in number.items():
            person = people[world_id]
            gender = appearance(world, s, person).gender
            name = f"{gender}{counters.get(gender, 0)}"
            counters[gender] = counters.get(gender, 0) + 1
            tracks.append(Track(k, world_id, name, track_caption(world, s, person, VIEW)))
        pairs = sorted((number[i.source], number[i.target], i.label) for i in interactions(world, s, VIEW))
        boxes = view.select(
            "frame",
            pl.col("track_id").replace_strict(number, return_dtype=pl.Int64),
            "x",
            "y",
            "w",
            "h",
            "visibility",
        ).sort("frame", "track_id")
        split = "test" if split_of(world, s) == "val" else "train"
        summary = clip_summary(world, s, VIEW)
        sequences.append(
            Sequence(split, f"{CATEGORY}/{scene.name}", scene.name, tracks, pairs, summary, boxes)
        )
    return sequences


def graphml(sequence: Sequence) -> str:
    """The interaction graph: a node per track (id = its name), an edge per ordered pair with labels."""
    names = {t.track_id: t.name for t in sequence.tracks}
    labels: dict[tuple[int, int], list[str]] = {}
    for src, dst, label in sequence.interactions:
        labels.setdefault((src, dst), []).append(label)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<graphml xmlns="{GRAPHML_NS}">',
        '  <key id="d0" for="edge" attr.name="relationship" attr.type="string"/>',
        '  <graph edgedefault="directed">',
        *(f"    <node id={quoteattr(t.name)}/>" for t in sequence.tracks),
    ]
    for (src, dst), items in labels.items():
        lines += [
            f"    <edge source={quoteattr(names[src])} target={quoteattr(names[dst])}>",
            f'      <data key="d0">{",".join(items)}</data>',
            "    </edge>",
        ]
    return "\n".join([*lines, "  </graph>", "</graphml>", ""])


def write_bensmot(world: World, out: Path, frames: RenderedFrames) -> Path:
    """Write every scene's first view as a BenSMOT sequence, plus the combined JSONs."""
    root = out / "bensmot"
    root.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, str] = {}
    captions: dict[str, dict[str, str]] = {}
    relations: dict[str, dict[str, list[str]]] = {}
    for sequence in bensmot_sequences(world):
        folder = root / sequence.split / sequence.key
        (folder / "gt").mkdir(parents=True, exist_ok=True)
        (folder / "gt" / "gt.txt").write_text(
            "".join(
                f"{f},{i},{x},{y},{w},{h},1,1,{v:g}\n" for f, i, x, y, w, h, v in sequence.boxes.iter_rows()
            )
        )
        (folder / "video_caption.txt").write_text(sequence.summary + "\n")
        (folder / "instance_captions.txt").write_text(
            "".join(f"{t.name}: {t.caption}\n" for t in sequence.tracks)
        )
        (folder / "interactions.graphml").write_text(graphml(sequence))
        for frame in range(1, world.config.frames + 1):
            frames.place(sequence.scene, VIEW, frame, folder / "imgs" / f"{frame:03d}.jpg")
        summaries[sequence.key] = sequence.summary
        captions[sequence.key] = {str(t.track_id): t.caption for t in sequence.tracks}
        relations[sequence.key] = {}
        for src, dst, label in sequence.interactions:
            relations[sequence.key].setdefault(f"{src}-{dst}", []).append(label)
    write_json(root / "video_summary.json", summaries)
    write_json(root / "instance_caption.json", captions)
    write_json(root / "relation.json", relations)
    return root
