"""Defect injection: plant known annotation and split defects in the synthetic world, for audits to find.

Each kind plants exactly :data:`PER_KIND` defect(s), chosen with a generator seeded by the world's seed,
so a seed gives the same defects. Every defect is one a well-formed file can hold (the MOTChallenge reader
accepts it without ``--lenient``: no negative sizes, frames inside the sequence), lands on a walking
person of a training scene that no other defect touches, and is kept away from other people's boxes so
that it trips exactly the audit check it is meant for:

- ``box_outside_image``: one box moved wholly past the right image border;
- ``zero_area_box``: one box given width 0;
- ``absurd_aspect_ratio``: one box narrowed to 1 pixel around its centre;
- ``duplicate_box``: one box annotated twice, the copy under a new identity;
- ``duplicate_frame_track``: one (frame, track) annotated twice, the copy one box width beside it;
- ``id_swap``: two nearby people exchange identities from one frame to the end of the sequence;
- ``track_gap``: three consecutive frames of one track lose their box (a fragmented track);
- ``teleport``: one track jumps, from one frame on, to its mirror image across the image;
- ``near_duplicate_image``: one validation frame's picture replaced by a re-encoded training frame
  (needs rendered frames and a validation scene);
- ``leaked_track``: one training track's boxes copied into the validation scene as a new identity.

Box defects change ``world.boxes`` after the frames are rendered: the pictures stay true, the
annotations are wrong. New identities get a :class:`~omnipt_data.synth.world.Person` (a copy of the
person whose boxes they repeat), so every writer can describe them. :func:`inject_defects` returns what it
planted, ``{kind: [details]}``, for ``world.json``.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from omnipt_data.errors import OmniptError
from omnipt_data.synth.formats.mot import sequence_name, split_of
from omnipt_data.synth.frames import RenderedFrames
from omnipt_data.synth.world import World

DEFECT_KINDS: tuple[str, ...] = (
    "box_outside_image",
    "zero_area_box",
    "absurd_aspect_ratio",
    "duplicate_box",
    "duplicate_frame_track",
    "id_swap",
    "track_gap",
    "teleport",
    "near_duplicate_image",
    "leaked_track",
)
IMAGE_KINDS = frozenset({"near_duplicate_image"})
PER_KIND = 1  # defects planted of each requested kind
DEFECT_STREAM = 4_046_117  # keeps these draws apart from every other stream of the same seed
GAP_FRAMES = 3
LEAK_FRAMES = 8
ISOLATION_IOU = 0.05  # a defect's boxes overlap nobody else's more than this
LEAK_IOU = 0.2  # a leaked track may brush the validation scene's people, never cover them
NEAR_DUPLICATE_QUALITY = 70  # the copy is re-encoded: near, not byte-identical
X_COLUMNS = ("x", "vis_x1", "vis_x2", "head_x1", "head_x2")


def parse_defects(text: str, *, render: bool = True) -> tuple[str, ...]:
    """``KIND,...`` or ``all`` as a tuple of kinds; ``all`` leaves out image kinds when not rendering."""
    text = text.strip()
    if not text:
        return ()
    if text == "all":
        return tuple(k for k in DEFECT_KINDS if render or k not in IMAGE_KINDS)
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in DEFECT_KINDS]
    if unknown:
        raise OmniptError(f"unknown defect kind(s) {unknown}; kinds: {', '.join(DEFECT_KINDS)} or 'all'")
    return kinds


def check_defects(train_scenes: int, kinds: tuple[str, ...], *, render: bool) -> None:
    """Refuse defect kinds a world with ``train_scenes`` training scenes before its validation ones
    (rendered or not) cannot hold."""
    unknown = [k for k in kinds if k not in DEFECT_KINDS]
    if unknown:
        raise OmniptError(f"unknown defect kind(s) {unknown}; kinds: {', '.join(DEFECT_KINDS)}")
    if not render and IMAGE_KINDS & set(kinds):
        raise OmniptError("defect 'near_duplicate_image' needs rendered frames (drop --no-render)")
    if train_scenes < 1 and {"near_duplicate_image", "leaked_track"} & set(kinds):
        raise OmniptError(
            "split defects need a training and a validation scene: use more --scenes than --val-scenes"
        )


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one ``x, y, w, h`` box ``a`` (4,) with boxes ``b`` (N, 4)."""
    ix = np.clip(np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[1] + a[3], b[:, 1] + b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclass
class _Planter:
    """The world being changed, the draws, and what has been touched so far."""

    world: World
    rng: np.random.Generator
    used: set[tuple[str, int, int]] = field(default_factory=set)  # (scene, view, track) of track defects
    touched: dict[tuple[str, int, int], list[int]] = field(default_factory=dict)  # frames of box defects
    record: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _by_frame: dict[tuple[str, int, int], list[dict[str, Any]]] | None = None
    _by_track: dict[tuple[str, int, int], dict[int, dict[str, Any]]] | None = None

    @property
    def boxes(self) -> pl.DataFrame:
        return self.world.boxes

    def set_boxes(self, boxes: pl.DataFrame) -> None:
        self.world.boxes = boxes.sort("scene", "view", "frame", "track_id", maintain_order=True)
        self._by_frame = self._by_track = None

    def _index(self) -> None:
        by_frame: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
        by_track: dict[tuple[str, int, int], dict[int, dict[str, Any]]] = defaultdict(dict)
        for r in self.boxes.iter_rows(named=True):
            by_frame[r["scene"], r["view"], r["frame"]].append(r)
            by_track[r["scene"], r["view"], r["track_id"]].setdefault(r["frame"], r)
        self._by_frame, self._by_track = by_frame, by_track

    def frame_rows(self, scene: str, view: int, frame: int) -> list[dict[str, Any]]:
        if self._by_frame is None:
            self._index()
        assert self._by_frame is not None
        return self._by_frame.get((scene, view, frame), [])

    def row(self, scene: str, view: int, track: int, frame: int) -> dict[str, Any]:
        if self._by_track is None:
            self._index()
        assert self._by_track is not None
        return self._by_track[scene, view, track][frame]

    def split(self, scene: str) -> str:
        index = next(k for k, s in enumerate(self.world.scenes) if s.name == scene)
        return split_of(self.world, index)

    def sequence(self, scene: str, view: int) -> str:
        return sequence_name(self.world, scene, view)

    def inside(self) -> pl.Expr:
        c = self.world.config
        return (
            (pl.col("x") >= 0)
            & (pl.col("y") >= 0)
            & (pl.col("x") + pl.col("w") <= c.width)
            & (pl.col("y") + pl.col("h") <= c.height)
        )

    def isolated(
        self,
        scene: str,
        view: int,
        frame: int,
        track: int,
        box: tuple[float, ...],
        limit: float = ISOLATION_IOU,
    ) -> bool:
        """``box`` overlaps nobody else's box in ``frame`` and the frames beside it (IoU <= ``limit``)."""
        for f in (frame - 1, frame, frame + 1):
            others = [_box(r) for r in self.frame_rows(scene, view, f) if r["track_id"] != track]
            if others and float(_iou(np.array(box, float), np.array(others, float)).max()) > limit:
                return False
        return True

    def tracks(self, *, train: bool, min_frames: int) -> list[tuple[str, int, int, list[int]]]:
        """Untouched walking tracks seen without gaps for ``min_frames`` or more, with their frames."""
        grouped = (
            self.boxes.filter(~pl.col("static"))
            .group_by("scene", "view", "track_id")
            .agg(pl.col("frame").sort())
            .filter(pl.col("frame").list.len() >= min_frames)
            .sort("scene", "view", "track_id")
        )
        found = []
        for scene, view, track, frames in grouped.iter_rows():
            key = (scene, view, track)
            contiguous = frames[-1] - frames[0] + 1 == len(frames)
            untouched = key not in self.used and key not in self.touched
            if contiguous and untouched and (self.split(scene) == "train") == train:
                found.append((scene, view, track, frames))
        return found

    def pick(self, candidates: list[Any], kind: str) -> Any:
        if not candidates:
            raise OmniptError(
                f"the world is too small to hold a '{kind}' defect; use more scenes, frames or people"
            )
        return candidates[int(self.rng.integers(len(candidates)))]

    def isolated_rows(self) -> list[tuple[str, int, int, int]]:
        """(scene, view, track, frame) of boxes a box defect may take: a walking person of a training
        scene, inside the image, seen in the frames before and after, away from other people and from
        the boxes other defects took."""
        rows = self.boxes.filter(~pl.col("static") & self.inside())
        found = []
        for scene, view, track, frame in (
            rows.select("scene", "view", "track_id", "frame")
            .sort("scene", "view", "track_id", "frame")
            .iter_rows()
        ):
            key = (scene, view, track)
            if self.split(scene) != "train" or key in self.used:
                continue
            if any(abs(frame - f) <= 3 for f in self.touched.get(key, [])):
                continue
            frames = self._by_track_frames(key)
            if frame - 1 not in frames or frame + 1 not in frames:
                continue
            if self.isolated(scene, view, frame, track, tuple(_box(self.row(scene, view, track, frame)))):
                found.append((scene, view, track, frame))
        return found

    def _by_track_frames(self, key: tuple[str, int, int]) -> dict[int, dict[str, Any]]:
        if self._by_track is None:
            self._index()
        assert self._by_track is not None
        return self._by_track.get(key, {})

    def touch(self, scene: str, view: int, track: int, frame: int) -> None:
        self.touched.setdefault((scene, view, track), []).append(frame)

    def replace_rows(self, where: pl.Expr, **values: pl.Expr) -> None:
        self.set_boxes(
            self.boxes.with_columns(
                pl.when(where).then(value).otherwise(pl.col(name)).cast(self.boxes.schema[name]).alias(name)
                for name, value in values.items()
            )
        )

    def add_rows(self, rows: pl.DataFrame) -> None:
        self.set_boxes(pl.concat([self.boxes, rows.select(self.boxes.columns).cast(self.boxes.schema)]))

    def new_identity(self, scene: str, like: tuple[str, int]) -> int:
        """A new track id in ``scene`` for a copy of person ``like`` = (scene, track id)."""
        target = next(s for s in self.world.scenes if s.name == scene)
        source = next(s for s in self.world.scenes if s.name == like[0])
        person = next(p for p in source.people if p.track_id == like[1])
        new_id = max([p.track_id for p in target.people], default=0) + 1
        target.people.append(replace(person, track_id=new_id))
        return new_id

    def note(self, kind: str, **detail: Any) -> None:
        self.record.setdefault(kind, []).append(detail)


def _key(scene: str, view: int, track: int, frame: int | None = None) -> pl.Expr:
    expr = (pl.col("scene") == scene) & (pl.col("view") == view) & (pl.col("track_id") == track)
    return expr if frame is None else expr & (pl.col("frame") == frame)


def _box(r: dict[str, Any]) -> list[int]:
    return [r["x"], r["y"], r["w"], r["h"]]


def _box_outside_image(p: _Planter) -> None:
    scene, view, track, frame = p.pick(p.isolated_rows(), "box_outside_image")
    r = p.row(scene, view, track, frame)
    shift = p.world.config.width + 10 - r["x"]
    where = _key(scene, view, track, frame)
    p.replace_rows(where, **{c: pl.col(c) + shift for c in X_COLUMNS})
    p.touch(scene, view, track, frame)
    p.note("box_outside_image", **_where(p, scene, view, track, frame), box=[r["x"] + shift, *_box(r)[1:]])


def _zero_area_box(p: _Planter) -> None:
    scene, view, track, frame = p.pick(p.isolated_rows(), "zero_area_box")
    p.replace_rows(_key(scene, view, track, frame), w=pl.lit(0))
    p.touch(scene, view, track, frame)
    r = p.row(scene, view, track, frame)
    p.note("zero_area_box", **_where(p, scene, view, track, frame), box=_box(r))


def _absurd_aspect_ratio(p: _Planter) -> None:
    rows = [
        c
        for c in p.isolated_rows()
        if p.row(*c)["w"] >= 3  # narrowing to one pixel must change the box
    ]
    scene, view, track, frame = p.pick(rows, "absurd_aspect_ratio")
    r = p.row(scene, view, track, frame)
    p.replace_rows(_key(scene, view, track, frame), x=pl.lit(r["x"] + (r["w"] - 1) // 2), w=pl.lit(1))
    p.touch(scene, view, track, frame)
    p.note(
        "absurd_aspect_ratio",
        **_where(p, scene, view, track, frame),
        box=_box(p.row(scene, view, track, frame)),
    )


def _duplicate_box(p: _Planter) -> None:
    scene, view, track, frame = p.pick(p.isolated_rows(), "duplicate_box")
    new_id = p.new_identity(scene, (scene, track))
    copy = p.boxes.filter(_key(scene, view, track, frame)).with_columns(track_id=pl.lit(new_id))
    p.add_rows(copy)
    p.touch(scene, view, track, frame)
    p.used.add((scene, view, new_id))
    p.note(
        "duplicate_box",
        **_where(p, scene, view, track, frame),
        copy_track_id=new_id,
        box=_box(copy.row(0, named=True)),
    )


def _duplicate_frame_track(p: _Planter) -> None:
    candidates = []
    for scene, view, track, frame in p.isolated_rows():
        r = p.row(scene, view, track, frame)
        # the second box of the pair sits one box width beside the first, inside the image
        for shift in (r["w"], -r["w"]):
            moved = (r["x"] + shift, r["y"], r["w"], r["h"])
            inside = moved[0] >= 0 and moved[0] + moved[2] <= p.world.config.width
            if inside and p.isolated(scene, view, frame, track, moved):
                candidates.append((scene, view, track, frame, shift))
                break
    scene, view, track, frame, shift = p.pick(candidates, "duplicate_frame_track")
    copy = p.boxes.filter(_key(scene, view, track, frame)).with_columns(pl.col(c) + shift for c in X_COLUMNS)
    p.add_rows(copy)
    p.touch(scene, view, track, frame)
    p.note(
        "duplicate_frame_track",
        **_where(p, scene, view, track, frame),
        copy_box=_box(copy.row(0, named=True)),
    )


def _pair_iou(r: dict[str, Any], q: dict[str, Any]) -> float:
    return float(_iou(np.array(_box(r), float), np.array([_box(q)], float))[0])


def _centre(r: dict[str, Any]) -> np.ndarray:
    return np.array([r["x"] + r["w"] / 2, r["y"] + r["h"] / 2])


def _id_swap(p: _Planter) -> None:
    tracks = p.tracks(train=True, min_frames=6)
    candidates = []
    for i, (scene, view, a, frames_a) in enumerate(tracks):
        for scene_b, view_b, b, frames_b in tracks[i + 1 :]:
            if (scene_b, view_b) != (scene, view):
                continue
            shared = sorted(set(frames_a) & set(frames_b))
            # the swap frame needs one shared frame before it and two after it
            for frame in shared[1:-2]:
                if frame - 1 not in shared:
                    continue
                ra, rb = p.row(scene, view, a, frame), p.row(scene, view, b, frame)
                before_a, before_b = p.row(scene, view, a, frame - 1), p.row(scene, view, b, frame - 1)
                overlap = _pair_iou(ra, rb)
                distance = float(np.linalg.norm(_centre(ra) - _centre(rb)))
                # after the swap each box must clearly continue the other's track and not its own
                continues = min(_pair_iou(ra, before_a), _pair_iou(rb, before_b)) >= 0.6
                if not continues or max(_pair_iou(rb, before_a), _pair_iou(ra, before_b)) >= 0.3:
                    continue
                # apart enough to tell who is who (the nearest pairs are preferred below: an id switch
                # happens where people meet)
                if overlap <= 0.3:
                    candidates.append((distance, scene, view, a, b, frame))
    if not candidates:
        p.pick([], "id_swap")
    candidates.sort()
    nearest = [c[1:] for c in candidates[: max(1, len(candidates) // 4)]]
    scene, view, a, b, frame = p.pick(nearest, "id_swap")
    later = (pl.col("scene") == scene) & (pl.col("view") == view) & (pl.col("frame") >= frame)
    p.replace_rows(
        later & pl.col("track_id").is_in([a, b]),
        track_id=pl.when(pl.col("track_id") == a).then(pl.lit(b)).otherwise(pl.lit(a)),
    )
    p.used.update({(scene, view, a), (scene, view, b)})
    p.note("id_swap", **_where(p, scene, view, a, frame), other_track_id=b)


def _track_gap(p: _Planter) -> None:
    candidates = [
        (scene, view, track, frames[len(frames) // 2 - 1])
        for scene, view, track, frames in p.tracks(train=True, min_frames=GAP_FRAMES + 4)
    ]
    scene, view, track, first = p.pick(candidates, "track_gap")
    missing = pl.col("frame").is_between(first, first + GAP_FRAMES - 1)
    p.set_boxes(p.boxes.filter(~(_key(scene, view, track) & missing)))
    p.used.add((scene, view, track))
    p.note("track_gap", **_where(p, scene, view, track, first), missing_frames=GAP_FRAMES)


def _teleport(p: _Planter) -> None:
    width = p.world.config.width
    candidates = []
    for scene, view, track, frames in p.tracks(train=True, min_frames=6):
        for frame in frames[2:-2]:
            r = p.row(scene, view, track, frame)
            jump = abs(width - 2 * r["x"] - r["w"])
            if jump < 3 * max(r["w"], r["h"]):
                continue
            later = [p.row(scene, view, track, f) for f in frames if f >= frame]
            if all(
                p.isolated(scene, view, q["frame"], track, (width - q["x"] - q["w"], q["y"], q["w"], q["h"]))
                for q in later
            ):
                candidates.append((scene, view, track, frame))
                break  # one frame per track keeps the draw fair between tracks
    scene, view, track, frame = p.pick(candidates, "teleport")
    r = p.row(scene, view, track, frame)
    where = _key(scene, view, track) & (pl.col("frame") >= frame)
    mirrored = {"x": width - pl.col("x") - pl.col("w")}
    for lo, hi in (("vis_x1", "vis_x2"), ("head_x1", "head_x2")):
        mirrored[lo], mirrored[hi] = width - pl.col(hi), width - pl.col(lo)
    p.replace_rows(where, **mirrored)
    p.used.add((scene, view, track))
    p.note("teleport", **_where(p, scene, view, track, frame), jump_px=abs(width - 2 * r["x"] - r["w"]))


def _leaked_track(p: _Planter) -> None:
    val_scene = p.world.scenes[-1].name
    candidates = []
    for scene, view, track, frames in p.tracks(train=True, min_frames=LEAK_FRAMES):
        for start in range(len(frames) - LEAK_FRAMES + 1):
            span = frames[start : start + LEAK_FRAMES]
            rows = [p.row(scene, view, track, f) for f in span]
            if len({(r["x"], r["y"]) for r in rows}) < len(rows) // 2:
                continue  # a leak is told by its motion: a near-still track would not show it
            if all(p.isolated(val_scene, view, r["frame"], -1, tuple(_box(r)), LEAK_IOU) for r in rows):
                candidates.append((scene, view, track, span))
                break  # one span per track keeps the draw fair between tracks
    scene, view, track, span = p.pick(candidates, "leaked_track")
    new_id = p.new_identity(val_scene, (scene, track))
    copy = p.boxes.filter(_key(scene, view, track) & pl.col("frame").is_in(span)).with_columns(
        scene=pl.lit(val_scene), track_id=pl.lit(new_id)
    )
    p.add_rows(copy)
    p.used.update({(scene, view, track), (val_scene, view, new_id)})
    p.note(
        "leaked_track",
        **_where(p, scene, view, track, span[0]),
        frames=len(span),
        val_scene=val_scene,
        val_sequence=p.sequence(val_scene, view),
        val_track_id=new_id,
    )


def _near_duplicate_image(p: _Planter, frames: RenderedFrames) -> None:
    train_scene, val_scene = p.world.scenes[0].name, p.world.scenes[-1].name
    frame = p.world.config.frames // 2 + 1
    source, target = frames.path(train_scene, 1, frame), frames.path(val_scene, 1, frame)
    if source is None or target is None:
        raise OmniptError("defect 'near_duplicate_image' needs rendered frames")
    buffer = io.BytesIO()
    with Image.open(source) as image:
        image.save(buffer, format="JPEG", quality=NEAR_DUPLICATE_QUALITY)
    target.write_bytes(buffer.getvalue())
    p.note(
        "near_duplicate_image",
        scene=val_scene,
        view=1,
        frame=frame,
        split=p.split(val_scene),
        sequence=p.sequence(val_scene, 1),
        copy_of={"scene": train_scene, "split": p.split(train_scene), "sequence": p.sequence(train_scene, 1)},
    )


def _where(p: _Planter, scene: str, view: int, track: int, frame: int) -> dict[str, Any]:
    return {
        "scene": scene,
        "view": view,
        "track_id": track,
        "frame": frame,
        "split": p.split(scene),
        "sequence": p.sequence(scene, view),
    }


_BOX_PLANTERS: dict[str, Callable[[_Planter], None]] = {
    "leaked_track": _leaked_track,
    "id_swap": _id_swap,
    "track_gap": _track_gap,
    "teleport": _teleport,
    "box_outside_image": _box_outside_image,
    "zero_area_box": _zero_area_box,
    "absurd_aspect_ratio": _absurd_aspect_ratio,
    "duplicate_box": _duplicate_box,
    "duplicate_frame_track": _duplicate_frame_track,
}


def inject_defects(world: World, kinds: tuple[str, ...], frames: RenderedFrames) -> dict[str, list[dict]]:
    """Plant ``PER_KIND`` defect(s) of each kind in ``world`` (boxes changed in place, images in
    ``frames``); returns ``{kind: [details]}`` in :data:`DEFECT_KINDS` order."""
    check_defects(world.config.scenes - world.config.val_scenes, kinds, render=frames.rendered)
    planter = _Planter(world, np.random.default_rng([world.config.seed, DEFECT_STREAM]))
    # Track defects first (they need long untouched tracks); single boxes fit in what is left.
    for kind, plant in _BOX_PLANTERS.items():
        if kind in kinds:
            plant(planter)
    if "near_duplicate_image" in kinds:
        _near_duplicate_image(planter, frames)
    return {kind: planter.record[kind] for kind in DEFECT_KINDS if kind in planter.record}
