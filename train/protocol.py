"""The Med-R1 question/answer protocol: prompt layout, instruction templates and the response parser.

This module is the single source of truth for what the model is asked and how its words are read.
Training rewards, evaluation and the app all import it, so a prompt tweak or a parsing rule changes
everywhere at once and the accuracy a researcher measures is the accuracy a clinician sees.

Parsing rules (each one is covered by ``tests/test_protocol.py``):

* **Well formed** means exactly Med-R1's layout and nothing else: ``<think>...</think>`` then
  ``<answer>...</answer>`` (whitespace between and around them allowed), one block of each, lower-case
  tags, both non-empty. The no-think variant asks for the answer block alone. This is what the
  format reward pays for.
* **The answer** is read from the ``<answer>`` block even when the layout is broken (text outside the
  tags, missing ``</think>``, a missing ``</answer>`` at the very end), because a clinician should
  still see what the model chose; the ``issues`` list says what was wrong.
* Inside the block we accept, for options ``A``..``F``: a bare letter in either case (``C``, ``c``,
  `` C ``), a letter in brackets or followed by punctuation (``(C)``, ``[C]``, ``C.``, ``C)``), a
  letter followed by its option text (``C) CT``, ``C. CT``, ``C: CT``), ``Answer: C`` / ``Option C``,
  or the option text alone (``CT``, case and spacing ignored). A letter whose trailing text names a
  *different* option (``C) MRI`` when C is CT) is contradictory and yields no letter.
* Hedging yields no letter, ever: several letters (``A, C``, ``A or C``, ``AC``), or several answer
  blocks that disagree. Several blocks that agree give that letter but are not well formed.
* No ``<answer>`` tag at all (including a stream cut before it) yields no letter: we never guess an
  answer from the rationale.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

LETTERS = "ABCDEF"
MIN_OPTIONS, MAX_OPTIONS = 2, len(LETTERS)

THINK_TEMPLATE = (
    "{Question} Your task: 1. Think through the question step by step, enclose your reasoning process "
    "in <think>...</think> tags. 2. Then provide the correct single-letter choice (A, B, C, D,...) inside "
    "<answer>...</answer> tags. 3. No extra information or text outside of these tags."
)
NO_THINK_TEMPLATE = (
    "{Question} Your task: provide the correct single-letter choice (A, B, C, D,...) inside "
    "<answer>...</answer> tags. No extra information or text outside of these tags."
)
# Questions without options (the app's free-text mode): same layout, the answer is free text.
FREE_THINK_TEMPLATE = (
    "{Question} Your task: 1. Think through the question step by step, enclose your reasoning process "
    "in <think>...</think> tags. 2. Then give a short final answer inside <answer>...</answer> tags. "
    "3. No extra information or text outside of these tags."
)
FREE_NO_THINK_TEMPLATE = (
    "{Question} Your task: give a short final answer inside <answer>...</answer> tags. "
    "No extra information or text outside of these tags."
)

PROMPT_STYLES = ("think", "no_think")


def format_question(question: str, options: Sequence[str] | None = None) -> str:
    """Lay out a question and its options the way Med-R1's data does: ``Q? A)x, B)y, C)z``."""
    question = " ".join(question.split())
    if not question:
        raise ValueError("The question is empty: type a question about the image.")
    if not options:
        return question
    options = [" ".join(str(o).split()) for o in options]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ValueError(f"A question needs {MIN_OPTIONS} to {MAX_OPTIONS} options, got {len(options)}.")
    if any(not o for o in options):
        raise ValueError("An option is empty: fill it in or remove it.")
    if len({o.casefold() for o in options}) != len(options):
        raise ValueError("Two options have the same text: each option must be different.")
    return question + " " + ", ".join(f"{letter}){text}" for letter, text in zip(LETTERS, options, strict=False))


