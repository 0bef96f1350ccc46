"""Calibration of the option preference: is a letter chosen with preference 0.9 right 9 times in 10?

Expected calibration error (ECE) with equal-width bins, the usual definition (Guo et al., 2017):
the mean over answers of |accuracy − confidence| within each bin, weighted by the bin's share of
answers. Confidence here is the chosen letter's preference among the options (``train.evidence``),
so a well-calibrated model's preferences can be read as chances; a poorly calibrated one's cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    n: int
    accuracy: float | None
    confidence: float | None


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[CalibrationBin]:
    """Answers grouped by confidence into ``bins`` equal-width bins over [0, 1] (the last one closed)."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct must have the same length.")
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for confidence, right in zip(confidences, correct, strict=True):
        grouped[min(int(float(confidence) * bins), bins - 1)].append((float(confidence), bool(right)))
    out = []
    for index, members in enumerate(grouped):
        n = len(members)
        out.append(
            CalibrationBin(
                index / bins,
                (index + 1) / bins,
                n,
                sum(r for _, r in members) / n if n else None,
                sum(c for c, _ in members) / n if n else None,
            )
        )
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float | None:
    """ECE in [0, 1]; None without answers."""
    total = len(confidences)
    if not total:
        return None
    return sum(
        b.n / total * abs(b.accuracy - b.confidence) for b in reliability_bins(confidences, correct, bins) if b.n
    )
