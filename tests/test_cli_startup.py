"""The command line starts without the heavy libraries: ``omnipt-data --help`` imports none of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = (
    "torch",
    "transformers",
    "trackeval",
    "fiftyone",
    "ray",
    "datasets",
    "matplotlib",
    "polars",
    "numpy",
    "pyarrow",
)

PROBE = f"""
import sys
from omnipt_data.cli import main
sys.argv = ["omnipt-data", "--help"]
try:
    main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
loaded = sorted(name for name in {HEAVY!r} if name in sys.modules)
print("LOADED", loaded, file=sys.stderr)
"""


def test_help_imports_no_heavy_library() -> None:
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "eval" in run.stdout and "Usage" in run.stdout
    assert "LOADED []" in run.stderr, run.stderr


CONVERT_PROBE = """
import sys
from omnipt_data.readers import get_reader
get_reader("mot")
print(sorted(name for name in sys.modules if name.startswith("omnipt_data.readers.")))
"""


def test_a_format_imports_its_reader_alone(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", CONVERT_PROBE], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["['omnipt_data.readers.base',", "'omnipt_data.readers.mot']"]


def test_convert_process_ends_with_its_output_written_and_quiet_means_silent(tmp_path: Path) -> None:
    """The command line ends its process early after a successful convert: the store is whole, stdout
    complete; -q prints nothing, and failures still exit 2 with their message."""
    omnipt = [sys.executable, "-m", "omnipt_data.cli"]
    world, store = tmp_path / "world", tmp_path / "store"
    synth = [*omnipt, "synth", "--out", str(world), "--scenes", "1", "--frames", "3", "--no-render"]
    subprocess.run([*synth, "--formats", "mot"], capture_output=True, timeout=300, check=True)
    convert = [*omnipt, "convert", "mot", str(world / "mot"), "--out", str(store)]
    quiet = subprocess.run([*convert, "-q"], capture_output=True, text=True, timeout=300)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    info = subprocess.run([*omnipt, "info", str(store), "--json"], capture_output=True, timeout=300)
    assert info.returncode == 0 and json.loads(info.stdout)["frames"] == 3
    again = subprocess.run(convert, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "already exists" in again.stderr
    unfolded = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    loud = subprocess.run(
        [*convert, "--overwrite"], capture_output=True, text=True, env=unfolded, timeout=300
    )
    assert loud.returncode == 0 and loud.stdout.startswith(f"wrote {store}: 1 sequences, 3 frames")
