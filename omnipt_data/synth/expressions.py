"""Synthetic referring expressions: sentences that name sets of the world's people, frame by frame.

Every sentence is built from what the world knows of a person (top and trouser colours, bag, height,
speed, standing or walking) and, for one camera view, from how the person moves in that view's image
(``walking to the left`` is a property of a view: the same walk goes right in a camera facing the other
way). An :class:`Expression` maps each ``(view, frame)`` to the sorted track ids it names there, so a
set can change over time ("walking to the left" only while the person walks left) and frames where it
names nobody are absent. Negative expressions name attributes that nobody in the scene has.

- :func:`view_expressions`: the expressions of one scene seen by one view (Refer-KITTI style), with the
  view-relative direction sentences;
- :func:`scene_expressions`: the expressions that hold in every view of a scene, so a sentence names the
  same identities everywhere (CRTrack style: one id list per sentence).

The world itself is never changed or re-drawn: the only randomness here (which attributes describe a
person) comes from ``numpy.random.default_rng([seed, scene_index, track_id, EXPRESSION_STREAM])``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from omnipt_data.synth.world import COLOURS, Person, World

EXPRESSION_STREAM = 7_310_521  # keeps these draws apart from every other stream of the same seed
TALL_M = 1.85
FAST_MPS = 1.6
DIRECTIONS = ("left", "right")
# The attribute subsets a person's own description may use (drawn per person).
DESCRIPTION_FIELDS: tuple[tuple[str, ...], ...] = (
    ("upper", "lower"),
    ("upper", "bag"),
    ("lower", "bag"),
    ("upper", "lower", "bag"),
)

Referents = dict[tuple[int, int], tuple[int, ...]]
# A test of whether a person fits a sentence in a given (view, frame).
FrameTest = Callable[[int, int, Person], bool]


@dataclass(frozen=True)
class Expression:
    """A sentence and, per ``(view, frame)``, the sorted track ids it refers to there."""

    sentence: str
    kind: str  # attribute, motion, person, direction or negative
    referents: Referents
    raw_sentence: str | None = None  # the sentence a paraphrase was made from

    @property
    def track_ids(self) -> tuple[int, ...]:
        """Every identity the sentence names in some view and frame."""
        return tuple(sorted({t for ids in self.referents.values() for t in ids}))

    @property
    def is_negative(self) -> bool:
        return not self.referents

    def frames(self, view: int) -> dict[int, tuple[int, ...]]:
        """Frame -> track ids of one view."""
        return {f: ids for (v, f), ids in sorted(self.referents.items()) if v == view}


@dataclass(frozen=True)
class _Spec:
    sentence: str
    kind: str
    test: FrameTest
    raw_sentence: str | None = None


def _a(word: str) -> str:
    """``word`` with its indefinite article."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _bag_phrase(bag: str) -> str:
    return "without a bag" if bag == "none" else f"carrying {_a(bag)}"


def describe(person: Person, fields: tuple[str, ...], *, plural: bool) -> str:
    """A noun phrase naming ``person`` by ``fields`` (``upper``, ``lower``, ``bag``)."""
    words = ["people" if plural else "the person"]
    top = "tops" if plural else "top"
    if "upper" in fields:
        words.append(f"in {person.upper} {top}" if plural else f"in {_a(person.upper)} top")
        if "lower" in fields:
            words.append(f"and {person.lower} trousers")
    elif "lower" in fields:
        words.append(f"in {person.lower} trousers")
    if "bag" in fields:
        words.append(_bag_phrase(person.bag))
    return " ".join(words)


def description_fields(world: World, scene_index: int, person: Person) -> tuple[str, ...]:
    """The attributes that describe ``person`` in its own sentence (a deterministic draw per person)."""
    rng = np.random.default_rng([world.config.seed, scene_index, person.track_id, EXPRESSION_STREAM])
    return DESCRIPTION_FIELDS[int(rng.integers(len(DESCRIPTION_FIELDS)))]


