"""Accuracy statistics for evaluation runs: per-cell counts, Wilson intervals, paired tests, cross matrices.

Pure functions over :class:`~train.eval.results.QuestionResult` records, with no model or file in sight,
so every number in a report can be checked against a hand-computed table (``tests/test_evaluate_metrics.py``).

Conventions, each one deliberate:

* A question counts as **correct** only when the parsed letter equals the gold letter; no answer, a hedge
  or a malformed block is wrong (as in Med-R1's accuracy reward). Questions whose image could not be
  read are recorded with an ``error`` and left out of every denominator, but counted and reported.
* **Confidence intervals** are Wilson score intervals at 95 % (z = 1.959964). Unlike the normal
  approximation they stay inside [0, 1] and behave at 0 % and 100 %, which small per-cell counts hit often.
* **Overall** is micro-averaged (every question weighs the same); the macro mean over non-empty cells
  is reported beside it, since papers differ on which they print.
* **Chance** is the accuracy of uniform guessing, the mean of ``1 / n_options``: a 2-option cell at
  60 % is not a 4-option cell at 60 %.
* The paired test for two runs on the same questions is McNemar's exact test: a two-sided binomial test
  on the discordant pairs, computed here rather than pulling in scipy for one formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from train.data import MODALITIES, QUESTION_TYPES

if TYPE_CHECKING:
    from train.eval.results import QuestionResult

Z95 = 1.959963984540054
UNKNOWN = "unknown"
AXES = ("modality", "question_type")


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None for an empty cell (no questions, no estimate)."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}.")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # At 0 and n successes the bound is exactly 0 (or 1); say so instead of trusting rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class CellStats:
    """Counts for one cell of a table (a modality, a question type, both, or everything)."""

    n: int
    """Questions scored (errors excluded)."""
    correct: int
    well_formed: int
    answered: int
    """Questions where an option letter could be read from the answer."""
    chance_sum: float = 0.0
    """Sum of 1/n_options over the scored questions (chance accuracy = chance_sum / n)."""
    errors: int = 0
    """Questions that could not be run (unreadable image); not in n."""

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def ci95(self) -> tuple[float, float] | None:
        return wilson_interval(self.correct, self.n)

    @property
    def format_rate(self) -> float | None:
        return self.well_formed / self.n if self.n else None

    @property
    def answered_rate(self) -> float | None:
        return self.answered / self.n if self.n else None

    @property
    def chance(self) -> float | None:
        return self.chance_sum / self.n if self.n else None

    def to_json(self) -> dict:
        ci = self.ci95
        return {
            "n": self.n,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "ci95_low": ci[0] if ci else None,
            "ci95_high": ci[1] if ci else None,
            "well_formed": self.well_formed,
            "format_rate": self.format_rate,
            "answered": self.answered,
            "answered_rate": self.answered_rate,
            "chance": self.chance,
            "errors": self.errors,
        }


def cell_stats(results: Iterable[QuestionResult]) -> CellStats:
    """Add up one cell."""
    n = correct = well_formed = answered = errors = 0
    chance_sum = 0.0
    for r in results:
        if r.error:
            errors += 1
            continue
        n += 1
        correct += r.correct
        well_formed += r.well_formed
        answered += r.answer is not None
        chance_sum += 1.0 / r.n_options if r.n_options else 0.0
    return CellStats(n, correct, well_formed, answered, chance_sum, errors)


def axis_value(result: QuestionResult, axis: str) -> str:
    """The group a result falls in along ``axis`` ('modality' or 'question_type'); missing → 'unknown'."""
    if axis not in AXES:
        raise ValueError(f"Unknown axis {axis!r}: use one of {', '.join(AXES)}.")
    return getattr(result, axis) or UNKNOWN


def ordered_groups(values: Iterable[str], axis: str) -> list[str]:
    """The paper's order (MODALITIES / QUESTION_TYPES) first, then others alphabetically, 'unknown' last."""
    canonical = MODALITIES if axis == "modality" else QUESTION_TYPES
    present = set(values)
    extra = sorted(present - set(canonical) - {UNKNOWN})
    return [v for v in canonical if v in present] + extra + ([UNKNOWN] if UNKNOWN in present else [])


def group_stats(
    results: Sequence[QuestionResult], axis: str, groups: Sequence[str] | None = None
) -> dict[str, CellStats]:
    """Stats per group along one axis; ``groups`` fixes the columns (absent ones become empty cells)."""
    buckets: dict[str, list[QuestionResult]] = {}
    for r in results:
        buckets.setdefault(axis_value(r, axis), []).append(r)
    keys = list(groups) if groups is not None else ordered_groups(buckets, axis)
    return {key: cell_stats(buckets.get(key, [])) for key in keys}


