"""RL with verifiable rewards on an RL build with TRL's ``GRPOTrainer`` and the project's rewards.

Each prompt is answered ``num_generations`` times; the answers are scored by a reward of
:data:`omnipt_data.rewards.REWARDS` against the row's ``solution`` and the group-relative advantages
drive the update. The default reward, ``auto``, is ``combined``: each sample is scored by the reward
its template names (``solution["reward"]``, e.g. ``stage1`` for format RL) or by its task family's
weighted mix. ``format`` and ``box_f1`` are computed alongside with weight 0, so the log shows how the
answer format and the boxes move whatever the reward.

``batch_size`` counts answers, not prompts: it (times ``grad_accum`` and the processes) must be a
multiple of ``num_generations``. On a GPU, ``use_vllm`` generates with vLLM next to the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console

from omnipt_data.errors import OmniptError
from omnipt_data.rewards import REWARD_NAMES, REWARDS
from omnipt_data.train.data import grpo_dataset, open_build, require_rl
from omnipt_data.train.runner import TrainerInputs, TrainOptions, TrainResult, lora_config, run_training

MONITORED_REWARDS: tuple[str, ...] = ("format", "box_f1")


@dataclass
class GRPOOptions(TrainOptions):
    """A GRPO run: ``TrainOptions`` plus the generation and reward settings."""

    num_generations: int = 4
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0
    reward: str = "auto"
    use_vllm: bool = False


def reward_functions(reward: str) -> tuple[list[Any], list[float]]:
    """The trained reward (weight 1) and the monitored ones (weight 0)."""
    name = "combined" if reward == "auto" else reward
    if name not in REWARDS:
        raise OmniptError(f"--reward {reward!r}: expected auto or one of {', '.join(REWARD_NAMES)}")
    names = [name, *(m for m in MONITORED_REWARDS if m != name)]
    return [REWARDS[n] for n in names], [1.0] + [0.0] * (len(names) - 1)


def train_grpo(
    options: GRPOOptions, *, console: Console | None = None, callbacks: tuple[Any, ...] = ()
) -> TrainResult:
    """Run GRPO as ``options`` say; see :func:`omnipt_data.train.runner.run_training`."""
    functions, weights = reward_functions(options.reward)
    for path in options.builds:
        require_rl(open_build(path))
    if options.num_generations < 2:
        raise OmniptError("--num-generations must be at least 2 (advantages compare answers to one prompt)")
    if (options.batch_size * options.grad_accum) % options.num_generations:
        raise OmniptError(
            f"--batch-size x --grad-accum ({options.batch_size} x {options.grad_accum}) must be a multiple "
            f"of --num-generations ({options.num_generations}): a batch holds whole groups of answers"
        )

    def make_trainer(inputs: TrainerInputs) -> Any:
        from trl import GRPOConfig, GRPOTrainer

        dataset = grpo_dataset(
            inputs.builds, options.tasks, exclude_images=inputs.exclude_images, cache_dir=inputs.cache_dir
        )
        vllm: dict[str, Any] = {"use_vllm": True, "vllm_mode": "colocate"} if options.use_vllm else {}
        config = GRPOConfig(
            **inputs.args,
            num_generations=options.num_generations,
            max_completion_length=options.max_completion_length,
            temperature=options.temperature,
            beta=options.beta,
            reward_weights=weights,
            remove_unused_columns=False,
            **vllm,
        )
        return GRPOTrainer(
            model=str(inputs.model),
            reward_funcs=functions,
            args=config,
            train_dataset=dataset,
            processing_class=inputs.processor,
            peft_config=lora_config(options),
        )

    return run_training("grpo", options, make_trainer, console=console, callbacks=callbacks)
