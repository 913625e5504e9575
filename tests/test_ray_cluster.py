"""A build on a real two-node Ray cluster (``ray start --head`` plus a worker node started with
``ray start --address``, as the README says) is byte-identical to a local build.

The nodes use a temporary folder, free ports and a token of their own (Ray's token authentication, so no
other cluster's ``~/.ray/auth_token`` is involved); every process they start is killed by its id at the
end, whatever happens. The build runs as a user runs it: ``omnipt-data build --engine ray --ray-address``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from omnipt_data.build import BuildOptions, build
from omnipt_data.convert import convert

RAY = str(Path(sys.executable).with_name("ray"))
NODES_UP = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False)
deadline = time.monotonic() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
    time.sleep(0.5)
print(len([n for n in ray.nodes() if n["Alive"]]), int(ray.cluster_resources()["CPU"]))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def _node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start ... --block``: the node lives as long as this process."""
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    ports = ["--dashboard-agent-listen-port", str(_free_port()), "--metrics-export-port", str(_free_port())]
    with open(log, "wb") as out:
        return subprocess.Popen(
            [RAY, "start", *args, *common, *ports],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found


def _stop(node: subprocess.Popen) -> None:
    """Kill a node's process and every process under it (Ray's workers start sessions of their own)."""
    for pid in [*reversed(_descendants(node.pid)), node.pid]:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    node.wait(30)


@contextmanager
def two_node_cluster(logs: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A head and one worker node on this machine; yields the GCS address and the environment to use."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay short
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    head = ["--head", "--port", str(port), "--temp-dir", temp, "--include-dashboard", "false"]
    nodes = [_node(head, env, logs / "head.log")]
    try:
        deadline = time.monotonic() + 90
        while not (Path(temp) / "ray_current_cluster").exists():
            assert nodes[0].poll() is None, (logs / "head.log").read_text()
            assert time.monotonic() < deadline, "the head did not start"
            time.sleep(0.5)
        nodes.append(_node(["--address", address], env, logs / "worker.log"))
        up = subprocess.run(
            [sys.executable, "-c", NODES_UP, address], env=env, capture_output=True, text=True, timeout=120
        )
        assert up.stdout.split() == ["2", "2"], (
            up.stdout,
            up.stderr[-2000:],
            (logs / "worker.log").read_text(),
        )
        yield address, env
    finally:
        for node in reversed(nodes):
            _stop(node)
        subprocess.run(["rm", "-rf", temp], check=False)


def test_a_build_on_a_two_node_cluster_equals_the_local_build(small_world, tmp_path):
    _, world = small_world
    store = convert("mot", world / "mot", tmp_path / "mot", show_progress=False).store.path
    options = dict(stage="sft", stores=[store], exports=("native", "trl"), seed=5, show_progress=False)
    build(BuildOptions(out=tmp_path / "local", **options))
    with two_node_cluster(tmp_path) as (address, env):
        command = [sys.executable, "-m", "omnipt_data.cli", "build", "--stage", "sft", "--store", str(store)]
        command += ["--out", str(tmp_path / "cluster"), "--export", "native,trl", "--seed", "5", "-q"]
        command += ["--engine", "ray", "--ray-address", address]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    assert _digest(tmp_path / "local") == _digest(tmp_path / "cluster")
