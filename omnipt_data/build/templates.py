"""Templates as data: ``templates/<stage>/<task>.toml``, one file per task.

A template names the sampler (the code that draws samples from a store), its parameters, and several
phrasings of the instruction; a build draws one phrasing per sample with the build's seed. Placeholders
in a phrasing (``{n_frames}``, ``{given}``, ``{sentence}``, ``{format_hint}``, ...) are filled from what
the sampler provides; ``{format_hint}`` (boxes with ids) and ``{format_hint_plain}`` (boxes alone) come
from ``templates/box_formats.toml`` for the chosen box format. Adding a phrasing or a task that reuses a
sampler is a data change.

Fields: ``task``, ``stage``, ``sampler``, ``description``, ``instructions`` (list of phrasings),
optional ``system``, ``image_label`` (how each image is introduced, e.g. ``"Frame {n}:"``),
``reward`` (RL stages: the reward function the solution is scored with), ``[params]``.
"""

from __future__ import annotations

import random
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnipt_data.errors import OmniptError

STAGES = ("format-rl", "mid", "sft", "track-rl")
RL_STAGES = ("format-rl", "track-rl")
REQUIRED = ("task", "stage", "sampler", "description", "instructions")


def templates_root() -> Path:
    """The ``templates/`` folder: beside the package in a checkout, or inside it when installed."""
    here = Path(__file__).resolve().parents[2] / "templates"
    return here if here.is_dir() else Path(__file__).resolve().parents[1] / "templates"


@dataclass(frozen=True)
class Template:
    task: str
    stage: str
    sampler: str
    description: str
    instructions: tuple[str, ...]
    path: Path
    system: str | None = None
    image_label: str = ""
    reward: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def placeholders(self) -> set[str]:
        names = set()
        for text in (*self.instructions, self.image_label):
            names |= {f for _, f, _, _ in string.Formatter().parse(text) if f}
        return names

    def instruction(self, rng: random.Random, context: dict[str, Any]) -> str:
        """One phrasing, drawn with ``rng``, filled from ``context``."""
        text = rng.choice(self.instructions)
        try:
            return text.format(**context)
        except KeyError as exc:
            raise OmniptError(
                f"{self.path}: placeholder {exc} is not provided by sampler {self.sampler!r}"
            ) from None


def _load(path: Path) -> Template:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OmniptError(f"{path}: invalid template ({exc})") from None
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise OmniptError(f"{path}: template lacks {', '.join(missing)}")
    if data["stage"] not in STAGES or path.parent.name != data["stage"]:
        raise OmniptError(f"{path}: stage {data['stage']!r} must be one of {STAGES} and match its folder")
    if not data["instructions"] or not all(isinstance(t, str) for t in data["instructions"]):
        raise OmniptError(f"{path}: instructions must be a non-empty list of strings")
    if data["stage"] in RL_STAGES and not data.get("reward"):
        raise OmniptError(f"{path}: an RL template names its reward")
    known = {*REQUIRED, "system", "image_label", "reward", "params"}
    unknown = set(data) - known
    if unknown:
        raise OmniptError(f"{path}: unknown template field(s) {sorted(unknown)}")
    return Template(
        task=data["task"],
        stage=data["stage"],
        sampler=data["sampler"],
        description=data["description"],
        instructions=tuple(data["instructions"]),
        path=path,
        system=data.get("system"),
        image_label=data.get("image_label", ""),
        reward=data.get("reward"),
        params=dict(data.get("params", {})),
    )


def load_templates(stage: str, tasks: list[str] | None = None, root: Path | None = None) -> list[Template]:
    """The stage's templates, sorted by task; ``tasks`` selects some (unknown names are an error)."""
    if stage not in STAGES:
        raise OmniptError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    folder = (root or templates_root()) / stage
    templates = [_load(p) for p in sorted(folder.glob("*.toml"))]
    if tasks:
        known = {t.task for t in templates}
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise OmniptError(f"stage {stage} has no task(s) {unknown}; tasks: {', '.join(sorted(known))}")
        templates = [t for t in templates if t.task in tasks]
    return templates


def format_hints(root: Path | None = None) -> dict[str, dict[str, str]]:
    """How each box format is described to the model: ``{format: {"hint": ..., "plain": ...}}``."""
    path = (root or templates_root()) / "box_formats.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))
