"""Samplers: the code a template names (``sampler = "..."``) to draw drafts from a store.

Each sampler is ``sampler(source, params, rng_for) -> Iterator[Draft]``; ``params`` come from the
template's ``[params]`` table merged with the build's options, ``rng_for(key)`` gives a generator seeded
by the build seed and a stable key, so the same inputs and seed give the same drafts in any order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from random import Random
from typing import Any

from omnipt_data.build.draft import Draft
from omnipt_data.build.samplers import clips, images, persons
from omnipt_data.build.source import BuildSource

Sampler = Callable[[BuildSource, dict[str, Any], Callable[[str], Random]], Iterator[Draft]]

SAMPLERS: dict[str, Sampler] = {
    "grounding": images.grounding,
    "counting": images.counting,
    "visibility": images.visibility,
    "clip": clips.clip,
    "referring": clips.referring,
    "semantic": clips.semantic,
    "track_caption": clips.track_caption,
    "reid_pair": persons.reid_pair,
    "retrieval": persons.retrieval,
    "person_caption": persons.person_caption,
    "person_attribute": persons.person_attribute,
    "caption_match": persons.caption_match,
}
