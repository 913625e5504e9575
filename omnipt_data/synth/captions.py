"""Synthetic language for the world: person descriptions, attributes, track captions, interactions, summaries.

Everything is a pure function of the world and the seed. Attributes the world does not model (gender,
hair, garment types, shoes) are drawn from ``numpy.random.default_rng([seed, scene_index, track_id,
APPEARANCE_STREAM])`` so they never disturb the world's own generator; caption wording is drawn from a
second stream (``CAPTION_STREAM``) per image, so two images of one person get different sentences about
the same appearance.

Interactions come from the world's geometry (ground-plane positions of two people over the frames in
which both are seen in the view), checked in this order for every pair:

- ``accompany.v.02`` (both directions): both walk, headings within ~37 degrees (cosine >= 0.8) and
  within ``NEAR_M`` metres of each other for at least ``TOGETHER_FRAMES`` frames;
- ``pass.v.01`` (both directions): both walk, in roughly opposite directions (cosine <= -0.5), and come
  within ``PASS_M`` metres;
- ``approach.v.01`` (directed, a -> b): a walks towards b (cosine between a's heading and the direction
  to b >= 0.7 when both are first seen), the distance shrinks by at least ``CLOSING_M`` metres and
  falls under ``APPROACH_M`` metres.

Pairs seen together in fewer than two frames have no interaction. The three labels are WordNet synsets
from BenSMOT's own interaction classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from omnipt_data.synth.world import Person, World

APPEARANCE_STREAM = 0x0A77
CAPTION_STREAM = 0x0C47
TRACK_CAPTION_STREAM = 0x07C4

UPPER_GARMENTS = ("shirt", "T-shirt", "jacket", "sweater", "coat", "top")
LOWER_GARMENTS = ("trousers", "jeans", "shorts")
SKIRT = "skirt"
HAIR_COLOURS = ("black", "brown", "blond", "gray")
SHOE_COLOURS = ("black", "white", "brown", "gray")
# SYNTH-PEDES' six attributes, in the order of its comma-separated attribute string.
SYNTH_PEDES_ATTRIBUTES = ("gender", "hair", "upper_clothing", "lower_clothing", "shoes", "belongings")

ACCOMPANY = "accompany.v.02"
PASS = "pass.v.01"
APPROACH = "approach.v.01"
INTERACTION_LABELS = (ACCOMPANY, PASS, APPROACH)
NEAR_M = 2.5
TOGETHER_FRAMES = 5
PASS_M = 2.0
APPROACH_M = 3.0
CLOSING_M = 1.0

NUMBER_WORDS = (
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)


@dataclass(frozen=True)
class Appearance:
    """How a person looks: the world's attributes plus the ones drawn here."""

    gender: str  # "man" | "woman"
    hair_length: str  # "short" | "long"
    hair_colour: str
    upper_colour: str
    upper_garment: str
    lower_colour: str
    lower_garment: str
    shoes: str
    bag: str  # "none" | "backpack" | "handbag"
    standing: bool

    @property
    def pronoun(self) -> str:
        return "she" if self.gender == "woman" else "he"

    @property
    def hair(self) -> str:
        return f"{self.hair_length} {self.hair_colour} hair"

    @property
    def upper(self) -> str:
        """``a red jacket``."""
        return with_article(f"{self.upper_colour} {self.upper_garment}")

    @property
    def lower(self) -> str:
        """``blue jeans`` or ``a blue skirt``."""
        phrase = f"{self.lower_colour} {self.lower_garment}"
        return with_article(phrase) if self.lower_garment == SKIRT else phrase

    @property
    def short(self) -> str:
        """A few words that tell people apart in a summary: ``a woman in a red jacket``."""
        return f"a {self.gender} in {self.upper}"


@dataclass(frozen=True)
class Interaction:
    """``source`` does ``label`` to ``target`` (world track ids of one scene)."""

    source: int
    target: int
    label: str


def with_article(phrase: str) -> str:
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def number_word(count: int) -> str:
    return NUMBER_WORDS[count] if 0 <= count < len(NUMBER_WORDS) else str(count)


def appearance(world: World, scene_index: int, person: Person) -> Appearance:
    """The person's full appearance; the drawn parts depend only on seed, scene and track id."""
    rng = np.random.default_rng([world.config.seed, scene_index, person.track_id, APPEARANCE_STREAM])
    gender = "woman" if rng.random() < 0.5 else "man"
    long_hair = rng.random() < (0.7 if gender == "woman" else 0.15)
    lower_choices = (*LOWER_GARMENTS, SKIRT) if gender == "woman" else LOWER_GARMENTS
    return Appearance(
        gender=gender,
        hair_length="long" if long_hair else "short",
        hair_colour=str(rng.choice(HAIR_COLOURS)),
        upper_colour=person.upper,
        upper_garment=str(rng.choice(UPPER_GARMENTS)),
        lower_colour=person.lower,
        lower_garment=str(rng.choice(lower_choices)),
        shoes=str(rng.choice(SHOE_COLOURS)),
        bag=person.bag,
        standing=person.static,
    )


