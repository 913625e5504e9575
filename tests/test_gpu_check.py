"""scripts/gpu-check at tiny size on the CPU: every measurement runs and its table prints."""

from __future__ import annotations

import importlib.util
import math

from conftest import PROJECT

TINY = "--size tiny --device cpu --frames 4 --batch-size 4 --max-new-tokens 4 --train-batch 2"
SMALL_FRAMES = "--image-size 224 168"


def test_gpu_check_runs_at_tiny_size_on_the_cpu(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", PROJECT / "bench" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "gpu.json"
    rows = gpu_check.main([*TINY.split(), *SMALL_FRAMES.split(), "--out", str(out)])
    by_check = {row["check"].split(" (")[0]: row for row in rows}
    batched, single = by_check["pre-label batched"], by_check["pre-label one-by-one generate()"]
    for row in (batched, single):
        assert row["frames/s"] > 0 and math.isclose(row["tokens/s"], row["frames/s"] * 4)
        assert row["peak GiB"] is None  # no GPU memory on the CPU
    assert math.isclose(batched["x one-by-one"], batched["frames/s"] / single["frames/s"])
    lora, full = by_check["SFT step, LoRA"], by_check["SFT step, full"]
    assert 0 < lora["trainable M"] < full["trainable M"]
    assert all(math.isfinite(row["loss"]) and row["tokens/s"] > 0 for row in (lora, full))
    # the tiny model has 2 decoder layers and 2 vision blocks: what the FSDP config wraps
    assert by_check["FSDP config wraps"]["note"] == "Qwen2_5_VLDecoderLayer x2, Qwen2_5_VLVisionBlock x2"
    vllm = next(row for row in rows if row["check"].startswith("GRPO generation"))
    if importlib.util.find_spec("vllm") is None:
        assert vllm["note"].startswith("not run")
    printed = capsys.readouterr().out
    assert "omnipt-data GPU check" in printed and "pre-label batched (4)" in printed
    assert out.read_text().count('"check"') == len(rows)
