"""``omnipt-data train sft|grpo|schedule|demo``: the training runner on the command line.

Registered by the main CLI as ``app.add_typer(train_app, name="train")``. Every command runs unchanged
under ``accelerate launch`` (e.g. ``accelerate launch --config_file configs/accelerate/fsdp.yaml -m
omnipt_data.cli train sft ...``). A user error prints one line and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from omnipt_data.console import make_console

train_app = typer.Typer(
    name="train",
    help="Train a Qwen-VL checkpoint on builds: SFT, GRPO, or the four-stage OmniPT schedule.",
    no_args_is_help=True,
)
out = make_console()

Model = Annotated[Path, typer.Option("--model", help="Checkpoint folder to start from.", show_default=False)]
Data = Annotated[
    list[Path],
    typer.Option(
        "--data",
        help="Build folder with a TRL export (--export trl); repeat to mix builds.",
        show_default=False,
    ),
]
Out = Annotated[
    Path,
    typer.Option("--out", help="Checkpoint folder to write (resumed if interrupted).", show_default=False),
]
Tasks = Annotated[str, typer.Option(help="Comma-separated tasks of the build (default: all).")]
Lora = Annotated[bool, typer.Option("--lora/--full", help="LoRA on the language model, or full fine-tuning.")]
LoraRank = Annotated[int, typer.Option(help="LoRA rank.")]
Epochs = Annotated[float, typer.Option(help="Passes over the data (unless --max-steps).")]
MaxSteps = Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")]
BatchSize = Annotated[int, typer.Option(help="Samples per device and step (GRPO: answers).")]
GradAccum = Annotated[int, typer.Option(help="Gradient accumulation steps.")]
Warmup = Annotated[float, typer.Option(help="Warmup: a ratio of the steps below 1, else steps.")]
Bf16 = Annotated[
    str,
    typer.Option(help="auto (bf16 on a GPU, fp32 on the CPU), true (CPU: bf16 math on fp32 weights), false."),
]
Checkpointing = Annotated[str, typer.Option(help="Gradient checkpointing: auto (on a GPU), true or false.")]
MaxLength = Annotated[int | None, typer.Option(help="Truncate longer samples (default: never).")]
SaveSteps = Annotated[int, typer.Option(help="Save a resumable checkpoint every this many steps.")]
LoggingSteps = Annotated[int, typer.Option(help="Log every this many steps.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
ProbeData = Annotated[
    Path | None, typer.Option(help="RL build whose held-out samples are answered before and after training.")
]
ProbeSamples = Annotated[int, typer.Option(help="Held-out samples to probe (0: no probe).")]
Resume = Annotated[bool, typer.Option(help="Resume an interrupted run from its last checkpoint.")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="Train again into a finished checkpoint folder.")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def _tasks(text: str) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] or None


def _report(result: Any) -> None:
    from omnipt_data.train.runner import process_state

    if not process_state().is_main_process:
        return
    loss = result.series("loss")
    line = f"[green]wrote[/] {result.out}: {result.steps} steps ({result.trainer}, {result.seconds:.0f} s)"
    if result.resumed_from:
        line += f", resumed from {result.resumed_from}"
    if len(loss) >= 2:
        line += f", loss {loss[0][1]:.4g} -> {loss[-1][1]:.4g}"
    reward = result.series("reward")
    if len(reward) >= 2:
        line += f", reward {reward[0][1]:.4g} -> {reward[-1][1]:.4g}"
    out.print(line)


@train_app.command("sft")
def sft_command(
    model: Model,
    data: Data,
    out_dir: Out,
    tasks: Tasks = "",
    lora: Lora = False,
    lora_r: LoraRank = 16,
    epochs: Epochs = 1.0,
    max_steps: MaxSteps = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-5,
    batch_size: BatchSize = 4,
    grad_accum: GradAccum = 1,
    warmup: Warmup = 0.0,
    bf16: Bf16 = "auto",
    gradient_checkpointing: Checkpointing = "auto",
    max_length: MaxLength = None,
    save_steps: SaveSteps = 200,
    logging_steps: LoggingSteps = 10,
    seed: Seed = 0,
    probe_data: ProbeData = None,
    probe_samples: ProbeSamples = 0,
    resume: Resume = True,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Supervised fine-tuning with TRL's SFTTrainer; the loss is on the answer tokens only."""
    from omnipt_data.train.runner import TrainOptions
    from omnipt_data.train.sft import train_sft

    options = TrainOptions(
        model=model,
        data=data,
        out=out_dir,
        tasks=_tasks(tasks),
        lora=lora,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        warmup=warmup,
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing,
        max_length=max_length,
        save_steps=save_steps,
        logging_steps=logging_steps,
        seed=seed,
        probe_data=probe_data,
        probe_samples=probe_samples,
        resume=resume,
        overwrite=overwrite,
        show_progress=not quiet,
    )
    _report(train_sft(options, console=out))


