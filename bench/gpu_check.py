"""GPU readiness check: a randomly initialised Qwen2.5-VL with the 3B model's shapes, built offline from a
config (nothing downloaded), measured where the GPU matters. Run with ``scripts/gpu-check``.

- pre-labelling: batched ``generate()`` (bf16 on CUDA) against one prompt at a time, on rendered frames
  with the pre-labeller's own prompts; frames/s, new tokens/s, peak GPU memory;
- one SFT step (forward, backward, AdamW) with every weight trained and with LoRA on the language model;
  the FSDP config (``configs/accelerate/fsdp.yaml``) is checked against the model: the layer classes it
  wraps must exist in it;
- GRPO's generation (several sampled completions per prompt) through vLLM, when vLLM is installed and a
  GPU is present.

Every reply is forced to ``--max-new-tokens`` (random weights stop anywhere), so token rates compare like
with like. ``--size tiny`` runs the same code on the 1 M-parameter test model (the CPU test does this).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FSDP_CONFIG = ROOT / "configs" / "accelerate" / "fsdp.yaml"

# Qwen2.5-VL-3B-Instruct's published shapes; "tiny" is the test model's (omnipt_data.model.tiny).
SHAPES: dict[str, dict[str, dict[str, Any]]] = {
    "3b": {
        "text": {
            "vocab_size": 151_936,
            "hidden_size": 2048,
            "intermediate_size": 11_008,
            "num_hidden_layers": 36,
            "num_attention_heads": 16,
            "num_key_value_heads": 2,
            "mrope_section": [16, 24, 24],
            "tie_word_embeddings": True,
        },
        "vision": {
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "out_hidden_size": 2048,
            "fullatt_block_indexes": [7, 15, 23, 31],
        },
    },
    "tiny": {
        "text": {
            "vocab_size": 2048,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "mrope_section": [4, 6, 6],
            "tie_word_embeddings": False,
        },
        "vision": {
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 4,
            "out_hidden_size": 128,
            "fullatt_block_indexes": [1],
        },
    },
}


def model_config(size: str) -> Any:
    """A ``Qwen2_5_VLConfig`` of ``size``'s shapes with the test tokenizer's special token ids."""
    from omnipt_data.model.tiny import qwen2_5_vl_config

    text = dict(SHAPES[size]["text"])
    tied = text.pop("tie_word_embeddings")
    return qwen2_5_vl_config(text, SHAPES[size]["vision"], tied=tied)


def random_model(
    size: str, tokenizer_dir: Path, device: str, dtype: Any, max_pixels: int | None = None
) -> tuple[Any, Any]:
    """The model of ``size`` with random weights on ``device``, and the test checkpoint's processor.

    Output rows for ids the tokenizer does not have are zeroed (as in the tiny model), so every generated
    id decodes; generation settings (stop and suppressed tokens) are the test checkpoint's.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from omnipt_data.model.loading import load_processor

    processor = load_processor(tokenizer_dir)
    processor.tokenizer.padding_side = "left"
    if max_pixels:  # the test checkpoint keeps images small; a real run sees the published sizes
        processor.image_processor.size["longest_edge"] = max_pixels
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(
            model_config(size), dtype=dtype, attn_implementation="sdpa"
        )
    with torch.no_grad():
        model.lm_head.weight[len(processor.tokenizer) :].zero_()
    model.generation_config = GenerationConfig.from_pretrained(tokenizer_dir)
    model.eval()
    return model, processor


def frames_world(work: Path, frames: int, width: int, height: int) -> list[Path]:
    size = ["--width", str(width), "--height", str(height), "--frames", str(frames)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "omnipt_data.cli",
            "synth",
            "--out",
            str(work / "world"),
            "--scenes",
            "1",
            *size,
            "--formats",
            "mot",
        ],
        check=True,
        capture_output=True,
    )
    return sorted((work / "world").glob("mot/train/*/img1/*.jpg"))[:frames]


def prelabel_prompts(images: list[Path], size: tuple[int, int]) -> list[Any]:
    from omnipt_data.build.draft import Image
    from omnipt_data.infer.tracker import PromptMaker, _template

    maker, template = PromptMaker(), _template("mid", "detect")
    return [maker.prompt(template, str(i), [Image(str(p), size)], {})[0] for i, p in enumerate(images)]


