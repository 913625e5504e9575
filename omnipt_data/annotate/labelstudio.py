"""A thin layer over ``label_studio_sdk``: connection from the environment, projects by title, task
listing, reviewers' e-mails, local-file URLs, and API errors turned into one-line user errors.

The API key comes from ``LABEL_STUDIO_API_KEY`` (or the caller) and is never printed or written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlparse

from omnipt_data.errors import OmniptError

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
DOCUMENT_ROOT_ENV = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
LOCAL_FILES_PREFIX = "/data/local-files/?d="
KIND_MARKER = "omnipt-data review kind:"
PAGE_SIZE = 100


@dataclass
class Connection:
    """A client and the server's address (for messages and provenance; the key stays inside the client)."""

    client: LabelStudio
    url: str

    @contextmanager
    def api(self, doing: str) -> Iterator[None]:
        """Turn the SDK's and httpx's errors into one clear line that says what failed."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except ApiError as exc:
            if exc.status_code in (401, 403):
                raise OmniptError(
                    f"Label Studio at {self.url} refused the API key while {doing} (HTTP {exc.status_code}); "
                    f"check {API_KEY_ENV}"
                ) from None
            body = str(exc.body)[:300]
            raise OmniptError(
                f"Label Studio at {self.url}: {doing} failed (HTTP {exc.status_code}: {body})"
            ) from None
        except httpx.HTTPError as exc:
            raise OmniptError(f"cannot reach Label Studio at {self.url} while {doing}: {exc}") from None


def connect(url: str | None = None, api_key: str | None = None) -> Connection:
    """A client for ``url``/``api_key``, defaulting to ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``."""
    try:
        from label_studio_sdk import LabelStudio
    except ImportError:
        raise OmniptError("label-studio-sdk is not installed (pip install 'omnipt-data[annotate]')") from None
    url = (url or os.environ.get(URL_ENV) or "").rstrip("/")
    api_key = api_key or os.environ.get(API_KEY_ENV)
    if not url:
        raise OmniptError(
            f"no Label Studio address: pass --url or set {URL_ENV} (e.g. http://127.0.0.1:8080)"
        )
    if not api_key:
        raise OmniptError(f"no Label Studio API key: set {API_KEY_ENV} (Account & Settings > Access Token)")
    return Connection(LabelStudio(base_url=url, api_key=api_key, timeout=120), url)


def kind_description(kind: str) -> str:
    return f"Review of a model's predictions, made by omnipt-data.\n{KIND_MARKER} {kind}"


def kind_of_description(description: str | None) -> str | None:
    for line in (description or "").splitlines():
        if line.startswith(KIND_MARKER):
            return line[len(KIND_MARKER) :].strip()
    return None


def find_project(conn: Connection, title: str) -> Any | None:
    """The project whose title is exactly ``title`` (the API's filter matches substrings), or None."""
    with conn.api(f"looking up project {title!r}"):
        matches = [p for p in conn.client.projects.list(title=title, page_size=PAGE_SIZE) if p.title == title]
    if len(matches) > 1:
        ids = ", ".join(str(p.id) for p in matches)
        raise OmniptError(
            f"several Label Studio projects are titled {title!r} (ids {ids}); rename all but one"
        )
    return matches[0] if matches else None


def require_project(conn: Connection, title: str) -> Any:
    project = find_project(conn, title)
    if project is None:
        raise OmniptError(f"no Label Studio project titled {title!r} at {conn.url}")
    return project


def create_project(conn: Connection, title: str, label_config: str, kind: str) -> Any:
    if len(title.strip()) < 3:
        raise OmniptError(f"project title {title!r} is too short: Label Studio needs at least 3 characters")
    with conn.api(f"creating project {title!r}"):
        return conn.client.projects.create(
            title=title, label_config=label_config, description=kind_description(kind)
        )


def iter_tasks(conn: Connection, project_id: int, *, fields: str = "all") -> Iterator[Any]:
    """Every task of the project, page by page; ``fields="all"`` brings annotations and predictions."""
    with conn.api(f"listing the tasks of project {project_id}"):
        yield from conn.client.tasks.list(project=project_id, fields=fields, page_size=PAGE_SIZE)


def user_emails(conn: Connection) -> dict[int, str]:
    with conn.api("listing users"):
        return {
            user.id: user.email or user.username or f"user-{user.id}" for user in conn.client.users.list()
        }


def local_file_url(path: Path, document_root: Path) -> str:
    """The URL under which Label Studio serves ``path`` (it must lie below the document root)."""
    relative = _relative_to_root(path, document_root)
    return LOCAL_FILES_PREFIX + quote(relative.as_posix())


def local_file_path(url: str, document_root: Path) -> Path:
    """The file behind a ``/data/local-files/?d=...`` URL."""
    query = parse_qs(urlparse(url).query)
    if "d" not in query:
        raise OmniptError(f"{url!r} is not a Label Studio local-files URL")
    return Path(document_root) / unquote(query["d"][0])


def _relative_to_root(path: Path, document_root: Path) -> Path:
    path, root = Path(path).resolve(), Path(document_root).resolve()
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise OmniptError(
            f"{path} is not below the Label Studio document root {root}; start the server with "
            f"{DOCUMENT_ROOT_ENV} set to a folder that holds the images (or pass --document-root)"
        ) from None
    if len(relative.parts) < 2:
        raise OmniptError(
            f"{path} lies directly in the document root {root}: Label Studio serves only files inside a "
            "sub-folder of it"
        )
    return relative


def ensure_local_storage(conn: Connection, project_id: int, folder: Path, document_root: Path) -> None:
    """Give the project a local-files storage covering ``folder``: Label Studio serves a local file only
    to users of a project with such a storage whose path contains it (no sync: tasks come by import)."""
    folder = Path(folder).resolve()
    _relative_to_root(folder / "file", document_root)
    with conn.api("listing the project's local storages"):
        storages = conn.client.import_storage.local.list(project=project_id)
    for storage in storages:
        path = Path(storage.path or "/nonexistent")
        if folder == path or path in folder.parents:
            return
    with conn.api(f"adding local storage {folder}"):
        conn.client.import_storage.local.create(
            project=project_id,
            path=str(folder),
            title=f"omnipt-data {folder.name}"[:100],
            use_blob_urls=False,
            recursive_scan=False,
        )
