"""The project's own Label Studio on this machine, started with ``scripts/labelstudio`` (its own virtual
environment, installed on first use) for the demo's review step.

The account is made up on the first start of a data folder and kept in ``omnipt-login.json`` beside the
server's database (readable by its owner only), so that later starts, and the person opening the editor,
log in with the same e-mail and password. The server listens on 127.0.0.1 only and keeps running after
the command that started it, until ``scripts/labelstudio stop --data-dir DIR``.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

from omnipt_data.errors import OmniptError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "labelstudio"
LOGIN_FILE = "omnipt-login.json"
DATABASE_FILE = "label_studio.sqlite3"
DEFAULT_PORT = 8080
HOST = "127.0.0.1"


@dataclass(frozen=True)
class LocalServer:
    url: str
    email: str
    password: str  # for the browser's login page
    api_key: str  # what the client sends; never printed
    data_dir: Path
    document_root: Path

    def stop_command(self) -> str:
        return f"scripts/labelstudio stop --data-dir {self.data_dir}"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _save_login(path: Path, login: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(orjson.dumps(login, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def _script(*args: str, env: dict[str, str] | None = None, timeout: float = 1800, quiet: bool = False) -> int:
    if not SCRIPT.is_file():
        raise OmniptError(f"{SCRIPT} is missing: the local Label Studio needs a clone of the repository")
    output = subprocess.DEVNULL if quiet else None
    return subprocess.run(
        [str(SCRIPT), *args], env=env, timeout=timeout, check=False, stdout=output
    ).returncode


def start_local_server(
    data_dir: Path, document_root: Path, *, email: str = "demo@omnipt.test", timeout: float = 300
) -> LocalServer:
    """The server of ``data_dir`` (serving the files below ``document_root``): started unless it runs."""
    data_dir, document_root = Path(data_dir).resolve(), Path(document_root).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    login_path = data_dir / LOGIN_FILE
    if login_path.is_file():
        login = orjson.loads(login_path.read_bytes())
    elif (data_dir / DATABASE_FILE).exists():
        raise OmniptError(
            f"{data_dir} holds a Label Studio database but not its login ({LOGIN_FILE}); remove the folder "
            "to start afresh"
        )
    else:
        port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else _free_port()
        login = {
            "email": email,
            "password": secrets.token_urlsafe(12),
            "api_key": secrets.token_hex(20),
            "port": port,
        }
        _save_login(login_path, login)
    running = _script("status", "--data-dir", str(data_dir), timeout=60, quiet=True) == 0
    if not running:
        if not _port_free(int(login["port"])):  # taken since the last start: move
            login["port"] = _free_port()
            _save_login(login_path, login)
        env = {
            **os.environ,
            "LABEL_STUDIO_USERNAME": str(login["email"]),
            "LABEL_STUDIO_PASSWORD": str(login["password"]),
            "LABEL_STUDIO_USER_TOKEN": str(login["api_key"]),
        }
        for attempt in range(2):
            start = ["start", "--host", HOST, "--port", str(login["port"]), "--data-dir", str(data_dir)]
            start += ["--document-root", str(document_root), "--timeout", str(int(timeout))]
            if _script(*start, env=env, timeout=1800 + timeout) == 0:
                break
            if attempt or _port_free(int(login["port"])):
                raise OmniptError(f"Label Studio did not start; see {data_dir / 'label-studio.log'}")
            # Another server bound the port while this one started (it binds after its migrations).
            login["port"] = _free_port()
            _save_login(login_path, login)
    return LocalServer(
        url=f"http://{HOST}:{login['port']}",
        email=str(login["email"]),
        password=str(login["password"]),
        api_key=str(login["api_key"]),
        data_dir=data_dir,
        document_root=document_root,
    )


def stop_local_server(data_dir: Path) -> None:
    if _script("stop", "--data-dir", str(Path(data_dir).resolve()), timeout=120) != 0:
        raise OmniptError(f"could not stop the Label Studio of {data_dir}")
