"""A tiny, randomly initialised Qwen2.5-VL checkpoint built offline, for tests and the CPU demo.

``build_tiny_qwen_vl`` writes a directory that the standard Hugging Face loaders read with no network:
the model (safetensors; about 1.08 M parameters, or 5.4 M at ``size="small"``), a byte-level BPE
tokenizer trained here on a small pedestrian-tracking corpus with the Qwen-VL special tokens, a
Qwen2.5-VL-style chat template and the image processor settings. The weights are random: the model's
outputs are meaningless but deterministic, which is what plumbing tests and benchmarks of the batching
code need, and the starting point the CPU demo trains.

Files written (the layout of the published Qwen2.5-VL checkpoints):

- ``config.json``, ``generation_config.json``, ``model.safetensors``
- ``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``
- ``processor_config.json`` (the processor class and the nested image processor settings) and
  ``preprocessor_config.json`` (the same image settings in the older standalone file, which is also where
  a torchvision-backed video processor takes its settings from)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omnipt_data.atomic import atomic_directory

#: The Qwen-VL special tokens, in the order of the published vocabulary; here they take ids 0..13.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
TOKEN_IDS: dict[str, int] = {token: index for index, token in enumerate(SPECIAL_TOKENS)}

VOCAB_SIZE = 2048
#: Smallest and largest image area after resizing, in pixels. One visual token covers a 28x28 area
#: (a 14-pixel patch, 2x2 patches merged), so an image gives between 4 and 64 visual tokens: a 56x84
#: image gives 2x3 = 6, a 1920x1080 frame is scaled down to at most 64. The published checkpoints use
#: 4 and 16384 tokens (``min_pixels=3136``, ``max_pixels=12845056``).
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 64 * 28 * 28
MAX_LENGTH = 32768
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Same split as the Qwen2 tokenizer: contractions, letter runs (with one leading non-letter), single
# digits, punctuation runs, newlines, spaces. Single digits keep box coordinates tokenised uniformly.
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)

#: Chat template in the Qwen2.5-VL style. A conversation that does not start with a system turn gets
#: the default system prompt. ``content`` is a string or a list of parts: ``{"type": "text", "text": ...}``,
#: ``{"type": "image", ...}`` (also any part with an ``image`` or ``image_url`` key) and
#: ``{"type": "video", ...}``. Each image becomes ``<|vision_start|><|image_pad|><|vision_end|>``; the
#: processor then repeats ``<|image_pad|>`` once per visual token.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}"
    "{{ message['content'] }}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in part -%}"
    "{{ part['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- endif -%}"
)

_PROCESSOR_CLASS = "Qwen2_5_VLProcessor"
_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")

_INSTRUCTIONS = (
    "You are a helpful assistant.",
    "Track every pedestrian in the video and give each one a stable id.",
    "Detect all people in Frame {a} and output their boxes.",
    "Find the person described as follows and output the box: {desc}",
    "Follow the pedestrian <id>{a}</id> across View {b} and View {c}.",
    "Describe the person inside <bbox>{a},{b},{c},{d}</bbox> in one sentence.",
    "Give a Caption for each tracked person, then a Summary of the scene.",
    "List every Interaction between pedestrians in this clip.",
    "Answer in JSON with the keys frame, id, bbox and caption.",
    "Is the person with <id>{a}</id> still visible in Frame {b}? Answer yes or no.",
    "Which pedestrians cross the street between Frame {a} and Frame {b}?",
    "Count the people who enter the scene from the left in View {a}.",
)
_DESCRIPTIONS = (
    "a man in a red jacket carrying a black backpack",
    "a woman with a white shirt walking a dog",
    "a child in a yellow raincoat holding an umbrella",
    "an elderly man with a cane near the crosswalk",
    "a cyclist pushing a bicycle on the sidewalk",
    "two friends talking next to the bus stop",
    "a person in a blue coat looking at a phone",
    "a runner wearing grey shorts and headphones",
)
_INTERACTIONS = (
    "walks together with",
    "talks to",
    "hands a bag to",
    "waves at",
    "follows",
    "passes by",
    "shakes hands with",
    "queues behind",
)


def builtin_corpus() -> Iterator[str]:
    """Yield the deterministic training text for the tokenizer: instructions, answers, tags, JSON, digits."""
    yield "0 1 2 3 4 5 6 7 8 9 10 100 1000 0123456789"
    yield '<bbox> </bbox> <id> </id> { } [ ] : , " Frame View Caption Summary Interaction'
    yield "system user assistant"
    for i in range(96):
        a, b, c, d = (i * 7) % 50, (i * 13 + 5) % 90, (i * 31 + 11) % 640, (i * 17 + 23) % 480
        desc = _DESCRIPTIONS[i % len(_DESCRIPTIONS)]
        other = _DESCRIPTIONS[(i + 3) % len(_DESCRIPTIONS)]
        act = _INTERACTIONS[i % len(_INTERACTIONS)]
        yield _INSTRUCTIONS[i % len(_INSTRUCTIONS)].format(a=a, b=b, c=c, d=d, desc=desc)
        yield f"Frame {a}: <id>{b % 20}</id><bbox>{c},{d},{c + 40},{d + 90}</bbox>"
        yield f"View {b % 4}, Frame {a}: <id>{a % 20}</id><bbox>{d},{c % 360},{d + 25},{c % 360 + 70}</bbox>"
        yield (
            f'{{"frame": {a}, "view": {b % 4}, "id": {c % 30}, "bbox": [{c}, {d}, {c + 32}, {d + 64}], '
            f'"caption": "{desc}"}}'
        )
        yield f"Caption: {desc}."
        yield f"Summary: {desc} {act} {other}."
        yield f"Interaction: <id>{a % 20}</id> {act} <id>{b % 20}</id> from Frame {a} to Frame {a + b}."
        yield f"The person <id>{c % 30}</id> is at <bbox>{c},{d},{c + 24},{d + 60}</bbox> in View {a % 4}."


#: Model sizes: the width and depth of the language model and of the vision tower. ``tiny`` (about
#: 1.08 M parameters) is for plumbing tests; ``small`` (about 5.4 M) is large enough to learn to draw
#: boxes on the synthetic world in minutes on a CPU (the training demo); ``shallow`` is ``small`` with two
#: language layers and two vision blocks (about 3.5 M): a step costs about half, and in the learnability
#: benchmark's CPU budget the steps it gains teach it more than the blocks it lacks (per step, two vision
#: blocks lowered the loss as fast as four, at four fifths of the step's time).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"text_width": 128, "text_mlp": 256, "text_layers": 2, "vision_width": 64, "vision_depth": 2},
    "small": {"text_width": 256, "text_mlp": 768, "text_layers": 4, "vision_width": 128, "vision_depth": 4},
    "shallow": {"text_width": 256, "text_mlp": 768, "text_layers": 2, "vision_width": 128, "vision_depth": 2},
}


def build_tiny_qwen_vl(
    out_dir: Path,
    *,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    overwrite: bool = False,
    size: str = "tiny",
) -> Path:
    """Write a complete tiny Qwen2.5-VL checkpoint to ``out_dir`` and return its path.

    The same ``seed`` (and corpus) gives byte-identical weight and tokenizer files. ``corpus`` lines are
    added to the built-in tokenizer training text. ``size`` is one of :data:`SIZES`. The directory appears
    atomically; an existing one is an error unless ``overwrite``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown tiny model size {size!r} (known: {', '.join(SIZES)})")
    out_dir = Path(out_dir)
    lines = list(builtin_corpus())
    if corpus is not None:
        lines.extend(str(line) for line in corpus)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        tokenizer = _build_tokenizer(lines)
        model = _build_model(seed, used_vocab=len(tokenizer), size=size)
        model.save_pretrained(tmp)
        _save_processor(tokenizer, tmp)
    return out_dir


