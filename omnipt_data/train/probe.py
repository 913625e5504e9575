"""Probe a checkpoint: format reward and box F1 of its greedy answers to held-out RL samples.

The probe answers "has the model learnt the answer format, and do its boxes land?" in a few seconds,
so runs log it before training and after each stage. Each held-out row's prompt is answered greedily
(:func:`omnipt_data.model.generate_batch`) and scored against the row's ``solution`` with the reward
functions of :mod:`omnipt_data.rewards`: ``format`` (the paper's F: 2.0 exact format, 0.6 another box
format, 0.4 no box) and ``box_f1`` (F1 of boxes matched at IoU >= 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omnipt_data.errors import OmniptError
from omnipt_data.rewards import FORMAT_SCORES, score
from omnipt_data.train.data import Build, Row, apply_pixel_bounds, completion_text, generation_prompt

#: How many answers a probe result keeps as examples for the log.
EXAMPLES_KEPT = 3


@dataclass
class ProbeResult:
    """Means over the probed samples, and a few of the answers."""

    samples: int
    format_reward: float
    exact_format: float
    box_f1: float
    examples: list[str] = field(default_factory=list)
    image_reliance: float | None = None

    def describe(self) -> str:
        reliance = "" if self.image_reliance is None else f", image reliance {self.image_reliance:+.3f} nats"
        return (
            f"format reward {self.format_reward:.3f} (exact {self.exact_format:.0%}), "
            f"box F1 {self.box_f1:.3f}{reliance} on {self.samples} held-out samples"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(**data)


def score_answers(texts: Sequence[str], rows: Sequence[Row]) -> ProbeResult:
    """Score answers against the rows' solutions."""
    if not rows:
        raise ValueError("no samples to probe")
    formats = [score("format", text, row["solution"]) for text, row in zip(texts, rows, strict=True)]
    f1s = [score("box_f1", text, row["solution"]) for text, row in zip(texts, rows, strict=True)]
    exact = sum(value == FORMAT_SCORES["exact"] for value in formats)
    return ProbeResult(
        samples=len(rows),
        format_reward=sum(formats) / len(rows),
        exact_format=exact / len(rows),
        box_f1=sum(f1s) / len(rows),
        examples=list(texts[:EXAMPLES_KEPT]),
    )


def probe(
    model_path: Path,
    rows: Sequence[Row],
    build: Build,
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    device: str | None = None,
) -> ProbeResult:
    """Greedy answers of the checkpoint at ``model_path`` to ``rows`` (RL rows of ``build``), scored."""
    from omnipt_data.model import generate_batch, load_model

    if any("solution" not in row for row in rows):
        raise OmniptError(f"{build.path}: probe samples need solutions (use a format-rl or track-rl build)")
    model, processor = load_model(model_path, device=device)
    apply_pixel_bounds(processor, build)
    texts = generate_batch(
        model,
        processor,
        [generation_prompt(row) for row in rows],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    result = score_answers(texts, rows)
    result.image_reliance = image_reliance(model, processor, rows, batch_size=batch_size)
    del model
    return result


def image_reliance(model: Any, processor: Any, rows: Sequence[Row], *, batch_size: int = 8) -> float | None:
    """Loss per answer token with each row's images swapped for those of the row half the list away
    (same number of images), minus the loss with its own; None with fewer than two such rows."""
    from omnipt_data.model import answer_loss
    from omnipt_data.model.loading import prompt_images

    prompts = [generation_prompt(row) for row in rows]
    own = [prompt_images(prompt) for prompt in prompts]
    count = len(rows)
    pairs = [(i, (i + count // 2) % count) for i in range(count)]
    pairs = [(i, j) for i, j in pairs if i != j and len(own[i]) == len(own[j])]
    if not pairs:
        return None
    kept = [prompts[i] for i, _ in pairs]
    answers = [completion_text(rows[i]["solution"]) for i, _ in pairs]
    true = answer_loss(
        model, processor, kept, answers, images=[own[i] for i, _ in pairs], batch_size=batch_size
    )
    swapped = answer_loss(
        model, processor, kept, answers, images=[own[j] for _, j in pairs], batch_size=batch_size
    )
    return swapped - true
