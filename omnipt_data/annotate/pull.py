"""``review pull``: a project's reviewed tasks back into a store, as a full snapshot.

Only reviewed tasks count (a task's latest submitted annotation); pending and skipped ones add nothing.
What the reviewer kept, fixed or drew becomes ``boxes`` (``source = "review:<email>"``, and in ``extra``
the status, reviewer, time and task), ``semantics`` (captions, attributes, summaries, interactions),
``expressions`` and ``referents``, with the frames and sequences they live in. Every decision, rejected
items included, is also kept in ``review_decisions.parquet`` beside the tables; the manifest's ``review``
entry holds the project, the reviewers, one line per annotation (who, when) and the counts.

When several tasks speak of the same item (a track's caption seen in many frames, a box referred to by
several expressions), a change (edit, addition, removal) beats an untouched prediction, and among changes
the latest annotation wins. New tracks drawn by reviewers get ids above the model's largest in their
scene, in a stable order, so pulling twice writes the same tables.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from omnipt_data.annotate.labelconfig import SENTENCE, SUMMARY, ReviewConfig, parse_label_config
from omnipt_data.annotate.labelstudio import Connection, iter_tasks, require_project, user_emails
from omnipt_data.annotate.review import ACCEPTED, REJECTED, STATUSES, TaskReview, review_task
from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.schema import SOURCE_REVIEW_PREFIX, TABLES, conform
from omnipt_data.store import Store, file_sha256, write_store

READER = {"name": "review", "version": "1"}
DECISIONS_FILE = "review_decisions.parquet"
DECISION_SCHEMA = {
    "kind": pl.String(),
    "field": pl.String(),
    "item": pl.String(),
    "status": pl.String(),
    "task": pl.String(),
    "reviewer": pl.String(),
    "reviewed_at": pl.String(),
}


def fetch_reviews(
    conn: Connection, project_title: str, *, show_progress: bool = True
) -> tuple[Any, list[TaskReview]]:
    """The project and every push-made task, compared with its prediction."""
    project = require_project(conn, project_title)
    config = parse_label_config(project.label_config or "", origin=f"the label config of {project_title!r}")
    emails = user_emails(conn)
    reviews: list[TaskReview] = []
    with progress_bar(
        f"read {project_title}", total=project.task_number or 0, enabled=show_progress
    ) as advance:
        for task in iter_tasks(conn, project.id, fields="all"):
            review = review_task(task, config, emails)
            if review is not None:
                reviews.append(review)
            advance(1)
    reviews.sort(key=lambda r: r.key)
    return project, reviews


# How strongly a task's version of an item claims it: a person's change beats an untouched prediction,
# which beats a caption or attribute that only disappeared with its deleted box.
EXPLICIT, UNTOUCHED, WITH_REGION = 2, 1, 0


@dataclass(order=True)
class _Candidate:
    """One task's version of an item; the winner per uid is the highest (rank, time, task key)."""

    rank: int
    updated_at: str
    task: str
    row: dict[str, Any] = field(compare=False)
    table: str = field(compare=False)
    status: str = field(compare=False)