class GpuMemory:
    """Peak GPU memory of a phase (None on the CPU)."""

    def __init__(self, device: str):
        import torch

        self.cuda = torch.device(device).type == "cuda"
        self.torch = torch

    def __enter__(self) -> GpuMemory:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.started
        self.peak = self.torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None


def check_prelabel(model: Any, processor: Any, prompts: list[Any], batch: int, new_tokens: int) -> list[dict]:
    from omnipt_data.model import generate_batch, generate_one_by_one

    device = str(model.device)
    settings = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    generate_batch(model, processor, prompts[:batch], batch_size=batch, **settings)  # warm-up
    with GpuMemory(device) as batched:
        generate_batch(model, processor, prompts, batch_size=batch, **settings)
    with GpuMemory(device) as single:
        generate_one_by_one(model, processor, prompts, **settings)
    rows = []
    for name, run in ((f"pre-label batched ({batch})", batched), ("pre-label one-by-one generate()", single)):
        rows.append(
            {
                "check": name,
                "frames/s": len(prompts) / run.seconds,
                "tokens/s": len(prompts) * new_tokens / run.seconds,
                "peak GiB": run.peak,
            }
        )
    rows[0]["x one-by-one"] = rows[0]["frames/s"] / rows[1]["frames/s"]
    rows[0]["note"] = f"{len(prompts)} frames, {new_tokens} new tokens each"
    return rows


def training_batch(processor: Any, prompts: list[Any], device: str) -> dict[str, Any]:
    """Prompts with an answer appended, tokenised with their images; labels are the input ids."""
    from omnipt_data.model.loading import prompt_images

    conversations = [
        [*prompt, {"role": "assistant", "content": "<id>1</id><bbox>10,20,30,60</bbox>"}]
        for prompt in prompts
    ]
    texts = [processor.apply_chat_template(c, tokenize=False) for c in conversations]
    images = [image for prompt in prompts for image in prompt_images(prompt)]
    inputs = processor(text=texts, images=images, padding=True, return_tensors="pt").to(device)
    inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    return dict(inputs)


def check_sft_step(model: Any, batch: dict[str, Any], lora: bool, dtype: Any) -> dict:
    """One optimizer step (after one warm-up step); the weights are changed, use a fresh model after."""
    import torch

    from omnipt_data.train.runner import LORA_TARGETS

    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGETS))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    device = str(next(model.parameters()).device)
    losses = []
    for step in range(2):
        with GpuMemory(device) as run:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if step == 0 and run.peak is not None:
            torch.cuda.reset_peak_memory_stats()
    tokens = int(batch["attention_mask"].sum())
    return {
        "check": f"SFT step, {'LoRA' if lora else 'full'} ({str(dtype).removeprefix('torch.')})",
        "seconds": run.seconds,
        "tokens/s": tokens / run.seconds,
        "peak GiB": run.peak,
        "trainable M": sum(p.numel() for p in trainable) / 1e6,
        "loss": losses[-1],
        "note": f"{len(batch['input_ids'])} samples, {tokens} tokens",
    }


def check_fsdp_config(model: Any) -> dict:
    """The FSDP config wraps layer classes by name: each must exist in the model."""
    wrapped = next(
        line.split(":", 1)[1].strip()
        for line in FSDP_CONFIG.read_text().splitlines()
        if line.strip().startswith("fsdp_transformer_layer_cls_to_wrap:")
    ).split(",")
    classes = [type(m).__name__ for m in model.modules()]
    found = {name: classes.count(name) for name in wrapped}
    if not all(found.values()):
        raise SystemExit(f"{FSDP_CONFIG} wraps classes the model does not have: {found}")
    return {"check": "FSDP config wraps", "note": ", ".join(f"{n} x{c}" for n, c in found.items())}


def check_vllm(
    model: Any,
    processor: Any,
    tokenizer_dir: Path,
    work: Path,
    prompts: list[Any],
    group: int,
    new_tokens: int,
) -> dict:
    """GRPO-style generation (``group`` samples per prompt) through vLLM from the saved random model."""
    import torch

    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        return {"check": "GRPO generation (vLLM)", "note": "not run: needs vllm and a GPU"}
    try:
        return _vllm_generation(model, processor, tokenizer_dir, work, prompts, group, new_tokens)
    except Exception as error:  # a diagnostic: report what failed, keep the other measurements
        return {"check": "GRPO generation (vLLM)", "note": f"failed: {type(error).__name__}: {error}"[:200]}


