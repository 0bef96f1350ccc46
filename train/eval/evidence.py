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
from typing import Any

from PIL import Image

from train.data import Sample
from train.eval.results import QuestionResult
from train.evidence import EvidenceError, compute_evidence
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
