"""``review stats``: how much of the model's output people accepted, edited or rejected, by kind and field."""

from __future__ import annotations

from typing import Any

from omnipt_data.annotate.labelstudio import Connection
from omnipt_data.annotate.pull import decision_counts, fetch_reviews, task_states
from omnipt_data.annotate.review import ACCEPTED, EDITED, REJECTED


def review_stats(conn: Connection, project_title: str, *, show_progress: bool = True) -> dict[str, Any]:
    """Counts over the reviewed tasks; ``predicted`` is what the model gave (accepted + edited + rejected)
    and ``accept_rate`` the share of it kept untouched (null when the model gave nothing)."""
    project, reviews = fetch_reviews(conn, project_title, show_progress=show_progress)
    reviewed = [r for r in reviews if r.state == "reviewed"]
    kinds: dict[str, dict[str, dict[str, Any]]] = {}
    for kind, fields in decision_counts(reviewed).items():
        for field_name, counts in fields.items():
            predicted = counts[ACCEPTED] + counts[EDITED] + counts[REJECTED]
            kinds.setdefault(kind, {})[field_name] = {
                **counts,
                "predicted": predicted,
                "accept_rate": round(counts[ACCEPTED] / predicted, 4) if predicted else None,
            }
    return {
        "project": project_title,
        "project_id": project.id,
        "tasks": task_states(reviews),
        "reviewers": sorted({r.annotation.reviewer for r in reviewed if r.annotation}),
        "kinds": kinds,
    }
