"""What a reviewer did to the model's output, field by field: the comparison behind ``pull`` and ``stats``.

A task's latest submitted annotation is compared with the model's prediction (both as Label Studio results,
parsed with the project's label config). Every item gets a status:

- ``accepted``: kept as the model gave it (a box within 0.01 px, the same label, the same text or choice);
- ``edited``: kept but changed (a box moved or relabelled, a track with any box changed, a text rewritten);
- ``rejected``: deleted (a box or track removed, a text cleared, a relation removed);
- ``added``: given by the reviewer where the model gave nothing (a missed person, a new caption).

Fields per kind: ``boxes`` -> box, caption, attribute:<name>; ``tracks`` -> track, box (per frame),
caption, attribute:<name>, summary; ``expressions`` -> referent (per referred track), box (per frame),
sentence; ``interactions`` -> interaction (per actor, target and label).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from omnipt_data.annotate.labelconfig import BOX, CAPTION, SENTENCE, SUMMARY, ReviewConfig
from omnipt_data.annotate.regions import ParsedResult, Region, expand_keyframes, from_percent, same_box
from omnipt_data.annotate.tasks import KEY_FIELD, META_FIELD

STATUSES = ("accepted", "edited", "rejected", "added")
ACCEPTED, EDITED, REJECTED, ADDED = STATUSES
REGION_FIELD = {"boxes": "box", "tracks": "track", "expressions": "referent"}


@dataclass(frozen=True)
class Decision:
    kind: str
    field: str
    item: str
    status: str


@dataclass(frozen=True)
class AnnotationInfo:
    annotation_id: int
    reviewer: str
    created_at: str
    updated_at: str
    lead_time: float | None


@dataclass
class TaskReview:
    """One task: its prediction and latest annotation, parsed, and the status of everything in them."""

    key: str
    task_id: int
    kind: str
    meta: dict[str, Any]
    state: str  # "reviewed", "pending" (no annotation) or "skipped" (only cancelled annotations)
    annotation: AnnotationInfo | None = None
    predicted: ParsedResult = field(default_factory=ParsedResult)
    reviewed: ParsedResult = field(default_factory=ParsedResult)
    region_status: dict[str, str] = field(default_factory=dict)
    box_status: dict[tuple[str, int], str] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)


def text_status(predicted: str | None, reviewed: str | None) -> str | None:
    predicted, reviewed = (predicted or "").strip() or None, (reviewed or "").strip() or None
    if predicted is None:
        return ADDED if reviewed is not None else None
    if reviewed is None:
        return REJECTED
    return ACCEPTED if predicted == reviewed else EDITED


def parse_result(
    result: Iterable[dict[str, Any]], config: ReviewConfig, *, width: float, height: float, frames_count: int
) -> ParsedResult:
    """Regions, relations and texts of a result list; per-region fields join their region by id."""
    parsed = ParsedResult()
    fields: list[dict[str, Any]] = []
    for item in result:
        kind, name, value = item.get("type"), item.get("from_name"), item.get("value") or {}
        if kind == "relation":
            direction = item.get("direction", "right")
            pairs = {
                "right": [(item["from_id"], item["to_id"])],
                "left": [(item["to_id"], item["from_id"])],
                "bi": [(item["from_id"], item["to_id"]), (item["to_id"], item["from_id"])],
            }.get(direction, [(item["from_id"], item["to_id"])])
            for a, b in pairs:
                for label in item.get("labels") or []:
                    parsed.relations.add((a, b, label))
        elif name == BOX and kind == "rectanglelabels":
            labels = value.get("rectanglelabels") or [None]
            region = parsed.regions.setdefault(item["id"], Region(item["id"], labels[0]))
            region.label = labels[0]
            region.boxes[1] = from_percent(value, width, height)
        elif name == BOX and kind == "videorectangle":
            labels = value.get("labels") or [None]
            region = parsed.regions.setdefault(item["id"], Region(item["id"], labels[0]))
            region.label = labels[0]
            region.boxes = expand_keyframes(
                value.get("sequence") or [], frames_count=frames_count, width=width, height=height
            )
        else:
            fields.append(item)
    for item in fields:
        kind, name, value = item.get("type"), item.get("from_name"), item.get("value") or {}
        if kind == "textarea":
            text = " ".join(t.strip() for t in value.get("text") or [] if t and t.strip()) or None
            if name == CAPTION and config.caption:
                region = parsed.regions.get(item.get("id", ""))
                if region is not None:
                    region.caption = text
            elif name in (SUMMARY, SENTENCE) and text:
                parsed.texts[name] = text
        elif kind == "choices" and name in config.attributes:
            region = parsed.regions.get(item.get("id", ""))
            choices = value.get("choices") or []
            if region is not None and choices:
                region.attributes[name] = choices[0]
    # A region whose track was switched off everywhere has no box left: it is gone.
    parsed.regions = {rid: region for rid, region in parsed.regions.items() if region.boxes}
    return parsed


def _latest(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(items, key=lambda a: (str(a.get("updated_at") or ""), a.get("id") or 0)) if items else None


def _as_dict(item: Any) -> dict[str, Any]:
    return item if isinstance(item, dict) else item.model_dump()


def review_task(task: Any, config: ReviewConfig, emails: dict[int, str]) -> TaskReview | None:
    """Compare a listed task's latest annotation with its prediction; None for tasks not made by push."""
    data = task.data or {}
    meta = data.get(META_FIELD)
    key = data.get(KEY_FIELD)
    if not key or not isinstance(meta, dict):
        return None
    kind = meta["kind"]
    frames = meta["frames"]
    size = {"width": frames[0]["width"], "height": frames[0]["height"], "frames_count": len(frames)}
    annotations = [_as_dict(a) for a in task.annotations or []]
    submitted = [a for a in annotations if not a.get("was_cancelled")]
    predictions = [_as_dict(p) for p in task.predictions or []]
    model_version = meta["model"].split(":", 1)[-1]
    mine = [p for p in predictions if p.get("model_version") == model_version] or predictions
    prediction = _latest(mine)
    predicted = parse_result(prediction["result"] if prediction else [], config, **size)
    review = TaskReview(key=key, task_id=task.id, kind=kind, meta=meta, state="pending", predicted=predicted)
    annotation = _latest(submitted)
    if annotation is None:
        review.state = "skipped" if annotations else "pending"
        return review
    reviewer_id = annotation.get("completed_by")
    review.annotation = AnnotationInfo(
        annotation_id=annotation["id"],
        reviewer=emails.get(reviewer_id, f"user-{reviewer_id}"),
        created_at=str(annotation.get("created_at") or ""),
        updated_at=str(annotation.get("updated_at") or ""),
        lead_time=annotation.get("lead_time"),
    )
    review.state = "reviewed"
    review.reviewed = parse_result(annotation.get("result") or [], config, **size)
    _decide(review, config)
    return review


