"""Encode builds with LLaMA-Factory's own loader; run in .venv-llamafactory, writes one JSON report.

Usage: python llamafactory_check.py REPORT.json MODEL BUILD [BUILD ...]

For every build: ``llamafactory.data.get_dataset`` on all the tasks of the export's ``dataset_info.json``
with the settings of ``configs/llamafactory/sft.tiny.yaml`` (template ``qwen2_vl``, the build as
``media_dir``), then LLaMA-Factory's SFT collator on every sample (the model's processor makes the pixel
inputs). Reports, per sample, the supervised text
(the labels, decoded, one string per supervised span), the image placeholder tokens, the vision blocks
and the images' patch grids, for the test to compare with the native export.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import yaml
from encoded import encoded_sample

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "llamafactory" / "sft.tiny.yaml"


def main() -> None:
    out, model, builds = Path(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]]
    from llamafactory.data import (
        SFTDataCollatorWith4DAttentionMask,
        get_dataset,
        get_template_and_fix_tokenizer,
    )
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    report: dict = {
        "versions": {p: version(p) for p in ("llamafactory", "transformers", "datasets", "torch")},
        "builds": {},
    }
    started = time.perf_counter()
    config = yaml.safe_load(CONFIG.read_text())
    with tempfile.TemporaryDirectory() as scratch:
        for build in builds:
            info = json.loads((build / "llamafactory" / "dataset_info.json").read_text())
            args = {
                **config,
                "model_name_or_path": model,
                "dataset_dir": str(build / "llamafactory"),
                "media_dir": str(build),
                "dataset": ",".join(info),  # every task, concatenated in this order
                "output_dir": scratch,
            }
            model_args, data_args, training_args, _, _ = get_train_args(args)
            tokenizer_module = load_tokenizer(model_args)
            tokenizer = tokenizer_module["tokenizer"]
            template = get_template_and_fix_tokenizer(tokenizer, data_args)
            dataset = get_dataset(template, model_args, data_args, training_args, "sft", **tokenizer_module)
            collator = SFTDataCollatorWith4DAttentionMask(
                template=template,
                tokenizer=tokenizer,
                processor=tokenizer_module["processor"],
                label_pad_token_id=-100,
            )
            rows = iter(dataset["train_dataset"])
            tasks = {}
            for entry in info.values():
                # the rows of each task, in the export's order (a dropped sample shifts every later one)
                count = sum(
                    1
                    for f in sorted((build / "llamafactory" / entry["file_name"]).glob("*.jsonl"))
                    for line in f.read_text().splitlines()
                    if line.strip()
                )
                samples = []
                for row in itertools.islice(rows, count):
                    grids = collator([row]).get("image_grid_thw")
                    samples.append(encoded_sample(tokenizer, row["input_ids"], row["labels"], grids))
                tasks[entry["file_name"]] = samples
            tasks["(rows beyond the exports)"] = [{} for _ in rows]
            report["builds"][str(build)] = tasks
    report["seconds"] = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
