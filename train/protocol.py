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
* The order of the blocks follows the prompt that was asked (:data:`PROMPTS`): ``think-after`` asks for
  the answer first and the reasoning after it, and only that order is well formed under it.

Prompts (:data:`PROMPTS`, picked by name with ``--prompt``): ``medr1`` is this kit's text (its think
template is Med-R1's training text); ``medr1-train`` and ``medr1-eval`` are the texts Med-R1 trained and
scored with, verbatim; ``think-after`` is the paper's answer-first variant, whose exact text is not
published (see :data:`THINK_AFTER_TEMPLATE`). ``style`` (think / no_think) says whether reasoning is asked
for at all and is what the parser expects; the prompt name says in which words.
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

# Med-R1's own texts, verbatim (Yuxiang-Lai117/Med-R1 at commit 88d76c73e7d21cd958a2b2dc32eca038be766f8f).
# Training (GRPO): src/r1-v/src/open_r1/grpo_vqa.py line 152 (think; equal to THINK_TEMPLATE above) and
# src/r1-v/src/open_r1/grpo_vqa_nothink.py line 151 (no-think).
MEDR1_TRAIN_THINK_TEMPLATE = THINK_TEMPLATE
MEDR1_TRAIN_NO_THINK_TEMPLATE = (
    "{Question} Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> "
    "tags. 2. No extra information or text outside of this tag."
)
# Evaluation: src/eval_vqa/test_qwen2vl_vqa.py line 43 (think; test_qwen2_5vl_vqa.py line 45 is the same) and
# src/eval_vqa/test_qwen2vl_vqa_nothink.py line 44 (no-think; test_qwen2_5vl_vqa_nothink.py line 45 the same).
MEDR1_EVAL_THINK_TEMPLATE = (
    "{Question} Think through the question step by step in <think>...</think> tags. Then provide the correct "
    "single-letter choice (A, B, C, D,...) inside <answer>...</answer> tags."
)
MEDR1_EVAL_NO_THINK_TEMPLATE = (
    "{Question} Provide the correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> tags."
)
# Think-After (arXiv:2503.13939 v5, whose abstract names the variant and credits the reasoning's position; a
# third-party summary, papers.lunadong.com/paper/11299, describes it as the answer first, then the
# explanation). The paper's prompt text could not be found (neither the repository above nor the pages
# reachable when this was written hold it), so this text is medr1's own: Med-R1's training template with the
# two steps swapped. Results made with it are not the paper's Think-After numbers.
THINK_AFTER_TEMPLATE = (
    "{Question} Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> "
    "tags. 2. Then explain your reasoning step by step, enclosed in <think>...</think> tags. 3. No extra information "
    "or text outside of these tags."
)
FREE_THINK_AFTER_TEMPLATE = (
    "{Question} Your task: 1. Give a short final answer inside <answer>...</answer> tags. 2. Then explain your "
    "reasoning step by step, enclosed in <think>...</think> tags. 3. No extra information or text outside of these "
    "tags."
)


@dataclass(frozen=True)
class Prompt:
    """One named way of asking: the instruction for each style, and the order of the blocks it asks for.

    Med-R1 has no prompt for questions without options; its entries use medr1's free-text texts for them.
    """

    name: str
    description: str
    source: str
    think: str
    no_think: str
    free_think: str = FREE_THINK_TEMPLATE
    free_no_think: str = FREE_NO_THINK_TEMPLATE
    answer_first: bool = False
    """True when the reasoning is asked for after the answer (``<answer>…</answer><think>…</think>``)."""

    def template(self, style: str, with_options: bool = True) -> str:
        if style not in PROMPT_STYLES:
            raise ValueError(f"Unknown prompt style {style!r}: use one of {', '.join(PROMPT_STYLES)}.")
        if with_options:
            return self.think if style == "think" else self.no_think
        return self.free_think if style == "think" else self.free_no_think

    def layout(self, style: str) -> str:
        """The well-formed layout in words, for messages."""
        if style != "think":
            return "<answer>…</answer>"
        return "<answer>…</answer><think>…</think>" if self.answer_first else "<think>…</think><answer>…</answer>"


DEFAULT_PROMPT = "medr1"
PROMPTS: dict[str, Prompt] = {
    p.name: p
    for p in (
        Prompt(
            "medr1",
            "medr1's prompt (think: Med-R1's training text; no-think: medr1's own wording)",
            "medr1",
            THINK_TEMPLATE,
            NO_THINK_TEMPLATE,
        ),
        Prompt(
            "medr1-train",
            "Med-R1's training prompt, verbatim (what its released checkpoints were trained with)",
            "Yuxiang-Lai117/Med-R1 src/r1-v/src/open_r1/grpo_vqa.py:152, grpo_vqa_nothink.py:151",
            MEDR1_TRAIN_THINK_TEMPLATE,
            MEDR1_TRAIN_NO_THINK_TEMPLATE,
        ),
        Prompt(
            "medr1-eval",
            "Med-R1's evaluation prompt, verbatim (what its published accuracies were scored with)",
            "Yuxiang-Lai117/Med-R1 src/eval_vqa/test_qwen2vl_vqa.py:43, test_qwen2vl_vqa_nothink.py:44",
            MEDR1_EVAL_THINK_TEMPLATE,
            MEDR1_EVAL_NO_THINK_TEMPLATE,
        ),
        Prompt(
            "think-after",
            "answer first, then the reasoning (the paper's Think-After layout; medr1's wording, the paper's text "
            "is not published)",
            "medr1 (layout from arXiv:2503.13939 v5)",
            THINK_AFTER_TEMPLATE,
            MEDR1_TRAIN_NO_THINK_TEMPLATE,
            free_think=FREE_THINK_AFTER_TEMPLATE,
            answer_first=True,
        ),
    )
}
PROMPT_NAMES = tuple(PROMPTS)


