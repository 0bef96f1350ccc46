"""A tiny, random Qwen2-VL (or Qwen2.5-VL) built offline, saved like any real checkpoint.

No model hub is reachable in CI or in many hospitals, yet the whole pipeline (processor, chat
template, image tokens, generation, LoRA, GRPO, saving and loading) must be exercised for real. This
module builds a model with the real architecture and processor classes, a byte-level BPE tokenizer
trained locally with ``tokenizers`` and Qwen2-VL's special tokens, and random weights from a seed.

It can never be mistaken for a real model: its directory name, ``config.json``
(``medr1_tiny_random: true``), ``name_or_path`` and model card all say so, and
:func:`is_tiny_random` lets the app show a banner that its answers are meaningless.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from train.protocol import FREE_THINK_TEMPLATE, LETTERS, NO_THINK_TEMPLATE, THINK_TEMPLATE

TINY_MARKER = "medr1_tiny_random"
ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl")

# Qwen2-VL's special tokens, in its id order, so ids line up with the real vocabulary's layout.
SPECIAL_TOKENS = [
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
]
# The system line Qwen2-VL-Instruct's chat template adds when a chat has none.
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
# Qwen2-VL-Instruct's chat template (images before text, as the processor expects).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n{{% endif %}}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Tokens the tiny model should see as one piece so that a few steps of training reach the format.
FORMAT_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]
_CORPUS_WORDS = (
    "CT MRI ultrasound dermoscopy fundus photography OCT microscopy X-ray modality anatomy disease "
    "diagnosis lesion grading biological attribute image scan shows normal abnormal left right chest "
    "brain liver kidney lung heart bone retina skin cell tumour nodule mass fracture bleeding the a an "
    "of in is this what which imaging technique was used to obtain picture organ finding most likely "
    "step first look at then compare options answer therefore so it because"
)


def _train_tokenizer(vocab_size: int, extra_corpus: Sequence[str] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    # Special tokens first, so they get ids 0..13 in Qwen's order (added later they come out of order).
    raw.add_special_tokens(SPECIAL_TOKENS)
    raw.add_tokens(FORMAT_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [THINK_TEMPLATE, NO_THINK_TEMPLATE, FREE_THINK_TEMPLATE, _CORPUS_WORDS, " ".join(LETTERS)]
    corpus += [f"{letter}){word}" for letter in LETTERS for word in _CORPUS_WORDS.split()[:24]]
    corpus += list(extra_corpus)
    raw.train_from_iterator(corpus * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=32768,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(
    output_dir: str | Path,
    arch: str = "qwen2_vl",
    seed: int = 0,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    min_pixels: int = 56 * 56,
    max_pixels: int = 112 * 112,
    extra_corpus: Sequence[str] = (),
) -> Path:
    """Build, save and return the directory of a random tiny VLM with its processor.

    The same seed gives byte-identical weights. ``min_pixels``/``max_pixels`` are small so a picture
    costs 4 to 16 image tokens; they are saved in the processor config like a real checkpoint's.
    ``extra_corpus`` adds texts to the tokenizer's training corpus: a task whose words the tokenizer
    knows gets prompts of whole words, as with a real tokenizer, instead of single letters, so its
    sequences are shorter and every training step is cheaper.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}.")
    from transformers import Qwen2VLImageProcessor

    output_dir = Path(output_dir)
    tokenizer = _train_tokenizer(vocab_size, extra_corpus)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    heads = max(1, hidden_size // 16)
    head_dim = hidden_size // heads
    # mrope sections (temporal, height, width) must sum to head_dim / 2.
    quarter = head_dim // 2 // 4
    mrope = [head_dim // 2 - 2 * quarter, quarter, quarter]
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": num_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope},
        "tie_word_embeddings": True,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    token_ids = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    torch.manual_seed(seed)
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

        vision = {"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2, "hidden_size": hidden_size}
        config = Qwen2VLConfig(text_config=text_config, vision_config=vision, **token_ids)
        model = Qwen2VLForConditionalGeneration(config)
        processor_cls = Qwen2VLProcessor
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

        vision = {
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        }
        config = Qwen2_5_VLConfig(text_config=text_config, vision_config=vision, **token_ids)
        model = Qwen2_5_VLForConditionalGeneration(config)
        processor_cls = Qwen2_5_VLProcessor
    setattr(config, TINY_MARKER, True)
    model.config.name_or_path = f"medr1-tiny-random-{arch}"
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]

    from transformers import Qwen2VLVideoProcessor

    processor = processor_cls(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    n_params = sum(p.numel() for p in model.parameters())
    (output_dir / "README.md").write_text(
        f"# medr1 tiny RANDOM {arch} model\n\n"
        f"**Random weights, {n_params:,} parameters: its answers are meaningless.** Built offline by "
        f"`medr1-train tiny-model` (seed {seed}) to test the medr1 pipeline without a model hub. "
        "Never use it for anything clinical.\n"
    )
    return output_dir


def is_tiny_random(model_path: str | Path) -> bool:
    """True when ``model_path`` (a local checkpoint or adapter directory) holds a tiny random model."""
    path = Path(model_path)
    for candidate in (path / "config.json", path / "adapter_config.json"):
        if candidate.is_file():
            data = json.loads(candidate.read_text())
            if data.get(TINY_MARKER):
                return True
            base = data.get("base_model_name_or_path")
            if base and Path(base) != path and Path(base).is_dir():
                return is_tiny_random(base)
    return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="medr1-train tiny-model",
        description="Build a tiny random Qwen2-VL/Qwen2.5-VL with a locally trained tokenizer (offline).",
    )
    parser.add_argument("output_dir")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="qwen2_vl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=2)
    args = parser.parse_args(argv)
    path = build_tiny_model(
        args.output_dir, arch=args.arch, seed=args.seed, hidden_size=args.hidden_size, num_layers=args.num_layers
    )
    print(f"Tiny random {args.arch} saved to {path} (random weights: answers are meaningless).")


if __name__ == "__main__":
    main()
