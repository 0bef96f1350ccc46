"""Where the answer sits in a response's tokens, and which token each option letter would be there.

Evidence is read at the *answer position*: the token of the chosen letter right after ``<answer>``. The
model's state one position earlier is the one that picks that letter (its logits give the letter's
probability, its attention row is the attention map), so everything here works on token indices of the
response exactly as it was generated: no re-tokenisation of text, which could split differently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from train.protocol import LETTERS

# The first option letter inside an answer block, as the parser reads it ("<answer>C</answer>",
# "<answer> (B) ...", "<answer>Answer: D").
_LETTER_IN_ANSWER = re.compile(
    r"<answer>\s*(?:(?:the\s+)?(?:final\s+)?(?:answer|option|choice)\s*(?:is)?\s*[:\-]?\s*)?[\(\[\{]?\s*([A-F])",
    re.I,
)
_ANSWER_CLOSE = re.compile(r"</answer>", re.I)


class EvidenceError(ValueError):
    """The response has nothing to read evidence from (no answer letter), said in the user's words."""


@dataclass(frozen=True)
class AnswerPosition:
    """Token indices in the response (0 = first generated token)."""

    letter: str
    """The letter found after ``<answer>``, upper case."""
    letter_index: int
    """Index of the token holding the letter."""
    block: tuple[int, int]
    """First and one-past-last token of the answer block's text (``<answer>`` … ``</answer>``)."""


def _first_token_reaching(tokenizer: Any, ids: Sequence[int], chars: int) -> int:
    """The smallest k such that the text of ``ids[:k+1]`` is longer than ``chars`` (binary search).

    Decoding a prefix is monotone in length for byte-level BPE, so about log2(n) decodes find it.
    """
    low, high = 0, len(ids) - 1
    while low < high:
        middle = (low + high) // 2
        if len(tokenizer.decode(list(ids[: middle + 1]), skip_special_tokens=True)) > chars:
            high = middle
        else:
            low = middle + 1
    return low


def find_answer(tokenizer: Any, response_ids: Sequence[int], options: Sequence[str] | None) -> AnswerPosition:
    """Locate the chosen letter's token in ``response_ids``; :class:`EvidenceError` when there is none.

    The last answer block counts (as for the parser). The letter must be one of the options' letters.
    """
    ids = [int(i) for i in response_ids]
    text = tokenizer.decode(ids, skip_special_tokens=True)
    matches = list(_LETTER_IN_ANSWER.finditer(text))
    if not options:
        raise EvidenceError("This question has no options: evidence is read at an option letter, so there is none.")
    valid = LETTERS[: len(options)]
    if matches and matches[-1].group(1).upper() not in valid:
        raise EvidenceError(
            f"The answer names letter {matches[-1].group(1).upper()}, which is not one of the "
            f"{len(options)} options ({valid[0]}-{valid[-1]}): there is no option to explain."
        )
    if not matches:
        raise EvidenceError(
            "The response names no option letter after <answer>, so there is no answer to explain. "
            "Ask again (a longer token limit helps when the answer was cut off)."
        )
    match = matches[-1]
    letter_index = _first_token_reaching(tokenizer, ids, match.start(1))
    close = _ANSWER_CLOSE.search(text, match.end(1))
    end = _first_token_reaching(tokenizer, ids, close.start()) if close else len(ids) - 1
    return AnswerPosition(match.group(1).upper(), letter_index, (letter_index, max(letter_index + 1, end)))


def letter_tokens(
    tokenizer: Any, response_ids: Sequence[int], position: AnswerPosition, options: Sequence[str]
) -> dict[str, int]:
    """For each option letter, the token the model would write at the answer position to choose it.

    The chosen letter's is the token actually written. The others: the response up to the answer
    position with that letter appended (after whatever the chosen token holds before its letter, e.g.
    the ">" of a merged ">B"), tokenised; the first token after the prefix. The preference compares
    these first tokens: a token that holds more after the letter ("B)") is compared as it is.
    """
    prefix_ids = [int(i) for i in response_ids[: position.letter_index]]
    prefix = tokenizer.decode(prefix_ids, skip_special_tokens=True)
    prefix_tokens = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    chosen = int(response_ids[position.letter_index])
    # A tokenizer may merge the letter with what precedes it (">B", " B"): the other letters get the same lead.
    chosen_text = tokenizer.decode([chosen], skip_special_tokens=True)
    at = chosen_text.upper().find(position.letter)
    lead = chosen_text[:at] if at > 0 else ""
    tokens: dict[str, int] = {}
    for letter in LETTERS[: len(options)]:
        if letter == position.letter:
            tokens[letter] = chosen
            continue
        with_letter = tokenizer(prefix + lead + letter, add_special_tokens=False)["input_ids"]
        if with_letter[: len(prefix_tokens)] == prefix_tokens and len(with_letter) > len(prefix_tokens):
            tokens[letter] = int(with_letter[len(prefix_tokens)])
        else:  # the letter merged into the prefix's last token: fall back to the letter on its own
            tokens[letter] = int(tokenizer(letter, add_special_tokens=False)["input_ids"][0])
    if len(set(tokens.values())) != len(tokens):
        raise EvidenceError("Two option letters map to the same token in this tokenizer: no preference can be read.")
    return tokens