def build_prompt(question: str, options: Sequence[str] | None = None, style: str = "think") -> str:
    """The full instruction for one question: Med-R1's template around the formatted question."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"Unknown prompt style {style!r}: use one of {', '.join(PROMPT_STYLES)}.")
    if options:
        template = THINK_TEMPLATE if style == "think" else NO_THINK_TEMPLATE
    else:
        template = FREE_THINK_TEMPLATE if style == "think" else FREE_NO_THINK_TEMPLATE
    return template.format(Question=format_question(question, options))


def build_messages(prompt: str, with_image: bool = True) -> list[dict]:
    """A one-turn chat in the processor's structured format, the image placed before the text.

    TRL's trainers take plain-string content and insert the image placeholder themselves; this form is
    for calling ``processor.apply_chat_template`` directly (evaluation, the app).
    """
    content: list[dict] = [{"type": "image"}] if with_image else []
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def build_conversation(prompts: Sequence[str], responses: Sequence[str], with_image: bool = True) -> list[dict]:
    """A multi-turn chat about one image: ``prompts[i]`` answered by ``responses[i]``, the last prompt open.

    The image comes once, in the first turn (as Med-R1 asks its question); each earlier response goes
    back to the model word for word, reasoning included, so a follow-up is read in the context the model
    itself wrote. ``len(responses)`` must be ``len(prompts) - 1``.
    """
    if not prompts or len(responses) != len(prompts) - 1:
        raise ValueError("A conversation needs one prompt more than responses (the last prompt is being asked).")
    messages = build_messages(prompts[0], with_image=with_image)
    for response, prompt in zip(responses, prompts[1:], strict=True):
        messages.append({"role": "assistant", "content": [{"type": "text", "text": response}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
    return messages


def format_completion(rationale: str, letter: str, style: str = "think") -> str:
    """A well-formed model response, e.g. for SFT targets; the inverse of :func:`parse_response`."""
    answer = f"<answer>{letter}</answer>"
    return answer if style == "no_think" else f"<think>{rationale}</think>\n{answer}"


def split_options(problem: str) -> tuple[str, list[str]]:
    """Split a Med-R1 ``problem`` string back into the question and its option texts.

    Option texts may themselves contain commas and brackets (``B)Positron emission tomography (PET)``),
    so we look for the letters in sequence: ``A)`` after whitespace, then ``, B)``, ``, C)``...
    """
    start = re.search(r"(?:^|\s)A\)", problem)
    if start is None:
        return problem.strip(), []
    question = problem[: start.start()].strip()
    cursor = start.end()
    bounds = [cursor]
    for letter in LETTERS[1:]:
        found = None
        for match in re.finditer(rf",\s*{letter}\)", problem[cursor:]):
            found = match
            break
        if found is None:
            break
        bounds.append(cursor + found.start())
        bounds.append(cursor + found.end())
        cursor += found.end()
    bounds.append(len(problem))
    options = [problem[bounds[i] : bounds[i + 1]].strip() for i in range(0, len(bounds), 2)]
    return question, options


@dataclass(frozen=True)
class ParsedResponse:
    """What a model response says, and how well it kept to the format."""

    rationale: str | None
    """Text of the ``<think>`` block (possibly cut short while streaming); None when there is none."""
    answer: str | None
    """Raw text inside the ``<answer>`` block, stripped; None when there is no answer block."""
    letter: str | None
    """The option letter chosen, upper case; None for no answer, hedging or a free-text question."""
    option: str | None
    """The text of the chosen option, when options were given and a letter was chosen."""
    well_formed: bool
    """Exactly ``<think>…</think><answer>…</answer>`` (or the answer block alone for no-think)."""
    complete: bool
    """The answer block was closed: the model finished answering (False while streaming)."""
    issues: tuple[str, ...] = field(default=())
    """Plain-language problems found, for display next to a malformed answer."""


_THINK_OPEN, _THINK_CLOSE = re.compile(r"<think>", re.I), re.compile(r"</think>", re.I)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.I | re.S)
_ANSWER_OPEN = re.compile(r"<answer>", re.I)
_STRICT_THINK = re.compile(r"\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*", re.S)
_STRICT_NO_THINK = re.compile(r"\s*<answer>(?P<answer>.*?)</answer>\s*", re.S)
_TAG = re.compile(r"</?(?:think|answer)>", re.I)
_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is)?\s*[:\-]?\s*", re.I)
_LETTER_ALONE = re.compile(r"^[\(\[\{]?\s*([A-Fa-f])\s*[\)\]\}]?\s*[.:]?$")
_LETTER_WITH_TEXT = re.compile(r"^[\(\[]?\s*([A-F]|[a-f](?=\s*[\)\].:]))\s*[\)\]]?\s*[.:\-)]?\s+(?P<text>\S.*)$", re.S)
_SEVERAL_LETTERS = re.compile(
    r"^[A-F]{2,6}$|^[\(\[]?\s*[A-Fa-f]\s*[\)\]]?(?:\s*(?:,|/|&|\band\b|\bor\b|\s)\s*[\(\[]?\s*[A-Fa-f]\s*[\)\]]?)+\s*\.?$"
)


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def _letter_from_answer(answer: str, options: Sequence[str] | None) -> tuple[str | None, str | None]:
    """Read the chosen letter from an answer block's text; returns (letter, issue)."""
    text = _PREFIX.sub("", " ".join(answer.split())).strip()
    if not text:
        return None, "the answer block is empty"
    if not options:
        return None, None  # a free-text question: the answer is the text, never a letter
    valid = LETTERS[: len(options)] if options else LETTERS
    by_text = {_normalise(o): LETTERS[i] for i, o in enumerate(options or [])}
    alone = _LETTER_ALONE.match(text)
    if alone:
        letter = alone.group(1).upper()
        if letter not in valid:
            return None, f"the answer {letter} is not one of the options"
        return letter, None
    # Option text alone ("CT") is checked before letter+text so an option starting "A ..." still matches.
    if _normalise(text) in by_text:
        return by_text[_normalise(text)], None
    if _SEVERAL_LETTERS.match(text):
        return None, "the answer names several options"
    with_text = _LETTER_WITH_TEXT.match(text)
    if with_text:
        letter = with_text.group(1).upper()
        if letter not in valid:
            return None, f"the answer {letter} is not one of the options"
        named = by_text.get(_normalise(with_text.group("text")))
        if named is not None and named != letter:
            return None, f"the answer gives letter {letter} but the text of option {named}"
        return letter, None
    if options:
        return None, "the answer is neither an option letter nor an option's text"
    return None, None


