"""The exports as the trainers read them: LLaMA-Factory and ms-swift with their own loaders and Qwen2.5-VL
templates (each in its own environment, made by ``scripts/trainer-env`` on first use and reused), TRL
through its own collator; and one training step of each from the command users type.

Every stage and every task the templates define is built in each box format (two samples per task,
materialized for the tiny model), then copied to another folder and the original removed: every check
and every training step runs from the copy, so the builds prove relocatable too. Each trainer's check is
one process (``tests/trainers/*_check.py``) that encodes everything and writes a JSON report, compared
here with the native export: no sample dropped, as many image placeholders as the images' visual tokens
and patch grids of exactly the build's image sizes (the pixels the boxes are in), and the supervised
text (labels decoded) exactly the native answers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from omnipt_data.build import BuildOptions, build
from omnipt_data.build.exporters import CHECKED_WITH, llamafactory_dataset_name
from omnipt_data.build.templates import RL_STAGES, STAGES, load_templates
from omnipt_data.convert import convert
from omnipt_data.model.tiny import MAX_PIXELS, MIN_PIXELS
from omnipt_data.rewards import REWARDS
from omnipt_data.synth import WRITERS
from omnipt_data.train.runner import TRAIN_LOG

PROJECT = Path(__file__).resolve().parents[1]
CHECKS = PROJECT / "tests" / "trainers"
BOX_FORMATS = ("omnipt", "qwen2.5", "qwen3")
END_OF_TURN = "<|im_end|>\n"  # what the Qwen2.5-VL templates supervise after each answer

# The README's "Train with LLaMA-Factory / ms-swift / TRL" commands, run by bash as they are written there
# (MODEL: a checkpoint folder, BUILD: a materialized build, OUT: where the run writes).
LLAMAFACTORY_SFT = (
    "llamafactory-cli train configs/llamafactory/sft.tiny.yaml model_name_or_path=$MODEL \\\n"
    "    dataset_dir=$BUILD/llamafactory media_dir=$BUILD dataset=omnipt_sft_mot_step output_dir=$OUT"
)
SWIFT_SFT = (
    "ROOT_IMAGE_DIR=$BUILD swift sft configs/swift/sft.tiny.yaml --model $MODEL \\\n"
    "    --dataset $BUILD/swift/mot_step --external_plugins configs/swift/tiny_model.py --output_dir $OUT"
)
SWIFT_GRPO = (
    "ROOT_IMAGE_DIR=$BUILD swift rlhf configs/swift/grpo.tiny.yaml --model $MODEL \\\n"
    "    --dataset $BUILD/swift/mot_step --output_dir $OUT \\\n"
    "    --external_plugins configs/swift/tiny_model.py $BUILD/swift/omnipt_rewards.py"
)
TRL_SFT = (
    "omnipt-data train sft --model $MODEL --data $BUILD --out $OUT --full \\\n"
    "    --max-steps 1 --batch-size 1 --logging-steps 1 --probe-samples 0 --quiet"
)


@pytest.fixture(scope="module")
def trainer_envs() -> dict[str, Path]:
    """Each trainer's virtual environment: made on first use (minutes; both at once), then only checked."""
    started = {
        name: subprocess.Popen(
            [str(PROJECT / "scripts" / "trainer-env"), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("llamafactory", "swift")
    }
    venvs = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=3600)
        assert process.returncode == 0, err[-3000:]
        venvs[name] = Path(out.strip().splitlines()[-1])
    return venvs


def scratch_env(tmp: Path, venv: Path | None = None) -> dict[str, str]:
    """Caches in a temporary folder, the tiny model's pixel bounds for ms-swift, the venv first on PATH."""
    env = {**os.environ, "HF_HOME": str(tmp / "hf"), "MODELSCOPE_CACHE": str(tmp / "modelscope")}
    env.update(MAX_PIXELS=str(MAX_PIXELS), MIN_PIXELS=str(MIN_PIXELS), TOKENIZERS_PARALLELISM="false")
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return env


@pytest.fixture(scope="module")
def builds(small_world, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(box format, stage) -> a materialized build of every task, moved away from where it was made."""
    _, world = small_world
    root = tmp_path_factory.mktemp("trainer-builds")
    stores = [
        convert(fmt, world / fmt, root / "stores" / fmt, show_progress=False).store.path
        for fmt in WRITERS
        if (world / fmt).is_dir() and any((world / fmt).iterdir())
    ]
    made, moved = root / "made", root / "moved"
    for box_format in BOX_FORMATS:
        for stage in STAGES:
            build(
                BuildOptions(
                    stage=stage,
                    stores=stores,
                    out=made / box_format / stage,
                    box_format=box_format,
                    exports=("native", "llamafactory", "swift", "trl"),
                    max_per_task=2,
                    materialize=True,
                    min_pixels=MIN_PIXELS,
                    max_pixels=MAX_PIXELS,
                    show_progress=False,
                )
            )
    shutil.copytree(made, moved)
    shutil.rmtree(made)
    return {(f, s): moved / f / s for f in BOX_FORMATS for s in STAGES}


def native_records(build_dir: Path, task: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted((build_dir / "native" / task).glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def answers(record: dict[str, Any]) -> list[str]:
    return [m["content"][0]["text"] for m in record["messages"] if m["role"] == "assistant"]


def check_encoded(sample: dict[str, Any], record: dict[str, Any], supervised: list[str], where: str) -> None:
    """One encoded sample against its native record."""
    sizes = record["image_sizes"]
    assert sample["supervised"] == supervised, where
    assert sample["vision_blocks"] == len(record["images"]), where
    assert sample["image_tokens"] == sum((w // 28) * (h // 28) for w, h in sizes), where
    assert sample["grids"] == [[1, h // 14, w // 14] for w, h in sizes], where


def check_report(report: dict[str, Any], builds: dict[tuple[str, str], Path], all_turns: bool) -> None:
    """Every task of every build, every sample."""
    for (box_format, stage), build_dir in builds.items():
        tasks = report["builds"][str(build_dir)]
        assert not tasks.pop("(rows beyond the exports)", []), (box_format, stage)
        assert set(tasks) == {t.task for t in load_templates(stage)}, (box_format, stage)
        for task, samples in tasks.items():
            records = native_records(build_dir, task)
            assert len(samples) == len(records) > 0, (box_format, stage, task)  # none dropped
            for sample, record in zip(samples, records, strict=True):
                expected = answers(record) if all_turns else answers(record)[-1:]
                check_encoded(sample, record, [a + END_OF_TURN for a in expected], f"{stage}/{task}")


def run_check(
    name: str, venv: Path, builds: dict[tuple[str, str], Path], model: Path, tmp: Path
) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    command = [str(venv / "bin" / "python"), str(CHECKS / f"{name}_check.py"), str(out), str(model)]
    run = subprocess.run(
        [*command, *map(str, builds.values())],
        capture_output=True,
        text=True,
        timeout=1200,
        env=scratch_env(tmp),
        cwd=tmp,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(out.read_text())


def test_llamafactory_loads_every_export_as_built(trainer_envs, builds, tiny_model_dir, tmp_path):
    report = run_check("llamafactory", trainer_envs["llamafactory"], builds, tiny_model_dir, tmp_path)
    assert report["versions"]["llamafactory"] == CHECKED_WITH["llamafactory"]["llamafactory"]
    check_report(report, builds, all_turns=True)
    for (_, stage), build_dir in builds.items():
        manifest = json.loads((build_dir / "manifest.json").read_text())
        assert manifest["exports_checked_with"]["llamafactory"] == {"llamafactory": "0.9.5"}
        info = json.loads((build_dir / "llamafactory" / "dataset_info.json").read_text())
        assert set(info) == {llamafactory_dataset_name(stage, t.task) for t in load_templates(stage)}
        # a declared column that rows lack stops LLaMA-Factory's loader (KeyError): only templates with a
        # system prompt declare one
        templates = {llamafactory_dataset_name(stage, t.task): t for t in load_templates(stage)}
        for name, entry in info.items():
            assert ("system" in entry["columns"]) == (templates[name].system is not None)


def test_swift_loads_every_export_as_built_and_its_plugin_scores_as_our_rewards(
    trainer_envs, builds, tiny_model_dir, tmp_path
):
    report = run_check("swift", trainer_envs["swift"], builds, tiny_model_dir, tmp_path)
    assert report["versions"]["ms-swift"] == CHECKED_WITH["swift"]["ms-swift"]
    check_report(report, builds, all_turns=True)
    scored = 0
    for (_, stage), build_dir in builds.items():
        manifest = json.loads((build_dir / "manifest.json").read_text())
        assert manifest["exports_checked_with"]["swift"] == {"ms-swift": "4.6.0"}
        assert (build_dir / "swift" / "omnipt_rewards.py").is_file() == (stage in RL_STAGES)
        for task, samples in report["builds"][str(build_dir)].items():
            for sample, record in zip(samples, native_records(build_dir, task), strict=True):
                if stage not in RL_STAGES:
                    assert "solution" not in sample
                    continue
                assert json.loads(sample["solution"]) == record["solution"]
                answer = answers(record)[-1]
                assert set(sample["rewards"]) == {f"omnipt_{name}" for name in REWARDS}
                for name, reward in REWARDS.items():
                    try:
                        expected = reward(completions=[answer], solution=[record["solution"]])[0]
                    except ValueError:  # a reward that does not apply to this task
                        expected = None
                    assert sample["rewards"][f"omnipt_{name}"] == pytest.approx(expected, abs=1e-9)
                scored += 1
    assert scored > 0


def test_trl_collator_reads_every_export_as_built(builds, tiny_model_dir):
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    sys.path.insert(0, str(CHECKS))
    from encoded import encoded_sample

    from omnipt_data.model.loading import load_processor
    from omnipt_data.train.data import apply_pixel_bounds, grpo_dataset, open_build, sft_dataset

    assert {name: version(name) for name in CHECKED_WITH["trl"]} == CHECKED_WITH["trl"]
    processor = load_processor(tiny_model_dir)
    collator = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    report: dict[str, Any] = {"builds": {}}
    for (_, stage), build_dir in builds.items():
        opened = open_build(build_dir)
        apply_pixel_bounds(processor, opened)
        tasks = {}
        for task in opened.tasks:
            samples = []
            for row in sft_dataset([opened], [task]):
                batch = collator([row])
                ids = batch["input_ids"][0][batch["attention_mask"][0].bool()].tolist()
                labels = batch["labels"][0][batch["attention_mask"][0].bool()].tolist()
                samples.append(encoded_sample(processor.tokenizer, ids, labels, batch.get("image_grid_thw")))
            tasks[task] = samples
            if stage in RL_STAGES:
                rows = grpo_dataset([opened], [task])
                natives = native_records(build_dir, task)
                assert [json.loads(s) for s in rows["solution"]] == [r["solution"] for r in natives]
        report["builds"][str(build_dir)] = tasks
    # TRL's prompt/completion rows supervise the last answer (earlier turns are the prompt)
    check_report(report, builds, all_turns=False)


def run_command(command: str, venv: Path | None, tmp: Path, **paths: Path) -> subprocess.CompletedProcess:
    env = scratch_env(tmp, venv)
    env.update({name: str(path) for name, path in paths.items()})
    run = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=900, env=env, cwd=PROJECT
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run


def logged_losses(path: Path) -> list[float]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [float(r["loss"]) for r in rows if "loss" in r]


def test_llamafactory_trains_one_step_from_the_command_line(trainer_envs, builds, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    venv = trainer_envs["llamafactory"]
    run_command(
        LLAMAFACTORY_SFT, venv, tmp_path, MODEL=tiny_model_dir, BUILD=builds["omnipt", "sft"], OUT=out
    )
    losses = logged_losses(out / "trainer_log.jsonl")
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    assert (out / "checkpoint-1" / "model.safetensors").is_file()
    print(f"llamafactory sft: loss {losses[0]:.4f}")


def test_swift_trains_sft_and_grpo_one_step_from_the_command_line(
    trainer_envs, builds, tiny_model_dir, tmp_path
):
    venv = trainer_envs["swift"]
    paths = {"MODEL": tiny_model_dir}
    run_command(SWIFT_SFT, venv, tmp_path, BUILD=builds["omnipt", "sft"], OUT=tmp_path / "sft", **paths)
    run_command(
        SWIFT_GRPO, venv, tmp_path, BUILD=builds["qwen2.5", "track-rl"], OUT=tmp_path / "grpo", **paths
    )
    for kind in ("sft", "grpo"):
        (run_dir,) = (tmp_path / kind).iterdir()  # ms-swift writes into OUT/v0-<date>
        (log,) = [json.loads(line) for line in (run_dir / "logging.jsonl").read_text().splitlines()[:1]]
        assert math.isfinite(float(log["loss"])), kind
        assert (run_dir / "checkpoint-1" / "model.safetensors").is_file(), kind
        if kind == "grpo":
            # scored by the build's plugin: every reward is in range and format is watched alongside
            assert 0.0 <= float(log["rewards/omnipt_combined/mean"]) <= 1.0
            assert 0.4 <= float(log["rewards/omnipt_format/mean"]) <= 2.0
        print(f"swift {kind}: loss {float(log['loss']):.4f}")


def test_trl_runner_trains_one_step_from_a_moved_build(builds, tiny_model_dir, tmp_path):
    venv = Path(sys.executable).parent.parent
    out = tmp_path / "out"
    run_command(TRL_SFT, venv, tmp_path, MODEL=tiny_model_dir, BUILD=builds["qwen3", "mid"], OUT=out)
    assert (out / "model.safetensors").is_file()
    losses = logged_losses(out / TRAIN_LOG)
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    print(f"trl sft: loss {losses[0]:.4f}")


def test_readme_shows_the_commands_these_tests_run():
    readme = (PROJECT / "README.md").read_text()
    for command in (LLAMAFACTORY_SFT, SWIFT_SFT, SWIFT_GRPO, TRL_SFT):
        assert command in readme
