"""The canonical store: one writer, one reader, the manifest and ``validate``.

A store directory holds ``<table>.parquet`` for every table of :mod:`omnipt_data.schema` and a
``manifest.json``. The writer streams: readers hand it batches, it buffers a bounded number of rows per
table and appends them as Parquet row groups, so memory does not grow with the dataset. It writes into a
temporary sibling directory renamed into place only when everything succeeded (see
:func:`omnipt_data.atomic.atomic_directory`): an error leaves no partial store behind.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow.parquet as pq

from omnipt_data import __version__
from omnipt_data.atomic import atomic_directory
from omnipt_data.errors import OmniptError
from omnipt_data.schema import PRIMARY_KEYS, SCHEMA_VERSION, TABLES, conform, empty, schema

MANIFEST = "manifest.json"
ROW_GROUP_ROWS = 65_536  # rows buffered per table: a conversion's memory beyond its largest unit
CHECK_ROWS = 65_536  # rows of all tables checked together by the stream validator


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
    """Buffers one table's batches and appends them to its Parquet file as row groups.

    Row groups are concatenated, encoded and written by ``pool``'s single thread (polars and pyarrow
    release the GIL), so the next batches are read while the previous one is written; at most one row
    group waits per table.
    """

    def __init__(self, path: Path, table: str, pool: ThreadPoolExecutor):
        self.path = path
        self.table = table
        self.pool = pool
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0
        self.rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.started = False  # a row group (or the empty file) was handed to the pool
        self.writing: Future | None = None

    def add(self, df: pl.DataFrame) -> None:
        """Append ``df``, already conformed to the table's schema."""
        if df.height == 0:
            return
        self.pending.append(df)
        self.pending_rows += df.height
        if self.pending_rows >= ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.pending and self.started:
            return
        parts = self.pending
        self.rows += self.pending_rows
        self.pending, self.pending_rows = [], 0
        self.wait()
        self.started = True
        self.writing = self.pool.submit(self._write, parts)

    def _write(self, parts: list[pl.DataFrame]) -> None:
        """Concatenate, convert and append one row group (in the pool's thread: the caller goes on)."""
        arrow = (pl.concat(parts) if parts else empty(self.table)).to_arrow()
        if self.writer is None:
            # a one-column key is unique: dictionary encoding would only be tried and dropped
            key = PRIMARY_KEYS[self.table]
            self.writer = pq.ParquetWriter(
                self.path,
                arrow.schema,
                compression="zstd",
                compression_level=1,
                use_dictionary=[c for c in arrow.schema.names if len(key) > 1 or c != key[0]],
            )
        self.writer.write_table(arrow)

    def wait(self) -> None:
        if self.writing is not None:
            self.writing.result()
            self.writing = None

    def close(self) -> None:
        self.flush()
        self.wait()
        if self.writer is not None:
            self.writer.close()