class _Assembler:
    def __init__(self, config: ReviewConfig):
        self.config = config
        self.candidates: dict[tuple[str, str], _Candidate] = {}
        self.frames: dict[str, dict[str, Any]] = {}
        self.sequences: dict[str, dict[str, Any]] = {}
        self.referents: list[tuple[str, str, int]] = []
        self.image_roots: dict[str, str] = {}
        self.new_tracks: dict[tuple[str, str], int] = {}
        self.ignored: dict[str, int] = {}

    def offer(
        self,
        table: str,
        uid: str,
        row: dict[str, Any],
        status: str,
        review: TaskReview,
        *,
        rank: int | None = None,
    ) -> None:
        assert review.annotation is not None
        rank = rank if rank is not None else UNTOUCHED if status == ACCEPTED else EXPLICIT
        candidate = _Candidate(rank, review.annotation.updated_at, review.key, row, table, status)
        current = self.candidates.get((table, uid))
        if current is None or candidate > current:
            self.candidates[(table, uid)] = candidate

    def note(self, what: str, n: int = 1) -> None:
        self.ignored[what] = self.ignored.get(what, 0) + n

    def number_new_tracks(self, reviews: list[TaskReview]) -> None:
        """Ids for tracks reviewers drew: above the model's largest in the scene, in (task, region) order."""
        next_id: dict[str, int] = {}
        for review in reviews:
            if review.kind == "boxes":
                continue
            scene = review.meta["scene"]
            for rid in sorted(review.reviewed.regions):
                if rid in review.meta["regions"]:
                    continue
                next_id[scene] = next_id.get(scene, review.meta["max_track_id"]) + 1
                self.new_tracks[(review.key, rid)] = next_id[scene]

    def track_of(self, review: TaskReview, rid: str) -> int | None:
        known = review.meta["regions"].get(rid)
        if known is not None:
            return known["track_id"]
        return self.new_tracks.get((review.key, rid))

    def add(self, review: TaskReview) -> None:
        assert review.annotation is not None
        meta = review.meta
        for frame in meta["frames"]:
            self.frames[frame["frame_uid"]] = frame
        if meta.get("sequence"):
            self.sequences[meta["sequence_uid"]] = meta["sequence"]
        if meta.get("dataset") and meta.get("image_root"):
            self.image_roots[meta["dataset"]] = meta["image_root"]
        source = SOURCE_REVIEW_PREFIX + review.annotation.reviewer
        if review.kind != "interactions":
            self._boxes(review, source)
        if review.kind in ("boxes", "tracks"):
            self._region_texts(review, source)
        if review.kind == "tracks" and self.config.summary:
            text = review.reviewed.texts.get(SUMMARY)
            status = next((d.status for d in review.decisions if d.field == "summary"), None)
            if status is not None:
                uid = f"{meta['sequence_uid']}/summary"
                row = {"semantic_uid": uid, "sequence_uid": meta["sequence_uid"], "kind": "summary"}
                self.offer("semantics", uid, {**row, "text": text, "source": source}, status, review)
        if review.kind == "interactions":
            self._interactions(review, source)
        if review.kind == "expressions":
            self._expression(review, source)
        for what, n in review.ignored.items():
            self.note(what, n)

    def _extra(self, review: TaskReview, status: str) -> str:
        assert review.annotation is not None
        payload = {
            "review": {
                "status": status,
                "reviewer": review.annotation.reviewer,
                "reviewed_at": review.annotation.updated_at,
                "task": review.key,
            }
        }
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()

    def _boxes(self, review: TaskReview, source: str) -> None:
        frames = review.meta["frames"]
        for rid, region in sorted(review.reviewed.regions.items()):
            known = review.meta["regions"].get(rid) or {}
            predicted = review.predicted.regions.get(rid)
            track = self.track_of(review, rid)
            for position, corners in sorted(region.boxes.items()):
                if review.kind == "boxes":
                    status = review.region_status[rid]
                else:
                    status = review.box_status[(rid, position)]
                if status == ACCEPTED and predicted is not None:
                    corners = predicted.boxes[position]  # the model's numbers, not the reviewer's round trip
                x1, y1, x2, y2 = (round(v, 3) for v in corners)
                frame_uid = frames[position - 1]["frame_uid"]
                uid = f"{frame_uid}/review/{rid}"
                row = {
                    "box_uid": uid,
                    "frame_uid": frame_uid,
                    "track_id": track,
                    "category": region.label,
                    "class_id": known.get("class_id") if region.label == known.get("category") else None,
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                    "ignore": False,
                    "source": source,
                    "extra": self._extra(review, status),
                }
                self.offer("boxes", uid, row, status, review)

    def _region_texts(self, review: TaskReview, source: str) -> None:
        sequence_uid = review.meta["sequence_uid"]
        by_item: dict[tuple[str, str], str] = {
            (d.field, d.item.rsplit("#", 1)[1]): d.status
            for d in review.decisions
            if d.field == "caption" or d.field.startswith("attribute:")
        }
        for (field_name, rid), status in sorted(by_item.items()):
            track = self.track_of(review, rid)
            if track is None:
                self.note(f"{field_name} of boxes without a track (a semantics row needs a track)")
                continue
            region = review.reviewed.regions.get(rid)
            if field_name == "caption":
                uid = f"{sequence_uid}/track_caption/{track}"
                name = (review.meta["regions"].get(rid) or {}).get("caption_name")
                text = region.caption if region else None
                kind = "track_caption"
            else:
                name = field_name.split(":", 1)[1]
                uid = f"{sequence_uid}/track_attribute/{track}/{name}"
                text = region.attributes.get(name) if region else None
                kind = "track_attribute"
            row = {
                "semantic_uid": uid,
                "sequence_uid": sequence_uid,
                "kind": kind,
                "track_id": track,
                "name": name,
                "text": text,
                "source": source,
            }
            # A text gone only because its box was deleted (boxes kind: one frame) does not outvote others.
            gone_with_box = region is None and status == REJECTED
            self.offer("semantics", uid, row, status, review, rank=WITH_REGION if gone_with_box else None)

    def _interactions(self, review: TaskReview, source: str) -> None:
        sequence_uid = review.meta["sequence_uid"]
        for decision in review.decisions:
            pair, label = decision.item.rsplit("#", 1)[1].split(":", 1)
            a, b = (self.track_of(review, rid) for rid in pair.split("->"))
            uid = f"{sequence_uid}/interaction/{a}-{b}/{label}"
            row = {
                "semantic_uid": uid,
                "sequence_uid": sequence_uid,
                "kind": "interaction",
                "track_id": a,
                "other_track_id": b,
                "name": label,
                "source": source,
            }
            self.offer("semantics", uid, row, decision.status, review)

    def _expression(self, review: TaskReview, source: str) -> None:
        expression = dict(review.meta["expression"])
        uid = expression["expression_uid"]
        status = next((d.status for d in review.decisions if d.field == "sentence"), ACCEPTED)
        if status != REJECTED:
            expression["sentence"] = review.reviewed.texts.get(SENTENCE, expression["sentence"])
        self.offer("expressions", uid, expression, status, review)
        frames = review.meta["frames"]
        for rid, region in sorted(review.reviewed.regions.items()):
            track = self.track_of(review, rid)
            for position in sorted(region.boxes):
                self.referents.append((uid, frames[position - 1]["frame_uid"], track))

    def tables(self) -> dict[str, pl.DataFrame]:
        rows: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
        for (table, _), candidate in sorted(self.candidates.items()):
            if candidate.status != REJECTED:
                rows[table].append(candidate.row)
        kept = {row["expression_uid"] for row in rows["expressions"]}
        rows["referents"] = [
            {"expression_uid": e, "frame_uid": f, "track_id": t}
            for e, f, t in sorted(set(self.referents))
            if e in kept
        ]
        rows["frames"] = [self.frames[uid] for uid in sorted(self.frames)]
        rows["sequences"] = [self.sequences[uid] for uid in sorted(self.sequences)]
        return {
            table: conform(
                table,
                pl.DataFrame(
                    [{c: r.get(c) for c in TABLES[table]} for r in rows[table]], schema=TABLES[table]
                ),
            )
            for table in TABLES
            if rows[table]
        }