def _region_status(predicted: Region | None, reviewed: Region | None) -> str:
    if reviewed is None:
        return REJECTED
    if predicted is None:
        return ADDED
    if predicted.label != reviewed.label or predicted.boxes.keys() != reviewed.boxes.keys():
        return EDITED
    same = all(same_box(predicted.boxes[p], reviewed.boxes[p]) for p in predicted.boxes)
    return ACCEPTED if same else EDITED


def _decide(review: TaskReview, config: ReviewConfig) -> None:
    kind, key = review.kind, review.key
    pred, done = review.predicted, review.reviewed

    def decide(field_name: str, item: str, status: str | None) -> None:
        if status is not None:
            review.decisions.append(Decision(kind, field_name, item, status))

    if kind == "interactions":
        known = set(review.meta["regions"])
        kept = {r for r in done.relations if r[0] in known and r[1] in known}
        if len(kept) < len(done.relations):
            review.ignored["relations to regions that are not the model's tracks"] = len(
                done.relations
            ) - len(kept)
        for a, b, label in sorted(pred.relations | kept):
            item = f"{key}#{a}->{b}:{label}"
            in_pred, in_done = (a, b, label) in pred.relations, (a, b, label) in kept
            decide("interaction", item, ACCEPTED if in_pred and in_done else REJECTED if in_pred else ADDED)
        return
    video = kind != "boxes"
    for rid in sorted(pred.regions.keys() | done.regions.keys()):
        p, d = pred.regions.get(rid), done.regions.get(rid)
        status = _region_status(p, d)
        review.region_status[rid] = status
        decide(REGION_FIELD[kind], f"{key}#{rid}", status)
        if video:
            positions = (p.boxes.keys() if p else set()) | (d.boxes.keys() if d else set())
            for position in sorted(positions):
                pb = p.boxes.get(position) if p else None
                db = d.boxes.get(position) if d else None
                box = (
                    REJECTED
                    if db is None
                    else ADDED
                    if pb is None
                    else ACCEPTED
                    if same_box(pb, db)
                    else EDITED
                )
                review.box_status[(rid, position)] = box
                decide("box", f"{key}#{rid}@{position}", box)
        if kind in ("boxes", "tracks"):
            if config.caption:
                decide("caption", f"{key}#{rid}", text_status(p and p.caption, d and d.caption))
            names = sorted((p.attributes.keys() if p else set()) | (d.attributes.keys() if d else set()))
            for name in names:
                status = text_status(p and p.attributes.get(name), d and d.attributes.get(name))
                decide(f"attribute:{name}", f"{key}#{rid}", status)
    if kind == "tracks" and config.summary:
        decide("summary", key, text_status(pred.texts.get(SUMMARY), done.texts.get(SUMMARY)))
    if kind == "expressions":
        decide("sentence", key, text_status(pred.texts.get(SENTENCE), done.texts.get(SENTENCE)))
