"""``train.generation.generate``: the fast path and the shared prompt change the speed, never the answer.

On the tiny random Qwen2-VL (CPU): the static-cache path gives token-for-token the greedy output of the
ordinary path; self-consistency samples drawn with the prompt computed once are exactly the samples of
plain batched sampling from the same seed; a fast path that fails falls back once, logs why once, and
still answers.
"""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image

from train.generation import fast_path_failure, generate, use_fast_path
from train.imaging import model_picture
from train.protocol import build_messages, build_prompt


@pytest.fixture(scope="module")
def model_and_inputs(tiny_model_dir):
    from train.model_io import load_for_inference, load_processor, pixel_bounds

    model = load_for_inference(str(tiny_model_dir), device="cpu")
    processor = load_processor(str(tiny_model_dir))
    picture = model_picture(Image.new("RGB", (120, 90), (30, 140, 200)), bounds=pixel_bounds(processor))
    text = build_prompt("Which modality?", ["CT", "MRI", "X-ray"])
    chat = processor.apply_chat_template(build_messages(text), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[chat], images=[picture], return_tensors="pt")
    return model, processor, inputs


def _new_tokens(output: torch.Tensor, inputs) -> list[list[int]]:
    return output[:, inputs["input_ids"].shape[1] :].tolist()