def grid_stats(
    results: Sequence[QuestionResult],
    rows: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> dict[tuple[str, str], CellStats]:
    """Stats per (modality, question type) cell, every combination present (empty ones included)."""
    rows = list(rows) if rows is not None else ordered_groups((axis_value(r, "modality") for r in results), "modality")
    columns = (
        list(columns)
        if columns is not None
        else ordered_groups((axis_value(r, "question_type") for r in results), "question_type")
    )
    buckets: dict[tuple[str, str], list[QuestionResult]] = {}
    for r in results:
        buckets.setdefault((axis_value(r, "modality"), axis_value(r, "question_type")), []).append(r)
    return {(m, q): cell_stats(buckets.get((m, q), [])) for m in rows for q in columns}


def macro_accuracy(stats: Mapping[object, CellStats]) -> float | None:
    """Unweighted mean of the non-empty cells' accuracies (None when every cell is empty)."""
    values = [s.accuracy for s in stats.values() if s.accuracy is not None]
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Breakdown:
    """Everything the paper's tables need for one run."""

    overall: CellStats
    by_modality: dict[str, CellStats]
    by_question_type: dict[str, CellStats]
    by_cell: dict[tuple[str, str], CellStats]

    def to_json(self) -> dict:
        return {
            "overall": self.overall.to_json(),
            "macro_accuracy_over_modalities": macro_accuracy(self.by_modality),
            "macro_accuracy_over_question_types": macro_accuracy(self.by_question_type),
            "by_modality": {k: v.to_json() for k, v in self.by_modality.items()},
            "by_question_type": {k: v.to_json() for k, v in self.by_question_type.items()},
            "by_cell": [{"modality": m, "question_type": q, **v.to_json()} for (m, q), v in self.by_cell.items()],
        }


def breakdown(results: Sequence[QuestionResult]) -> Breakdown:
    """Overall, per-modality, per-question-type and per-cell stats of one run."""
    by_modality = group_stats(results, "modality")
    by_question_type = group_stats(results, "question_type")
    return Breakdown(
        overall=cell_stats(results),
        by_modality=by_modality,
        by_question_type=by_question_type,
        by_cell=grid_stats(results, list(by_modality), list(by_question_type)),
    )


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    Under the null hypothesis each discordant pair is equally likely to go either way, so
    ``min(b, c)`` follows Binomial(b + c, 1/2): p = min(1, 2 * P(X <= min(b, c))). Exact integer
    arithmetic up to 2,000 discordant pairs; beyond, a log-space sum (relative error ~1e-12).
    """
    if b < 0 or c < 0:
        raise ValueError("Discordant counts cannot be negative.")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    if n <= 2000:
        tail = sum(math.comb(n, i) for i in range(k + 1))
        return min(1.0, 2 * tail / 2**n)
    log_norm = math.lgamma(n + 1) - n * math.log(2)
    log_terms = [log_norm - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(log_terms)
    log_tail = top + math.log(sum(math.exp(t - top) for t in log_terms))
    return min(1.0, 2 * math.exp(log_tail))


@dataclass(frozen=True)
class PairedCell:
    """Two runs on the same questions: accuracies, the discordant pairs and McNemar's p-value."""

    n: int
    base_correct: int
    new_correct: int
    base_only: int
    """Right in the base run, wrong in the new one (McNemar's b)."""
    new_only: int
    """Wrong in the base run, right in the new one (McNemar's c)."""

    @property
    def base_accuracy(self) -> float | None:
        return self.base_correct / self.n if self.n else None

    @property
    def new_accuracy(self) -> float | None:
        return self.new_correct / self.n if self.n else None

    @property
    def delta(self) -> float | None:
        """New minus base accuracy (a fraction; x100 for percentage points)."""
        return (self.new_correct - self.base_correct) / self.n if self.n else None

    @property
    def p_value(self) -> float | None:
        return mcnemar_exact(self.base_only, self.new_only) if self.n else None

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "base_accuracy": self.base_accuracy,
            "new_accuracy": self.new_accuracy,
            "delta": self.delta,
            "base_only": self.base_only,
            "new_only": self.new_only,
            "p_value": self.p_value,
        }


def _paired(pairs: Sequence[tuple[QuestionResult, QuestionResult]]) -> PairedCell:
    return PairedCell(
        n=len(pairs),
        base_correct=sum(a.correct for a, _ in pairs),
        new_correct=sum(b.correct for _, b in pairs),
        base_only=sum(a.correct and not b.correct for a, b in pairs),
        new_only=sum(b.correct and not a.correct for a, b in pairs),
    )


