"""The training runner on the tiny offline Qwen-VL and builds of the synthetic world: SFT, GRPO, schedule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from datasets import Image, List

from omnipt_data.answers import parse_answer
from omnipt_data.build import BuildOptions, build
from omnipt_data.convert import convert
from omnipt_data.errors import OmniptError
from omnipt_data.train.data import (
    completion_text,
    generation_prompt,
    grpo_dataset,
    held_out_rows,
    images_of,
    open_build,
    read_rows,
    sft_dataset,
)
from omnipt_data.train.grpo import GRPOOptions, train_grpo
from omnipt_data.train.runner import RECORD, TRAIN_LOG, TrainOptions, is_complete, read_record
from omnipt_data.train.schedule import load_schedule, run_schedule
from omnipt_data.train.sft import train_sft

#: 16 visual tokens an image (a 320x180 frame becomes 140x84): steps stay short on a CPU.
MAX_PIXELS = 16 * 28 * 28
QUIET: dict[str, Any] = {"show_progress": False, "logging_steps": 1}


@pytest.fixture(scope="module")
def builds(small_world, tmp_path_factory) -> dict[str, Path]:
    """format-rl (all frames), mid (detect) and sft (mot_step) builds of the small world's MOT store."""
    _, world = small_world
    root = tmp_path_factory.mktemp("train-builds")
    store = convert("mot", world / "mot", root / "store", show_progress=False).store.path
    paths = {}
    for stage, tasks in (("format-rl", None), ("mid", ["detect"]), ("sft", ["mot_step"])):
        paths[stage] = root / stage
        build(
            BuildOptions(
                stage=stage,
                stores=[store],
                out=paths[stage],
                tasks=tasks,
                exports=("native", "trl"),
                max_per_task=None if stage == "format-rl" else 8,
                max_pixels=MAX_PIXELS,
                show_progress=False,
            )
        )
    return paths


@pytest.fixture(scope="module")
def sft_checkpoint(tiny_model_dir, builds, tmp_path_factory) -> tuple[Path, Any]:
    """The tiny model after 24 SFT steps on the format-RL build (it starts writing <bbox> tags), with 2
    held-out samples probed before and after."""
    out = tmp_path_factory.mktemp("sft") / "ckpt"
    options = TrainOptions(
        model=tiny_model_dir,
        data=builds["format-rl"],
        out=out,
        max_steps=24,
        lr=3e-3,
        batch_size=4,
        probe_samples=2,
        probe_max_new_tokens=24,
        **QUIET,
    )
    return out, train_sft(options)