def qwen2_5_vl_config(text: dict[str, Any], vision: dict[str, Any], *, tied: bool = False) -> Any:
    """A ``Qwen2_5_VLConfig`` of the given text and vision shapes with what every model built here shares:
    the local tokenizer's special token ids, Qwen2.5-VL's rotary and patch settings (``text`` holds
    ``mrope_section``)."""
    from transformers import Qwen2_5_VLConfig

    text = dict(text)
    mrope = text.pop("mrope_section")
    text |= {
        "max_position_embeddings": MAX_LENGTH,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": mrope},
        "bos_token_id": TOKEN_IDS["<|endoftext|>"],
        "eos_token_id": TOKEN_IDS["<|im_end|>"],
        "pad_token_id": TOKEN_IDS["<|endoftext|>"],
        "tie_word_embeddings": tied,
    }
    vision = dict(vision) | {
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
    }
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=TOKEN_IDS["<|image_pad|>"],
        video_token_id=TOKEN_IDS["<|video_pad|>"],
        vision_start_token_id=TOKEN_IDS["<|vision_start|>"],
        vision_end_token_id=TOKEN_IDS["<|vision_end|>"],
        tie_word_embeddings=tied,
    )


def tiny_config(size: str = "tiny") -> Any:
    """The ``Qwen2_5_VLConfig`` of one of :data:`SIZES`. ``tiny``: text 128 wide, 2 layers, 4 heads (2 KV);
    vision 64 wide, depth 2. Every size keeps 4 heads (2 KV), the vision tower's last block attending to the
    whole image and the multimodal rotary sections in Qwen2.5-VL's proportions (1:1.5:1.5 of half a head)."""
    dims = SIZES[size]
    heads = 4
    half_head = dims["text_width"] // heads // 2
    temporal = half_head // 4
    spatial = (half_head - temporal) // 2
    text = {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": dims["text_width"],
        "intermediate_size": dims["text_mlp"],
        "num_hidden_layers": dims["text_layers"],
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "mrope_section": [temporal, spatial, half_head - temporal - spatial],
    }
    vision = {
        "depth": dims["vision_depth"],
        "hidden_size": dims["vision_width"],
        "intermediate_size": 2 * dims["vision_width"],
        "num_heads": heads,
        "out_hidden_size": dims["text_width"],
        "fullatt_block_indexes": [dims["vision_depth"] - 1],
    }
    return qwen2_5_vl_config(text, vision)


