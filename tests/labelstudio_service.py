"""A real Label Studio server for the tests, started once per session with ``scripts/labelstudio``.

The server runs from its own virtual environment (``.venv-labelstudio``, installed on first use: about
1 GB from the package registry), listens on 127.0.0.1 on a free port, keeps its database in a temporary
folder, and serves local files from the session's temporary root (every ``tmp_path`` lies below it). The
account and its API token are made up per session and travel only through environment variables.
Import ``label_studio`` into a test module to use it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SCRIPT = PROJECT / "scripts" / "labelstudio"


@dataclass(frozen=True)
class LabelStudioService:
    url: str
    api_key: str
    admin_email: str
    document_root: Path
    data_dir: Path

    def client_env(self) -> dict[str, str]:
        """What ``omnipt-data review`` reads: the address, the key and the local-files root."""
        return {
            "LABEL_STUDIO_URL": self.url,
            "LABEL_STUDIO_API_KEY": self.api_key,
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(self.document_root),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioService]:
    document_root = tmp_path_factory.getbasetemp().resolve()
    data_dir = tmp_path_factory.mktemp("label-studio-data")
    admin_email = "admin@omnipt.test"
    env = {
        **os.environ,
        "LABEL_STUDIO_USERNAME": admin_email,
        "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
        "LABEL_STUDIO_USER_TOKEN": secrets.token_hex(20),
    }
    # Installs the server's environment when missing (a clean clone), then nothing.
    subprocess.run([str(SCRIPT), "install"], check=True, env=env, timeout=1800)
    port = _free_port()
    start = [str(SCRIPT), "start", "--port", str(port), "--data-dir", str(data_dir)]
    start += ["--document-root", str(document_root), "--timeout", "300"]
    subprocess.run(start, check=True, env=env, timeout=360)
    try:
        yield LabelStudioService(
            url=f"http://127.0.0.1:{port}",
            api_key=env["LABEL_STUDIO_USER_TOKEN"],
            admin_email=admin_email,
            document_root=document_root,
            data_dir=data_dir,
        )
    finally:
        subprocess.run([str(SCRIPT), "stop", "--data-dir", str(data_dir)], check=True, env=env, timeout=60)