def _native_answers(build_dir: Path) -> list[tuple[tuple[str, ...], str]]:
    """``(images, answer text)`` of every sample of the build's native export."""
    answers = []
    for path in sorted((build_dir / "native").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            answers.append((tuple(record["images"]), record["messages"][-1]["content"][0]["text"]))
    return answers


def test_datasets_of_builds(builds):
    format_rl, mid = open_build(builds["format-rl"]), open_build(builds["mid"])
    assert format_rl.is_rl and not mid.is_rl
    assert (format_rl.min_pixels, format_rl.max_pixels) == (4 * 28 * 28, MAX_PIXELS)
    rows = held_out_rows(format_rl, 3)
    assert rows == held_out_rows(format_rl, 3) and len(rows) == 3
    held = images_of(rows)
    assert len(held) == 3

    # SFT on an RL build: completions rendered from the solutions are the build's own answer texts.
    dataset = sft_dataset([format_rl, mid], exclude_images=held)
    native = _native_answers(builds["format-rl"]) + _native_answers(builds["mid"])
    kept = [(images, text) for images, text in native if not held & set(images)]
    assert len(dataset) == len(kept) <= len(native) - 3  # mid samples of the held-out frames go too
    trained = []
    for row in dataset.cast_column("images", List(Image(decode=False))):
        text = row["completion"][0]["content"][0]["text"]
        trained.append((tuple(image["path"] for image in row["images"]), text))
        assert parse_answer(text, "omnipt").format_status == "exact"
    assert sorted(trained) == sorted(kept)
    first = dataset[0]
    assert first["images"][0].size == (320, 180)  # decoded from disk; the processor resizes
    assert [p["type"] for p in first["prompt"][0]["content"]] == ["image", "text"]

    grpo = grpo_dataset([format_rl])
    assert set(grpo.column_names) == {"prompt", "images", "solution", "task"}
    assert completion_text(grpo[0]["solution"]) in {text for _, text in native}
    with pytest.raises(OmniptError, match="GRPO needs RL builds"):
        grpo_dataset([mid])
    with pytest.raises(OmniptError, match="no samples for task"):
        sft_dataset([mid], ["count"])


def test_sft_learns_on_answer_tokens_only(sft_checkpoint, builds, tiny_model_dir):
    from transformers import AutoModelForImageTextToText
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from omnipt_data.model import load_model, load_processor
    from omnipt_data.train.data import apply_pixel_bounds

    out, result = sft_checkpoint
    losses = [loss for _, loss in result.series("loss")]
    print("SFT losses:", [round(v, 3) for v in losses])
    assert len(losses) == 24 and losses[-1] < losses[0] - 2.0
    assert is_complete(out) and not list(out.glob("checkpoint-*"))
    record = read_record(out)
    assert record["steps"] == 24 and record["trainer"] == "sft"
    assert record["probe_before"]["samples"] == record["probe_after"]["samples"] == 2
    assert 0.4 <= record["probe_after"]["format_reward"] <= 2.0
    logged = [json.loads(line) for line in (out / TRAIN_LOG).read_text().splitlines()]
    assert [e["step"] for e in logged if "loss" in e] == list(range(1, 25))

    # The checkpoint loads as is, with the build's pixel bounds and the stock processor class.
    model, processor = load_model(out, device="cpu")
    assert processor.image_processor.size["longest_edge"] == MAX_PIXELS
    assert json.loads((out / "processor_config.json").read_text())["processor_class"] == "Qwen2_5_VLProcessor"
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert not base.lm_head.weight.equal(model.lm_head.weight)

    # Only the answer and its end-of-turn token carry labels.
    processor = load_processor(tiny_model_dir)
    apply_pixel_bounds(processor, open_build(builds["format-rl"]))
    collator = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    row = sft_dataset([open_build(builds["format-rl"])])[0]
    batch = collator([row])
    labelled = [t for t in batch["labels"][0].tolist() if t != -100]
    expected = row["completion"][0]["content"][0]["text"] + "<|im_end|>\n"
    assert processor.tokenizer.decode(labelled) == expected
    assert batch["input_ids"][0].tolist().count(processor.image_token_id) == 15  # 140x84 pixels: 5x3

    # The probe's teacher-forced answer loss is the loss SFT trains: the same tokens, the same mean.
    import torch

    from omnipt_data.model import answer_loss

    rl_row = next(read_rows(open_build(builds["format-rl"])))
    with torch.inference_mode():
        trained = float(model(**batch).loss)
    prompt = generation_prompt(rl_row)
    assert answer_loss(model, processor, [prompt], [expected.removesuffix("<|im_end|>\n")]) == pytest.approx(
        trained, rel=1e-4
    )


def test_lora_sft_merges_into_full_weights(tiny_model_dir, builds, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    result = train_sft(
        TrainOptions(
            model=tiny_model_dir,
            data=builds["mid"],
            out=out,
            max_steps=2,
            lr=1e-2,
            batch_size=2,
            lora=True,
            lora_r=4,
            **QUIET,
        )
    )
    assert result.steps == 2 and (out / "adapter" / "adapter_config.json").is_file()
    base, merged = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert base.keys() == merged.keys()
    changed = {k for k in base if not base[k].equal(merged[k])}
    # Every projection of both language-model layers moved, nothing else (the vision tower's MLP too has
    # gate/up/down projections: the adapter leaves them alone).
    projections = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert len(changed) == 2 * len(projections)
    assert all(k.startswith("model.layers.") and k.split(".")[-2] in projections for k in changed)


def test_bf16_on_the_cpu_is_bf16_arithmetic_over_float32_weights(tiny_model_dir, builds, tmp_path):
    """On the CPU, --bf16 true trains through the trainer's autocast: bf16 products, float32 weights kept
    and saved (AdamW's small updates would round away in bf16 weights)."""
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    seen: set[tuple[Any, Any]] = set()

    class WatchProducts(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            # TRL fuses the logits into the loss, so a language layer's projection is where to look
            layer = model.model.language_model.layers[0].mlp.down_proj
            layer.register_forward_hook(lambda linear, _, out: seen.add((linear.weight.dtype, out.dtype)))

    out = tmp_path / "bf16"
    options = TrainOptions(
        model=tiny_model_dir, data=builds["mid"], out=out, max_steps=2, batch_size=2, bf16="true", **QUIET
    )
    assert train_sft(options, callbacks=(WatchProducts(),)).steps == 2
    # a CPU without bf16 arithmetic trains in float32 (the next test makes this one such a CPU)
    products = torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32
    assert seen == {(torch.float32, products)}
    assert {w.dtype for w in load_file(out / "model.safetensors").values()} == {torch.float32}


def test_bf16_on_a_cpu_without_bf16_arithmetic_trains_in_float32_and_says_so(
    tiny_model_dir, builds, tmp_path
):
    from safetensors.torch import load_file

    out = tmp_path / "float32"
    command = [sys.executable, "-m", "omnipt_data.cli", "train", "sft", "--model", str(tiny_model_dir)]
    command += ["--data", str(builds["mid"]), "--out", str(out), "--max-steps", "2", "--batch-size", "2"]
    # oneDNN capped at AVX2 computes as a CPU without AVX-512 would: bf16 products there are emulated
    env = os.environ | {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    run = subprocess.run([*command, "--bf16", "true"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    note = "bf16: this CPU has no bf16 arithmetic (AVX-512 or AMX), so training runs in float32"
    assert note in " ".join(run.stdout.split())
    assert read_record(out)["notes"][0] == note
    assert {str(w.dtype) for w in load_file(out / "model.safetensors").values()} == {"torch.float32"}


def test_the_loss_head_projects_only_the_answer_tokens_on_the_cpu(
    tiny_model_dir, builds, tmp_path, monkeypatch
):
    """TRL's fused loss head would project every prompt position onto the vocabulary off CUDA; training
    on the CPU projects the labelled positions alone, as on a GPU."""
    import torch
    from transformers import TrainerCallback
    from trl.trainer import utils as trl_utils

    projected: list[int] = []
    labelled: list[int] = []
    head = trl_utils._ChunkedLogProbFunction
    apply = head.apply

    def counting_apply(hidden, *args):
        projected.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(head, "apply", counting_apply)

    class CountLabels(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            forward = model.forward

            def counting_forward(*args, labels=None, **kwargs):
                if labels is not None and kwargs.get("fused_lm_head"):
                    labelled.append(int((labels[:, 1:] != -100).sum()))
                return forward(*args, labels=labels, **kwargs)

            model.forward = counting_forward

    options = TrainOptions(
        model=tiny_model_dir, data=builds["mid"], out=tmp_path / "sft", max_steps=3, batch_size=2, **QUIET
    )
    result = train_sft(options, callbacks=(CountLabels(),))
    assert result.steps == 3 and len(labelled) == 3
    assert projected == labelled and min(labelled) > 0
    # TRL's own choice is back once training ends
    assert not trl_utils._use_triton(torch.device("cpu"))


def test_grpo_moves_reward_and_weights(sft_checkpoint, builds, tmp_path):
    from safetensors.torch import load_file

    start, _ = sft_checkpoint
    out = tmp_path / "grpo"
    result = train_grpo(
        GRPOOptions(
            model=start,
            data=builds["format-rl"],
            out=out,
            max_steps=4,
            lr=1e-3,
            batch_size=4,
            num_generations=4,
            max_completion_length=32,
            **QUIET,
        )
    )
    rewards = [value for _, value in result.series("reward")]
    formats = [value for _, value in result.series("rewards/omnipt_format/mean")]
    losses = [value for _, value in result.series("loss")]
    print("GRPO rewards:", rewards, "format:", formats, "losses:", losses)
    assert len(rewards) == len(formats) == 4
    # format-RL samples are scored with the template's stage-1 reward F * (IoU / 2 + 0.5).
    assert all(0.2 <= r <= 2.0 for r in rewards) and all(0.4 <= f <= 2.0 for f in formats)
    # The answers to a prompt scored differently (a learning signal), and reward and loss moved.
    assert max(value for _, value in result.series("reward_std")) > 0
    assert len(set(rewards)) > 1 and len(set(losses)) > 1
    before, after = load_file(start / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not before[k].equal(after[k]) for k in before)
    assert read_record(out)["trainer"] == "grpo"


def test_grpo_refuses_bad_settings(tiny_model_dir, builds, tmp_path):
    with pytest.raises(OmniptError, match="multiple of --num-generations"):
        train_grpo(GRPOOptions(model=tiny_model_dir, data=builds["format-rl"], out=tmp_path, batch_size=3))
    with pytest.raises(OmniptError, match="GRPO needs RL builds"):
        train_grpo(GRPOOptions(model=tiny_model_dir, data=builds["mid"], out=tmp_path / "x", max_steps=1))
    with pytest.raises(OmniptError, match="--reward"):
        train_grpo(GRPOOptions(model=tiny_model_dir, data=builds["format-rl"], out=tmp_path, reward="nope"))


def _schedule(tmp_path: Path, tiny_model_dir: Path, builds: dict[str, Path], body: str = "") -> Path:
    config = tmp_path / "schedule.toml"
    config.write_text(
        f"""
[schedule]
model = "{tiny_model_dir}"
out = "runs"

[probe]
data = "{builds["format-rl"]}"
samples = 2
max_new_tokens = 16
after_each_stage = false

[defaults]
batch_size = 2
lr = 1e-3
logging_steps = 1

[[stage]]
name = "format"
trainer = "sft"
data = "{builds["format-rl"]}"
max_steps = 2

[[stage]]
name = "track"
trainer = "sft"
data = ["{builds["sft"]}", "{builds["mid"]}"]
max_steps = 4
save_steps = 2
{body}
"""
    )
    return config


def _losses(out: Path) -> dict[int, float]:
    entries = [json.loads(line) for line in (out / TRAIN_LOG).read_text().splitlines()]
    return {e["step"]: e["loss"] for e in entries if "loss" in e}


def test_schedule_skips_finished_and_resumes_interrupted_stages(tiny_model_dir, builds, tmp_path):
    from transformers import TrainerCallback

    class StopAtFirstSave(TrainerCallback):
        """Interrupts the ``track`` stage right after it saved checkpoint-2, as Ctrl-C would."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if Path(args.output_dir).name.endswith("track"):
                raise KeyboardInterrupt

    config = load_schedule(_schedule(tmp_path, tiny_model_dir, builds))
    first, second = config.stage_dir(0), config.stage_dir(1)
    assert (first.name, second.name) == ("01-format", "02-track")
    assert config.stages[1].data == [builds["sft"], builds["mid"]]

    with pytest.raises(KeyboardInterrupt):
        run_schedule(config, show_progress=False, callbacks=(StopAtFirstSave(),))
    assert is_complete(first) and not is_complete(second)
    assert (second / "checkpoint-2" / "trainer_state.json").is_file()

    result = run_schedule(config, show_progress=False)
    assert [s.status for s in result.stages] == ["skipped", "resumed"]
    record = read_record(second)
    assert record["resumed_from"] == "checkpoint-2" and record["steps"] == 4
    assert record["base_model"] == str(first)
    resumed = _losses(second)
    assert list(resumed) == [1, 2, 3, 4]  # two steps before the interruption, two after
    assert result.before is not None and result.after is not None
    assert result.after.samples == 2 and 0.4 <= result.after.format_reward <= 2.0
    summary = json.loads((config.out / "schedule.json").read_text())
    assert [s["status"] for s in summary["stages"]] == ["skipped", "resumed"]

    # Stage 2's output deleted: stage 1 is kept, stage 2 trains again from it, uninterrupted. The resumed
    # run went on from checkpoint-2's weights, optimizer and data order: its losses are the same.
    shutil.rmtree(second)
    result = run_schedule(config, show_progress=False)
    assert [s.status for s in result.stages] == ["skipped", "trained"]
    uninterrupted = _losses(second)
    print("stage 2 losses, resumed:", resumed, "uninterrupted:", uninterrupted)
    assert uninterrupted == pytest.approx(resumed, rel=1e-4)
    # Stage 1 retrained: stage 2, finished or interrupted from the old stage 1, trains again from the
    # start (its checkpoint-2 belongs to the old base).
    shutil.rmtree(first)
    with pytest.raises(KeyboardInterrupt):
        run_schedule(config, show_progress=False, callbacks=(StopAtFirstSave(),))
    assert is_complete(first) and (second / "checkpoint-2").is_dir() and not is_complete(second)
    shutil.rmtree(first)
    result = run_schedule(config, show_progress=False)
    assert [s.status for s in result.stages] == ["trained", "retrained"]
    record = read_record(second)
    assert record["resumed_from"] is None and record["base_finished_at"] == read_record(first)["finished_at"]
    assert [s.status for s in run_schedule(config, show_progress=False).stages] == ["skipped", "skipped"]


def test_schedule_config_errors(tiny_model_dir, builds, tmp_path):
    config = _schedule(tmp_path, tiny_model_dir, builds, body="learning_rate = 0.1")
    with pytest.raises(OmniptError, match=r"unknown option\(s\) learning_rate for a sft stage"):
        load_schedule(config)
    config.write_text(config.read_text().replace("learning_rate = 0.1", 'grad_accum = "many"'))
    with pytest.raises(OmniptError, match="grad_accum must be int"):
        load_schedule(config)
    config.write_text(config.read_text().replace('trainer = "sft"', 'trainer = "dpo"', 1))
    with pytest.raises(OmniptError, match="trainer 'dpo'"):
        load_schedule(config)
    (tmp_path / "bad.toml").write_text("[schedule\n")
    with pytest.raises(OmniptError, match="invalid TOML"):
        load_schedule(tmp_path / "bad.toml")


def test_shipped_configs_load(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    from omnipt_data.train.demo import DEMO_BUILDS, configs_root

    # The demo's and the learnability benchmark's schedules: the four stages on the demo's builds, probed
    # on the held-out validation frames and tracking the validation store.
    for name in ("schedule.tiny.toml", "schedule.learn.toml"):
        tiny = load_schedule(configs_root() / name, root=tmp_path)
        assert [(s.name, s.trainer) for s in tiny.stages] == [
            ("format-rl", "sft"),
            ("mid", "sft"),
            ("sft", "sft"),
            ("track-rl", "grpo"),
        ]
        assert tiny.model == tmp_path / "model" and tiny.probe is not None
        assert tiny.probe.data == tmp_path / "builds" / "probe"
        assert tiny.probe.track == tmp_path / "stores" / "val" and tiny.probe.after_each_stage
        assert {p.name for s in tiny.stages for p in s.data} | {"probe"} == set(DEMO_BUILDS)
    real = load_schedule(configs_root() / "schedule.qwen2.5-vl-7b.toml", root=tmp_path)
    assert [s.trainer for s in real.stages] == ["grpo", "sft", "sft", "grpo"]
    for name, kind in (("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED"), ("deepspeed_zero3", "DEEPSPEED")):
        config = load_config_from_file(str(configs_root() / "accelerate" / f"{name}.yaml"))
        assert config.distributed_type == kind and config.mixed_precision == "bf16"
        ds_file = (config.deepspeed_config or {}).get("deepspeed_config_file")
        if ds_file:
            assert json.loads((configs_root().parent / ds_file).read_text())["bf16"] == {"enabled": "auto"}


def test_schedule_tracks_and_draws_its_learning_curve(tiny_model_dir, small_world, builds, tmp_path):
    import numpy as np
    from PIL import Image

    from omnipt_data.rewards import load_solution
    from omnipt_data.train.curve import CURVE_JSON, CURVE_PNG, PROBE_FRAME_PNG, TRUE_COLOUR
    from omnipt_data.train.schedule import curve_points

    _, world = small_world
    val = convert("mot", world / "mot" / "val", tmp_path / "val", show_progress=False).store.path
    config = tmp_path / "schedule.toml"
    config.write_text(
        f"""
[schedule]
model = "{tiny_model_dir}"
out = "runs"

[probe]
data = "{builds["format-rl"]}"
samples = 3
max_new_tokens = 24
track = "{val}"
track_length = 3

[[stage]]
name = "format"
trainer = "sft"
data = "{builds["format-rl"]}"
max_steps = 4
lr = 3e-3
batch_size = 4
logging_steps = 1
"""
    )
    schedule = load_schedule(config)
    result = run_schedule(schedule, show_progress=False)
    stage = result.stages[0]
    assert result.before_hota is not None and stage.hota is not None
    assert 0.0 <= result.before_hota <= 1.0 and 0.0 <= stage.hota <= 1.0
    # The stage's checkpoint tracked both views of the validation scene, clip by clip.
    tracked = json.loads((stage.out / "tracking" / "track.json").read_text())
    assert tracked["sequences"] == 2 and tracked["generate_calls"] == 13  # 24 frames: 1 + 12 clips
    assert {p.name for p in (stage.out / "tracking").glob("*.txt")} == {
        "SYN-03_View1.txt",
        "SYN-03_View2.txt",
    }

    runs = schedule.out
    curve = json.loads((runs / CURVE_JSON).read_text())["points"]
    assert [(p["stage"], p["steps"]) for p in curve] == [("base", 0), ("format", 4)]
    assert curve[1]["exact_format"] == stage.probe.exact_format and curve[1]["hota"] == stage.hota
    assert curve[0]["box_f1"] == result.before.box_f1 and curve[0]["hota"] == result.before_hota
    # Each probe says how much its answers depend on the images: a float, the same in the curve.
    assert isinstance(stage.probe.image_reliance, float) and abs(stage.probe.image_reliance) < 5.0
    assert curve[1]["image_reliance"] == stage.probe.image_reliance
    assert curve[0]["image_reliance"] == result.before.image_reliance
    assert Image.open(runs / CURVE_PNG).format == "PNG"

    # The held-out frame, twice enlarged, before and after: the true boxes drawn in green on both panels.
    picture = np.asarray(Image.open(runs / PROBE_FRAME_PNG).convert("RGB"))
    assert picture.shape == (2 * 180 + 16, 2 * 2 * 320, 3)
    rows = held_out_rows(open_build(builds["format-rl"]), 3)
    truths = [load_solution(row["solution"]) for row in rows]
    busiest = max(truths, key=lambda t: len(t.answer.boxes()))
    x1, y1, x2, _ = busiest.answer.boxes()[0].corners
    sx, sy = 2 * 320 / busiest.image_size[0], 2 * 180 / busiest.image_size[1]
    for left in (0, 2 * 320):
        edge = picture[
            16 + round(y1 * sy) : 16 + round(y1 * sy) + 2, left + round(x1 * sx) + 1 : left + round(x2 * sx)
        ]
        assert (edge == TRUE_COLOUR).all(axis=-1).mean() > 0.5

    # Run again: the stage is skipped and the HOTA of both checkpoints read back from their caches.
    again = run_schedule(schedule, show_progress=False)
    assert [s.status for s in again.stages] == ["skipped"]
    assert curve_points(again) == curve_points(result)


def test_sft_runs_unchanged_under_a_multi_process_launch(tiny_model_dir, builds, tmp_path):
    """Two DDP processes (gloo on the CPU) through torchrun, the same command as alone."""
    out = tmp_path / "ddp"
    command = [
        str(Path(sys.executable).with_name("torchrun")),
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "omnipt_data.cli",
        "train",
        "sft",
        *("--model", str(tiny_model_dir), "--data", str(builds["mid"]), "--out", str(out)),
        *("--max-steps", "2", "--batch-size", "2", "--logging-steps", "1", "--quiet"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    record = read_record(out)
    assert record["processes"] == 2 and record["steps"] == 2
    assert run.stdout.count("wrote") == 1  # the main process reports
    assert len(_losses(out)) == 2


def test_cli_user_errors_print_one_line(tiny_model_dir, builds, tmp_path):
    command = [sys.executable, "-m", "omnipt_data.cli", "train", "sft", "--model", str(tiny_model_dir)]
    missing = subprocess.run(
        [*command, "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2
    expected = (
        f"error: {tmp_path / 'nowhere'}: not a build (no manifest.json; make one with `omnipt-data build`)"
    )
    assert missing.stderr.strip().splitlines() == [expected]
    (tmp_path / "done").mkdir()
    for name in ("config.json", "model.safetensors", RECORD):
        (tmp_path / "done" / name).write_text("{}")
    finished = subprocess.run(
        [*command, "--data", str(builds["mid"]), "--out", str(tmp_path / "done")],
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 2 and "already holds a finished run" in finished.stderr
    assert "Traceback" not in finished.stderr
