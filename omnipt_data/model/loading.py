"""Load a Qwen-VL checkpoint for inference, fingerprint it, and generate for batches of chat prompts.

torch and transformers are imported inside the functions, so importing this module costs nothing.

Prompts are chat conversations as the processors take them: a list of ``{"role": ..., "content": ...}``
messages whose ``content`` is a string or a list of parts, ``{"type": "text", "text": "..."}`` and
``{"type": "image", "image": <PIL image or image file path>}``. Videos are not supported here.

Sizing a batch to GPU memory. Two arguments bound a batch: ``batch_size`` (prompts) and
``max_images_per_batch`` (images, summed over the batch's prompts). The images dominate: each one
becomes up to ``max_pixels / 196`` patches in the vision encoder and ``max_pixels / 784`` tokens in the
language model, and every token of every prompt keeps a KV-cache entry of ``2 * layers * kv_heads *
head_dim * bytes`` (Qwen2.5-VL-7B in bf16: 2 * 28 * 4 * 128 * 2 = 56 KiB per token, so 8 prompts of 4
images at ``max_pixels = 1280 * 28 * 28`` (1280 tokens each) hold about 2.3 GB of cache, plus the text
and the vision encoder's activations). To size it: run one batch of the largest images you will see
with ``max_images_per_batch=k`` on the target GPU, read ``torch.cuda.max_memory_allocated()`` minus the
memory of the loaded model, divide by ``k`` for the per-image cost, and set ``max_images_per_batch`` to
the free memory (less 10-20 % for fragmentation) over that cost. Lowering the processor's
``max_pixels`` shrinks the per-image cost proportionally.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

Message = Mapping[str, Any]
Conversation = Sequence[Message]

#: Files whose bytes define a checkpoint's weights, for :func:`checkpoint_hash`.
WEIGHT_PATTERNS: tuple[str, ...] = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_HASH_CHUNK = 1 << 20
_QWEN25_PROCESSOR = "Qwen2_5_VLProcessor"
_DTYPES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
}


def __getattr__(name: str) -> Any:
    # Resolves the lazily created processor class by name (pickling, introspection).
    if name == "ImageOnlyQwen2_5_VLProcessor":
        return image_only_processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def image_only_processor_class() -> type:
    """A ``Qwen2_5_VLProcessor`` made of an image processor and a tokenizer only, without a video processor.

    transformers 5 cannot build the stock Qwen2.5-VL processor when torchvision is missing, because its
    video processor needs torchvision even when no video is ever passed. This subclass drops that part;
    text and image handling (visual token expansion, ``mm_token_type_ids``) are the stock ones.
    """
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        """Qwen2.5-VL processor for text and images (no video processor)."""

        def __init__(
            self,
            image_processor: Any = None,
            tokenizer: Any = None,
            chat_template: str | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                image_processor=image_processor,
                tokenizer=tokenizer,
                video_processor=None,
                chat_template=chat_template,
                **kwargs,
            )

    # Found by name through this module's __getattr__, so instances pickle like module-level ones.
    ImageOnlyQwen2_5_VLProcessor.__module__ = __name__
    ImageOnlyQwen2_5_VLProcessor.__qualname__ = ImageOnlyQwen2_5_VLProcessor.__name__
    return ImageOnlyQwen2_5_VLProcessor


def load_processor(path: str | Path) -> Any:
    """Load the processor saved at ``path``; without torchvision, an image-only Qwen2.5-VL processor.

    With torchvision installed this is ``AutoProcessor.from_pretrained(path)``. Without it, a checkpoint
    whose processor is ``Qwen2_5_VLProcessor`` loads as :func:`image_only_processor_class` from the same
    files (slow, PIL-based image processor); other checkpoints go through ``AutoProcessor`` as usual.
    """
    from transformers import AutoProcessor
    from transformers.utils import is_torchvision_available

    if not is_torchvision_available() and _processor_class_name(Path(path)) == _QWEN25_PROCESSOR:
        return image_only_processor_class().from_pretrained(str(path))
    return AutoProcessor.from_pretrained(str(path))


def load_model(path: str | Path, *, device: str | None = None, dtype: str | None = None) -> tuple[Any, Any]:
    """Load ``(model, processor)`` from a local checkpoint, ready for batched generation.

    ``device=None`` picks ``cuda`` when available, else ``cpu``. ``dtype=None`` means bfloat16 on CUDA and
    float32 on CPU (``"bfloat16"``, ``"float16"``, ``"float32"`` and their short names are accepted).
    Attention is flash-attention-2 on CUDA when the ``flash_attn`` package is usable with a 16-bit dtype,
    else SDPA. With ``accelerate`` installed the weights load straight onto the device. The tokenizer pads
    on the left, as batched generation needs.
    """
    import torch
    from transformers import AutoModelForImageTextToText
    from transformers.utils import is_accelerate_available, is_flash_attn_2_available

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = torch.device(device).type == "cuda"
    if dtype is None:
        torch_dtype = torch.bfloat16 if on_cuda else torch.float32
    else:
        try:
            torch_dtype = getattr(torch, _DTYPES[dtype.lower()])
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {sorted(_DTYPES)}") from None
    half = torch_dtype in (torch.bfloat16, torch.float16)
    attention = "flash_attention_2" if on_cuda and half and is_flash_attn_2_available() else "sdpa"
    options: dict[str, Any] = {"dtype": torch_dtype, "attn_implementation": attention}
    if is_accelerate_available():
        options["device_map"] = {"": device}  # weights go straight to the device
    model = AutoModelForImageTextToText.from_pretrained(str(path), **options)
    model.to(device)
    model.eval()
    processor = load_processor(path)
    processor.tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return model, processor


def checkpoint_hash(path: str | Path) -> str:
    """SHA-256 (hex) over a checkpoint's weight files, streamed; ``path`` is a directory or one file.

    Files matching :data:`WEIGHT_PATTERNS` are hashed in order of their relative path, each preceded by
    that path, so renaming or re-sharding changes the hash. Configuration and tokenizer files do not count.
    """
    path = Path(path)
    if path.is_file():
        files = [path]
        root = path.parent
    else:
        files = sorted({f for pattern in WEIGHT_PATTERNS for f in path.rglob(pattern) if f.is_file()})
        root = path
    if not files:
        raise FileNotFoundError(f"no weight files ({', '.join(WEIGHT_PATTERNS)}) under {path}")
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.relative_to(root).as_posix()):
        digest.update(file.relative_to(root).as_posix().encode("utf-8") + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def generate_batch(
    model: Any,
    processor: Any,
    prompts: Sequence[Conversation],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    max_images_per_batch: int | None = None,
    **generate_kwargs: Any,
) -> list[str]:
    """Generate a reply for each prompt, batched; return only the new text, in prompt order.

    Batches hold at most ``batch_size`` prompts and ``max_images_per_batch`` images (a prompt with more
    images than that runs alone); see the module docstring for sizing them to GPU memory. Decoding is
    greedy unless ``generate_kwargs`` say otherwise, with left padding and the KV cache on, so the result
    equals :func:`generate_one_by_one`'s.
    """
    ids = generate_token_ids(
        model,
        processor,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        max_images_per_batch=max_images_per_batch,
        **generate_kwargs,
    )
    return _decode(processor, ids)


def generate_one_by_one(
    model: Any,
    processor: Any,
    prompts: Sequence[Conversation],
    *,
    max_new_tokens: int = 64,
    **generate_kwargs: Any,
) -> list[str]:
    """The unbatched counterpart of :func:`generate_batch`: one prompt per call, no padding."""
    ids = generate_token_ids(
        model, processor, prompts, max_new_tokens=max_new_tokens, batch_size=1, **generate_kwargs
    )
    return _decode(processor, ids)


def generate_token_ids(
    model: Any,
    processor: Any,
    prompts: Sequence[Conversation],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    max_images_per_batch: int | None = None,
    **generate_kwargs: Any,
) -> list[list[int]]:
    """Like :func:`generate_batch`, but return each reply's new token ids, cut before its first stop token."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_images_per_batch is not None and max_images_per_batch < 1:
        raise ValueError(f"max_images_per_batch must be at least 1, got {max_images_per_batch}")
    images = [prompt_images(prompt) for prompt in prompts]
    results: list[list[int]] = []
    for chunk in _batches([len(found) for found in images], batch_size, max_images_per_batch):
        results.extend(
            _generate_chunk(
                model,
                processor,
                [prompts[i] for i in chunk],
                [image for i in chunk for image in images[i]],
                max_new_tokens=max_new_tokens,
                **generate_kwargs,
            )
        )
    return results


