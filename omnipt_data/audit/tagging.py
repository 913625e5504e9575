"""Audit findings as FiftyOne tags: ``audit:<check>`` on the samples a finding points at, and a saved
view ``audit-<check>`` per check, so a reviewer opens the flagged frames in the App.

Samples are matched on the keys :mod:`omnipt_data.view` loads: ``frame_uid`` for a store's frames,
``record_id`` for a build's records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omnipt_data.audit.base import CheckResult
from omnipt_data.errors import OmniptError

TAG_PREFIX = "audit:"
VIEW_PREFIX = "audit-"
KEYS = ("frame_uid", "record_id")


def _keys(
    findings: Mapping[str, Iterable[Mapping[str, Any]]] | Iterable[CheckResult],
) -> dict[str, dict[str, list[str]]]:
    """check -> key field -> sorted values named by its findings."""
    if isinstance(findings, Mapping):
        items = [(name, list(rows)) for name, rows in findings.items()]
    else:
        items = [(r.name, r.findings) for r in findings if r.severity != "info"]
    keyed: dict[str, dict[str, list[str]]] = {}
    for name, rows in items:
        for key in KEYS:
            values = sorted({str(row[key]) for row in rows if row.get(key) is not None})
            if values:
                keyed.setdefault(name, {})[key] = values
    return keyed


def default_dataset_name(target: Path, kind: str) -> str:
    """The name ``omnipt-data view`` gives the dataset of a store or build."""
    from omnipt_data.view.fiftyone_loader import default_name

    return default_name(target, kind)


def tag_findings_in_fiftyone(
    dataset_name: str, findings: Mapping[str, Iterable[Mapping[str, Any]]] | Iterable[CheckResult]
) -> dict[str, int]:
    """Tag the samples of ``dataset_name`` that findings point at (by ``frame_uid`` or ``record_id``).

    ``findings`` is ``{check: [finding, ...]}`` or the :class:`CheckResult` list of an audit (info checks
    are left out). Earlier ``audit:*`` tags and views are removed first, so they say what this audit
    found. Returns the number of samples tagged per check.
    """
    from omnipt_data.view.fiftyone_loader import import_fiftyone

    fo = import_fiftyone()
    from fiftyone import ViewField as F

    if dataset_name not in fo.list_datasets():
        raise OmniptError(f"no FiftyOne dataset named {dataset_name!r} (load it with: omnipt-data view)")
    dataset = fo.load_dataset(dataset_name)
    # A cross-view store is a grouped dataset: tag the samples of every slice, not only the active one.
    samples = dataset.select_group_slices(_allow_mixed=True) if dataset.media_type == "group" else dataset
    fields = dataset.get_field_schema()
    stale = [tag for tag in samples.distinct("tags") if tag.startswith(TAG_PREFIX)]
    if stale:
        samples.untag_samples(stale)
    for name in dataset.list_saved_views():
        if name.startswith(VIEW_PREFIX):
            dataset.delete_saved_view(name)
    tagged: dict[str, int] = {}
    for check, by_key in _keys(findings).items():
        usable = {key: values for key, values in by_key.items() if key in fields}
        if not usable:
            continue
        tag = TAG_PREFIX + check
        for key, values in usable.items():
            samples.match(F(key).is_in(values)).tag_samples(tag)
        flagged = samples.match_tags(tag)
        tagged[check] = len(flagged)
        if tagged[check]:
            dataset.save_view(VIEW_PREFIX + check, flagged, overwrite=True)
    return tagged
