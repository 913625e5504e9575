"""Encode builds with LLaMA-Factory's own loader; run in .venv-llamafactory, writes one JSON report.

Usage: python llamafactory_check.py REPORT.json MODEL BUILD [BUILD ...]

For every task of every build: ``llamafactory.data.get_dataset`` with the export's ``dataset_info.json``,
template ``qwen2_vl`` and the build as ``media_dir``, then LLaMA-Factory's SFT collator on the whole
dataset (the model's processor makes the pixel inputs). Reports, per sample, the supervised text
(the labels, decoded, one string per supervised span), the image placeholder tokens, the vision blocks
and the images' patch grids, for the test to compare with the native export.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path


def main() -> None:
    out, model, builds = Path(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]]
    from llamafactory.data import SFTDataCollatorWith4DAttentionMask, get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    report: dict = {
        "versions": {p: version(p) for p in ("llamafactory", "transformers", "datasets", "torch")},
        "builds": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for build in builds:
            info = json.loads((build / "llamafactory" / "dataset_info.json").read_text())
            tasks = {}
            for name, entry in info.items():
                args = {
                    "model_name_or_path": model,
                    "stage": "sft",
                    "do_train": True,
                    "finetuning_type": "full",
                    "template": "qwen2_vl",
                    "dataset_dir": str(build / "llamafactory"),
                    "media_dir": str(build),
                    "dataset": name,
                    "cutoff_len": 32768,
                    "image_max_pixels": 16384 * 28 * 28,
                    "overwrite_cache": True,
                    "preprocessing_num_workers": 1,
                    "output_dir": scratch,
                    "report_to": "none",
                }
                model_args, data_args, training_args, _, _ = get_train_args(args)
                tokenizer_module = load_tokenizer(model_args)
                tokenizer = tokenizer_module["tokenizer"]
                template = get_template_and_fix_tokenizer(tokenizer, data_args)
                dataset = get_dataset(template, model_args, data_args, training_args, "sft", **tokenizer_module)
                rows = list(dataset["train_dataset"])
                collator = SFTDataCollatorWith4DAttentionMask(
                    template=template,
                    tokenizer=tokenizer,
                    processor=tokenizer_module["processor"],
                    label_pad_token_id=-100,
                )
                image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
                vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")
                samples = []
                for row in rows:
                    batch = collator([row])
                    ids, labels = row["input_ids"], row["labels"]
                    grids = batch.get("image_grid_thw")
                    samples.append(
                        {
                            "supervised": _spans(tokenizer, ids, labels),
                            "image_tokens": ids.count(image_pad),
                            "vision_blocks": ids.count(vision_start),
                            "grids": grids.tolist() if grids is not None else [],
                            "length": len(ids),
                        }
                    )
                tasks[entry["file_name"]] = samples
            report["builds"][str(build)] = tasks
    report["seconds"] = round(time.perf_counter() - started, 2)
    out.write_text(json.dumps(report))


def _spans(tokenizer, ids: list[int], labels: list[int]) -> list[str]:
    """The supervised tokens as text, one string per contiguous run of labels."""
    spans, current = [], []
    for token, label in zip(ids, labels, strict=True):
        if label == -100:
            if current:
                spans.append(current)
                current = []
        else:
            assert label == token, "labels are the inputs themselves (no shift at this point)"
            current.append(token)
    if current:
        spans.append(current)
    return [tokenizer.decode(span, skip_special_tokens=False, clean_up_tokenization_spaces=False) for span in spans]


if __name__ == "__main__":
    main()