@train_app.command("grpo")
def grpo_command(
    model: Model,
    data: Data,
    out_dir: Out,
    tasks: Tasks = "",
    reward: Annotated[
        str, typer.Option(help="auto (each sample's template reward, else combined) or a reward name.")
    ] = "auto",
    num_generations: Annotated[int, typer.Option(help="Answers sampled per prompt.")] = 4,
    max_completion_length: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    beta: Annotated[float, typer.Option(help="KL coefficient (0: no reference model).")] = 0.0,
    vllm: Annotated[
        bool, typer.Option("--vllm", help="Generate with vLLM beside the trainer (GPU).")
    ] = False,
    lora: Lora = False,
    lora_r: LoraRank = 16,
    epochs: Epochs = 1.0,
    max_steps: MaxSteps = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-6,
    batch_size: BatchSize = 4,
    grad_accum: GradAccum = 1,
    warmup: Warmup = 0.0,
    bf16: Bf16 = "auto",
    gradient_checkpointing: Checkpointing = "auto",
    save_steps: SaveSteps = 200,
    logging_steps: LoggingSteps = 10,
    seed: Seed = 0,
    probe_data: ProbeData = None,
    probe_samples: ProbeSamples = 0,
    resume: Resume = True,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """RL with verifiable rewards (TRL's GRPOTrainer) on a format-rl or track-rl build."""
    from omnipt_data.train.grpo import GRPOOptions, train_grpo

    options = GRPOOptions(
        model=model,
        data=data,
        out=out_dir,
        tasks=_tasks(tasks),
        reward=reward,
        num_generations=num_generations,
        max_completion_length=max_completion_length,
        temperature=temperature,
        beta=beta,
        use_vllm=vllm,
        lora=lora,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        epochs=epochs,
        max_steps=max_steps,
        lr=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        warmup=warmup,
        bf16=bf16,
        gradient_checkpointing=gradient_checkpointing,
        save_steps=save_steps,
        logging_steps=logging_steps,
        seed=seed,
        probe_data=probe_data,
        probe_samples=probe_samples,
        resume=resume,
        overwrite=overwrite,
        show_progress=not quiet,
    )
    _report(train_grpo(options, console=out))


@train_app.command("schedule")
def schedule_command(
    config: Annotated[Path, typer.Option("--config", help="Schedule TOML file.", show_default=False)],
    root: Annotated[
        Path | None, typer.Option(help="Folder the config's relative paths start from (default: its own).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Run the OmniPT stages in order (format RL, mid, SFT, tracking RL); re-running resumes."""
    from omnipt_data.train.schedule import load_schedule, run_schedule

    run_schedule(load_schedule(config, root=root), console=out, show_progress=not quiet)


@train_app.command("demo")
def demo_command(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo writes.")] = Path(
        "runs/demo-train"
    ),
    seed: Seed = 0,
    quiet: Quiet = False,
) -> None:
    """Teach the small offline model to detect and track on the synthetic world (CPU, a few minutes)."""
    from omnipt_data.train.demo import run_training_demo

    run_training_demo(out_dir, seed=seed, console=out, show_progress=not quiet)
