"""Read access to the stores a build draws from, one sequence (or one dataset's persons) at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

from omnipt_data.store import Store


@dataclass(frozen=True)
class Sequence:
    uid: str
    dataset: str
    split: str
    name: str
    view: str | None


Unit = tuple[str, str]  # ("scene", "dataset/split/sequence") or ("persons", dataset)


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

    def sequences(self) -> list[Sequence]:
        if self.unit is not None and self.unit[0] != "scene":
            return []
        rows = self.store.read("sequences").sort("sequence_uid")
        found = [
            Sequence(r["sequence_uid"], r["dataset"], r["split"], r["sequence"], r["view"])
            for r in rows.iter_rows(named=True)
        ]
        if self.unit is not None:
            found = [s for s in found if f"{s.dataset}/{s.split}/{s.name}" == self.unit[1]]
        return found

    def scenes(self) -> dict[tuple[str, str, str], list[Sequence]]:
        """Sequences grouped by (dataset, split, sequence): the views of one scene together."""
        grouped: dict[tuple[str, str, str], list[Sequence]] = {}
        for seq in self.sequences():
            grouped.setdefault((seq.dataset, seq.split, seq.name), []).append(seq)
        return grouped

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

    def sequence_batches(self) -> Iterator[tuple[Sequence, pl.DataFrame, pl.DataFrame]]:
        """(sequence, frames, boxes) for every sequence, one at a time (bounded memory)."""
        for seq in self.sequences():
            frames = self.frames(seq.uid)
            if frames.height:
                yield seq, frames, self.boxes(frames["frame_uid"])