# --- person descriptions (person-text datasets) ------------------------------------------------------


def _bag_phrase(look: Appearance, style: int) -> str:
    if look.bag == "none":
        return ""
    item = with_article(look.bag)
    return (f", carrying {item}", f" and {item}", f" with {item}")[style % 3]


def _templates(look: Appearance) -> list[str]:
    p, cap = look.pronoun, look.pronoun.capitalize()
    hair_adjective = f"{look.hair_length}-haired"
    return [
        f"A {look.gender} with {look.hair} is wearing {look.upper} and {look.lower}{_bag_phrase(look, 0)}. "
        f"{cap} has {look.shoes} shoes on.",
        f"The {look.gender} wears {look.upper}, {look.lower} and {look.shoes} shoes{_bag_phrase(look, 1)}. "
        f"{cap} has {look.hair}.",
        f"This {look.gender} has {look.hair} and is dressed in {look.upper} over {look.lower}"
        f"{_bag_phrase(look, 0)}.",
        f"A {look.gender} in {look.upper} and {look.lower}{_bag_phrase(look, 2)}. "
        f"{cap} is wearing {look.shoes} shoes and has {look.hair}.",
        f"{with_article(hair_adjective).capitalize()} {look.gender} wearing {look.lower}, {look.upper} "
        f"and a pair of {look.shoes} shoes{_bag_phrase(look, 2)}.",
        f"The person is a {look.gender} in {look.lower} and {look.upper}{_bag_phrase(look, 0)}; "
        f"{p} wears {look.shoes} shoes.",
    ]


def person_captions(
    world: World, scene_index: int, person: Person, count: int, *, image: int = 0
) -> list[str]:
    """``count`` different descriptions of one person for one image (``image`` varies the wording)."""
    look = appearance(world, scene_index, person)
    templates = _templates(look)
    rng = np.random.default_rng([world.config.seed, scene_index, person.track_id, CAPTION_STREAM, image])
    order = rng.permutation(len(templates))
    return [templates[int(k)] for k in order[:count]]


def synth_pedes_attributes(look: Appearance) -> list[tuple[str, str]]:
    """SYNTH-PEDES' six attributes as ``(name, value)`` pairs; ``belongings`` is ``unknown`` without a bag."""
    values = (
        look.gender,
        f"{look.hair_colour} hair",
        f"{look.upper_colour} {look.upper_garment}",
        f"{look.lower_colour} {look.lower_garment}",
        f"{look.shoes} shoes",
        look.bag if look.bag != "none" else "unknown",
    )
    return list(zip(SYNTH_PEDES_ATTRIBUTES, values, strict=True))


def prompt_caption(look: Appearance) -> str:
    """The single template sentence SYNTH-PEDES derives from the attributes."""
    bag = f" and carries {with_article(look.bag)}" if look.bag != "none" else ""
    return (
        f"A {look.gender} with {look.hair_colour} hair is wearing {look.upper} with {look.lower} "
        f"and a pair of {look.shoes} shoes{bag}."
    )


# --- tracks, interactions and summaries (semantic MOT) -----------------------------------------------


def heading(world: World, scene_index: int, person: Person, view: int = 1) -> str:
    """Where the person goes as seen by the view's camera: ``towards the camera``, ``to the left``, ..."""
    if person.static or person.speed == 0:
        return "still"
    camera = world.scenes[scene_index].cameras[view - 1]
    velocity = np.array([person.velocity[0], 0.0, person.velocity[1]])
    right, forward = float(camera.rotation[0] @ velocity), float(camera.rotation[2] @ velocity)
    if abs(forward) >= abs(right):
        return "away from the camera" if forward > 0 else "towards the camera"
    return "to the right" if right > 0 else "to the left"


def _motion(world: World, scene_index: int, person: Person, view: int) -> str:
    direction = heading(world, scene_index, person, view)
    if direction == "still":
        return "stands still"
    pace = " slowly" if person.speed < 0.9 else " quickly" if person.speed > 1.6 else ""
    return f"walks{pace} {direction}"


