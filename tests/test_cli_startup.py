"""The command line starts without the heavy libraries: ``omnipt-data --help`` imports none of them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "trackeval", "fiftyone", "ray", "datasets", "matplotlib")

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
