"""Supervised fine-tuning on a build with TRL's ``SFTTrainer``: loss on the answer tokens only.

Rows are conversational prompt / completion pairs with their images (:func:`~omnipt_data.train.data.
sft_dataset`); TRL's vision-language collator renders them with the model's chat template, runs the
images through the model's processor and masks every prompt token (``completion_only_loss``), so only
the assistant's answer and its end-of-turn token are learnt. Full fine-tuning by default, LoRA on the
language model's projections with ``lora=True``.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from omnipt_data.train.data import sft_dataset
from omnipt_data.train.runner import TrainerInputs, TrainOptions, TrainResult, lora_config, run_training


def train_sft(
    options: TrainOptions, *, console: Console | None = None, callbacks: tuple[Any, ...] = ()
) -> TrainResult:
    """Run SFT as ``options`` say; see :func:`omnipt_data.train.runner.run_training`."""

    def make_trainer(inputs: TrainerInputs) -> Any:
        from trl import SFTConfig, SFTTrainer

        dataset = sft_dataset(
            inputs.builds, options.tasks, exclude_images=inputs.exclude_images, cache_dir=inputs.cache_dir
        )
        config = SFTConfig(
            **inputs.args,
            max_length=options.max_length,
            completion_only_loss=True,
            # Images are processed batch by batch in the collator; the dataset stays rows of paths.
            dataset_kwargs={"skip_prepare_dataset": True},
            remove_unused_columns=False,
        )
        return SFTTrainer(
            model=str(inputs.model),
            args=config,
            train_dataset=dataset,
            processing_class=inputs.processor,
            peft_config=lora_config(options),
        )

    return run_training("sft", options, make_trainer, console=console, callbacks=callbacks)
