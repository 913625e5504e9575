"""``merge``: union several stores into one, keeping every uid unique and every image findable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.schema import TABLES
from omnipt_data.store import Store, table_path, write_store

UID_COLUMNS = {table: [c for c in columns if c.endswith("_uid")] for table, columns in TABLES.items()}
BATCH_ROWS = 65_536


def _sequence_uids(store: Store) -> set[str]:
    return set(store.scan("sequences").select("sequence_uid").collect()["sequence_uid"].to_list()) | set(
        store.scan("identities").select("person_uid").unique().collect()["person_uid"].to_list()
    )


def merge_stores(
    stores: list[Path], out: Path, *, overwrite: bool = False, show_progress: bool = True
) -> Store:
    """Write the union of ``stores`` to ``out``.

    A store whose sequences (or persons) collide with an earlier one's gets every uid prefixed with
    ``s<k>:`` so nothing is merged by accident; a store identical to an earlier one (same content hash)
    is skipped. Image paths stay relative to their dataset's root; where two stores give one dataset
    different roots, the later store's image paths are made absolute.
    """
    if len(stores) < 2:
        raise OmniptError("merge needs at least two stores")
    opened = [Store.open(p) for p in stores]
    seen_hashes: dict[str, Path] = {}
    seen_uids: set[str] = set()
    roots: dict[str, str] = {}
    plans: list[tuple[Store, str, dict[str, str]]] = []
    skipped = []
    for k, store in enumerate(opened):
        manifest = store.manifest
        if manifest["content_hash"] in seen_hashes:
            skipped.append(str(store.path))
            continue
        seen_hashes[manifest["content_hash"]] = store.path
        uids = _sequence_uids(store)
        prefix = f"s{k}:" if uids & seen_uids else ""
        seen_uids |= {prefix + u for u in uids}
        absolute = {}
        for dataset, root in manifest["image_roots"].items():
            if roots.setdefault(dataset, root) != root:
                absolute[dataset] = root
        plans.append((store, prefix, absolute))
    sources: list[dict[str, Any]] = [
        {
            "path": str(s.path.resolve()),
            "source": s.manifest["source"],
            "reader": s.manifest["reader"],
            "content_hash": s.manifest["content_hash"],
            "uid_prefix": prefix,
        }
        for s, prefix, _ in plans
    ]
    total = sum(pq.ParquetFile(table_path(s.path, t)).metadata.num_rows for s, _, _ in plans for t in TABLES)
    with (
        write_store(
            out,
            source={"format": "merge", "stores": sources, "skipped_duplicates": skipped},
            reader={"name": "merge", "version": "1"},
            image_roots=roots,
            overwrite=overwrite,
        ) as writer,
        progress_bar("merge", total=max(total, 1), enabled=show_progress) as advance,
    ):
        for store, prefix, absolute in plans:
            for table in TABLES:
                for batch in pq.ParquetFile(table_path(store.path, table)).iter_batches(BATCH_ROWS):
                    df = pl.from_arrow(batch)
                    assert isinstance(df, pl.DataFrame)
                    if prefix:
                        df = df.with_columns(
                            (pl.lit(prefix) + pl.col(c)).alias(c)
                            for c in UID_COLUMNS[table]
                            if c in df.columns
                        )
                    if absolute and "image_path" in df.columns and "dataset" in df.columns:
                        root = pl.col("dataset").replace_strict(
                            absolute, default=None, return_dtype=pl.String
                        )
                        df = df.with_columns(
                            pl.when(root.is_null())
                            .then(pl.col("image_path"))
                            .otherwise(root + "/" + pl.col("image_path"))
                            .alias("image_path")
                        )
                    writer.write(table, df)
                    advance(df.height)
    return Store.open(out)
