"""GRPO's repeated pictures are encoded once: same features and logits, a fraction of the tower's work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from train.config import LANGUAGE_MODEL_LORA_TARGETS
from train.model_io import load_model, load_processor
from train.protocol import build_messages
from train.synthetic import draw
from train.tiny_model import build_tiny_model
from train.vision_dedup import encode_each_image_once, find_vision_tower


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def model_dir(request, tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp(request.param), arch=request.param, seed=0)


def grpo_like_batch(model_dir, copies: int = 3):
    """Three pictures (one of them twice in a row, as two questions about one image), each ``copies`` times."""
    rng = np.random.default_rng(0)
    pictures = [draw("CT", 1, 56, rng)[0], draw("MRI", 3, 56, rng)[0], draw("X-Ray", 0, 56, rng)[0]]
    order = [0, 1, 1, 2]
    images = [pictures[i] for i in order for _ in range(copies)]
    processor = load_processor(str(model_dir))
    text = processor.apply_chat_template(build_messages("Which modality?"), add_generation_prompt=True)
    return processor(text=[text] * len(images), images=images, return_tensors="pt", padding=True), len(images)


def count_encoded(tower) -> list[int]:
    """Patch rows the tower's own forward receives, per call."""
    seen: list[int] = []
    original = tower.forward

    def counting(hidden_states, *args, **kwargs):
        seen.append(hidden_states.shape[0])
        return original(hidden_states, *args, **kwargs)

    tower.forward = counting
    return seen


def test_repeated_pictures_give_the_same_logits_for_a_third_of_the_work(model_dir):
    batch, n_pictures = grpo_like_batch(model_dir)
    model = load_model(str(model_dir), dtype="float32").eval()
    with torch.no_grad():
        plain = model(**batch).logits
        plain_features = model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"]).pooler_output
    seen = count_encoded(find_vision_tower(model))
    assert encode_each_image_once(model)
    with torch.no_grad():
        deduped = model(**batch).logits
        features = model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"]).pooler_output
    rows_per_picture = batch["pixel_values"].shape[0] // n_pictures
    # Pictures 0, 1, 1, 2 three times each: runs of equal neighbours are 0 | 1 1 | 2, so 3 of 12 are encoded.
    assert seen == [3 * rows_per_picture] * 2
    torch.testing.assert_close(deduped, plain, atol=1e-5, rtol=1e-5)
    assert len(features) == len(plain_features) == n_pictures
    for got, want in zip(features, plain_features, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_trainable_tower_still_sees_every_picture(model_dir):
    batch, _ = grpo_like_batch(model_dir)
    model = load_model(str(model_dir), dtype="float32")
    tower = find_vision_tower(model)
    seen = count_encoded(tower)
    encode_each_image_once(model)
    next(tower.parameters()).requires_grad_(True)
    model(**batch).logits.sum().backward()
    assert seen == [batch["pixel_values"].shape[0]], "full fine-tuning must encode (and train on) every copy"
    assert next(tower.parameters()).grad is not None


def test_found_under_a_lora_adapter_and_wrapped_once(model_dir):
    lora = LoraConfig(r=2, target_modules=LANGUAGE_MODEL_LORA_TARGETS)
    model = get_peft_model(load_model(str(model_dir), dtype="float32"), lora)
    assert encode_each_image_once(model) and encode_each_image_once(model)
    forward = find_vision_tower(model).forward
    assert forward._medr1_dedup and not getattr(forward.__wrapped__, "_medr1_dedup", False)


def test_grpo_training_encodes_one_copy_per_question_and_logs_the_same_numbers(
    tmp_path, tiny_model_dir, synthetic_jsonl
):
    """Through ``medr1-train grpo``, 4 completions of one question per step: one picture per tower pass.

    With ``--encode_each_image_once false`` the tower sees all four copies; loss, rewards and KL stay the same.
    """
    from transformers import TrainerCallback

    from train.callbacks import read_metrics
    from train.grpo import make_parser, train
    from train.prepare import device_flags

    class Probe(TrainerCallback):
        def __init__(self):
            self.rows: list[int] = []

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            tower = find_vision_tower(model)
            tower.patch_embed.register_forward_pre_hook(lambda _, inputs: self.rows.append(inputs[0].shape[0]))

    def run(once: bool) -> tuple[list[int], list[dict]]:
        out = tmp_path / f"once-{once}"
        argv = [
            "--model_name_or_path", str(tiny_model_dir), "--dataset_path", str(synthetic_jsonl),
            "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "4",
            "--num_generations", "4", "--max_completion_length", "8", "--beta", "0.04", "--report_to", "none",
            "--max_pixels", "3136", "--min_pixels", "3136", "--lora_r", "2", "--logging_steps", "1",
            "--seed", "0", "--encode_each_image_once", str(once).lower(),
        ]  # fmt: skip
        script_args, training_args, model_args = make_parser().parse_args_and_config(args=device_flags(argv))
        probe = Probe()
        train(script_args, training_args, model_args, callbacks=[probe])
        return probe.rows, [r for r in read_metrics(out / "metrics.jsonl") if "reward" in r]

    one_picture = (56 // 14) ** 2  # a 56 x 56 px picture: 4 x 4 patches of 14 px
    rows_once, logged_once = run(once=True)
    rows_all, logged_all = run(once=False)
    # Per step: sampling, the reference (KL) and the policy pass. Sampling prefills the question once for its
    # completions either way (train.generation.rollouts_prefilled_once), so its tower pass sees one copy.
    assert rows_once == [one_picture] * 6, rows_once
    assert rows_all == [one_picture, 4 * one_picture, 4 * one_picture] * 2, rows_all
    for key in ("loss", "reward", "kl", "rewards/format/mean"):
        assert [r[key] for r in logged_once] == pytest.approx([r[key] for r in logged_all], abs=1e-6), key
