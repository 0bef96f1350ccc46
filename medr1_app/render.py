"""HTML and Markdown for the answer panel, the samples, the image summary and the banners.

Pure functions of their arguments, so they are tested without a browser. Everything that comes from
the model or the user is escaped: a model can write ``<script>`` as easily as ``<think>``.

The answer panel never dresses a malformed response up: a response that is not exactly
``<think>…</think><answer>…</answer>`` gets a "Malformed output" badge with the parser's issues, and
a response without a readable choice shows "No answer" instead of a letter.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from train.protocol import LETTERS

from .answering import AnswerProgress, SampledAnswer

DISCLAIMER = (
    "Research use only. Not a medical device: not for diagnosis, treatment or any clinical decision. "
    "The model can be confidently wrong; its reasoning text is generated, not a validated explanation."
)
TINY_BANNER = (
    "Tiny random model loaded: it exists to test the app offline. Its answers are meaningless "
    "(random weights, about 0.2 M parameters)."
)
DEMO_BANNER = (
    'Demo model: 0.5 M parameters, trained only on medr1\'s synthetic task (textures as "modalities", a bright '
    'disc as the "lesion"). Its answers mean something only about those pictures: about any real image they '
    "are meaningless. Not a medical model."
)


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


SHORT_DISCLAIMER = "Research use only: not a medical device, not for diagnosis or any clinical decision."


def disclaimer_html(short: bool = False) -> str:
    """The warning every screen carries; the short form fits the header line, the full one closes the page."""
    text = SHORT_DISCLAIMER if short else DISCLAIMER
    return f'<div class="medr1-disclaimer" role="note"><strong>⚠ {esc(text)}</strong></div>'


TINY_ADAPTER_BANNER = (
    "Adapter on a tiny random base model (about 0.5 M parameters): whatever it was trained on here (a test, "
    "medr1's synthetic task), its answers about any real image are meaningless. Not a medical model."
)


def banner_html(tiny: bool, note: str = "", demo: bool = False, adapter: bool = False) -> str:
    """The banner above the Ask tab: loud for the tiny and the demo model, a short note for unverified models."""
    parts = []
    if tiny:
        text = DEMO_BANNER if demo else TINY_ADAPTER_BANNER if adapter else TINY_BANNER
        parts.append(f'<div class="medr1-banner medr1-banner-tiny" role="alert">{esc(text)}</div>')
    if note:
        parts.append(f'<div class="medr1-banner">{esc(note)}</div>')
    return "".join(parts)


def _status(sample: SampledAnswer, progress: AnswerProgress) -> tuple[str, str, list[str]]:
    """(css class, badge text, issues) for one sample."""
    parsed = sample.parsed
    if sample.stopped:
        return "stopped", "Stopped before the model finished", list(parsed.issues) if parsed else []
    if not sample.finished:
        return "streaming", "Generating…", []
    if parsed is None or not sample.text.strip():
        return "malformed", "Malformed output: the model returned nothing", []
    if parsed.well_formed and not parsed.issues:
        return "ok", "Well-formed answer", []
    return "malformed", "Malformed output (shown as the model wrote it)", list(parsed.issues)


def _choice_block(sample: SampledAnswer, options: Sequence[str] | None) -> str:
    """Letter and option text; for a free-text question the answer block's text itself."""
    parsed = sample.parsed
    shown_free = bool(parsed and not options and parsed.answer)
    if parsed is None or not ((parsed.letter and options) or shown_free):
        text = "No answer" if sample.finished or sample.stopped else "…"
        return f'<div class="medr1-choice medr1-choice-none"><span class="medr1-letter">{esc(text)}</span></div>'
    if not options:
        return f'<div class="medr1-choice"><span class="medr1-option">{esc(parsed.answer)}</span></div>'
    return (
        '<div class="medr1-choice">'
        f'<span class="medr1-letter" data-testid="answer-letter">{esc(parsed.letter)}</span>'
        f'<span class="medr1-option">{esc(parsed.option or "")}</span></div>'
    )


EMPTY_ANSWER = '<div class="medr1-answer medr1-answer-empty">The answer will appear here.</div>'
STALE_NOTE = "This answer is for the question as it was asked; press Ask to ask the edited one."


