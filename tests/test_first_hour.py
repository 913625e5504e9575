"""What a newcomer meets first: ``convert --help`` names every format and how ``auto`` picks one; output
piped to a file keeps its lines whole; ``exports/`` is there in a clone; ``scripts/test`` on a disk too full
for its environments says so before installing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from omnipt_data.cli import app
from omnipt_data.readers import READERS, SNIFF_ORDER

PROJECT = Path(__file__).resolve().parents[1]
OMNIPT_DATA = Path(sys.executable).parent / "omnipt-data"


def panel_rows(text: str, title: str) -> dict[str, str]:
    """The two-column rows of a help panel, each row's wrapped lines joined again."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"╭─ {title} "))
    rows: dict[str, str] = {}
    name = ""
    for line in lines[start + 1 :]:
        if line.startswith("╰"):
            break
        cells = line.strip("│").strip()
        first, _, rest = cells.partition("  ")
        if not line.startswith("│  "):  # a new row starts in the first column
            name = first
            rows[name] = rest.strip()
        else:
            rows[name] += " " + cells
    return rows


def test_convert_help_lists_every_format_and_how_auto_decides() -> None:
    result = CliRunner().invoke(app, ["convert", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    rows = panel_rows(result.output, "Formats")
    auto = rows.pop("auto")
    assert rows == {name: reader.description for name, reader in READERS.items()}
    assert all(reader.name == name for name, reader in READERS.items())
    # how auto decides: what the readers look at, and their order
    assert "folder and file names" in auto and "the first that recognises it reads it" in auto
    assert auto.endswith(": " + ", ".join(SNIFF_ORDER))


def test_output_piped_to_a_file_is_not_folded_at_80_columns(tmp_path: Path) -> None:
    deep = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "and-one-more-level"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}

    def piped(*args: str) -> list[str]:
        run = subprocess.run(
            [str(OMNIPT_DATA), *args], capture_output=True, text=True, env=env, timeout=300, check=True
        )
        return run.stdout.splitlines()

    piped("synth", "--out", str(deep / "world"), "--scenes", "1", "--frames", "4", "--no-render")
    (wrote,) = piped("convert", "mot", str(deep / "world" / "mot"), "--out", str(deep / "store"))
    assert wrote.startswith(f"wrote {deep / 'store'}: 1 sequences, 4 frames") and len(wrote) > 120
    info = piped("info", str(deep / "store"))
    assert f"store {deep / 'store'}" in info  # the table's title, whole
    notes = [line for line in info if line.startswith("warning: ")]
    assert notes and all(line.endswith(")") for line in notes)  # each note on one line, with its examples


def test_exports_folder_is_in_a_clone_and_only_its_outputs_are_ignored() -> None:
    readme = PROJECT / "exports" / "README.md"
    assert "omnipt-data build" in readme.read_text()

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True, timeout=60)

    assert git("ls-files", "--error-unmatch", "exports/README.md").returncode == 0
    ignored = git("check-ignore", "--no-index", "exports/README.md", "exports/sft/x.jsonl", "exports/x.txt")
    assert ignored.stdout.split() == ["exports/sft/x.jsonl", "exports/x.txt"]


def test_a_disk_too_full_for_the_first_run_is_named_before_anything_is_installed(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "df").write_text(  # df -Pm as POSIX prints it, for a disk with 100 MB free
        "#!/bin/sh\necho 'Filesystem 1048576-blocks Used Available Capacity Mounted on'\n"
        "echo '/dev/vda 1000 900 100 90% /'\n"
    )
    (shim / "df").chmod(0o755)
    venv = tmp_path / "fresh-venv"
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "OMNIPT_VENV": str(venv)}
    result = subprocess.run(
        [str(PROJECT / "scripts" / "test"), "--collect-only"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert f"100 MB free on the disk of {PROJECT}" in result.stderr
    assert str(venv) in result.stderr  # what it would have installed
    assert not venv.exists()