def get_prompt(name: str | None = None) -> Prompt:
    """The registered prompt called ``name`` (None: the default, ``medr1``)."""
    name = DEFAULT_PROMPT if name is None else str(name).strip()
    if name not in PROMPTS:
        hint = f" ({name} is a prompt style: --prompt_style {name})" if name in PROMPT_STYLES else ""
        raise ValueError(f"Unknown prompt {name!r}: use one of {', '.join(PROMPT_NAMES)}{hint}.")
    return PROMPTS[name]


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


def build_prompt(
    question: str, options: Sequence[str] | None = None, style: str = "think", prompt: str | None = None
) -> str:
    """The full instruction for one question: the named prompt's template around the formatted question."""
    template = get_prompt(prompt).template(style, with_options=bool(options))
    return template.format(Question=format_question(question, options))


def build_messages(prompt: str, with_image: bool = True, images: int = 1) -> list[dict]:
    """A one-turn chat in the processor's structured format, the image(s) placed before the text.

    TRL's trainers take plain-string content and insert the image placeholder themselves; this form is
    for calling ``processor.apply_chat_template`` directly (evaluation, the app). ``images`` > 1 asks about
    several pictures at once (slices of one study), in the order they are handed to the processor.
    """
    content: list[dict] = [{"type": "image"} for _ in range(images if with_image else 0)]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


def build_conversation(
    prompts: Sequence[str], responses: Sequence[str], with_image: bool = True, images: int = 1
) -> list[dict]:
    """A multi-turn chat about one image: ``prompts[i]`` answered by ``responses[i]``, the last prompt open.

    The image comes once, in the first turn (as Med-R1 asks its question); each earlier response goes
    back to the model word for word, reasoning included, so a follow-up is read in the context the model
    itself wrote. ``len(responses)`` must be ``len(prompts) - 1``.
    """
    if not prompts or len(responses) != len(prompts) - 1:
        raise ValueError("A conversation needs one prompt more than responses (the last prompt is being asked).")
    messages = build_messages(prompts[0], with_image=with_image, images=images)
    for response, prompt in zip(responses, prompts[1:], strict=True):
        messages.append({"role": "assistant", "content": [{"type": "text", "text": response}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": prompt}]})
    return messages


def format_completion(rationale: str, letter: str, style: str = "think", prompt: str | None = None) -> str:
    """A well-formed model response, e.g. for SFT targets; the inverse of :func:`parse_response`."""
    answer = f"<answer>{letter}</answer>"
    if style == "no_think":
        return answer
    think = f"<think>{rationale}</think>"
    return f"{answer}\n{think}" if get_prompt(prompt).answer_first else f"{think}\n{answer}"


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
    if len(bounds) == 2 * len(LETTERS) - 1 and re.search(r",\s*G\)", problem[cursor:]):
        # A seventh option would otherwise be glued onto F ("F)Spleen, G)Bone" read as F = "Spleen, G)Bone").
        raise ValueError(f"more than {MAX_OPTIONS} options (A to F, then G): medr1 handles {MAX_OPTIONS} at most")
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
_STRICT_ANSWER_FIRST = re.compile(r"\s*<answer>(?P<answer>.*?)</answer>\s*<think>(?P<think>.*?)</think>\s*", re.S)
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


def _strict_pattern(style: str, prompt: Prompt) -> re.Pattern[str]:
    if style != "think":
        return _STRICT_NO_THINK
    return _STRICT_ANSWER_FIRST if prompt.answer_first else _STRICT_THINK


def parse_response(
    text: str, options: Sequence[str] | None = None, style: str = "think", prompt: str | None = None
) -> ParsedResponse:
    """Parse a (possibly partial, possibly messy) model response; see the module docstring for rules.

    ``prompt`` names the prompt that was asked (:data:`PROMPTS`): it decides the order of the blocks a
    well-formed response has (``think-after``: the answer first).
    """
    issues: list[str] = []
    asked = get_prompt(prompt)
    pattern = _strict_pattern(style, asked)
    strict = pattern.fullmatch(text)
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
    if style == "think" and rationale == "" and _THINK_CLOSE.search(text):
        issues.append("the reasoning block is empty")
    thinks = len(_THINK_OPEN.findall(text))
    if thinks > 1:
        issues.append(f"there are {thinks} reasoning blocks")
    if not well_formed:
        in_layout = re.fullmatch(pattern.pattern, text, re.S | re.I) is not None
        if in_layout and any(t != t.lower() for t in _TAG.findall(text)):
            issues.append("the tags are not in lower case")
        structural = any(i.startswith("there ") or "not closed" in i for i in issues)
        if (not in_layout and not structural) or not issues:
            issues.append(f"the layout is not {asked.layout(style)}")
    return ParsedResponse(
        rationale=rationale,
        answer=answer,
        letter=letter,
        option=option,
        well_formed=well_formed,
        complete=complete,
        issues=tuple(issues) if not well_formed or letter is None else (),
    )