def answer_html(progress: AnswerProgress | None, options: Sequence[str] | None = None, stale: bool = False) -> str:
    """The prominent final answer (letter + option text), its status and, for N samples, the vote.

    ``stale`` marks an answer whose question has since been edited, so it is never read as the answer
    to the text now in the box.
    """
    if progress is None or not progress.samples:
        return EMPTY_ANSWER
    card = _answer_card(progress, list(options) if options else None)
    if not stale:
        return card
    note = f'<div class="medr1-stale-note" role="note">{esc(STALE_NOTE)}</div>'
    return f'<div class="medr1-stale" data-stale="true">{note}{card}</div>'


def _answer_card(progress: AnswerProgress, options: Sequence[str] | None) -> str:
    n = len(progress.samples)
    if progress.finished and progress.vote is not None and n > 1:
        return _vote_html(progress, options)
    sample = progress.sample
    assert sample is not None
    css, badge, issues = _status(sample, progress)
    if n > 1:  # the samples are being drawn together; the first is shown as it streams
        done = sum(s.finished for s in progress.samples)
        head = f"Sample {sample.index + 1} of {n} · {done} of {n} finished"
    else:
        head = "Answer"
    issue_list = "".join(f"<li>{esc(i)}</li>" for i in issues)
    return (
        f'<div class="medr1-answer medr1-answer-{css}" data-status="{css}">'
        f'<div class="medr1-answer-head">{esc(head)}</div>'
        f'<div class="medr1-answer-line">{_choice_block(sample, options)}'
        f'<div class="medr1-badge medr1-badge-{css}">{esc(badge)}</div></div>'
        + (f'<ul class="medr1-issues">{issue_list}</ul>' if issue_list else "")
        + "</div>"
    )


def _vote_html(progress: AnswerProgress, options: Sequence[str] | None) -> str:
    vote = progress.vote
    assert vote is not None
    rows = []
    for choice, count in vote.counts:
        label = (
            f"{choice}) {options[LETTERS.index(choice)]}" if options and choice in LETTERS[: len(options)] else choice
        )
        width = round(100 * count / max(vote.total, 1))
        rows.append(
            f'<div class="medr1-vote-row"><span class="medr1-vote-label">{esc(label)}</span>'
            f'<span class="medr1-vote-bar" style="width:{width}%"></span>'
            f'<span class="medr1-vote-count">{count}</span></div>'
        )
    if vote.no_answer:
        none_width = round(100 * vote.no_answer / vote.total)
        rows.append(
            '<div class="medr1-vote-row"><span class="medr1-vote-label">No readable answer</span>'
            f'<span class="medr1-vote-bar medr1-vote-bar-none" style="width:{none_width}%">'
            f'</span><span class="medr1-vote-count">{vote.no_answer}</span></div>'
        )
    if vote.winner and options and vote.winner in LETTERS[: len(options)]:
        choice = (
            '<div class="medr1-choice">'
            f'<span class="medr1-letter" data-testid="answer-letter">{esc(vote.winner)}</span>'
            f'<span class="medr1-option">{esc(options[LETTERS.index(vote.winner)])}</span></div>'
        )
    elif vote.winner:
        choice = f'<div class="medr1-choice"><span class="medr1-option">{esc(vote.winner)}</span></div>'
    else:
        choice = '<div class="medr1-choice medr1-choice-none"><span class="medr1-letter">No majority</span></div>'
    stopped = (
        '<div class="medr1-badge medr1-badge-stopped">Stopped: only the finished samples are counted</div>'
        if progress.stopped
        else ""
    )
    return (
        f'<div class="medr1-answer medr1-answer-vote" data-status="vote">'
        f'<div class="medr1-answer-head">Most frequent answer</div>{choice}'
        f'<div class="medr1-agreement" data-testid="agreement">{esc(vote.summary(options))}</div>'
        f'<div class="medr1-vote">{"".join(rows)}</div>{stopped}'
        '<div class="medr1-note">Agreement is how consistently the model answers when asked again, '
        "not the probability that the answer is right.</div></div>"
    )


