"""What SFT and GRPO runs share: options, precision, checkpoints, resuming, logging and the final save.

A run writes into one folder (``--out``): the trainer's ``checkpoint-N`` folders while it runs, then the
final model with its processor, ``train_log.jsonl`` (one line per logging step, appended across resumed
attempts) and, last of all, ``omnipt_train.json``, the completion record. A folder with that record is a
finished checkpoint that :func:`omnipt_data.model.load_model` and the next stage load as is; a folder
with ``checkpoint-N`` folders but no record is an interrupted run, which the next attempt resumes from
its last complete checkpoint.

The same code runs alone or under ``accelerate launch`` (DDP, FSDP, DeepSpeed): no device is chosen by
hand, the trainers place the model, and only the main process writes the final files and probes. On a
GPU the weights load in bfloat16 with flash-attention-2 (when installed) or SDPA; on the CPU in float32.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from omnipt_data.errors import OmniptError
from omnipt_data.progress import console as stderr_console
from omnipt_data.progress import progress_bar
from omnipt_data.train.data import (
    Build,
    Row,
    check_compatible,
    held_out_rows,
    images_of,
    open_build,
    tasks_by_build,
)
from omnipt_data.train.probe import ProbeResult, probe

RECORD = "omnipt_train.json"
TRAIN_LOG = "train_log.jsonl"
ADAPTER_DIR = "adapter"
_CACHE_DIR = ".datasets-cache"
_CHECKPOINT_PREFIX = "checkpoint-"
_TRAINER_STATE = "trainer_state.json"
_STOCK_PROCESSOR = "Qwen2_5_VLProcessor"
#: The language model's projections: LoRA leaves the vision tower (whose MLP shares these names) alone.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
#: Log keys shown on the console, with their short names.
_SHOWN_LOGS = (
    ("loss", "loss"),
    ("reward", "reward"),
    ("rewards/omnipt_format/mean", "format"),
    ("rewards/omnipt_box_f1/mean", "box_f1"),
    ("mean_token_accuracy", "token acc"),
    ("kl", "kl"),
    ("learning_rate", "lr"),
)


@dataclass
class TrainOptions:
    """One training run on one or more builds (``data``). ``max_steps`` wins over ``epochs``;
    ``probe_samples`` held-out samples of ``probe_data`` (default: the first build, when it is an RL
    build) are left out of training and answered before and after it."""

    model: Path
    data: Path | list[Path]
    out: Path
    tasks: list[str] | None = None
    epochs: float = 1.0
    max_steps: int | None = None
    lr: float = 1e-5
    batch_size: int = 4
    grad_accum: int = 1
    warmup: float = 0.0
    weight_decay: float = 0.0
    scheduler: str = "linear"
    bf16: str = "auto"
    gradient_checkpointing: str = "auto"
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_length: int | None = None
    save_steps: int = 200
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 0
    num_workers: int | None = None
    probe_data: Path | None = None
    probe_samples: int = 0
    probe_before: bool = True
    probe_max_new_tokens: int = 128
    exclude_images: frozenset[str] = frozenset()
    keep_checkpoints: bool = False
    resume: bool = True
    overwrite: bool = False
    show_progress: bool = True

    def __post_init__(self) -> None:
        paths = [self.data] if isinstance(self.data, str | Path) else list(self.data)
        self.data = [Path(p) for p in paths]
        self.model, self.out = Path(self.model), Path(self.out)
        if not self.data:
            raise OmniptError("a training run needs at least one build (--data)")

    @property
    def builds(self) -> list[Path]:
        assert isinstance(self.data, list)
        return self.data

    @classmethod
    def option_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def record(self) -> dict[str, Any]:
        """The options as JSON-ready values, for the completion record."""
        data = asdict(self)
        data["exclude_images"] = len(self.exclude_images)
        data["data"] = [str(p) for p in self.builds]
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


@dataclass
class TrainResult:
    """What a run did: its log entries (this attempt's), where it resumed, the probes, the time."""

    out: Path
    trainer: str
    steps: int
    resumed_from: str | None
    history: list[dict[str, Any]]
    probe_before: ProbeResult | None = None
    probe_after: ProbeResult | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def series(self, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one logged quantity, e.g. ``loss`` or ``reward``."""
        return [(int(e["step"]), float(e[key])) for e in self.history if key in e]


# --------------------------------------------------------------------------------------------------
# Checkpoint folders
# --------------------------------------------------------------------------------------------------


def is_complete(out: Path) -> bool:
    """Whether ``out`` holds a finished run: the completion record and the model's weights."""
    out = Path(out)
    return (out / RECORD).is_file() and (out / "config.json").is_file() and any(out.glob("*.safetensors"))


def read_record(out: Path) -> dict[str, Any]:
    return orjson.loads((Path(out) / RECORD).read_bytes())


def last_checkpoint(out: Path) -> Path | None:
    """The newest ``checkpoint-N`` folder whose trainer state was written (so it is whole)."""
    out = Path(out)
    if not out.is_dir():
        return None
    whole = [
        path
        for path in out.iterdir()
        if path.is_dir()
        and path.name.startswith(_CHECKPOINT_PREFIX)
        and path.name[len(_CHECKPOINT_PREFIX) :].isdigit()
        and (path / _TRAINER_STATE).is_file()
    ]
    return max(whole, key=lambda p: int(p.name[len(_CHECKPOINT_PREFIX) :]), default=None)


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    os.replace(tmp, path)


def _set_processor_class(out: Path) -> None:
    """Saved processors name the stock class, so ``AutoProcessor`` (with torchvision) loads them too."""
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        path = out / name
        if path.is_file():
            data = orjson.loads(path.read_bytes())
            if str(data.get("processor_class", "")).startswith("ImageOnly"):
                data["processor_class"] = _STOCK_PROCESSOR
                _write_json_atomic(path, data)


# --------------------------------------------------------------------------------------------------
# Precision and model loading
# --------------------------------------------------------------------------------------------------


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def process_state() -> Any:
    """accelerate's process state; on a machine without CUDA it is the CPU's, so that ``torchrun`` or
    ``accelerate launch`` of several processes runs DDP over gloo, as the trainer's own accelerator will."""
    from accelerate import PartialState

    return PartialState(cpu=not _cuda())


def resolve_switch(value: str | bool, name: str, auto: Callable[[], bool]) -> bool:
    """``auto`` / ``true`` / ``false`` (or a bool) as a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return auto()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise OmniptError(f"--{name.replace('_', '-')} {value!r}: expected auto, true or false")


def use_bf16(options: TrainOptions) -> tuple[bool, str | None]:
    """Whether to train in bf16, and a note when a CPU without bf16 arithmetic trains in float32 instead."""
    import torch

    bf16 = resolve_switch(
        options.bf16, "bf16", lambda: torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    # oneDNN emulates bf16 products without AVX-512 or AMX: a step of the learnability benchmark's model
    # took 8.6 s there against 0.54 s in float32.
    if bf16 and not _cuda() and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, "bf16: this CPU has no bf16 arithmetic (AVX-512 or AMX), so training runs in float32"
    return bf16, None


def model_init_kwargs(bf16: bool) -> dict[str, Any]:
    """How the trainers load the weights: bf16 + flash-attention-2/SDPA on GPU, float32 + SDPA on CPU.

    bf16 on the CPU is the trainer's autocast over float32 weights: a CPU run is short of arithmetic, not
    memory (bf16 matrix products take a training step of a 3.8 M-parameter Qwen2.5-VL from 0.50 to
    0.36 s on one AVX-512 core), and in bf16 weights AdamW's smallest updates round away.
    Under a multi-process launch every process loads onto the CPU and the trainer (DDP, FSDP or
    DeepSpeed) places the shards; alone, TRL's own placement (the GPU when there is one) applies.
    """
    from transformers.utils import is_flash_attn_2_available

    on_cuda = _cuda()
    attention = "flash_attention_2" if on_cuda and bf16 and is_flash_attn_2_available() else "sdpa"
    dtype = "bfloat16" if bf16 and on_cuda else "float32"
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attention}
    if process_state().num_processes > 1:
        kwargs["device_map"] = None
    return kwargs


@contextlib.contextmanager
def loss_head_on_answers_only() -> Iterator[None]:
    """TRL's fused loss head projects only the labelled positions (the answers) onto the vocabulary on CUDA
    and XPU, but every position elsewhere, for compilers that want fixed tile shapes. While this is open,
    the CPU gets the labelled positions alone too: eager runs skip the prompt's projections and
    log-softmaxes (a step of a 3.8 M-parameter Qwen2.5-VL took 0.43 s instead of 0.61, same losses)."""
    from trl.trainer import utils as trl_utils

    trl_choice = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or trl_choice(device)
    try:
        yield
    finally:
        trl_utils._use_triton = trl_choice


def lora_config(options: TrainOptions) -> Any:
    if not options.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )


def common_args(options: TrainOptions, bf16: bool) -> dict[str, Any]:
    """``TrainingArguments`` shared by ``SFTConfig`` and ``GRPOConfig``."""
    on_cuda = _cuda()
    checkpointing = resolve_switch(options.gradient_checkpointing, "gradient_checkpointing", lambda: on_cuda)
    workers = options.num_workers if options.num_workers is not None else (4 if on_cuda else 0)
    args: dict[str, Any] = {
        "output_dir": str(options.out),
        "num_train_epochs": options.epochs,
        "max_steps": options.max_steps if options.max_steps else -1,
        "learning_rate": options.lr,
        "per_device_train_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.grad_accum,
        "warmup_steps": options.warmup,
        "weight_decay": options.weight_decay,
        "lr_scheduler_type": options.scheduler,
        "bf16": bf16,
        "fp16": False,
        # transformers 5 renamed gradient checkpointing; TRL's configs still default the old name to True.
        "activation_checkpointing": checkpointing,
        "logging_steps": options.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": options.save_steps,
        "save_total_limit": options.save_total_limit,
        "seed": options.seed,
        "data_seed": options.seed,
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": on_cuda,
        "use_cpu": not on_cuda,
        "report_to": "none",
        "disable_tqdm": True,
        "model_init_kwargs": model_init_kwargs(bf16),
    }
    if checkpointing:
        # Non-reentrant checkpointing works with LoRA, DDP's unused-parameter search and FSDP.
        args["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return args


# --------------------------------------------------------------------------------------------------
# Logging and progress
# --------------------------------------------------------------------------------------------------


def _log_callback_class() -> type:
    from transformers import TrainerCallback

    class RunLog(TrainerCallback):
        """Appends each log to ``train_log.jsonl``, prints a short line and drives a progress bar."""

        def __init__(self, out: Path, console: Console, show_progress: bool, label: str):
            self.out, self.console, self.show_progress, self.label = out, console, show_progress, label
            self.history: list[dict[str, Any]] = []
            self._stack = contextlib.ExitStack()
            self._advance: Callable[[float], None] = lambda amount: None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self._advance = self._stack.enter_context(
                    progress_bar(self.label, total=state.max_steps, enabled=self.show_progress)
                )
                self._advance(state.global_step)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._advance(1)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            entry = {"step": state.global_step, **{k: _plain(v) for k, v in logs.items()}}
            self.history.append(entry)
            with open(self.out / TRAIN_LOG, "ab") as handle:
                handle.write(orjson.dumps(entry) + b"\n")
            shown = [f"{short} {_fmt(entry[key])}" for key, short in _SHOWN_LOGS if key in entry]
            if shown:
                self.console.print(f"  step {state.global_step}/{state.max_steps}: " + ", ".join(shown))

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._stack.close()

    return RunLog


def _plain(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


@dataclass
class TrainerInputs:
    """What a trainer factory gets: the builds, the processor, the shared ``TrainingArguments`` values,
    the images to leave out, a cache folder for ``datasets`` and the weights to start from."""

    builds: list[Build]
    processor: Any
    args: dict[str, Any]
    exclude_images: frozenset[str]
    cache_dir: Path
    model: Path


TrainerFactory = Callable[[TrainerInputs], Any]


def run_training(
    kind: str,
    options: TrainOptions,
    make_trainer: TrainerFactory,
    *,
    console: Console | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train with the trainer ``make_trainer(TrainerInputs(...))`` makes.

    Refuses a finished ``out`` unless ``overwrite``; resumes from the last complete checkpoint unless
    ``resume`` is off; ends with the final model, its processor and the completion record in ``out``.
    ``callbacks`` (``TrainerCallback`` objects) are added to the trainer.
    """
    console = console or stderr_console
    out = Path(options.out)
    started = time.perf_counter()
    # User errors first, before the heavy imports.
    if not (Path(options.model) / "config.json").is_file():
        raise OmniptError(f"--model {options.model}: not a checkpoint folder (no config.json)")
    if is_complete(out) and not options.overwrite:
        raise OmniptError(f"{out} already holds a finished run (pass --overwrite to train it again)")
    builds = [open_build(path) for path in options.builds]
    check_compatible(builds)
    tasks_by_build(builds, options.tasks)
    probe_build, probe_rows = held_out(options, builds[0])

    from transformers.utils import logging as hf_logging

    from omnipt_data.model import load_processor
    from omnipt_data.train.data import apply_pixel_bounds

    state = process_state()
    if is_complete(out):
        if state.is_main_process:
            shutil.rmtree(out)
        state.wait_for_everyone()
    exclude = options.exclude_images | images_of(probe_rows)
    bf16, bf16_note = use_bf16(options)
    resume_from = last_checkpoint(out) if options.resume else None
    out.mkdir(parents=True, exist_ok=True)
    if resume_from is None and state.is_main_process:
        # A fresh start: the log of an earlier attempt (no checkpoint kept, or --no-resume) goes.
        (out / TRAIN_LOG).unlink(missing_ok=True)
    if not options.show_progress:
        hf_logging.disable_progress_bar()

    notes: list[str] = [bf16_note] if bf16_note else []
    if bf16_note and state.is_main_process:
        console.print(f"  {bf16_note}")
    before = None
    if probe_rows and options.probe_before and state.is_main_process:
        before = probe(
            Path(options.model), probe_rows, probe_build, max_new_tokens=options.probe_max_new_tokens
        )
        console.print(f"  before: {before.describe()}")

    processor = load_processor(options.model)
    note = apply_pixel_bounds(processor, builds[0])
    if note:
        notes.append(note)
        if state.is_main_process:
            console.print(f"  {note}")
    # transformers writes Qwen2.5-VL checkpoints in the published key layout (``visual.*``,
    # ``model.layers.*``), but its Trainer reloads a checkpoint's weights into the model's own layout
    # (``model.visual.*``, ``model.language_model.*``) without mapping the keys: nothing but lm_head would
    # load and the run would silently go on from the weights it started from. from_pretrained maps them, so
    # a resumed full fine-tuning starts from the checkpoint folder itself (adapters, DeepSpeed and FSDP
    # checkpoints keep their own key layout and reload as usual).
    fixes_weights = resume_from is not None and not options.lora
    inputs = TrainerInputs(
        builds=builds,
        processor=processor,
        args=common_args(options, bf16),
        exclude_images=exclude,
        cache_dir=out / _CACHE_DIR,
        model=resume_from if fixes_weights and resume_from else Path(options.model),
    )
    trainer = make_trainer(inputs)
    if fixes_weights and not (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled):
        trainer._load_from_checkpoint = _weights_loaded_already
    _replace_printer(trainer)
    show = options.show_progress and state.is_main_process
    log = _log_callback_class()(out, console, show, f"{kind} {out.name}")
    trainer.add_callback(log)
    for callback in callbacks:
        trainer.add_callback(callback)
    if resume_from is not None and state.is_main_process:
        console.print(f"  resuming from {resume_from.name}")
    with loss_head_on_answers_only():
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    steps = int(trainer.state.global_step)
    _save_final(trainer, options, processor, bf16)
    del trainer

    after = None
    if probe_rows and state.is_main_process:
        after = probe(out, probe_rows, probe_build, max_new_tokens=options.probe_max_new_tokens)
        console.print(f"  after:  {after.describe()}")
    result = TrainResult(
        out=out,
        trainer=kind,
        steps=steps,
        resumed_from=resume_from.name if resume_from else None,
        history=log.history,
        probe_before=before,
        probe_after=after,
        seconds=time.perf_counter() - started,
        notes=notes,
    )
    if state.is_main_process:
        _cleanup(out, options.keep_checkpoints)
        _write_json_atomic(out / RECORD, _record(result, options, builds))
    state.wait_for_everyone()
    return result


def _weights_loaded_already(resume_from_checkpoint: str, model: Any = None) -> None:
    """Stands in for ``Trainer._load_from_checkpoint`` once from_pretrained has loaded the weights."""


def held_out(options: TrainOptions, build: Build) -> tuple[Build, list[Row]]:
    """The probe build (``probe_data``, else ``build``) and its held-out rows (none unless
    ``probe_samples`` is set)."""
    if options.probe_samples <= 0:
        return build, []
    probe_build = open_build(options.probe_data) if options.probe_data else build
    if not probe_build.is_rl:
        raise OmniptError(
            f"{probe_build.path}: probing needs an RL build (format-rl or track-rl) with solutions; "
            "pass one with --probe-data"
        )
    return probe_build, held_out_rows(probe_build, options.probe_samples)


def _replace_printer(trainer: Any) -> None:
    """Drop the trainer's raw-dict printer: :func:`_log_callback_class` prints the logs instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _save_final(trainer: Any, options: TrainOptions, processor: Any, bf16: bool) -> None:
    """The final weights in ``out`` (LoRA: the adapter in ``out/adapter``, merged into full weights)."""
    out = Path(options.out)
    state = process_state()
    if not options.lora:
        trainer.save_model(str(out))
    else:
        trainer.save_model(str(out / ADAPTER_DIR))
        state.wait_for_everyone()
        if state.is_main_process:
            _merge_adapter(Path(options.model), out / ADAPTER_DIR, out, model_init_kwargs(bf16)["dtype"])
    if state.is_main_process:
        processor.save_pretrained(str(out))
        _set_processor_class(out)
    state.wait_for_everyone()


def _merge_adapter(base: Path, adapter: Path, out: Path, dtype: str) -> None:
    """Load the base on the CPU, merge the adapter in and save full weights (``dtype``, as the trainer's)
    that the next stage loads as they are."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(base), dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out))


def _cleanup(out: Path, keep_checkpoints: bool) -> None:
    shutil.rmtree(out / _CACHE_DIR, ignore_errors=True)
    if not keep_checkpoints:
        for path in out.glob(f"{_CHECKPOINT_PREFIX}*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def _record(result: TrainResult, options: TrainOptions, builds: list[Build]) -> dict[str, Any]:
    return {
        "trainer": result.trainer,
        "complete": True,
        "steps": result.steps,
        "processes": process_state().num_processes,
        "resumed_from": result.resumed_from,
        "base_model": str(options.model),
        "data": [
            {"path": str(build.path), "stage": build.stage, "tasks": list(tasks)}
            for build, tasks in tasks_by_build(builds, options.tasks)
        ],
        "options": options.record(),
        "final_log": result.history[-1] if result.history else None,
        "probe_before": result.probe_before.to_dict() if result.probe_before else None,
        "probe_after": result.probe_after.to_dict() if result.probe_after else None,
        "seconds": round(result.seconds, 1),
        "notes": result.notes,
        "finished_at": time.time(),
        "base_finished_at": base_finished_at(Path(options.model)),
    }


def base_finished_at(model: Path) -> float | None:
    """When the run that produced ``model`` finished (None for a checkpoint not trained here).

    A stage records it for its base, so a schedule can tell a stage trained from an older base.
    """
    try:
        return float(read_record(model)["finished_at"])
    except (OSError, KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return None
