"""``convert``: run a reader over a native dataset and stream its batches into a new store."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.readers import Reader, ReadOptions, get_reader
from omnipt_data.readers.base import Batch, Unit
from omnipt_data.store import Store, write_store


@dataclass(frozen=True)
class ConvertResult:
    store: Store
    skipped_rows: int


def _read_ahead(
    reader: Reader, source: Path, units: list[Unit], options: ReadOptions
) -> Iterator[tuple[Batch | None, int]]:
    """The reader's batches, each with the progress it completes, read one batch ahead in a thread.

    Parsing (polars, file reads) mostly releases the GIL, so the next unit is read while this one is
    checked and written; one thread keeps the reader's order (and the order of the problems it reports).
    """

    def batches() -> Iterator[tuple[Batch | None, int]]:
        for unit in units:
            for batch in reader.read_unit(source, unit, options):
                yield batch, 0
            yield None, unit.size or 1

    stream = batches()
    with ThreadPoolExecutor(1, "convert-reader") as pool:
        ahead = pool.submit(next, stream, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, stream, None)
            yield item


def convert(
    format_name: str,
    source: Path,
    out: Path,
    *,
    options: ReadOptions | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> ConvertResult:
    """Convert ``source`` with the reader ``format_name`` into the store ``out`` (atomically)."""
    options = options or ReadOptions()
    source = Path(source)
    if not source.exists():
        raise OmniptError(f"{source}: no such file or folder")
    reader = get_reader(format_name)
    try:
        return _convert(reader, source, out, options, overwrite=overwrite, show_progress=show_progress)
    except OSError as exc:  # a file that cannot be read: a folder where a file belongs, no permission, ...
        where = exc.filename if exc.filename is not None else source
        raise OmniptError(f"{where}: {exc.strerror or exc}") from None


def _convert(
    reader: Reader, source: Path, out: Path, options: ReadOptions, *, overwrite: bool, show_progress: bool
) -> ConvertResult:
    units = reader.units(source, options)
    problems = options.problems
    extra = {}
    with write_store(
        out,
        source={"format": reader.name, "path": str(source.resolve())},
        reader={"name": reader.name, "version": reader.version},
        image_roots=reader.image_roots(source, options),
        overwrite=overwrite,
        extra_manifest=extra,
    ) as writer:
        with progress_bar(
            f"convert {reader.name}", total=sum(u.size for u in units) or len(units), enabled=show_progress
        ) as advance:
            videos = getattr(reader, "videos", None)
            for batch, done in _read_ahead(reader, source, units, options):
                if batch is not None:
                    writer.write_batch(with_video_flag(batch, videos))
                advance(done)
        extra["problems"] = {"skipped_rows": problems.count, "examples": problems.summary()}
    return ConvertResult(Store.open(out), problems.count)


def with_video_flag(batch: Batch, videos: bool | None) -> Batch:
    """The batch with its sequences' ``video`` set from the reader's declaration where the rows leave it
    unknown (temporal training tasks draw only from videos)."""
    sequences = batch.get("sequences")
    if sequences is None or videos is None:
        return batch
    flag = pl.col("video").fill_null(videos) if "video" in sequences.columns else pl.lit(videos)
    return {**batch, "sequences": sequences.with_columns(flag.alias("video"))}
