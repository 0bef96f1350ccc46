"""Reward functions for GRPO, in the shape TRL calls them: ``f(completions, **columns) -> list[float]``.

Plain functions in the style of open-r1's ``rewards.py``. Each reads the response through
``train.protocol.parse_response`` so training pays for exactly what evaluation scores and what the
app displays. Completions may be plain strings or conversational (``[{"role": "assistant",
"content": ...}]``, content a string or a list of text parts), as TRL passes either.

Rewards are registered by name in :data:`REWARD_FUNCS`; ``medr1-train grpo --reward_funcs format
accuracy`` picks them and GRPOConfig's ``reward_weights`` weighs them. A function registered with
:func:`register_reward` anywhere imported before training (including the app's Fine-tune tab, which
launches this same code) is available under its name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from train.protocol import LETTERS, parse_response

RewardFunc = Callable[..., list[float]]
REWARD_FUNCS: dict[str, RewardFunc] = {}


def register_reward(name: str) -> Callable[[RewardFunc], RewardFunc]:
    """Register a reward under ``name`` (also used as its ``__name__``, which TRL logs it by)."""

    def decorator(func: RewardFunc) -> RewardFunc:
        if name in REWARD_FUNCS and REWARD_FUNCS[name] is not func:
            raise ValueError(f"A reward named {name!r} is already registered.")
        func.__name__ = name
        REWARD_FUNCS[name] = func
        return func

    return decorator


def get_reward_funcs(names: Sequence[str]) -> list[RewardFunc]:
    """Look rewards up by name, with an error that lists the names that exist."""
    unknown = [n for n in names if n not in REWARD_FUNCS]
    if unknown:
        raise ValueError(f"Unknown reward(s) {unknown}: choose from {sorted(REWARD_FUNCS)}.")
    return [REWARD_FUNCS[n] for n in names]


def completion_text(completion: Any) -> str:
    """The assistant's text from a plain-string or conversational completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        messages = [m for m in completion if isinstance(m, dict)]
        if messages and "role" in messages[0]:
            message = [m for m in messages if m.get("role") == "assistant"] or messages
            return completion_text(message[-1].get("content", ""))
        return "".join(p.get("text", "") for p in messages if p.get("type", "text") == "text")
    if isinstance(completion, dict):
        return completion_text(completion.get("content", ""))
    raise TypeError(f"Cannot read a completion of type {type(completion).__name__}.")


def _prompt_style(kwargs: dict[str, Any], n: int) -> list[str]:
    styles = kwargs.get("prompt_style")
    return list(styles) if styles is not None else ["think"] * n


def _prompt_name(kwargs: dict[str, Any], n: int) -> list[str | None]:
    """The prompt each question was asked with (the dataset's ``prompt_name`` column; None: medr1)."""
    names = kwargs.get("prompt_name")
    return list(names) if names is not None else [None] * n


def _options(kwargs: dict[str, Any], n: int) -> list[list[str] | None]:
    options = kwargs.get("options")
    return list(options) if options is not None else [None] * n


@register_reward("format")
def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 for exactly the layout the prompt asked for, else 0.0.

    ``<think>…</think><answer>…</answer>``; the answer block alone for no-think; ``<answer>…</answer>
    <think>…</think>`` under the ``think-after`` prompt (the column ``prompt_name`` says which was asked).
    """
    styles = _prompt_style(kwargs, len(completions))
    names = _prompt_name(kwargs, len(completions))
    return [
        1.0 if parse_response(completion_text(c), style=s, prompt=p).well_formed else 0.0
        for c, s, p in zip(completions, styles, names, strict=True)
    ]


@register_reward("accuracy")
def accuracy_reward(completions: list[Any], answer: list[str], **kwargs: Any) -> list[float]:
    """1.0 when the parsed choice equals the gold letter, else 0.0.

    The choice may be given as a letter in any of the accepted spellings or as the option's text; a
    response that names several options, or whose answer blocks disagree, gets nothing. For a
    free-text question (no options) the answer must equal the gold text, case and punctuation aside.
    """
    options = _options(kwargs, len(completions))
    styles = _prompt_style(kwargs, len(completions))
    names = _prompt_name(kwargs, len(completions))
    rewards = []
    for completion, gold, opts, style, name in zip(completions, answer, options, styles, names, strict=True):
        parsed = parse_response(completion_text(completion), options=opts, style=style, prompt=name)
        if opts:
            gold_letter = str(gold).strip().upper()
            if gold_letter not in LETTERS[: len(opts)]:
                raise ValueError(f"Gold answer {gold!r} is not an option letter for options {list(opts)}.")
            rewards.append(1.0 if parsed.letter == gold_letter else 0.0)
        else:
            same = parsed.answer is not None and _plain(parsed.answer) == _plain(str(gold))
            rewards.append(1.0 if same else 0.0)
    return rewards


def _plain(text: str) -> str:
    return " ".join("".join(ch if ch.isalnum() else " " for ch in text.casefold()).split())
