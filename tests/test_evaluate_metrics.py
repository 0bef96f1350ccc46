"""Accuracy maths of ``medr1-eval`` against tables computed by hand (train/eval/metrics.py)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from train.eval.metrics import (
    breakdown,
    cell_stats,
    cell_stats_of_row,
    compare_runs,
    cross_matrix,
    grid_stats,
    group_stats,
    macro_accuracy,
    mcnemar_exact,
    wilson_interval,
)
from train.eval.results import QuestionResult


def result(
    id_: str,
    modality: str | None,
    question_type: str | None,
    correct: bool,
    n_options: int = 4,
    well_formed: bool = True,
    answered: bool = True,
    error: str | None = None,
) -> QuestionResult:
    gold = "A"
    answer = ("A" if correct else "B") if answered else None
    return QuestionResult(
        id=id_,
        modality=modality,
        question_type=question_type,
        gold=gold,
        answer=answer,
        correct=correct,
        well_formed=well_formed,
        n_options=n_options,
        rationale=None,
        response="",
        latency_s=0.1,
        batch_size=1,
        prompt_style="think",
        error=error,
    )


MR, DD = "Modality Recognition", "Disease Diagnosis"
# The hand-computed table (see the test below for every number):
#   CT  / MR: 3 questions (4, 4, 2 options), 2 right; the wrong one has no answer and is malformed.
#   CT  / DD: 1 question, 2 options, right.
#   MRI / MR: 2 questions, one unreadable image (error: not scored), the other wrong.
#   MRI / DD: empty.
HAND = [
    result("q1", "CT", MR, True),
    result("q2", "CT", MR, True),
    result("q3", "CT", MR, False, n_options=2, well_formed=False, answered=False),
    result("q4", "CT", DD, True, n_options=2),
    result("q5", "MRI", MR, False, error="image not readable"),
    result("q6", "MRI", MR, False, well_formed=False),
]


def test_wilson_interval_matches_published_values():
    low, high = wilson_interval(3, 5)
    assert (round(low, 4), round(high, 4)) == (0.2307, 0.8824)
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    # At the edges the interval stays inside [0, 1] and is not degenerate (unlike the normal approximation).
    assert wilson_interval(0, 10)[0] == 0.0 and round(wilson_interval(0, 10)[1], 4) == 0.2775
    assert round(wilson_interval(10, 10)[0], 4) == 0.7225 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_overall_counts_exclude_errors_and_score_missing_answers_as_wrong():
    overall = cell_stats(HAND)
    assert (overall.n, overall.correct, overall.errors) == (5, 3, 1)
    assert overall.accuracy == pytest.approx(0.6)
    assert overall.well_formed == 3 and overall.format_rate == pytest.approx(0.6)
    assert overall.answered == 4 and overall.answered_rate == pytest.approx(0.8)
    # Chance: (1/4 + 1/4 + 1/2 + 1/2 + 1/4) / 5 (the errored question is not scored).
    assert overall.chance == pytest.approx(1.75 / 5)
    assert overall.ci95 == pytest.approx(wilson_interval(3, 5))


def test_per_modality_and_question_type_tables_match_hand_counts():
    by_modality = group_stats(HAND, "modality")
    assert list(by_modality) == ["CT", "MRI"]
    assert (by_modality["CT"].n, by_modality["CT"].correct) == (4, 3)
    assert (by_modality["MRI"].n, by_modality["MRI"].correct, by_modality["MRI"].errors) == (1, 0, 1)
    assert macro_accuracy(by_modality) == pytest.approx((0.75 + 0.0) / 2)
    by_type = group_stats(HAND, "question_type")
    assert list(by_type) == [MR, DD]  # the paper's order, not alphabetical
    assert (by_type[MR].n, by_type[MR].correct) == (4, 2)
    assert (by_type[DD].n, by_type[DD].correct) == (1, 1)
    # Two-option questions make chance 50 %: the CT / Disease Diagnosis cell is all 2-option.
    assert grid_stats(HAND)[("CT", DD)].chance == pytest.approx(0.5)
    assert grid_stats(HAND)[("CT", MR)].chance == pytest.approx((0.25 + 0.25 + 0.5) / 3)


def test_empty_cells_are_reported_as_empty_not_zero():
    grid = grid_stats(HAND)
    assert set(grid) == {("CT", MR), ("CT", DD), ("MRI", MR), ("MRI", DD)}
    empty = grid[("MRI", DD)]
    assert empty.n == 0 and empty.accuracy is None and empty.ci95 is None and empty.chance is None
    # A requested column with no questions at all is empty too, and is ignored by the macro mean.
    with_missing = group_stats(HAND, "modality", ["CT", "MRI", "OCT"])
    assert with_missing["OCT"].accuracy is None
    assert macro_accuracy(with_missing) == pytest.approx(0.375)
    assert macro_accuracy({}) is None


def test_missing_labels_are_grouped_as_unknown_and_listed_last():
    results = [result("a", None, MR, True), result("b", "CT", None, False), result("c", "Endoscopy", MR, True)]
    assert list(group_stats(results, "modality")) == ["CT", "Endoscopy", "unknown"]
    assert list(group_stats(results, "question_type")) == [MR, "unknown"]


def test_breakdown_json_has_every_cell():
    data = breakdown(HAND).to_json()
    assert data["overall"]["n"] == 5 and data["overall"]["accuracy"] == pytest.approx(0.6)
    assert len(data["by_cell"]) == 4
    empty = next(c for c in data["by_cell"] if (c["modality"], c["question_type"]) == ("MRI", DD))
    assert empty["n"] == 0 and empty["accuracy"] is None


def exact_mcnemar(b: int, c: int) -> float:
    n, k = b + c, min(b, c)
    return float(min(Fraction(1), 2 * Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n)))


def test_mcnemar_exact_matches_hand_computed_binomial_tails():
    assert mcnemar_exact(1, 5) == pytest.approx(14 / 64)  # 2 * (1 + 6) / 2^6
    assert mcnemar_exact(5, 1) == mcnemar_exact(1, 5)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    # Past 2,000 discordant pairs the log-space sum takes over; it must agree with exact rationals.
    assert mcnemar_exact(1000, 1100) == pytest.approx(exact_mcnemar(1000, 1100), rel=1e-9)
    assert mcnemar_exact(1040, 1060) == pytest.approx(exact_mcnemar(1040, 1060), rel=1e-9)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_compare_runs_pairs_by_id_and_counts_discordant_pairs():
    pattern = {"q1": (1, 1), "q2": (1, 0), "q3": (0, 1), "q4": (0, 1), "q5": (0, 0), "q6": (0, 1)}
    base = [result(i, "CT", MR, bool(a)) for i, (a, _) in pattern.items()]
    new = [result(i, "CT", MR, bool(b)) for i, (_, b) in pattern.items()]
    base.append(result("q7", "CT", MR, True, error="image not readable"))  # errored: the pair is dropped
    new.append(result("q7", "CT", MR, True))
    new.append(result("q8", "MRI", MR, True))  # only in the new run: not compared, but counted
    comparison = compare_runs(base, new, "base", "tuned")
    overall = comparison.overall
    assert (overall.n, overall.base_correct, overall.new_correct) == (6, 2, 4)
    assert (overall.base_only, overall.new_only) == (1, 3)
    assert overall.delta == pytest.approx(2 / 6)
    assert overall.p_value == pytest.approx(2 * (1 + 4) / 16)
    assert (comparison.only_in_base, comparison.only_in_new) == (0, 1)
    assert list(comparison.by_modality) == ["CT"]
    assert comparison.to_json()["overall"]["p_value"] == pytest.approx(0.625)


def test_cross_modality_matrix_rows_are_training_modality_columns_test_modality():
    def run(ct_a: bool, ct_b: bool, mri_c: bool, mri_d: bool) -> list[QuestionResult]:
        return [
            result("a", "CT", MR, ct_a),
            result("b", "CT", MR, ct_b),
            result("c", "MRI", MR, mri_c),
            result("d", "MRI", MR, mri_d),
        ]

    runs = {"MRI": run(False, False, True, True), "CT": run(True, True, True, False)}
    matrix = cross_matrix(runs, "modality")
    assert matrix.rows == ["CT", "MRI"] and matrix.columns == ["CT", "MRI"]  # paper order, not insertion order
    assert [[matrix.accuracy(r, c) for c in matrix.columns] for r in matrix.rows] == [[1.0, 0.5], [0.0, 1.0]]
    assert cell_stats_of_row(matrix, "CT").accuracy == pytest.approx(0.75)
    assert matrix.to_json()["n"] == [[2, 2], [2, 2]]
    with pytest.raises(ValueError):
        cross_matrix({}, "modality")


MODALITY = st.sampled_from(["CT", "MRI", "OCT", None])
QTYPE = st.sampled_from([MR, DD, "Lesion Grading", None])
ROW = st.tuples(MODALITY, QTYPE, st.booleans(), st.sampled_from([2, 3, 4]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.lists(ROW, max_size=40))
def test_per_cell_counts_add_up_to_rows_columns_and_total(rows):
    results = [
        result(f"q{i}", m, q, correct, n, error="bad image" if err and i % 3 == 0 else None)
        for i, (m, q, correct, n, err) in enumerate(rows)
    ]
    b = breakdown(results)
    assert sum(s.n for s in b.by_cell.values()) == b.overall.n
    assert sum(s.correct for s in b.by_cell.values()) == b.overall.correct
    assert sum(s.errors for s in b.by_cell.values()) == b.overall.errors == sum(r.error is not None for r in results)
    for modality, stats in b.by_modality.items():
        assert sum(b.by_cell[(modality, q)].n for q in b.by_question_type) == stats.n
    for question_type, stats in b.by_question_type.items():
        assert sum(b.by_cell[(m, question_type)].correct for m in b.by_modality) == stats.correct
    if b.overall.n:
        low, high = b.overall.ci95
        assert 0.0 <= low <= b.overall.accuracy <= high <= 1.0
