"""Held-out accuracy of the learning proof, measured by the kit's own evaluation (``train.eval``).

The same batched greedy generation, prompt (``train.protocol.build_prompt``), image preparation and
answer parser (``train.protocol.parse_response``) as ``medr1-eval``: what is scored here is exactly what
the ``accuracy`` and ``format`` rewards pay for, and what a user's evaluation would report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from train.data import Sample
from train.eval import evaluate


@dataclass(frozen=True)
class HeldOutResult:
    accuracy: float
    format_rate: float
    n: int
    letters: dict[str, int]
    """How often each letter (or None) was chosen: a collapsed model answers one letter everywhere."""
    by_type: dict[str, float]
    """Accuracy per question type (modality recognition, lesion grading)."""
    examples: tuple[str, ...]
    """The first few raw replies, to see what the model actually writes."""


def held_out(
    model,
    processor,
    samples: Sequence[Sample],
    prompt_style: str,
    max_pixels: int,
    min_pixels: int,
    max_new_tokens: int,
    batch_size: int = 32,
) -> HeldOutResult:
    """Greedy answers to ``samples``, scored; a summary the learning table prints."""
    results = evaluate(
        model,
        processor,
        samples,
        prompt_style=prompt_style,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        max_pixels=max_pixels,
        min_pixels=min_pixels,
        temperature=0.0,
        seed=0,
    )
    n = len(results)
    by_type: dict[str, list[bool]] = {}
    for r in results:
        by_type.setdefault(str(r.question_type), []).append(r.correct)
    return HeldOutResult(
        accuracy=sum(r.correct for r in results) / n,
        format_rate=sum(r.well_formed for r in results) / n,
        n=n,
        letters=dict(sorted(Counter(str(r.answer) for r in results).items())),
        by_type={k: sum(v) / len(v) for k, v in sorted(by_type.items())},
        examples=tuple(r.response for r in results[:3]),
    )
