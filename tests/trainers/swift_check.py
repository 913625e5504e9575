"""Encode builds with ms-swift's own loader; run in .venv-swift, writes one JSON report.

Usage: python swift_check.py REPORT.json MODEL BUILD [BUILD ...]

For every task of every build: ``swift.load_dataset`` on the export folder, template ``qwen2_5_vl`` in
training mode with the build as image root (``ROOT_IMAGE_DIR``), and ms-swift's data collator on each
encoded sample. ``MAX_PIXELS`` / ``MIN_PIXELS`` come from the environment (the build's pixel bounds).
Reports, per sample, the supervised text (labels decoded, one string per supervised span), the image
placeholder tokens, the vision blocks, the images' patch grids and the ``solution`` column.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from importlib.metadata import version
from pathlib import Path

TINY_MODEL_PLUGIN = Path(__file__).resolve().parents[2] / "configs" / "swift" / "tiny_model.py"


def main() -> None:
    out, model, builds = Path(sys.argv[1]), sys.argv[2], [Path(p) for p in sys.argv[3:]]
    from swift import get_processor, get_template, load_dataset

    runpy.run_path(str(TINY_MODEL_PLUGIN))
    report: dict = {
        "versions": {p: version(p) for p in ("ms-swift", "transformers", "datasets", "torch", "qwen-vl-utils")},
        "builds": {},
    }
    started = time.perf_counter()
    processor = get_processor(model, model_type="qwen2_5_vl")
    template = get_template(processor, template_type="qwen2_5_vl", max_length=None, truncation_strategy="raise")
    template.set_mode("train")
    tokenizer = processor.tokenizer
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")
    for build in builds:
        os.environ["ROOT_IMAGE_DIR"] = str(build)
        tasks = {}
        for folder in sorted(p for p in (build / "swift").iterdir() if p.is_dir()):
            dataset, _ = load_dataset([str(folder)], remove_unused_columns=False, load_from_cache_file=False)
            samples = []
            for row in dataset:
                encoded = template.encode(dict(row))
                batch = template.data_collator([encoded])
                ids, labels = encoded["input_ids"], encoded["labels"]
                grids = batch.get("image_grid_thw")
                samples.append(
                    {
                        "supervised": _spans(tokenizer, ids, labels),
                        "image_tokens": ids.count(image_pad),
                        "vision_blocks": ids.count(vision_start),
                        "grids": grids.tolist() if grids is not None else [],
                        "length": len(ids),
                        "solution": row.get("solution"),
                    }
                )
            tasks[folder.name] = samples
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