def _same(person: Person, other: Person, fields: tuple[str, ...]) -> bool:
    return all(getattr(person, f) == getattr(other, f) for f in fields)


def visible_people(world: World, scene_index: int) -> dict[tuple[int, int], tuple[int, ...]]:
    """``(view, frame)`` -> sorted ids of the people with a box there."""
    scene = world.scenes[scene_index]
    rows = world.boxes.filter(pl.col("scene") == scene.name).select("view", "frame", "track_id")
    visible: dict[tuple[int, int], list[int]] = {}
    for view, frame, track_id in rows.iter_rows():
        visible.setdefault((view, frame), []).append(track_id)
    return {key: tuple(sorted(ids)) for key, ids in sorted(visible.items())}


def motion_directions(world: World, scene_index: int, view: int) -> dict[tuple[int, int], str]:
    """``(frame, track_id)`` -> ``left``/``right`` while a person moves sideways in the view's image.

    The speed is the central difference of the box centre over the neighbouring frames where the person
    is seen; below ``max(0.5, width / 640)`` pixels per frame the person is not moving sideways.
    """
    scene = world.scenes[scene_index]
    threshold = max(0.5, world.config.width / 640)
    rows = world.boxes.filter((pl.col("scene") == scene.name) & (pl.col("view") == view))
    centre: dict[tuple[int, int], float] = {
        (track_id, frame): x + w / 2
        for track_id, frame, x, w in rows.select("track_id", "frame", "x", "w").iter_rows()
    }
    directions: dict[tuple[int, int], str] = {}
    for track_id, frame in centre:
        before = frame - 1 if (track_id, frame - 1) in centre else frame
        after = frame + 1 if (track_id, frame + 1) in centre else frame
        if after == before:
            continue
        speed = (centre[track_id, after] - centre[track_id, before]) / (after - before)
        if abs(speed) >= threshold:
            directions[frame, track_id] = "left" if speed < 0 else "right"
    return directions


def _static_specs(world: World, scene_index: int, appearing: list[Person]) -> list[_Spec]:
    """Sentences about what a person is (the same in every view and frame)."""
    specs: list[_Spec] = []

    def has(test: Callable[[Person], bool]) -> bool:
        return any(test(p) for p in appearing)

    def always(test: Callable[[Person], bool]) -> FrameTest:
        return lambda view, frame, person: test(person)

    for colour in COLOURS:
        if has(lambda p, c=colour: p.upper == c):
            specs.append(
                _Spec(f"people in {colour} tops", "attribute", always(lambda p, c=colour: p.upper == c))
            )
    for colour in COLOURS:
        if has(lambda p, c=colour: p.lower == c):
            specs.append(
                _Spec(f"people in {colour} trousers", "attribute", always(lambda p, c=colour: p.lower == c))
            )
    for bag in ("backpack", "handbag", "none"):
        if has(lambda p, b=bag: p.bag == b):
            specs.append(
                _Spec(f"people {_bag_phrase(bag)}", "attribute", always(lambda p, b=bag: p.bag == b))
            )
    if has(lambda p: p.height_m >= TALL_M):
        specs.append(_Spec("tall people", "attribute", always(lambda p: p.height_m >= TALL_M)))
    if has(lambda p: p.static):
        specs.append(_Spec("pedestrians standing still", "motion", always(lambda p: p.static)))
    if has(lambda p: not p.static):
        specs.append(_Spec("people walking", "motion", always(lambda p: not p.static)))
    if has(lambda p: not p.static and p.speed >= FAST_MPS):
        specs.append(
            _Spec("people walking fast", "motion", always(lambda p: not p.static and p.speed >= FAST_MPS))
        )
    for person in appearing:
        fields = description_fields(world, scene_index, person)
        matching = [p for p in appearing if _same(p, person, fields)]
        specs.append(
            _Spec(
                describe(person, fields, plural=len(matching) > 1),
                "person",
                always(lambda p, me=person, f=fields: _same(p, me, f)),
            )
        )
    missing_top = next((c for c in COLOURS if not has(lambda p, c=c: p.upper == c)), None)
    if missing_top is not None:
        specs.append(_Spec(f"people in {missing_top} tops", "negative", always(lambda p: False)))
    worn = {(p.upper, p.lower) for p in appearing}
    pair = next(((u, v) for u in COLOURS for v in COLOURS if u != v and (u, v) not in worn), None)
    if pair is not None:
        specs.append(
            _Spec(
                f"the person in {_a(pair[0])} top and {pair[1]} trousers", "negative", always(lambda p: False)
            )
        )
    return specs