def test_the_fast_path_gives_the_ordinary_greedy_answer(model_and_inputs, monkeypatch):
    model, _, inputs = model_and_inputs
    caches = []
    real_generate = model.generate

    def spy(**kwargs):
        caches.append((kwargs.get("cache_implementation"), kwargs.get("max_cache_len")))
        return real_generate(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    greedy = {"max_new_tokens": 48, "min_new_tokens": 48, "do_sample": False}
    with torch.inference_mode():
        ordinary = generate(model, inputs, fast="off", **greedy)
        fast = generate(model, inputs, fast="on", **greedy)
        again = generate(model, inputs, fast="on", max_new_tokens=300, min_new_tokens=300, do_sample=False)
    prompt = inputs["input_ids"].shape[1]
    assert caches == [
        (None, None),
        ("static", 256 * -(-(prompt + 48) // 256)),
        ("static", 256 * -(-(prompt + 300) // 256)),
    ]
    assert fast_path_failure(model) is None, "the static cache works on this stack"
    assert _new_tokens(fast, inputs) == _new_tokens(ordinary, inputs)
    assert len(_new_tokens(fast, inputs)[0]) == 48
    assert _new_tokens(again, inputs)[0][:48] == _new_tokens(ordinary, inputs)[0], "a larger cache, same answer"


def test_auto_uses_the_fast_path_only_on_cuda():
    assert use_fast_path("auto", "cuda:0") and not use_fast_path("auto", "cpu")
    assert use_fast_path("on", "cpu") and not use_fast_path("off", "cuda")
    with pytest.raises(ValueError, match="auto, on, off"):
        use_fast_path("fast", "cpu")


def test_samples_with_a_shared_prompt_are_the_plain_batched_samples(model_and_inputs):
    model, processor, inputs = model_and_inputs
    sampling = {"max_new_tokens": 40, "do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
    with torch.inference_mode():
        torch.manual_seed(11)
        plain = model.generate(**inputs, num_return_sequences=4, **sampling)
        torch.manual_seed(11)
        shared = generate(model, inputs, samples=4, fast="off", **sampling)
        torch.manual_seed(11)
        again = generate(model, inputs, samples=4, fast="off", **sampling)
    assert shared.shape[0] == 4
    assert torch.equal(shared, plain) and torch.equal(again, shared)
    texts = processor.batch_decode(_new_tokens(shared, inputs), skip_special_tokens=True)
    assert len(set(texts)) > 1, "the samples differ from one another"


class _NoStaticCache:
    """The tiny model, except that ``generate`` with a static cache fails as a broken compiler would."""

    def __init__(self, model):
        self.model = model
        self.config = model.config
        self.device = model.device
        self.static_calls = 0

    def generate(self, **kwargs):
        if kwargs.get("cache_implementation") == "static":
            self.static_calls += 1
            raise RuntimeError("BackendCompilerFailed: inductor is not available\nlong traceback")
        return self.model.generate(**kwargs)


class _Restartable:
    def __init__(self):
        self.restarts = 0

    def put(self, value):
        pass

    def end(self):
        pass

    def restart(self):
        self.restarts += 1


def test_a_failing_fast_path_falls_back_once_and_says_why_once(model_and_inputs, caplog):
    model, _, inputs = model_and_inputs
    broken = _NoStaticCache(model)
    streamer = _Restartable()
    greedy = {"max_new_tokens": 12, "min_new_tokens": 12, "do_sample": False}
    with caplog.at_level(logging.WARNING, logger="train.generation"), torch.inference_mode():
        first = generate(broken, inputs, fast="on", streamer=streamer, **greedy)
        second = generate(broken, inputs, fast="on", **greedy)
        expected = model.generate(**inputs, **greedy)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert broken.static_calls == 1, "after one failure the fast path is not tried again"
    assert streamer.restarts == 1, "the streamer is told that what it got is void"
    warnings = [r.getMessage() for r in caplog.records if "Fast generation" in r.getMessage()]
    assert warnings == [
        "Fast generation (static cache) failed, using the ordinary path from now on: "
        "RuntimeError: BackendCompilerFailed: inductor is not available"
    ]
    assert "BackendCompilerFailed" in fast_path_failure(broken)


def test_out_of_memory_on_the_fast_path_is_not_hidden(model_and_inputs):
    model, _, inputs = model_and_inputs

    class OutOfMemory(_NoStaticCache):
        def generate(self, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(torch.OutOfMemoryError):
        generate(OutOfMemory(model), inputs, fast="on", max_new_tokens=4)


def _rollout_batch(processor, copies: int, same_text: bool = False):
    """Two questions (different lengths and pictures) asked ``copies`` times each, as GRPO batches them."""
    from train.model_io import pixel_bounds

    bounds = pixel_bounds(processor)
    pictures = [
        model_picture(Image.new("RGB", (120, 90), (30, 140, 200)), bounds=bounds),
        model_picture(Image.new("RGB", (120, 90), (220, 20, 20)), bounds=bounds),
    ]
    questions = [build_prompt("Which modality?", ["CT", "MRI"])] * 2
    if not same_text:
        questions[1] = build_prompt("Which organ is shown in this slice, if any?", ["Liver", "Kidney", "Brain"])
    chats = [
        processor.apply_chat_template(build_messages(q), add_generation_prompt=True, tokenize=False) for q in questions
    ]
    texts = [chat for chat in chats for _ in range(copies)]
    images = [picture for picture in pictures for _ in range(copies)]
    return dict(processor(text=texts, images=images, padding=True, return_tensors="pt"))


def test_rollouts_prefilled_once_are_the_rollouts_of_plain_generate(model_and_inputs):
    from transformers import GenerationConfig

    from train.generation import generate_rollouts, repeated_prompts

    model, processor, _ = model_and_inputs
    batch = _rollout_batch(processor, copies=3)
    assert (batch["attention_mask"] == 0).any(), "the shorter question is left-padded"
    assert repeated_prompts(batch) == 3
    config = GenerationConfig(max_new_tokens=24, do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    calls = []

    def counting_generate(**kwargs):
        cache = kwargs.get("cache")
        calls.append(None if cache is None else (cache.get_seq_length(), "pixel_values" in kwargs))
        return model.generate(**kwargs)

    with torch.inference_mode():
        torch.manual_seed(3)
        plain = model.generate(**batch, generation_config=config)
        torch.manual_seed(3)
        shared = generate_rollouts(counting_generate, model, **batch, generation_config=config)
    assert calls == [(batch["input_ids"].shape[1] - 1, False)], "generate continues from the shared prefill"
    assert torch.equal(shared, plain)
    completions = shared[:, batch["input_ids"].shape[1] :]
    assert len({tuple(row.tolist()) for row in completions}) > 3, "each completion is its own sample"


def test_only_identical_prompts_and_pictures_share_a_prefill(model_and_inputs):
    from train.generation import repeated_prompts

    _, processor, _ = model_and_inputs
    same_words = _rollout_batch(processor, copies=2, same_text=True)  # same text, different pictures
    assert torch.equal(same_words["input_ids"][1], same_words["input_ids"][2])
    assert repeated_prompts(same_words) == 2
    once = _rollout_batch(processor, copies=1)
    assert repeated_prompts(once) == 1
    interleaved = {name: value[[0, 2, 1, 3]] for name, value in same_words.items() if name != "pixel_values"}
    grid = same_words["image_grid_thw"]
    blocks = torch.split(same_words["pixel_values"], grid.prod(-1).tolist())
    interleaved["pixel_values"] = torch.cat([blocks[i] for i in (0, 2, 1, 3)])
    assert repeated_prompts(interleaved) == 1, "copies must be next to each other"


def test_grpo_with_prompts_prefilled_once_logs_the_same_numbers(tmp_path, tiny_model_dir, synthetic_jsonl):
    """Through ``medr1-train grpo``: the shared prefill changes the speed of rollouts, not a logged number."""
    from train.callbacks import read_metrics
    from train.grpo import make_parser, train
    from train.prepare import device_flags

    def run(once: bool) -> list[dict]:
        out = tmp_path / f"prefill-{once}"
        argv = [
            "--model_name_or_path", str(tiny_model_dir), "--dataset_path", str(synthetic_jsonl),
            "--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "8",
            "--num_generations", "4", "--max_completion_length", "12", "--beta", "0.04", "--report_to", "none",
            "--max_pixels", "3136", "--min_pixels", "3136", "--lora_r", "2", "--logging_steps", "1",
            "--temperature", "1.0", "--seed", "0", "--prefill_prompts_once", str(once).lower(),
        ]  # fmt: skip
        script_args, training_args, model_args = make_parser().parse_args_and_config(args=device_flags(argv))
        train(script_args, training_args, model_args)
        return [r for r in read_metrics(out / "metrics.jsonl") if "reward" in r]

    once, per_completion = run(True), run(False)
    assert len(once) == len(per_completion) == 2
    for key in ("loss", "reward", "kl", "completions/mean_length", "rewards/format/mean"):
        assert [r[key] for r in once] == pytest.approx([r[key] for r in per_completion], abs=1e-6), key
