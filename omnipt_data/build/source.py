"""Read access to the stores a build draws from, one sequence (or one dataset's persons) at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from omnipt_data.build.draft import PERSON_CATEGORIES
from omnipt_data.store import Store


@dataclass(frozen=True)
class Sequence:
    uid: str
    dataset: str
    split: str
    name: str
    view: str | None
    video: bool | None = None  # False: an image collection; None: the store does not say


@dataclass(frozen=True)
class Draws:
    """What a task may draw from: ``people`` (a task about people: only datasets whose box categories
    say which boxes are people) and ``videos`` (a temporal task: only sequences that are videos)."""

    people: bool = False
    videos: bool = False


EVERYTHING = Draws()
PEOPLE_SAMPLERS = frozenset({"grounding", "counting", "visibility", "clip", "semantic", "track_caption"})
TEMPORAL_SAMPLERS = frozenset({"clip", "semantic"})


def draws_for(sampler: str, params: dict[str, Any]) -> Draws:
    """What the sampler named by a template draws from, with the template's parameters (a referring
    task over several frames is temporal; referring tasks name their targets whatever the category)."""
    temporal = sampler in TEMPORAL_SAMPLERS or (sampler == "referring" and int(params.get("length", 8)) > 1)
    return Draws(people=sampler in PEOPLE_SAMPLERS, videos=temporal)


Unit = tuple[str, str]  # ("scene", "dataset/split/sequence") or ("persons", dataset)


@lru_cache(maxsize=32)
def _categories(path: str, content_hash: str) -> dict[str, list[str]]:
    """Box categories per dataset of the store at ``path``; computed once per process and store version
    (every unit of a distributed build asks)."""
    store = Store.open(path)
    frames = store.scan("frames").select("frame_uid", "dataset")
    rows = (
        store.scan("boxes")
        .filter(pl.col("source") == "gt")
        .join(frames, on="frame_uid")
        .group_by("dataset")
        .agg(pl.col("category").drop_nulls().unique().sort())
        .collect()
    )
    return dict(rows.iter_rows())


class BuildSource:
    """One store as the samplers see it: sequences, their frames and boxes, expressions, semantics.

    ``unit`` restricts it to one scene (all views of a sequence) or one dataset's persons: the pieces a
    distributed build runs on separately. Samplers see the restricted source exactly as the whole one,
    so the drafts of the units, concatenated in :meth:`units` order, are the drafts of the whole store.
    """

    def __init__(self, path: Path, unit: Unit | None = None):
        self.path = Path(path)
        self.store = Store.open(path)
        self.roots = self.store.manifest["image_roots"]
        self.unit = unit

    def units(self) -> list[Unit]:
        scenes = [("scene", "/".join(key)) for key in self.scenes()]
        return scenes + [("persons", d) for d in self.identity_datasets()]

    def restricted(self, unit: Unit) -> BuildSource:
        return BuildSource(self.path, unit)

    @cached_property
    def content_hash(self) -> str:
        return self.store.manifest["content_hash"]

    @cached_property
    def declared_video(self) -> bool | None:
        """Whether the store's reader declares its sequences videos: for stores written before the
        sequences said so themselves."""
        from omnipt_data.readers import READERS

        reader = READERS.get(self.store.manifest.get("reader", {}).get("name", ""))
        return getattr(reader, "videos", None)

    def sequences(self) -> list[Sequence]:
        if self.unit is not None and self.unit[0] != "scene":
            return []
        rows = self.store.read("sequences").sort("sequence_uid")
        found = [
            Sequence(
                r["sequence_uid"],
                r["dataset"],
                r["split"],
                r["sequence"],
                r["view"],
                self.declared_video if r.get("video") is None else r["video"],
            )
            for r in rows.iter_rows(named=True)
        ]
        if self.unit is not None:
            found = [s for s in found if f"{s.dataset}/{s.split}/{s.name}" == self.unit[1]]
        return found

    def scenes(self, draws: Draws = EVERYTHING) -> dict[tuple[str, str, str], list[Sequence]]:
        """Sequences grouped by (dataset, split, sequence): the views of one scene together."""
        grouped: dict[tuple[str, str, str], list[Sequence]] = {}
        for seq in self.drawable(draws):
            grouped.setdefault((seq.dataset, seq.split, seq.name), []).append(seq)
        return grouped

    def drawable(self, draws: Draws) -> list[Sequence]:
        """The sequences a task drawing ``draws`` may use."""
        people = self.person_datasets() if draws.people else None
        return [
            s
            for s in self.sequences()
            if (not draws.videos or s.video is True) and (people is None or s.dataset in people)
        ]

    @property
    def categories(self) -> dict[str, list[str]]:
        """The ground-truth box categories of each dataset of the whole store (whatever the unit)."""
        return _categories(str(self.path), self.content_hash)

    def person_datasets(self) -> set[str]:
        """Datasets whose box categories say which boxes are people."""
        return {d for d, cats in self.categories.items() if set(cats) & set(PERSON_CATEGORIES)}

    def excluded(self, draws: Draws) -> list[dict[str, object]]:
        """Why some of the store's sequences are not drawn from, one line per dataset and reason (for the
        build's manifest)."""
        notes: list[dict[str, object]] = []
        everything = self.sequences()
        if draws.people:
            people = self.person_datasets()
            for dataset in sorted({s.dataset for s in everything} - people):
                cats = ", ".join(self.categories.get(dataset, [])) or "none"
                notes.append(
                    {
                        "dataset": dataset,
                        "reason": f"its box categories ({cats}) do not say which boxes are people",
                        "sequences": sum(s.dataset == dataset for s in everything),
                    }
                )
            everything = [s for s in everything if s.dataset in people]
        if draws.videos:
            for dataset in sorted({s.dataset for s in everything}):
                not_videos = [s for s in everything if s.dataset == dataset and s.video is not True]
                if not_videos:
                    unknown = sum(s.video is None for s in not_videos)
                    reason = "not videos (image collections)" if not unknown else "not known to be videos"
                    notes.append({"dataset": dataset, "reason": reason, "sequences": len(not_videos)})
        return notes

    def image_path(self, dataset: str, relative: str) -> str:
        root = self.roots.get(dataset)
        return str(Path(root) / relative) if root else relative

    def frames(self, sequence_uid: str) -> pl.DataFrame:
        frames = (
            self.store.scan("frames")
            .filter(pl.col("sequence_uid") == sequence_uid)
            .sort("frame_index")
            .collect()
        )
        return frames.with_columns(self.absolute_path().alias("abs_path"))

    def absolute_path(self) -> pl.Expr:
        """``image_path`` joined to its dataset's image root; kept as is where it is absolute (merged
        stores) or where the store names no root."""
        path = pl.col("image_path")
        root = pl.col("dataset").replace_strict(self.roots, default=None, return_dtype=pl.String)
        return pl.when(root.is_null() | path.str.starts_with("/")).then(path).otherwise(root + "/" + path)

    def boxes(self, frame_uids: pl.Series) -> pl.DataFrame:
        return self.store.scan("boxes").filter(pl.col("frame_uid").is_in(frame_uids.implode())).collect()

    def expressions(self, dataset: str, split: str, sequence: str) -> pl.DataFrame:
        return (
            self.store.scan("expressions")
            .filter(
                (pl.col("dataset") == dataset) & (pl.col("split") == split) & (pl.col("sequence") == sequence)
            )
            .sort("expression_uid")
            .collect()
        )

    def referents(self, expression_uids: pl.Series) -> pl.DataFrame:
        return (
            self.store.scan("referents")
            .filter(pl.col("expression_uid").is_in(expression_uids.implode()))
            .collect()
        )

    def semantics(self, sequence_uids: list[str]) -> pl.DataFrame:
        return (
            self.store.scan("semantics")
            .filter(pl.col("sequence_uid").is_in(sequence_uids))
            .sort("semantic_uid")
            .collect()
        )

    def identity_datasets(self) -> list[str]:
        if self.unit is not None:
            return [self.unit[1]] if self.unit[0] == "persons" else []
        return sorted(self.store.scan("identities").select("dataset").unique().collect()["dataset"].to_list())

    def identities(self, dataset: str) -> pl.DataFrame:
        return self.store.scan("identities").filter(pl.col("dataset") == dataset).sort("image_uid").collect()

    def sequence_batches(
        self, draws: Draws = EVERYTHING
    ) -> Iterator[tuple[Sequence, pl.DataFrame, pl.DataFrame]]:
        """(sequence, frames, boxes) for every sequence a task drawing ``draws`` may use, one at a time
        (bounded memory)."""
        for seq in self.drawable(draws):
            frames = self.frames(seq.uid)
            if frames.height:
                yield seq, frames, self.boxes(frames["frame_uid"])