def samples_html(progress: AnswerProgress | None, options: Sequence[str] | None = None) -> str:
    """Each sample's choice, status and full rationale, in collapsible sections."""
    if progress is None or len(progress.samples) < 2:
        return ""
    options = list(options) if options else None
    seed = progress.samples[0].seed
    parts = [
        f'<div class="medr1-note">{len(progress.samples)} samples drawn together from seed {seed}: the same '
        "seed and number of samples draw them again.</div>"
    ]
    for sample in progress.samples:
        css, badge, issues = _status(sample, progress)
        parsed = sample.parsed
        choice = (parsed.letter if parsed and parsed.letter else None) or "no answer"
        if parsed and parsed.letter and options:
            choice = f"{parsed.letter}) {parsed.option}"
        elif not options:
            choice = f"“{parsed.answer}”" if parsed and parsed.answer else "no answer"
        rationale = parsed.rationale if parsed and parsed.rationale is not None else ""
        issue_text = f" — {'; '.join(issues)}" if issues else ""
        parts.append(
            f'<details class="medr1-sample medr1-sample-{css}"><summary>Sample {sample.index + 1}: '
            f"{esc(choice)} · {esc(badge)}{esc(issue_text)}</summary>"
            f'<div class="medr1-sample-label">Reasoning</div><pre>{esc(rationale or "(none)")}</pre>'
            f'<div class="medr1-sample-label">Raw output</div><pre>{esc(sample.text)}</pre></details>'
        )
    return '<div class="medr1-samples">' + "".join(parts) + "</div>"


def rationale_text(progress: AnswerProgress | None) -> str:
    """The streaming reasoning panel: the current sample's ``<think>`` text, or its raw output.

    A response without a ``<think>`` block has no rationale to show; its raw text is shown instead,
    labelled, so nothing the model wrote is hidden.
    """
    if progress is None or progress.sample is None:
        return ""
    sample = progress.sample
    prefix = f"[Sample {sample.index + 1} of {len(progress.samples)}]\n" if len(progress.samples) > 1 else ""
    parsed = sample.parsed
    if parsed is not None and parsed.rationale is not None:
        return prefix + parsed.rationale
    if not sample.text or (not sample.finished and not sample.stopped and "<think>".startswith(sample.text.strip())):
        return prefix  # nothing yet, or the opening tag is still arriving
    return prefix + "(no <think> block: raw model output)\n" + sample.text


_META_LABELS = {
    "modality": "Modality",
    "body_part": "Body part",
    "sop_class": "Object type",
    "photometric_interpretation": "Photometric interpretation",
    "rows": "Rows",
    "columns": "Columns",
    "frames": "Frames",
    "bits_stored": "Bits stored",
    "pixel_spacing_mm": "Pixel spacing (mm)",
    "imager_pixel_spacing_mm": "Imager pixel spacing (mm)",
    "slice_thickness_mm": "Slice thickness (mm)",
    "window_center": "Window centre (file)",
    "window_width": "Window width (file)",
    "rescale_slope": "Rescale slope",
    "rescale_intercept": "Rescale intercept",
    "laterality": "Laterality",
    "view_position": "View position",
    "lossy_compression": "Lossy compression",
    "burned_in_annotation": "Burned-in annotation",
    "transfer_syntax": "Encoding",
    "format": "Format",
    "mode": "Pixel format",
    "width": "Width",
    "height": "Height",
}


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def metadata_markdown(kind: str, metadata: dict[str, Any], warnings: Sequence[str] = ()) -> str:
    """The PHI-free technical summary as a small Markdown table (only allow-listed keys arrive here)."""
    rows = [
        f"| {esc(_META_LABELS.get(k, k.replace('_', ' ').capitalize()))} | {esc(_value(v))} |"
        for k, v in metadata.items()
    ]
    head = {"dicom": "**DICOM**", "nifti": "**NIfTI volume**"}.get(kind, "**Image**")
    text = head + " — technical attributes only (no patient data is read)\n\n| Attribute | Value |\n|---|---|\n"
    text += "\n".join(rows)
    if warnings:
        text += "\n\n" + "\n".join(f"⚠ {esc(w)}" for w in warnings)
    return text