def answer_loss(
    model: Any,
    processor: Any,
    prompts: Sequence[Conversation],
    answers: Sequence[str],
    *,
    images: Sequence[Sequence[Any]] | None = None,
    batch_size: int = 8,
) -> float:
    """Mean cross-entropy (nats) per token of each answer and its end of turn, given its prompt: the tokens
    an SFT step trains on.

    ``images`` (one list per prompt, as many images as the prompt has) replaces the prompts' own images:
    the loss with another frame's images, against the loss with its own, shows whether the model reads
    its images at all.
    """
    import torch

    shown = [prompt_images(prompt) for prompt in prompts] if images is None else [list(i) for i in images]
    total, tokens = 0.0, 0
    for chunk in _batches([len(found) for found in shown], batch_size, None):
        prefixes = [
            processor.apply_chat_template(list(prompts[i]), tokenize=False, add_generation_prompt=True)
            for i in chunk
        ]
        texts = [prefix + answers[i] + "<|im_end|>\n" for prefix, i in zip(prefixes, chunk, strict=True)]
        pictures = [image for i in chunk for image in shown[i]] or None
        batch = {"images": pictures, "padding": True, "padding_side": "right", "return_tensors": "pt"}
        inputs = processor(text=texts, **batch)
        starts = processor(text=prefixes, **batch)["attention_mask"]
        labels = inputs["input_ids"].clone()
        labels[inputs["attention_mask"] == 0] = -100
        for row, start in enumerate(starts.sum(dim=1).tolist()):
            labels[row, :start] = -100
        with torch.inference_mode():
            logits = model(**inputs.to(model.device)).logits[:, :-1].float()
        targets = labels[:, 1:].to(logits.device)
        mask = targets != -100
        total += float(torch.nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum"))
        tokens += int(mask.sum())
    return total / max(tokens, 1)


def _generate_chunk(
    model: Any,
    processor: Any,
    prompts: list[Conversation],
    images: list[Any],
    *,
    max_new_tokens: int,
    **generate_kwargs: Any,
) -> list[list[int]]:
    import torch

    texts = [
        processor.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
        for prompt in prompts
    ]
    inputs = processor(
        text=texts, images=images or None, padding=True, padding_side="left", return_tensors="pt"
    ).to(model.device)
    options: dict[str, Any] = {"do_sample": False, "num_beams": 1, "use_cache": True}
    options.update(generate_kwargs)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, **options)
    new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
    stops = _stop_ids(model, processor)
    return [_cut_at_stop(row, stops) for row in new_tokens]


