"""Shared test fixtures: paths to the real sample data and a small synthetic world."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnipt_data.synth import World, WorldConfig, synthesize

PROJECT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT.parent / "shared" / "fixtures"
TEST_DATA = Path(__file__).resolve().parent / "data"

SMALL_WORLD = WorldConfig(
    seed=7, scenes=3, frames=24, views=2, people=6, width=320, height=180, static_fraction=0.25
)


@pytest.fixture(scope="session")
def fixtures() -> Path:
    assert FIXTURES.is_dir(), f"the shared fixtures are expected at {FIXTURES}"
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