def _vllm_generation(
    model: Any,
    processor: Any,
    tokenizer_dir: Path,
    work: Path,
    prompts: list[Any],
    group: int,
    new_tokens: int,
) -> dict:
    from vllm import LLM, SamplingParams

    from omnipt_data.model.loading import prompt_images

    folder = work / "vllm-model"
    model.save_pretrained(folder)
    for file in tokenizer_dir.iterdir():  # the test checkpoint's tokenizer and processor files
        if file.name != "config.json" and not file.name.endswith(".safetensors"):
            shutil.copy(file, folder / file.name)
    llm = LLM(
        model=str(folder), dtype="bfloat16", gpu_memory_utilization=0.5, limit_mm_per_prompt={"image": 1}
    )
    requests = [
        {
            "prompt": processor.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True),
            "multi_modal_data": {"image": prompt_images(p)[0]},
        }
        for p in prompts
    ]
    sampling = SamplingParams(n=group, temperature=1.0, max_tokens=new_tokens, min_tokens=new_tokens)
    llm.generate(requests[:1], sampling)  # warm-up
    started = time.perf_counter()
    llm.generate(requests, sampling)
    seconds = time.perf_counter() - started
    return {
        "check": f"GRPO generation (vLLM, {group} per prompt)",
        "frames/s": len(prompts) / seconds,
        "tokens/s": len(prompts) * group * new_tokens / seconds,
    }


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    from omnipt_data.model import build_tiny_qwen_vl

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer_dir = build_tiny_qwen_vl(work / "tokenizer", seed=0)
        images = frames_world(work, args.frames, *args.image_size)
        prompts = prelabel_prompts(images, tuple(args.image_size))
        model, processor = random_model(args.size, tokenizer_dir, device, dtype, args.max_pixels)
        params = sum(p.numel() for p in model.parameters()) / 1e9
        rows = [{"check": f"model {args.size}", "note": f"{params:.3g} B parameters on {device}"}]
        rows += check_prelabel(model, processor, prompts, args.batch_size, args.max_new_tokens)
        rows.append(check_fsdp_config(model))
        batch = training_batch(processor, prompts[: args.train_batch], device)
        for lora in (True, False):  # a fresh model each: a step changes the weights
            del model
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            model, _ = random_model(args.size, tokenizer_dir, device, dtype, args.max_pixels)
            rows.append(check_sft_step(model, batch, lora, dtype))
        # last: vLLM keeps its share of GPU memory until the process ends
        rows.append(
            check_vllm(model, processor, tokenizer_dir, work, prompts, args.group, args.max_new_tokens)
        )
    return rows


def print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = list(dict.fromkeys(key for row in rows for key in row if key != "note"))
    columns = [*keys, "note"]
    table = Table(title="omnipt-data GPU check")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console(width=200).print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", choices=sorted(SHAPES), default=None, help="Default: 3b on CUDA, else tiny."
    )
    parser.add_argument("--device", default=None, help="Default: cuda when available, else cpu.")
    parser.add_argument("--frames", type=int, default=64, help="Frames pre-labelled.")
    parser.add_argument("--batch-size", type=int, default=16, help="Prompts per batched generate().")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--train-batch", type=int, default=4, help="Samples in the SFT step.")
    parser.add_argument("--group", type=int, default=8, help="Completions per prompt for GRPO generation.")
    parser.add_argument("--image-size", type=int, nargs=2, default=(640, 360), metavar=("W", "H"))
    parser.add_argument(
        "--max-pixels", type=int, default=None, help="Processor max_pixels (default: 1280*28*28 for 3b)."
    )
    parser.add_argument("--out", type=Path, default=None, help="Also write the rows as JSON here.")
    args = parser.parse_args(argv)
    if args.size is None:
        import torch

        args.size = "3b" if torch.cuda.is_available() else "tiny"
    if args.max_pixels is None and args.size != "tiny":
        args.max_pixels = 1280 * 28 * 28  # Qwen2.5-VL's usual setting (the published default allows more)
    rows = run(args)
    print_table(rows)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    main()