@dataclass
class PullResult:
    store: Store
    tasks: dict[str, int]
    counts: dict[str, dict[str, dict[str, int]]]


def decision_counts(reviews: list[TaskReview]) -> dict[str, dict[str, dict[str, int]]]:
    """``{kind: {field: {status: n}}}`` over the reviewed tasks (every status present, zeros included)."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for review in reviews:
        for decision in review.decisions:
            per_field = counts.setdefault(decision.kind, {}).setdefault(
                decision.field, dict.fromkeys(STATUSES, 0)
            )
            per_field[decision.status] += 1
    return {kind: dict(sorted(fields.items())) for kind, fields in sorted(counts.items())}


def task_states(reviews: list[TaskReview]) -> dict[str, int]:
    states = {"total": len(reviews), "reviewed": 0, "pending": 0, "skipped": 0}
    for review in reviews:
        states[review.state] += 1
    return states


def _replaceable(out: Path, conn: Connection, project_id: int) -> bool:
    """An earlier pull of the same project may be replaced without --overwrite (a pull is a snapshot)."""
    try:
        manifest = Store.open(out).manifest
    except OmniptError:
        return False
    source = manifest.get("source", {})
    return (
        manifest.get("reader", {}).get("name") == READER["name"]
        and source.get("url") == conn.url
        and source.get("project_id") == project_id
    )


def pull(
    conn: Connection, project_title: str, out: Path, *, overwrite: bool = False, show_progress: bool = True
) -> PullResult:
    """Write the reviewed labels of the project into the store ``out`` (atomically, as a full snapshot)."""
    out = Path(out)
    project, reviews = fetch_reviews(conn, project_title, show_progress=show_progress)
    if out.exists() and not overwrite and not _replaceable(out, conn, project.id):
        raise OmniptError(
            f"{out} already exists and is not a pull of project {project_title!r} (pass --overwrite)"
        )
    config = parse_label_config(project.label_config or "", origin=f"the label config of {project_title!r}")
    reviewed = [r for r in reviews if r.state == "reviewed"]
    assembler = _Assembler(config)
    assembler.number_new_tracks(reviewed)
    for review in reviewed:
        assembler.add(review)
    tables = assembler.tables()
    decisions = pl.DataFrame(
        [
            {
                "kind": d.kind,
                "field": d.field,
                "item": d.item,
                "status": d.status,
                "task": r.key,
                "reviewer": r.annotation.reviewer if r.annotation else None,
                "reviewed_at": r.annotation.updated_at if r.annotation else None,
            }
            for r in reviewed
            for d in r.decisions
        ],
        schema=DECISION_SCHEMA,
    )
    counts = decision_counts(reviewed)
    states = task_states(reviews)
    predictions = {}
    for review in reviewed:
        predictions.setdefault(review.meta["model"], review.meta.get("prediction") or {})
    review_manifest: dict[str, Any] = {
        "project": project_title,
        "project_id": project.id,
        "pulled_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tasks": states,
        "reviewers": sorted({r.annotation.reviewer for r in reviewed if r.annotation}),
        "annotations": [
            {
                "task": r.key,
                "task_id": r.task_id,
                "annotation_id": r.annotation.annotation_id,
                "reviewer": r.annotation.reviewer,
                "created_at": r.annotation.created_at,
                "updated_at": r.annotation.updated_at,
                "lead_time": r.annotation.lead_time,
            }
            for r in reviewed
            if r.annotation
        ],
        "decisions": counts,
        "ignored": dict(sorted(assembler.ignored.items())),
        "predictions": predictions,
    }
    with write_store(
        out,
        source={
            "label_studio": "review",
            "url": conn.url,
            "project": project_title,
            "project_id": project.id,
        },
        reader=READER,
        image_roots=assembler.image_roots,
        overwrite=True,
        extra_manifest={"review": review_manifest},
    ) as writer:
        writer.write_batch(tables)
        decisions_path = writer.directory / DECISIONS_FILE
        decisions.sort("task", "kind", "field", "item").write_parquet(decisions_path)
        review_manifest["decisions_file"] = {"path": DECISIONS_FILE, "sha256": file_sha256(decisions_path)}
    return PullResult(Store.open(out), states, counts)
