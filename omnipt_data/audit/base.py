"""What every audit check shares: the check and result types, and the store context they read from.

A check is a named function with a severity: ``error`` (the data is wrong: a model would learn or be
scored on it wrongly), ``warning`` (suspicious, worth a look) or ``info`` (a distribution, for the report's
plots). It returns its findings as a polars frame, one row per finding, whose columns link each finding
to the sample (``frame_uid``, ``box_uid``, ``sequence``, ``image`` for stores; ``record_id``, ``file``,
``line`` for builds) plus a one-line ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from omnipt_data.store import Store

SEVERITIES = ("error", "warning", "info")
STORE, BUILD = "store", "build"

# Splits a model learns from, and splits it is judged on: a sample in both is a leak. Other splits
# (Market-1501's gt_bbox, for one) hold copies by design and are left out of leak checks.
TRAIN_SPLITS = frozenset({"train", "training", "trainval"})
HELD_OUT_SPLITS = frozenset({"val", "valid", "validation", "test", "testing", "query", "gallery"})

# Rows of boxes joined per pass of the pairwise checks (pairs of boxes in a frame): bounds memory.
BATCH_BOXES = 500_000


@dataclass(frozen=True)
class Check:
    """One audit check: ``run(context)`` returns its findings, one row per finding."""

    name: str
    severity: str
    target: str  # STORE or BUILD
    description: str
    run: Callable[[Any], pl.DataFrame]

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"check {self.name}: severity {self.severity!r} is not one of {SEVERITIES}")


@dataclass
class CheckResult:
    """A check's outcome: ``count`` findings in all, ``findings`` the first ``max_findings`` of them."""

    name: str
    severity: str
    description: str
    count: int
    findings: list[dict[str, Any]]
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity,
            "description": self.description,
            "count": self.count,
            "truncated": self.truncated,
            "findings": self.findings,
        }


def split_group(column: str = "split") -> pl.Expr:
    """``train``, ``held_out`` or null (a split left out of leak checks)."""
    split = pl.col(column).str.to_lowercase()
    return (
        pl.when(split.is_in(list(TRAIN_SPLITS)))
        .then(pl.lit("train"))
        .when(split.is_in(list(HELD_OUT_SPLITS)))
        .then(pl.lit("held_out"))
        .otherwise(pl.lit(None, pl.String))
    )


@dataclass
class StoreContext:
    """A store being audited: lazy scans of its tables and the joins several checks share."""

    store: Store
    source: str = "gt"
    show_progress: bool = True
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.store.path

    def scan(self, table: str) -> pl.LazyFrame:
        return self.store.scan(table)

    def with_image(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """``rows`` (with ``dataset`` and ``image_path``) plus ``image``: the absolute path, the dataset's
        image root from the manifest joined to the relative path."""
        roots = self.store.manifest.get("image_roots") or {}
        root_table = pl.LazyFrame(
            {"dataset": list(roots), "_root": list(roots.values())},
            schema={"dataset": pl.String, "_root": pl.String},
        )
        return (
            rows.join(root_table, on="dataset", how="left")
            .with_columns(
                image=pl.when(pl.col("_root").is_not_null() & pl.col("image_path").is_not_null())
                .then(pl.col("_root") + "/" + pl.col("image_path"))
                .otherwise(pl.col("image_path"))
            )
            .drop("_root")
        )

    def frames(self) -> pl.LazyFrame:
        """Frames with their absolute ``image`` path."""
        return self.with_image(self.scan("frames"))

    def boxes(self) -> pl.LazyFrame:
        """The audited source's boxes with their frame's sequence, index, split, size and image."""
        frames = self.frames().select(
            "frame_uid",
            pl.col("sequence_uid").alias("sequence"),
            "dataset",
            "split",
            "frame_index",
            "width",
            "height",
            "image",
        )
        return (
            self.scan("boxes")
            .filter(pl.col("source") == self.source)
            .join(frames, on="frame_uid", how="left")
            .with_columns(w=pl.col("x2") - pl.col("x1"), h=pl.col("y2") - pl.col("y1"))
        )

    def sequence_batches(self, limit: int = BATCH_BOXES) -> Iterator[list[str]]:
        """Sequence uids in groups of at most ``limit`` boxes (a bigger sequence is a group alone)."""
        sizes = (
            self.boxes().group_by("sequence").agg(pl.len().alias("n")).sort("sequence").collect().iter_rows()
        )
        batch: list[str] = []
        total = 0
        for sequence, n in sizes:
            if batch and total + n > limit:
                yield batch
                batch, total = [], 0
            batch.append(sequence)
            total += n
        if batch:
            yield batch

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


def link_columns(frame: pl.DataFrame, extra: list[str]) -> pl.DataFrame:
    """Keep the link columns a finding has (in a fixed order), then ``extra``, then ``detail``."""
    order = ["sequence", "frame_uid", "box_uid", "image", *extra, "detail"]
    return frame.select([c for c in order if c in frame.columns])


def empty_findings(*columns: str) -> pl.DataFrame:
    return pl.DataFrame(schema=dict.fromkeys([*columns, "detail"], pl.String))
