"""The canonical store: one writer, one reader, the manifest and ``validate``.

A store directory holds ``<table>.parquet`` for every table of :mod:`omnipt_data.schema` and a
``manifest.json``. The writer streams: readers hand it batches, it buffers a bounded number of rows per
table and appends them as Parquet row groups, so memory does not grow with the dataset. It writes into a
temporary sibling directory renamed into place only when everything succeeded (see
:func:`omnipt_data.atomic.atomic_directory`): an error leaves no partial store behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq

from omnipt_data import __version__
from omnipt_data.atomic import atomic_directory
from omnipt_data.errors import OmniptError
from omnipt_data.schema import PRIMARY_KEYS, SCHEMA_VERSION, TABLES, conform, empty, schema

MANIFEST = "manifest.json"
ROW_GROUP_ROWS = 131_072


def table_path(store: Path, table: str) -> Path:
    return Path(store) / f"{table}.parquet"


def write_json(path: Path, payload: Any) -> None:
    """Deterministic, human-readable JSON (sorted keys, 2-space indent, trailing newline)."""
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _TableWriter:
    """Buffers one table's batches and appends them to its Parquet file as row groups."""

    def __init__(self, path: Path, table: str):
        self.path = path
        self.table = table
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        self.pending.append(conform(self.table, df))
        self.pending_rows += df.height
        if self.pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending and self.writer is not None:
            return
        batch = pl.concat(self.pending) if self.pending else empty(self.table)
        arrow = batch.to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, arrow.schema, compression="zstd", compression_level=1)
        self.writer.write_table(arrow)
        self.rows += batch.height
        self.pending, self.pending_rows = [], 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


@dataclass
class StoreWriter:
    """Streams tables into a store directory being built; see :func:`write_store`."""

    directory: Path
    writers: dict[str, _TableWriter] = field(default_factory=dict)

    def write(self, table: str, df: pl.DataFrame) -> None:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}")
        if table not in self.writers:
            self.writers[table] = _TableWriter(table_path(self.directory, table), table)
        self.writers[table].add(df)

    def write_batch(self, batch: dict[str, pl.DataFrame]) -> None:
        for table, df in batch.items():
            self.write(table, df)

    def close(self) -> dict[str, int]:
        """Flush every table (absent ones are written empty) and return row counts."""
        for table in TABLES:
            self.writers.setdefault(table, _TableWriter(table_path(self.directory, table), table))
        for writer in self.writers.values():
            writer.close()
        return {table: self.writers[table].rows for table in TABLES}


@contextmanager
def write_store(
    out: Path,
    *,
    source: dict[str, Any],
    reader: dict[str, Any],
    image_roots: dict[str, str] | None = None,
    overwrite: bool = False,
    extra_manifest: dict[str, Any] | None = None,
) -> Iterator[StoreWriter]:
    """Open a store for streaming writes; on success it is validated and renamed into place.

    Validation errors (orphan rows, duplicate keys, non-finite boxes) abort the write; quality warnings
    (boxes outside the image, duplicate (frame, track) pairs, ...) are recorded in the manifest.
    """
    with atomic_directory(Path(out), overwrite=overwrite) as tmp:
        writer = StoreWriter(tmp)
        yield writer
        counts = writer.close()
        report = validate(tmp)
        if report.errors:
            raise OmniptError("the store would be invalid:\n" + report.describe(errors_only=True))
        tables = {t: {"rows": counts[t], "sha256": file_sha256(table_path(tmp, t))} for t in TABLES}
        content = hashlib.sha256("".join(tables[t]["sha256"] for t in TABLES).encode()).hexdigest()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "omnipt_data_version": __version__,
            "source": source,
            "reader": reader,
            "image_roots": image_roots or {},
            "counts": summary_counts(tmp),
            "tables": tables,
            "content_hash": content,
            "validation": report.to_json(),
            **(extra_manifest or {}),
        }
        write_json(tmp / MANIFEST, manifest)


@dataclass(frozen=True)
class Store:
    """A store on disk, read lazily table by table."""

    path: Path

    @classmethod
    def open(cls, path: Path | str) -> Store:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise OmniptError(f"{path} is not a store (no {MANIFEST})")
        return cls(path)

    @property
    def manifest(self) -> dict[str, Any]:
        return orjson.loads((self.path / MANIFEST).read_bytes())

    def scan(self, table: str) -> pl.LazyFrame:
        schema(table)
        return pl.scan_parquet(table_path(self.path, table))

    def read(self, table: str) -> pl.DataFrame:
        return self.scan(table).collect()

    def image_path(self, dataset: str, relative: str) -> Path:
        """The absolute path of an image recorded relative to its dataset's root."""
        root = self.manifest["image_roots"].get(dataset)
        return Path(root) / relative if root else Path(relative)


def scene_uid() -> pl.Expr:
    """A frame's sequence uid without its view: the views of one scene share their track identities."""
    uid, view = pl.col("sequence_uid"), pl.col("view")
    return pl.when(view.is_null()).then(uid).otherwise(uid.str.strip_suffix("/" + view)).alias("scene_uid")


def summary_counts(store: Path) -> dict[str, int]:
    """Counts that scripts read from ``info --json``: tables plus tracks, sequences and persons."""
    scan = {t: pl.scan_parquet(table_path(store, t)) for t in TABLES}
    counts = {t: scan[t].select(pl.len()).collect().item() for t in TABLES}
    frames = scan["frames"].select("frame_uid", scene_uid())
    tracks = (
        scan["boxes"]
        .filter(pl.col("track_id").is_not_null())
        .join(frames, on="frame_uid", how="left")
        .select("scene_uid", "track_id")
        .unique()
        .select(pl.len())
        .collect()
        .item()
    )
    counts["tracks"] = tracks
    counts["persons"] = scan["identities"].select(pl.col("person_uid").n_unique()).collect().item()
    counts["datasets"] = (
        pl.concat([scan["frames"].select("dataset"), scan["identities"].select("dataset")])
        .unique()
        .select(pl.len())
        .collect()
        .item()
    )
    return counts