def _direction_specs(world: World, scene_index: int, view: int, appearing: list[Person]) -> list[_Spec]:
    """Sentences about how people move in one view's image."""
    directions = motion_directions(world, scene_index, view)

    def heading(direction: str, bag: str | None = None) -> FrameTest:
        return lambda v, frame, person: (
            directions.get((frame, person.track_id)) == direction and (bag is None or person.bag == bag)
        )

    specs: list[_Spec] = []
    for direction in DIRECTIONS:
        plain = f"people walking to the {direction}"
        specs.append(_Spec(plain, "direction", heading(direction)))
        specs.append(_Spec(f"pedestrians moving {direction}wards", "direction", heading(direction), plain))
        for bag in ("backpack", "handbag"):
            if any(p.bag == bag for p in appearing):
                specs.append(
                    _Spec(
                        f"people carrying a {bag} walking to the {direction}",
                        "direction",
                        heading(direction, bag),
                    )
                )
    return specs


def _evaluate(
    specs: list[_Spec], people: dict[int, Person], visible: dict[tuple[int, int], tuple[int, ...]]
) -> list[Expression]:
    expressions: list[Expression] = []
    seen: set[str] = set()
    for spec in specs:
        if spec.sentence in seen:
            continue
        seen.add(spec.sentence)
        referents: Referents = {}
        for (view, frame), ids in visible.items():
            named = tuple(t for t in ids if spec.test(view, frame, people[t]))
            if named:
                referents[view, frame] = named
        expressions.append(Expression(spec.sentence, spec.kind, referents, spec.raw_sentence))
    return expressions


def _appearing(
    world: World, scene_index: int, visible: dict[tuple[int, int], tuple[int, ...]]
) -> list[Person]:
    """The scene's people seen in at least one view and frame, by track id."""
    seen = {t for ids in visible.values() for t in ids}
    return sorted(
        (p for p in world.scenes[scene_index].people if p.track_id in seen), key=lambda p: p.track_id
    )


def scene_expressions(world: World, scene_index: int) -> list[Expression]:
    """Expressions that hold in every view of a scene (no view-relative direction), in a fixed order."""
    visible = visible_people(world, scene_index)
    appearing = _appearing(world, scene_index, visible)
    people = {p.track_id: p for p in world.scenes[scene_index].people}
    return _evaluate(_static_specs(world, scene_index, appearing), people, visible)


def view_expressions(world: World, scene_index: int, view: int = 1) -> list[Expression]:
    """Expressions of one scene in one view: the scene's sentences plus the view's direction sentences.

    Attribute sentences and negatives are shared with :func:`scene_expressions` (the people they name are
    those of the whole scene; in this view they refer to whoever of them is seen).
    """
    visible = visible_people(world, scene_index)
    appearing = _appearing(world, scene_index, visible)
    people = {p.track_id: p for p in world.scenes[scene_index].people}
    in_view = {key: ids for key, ids in visible.items() if key[0] == view}
    specs = _static_specs(world, scene_index, appearing) + _direction_specs(
        world, scene_index, view, appearing
    )
    return _evaluate(specs, people, in_view)
