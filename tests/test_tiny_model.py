"""The tiny offline Qwen2.5-VL: deterministic build, offline reload, template, tokenizer, generation."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from omnipt_data.errors import OmniptError
from omnipt_data.model import (
    build_tiny_qwen_vl,
    checkpoint_hash,
    generate_batch,
    generate_one_by_one,
    generate_token_ids,
    load_model,
    load_processor,
)
from omnipt_data.model.loading import _batches
from omnipt_data.model.tiny import SPECIAL_TOKENS, TOKEN_IDS

TINY_PARAMETERS = 1_077_696
BOX_TEXT = "<id>3</id><bbox>12,40,30,88</bbox>"


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> tuple[Any, Any]:
    """``(model, processor)`` of the tiny checkpoint on CPU, float32."""
    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline mode on, and any attempt to open a network connection fails the test."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # The hub library reads the variables once, at import: set its flag too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def _image(width: int, height: int, seed: int) -> Any:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _prompts() -> list[list[dict[str, Any]]]:
    """Three prompts of different lengths: one image, two images, text only (so batches get padded)."""
    return [
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": _image(84, 56, seed=1)},
                    {"type": "text", "text": "Describe the pedestrian."},
                ],
            }
        ],
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Track every pedestrian in Frame 3 of View 1 and View 2."},
                    {"type": "image", "image": _image(84, 56, seed=2)},
                    {"type": "image", "image": _image(56, 84, seed=3)},
                ],
            }
        ],
        [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "Give a Summary of the scene."},
        ],
    ]


def test_build_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_qwen_vl(tmp_path / "again", seed=0)
    other = build_tiny_qwen_vl(tmp_path / "other", seed=1)
    assert checkpoint_hash(again) == checkpoint_hash(tiny_model_dir)
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()
    assert checkpoint_hash(other) != checkpoint_hash(tiny_model_dir)
    weights = "model.safetensors"
    assert checkpoint_hash(again / weights) == checkpoint_hash(tiny_model_dir / weights)


def test_extra_corpus_and_overwrite(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    word = "Zebracrossingwatchers"
    extra = build_tiny_qwen_vl(tmp_path / "extra", corpus=[f"{word} wait at the kerb."] * 8)
    base_tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    extra_tokenizer = AutoTokenizer.from_pretrained(extra)
    assert len(extra_tokenizer) > len(base_tokenizer)
    assert len(extra_tokenizer.tokenize(word)) < len(base_tokenizer.tokenize(word))
    with pytest.raises(OmniptError, match="already exists"):
        build_tiny_qwen_vl(extra)
    assert build_tiny_qwen_vl(extra, overwrite=True) == extra
    assert checkpoint_hash(extra) == checkpoint_hash(tiny_model_dir)


def test_checkpoint_hash_needs_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError):
        checkpoint_hash(tmp_path)


def test_checkpoint_layout(tiny_model_dir: Path) -> None:
    names = {path.name for path in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "processor_config.json",
        "preprocessor_config.json",
    } <= names
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert config["image_token_id"] == TOKEN_IDS["<|image_pad|>"]
    assert config["video_token_id"] == TOKEN_IDS["<|video_pad|>"]
    assert config["vision_start_token_id"] == TOKEN_IDS["<|vision_start|>"]
    assert config["vision_end_token_id"] == TOKEN_IDS["<|vision_end|>"]
    assert config["text_config"]["vocab_size"] == 2048
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        assert json.loads((tiny_model_dir / name).read_text())["processor_class"] == "Qwen2_5_VLProcessor"


def test_reload_offline(tiny_model_dir: Path, offline: None) -> None:
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.config.text_config.bos_token_id == TOKEN_IDS["<|endoftext|>"]
    assert model.config.text_config.eos_token_id == TOKEN_IDS["<|im_end|>"]
    assert model.config.text_config.pad_token_id == TOKEN_IDS["<|endoftext|>"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert len(tokenizer) <= model.config.text_config.vocab_size
    image_processor = AutoImageProcessor.from_pretrained(tiny_model_dir)
    assert image_processor.size["shortest_edge"] == 4 * 28 * 28
    assert image_processor.size["longest_edge"] == 64 * 28 * 28
    processor = load_processor(tiny_model_dir)
    assert isinstance(processor, _qwen_processor_class())
    assert processor.image_token_id == TOKEN_IDS["<|image_pad|>"]


def test_parameter_count(tiny_model: tuple[Any, Any]) -> None:
    model, _ = tiny_model
    count = sum(parameter.numel() for parameter in model.parameters())
    assert 500_000 < count < 3_000_000
    assert count == TINY_PARAMETERS


def test_chat_template_user_turn_with_image(tiny_model: tuple[Any, Any]) -> None:
    _, processor = tiny_model
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": _image(84, 56, seed=0)},
                {"type": "text", "text": "Who is here?"},
            ],
        }
    ]
    expected = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Who is here?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == expected
    assert (
        processor.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        == expected
    )
    without_prompt = processor.apply_chat_template(messages, tokenize=False)
    assert without_prompt == expected.removesuffix("<|im_start|>assistant\n")
    # An 84x56 image is 6x4 patches of 14 pixels, merged 2x2: 6 visual tokens.
    inputs = processor(text=[expected], images=[messages[0]["content"][0]["image"]], return_tensors="pt")
    assert inputs["input_ids"][0].tolist().count(TOKEN_IDS["<|image_pad|>"]) == 6
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 6]]


def test_tokenizer_round_trip(tiny_model: tuple[Any, Any]) -> None:
    _, processor = tiny_model
    tokenizer = processor.tokenizer
    ids = tokenizer.encode(BOX_TEXT, add_special_tokens=False)
    assert tokenizer.decode(ids) == BOX_TEXT
    assert tokenizer.decode(ids, skip_special_tokens=True) == BOX_TEXT
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))
    special = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>"
    assert tokenizer.decode(tokenizer.encode(special, add_special_tokens=False)) == special


def test_batched_generation_equals_one_by_one(tiny_model: tuple[Any, Any]) -> None:
    model, processor = tiny_model
    prompts = _prompts()
    batched = generate_token_ids(model, processor, prompts, max_new_tokens=8, batch_size=3)
    single = generate_token_ids(model, processor, prompts, max_new_tokens=8, batch_size=1)
    assert batched == single
    assert all(0 < len(ids) <= 8 for ids in batched)
    texts = generate_batch(model, processor, prompts, max_new_tokens=8, batch_size=2, max_images_per_batch=2)
    assert texts == generate_one_by_one(model, processor, prompts, max_new_tokens=8)
    assert texts == processor.tokenizer.batch_decode(batched, skip_special_tokens=True)


def test_batches_respect_prompt_and_image_limits() -> None:
    assert list(_batches([1, 2, 0, 1], 8, None)) == [[0, 1, 2, 3]]
    assert list(_batches([1, 2, 0, 1], 2, None)) == [[0, 1], [2, 3]]
    assert list(_batches([1, 2, 0, 1], 8, 2)) == [[0], [1, 2], [3]]
    assert list(_batches([3, 1, 1], 8, 2)) == [[0], [1, 2]]
    assert list(_batches([], 4, None)) == []


def test_load_model_rejects_unknown_dtype(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown dtype"):
        load_model(tiny_model_dir, device="cpu", dtype="int3")


def test_package_imports_without_torch() -> None:
    code = (
        "import sys, omnipt_data.model, omnipt_data.model.loading, omnipt_data.model.tiny\n"
        "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _qwen_processor_class() -> type:
    from transformers import Qwen2_5_VLProcessor

    return Qwen2_5_VLProcessor