def status_html(message: str, kind: str = "error", details: str | None = None) -> str:
    """An inline message next to the control it concerns (errors stay visible, unlike toasts).

    ``details`` (a library's own error text, say) goes under a toggle: the shortest fix comes first.
    """
    if not message:
        return ""
    more = ""
    if details:
        more = f'<details class="medr1-status-details"><summary>Details</summary><pre>{esc(details)}</pre></details>'
    return f'<div class="medr1-status medr1-status-{esc(kind)}" role="status">{esc(message)}{more}</div>'


def sample_choices(progress: AnswerProgress | None, options: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """``(label, index)`` for the picker that shows any self-consistency sample's reasoning."""
    if progress is None or len(progress.samples) < 2:
        return []
    out = []
    for sample in progress.samples:
        parsed = sample.parsed
        if parsed and parsed.letter and options:
            choice = parsed.letter
        elif parsed and parsed.answer and parsed.complete and not options:
            choice = f"“{parsed.answer[:24]}”"
        else:
            choice = "no answer"
        out.append((f"Sample {sample.index + 1}: {choice}", sample.index))
    return out


def sample_rationale(progress: AnswerProgress | None, index: int | None) -> str:
    """The reasoning panel's text for one chosen sample (see :func:`rationale_text`)."""
    if progress is None or index is None or not 0 <= int(index) < len(progress.samples):
        return rationale_text(progress)
    return rationale_text(AnswerProgress(samples=progress.samples, current=int(index), finished=progress.finished))


def _turn_answer(sample: SampledAnswer, options: Sequence[str] | None, vote_text: str | None) -> str:
    parsed = sample.parsed
    if parsed is None:
        return "*No answer.*"
    if options and parsed.letter:
        text = f"**{parsed.letter}) {md_escape(parsed.option or '')}**"
    elif not options and parsed.answer and parsed.complete:
        text = f"**{md_escape(parsed.answer)}**"
    else:
        text = "**No answer**"
    if sample.stopped:
        status = "stopped before the end"
    elif parsed.well_formed and not parsed.issues:
        status = "well-formed"
    else:
        status = "malformed: " + md_escape("; ".join(parsed.issues))
    return f"{text}  \n*{status}*" + (f"  \n{vote_text}" if vote_text else "")


def conversation_messages(turns: Sequence[Any]) -> list[dict[str, Any]]:
    """Chat messages for ``gr.Chatbot``: each question, its reasoning as a collapsible thought, its answer.

    Everything from the model or the user is shown literally (HTML and Markdown escaped): a model can
    write ``<img onerror=...>`` as easily as ``<think>``.
    """
    messages: list[dict[str, Any]] = []
    for number, turn in enumerate(turns, 1):
        options = list(turn.options) or None
        question = md_escape(turn.question)
        if options:
            question += "  \n" + "  \n".join(f"{LETTERS[i]}) {md_escape(o)}" for i, o in enumerate(options))
        messages.append({"role": "user", "content": question})
        progress = turn.progress
        if progress is None or not progress.samples:
            continue
        vote, sample, vote_text = progress.vote, progress.samples[0], None
        if vote is not None and len(progress.samples) > 1:
            vote_text = md_escape(vote.summary(options))
            sample = next((s for s in progress.samples if s.finished and s.choice == vote.winner), sample)
        rationale = sample.parsed.rationale if sample.parsed else None
        messages.append(
            {
                "role": "assistant",
                "content": md_escape(rationale) if rationale else "*(no reasoning block)*",
                "metadata": {"title": f"Reasoning, question {number}", "status": "done"},
            }
        )
        messages.append({"role": "assistant", "content": _turn_answer(sample, options, vote_text)})
    return messages


# Characters that turn text into emphasis, code, links, tables or headings; list markers (a leading "1."
# or "-") only indent, so they are left alone and copied text stays readable.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]#|~"})


def md_escape(text: str) -> str:
    """Markdown (and the HTML inside it) shown literally."""
    return html.escape(str(text), quote=False).translate(_MD_SPECIAL)