@dataclass
class StoreWriter:
    """Streams tables into a store directory being built; see :func:`write_store`."""

    directory: Path
    writers: dict[str, _TableWriter] = field(default_factory=dict)
    checks: StreamValidator = field(init=False)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "parquet-writer"))

    def __post_init__(self) -> None:
        self.checks = StreamValidator(self.directory / ".checks")
        # what summary_counts reads back, gathered on the way (None: a batch left it to the read-back)
        # (scene, track) pairs as sorted distinct 64-bit hashes: 8 bytes a track, however many boxes
        self.tracks: np.ndarray | None = np.empty(0, dtype=np.uint64)
        self.persons: set[str | None] = set()
        self.datasets: set[str | None] = set()
        self.unchecked: dict[str, list[pl.DataFrame]] = {}  # conformed rows not yet checked and counted
        self.unchecked_rows = 0

    def write(self, table: str, df: pl.DataFrame) -> None:
        self.write_batch({table: df})

    def write_batch(self, batch: dict[str, pl.DataFrame]) -> None:
        """Write tables that belong together (a reader's unit: its frames and their boxes, ...).

        Each table's rows go to its row groups at once; the checks and counts run on several batches
        together (up to :data:`CHECK_ROWS` rows), since their cost is mostly per query, not per row.
        """
        unknown = [t for t in batch if t not in TABLES]
        if unknown:
            raise KeyError(f"unknown table {unknown[0]!r}")
        conformed = {t: conform(t, df) for t, df in batch.items() if df.height}
        for table, df in conformed.items():
            self._writer(table).add(df)
            self.unchecked.setdefault(table, []).append(df)
            self.unchecked_rows += df.height
        if self.unchecked_rows >= CHECK_ROWS:
            self._check()

    def _check(self) -> None:
        """Check and count the rows written since the last call, as one batch."""
        if not self.unchecked:
            return
        batch = {t: pl.concat(parts) if len(parts) > 1 else parts[0] for t, parts in self.unchecked.items()}
        self.unchecked, self.unchecked_rows = {}, 0
        self.checks.add(batch)
        self._count(batch)

    def _count(self, batch: dict[str, pl.DataFrame]) -> None:
        for table in ("frames", "identities"):
            if table in batch:
                self.datasets.update(batch[table]["dataset"].unique().to_list())
        if "identities" in batch:
            self.persons.update(batch["identities"]["person_uid"].unique().to_list())
        if self.tracks is None or "boxes" not in batch:
            return
        frames = batch.get("frames", empty("frames")).lazy().select("frame_uid", scene_uid())
        pairs = (
            batch["boxes"]
            .lazy()
            .select("frame_uid", "track_id")
            .filter(pl.col("track_id").is_not_null())
            .join(frames, on="frame_uid", how="left")
            .select(
                pl.col("scene_uid").is_null().alias("orphan"),
                pl.struct("scene_uid", "track_id").hash().alias("pair"),
            )
            .unique()
            .collect()
        )
        if pairs["orphan"].any():  # boxes whose frames are in another batch
            self.tracks = None
        else:
            self.tracks = np.union1d(self.tracks, pairs["pair"].to_numpy())

    def summary(self, counts: dict[str, int]) -> dict[str, int] | None:
        """:func:`summary_counts` of the store written, from what passed through; None if unknown."""
        if self.tracks is None:
            return None
        return {
            **counts,
            "tracks": self.tracks.size,
            "persons": len(self.persons),
            "datasets": len(self.datasets),
        }

    def _writer(self, table: str) -> _TableWriter:
        if table not in self.writers:
            self.writers[table] = _TableWriter(table_path(self.directory, table), table, self.pool)
        return self.writers[table]

    def close(self) -> dict[str, int]:
        """Flush every table (absent ones are written empty) and return row counts."""
        try:
            self._check()
            for table in TABLES:
                self._writer(table).close()
        finally:
            self.pool.shutdown()
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
        try:
            yield writer
        except BaseException:
            writer.pool.shutdown(cancel_futures=True)  # no write lands in the folder being removed
            raise
        counts = writer.close()
        report = writer.checks.finish(tmp)
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
            "counts": writer.summary(counts) or summary_counts(tmp),
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