def parse_response(text: str, options: Sequence[str] | None = None, style: str = "think") -> ParsedResponse:
    """Parse a (possibly partial, possibly messy) model response; see the module docstring for rules."""
    issues: list[str] = []
    strict = (_STRICT_THINK if style == "think" else _STRICT_NO_THINK).fullmatch(text)
    well_formed = bool(
        strict
        and strict.group("answer").strip()
        and (style != "think" or strict.group("think").strip())
        and len(_TAG.findall(text)) == (4 if style == "think" else 2)
    )

    # Rationale: from <think> to </think>, or to <answer>/end of text when the close tag is missing.
    rationale = None
    think_open = _THINK_OPEN.search(text)
    if think_open:
        rest = text[think_open.end() :]
        close = _THINK_CLOSE.search(rest)
        answer_at = _ANSWER_OPEN.search(rest)
        end = close.start() if close else (answer_at.start() if answer_at else len(rest))
        rationale = rest[:end].strip()
        if close is None and not well_formed:
            issues.append("the reasoning is not closed with </think>")

    blocks = [b.strip() for b in _ANSWER_BLOCK.findall(text)]
    complete = bool(blocks)
    if not blocks:
        opened = list(_ANSWER_OPEN.finditer(text))
        if opened:
            blocks = [text[opened[-1].end() :].strip()]
            issues.append("the answer is not closed with </answer>")
        else:
            issues.append("there is no <answer> block")

    letter = option = answer = None
    if blocks:
        answer = blocks[-1]
        if len(blocks) > 1:
            issues.append(f"there are {len(blocks)} answer blocks")
        letters = []
        for block in blocks:
            found, issue = _letter_from_answer(block, options)
            letters.append(found)
            if issue and issue not in issues:
                issues.append(issue)
        if len(set(letters)) == 1:
            letter = letters[0]
        else:
            issues.append("the answer blocks disagree")
        if letter is not None and options:
            option = options[LETTERS.index(letter)]

    if not well_formed and complete and strict is None:
        outside = _ANSWER_BLOCK.sub(" ", text)
        outside = re.sub(r"<think>.*?</think>", " ", outside, flags=re.S | re.I)
        if outside.strip() and "there is no <answer> block" not in issues:
            issues.append("there is text outside the tags")
    if style == "think" and think_open is None:
        issues.append("there is no <think> block")
    if not well_formed and not issues:
        relaxed = (_STRICT_THINK if style == "think" else _STRICT_NO_THINK).pattern
        if re.fullmatch(relaxed, text, re.S | re.I):
            issues.append("the tags are not in lower case")
        else:
            issues.append("the layout is not <think>…</think><answer>…</answer>")
    return ParsedResponse(
        rationale=rationale,
        answer=answer,
        letter=letter,
        option=option,
        well_formed=well_formed,
        complete=complete,
        issues=tuple(issues) if not well_formed or letter is None else (),
    )
