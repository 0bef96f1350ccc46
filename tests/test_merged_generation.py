"""GRPO samples with the LoRA adapter merged into weight copies: same model outputs, weights untouched."""

from __future__ import annotations

import contextlib

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import LoraLayer

import train.grpo
from train.config import LANGUAGE_MODEL_LORA_TARGETS
from train.grpo import make_parser
from train.merged_generation import lora_merged_for_generation
from train.model_io import load_model, load_processor


@pytest.fixture
def adapted(tiny_model_dir):
    """The tiny model with a LoRA adapter whose B matrices are random, so the adapter changes the outputs."""
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=LANGUAGE_MODEL_LORA_TARGETS, init_lora_weights=False)
    model = get_peft_model(load_model(str(tiny_model_dir), dtype="float32"), config).eval()
    tokenizer = load_processor(str(tiny_model_dir)).tokenizer
    input_ids = torch.tensor([tokenizer.encode("Which modality is this? A. CT B. MRI C. OCT D. X-ray")])
    return model, input_ids


def base_weights(model) -> dict[str, torch.Tensor]:
    return {name: p for name, p in model.named_parameters() if "lora_" not in name}


def test_merged_model_computes_what_the_adapter_computes(adapted):
    model, input_ids = adapted
    with torch.no_grad():
        with model.disable_adapter():
            without_adapter = model(input_ids=input_ids).logits
        unmerged = model(input_ids=input_ids).logits
        with lora_merged_for_generation(model) as merged:
            assert merged
            merged_logits = model(input_ids=input_ids).logits
            merged_tokens = model.generate(input_ids=input_ids, max_new_tokens=12, do_sample=False)
        unmerged_tokens = model.generate(input_ids=input_ids, max_new_tokens=12, do_sample=False)
    assert not torch.allclose(unmerged, without_adapter, atol=1e-3), "the adapter must matter for this test"
    torch.testing.assert_close(merged_logits, unmerged, atol=1e-5, rtol=1e-5)
    assert merged_tokens.tolist() == unmerged_tokens.tolist()


def test_the_trained_weights_are_restored_bit_for_bit_even_after_an_error(adapted):
    model, input_ids = adapted
    before = {name: (p.data_ptr(), p.detach().clone()) for name, p in base_weights(model).items()}
    with contextlib.suppress(RuntimeError), lora_merged_for_generation(model):
        changed = [name for name, p in base_weights(model).items() if not torch.equal(p, before[name][1])]
        raise RuntimeError("generation failed")
    adapted_layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    assert len(changed) == len(adapted_layers) == 7 * model.config.text_config.num_hidden_layers
    for name, p in base_weights(model).items():
        assert p.data_ptr() == before[name][0] and torch.equal(p, before[name][1]), name
    assert not any(getattr(m, "merged", False) for m in model.modules())
    with torch.no_grad():
        model(input_ids=input_ids)  # still a working, unmerged PEFT model


def test_a_model_without_adapter_is_left_alone(tiny_model_dir):
    model = load_model(str(tiny_model_dir), dtype="float32")
    with lora_merged_for_generation(model) as merged:
        assert not merged


@pytest.mark.parametrize("merge", [True, False])
def test_grpo_samples_with_the_merged_adapter_unless_told_not_to(
    tmp_path, tiny_model_dir, synthetic_jsonl, monkeypatch, merge
):
    seen: list[bool] = []
    original = train.grpo.lora_merged_for_generation

    @contextlib.contextmanager
    def spy(model):
        with original(model) as merged:
            seen.append(merged and all(m.merged for m in model.modules() if hasattr(m, "lora_A")))
            yield merged

    monkeypatch.setattr(train.grpo, "lora_merged_for_generation", spy)
    script_args, training_args, model_args = make_parser().parse_args_and_config(
        args=[
            "--bf16", "false", "--use_cpu", "true", "--model_name_or_path", str(tiny_model_dir),
            "--dataset_path", str(synthetic_jsonl), "--output_dir", str(tmp_path / "out"), "--max_steps", "2",
            "--per_device_train_batch_size", "4", "--num_generations", "2", "--max_completion_length", "6",
            "--gradient_checkpointing", "false", "--report_to", "none", "--save_strategy", "no",
            "--max_pixels", "12544", "--min_pixels", "3136", "--merge_lora_for_generation", str(merge).lower(),
        ]
    )  # fmt: skip
    train.grpo.train(script_args, training_args, model_args)
    assert seen == ([True, True] if merge else [])
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