def _build_model(seed: int, *, used_vocab: int = VOCAB_SIZE, size: str = "tiny") -> Any:
    """Instantiate the tiny model in float32 with weights drawn from ``seed`` (global RNG untouched).

    Output rows for ids at or past ``used_vocab`` (ids the tokenizer does not have) are zeroed, so their
    logit is 0 and the random model emits real tokens, whose highest logit is almost surely positive. The
    generation config suppresses the special tokens other than the two stop tokens, so the random model
    never emits ``<|image_pad|>`` and the like.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    config = tiny_config(size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    with torch.no_grad():
        model.lm_head.weight[used_vocab:].zero_()
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=TOKEN_IDS["<|endoftext|>"],
        eos_token_id=[TOKEN_IDS[token] for token in _STOP_TOKENS],
        pad_token_id=TOKEN_IDS["<|endoftext|>"],
        do_sample=False,
        suppress_tokens=[index for token, index in TOKEN_IDS.items() if token not in _STOP_TOKENS],
    )
    return model


def _build_tokenizer(lines: list[str]) -> Any:
    """Train a byte-level BPE on ``lines`` with the Qwen2 pre-tokenizer; wrap it as a ``Qwen2Tokenizer``."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=[tuple(pair) for pair in model["merges"]],
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        model_max_length=MAX_LENGTH,
    )
    if len(tokenizer) > VOCAB_SIZE:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the model's {VOCAB_SIZE}")
    for token, index in TOKEN_IDS.items():
        if tokenizer.convert_tokens_to_ids(token) != index:
            raise ValueError(f"special token {token} did not get id {index}")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _save_processor(tokenizer: Any, out_dir: Path) -> None:
    """Save tokenizer, chat template and image processor; name the standard processor class in them."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from omnipt_data.model.loading import image_only_processor_class

    image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    processor = image_only_processor_class()(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    processor.save_pretrained(out_dir)
    image_processor.save_pretrained(out_dir)
    for name in ("processor_config.json", "tokenizer_config.json", "preprocessor_config.json"):
        _set_json_key(out_dir / name, "processor_class", _PROCESSOR_CLASS)


def _set_json_key(path: Path, key: str, value: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data[key] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
