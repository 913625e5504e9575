"""Shared test fixtures: paths to the real sample data and a small synthetic world."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnipt_data.synth import World, WorldConfig, synthesize

PROJECT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
# real sample files travel with the repository (tests/data/real/PROVENANCE.md names their sources)
FIXTURES = TEST_DATA / "real"

SMALL_WORLD = WorldConfig(
    seed=7, scenes=3, frames=24, views=2, people=6, width=320, height=180, static_fraction=0.25
)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    assert FIXTURES.is_dir(), f"the real sample files are expected at {FIXTURES}"
    return FIXTURES


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    """A rendered two-view world written in every synthetic format (session-wide, read-only)."""
    out = tmp_path_factory.mktemp("world") / "world"
    world = synthesize(out, SMALL_WORLD)
    return world, out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint (seed 0), built once per session; treat it as read-only."""
    from omnipt_data.model import build_tiny_qwen_vl

    return build_tiny_qwen_vl(tmp_path_factory.mktemp("tiny-qwen-vl") / "model", seed=0)


def check_malformed(fmt: str, case: str, file: str, line: int | None, problem: str, tmp_path: Path):
    """Converting ``tests/data/malformed/<case>`` fails at ``file:line`` naming ``problem`` and what was
    expected, leaves nothing behind, and ``--lenient`` skips and counts exactly that one bad row."""
    from omnipt_data.convert import convert
    from omnipt_data.errors import InputError
    from omnipt_data.readers import ReadOptions

    source = TEST_DATA / "malformed" / case
    out = tmp_path / "store"
    with pytest.raises(InputError) as error:
        convert(fmt, source, out, show_progress=False)
    assert error.value.path == source / file and error.value.line == line
    where = f"{file}:{line}:" if line is not None else f"{file}: "
    assert problem in str(error.value) and where in str(error.value)
    assert "expected" in str(error.value)
    assert list(tmp_path.iterdir()) == []  # no store, no temporary folder
    result = convert(fmt, source, out, options=ReadOptions(lenient=True), show_progress=False)
    assert result.skipped_rows == 1
    assert result.store.manifest["problems"]["examples"][0].endswith(str(error.value).split(": ", 1)[1])
    return result
