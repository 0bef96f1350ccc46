"""``train.completion_scoring``: GRPO's log-prob passes score only the completion on the CPU, with the same numbers.

TRL's fused LM head projects every position onto the vocabulary where Triton does not run; within
``completion_tokens_only`` it projects only the labelled ones. On the tiny random Qwen2-VL: the rows
projected drop to the completion tokens, the log-probabilities, entropies and gradients stay the same,
and a GRPO run logs the same loss, KL and entropy either way.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from train.completion_scoring import completion_tokens_only
from train.imaging import model_picture
from train.protocol import build_messages, build_prompt

COMPLETION = 7


@pytest.fixture()
def scored_batch(tiny_model_dir, monkeypatch):
    """The tiny model with TRL's fused head, a 3-sequence batch (padded prompt + completion) and a row counter."""
    import trl.trainer.utils as trl_utils
    from trl.trainer.utils import add_fused_lm_head

    from train.model_io import load_model, load_processor, pixel_bounds

    torch.manual_seed(0)
    model = load_model(str(tiny_model_dir), dtype="float32")
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    processor = load_processor(str(tiny_model_dir))
    questions = ["Which modality?", "Which organ is shown in this picture?", "Grade?"]
    chats, pictures = [], []
    for i, question in enumerate(questions):
        text = build_prompt(question, ["CT", "MRI", "X-ray"])
        chats.append(processor.apply_chat_template(build_messages(text), add_generation_prompt=True, tokenize=False))
        pictures.append(model_picture(Image.new("RGB", (112, 84), (40 * i, 120, 200)), bounds=pixel_bounds(processor)))
    processor.tokenizer.padding_side = "left"
    inputs = processor(text=chats, images=pictures, padding=True, return_tensors="pt")
    completion = torch.randint(10, 500, (len(questions), COMPLETION))
    inputs["input_ids"] = torch.cat([inputs["input_ids"], completion], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(completion)], dim=1)
    inputs["attention_mask"][2, -2:] = 0  # a completion that ended early, as TRL masks it
    if "mm_token_type_ids" in inputs:
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(completion)], dim=1)
    labels = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    labels[:, :-COMPLETION] = -100  # as TRL's _get_per_token_logps_and_entropies scores the completion only

    rows: list[int] = []
    real = trl_utils._ChunkedLogProbFunction

    class Counting(real):
        @classmethod
        def apply(cls, hidden, *args):
            rows.append(hidden.shape[0])
            return real.apply(hidden, *args)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", Counting)
    return model, dict(inputs), labels, rows


def _score(model, inputs, labels):
    model.zero_grad()
    out = model(**inputs, labels=labels, fused_lm_head=True)
    weights = torch.linspace(-1.0, 2.0, out.log_probs.numel()).view_as(out.log_probs)
    (out.log_probs * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out.log_probs.detach(), out.entropy.detach(), grads


def test_only_the_completion_is_projected_and_the_numbers_stay(scored_batch):
    model, inputs, labels, rows = scored_batch
    full_logps, full_entropy, full_grads = _score(model, inputs, labels)
    with completion_tokens_only() as active:
        logps, entropy, grads = _score(model, inputs, labels)
    assert active, "this TRL still chooses the compact branch through _use_triton"
    batch, length = inputs["input_ids"].shape
    labelled = int((labels[:, 1:] != -100).sum())
    assert labelled == 3 * COMPLETION - 2
    assert rows == [batch * (length - 1), labelled], "every position before, the completion tokens only now"
    assert rows[0] > 4 * rows[1], "the prompt (picture tokens, template) is most of each sequence"
    kept = labels[:, 1:] != -100
    torch.testing.assert_close(logps, full_logps, rtol=0, atol=1e-5)
    torch.testing.assert_close(entropy[kept], full_entropy[kept], rtol=0, atol=1e-5)
    assert torch.count_nonzero(logps[~kept]) == 0
    assert full_grads.keys() == grads.keys() and len(grads) > 10
    for name, grad in full_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_outside_the_block_trl_is_left_as_it_was(scored_batch):
    import trl.trainer.utils as trl_utils

    before = trl_utils._use_triton
    with completion_tokens_only():
        assert trl_utils._use_triton is not before
        assert trl_utils._use_triton(torch.device("cpu"))
    assert trl_utils._use_triton is before
    with pytest.raises(RuntimeError), completion_tokens_only():
        raise RuntimeError("a failing pass")
    assert trl_utils._use_triton is before, "restored when the pass fails"


def test_grpo_logs_the_same_numbers_scoring_only_the_completion(tmp_path, tiny_model_dir, synthetic_jsonl):
    """Full fine-tuning through ``medr1-train grpo``, the KL term on: loss, KL, entropy and gradient norm agree.

    ``letter_a`` (tests/reward_plugins.py) gives the random model rewards that vary, so there is a gradient.
    """
    from train.callbacks import read_metrics
    from train.grpo import make_parser, train
    from train.prepare import device_flags

    def run(compact: bool) -> list[dict]:
        out = tmp_path / f"compact-{compact}"
        argv = [
            "--model_name_or_path", str(tiny_model_dir), "--dataset_path", str(synthetic_jsonl),
            "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "8",
            "--num_generations", "4", "--max_completion_length", "12", "--beta", "0.04", "--report_to", "none",
            "--max_pixels", "3136", "--min_pixels", "3136", "--use_peft", "false", "--learning_rate", "1e-4",
            "--logging_steps", "1", "--temperature", "1.0", "--seed", "0",
            "--reward_modules", "reward_plugins", "--reward_funcs", "format", "letter_a",
            "--score_completion_tokens_only", str(compact).lower(),
        ]  # fmt: skip
        script_args, training_args, model_args = make_parser().parse_args_and_config(args=device_flags(argv))
        train(script_args, training_args, model_args)
        return [r for r in read_metrics(out / "metrics.jsonl") if "reward" in r]

    compact, full = run(True), run(False)
    assert len(compact) == len(full) == 2
    for key in ("loss", "kl", "entropy", "grad_norm", "reward", "completions/mean_length"):
        assert [r[key] for r in compact] == pytest.approx([r[key] for r in full], rel=1e-4, abs=1e-6), key
    assert compact[0]["grad_norm"] > 0, "a reward with variance: the policy pass had a gradient to get right"
    assert compact[1]["kl"] > 0, "the second step moved away from the reference: the KL term was computed"
