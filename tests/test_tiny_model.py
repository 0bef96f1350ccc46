"""The offline tiny random model: a real checkpoint layout, deterministic, never mistaken for a real model."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from train.model_io import ModelLoadError, load_model, load_processor
from train.protocol import build_messages, build_prompt
from train.tiny_model import SPECIAL_TOKENS, build_tiny_model, is_tiny_random


def test_saved_like_any_checkpoint_and_marked_as_random(tiny_model_dir):
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    } <= names
    assert json.loads((tiny_model_dir / "config.json").read_text())["medr1_tiny_random"] is True
    assert "tiny-random" in tiny_model_dir.name and "meaningless" in (tiny_model_dir / "README.md").read_text()
    assert is_tiny_random(tiny_model_dir)


def test_token_ids_line_up_between_tokenizer_and_model(tiny_model_dir):
    processor = load_processor(str(tiny_model_dir))
    model = load_model(str(tiny_model_dir))
    tokenizer = processor.tokenizer
    assert [tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert tokenizer.padding_side == "left"


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl"])
def test_generates_from_an_image_and_prompt(tmp_path, arch):
    path = build_tiny_model(tmp_path / arch, arch=arch)
    processor, model = load_processor(str(path)), load_model(str(path))
    text = processor.apply_chat_template(
        build_messages(build_prompt("Which?", ["CT", "MRI"])), add_generation_prompt=True
    )
    inputs = processor(text=[text], images=[Image.new("RGB", (100, 80), "white")], return_tensors="pt")
    assert (inputs["input_ids"] == model.config.image_token_id).sum() > 0
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    a = load_file(build_tiny_model(tmp_path / "a", seed=7) / "model.safetensors")
    b = load_file(build_tiny_model(tmp_path / "b", seed=7) / "model.safetensors")
    c = load_file(build_tiny_model(tmp_path / "c", seed=8) / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_missing_model_gives_an_actionable_error(tmp_path):
    with pytest.raises(ModelLoadError, match="--model PATH"):
        load_processor(str(tmp_path / "no-such-model"))