@dataclass(frozen=True)
class _Relation:
    """Rows of ``child`` refer to rows of ``parent`` through ``column`` (= ``parent_column``)."""

    child: str
    column: str
    parent: str
    parent_column: str

    def missing(self, scan: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        parents = scan[self.parent].select(self.parent_column)
        return scan[self.child].join(parents, left_on=self.column, right_on=self.parent_column, how="anti")


BOXES_FRAMES = _Relation("boxes", "frame_uid", "frames", "frame_uid")
FRAMES_SEQUENCES = _Relation("frames", "sequence_uid", "sequences", "sequence_uid")
RELATIONS = (
    BOXES_FRAMES,
    FRAMES_SEQUENCES,
    _Relation("referents", "frame_uid", "frames", "frame_uid"),
    _Relation("referents", "expression_uid", "expressions", "expression_uid"),
)


@dataclass(frozen=True)
class _Check:
    """One check of :func:`validate`: the ``rule`` its offenders break among the ``rows`` it looks at.

    ``table`` is the table whose rows offend; ``relation`` is the reference the check follows, if any.
    """

    name: str
    severity: str
    table: str
    rows: Callable[[dict[str, pl.LazyFrame]], pl.LazyFrame]
    rule: pl.Expr
    label: str
    relation: _Relation | None = None
    orphans: bool = False  # the rows whose reference finds nothing

    def query(self, scan: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
        return _counted(self.rows(scan).filter(self.rule), pl.col(self.label))


def _orphans(relation: _Relation) -> _Check:
    name = f"{relation.child} without {relation.parent}"
    return _Check(
        name, "error", relation.child, relation.missing, pl.lit(True), relation.column, relation, True
    )


def _boxes(scan: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    return scan["boxes"]


def _sized_boxes(scan: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    sizes = scan["frames"].select("frame_uid", "width", "height")
    return scan["boxes"].join(sizes, on="frame_uid", how="inner").filter(pl.col("width").is_not_null())


def _frames_with_length(scan: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    return scan["frames"].join(scan["sequences"].select("sequence_uid", "length"), on="sequence_uid")


_COORDS = ["x1", "y1", "x2", "y2"]
CHECKS = (
    *(_orphans(relation) for relation in RELATIONS),
    _Check(
        "non-finite box",
        "error",
        "boxes",
        _boxes,
        pl.any_horizontal([~pl.col(c).is_finite() | pl.col(c).is_null() for c in _COORDS]),
        "box_uid",
    ),
    _Check(
        "inverted box",
        "error",
        "boxes",
        _boxes,
        (pl.col("x2") < pl.col("x1")) | (pl.col("y2") < pl.col("y1")),
        "box_uid",
    ),
    _Check(
        "zero-area box",
        "warning",
        "boxes",
        _boxes,
        (pl.col("x2") == pl.col("x1")) | (pl.col("y2") == pl.col("y1")),
        "box_uid",
    ),
    _Check(
        "box outside image",
        "warning",
        "boxes",
        _sized_boxes,
        (pl.col("x1") < 0)
        | (pl.col("y1") < 0)
        | (pl.col("x2") > pl.col("width"))
        | (pl.col("y2") > pl.col("height")),
        "box_uid",
        BOXES_FRAMES,
    ),
    _Check(
        "frame beyond sequence length",
        "warning",
        "frames",
        _frames_with_length,
        pl.col("length").is_not_null() & (pl.col("frame_index") > pl.col("length")),
        "frame_uid",
        FRAMES_SEQUENCES,
    ),
)
PAIR_CHECK = "duplicate (frame, track) pair"
PAIR_KEY = ("frame_uid", "track_id", "source")


def _duplicate_key_query(scan: dict[str, pl.LazyFrame], table: str) -> pl.LazyFrame:
    key = list(PRIMARY_KEYS[table])
    dup = scan[table].group_by(key).agg(pl.len().alias("n")).filter(pl.col("n") > 1)
    return _counted(dup, pl.concat_str(key, separator="|"))


def _duplicate_pairs_query(scan: dict[str, pl.LazyFrame]) -> pl.LazyFrame:
    pairs = (
        scan["boxes"]
        .filter(pl.col("track_id").is_not_null())
        .group_by(*PAIR_KEY)
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") > 1)
    )
    label = pl.concat_str([pl.col("frame_uid"), pl.col("track_id").cast(pl.String)], separator=" track ")
    return _counted(pairs, label)


def _tracked_pairs(boxes: pl.LazyFrame) -> pl.LazyFrame:
    return boxes.filter(pl.col("track_id").is_not_null()).select(pl.struct(*PAIR_KEY).hash().alias("h"))


def _key_hashes(frame: pl.LazyFrame, table: str) -> pl.LazyFrame:
    return frame.select(pl.struct(list(PRIMARY_KEYS[table])).hash().alias("h"))


def _duplicate_keys(scan: dict[str, pl.LazyFrame]) -> list[tuple[str, str, pl.LazyFrame]]:
    """Exact duplicate-key checks, only for tables whose keys' hashes are not all distinct (cheap first)."""
    hashed = [
        _key_hashes(scan[t], t).select(pl.len().alias("rows"), pl.col("h").n_unique().alias("distinct"))
        for t in PRIMARY_KEYS
    ]
    checks = []
    for table, counts in zip(PRIMARY_KEYS, pl.collect_all(hashed), strict=True):
        if counts["rows"].item() != counts["distinct"].item():
            checks.append((f"duplicate {table} key", "error", _duplicate_key_query(scan, table)))
    return checks


def _scans(store: Path) -> dict[str, pl.LazyFrame]:
    return {t: pl.scan_parquet(table_path(store, t)) for t in TABLES}


def _report(results: dict[str, tuple[str, int, list[str]]]) -> ValidationReport:
    """Findings in the order :func:`validate` runs its checks; checks without offenders are left out."""
    order = [f"duplicate {t} key" for t in PRIMARY_KEYS] + [c.name for c in CHECKS] + [PAIR_CHECK]
    return ValidationReport(
        [
            Finding(name, severity, count, examples)
            for name in sorted(results, key=order.index)
            for severity, count, examples in [results[name]]
            if count
        ]
    )


def validate(store: Path | str) -> ValidationReport:
    """Check a store's invariants with lazy polars scans, evaluated together (bounded memory).

    Errors: duplicate primary keys, rows referring to frames/sequences/expressions that do not exist,
    non-finite or inverted boxes. Warnings: zero-area boxes, boxes outside a known image size, duplicate
    (frame, track) pairs, frame indices beyond the sequence length.
    """
    scan = _scans(Path(store))
    checks = _duplicate_keys(scan) + [(c.name, c.severity, c.query(scan)) for c in CHECKS]
    tracked = _tracked_pairs(scan["boxes"])
    if not tracked.select(pl.len() == pl.col("h").n_unique()).collect().item():
        checks.append((PAIR_CHECK, "warning", _duplicate_pairs_query(scan)))
    results = pl.collect_all([query for _, _, query in checks])
    return _report(
        {
            name: (severity, r["n"].item(), [str(e) for e in r["examples"].item()])
            for (name, severity, _), r in zip(checks, results, strict=True)
        }
    )


class _HashSpill:
    """64-bit hashes kept on disk in :attr:`BUCKETS` files by their top bits: finding a repeated one then
    takes the memory of one bucket (an eighth of the hashes), however large the store grows."""

    BUCKETS = 8

    def __init__(self, folder: Path):
        self.folder = folder

    def add(self, hashes: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        bucket = hashes >> np.uint64(61)
        for b in range(self.BUCKETS):
            part = hashes[bucket == b]
            if part.size:
                with open(self.folder / str(b), "ab") as handle:
                    part.tofile(handle)

    def repeated(self) -> bool:
        for path in sorted(self.folder.glob("*")):
            hashes = np.fromfile(path, dtype=np.uint64)
            hashes.sort()
            if (hashes[1:] == hashes[:-1]).any():
                return True
        return False


class StreamValidator:
    """:func:`validate`'s checks run on the batches a writer receives, so a new store is not read back.

    Row checks are exact per batch; a check following a reference (a box's frame) is exact for a batch
    that holds every row its rows refer to, and is otherwise left to the exact query over the finished
    files. Duplicate keys and (frame, track) pairs are screened with 64-bit hashes, spilled to disk (see
    :class:`_HashSpill`); a repeated hash sends that check to the exact query too.
    """

    def __init__(self, spill: Path):
        """``spill``: a folder of its own for the hashes, removed by :meth:`finish`."""
        self.results: dict[str, tuple[str, int, list[str]]] = {c.name: (c.severity, 0, []) for c in CHECKS}
        self.deferred: set[str] = set()
        self.spill = spill
        self.hashes = {name: _HashSpill(spill / str(n)) for n, name in enumerate((*PRIMARY_KEYS, PAIR_CHECK))}

    def add(self, batch: dict[str, pl.DataFrame]) -> None:
        """Check one batch of conformed, non-empty frames (written together, such as a reader's unit)."""
        lazy = {t: df.lazy() for t, df in batch.items()}
        hashed = list(batch)
        queries = [_key_hashes(lazy[t], t) for t in batch]
        if "boxes" in batch:
            hashed.append(PAIR_CHECK)
            queries.append(_tracked_pairs(lazy["boxes"]))
        followed = [r for r in RELATIONS if r.child in batch]
        complete = [r for r in followed if r.parent in batch]
        runnable = [
            c
            for c in CHECKS
            if c.table in batch
            and c.name not in self.deferred
            and (c.relation is None or (c.relation in complete and not c.orphans))
        ]
        # one pass over the rows each check looks at: how many offend, and the first labels among them
        looked_at = {c.rows: c.rows(lazy) for c in runnable}
        tallies = [
            frame.select(
                expr
                for c in runnable
                if c.rows is rows
                for expr in (
                    c.rule.sum().alias(f"{c.name} #n"),
                    pl.col(c.label).filter(c.rule).sort().head(3).implode().alias(f"{c.name} #e"),
                )
            )
            for rows, frame in looked_at.items()
        ]
        found = pl.collect_all([*queries, *(r.missing(lazy).select(pl.len()) for r in complete), *tallies])
        for name, hashes in zip(hashed, found, strict=False):
            self.hashes[name].add(hashes["h"].to_numpy())
        missing = found[len(hashed) : len(hashed) + len(complete)]
        # rows referring to rows of another batch (or to none): the exact query over the files settles them
        unsettled = {r for r in followed if r not in complete}
        unsettled |= {r for r, n in zip(complete, missing, strict=True) if n.item()}
        self.deferred |= {c.name for c in CHECKS if c.relation in unsettled}
        tallied = {
            key: value
            for df in found[len(hashed) + len(complete) :]
            for key, value in df.row(0, named=True).items()
        }
        for check in runnable:
            n = tallied[f"{check.name} #n"]
            if not n or check.name in self.deferred:
                continue
            severity, count, examples = self.results[check.name]
            examples = sorted([*examples, *(str(e) for e in tallied[f"{check.name} #e"])])[:3]
            self.results[check.name] = (severity, count + n, examples)

    def finish(self, store: Path) -> ValidationReport:
        """The report :func:`validate` would give for the finished ``store``."""
        scan = _scans(store)
        exact = [(c.name, c.severity, c.query(scan)) for c in CHECKS if c.name in self.deferred]
        for name, hashes in self.hashes.items():
            if not hashes.repeated():
                continue
            if name == PAIR_CHECK:
                exact.append((name, "warning", _duplicate_pairs_query(scan)))
            else:
                exact.append((f"duplicate {name} key", "error", _duplicate_key_query(scan, name)))
        shutil.rmtree(self.spill, ignore_errors=True)
        results = dict(self.results)
        for (name, severity, _), r in zip(exact, pl.collect_all([q for _, _, q in exact]), strict=True):
            results[name] = (severity, r["n"].item(), [str(e) for e in r["examples"].item()])
        return _report(results)
