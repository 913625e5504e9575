"""Encode builds with ms-swift's own loader; run in .venv-swift, writes one JSON report.

Usage: python swift_check.py REPORT.json MODEL BUILD [BUILD ...]

For every task of every build: ``swift.load_dataset`` on the export folder, template ``qwen2_5_vl`` in
training mode with the build as image root (``ROOT_IMAGE_DIR``), and ms-swift's data collator on each
encoded sample. ``MAX_PIXELS`` / ``MIN_PIXELS`` come from the environment (the build's pixel bounds).
Reports, per sample, the supervised text (labels decoded, one string per supervised span), the image
placeholder tokens, the vision blocks, the images' patch grids, and for RL builds the ``solution`` column
and the scores the build's reward plugin gives the sample's own answer.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from importlib.metadata import version
from pathlib import Path

from encoded import encoded_sample

TINY_MODEL_PLUGIN = Path(__file__).resolve().parents[2] / "configs" / "swift" / "tiny_model.py"


def main() -> None:
    out, model, builds = Path(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]]
    from swift import get_processor, get_template, load_dataset
    from swift.rewards import orms

    runpy.run_path(str(TINY_MODEL_PLUGIN))
    report: dict = {
        "versions": {p: version(p) for p in ("ms-swift", "transformers", "datasets", "torch")},
        "builds": {},
    }
    started = time.perf_counter()
    processor = get_processor(model, model_type="qwen2_5_vl")
    template = get_template(processor, template_type="qwen2_5_vl", truncation_strategy="raise")
    template.set_mode("train")
    tokenizer = processor.tokenizer
    for build in builds:
        os.environ["ROOT_IMAGE_DIR"] = str(build)
        plugin = build / "swift" / "omnipt_rewards.py"
        if plugin.is_file():
            runpy.run_path(str(plugin))
        tasks = {}
        for folder in sorted(p for p in (build / "swift").iterdir() if p.is_dir()):
            dataset, _ = load_dataset([str(folder)], remove_unused_columns=False, load_from_cache_file=False)
            samples = []
            for row in dataset:
                encoded = template.encode(dict(row))
                grids = template.data_collator([encoded]).get("image_grid_thw")
                sample = encoded_sample(tokenizer, encoded["input_ids"], encoded["labels"], grids)
                if "solution" in row:
                    # the build's reward plugin scores the sample's own answer against its solution
                    answer = row["messages"][-1]["content"]
                    sample["solution"] = row["solution"]
                    sample["rewards"] = {
                        name: _score(orms[name](), answer, row["solution"])
                        for name in orms
                        if name.startswith("omnipt_")
                    }
                samples.append(sample)
            tasks[folder.name] = samples
        report["builds"][str(build)] = tasks
    report["seconds"] = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(report))


def _score(orm, answer: str, solution: str) -> float | None:
    """The reward, or None where it does not apply to the solution (ours raise ValueError then)."""
    try:
        return orm(completions=[answer], solution=[solution])[0]
    except ValueError:
        return None


if __name__ == "__main__":
    main()
