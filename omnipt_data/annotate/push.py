"""``review push``: a predictions store into a Label Studio project, resumable and never over reviewed work.

Tasks go in batches; each task carries a stable key, so a second push (or one resumed after an
interruption) skips the tasks already there. A task that someone annotated or skipped is left alone even
when the predictions changed (the report lists it); a task nobody touched yet is replaced by one with the
new prediction (deleted and imported again in the same batch: its Label Studio id changes, its key not).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnipt_data.annotate.labelconfig import (
    VIDEO_KINDS,
    check_config_kind,
    check_kind,
    load_label_config,
    parse_label_config,
)
from omnipt_data.annotate.labelstudio import (
    DOCUMENT_ROOT_ENV,
    Connection,
    create_project,
    ensure_local_storage,
    find_project,
    iter_tasks,
    kind_of_description,
    local_file_url,
)
from omnipt_data.annotate.media import encode_video
from omnipt_data.annotate.tasks import KEY_FIELD, META_FIELD, ReviewTask, TaskBuilder, model_source
from omnipt_data.errors import OmniptError
from omnipt_data.progress import progress_bar
from omnipt_data.schema import SOURCE_PREDICTION_PREFIX
from omnipt_data.store import Store

DEFAULT_MEDIA_FOLDER = "omnipt-review-media"


@dataclass
class PushReport:
    project: str
    project_id: int
    kind: str
    model: str
    created: int = 0
    unchanged: int = 0
    updated: int = 0
    reviewed: int = 0  # tasks with annotations or skips: left alone
    reviewed_with_new_predictions: list[str] = field(default_factory=list)
    project_tasks: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def document_root_of(document_root: Path | None) -> Path:
    root = document_root or os.environ.get(DOCUMENT_ROOT_ENV)
    if not root:
        raise OmniptError(
            "where does Label Studio serve local files from? Pass --document-root or set "
            f"{DOCUMENT_ROOT_ENV} (as the server has it)"
        )
    root = Path(root).resolve()
    if not root.is_dir():
        raise OmniptError(f"document root {root} is not a folder")
    return root


def _prediction(task: ReviewTask, model: str) -> dict[str, Any]:
    prediction: dict[str, Any] = {
        "model_version": model.removeprefix(SOURCE_PREDICTION_PREFIX),
        "result": task.result,
    }
    if task.score is not None:
        prediction["score"] = task.score
    return prediction


def push(
    conn: Connection,
    store_path: Path,
    project_title: str,
    *,
    kind: str | None = None,
    model: str | None = None,
    document_root: Path | None = None,
    media_dir: Path | None = None,
    label_config: Path | None = None,
    batch_size: int = 50,
    show_progress: bool = True,
) -> PushReport:
    """Create or reuse the project titled ``project_title`` and import the store's predictions as tasks."""
    if batch_size < 1:
        raise OmniptError("--batch-size must be at least 1")
    store = Store.open(store_path)
    root = document_root_of(document_root)
    project = find_project(conn, project_title)
    if project is not None:
        existing_kind = kind_of_description(project.description)
        if kind and existing_kind and kind != existing_kind:
            raise OmniptError(f"project {project_title!r} reviews {existing_kind!r}, not {kind!r}")
        kind = kind or existing_kind
        if kind is None:
            raise OmniptError(f"project {project_title!r} was not made by 'review push'; pass --kind")
        check_kind(kind)
        origin = f"the label config of project {project_title!r}"
        config = parse_label_config(project.label_config or "", origin=origin)
        check_config_kind(config, kind, origin=origin)
        xml = None
    else:
        kind = kind or "boxes"
        xml, config = load_label_config(kind, label_config)
        origin = str(label_config or f"annotate/{kind}.xml")
    source = model_source(store, model)
    if kind in VIDEO_KINDS:
        media_dir = Path(media_dir).resolve() if media_dir else root / DEFAULT_MEDIA_FOLDER
    builder = TaskBuilder(
        store, kind, config, model=source, document_root=root, media_dir=media_dir, config_origin=origin
    )
    folders = _media_folders(builder, kind, media_dir)
    for folder in folders:  # checked before a project is created for nothing
        local_file_url(folder / "file", root)
    if project is None:
        project = create_project(conn, project_title, xml or "", kind)
    report = PushReport(project_title, project.id, kind, source)
    if label_config and xml is None:
        report.notes["--label-config ignored: the project exists and keeps its own config"] = 1
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        ensure_local_storage(conn, project.id, folder, root)

    existing: dict[str, Any] = {}
    for task in iter_tasks(conn, project.id, fields="task_only"):
        key = (task.data or {}).get(KEY_FIELD)
        if key:
            existing[key] = task
    batch: list[ReviewTask] = []
    replaced: list[int] = []  # tasks nobody touched whose predictions changed: re-imported with the batch

    def flush() -> None:
        if not batch:
            return
        if replaced:
            # Deleted and imported again in one go: one request per batch instead of four per task.
            with conn.api(f"removing {len(replaced)} outdated task(s) nobody reviewed"):
                conn.client.actions.create(
                    id="delete_tasks", project=project.id, selected_items={"all": False, "included": replaced}
                )
        request = [{"data": t.data, "predictions": [_prediction(t, source)]} for t in batch]
        with conn.api(f"importing {len(batch)} task(s) into project {project_title!r}"):
            conn.client.projects.import_tasks(id=project.id, request=request, return_task_ids=True)
        report.created += len(batch) - len(replaced)
        report.updated += len(replaced)
        batch.clear()
        replaced.clear()

    with progress_bar(f"push {kind}", total=builder.count(), enabled=show_progress) as advance:
        for task in builder.tasks():
            found = existing.get(task.key)
            stored_hash = (
                ((found.data or {}).get(META_FIELD) or {}).get("hash") if found is not None else None
            )
            if found is not None and (found.total_annotations or 0) + (found.cancelled_annotations or 0) > 0:
                report.reviewed += 1
                if stored_hash != task.content_hash:
                    report.reviewed_with_new_predictions.append(task.key)
            elif found is not None and stored_hash == task.content_hash:
                report.unchanged += 1
            else:
                if task.video is not None:
                    encode_video(task.video)
                if found is not None:
                    replaced.append(found.id)
                batch.append(task)
                if len(batch) >= batch_size:
                    flush()
            advance(1)
        flush()
    report.notes.update(builder.notes.counts)
    with conn.api("counting the project's tasks"):
        report.project_tasks = conn.client.projects.get(id=project.id).task_number or 0
    return report


def _media_folders(builder: TaskBuilder, kind: str, media_dir: Path | None) -> list[Path]:
    """The folders Label Studio must serve to the project's users: the video folder (video kinds), else
    each dataset's image root, or for a dataset without one (frames pre-labelled from a folder, with
    absolute image paths) the folders that hold its images."""
    if kind in VIDEO_KINDS:
        assert media_dir is not None
        return [media_dir]
    folders: set[Path] = set()
    for (dataset,), frames in builder.frames.group_by(["dataset"]):
        image_root = builder.image_roots.get(dataset)
        if image_root:
            folders.add(Path(image_root).resolve())
        else:
            folders.update(builder.image_path(frame).resolve().parent for frame in frames.to_dicts())
    # A folder inside another one is already served with it.
    return sorted(f for f in folders if not any(parent in folders for parent in f.parents))
