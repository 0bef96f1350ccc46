"""The Evidence panel under the answer: where the model looked, how it ranked the options, whether it
needed the picture. What it computes is ``train.evidence``; this module only gathers the turn's inputs,
runs it on the loaded model and writes the panel's HTML and the viewer's overlay.

It runs after the answer has streamed (the answer is never held back for it), for the sample the
conversation continues from (:attr:`Turn.reply_sample`), and stops when Stop is pressed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from PIL import Image

from train.evidence import Evidence, EvidenceError, iter_evidence
from train.protocol import LETTERS, build_conversation

from .conversation import Conversation, Turn
from .models import LoadedModel
from .render import esc

ABOUT = (
    "<b>Attention map</b>: how the position that writes the answer letter spread its attention over the "
    "picture (mean over heads, later half of the layers; one cell per 28 × 28 px the model reads). Attention "
    "is not an explanation: a bright cell was attended to, which does not mean it caused the answer. The "
    "optional <b>relevancy map</b> weighs each attention weight by the gradient of the answer letter's score "
    "(gradient × attention, LVLM-Interpret's method): closer to what mattered, still not a cause. "
    "<b>Option preference</b>: the softmax over the option letters at the answer, the model's ranking of the "
    "options, not a probability of being right. <b>Image reliance</b>: the same question on a uniform grey "
    "picture of the same size; an answer whose preference survives it was not read from the image."
)
EMPTY = ""


def turn_messages(conversation: Conversation, turn: Turn) -> list[dict]:
    """The chat ``turn`` answered: its prompt after the turns before it, with their replies."""
    index = conversation.turns.index(turn)
    earlier = conversation.turns[:index]
    return build_conversation(
        [t.prompt for t in earlier] + [turn.prompt], [t.reply for t in earlier], images=len(conversation.slices) or 1
    )


def run_evidence(
    loaded: LoadedModel,
    conversation: Conversation,
    turn: Turn,
    should_stop: Callable[[], bool],
    relevancy: bool = False,
) -> Iterator[Evidence]:
    """Evidence for ``turn``'s reply, stage by stage (see ``train.evidence.iter_evidence``); ``relevancy``
    adds the gradient × attention map as a last stage."""
    sample = turn.reply_sample
    if sample is None or not turn.options:
        raise EvidenceError("Evidence is read at an option letter: this question has no options.")
    ids = sample.token_ids or tuple(loaded.processor.tokenizer(sample.text, add_special_tokens=False)["input_ids"])
    pictures = conversation.pictures
    yield from iter_evidence(
        loaded.model,
        loaded.processor,
        pictures if isinstance(pictures, list) else [pictures],
        turn_messages(conversation, turn),
        turn.options,
        ids,
        max_new_tokens=turn.settings.max_new_tokens,
        seed=turn.settings.seed,
        prompt_style=turn.settings.prompt_style,
        prompt=turn.settings.prompt,
        should_stop=should_stop,
        relevancy=relevancy,
    )


def overlay(
    conversation: Conversation | None, show: bool, opacity: float, method: str = "attention"
) -> Image.Image | None:
    """The viewer's picture: with the latest turn's map (attention, or relevancy where computed) on it
    when asked for and there is one."""
    if conversation is None:
        return None
    evidence = conversation.last.evidence if conversation.last else None
    if not show or evidence is None or not evidence.maps or conversation.slices:
        return conversation.picture
    maps = evidence.relevancy_maps if method == "relevancy" and evidence.relevancy_maps else evidence.maps
    return maps[0].overlay(conversation.picture, float(opacity))


def _bars(evidence: Evidence, options: tuple[str, ...]) -> str:
    rows = []
    for letter, share in evidence.option_probabilities.items():  # in the options' order, as asked
        text = options[LETTERS.index(letter)] if LETTERS.index(letter) < len(options) else ""
        chosen = " medr1-bar-chosen" if letter == evidence.letter else ""
        rows.append(
            f'<div class="medr1-bar{chosen}" data-letter="{letter}"><span class="medr1-bar-label">{letter}) {esc(text)}'
            f'</span><span class="medr1-bar-track"><span class="medr1-bar-fill" style="width:{100 * share:.1f}%">'
            f'</span></span><span class="medr1-bar-value">{share:.2f}</span></div>'
        )
    mass = evidence.options_mass or 0.0
    note = (
        f"The model's preference among the options at its answer, not a probability of being right "
        f"(the option letters held {100 * mass:.0f}% of its next-token probability)."
    )
    return f'<div class="medr1-bars">{"".join(rows)}</div><div class="medr1-evidence-note">{note}</div>'


def _map_line(evidence: Evidence, conversation: Conversation) -> str:
    first = evidence.maps[0]
    layers = f"layers {first.layers[0]}–{first.layers[-1]}" if len(first.layers) > 1 else f"layer {first.layers[0]}"
    where = (
        f"one map per slice ({len(evidence.maps)}) in the JSON export"
        if conversation.slices
        else "on the picture (the switch under it turns it off)"
    )
    share = sum(m.image_share or 0 for m in evidence.maps)
    line = (
        f"<b>Attention map</b> ({layers}, mean over heads): {where}. {100 * share:.0f}% of the answer position's "
        f"attention went to the picture."
    )
    if evidence.relevancy_maps:
        line += (
            " A <b>relevancy map</b> (gradient × attention: the attention that moved the letter's score) is there "
            + ("too, in the export." if conversation.slices else "too: choose it under the picture.")
        )
    return line


def _which_sample(conversation: Conversation | None) -> str:
    """With self-consistency: which sample the evidence is for (the one the conversation continues from)."""
    turn = conversation.last if conversation else None
    if turn is None or turn.progress is None or len(turn.progress.samples) < 2 or turn.reply_sample is None:
        return ""
    return f" · sample {turn.reply_sample.index + 1}, the first with the most frequent answer"


def evidence_html(
    evidence: Evidence | None,
    conversation: Conversation | None,
    *,
    working: str = "",
    error: str = "",
    stopped: bool = False,
) -> str:
    """The panel: status line, option bars, the reliance sentence, the map line, what it all means."""
    if evidence is None and not working and not error:
        return EMPTY
    parts = [
        '<div class="medr1-evidence" data-status="{}">'.format(
            "error" if error else "working" if working else "stopped" if stopped else "done"
        ),
        f'<div class="medr1-answer-head">Evidence{esc(_which_sample(conversation))}</div>',
    ]
    if error:
        parts.append(f'<div class="medr1-evidence-status">{esc(error)}</div>')
    if working:
        parts.append(f'<div class="medr1-evidence-status">{esc(working)}</div>')
    if evidence is not None and conversation is not None and conversation.last is not None:
        parts.append(_bars(evidence, conversation.last.options))
        if evidence.reliance is not None:
            changed = "changed" if evidence.reliance.changed else "same"
            parts.append(
                f'<div class="medr1-reliance" data-reliance="{changed}"><b>Image reliance</b>: '
                f"{esc(evidence.reliance.sentence())}</div>"
            )
        elif stopped:
            parts.append('<div class="medr1-reliance" data-reliance="stopped">Image reliance: stopped.</div>')
        if evidence.maps:
            parts.append(f'<div class="medr1-evidence-map">{_map_line(evidence, conversation)}</div>')
        took = sum(evidence.seconds.values())
        if evidence.complete:
            parts.append(f'<div class="medr1-evidence-note">Computed in {took:.1f} s after the answer.</div>')
    parts.append(f'<details class="medr1-evidence-about"><summary>What these are</summary>{ABOUT}</details></div>')
    return "".join(parts)
