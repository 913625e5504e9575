"""Debian's headless Chromium for the tests that look at a page (the FiftyOne App, Label Studio's editor).

Installed by ``scripts/install-browser`` where missing. The flags keep it off the network (this machine
has none) and out of the user's profile.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("OMNIPT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OMNIPT_CHROMEDRIVER", "/usr/bin/chromedriver"))
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
)


def ensure_browser() -> None:
    """Chromium and its driver, installed by the project's script when either is missing."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        subprocess.run([str(PROJECT / "scripts" / "install-browser")], check=True, timeout=900)
    assert CHROMIUM.exists() and CHROMEDRIVER.exists()