@dataclass
class Finding:
    check: str
    severity: str  # "error" breaks the store; "warning" is a data-quality note
    count: int
    examples: list[str]


@dataclass
class ValidationReport:
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def describe(self, *, errors_only: bool = False) -> str:
        rows = self.errors if errors_only else self.findings
        return "\n".join(f"  {f.severity}: {f.check}: {f.count} (e.g. {', '.join(f.examples)})" for f in rows)

    def to_json(self) -> dict[str, Any]:
        return {
            f.check: {"severity": f.severity, "count": f.count, "examples": f.examples} for f in self.findings
        }


def _counted(offenders: pl.LazyFrame, label: pl.Expr) -> pl.LazyFrame:
    """How many offenders, and the first three labels in sorted order (stable across runs)."""
    return offenders.select(pl.len().alias("n"), label.sort().head(3).implode().alias("examples"))


def _duplicate_keys(scan: dict[str, pl.LazyFrame]) -> list[tuple[str, str, pl.LazyFrame]]:
    """Exact duplicate-key checks, only for tables whose keys' hashes are not all distinct (cheap first)."""
    hashed = [
        scan[t].select(pl.len().alias("rows"), pl.struct(list(k)).hash().n_unique().alias("distinct"))
        for t, k in PRIMARY_KEYS.items()
    ]
    checks = []
    for (table, key), counts in zip(PRIMARY_KEYS.items(), pl.collect_all(hashed), strict=True):
        if counts["rows"].item() == counts["distinct"].item():
            continue
        dup = scan[table].group_by(list(key)).agg(pl.len().alias("n")).filter(pl.col("n") > 1)
        checks.append(
            (f"duplicate {table} key", "error", _counted(dup, pl.concat_str(list(key), separator="|")))
        )
    return checks


def validate(store: Path | str) -> ValidationReport:
    """Check a store's invariants with lazy polars scans, evaluated together (bounded memory).

    Errors: duplicate primary keys, rows referring to frames/sequences/expressions that do not exist,
    non-finite or inverted boxes. Warnings: zero-area boxes, boxes outside a known image size, duplicate
    (frame, track) pairs, frame indices beyond the sequence length.
    """
    store = Path(store)
    scan = {t: pl.scan_parquet(table_path(store, t)) for t in TABLES}
    boxes, frames = scan["boxes"], scan["frames"]
    checks = _duplicate_keys(scan)
    orphan_rules = [
        ("boxes", "frame_uid", "frames", "frame_uid"),
        ("frames", "sequence_uid", "sequences", "sequence_uid"),
        ("referents", "frame_uid", "frames", "frame_uid"),
        ("referents", "expression_uid", "expressions", "expression_uid"),
    ]
    for child, column, parent, parent_column in orphan_rules:
        missing = scan[child].join(
            scan[parent].select(parent_column), left_on=column, right_on=parent_column, how="anti"
        )
        checks.append((f"{child} without {parent}", "error", _counted(missing, pl.col(column))))
    coords = ["x1", "y1", "x2", "y2"]
    non_finite = pl.any_horizontal([~pl.col(c).is_finite() | pl.col(c).is_null() for c in coords])
    inverted = (pl.col("x2") < pl.col("x1")) | (pl.col("y2") < pl.col("y1"))
    zero = (pl.col("x2") == pl.col("x1")) | (pl.col("y2") == pl.col("y1"))
    sized = boxes.join(frames.select("frame_uid", "width", "height"), on="frame_uid", how="inner").filter(
        pl.col("width").is_not_null()
    )
    outside = (
        (pl.col("x1") < 0)
        | (pl.col("y1") < 0)
        | (pl.col("x2") > pl.col("width"))
        | (pl.col("y2") > pl.col("height"))
    )
    tracked = boxes.filter(pl.col("track_id").is_not_null())
    pair_key = pl.struct("frame_uid", "track_id", "source")
    if tracked.select(pl.len() == pair_key.hash().n_unique()).collect().item():
        pairs = tracked.head(0)  # every (frame, track) pair is distinct: nothing to group
    else:
        pairs = (
            tracked.group_by("frame_uid", "track_id", "source")
            .agg(pl.len().alias("n"))
            .filter(pl.col("n") > 1)
        )
    pair_label = pl.concat_str([pl.col("frame_uid"), pl.col("track_id").cast(pl.String)], separator=" track ")
    beyond = frames.join(scan["sequences"].select("sequence_uid", "length"), on="sequence_uid").filter(
        pl.col("length").is_not_null() & (pl.col("frame_index") > pl.col("length"))
    )
    box_uid = pl.col("box_uid")
    checks += [
        ("non-finite box", "error", _counted(boxes.filter(non_finite), box_uid)),
        ("inverted box", "error", _counted(boxes.filter(inverted), box_uid)),
        ("zero-area box", "warning", _counted(boxes.filter(zero), box_uid)),
        ("box outside image", "warning", _counted(sized.filter(outside), box_uid)),
        ("duplicate (frame, track) pair", "warning", _counted(pairs, pair_label)),
        ("frame beyond sequence length", "warning", _counted(beyond, pl.col("frame_uid"))),
    ]
    results = pl.collect_all([query for _, _, query in checks])
    findings = [
        Finding(name, severity, r["n"].item(), [str(e) for e in r["examples"].item()])
        for (name, severity, _), r in zip(checks, results, strict=True)
        if r["n"].item()
    ]
    return ValidationReport(findings)
