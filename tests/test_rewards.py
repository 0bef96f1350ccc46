"""GRPO rewards: what a completion earns, for plain-string and conversational completions alike."""

from __future__ import annotations

import pytest

from train.rewards import (
    REWARD_FUNCS,
    accuracy_reward,
    completion_text,
    format_reward,
    get_reward_funcs,
    register_reward,
)

OPTIONS = ["Mammogram", "PET", "CT", "Fluoroscopy"]
GOOD = "<think>Axial slices of the chest.</think><answer>C</answer>"


def conversational(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_rewards_are_registered_by_name():
    assert {"format", "accuracy"} <= set(REWARD_FUNCS)
    assert get_reward_funcs(["format", "accuracy"]) == [format_reward, accuracy_reward]
    assert format_reward.__name__ == "format"  # TRL logs rewards/<name>/mean under this name
    with pytest.raises(ValueError, match="choose from"):
        get_reward_funcs(["formatt"])


def test_register_reward_refuses_a_second_function_under_the_same_name():
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format")(lambda completions, **kw: [0.0] * len(completions))


@pytest.mark.parametrize(
    "wrap", [lambda t: t, conversational, lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]]
)
def test_completion_text_reads_every_shape(wrap):
    assert completion_text(wrap(GOOD)) == GOOD


def test_format_reward():
    completions = [GOOD, "<answer>C</answer>", f"Sure. {GOOD}", "<think>x</think><answer>C", "garbage"]
    assert format_reward(completions) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert format_reward([conversational(GOOD)]) == [1.0]
    assert format_reward(["<answer>C</answer>"], prompt_style=["no_think"]) == [1.0]


def test_format_reward_follows_the_prompt_each_question_was_asked_with(synthetic_jsonl):
    """Think-after asks for the answer first: that order earns the format reward under it, and only under it."""
    from train.data import load_samples, to_hf_dataset

    after = "<answer>C</answer><think>Axial slices of the chest.</think>"
    names = ["think-after", "medr1", "think-after", None]
    completions = [after, after, GOOD, GOOD]
    assert format_reward(completions, prompt_style=["think"] * 4, prompt_name=names) == [1.0, 0.0, 0.0, 1.0]
    gold = ["C"] * 4
    assert accuracy_reward(completions, gold, options=[OPTIONS] * 4, prompt_name=names) == [1.0] * 4
    samples = load_samples(synthetic_jsonl).samples[:2]
    row = to_hf_dataset(samples, "think", prompt="think-after")[0]
    assert row["prompt_name"] == "think-after" and "explain your reasoning" in row["prompt"][0]["content"]
    assert to_hf_dataset(samples, "think")[0]["prompt_name"] == "medr1"


@pytest.mark.parametrize(
    ("answer_block", "reward"),
    [
        ("C", 1.0),
        (" c ", 1.0),
        ("(C)", 1.0),
        ("C) CT", 1.0),
        ("CT", 1.0),
        ("D", 0.0),
        ("A, C", 0.0),
        ("C or D", 0.0),
        ("CD", 0.0),
        ("C) Fluoroscopy", 0.0),
        ("", 0.0),
    ],
)
def test_accuracy_reward(answer_block, reward):
    completion = f"<think>Axial slices.</think><answer>{answer_block}</answer>"
    assert accuracy_reward([completion], answer=["C"], options=[OPTIONS]) == [reward]
    assert accuracy_reward([conversational(completion)], answer=["C"], options=[OPTIONS]) == [reward]


def test_accuracy_never_pays_for_disagreeing_answer_blocks():
    completion = "<think>x</think><answer>C</answer><answer>D</answer>"
    assert accuracy_reward([completion], answer=["C"], options=[OPTIONS]) == [0.0]


def test_accuracy_ignores_format_problems_format_reward_catches_them():
    completion = "Let me see. <think>x</think><answer>C</answer>"
    assert accuracy_reward([completion], answer=["C"], options=[OPTIONS]) == [1.0]
    assert format_reward([completion]) == [0.0]


def test_accuracy_for_free_text_questions():
    completions = ["<think>x</think><answer>Left lung</answer>", "<think>x</think><answer>right lung</answer>"]
    assert accuracy_reward(completions, answer=["left lung", "left lung"], options=[[], []]) == [1.0, 0.0]


def test_accuracy_rejects_a_gold_answer_that_is_not_an_option_letter():
    with pytest.raises(ValueError, match="not an option letter"):
        accuracy_reward([GOOD], answer=["E"], options=[OPTIONS])


def test_rewards_accept_trl_extra_kwargs():
    kwargs = {"prompts": ["p"], "completion_ids": [[1, 2]], "trainer_state": None, "image": [None], "id": ["q1"]}
    assert format_reward([GOOD], **kwargs) == [1.0]
    assert accuracy_reward([GOOD], answer=["C"], options=[OPTIONS], **kwargs) == [1.0]
