"""The learning proof (``benchmarks/learning.py``): its data cannot leak the answer, and its loop learns.

The full proof (chance to >= 90 % held-out accuracy) takes minutes and is a script, not a test. Here:
the warm-up targets and the task variants are checked for leaks (fast), and a smoke run of the same code
end to end (build the random model, warm up on random answers, GRPO through ``train.grpo.train`` with the
kit's ``format`` + ``accuracy`` rewards) must raise the mean reward within about a minute. It fails when
the loop cannot learn anything at all: rewards without variance, a LoRA adapter that is not trained, a
broken loss.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._task import fix_option_order, grey_copies, make_splits, warmup_choices, warmup_target
from train.data import load_samples
from train.protocol import LETTERS, parse_response


def test_warmup_targets_ignore_the_gold_answer_and_name_every_letter_equally(tmp_path):
    """Changing the gold letter changes no warm-up target, the targets are right about 1 time in 4, and
    every block of four questions of a type names each letter once (a skewed prior starves a letter)."""
    splits = make_splits(tmp_path, seed=0, n_train=200, n_test=4)

    def targets_for(samples):
        choices = warmup_choices(samples, random.Random(0))
        return [warmup_target(s, k, "no_think", "letter") for s, k in zip(samples, choices, strict=True)]

    targets = targets_for(splits.train)
    moved = [dataclasses.replace(s, answer=LETTERS[(LETTERS.index(s.answer) + 1) % 4]) for s in splits.train]
    assert targets == targets_for(moved)
    parsed = [
        parse_response(t, options=s.options, style="no_think") for t, s in zip(targets, splits.train, strict=True)
    ]
    letters = [p.letter for p in parsed]
    assert all(letters), "every warm-up target must be a well-formed answer"
    hit_rate = sum(letter == s.answer for letter, s in zip(letters, splits.train, strict=True)) / len(letters)
    assert 0.15 < hit_rate < 0.35
    for question_type in {s.question_type for s in splits.train}:
        of_type = [letter for letter, s in zip(letters, splits.train, strict=True) if s.question_type == question_type]
        blocks = [of_type[i : i + 4] for i in range(0, len(of_type) - 3, 4)]
        assert all(sorted(block) == list(LETTERS[:4]) for block in blocks)
    assert len(set(targets[:8])) > 1 and targets[:8] != targets[8:16], "the order within blocks must be random"


def test_fixed_option_order_keeps_each_gold_answer_and_splits_share_no_image(tmp_path):
    shuffled = make_splits(tmp_path / "s", seed=3, n_train=40, n_test=20, options="shuffled")
    fixed = make_splits(tmp_path / "f", seed=3, n_train=40, n_test=20, options="fixed")
    for a, b in zip(shuffled.train + shuffled.test, fixed.train + fixed.test, strict=True):
        assert a.answer_text == b.answer_text and a.image.rsplit("/", 1)[-1] == b.image.rsplit("/", 1)[-1]
    orders = {(s.question_type, tuple(s.options)) for s in fixed.train}
    assert len(orders) == 2, "one option order per question type"
    train_pixels = {Image.open(s.image).tobytes() for s in fixed.train}
    assert not train_pixels & {Image.open(s.image).tobytes() for s in fixed.test}
    # The file written by fix_option_order reads back with the kit's loader, unchanged.
    again = fix_option_order(fixed.train_jsonl, fixed.train_jsonl.with_name("again.jsonl"))
    assert [json.loads(x) for x in again.read_text().splitlines()] == [
        json.loads(x) for x in fixed.train_jsonl.read_text().splitlines()
    ]
    assert len(load_samples(again).samples) == 40


def test_grey_copies_keep_questions_and_hide_the_pictures(tmp_path):
    splits = make_splits(tmp_path, seed=0, n_train=6, n_test=2)
    grey = grey_copies(splits.train, tmp_path / "grey.png")

    def fields(samples):
        return [(s.question, s.options, s.answer) for s in samples]

    assert fields(grey) == fields(splits.train)
    assert {s.image for s in grey} == {str(tmp_path / "grey.png")}
    assert len(set(Image.open(tmp_path / "grey.png").getdata())) == 1


@pytest.mark.slow
def test_grpo_smoke_raises_mean_reward(tmp_path):
    from benchmarks.learning import parse_args, run

    args = parse_args(["--smoke", "--seed", "0", "--threads", "1", "--output-dir", str(tmp_path / "run")])
    results = run(args)

    logged = results["logged"]
    assert len(logged) >= 12, f"too few logged GRPO steps: {logged}"
    k = len(logged) // 3
    first = sum(r["reward"] for r in logged[:k]) / k
    last = sum(r["reward"] for r in logged[-k:]) / k
    assert last > first + 0.05, f"mean reward did not rise: first {first:.3f}, last {last:.3f} ({logged})"
    # The warm-up must have taught the layout, or there is nothing for GRPO to build on.
    assert results["after_warmup"]["format_rate"] > 0.5
    assert (tmp_path / "run" / "grpo" / "adapter_model.safetensors").is_file()


def test_proof_settings_reach_the_kit_grpo_parser(tmp_path):
    """The proof's GRPO phase is ``medr1-train grpo`` with the printed flags: each setting must arrive.

    Why: the script's defaults (the KL to the warm-up model above all) are what made the proof pass; a
    flag dropped between the script and the kit's parser would silently train something else.
    """
    from benchmarks.learning import FULL, grpo_argv, parse_args
    from train.grpo import make_parser
    from train.prepare import device_flags

    args = parse_args(["--seed", "1", "--output-dir", str(tmp_path)])
    argv = grpo_argv(args, tmp_path / "model", tmp_path / "train.jsonl", tmp_path / "grpo")
    _, config, model_args = make_parser().parse_args_and_config(args=device_flags(argv))

    assert config.beta == FULL["beta"] > 0
    assert config.per_device_train_batch_size == FULL["prompts_per_step"] * FULL["num_generations"]
    assert config.num_generations == FULL["num_generations"]
    assert config.max_steps == FULL["grpo_steps"]
    assert config.learning_rate == FULL["grpo_lr"]
    assert config.lr_scheduler_type == FULL["grpo_scheduler"] == "cosine"
    assert config.temperature == FULL["temperature"]
    assert config.max_completion_length == args.max_completion_length
    assert config.seed == 1
    assert model_args.lora_r == args.lora_r


def test_the_proof_tokenizer_writes_the_task_prompts_in_whole_words(tmp_path):
    """The proof's random model knows the task's words (``tokenizer_corpus``): prompts a third shorter.

    Why: sequence length sets the cost of every GRPO pass, and the proof has to fit in 15 minutes.
    """
    from benchmarks._task import CANONICAL_OPTIONS, tokenizer_corpus
    from train.model_io import load_processor
    from train.protocol import build_messages, build_prompt
    from train.synthetic import QUESTIONS
    from train.tiny_model import build_tiny_model

    def prompt_tokens(model_dir: Path) -> dict[str, int]:
        processor = load_processor(str(model_dir))
        lengths = {}
        for question_type, options in CANONICAL_OPTIONS.items():
            prompt = build_prompt(QUESTIONS[question_type], options, style="no_think")
            text = processor.apply_chat_template(build_messages(prompt), add_generation_prompt=True)
            lengths[question_type] = len(processor.tokenizer(text)["input_ids"])
        return lengths

    plain = prompt_tokens(build_tiny_model(tmp_path / "plain", seed=0))
    proof = prompt_tokens(build_tiny_model(tmp_path / "proof", seed=0, extra_corpus=tokenizer_corpus("no_think")))
    for question_type in CANONICAL_OPTIONS:
        assert proof[question_type] < 0.75 * plain[question_type], (proof, plain)