def track_caption(world: World, scene_index: int, person: Person, view: int = 1) -> str:
    """One sentence about a tracked person: who they are and how they move in this view."""
    look = appearance(world, scene_index, person)
    motion = _motion(world, scene_index, person, view)
    bag = f", carrying {with_article(look.bag)}," if look.bag != "none" else ""
    rng = np.random.default_rng([world.config.seed, scene_index, person.track_id, TRACK_CAPTION_STREAM, view])
    who = with_article(look.gender).capitalize()
    if rng.random() < 0.5:
        return f"{who} in {look.upper} and {look.lower}{bag} {motion}."
    return f"{who} with {look.hair} {motion}, wearing {look.upper} and {look.lower}."


def _seen_frames(world: World, scene_index: int, view: int) -> dict[int, list[int]]:
    """Track id -> the frames in which the person has a box in the view."""
    rows = world.boxes.filter(
        (pl.col("scene") == world.scenes[scene_index].name) & (pl.col("view") == view)
    ).select("track_id", "frame")
    seen: dict[int, list[int]] = {}
    for track_id, frame in rows.iter_rows():
        seen.setdefault(track_id, []).append(frame)
    return seen


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms > 0 else 0.0


def _pair_label(a: Person, b: Person, frames: list[int], fps: float) -> list[Interaction]:
    pos_a = np.array([a.position(f, fps) for f in frames])
    pos_b = np.array([b.position(f, fps) for f in frames])
    distance = np.linalg.norm(pos_a - pos_b, axis=1)
    both_walk = not a.static and not b.static
    same_way = _cosine(a.velocity, b.velocity)
    if both_walk and same_way >= 0.8 and int((distance <= NEAR_M).sum()) >= TOGETHER_FRAMES:
        return [
            Interaction(a.track_id, b.track_id, ACCOMPANY),
            Interaction(b.track_id, a.track_id, ACCOMPANY),
        ]
    if both_walk and same_way <= -0.5 and float(distance.min()) <= PASS_M:
        return [Interaction(a.track_id, b.track_id, PASS), Interaction(b.track_id, a.track_id, PASS)]
    found = []
    for src, dst, sign in ((a, b, 1.0), (b, a, -1.0)):
        if src.static:
            continue
        towards = _cosine(src.velocity, sign * (pos_b[0] - pos_a[0]))
        closing = float(distance[0] - distance.min())
        if towards >= 0.7 and closing >= CLOSING_M and float(distance.min()) <= APPROACH_M:
            found.append(Interaction(src.track_id, dst.track_id, APPROACH))
    return found


def interactions(world: World, scene_index: int, view: int = 1) -> list[Interaction]:
    """Pair interactions among the people seen in the view, sorted by (source, target, label)."""
    scene = world.scenes[scene_index]
    seen = _seen_frames(world, scene_index, view)
    people = sorted((p for p in scene.people if p.track_id in seen), key=lambda p: p.track_id)
    found: list[Interaction] = []
    for i, a in enumerate(people):
        for b in people[i + 1 :]:
            shared = sorted(set(seen[a.track_id]) & set(seen[b.track_id]))
            if len(shared) >= 2:
                found.extend(_pair_label(a, b, shared, scene.fps))
    return sorted(found, key=lambda x: (x.source, x.target, x.label))


def clip_summary(world: World, scene_index: int, view: int = 1) -> str:
    """A few sentences about the clip: how many people, who stands, who walks with or past whom."""
    scene = world.scenes[scene_index]
    seen = _seen_frames(world, scene_index, view)
    people = [p for p in scene.people if p.track_id in seen]
    if not people:
        return "An empty plaza; nobody walks by."
    standing = sum(p.static for p in people)
    walking = len(people) - standing
    total = len(people)
    noun = "person" if total == 1 else "people"
    if standing == 0:
        sentences = [f"{number_word(total).capitalize()} {noun} cross a plaza."]
    elif walking == 0:
        sentences = [f"{number_word(total).capitalize()} {noun} stand still on a plaza."]
    else:
        verb = "stands" if standing == 1 else "stand"
        sentences = [
            f"{number_word(total).capitalize()} {noun} are on a plaza: {number_word(walking)} walk across it "
            f"and {number_word(standing)} {verb} still."
        ]
    looks = {p.track_id: appearance(world, scene_index, p) for p in people}
    for item in interactions(world, scene_index, view):
        src, dst = looks[item.source].short, looks[item.target].short
        if item.label == ACCOMPANY and item.source < item.target:
            sentences.append(f"{src.capitalize()} and {dst} walk together.")
        elif item.label == PASS and item.source < item.target:
            sentences.append(f"{src.capitalize()} passes {dst}.")
        elif item.label == APPROACH:
            sentences.append(f"{src.capitalize()} approaches {dst}.")
    return " ".join(sentences)
