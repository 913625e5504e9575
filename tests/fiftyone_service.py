"""A real FiftyOne database for the tests: FiftyOne's bundled ``mongod`` in a temporary directory.

The fixture starts the ``mongod`` that ships with FiftyOne (``fiftyone-db``) itself, on 127.0.0.1 and a
free port, with its data in a temporary directory, and points FiftyOne at it through the environment
(``FIFTYONE_DATABASE_URI``; ``FIFTYONE_DATABASE_DIR`` names the same directory). Starting it here
rather than letting FiftyOne spawn its database service keeps the tests isolated: FiftyOne's service
attaches to *any* FiftyOne database process already running on the machine (it looks processes up by
their command line, not by their data directory), so a developer's open App would otherwise receive the
test datasets. The environment is set before FiftyOne is imported, and child processes (the CLI, the
App server) inherit it. At teardown ``mongod`` is shut down and waited for: no stray process remains.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ENVIRONMENT = {"FIFTYONE_DO_NOT_TRACK": "true", "FIFTYONE_DATABASE_VALIDATION": "false"}


def free_port() -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float, what: str) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def bundled_mongod() -> Path:
    """The ``mongod`` executable that FiftyOne's database package installed (no import of fiftyone)."""
    import importlib.util

    spec = importlib.util.find_spec("fiftyone")
    assert spec is not None and spec.origin, "fiftyone is not installed (extra 'view')"
    mongod = Path(spec.origin).parent / "db" / "bin" / "mongod"
    assert mongod.is_file(), f"no bundled mongod at {mongod}: run scripts/setup-env (extra 'view')"
    return mongod


@dataclass(frozen=True)
class FiftyOneDatabase:
    uri: str
    directory: Path
    process: subprocess.Popen

    def environment(self) -> dict[str, str]:
        """The variables that point a FiftyOne process at this database."""
        return {
            **ENVIRONMENT,
            "FIFTYONE_DATABASE_URI": self.uri,
            "FIFTYONE_DATABASE_DIR": str(self.directory),
        }


@pytest.fixture(scope="session")
def fiftyone_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FiftyOneDatabase]:
    """A running ``mongod`` in a temporary directory, with this process's FiftyOne pointed at it."""
    directory = tmp_path_factory.mktemp("fiftyone-db")
    (directory / "log").mkdir()
    port = free_port()
    command = [
        str(bundled_mongod()),
        "--dbpath",
        str(directory),
        "--bind_ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--nounixsocket",
        "--logpath",
        str(directory / "log" / "mongo.log"),
        # a small cache and no diagnostics: the test machine has two cores
        "--wiredTigerCacheSizeGB",
        "0.25",
        "--setParameter",
        "diagnosticDataCollectionEnabled=false",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = FiftyOneDatabase(f"mongodb://127.0.0.1:{port}", directory, process)
    saved = {key: os.environ.get(key) for key in database.environment()}
    try:
        wait_for_port(port, process, timeout=60, what="mongod")
        os.environ.update(database.environment())
        if "fiftyone" in sys.modules:
            # imported earlier by another test module: its config was read then; redirect it before
            # the first connection (FiftyOne connects lazily)
            import fiftyone as fo
            import fiftyone.core.odm.database as fodb

            assert fodb._client is None, "FiftyOne connected to another database before this fixture ran"
            fo.config.database_uri = database.uri
            fo.config.database_dir = str(directory)
            fo.config.database_validation = False
        yield database
    finally:
        _disconnect_fiftyone()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _disconnect_fiftyone() -> None:
    """Close this process's FiftyOne client so that mongod shuts down without open connections."""
    database = sys.modules.get("fiftyone.core.odm.database")
    if database is not None and getattr(database, "_client", None) is not None:
        database._disconnect()
