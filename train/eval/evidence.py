"""Evidence in evaluation: option preferences (for calibration) and image reliance, per question.

``medr1-eval --option_probabilities`` reads the option preference at each answer's letter (one forward
pass per question); ``--image_reliance`` also asks each question again on grey pictures of the same
size (one greedy answer and one forward pass more). Both go through ``train.evidence.compute_evidence``,
the function behind the app's Evidence panel, on the response re-tokenised from its text (the
generator returns text; for Qwen's byte-level BPE the ids read back are the ones generated in all but
rare merges across the answer tag). The tables: :func:`reliance_table` per modality and question type,
:func:`calibration_table` per run beside accuracy.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from train.data import Sample
from train.eval.metrics import axis_value, ordered_groups
from train.eval.report import Table, pct
from train.eval.results import QuestionResult
from train.evidence import EvidenceError, compute_evidence
from train.evidence.calibration import expected_calibration_error
from train.protocol import build_messages, build_prompt


def with_evidence(
    result: QuestionResult, model: Any, processor: Any, sample: Sample, picture: Image.Image, settings: Any
) -> QuestionResult:
    """``result`` with ``option_probabilities`` (and ``reliance`` when asked); unchanged without a letter."""
    if result.error or result.answer is None or not sample.options:
        return result
    ids = processor.tokenizer(result.response, add_special_tokens=False)["input_ids"]
    messages = build_messages(build_prompt(sample.question, sample.options, settings.prompt_style, settings.prompt))
    try:
        evidence = compute_evidence(
            model,
            processor,
            [picture],
            messages,
            sample.options,
            ids,
            reliance=settings.image_reliance,
            max_new_tokens=settings.max_new_tokens,
            seed=settings.seed,
            prompt_style=settings.prompt_style,
            prompt=settings.prompt,
        )
    except EvidenceError:
        return result
    reliance = None
    if evidence.reliance is not None:
        record = evidence.reliance.to_json()
        record.pop("response_without_picture")
        reliance = record
    return dataclasses.replace(result, option_probabilities=evidence.option_probabilities, reliance=reliance)


def reliance_table(run: str, results: Sequence[QuestionResult]) -> Table | None:
    """Share of answers that change on grey pictures, and the chosen letter's mean preference drop."""
    checked = [r for r in results if r.reliance]
    if not checked:
        return None
    table = Table(
        f"reliance_{run}",
        f"{run}: image reliance (the same questions on grey pictures of the same size)",
        ["modality", "question type", "n", "answers changed (%)", "preference fell >= 0.1 (%)", "mean preference drop"],
        formats={"mean preference drop": "+.3f"},
        note=(
            "Drop: the chosen letter's preference among the options with the picture minus without (the same "
            "response read again on grey). An answer counts as read from the picture when its preference falls by "
            "0.1 or more; a changed letter with no drop is a near-tie flipping, a kept letter can be the model's "
            "answer to grey as well."
        ),
    )
    groups: dict[tuple[str, str], list[QuestionResult]] = {}
    for r in checked:
        groups.setdefault((axis_value(r, "modality"), axis_value(r, "question_type")), []).append(r)
    modalities = ordered_groups({m for m, _ in groups}, "modality")
    types = ordered_groups({q for _, q in groups}, "question_type")
    cells = [(m, q) for m in modalities for q in types if (m, q) in groups] + [("all", "all")]
    for m, q in cells:
        members = checked if (m, q) == ("all", "all") else groups[(m, q)]
        changed = sum(bool(r.reliance["changed"]) for r in members) / len(members)
        relies = sum(bool(r.reliance.get("relies_on_picture")) for r in members) / len(members)
        drop = statistics.fmean(
            r.reliance["probability_with_picture"] - r.reliance["probability_without_picture"] for r in members
        )
        table.rows.append([m, q, len(members), pct(changed), pct(relies), drop])
    return table


def calibration_table(runs: Mapping[str, Sequence[QuestionResult]]) -> Table | None:
    """Accuracy beside the mean confidence (chosen letter's preference) and the expected calibration error."""
    table = Table(
        "calibration",
        "Calibration of the option preference",
        ["run", "n", "accuracy (%)", "mean confidence (%)", "ECE (pp, 10 bins)"],
        note=(
            "Confidence: the chosen letter's preference among the options at the answer position (softmax over "
            "the options' letters), not a probability of being right unless the ECE is small."
        ),
    )
    for name, results in runs.items():
        scored = [r for r in results if r.option_probabilities and r.answer in r.option_probabilities]
        if not scored:
            continue
        confidences = [r.option_probabilities[r.answer] for r in scored]
        correct = [r.correct for r in scored]
        table.rows.append(
            [
                name,
                len(scored),
                pct(sum(correct) / len(scored)),
                pct(statistics.fmean(confidences)),
                pct(expected_calibration_error(confidences, correct)),
            ]
        )
    return table if table.rows else None