def _batches(image_counts: list[int], batch_size: int, max_images: int | None) -> Iterator[list[int]]:
    """Group prompt indices in order: at most ``batch_size`` prompts and ``max_images`` images a group."""
    chunk: list[int] = []
    images = 0
    for index, count in enumerate(image_counts):
        full = len(chunk) >= batch_size or (max_images is not None and images + count > max_images)
        if chunk and full:
            yield chunk
            chunk, images = [], 0
        chunk.append(index)
        images += count
    if chunk:
        yield chunk


def prompt_images(prompt: Conversation) -> list[Any]:
    """The images of a conversation, in order, as RGB PIL images (paths are opened)."""
    from PIL import Image

    found: list[Any] = []
    for message in prompt:
        content = message.get("content")
        if isinstance(content, str) or content is None:
            continue
        for part in content:
            kind = part.get("type")
            if kind == "video" or "video" in part:
                raise ValueError("video parts are not supported by generate_batch")
            if kind == "image" or "image" in part or "image_url" in part:
                image = part.get("image")
                if isinstance(image, str | Path):
                    with Image.open(image) as opened:
                        image = opened.convert("RGB")
                elif not isinstance(image, Image.Image):
                    raise ValueError("image parts need an 'image' key holding a PIL image or a file path")
                found.append(image)
    return found


def _stop_ids(model: Any, processor: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    stops = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    for token_id in (model.generation_config.pad_token_id, processor.tokenizer.pad_token_id):
        if token_id is not None:
            stops.add(token_id)
    return stops


def _cut_at_stop(row: list[int], stops: set[int]) -> list[int]:
    for position, token_id in enumerate(row):
        if token_id in stops:
            return row[:position]
    return row


def _decode(processor: Any, ids: list[list[int]]) -> list[str]:
    return processor.tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def _processor_class_name(path: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        file = path / name
        if file.is_file():
            value = json.loads(file.read_text(encoding="utf-8")).get("processor_class")
            if value:
                return str(value)
    return None