@dataclass(frozen=True)
class Comparison:
    """Base vs new run, matched by question id, overall and per cell."""

    base: str
    new: str
    overall: PairedCell
    by_modality: dict[str, PairedCell]
    by_question_type: dict[str, PairedCell]
    by_cell: dict[tuple[str, str], PairedCell]
    only_in_base: int
    only_in_new: int

    def to_json(self) -> dict:
        return {
            "base": self.base,
            "new": self.new,
            "overall": self.overall.to_json(),
            "by_modality": {k: v.to_json() for k, v in self.by_modality.items()},
            "by_question_type": {k: v.to_json() for k, v in self.by_question_type.items()},
            "by_cell": [{"modality": m, "question_type": q, **v.to_json()} for (m, q), v in self.by_cell.items()],
            "only_in_base": self.only_in_base,
            "only_in_new": self.only_in_new,
            "test": "McNemar exact (two-sided binomial on discordant pairs), per cell, not adjusted for multiplicity",
        }


def compare_runs(
    base: Sequence[QuestionResult], new: Sequence[QuestionResult], base_name: str = "base", new_name: str = "new"
) -> Comparison:
    """Pair two runs by question id (errors on either side drop the pair) and compare them cell by cell."""
    base_by_id = {r.id: r for r in base}
    new_by_id = {r.id: r for r in new}
    shared = [i for i in base_by_id if i in new_by_id]
    pairs = [(base_by_id[i], new_by_id[i]) for i in shared if not base_by_id[i].error and not new_by_id[i].error]

    def grouped(key: Callable[[QuestionResult], object], keys: Sequence) -> dict:
        buckets: dict = {}
        for a, b in pairs:
            buckets.setdefault(key(a), []).append((a, b))
        return {k: _paired(buckets.get(k, [])) for k in keys}

    modalities = ordered_groups((axis_value(a, "modality") for a, _ in pairs), "modality")
    question_types = ordered_groups((axis_value(a, "question_type") for a, _ in pairs), "question_type")
    return Comparison(
        base=base_name,
        new=new_name,
        overall=_paired(pairs),
        by_modality=grouped(lambda r: axis_value(r, "modality"), modalities),
        by_question_type=grouped(lambda r: axis_value(r, "question_type"), question_types),
        by_cell=grouped(
            lambda r: (axis_value(r, "modality"), axis_value(r, "question_type")),
            [(m, q) for m in modalities for q in question_types],
        ),
        only_in_base=len(set(base_by_id) - set(new_by_id)),
        only_in_new=len(set(new_by_id) - set(base_by_id)),
    )


@dataclass(frozen=True)
class CrossMatrix:
    """Rows: what each checkpoint was trained on; columns: the test group; cells: stats on that group."""

    axis: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], CellStats]

    def accuracy(self, row: str, column: str) -> float | None:
        return self.cells[(row, column)].accuracy

    def to_json(self) -> dict:
        return {
            "axis": self.axis,
            "rows": self.rows,
            "columns": self.columns,
            "accuracy": [[self.accuracy(r, c) for c in self.columns] for r in self.rows],
            "n": [[self.cells[(r, c)].n for c in self.columns] for r in self.rows],
            "overall": {r: cell_stats_of_row(self, r).accuracy for r in self.rows},
        }


def cell_stats_of_row(matrix: CrossMatrix, row: str) -> CellStats:
    """A matrix row summed over its columns: the checkpoint's overall score on the test set."""
    cells = [matrix.cells[(row, c)] for c in matrix.columns]
    return CellStats(
        n=sum(c.n for c in cells),
        correct=sum(c.correct for c in cells),
        well_formed=sum(c.well_formed for c in cells),
        answered=sum(c.answered for c in cells),
        chance_sum=sum(c.chance_sum for c in cells),
        errors=sum(c.errors for c in cells),
    )


def cross_matrix(runs: Mapping[str, Sequence[QuestionResult]], axis: str = "modality") -> CrossMatrix:
    """The paper's cross-modality (or cross-task) matrix from several checkpoints' results.

    ``runs`` maps each checkpoint's training group (e.g. 'CT') to its results on the shared test set;
    the row order is the paper's order when the labels are modalities / question types.
    """
    if not runs:
        raise ValueError("A cross matrix needs at least one checkpoint's results.")
    columns = ordered_groups((axis_value(r, axis) for results in runs.values() for r in results), axis)
    labels = list(runs)
    known = MODALITIES if axis == "modality" else QUESTION_TYPES
    rows = [g for g in known if g in labels] + [g for g in labels if g not in known]
    cells = {}
    for row in rows:
        stats = group_stats(runs[row], axis, columns)
        for column in columns:
            cells[(row, column)] = stats[column]
    return CrossMatrix(axis=axis, rows=rows, columns=columns, cells=cells)
