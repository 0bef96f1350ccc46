"""Reports of ``medr1-eval``: the paper's table layout, reference rows, comparisons, files (train/eval/report.py)."""

from __future__ import annotations

import csv
import json

import pytest
from test_evaluate_metrics import DD, HAND, MR, result

from train.eval import report
from train.eval.report import REFERENCE_PATH, load_reference, reference_rows
from train.protocol import format_completion


@pytest.fixture
def reference_file(tmp_path):
    """A reference file in the shipped format, with made-up numbers (this test's own, not the paper's)."""
    data = json.loads(REFERENCE_PATH.read_text())
    data["tables"]["modality"]["rows"] = [
        {"model": "Example-2B", "values": {"CT": 50.0, "OCT": 90.0}, "overall": 61.5, "source": "Table 9 of a test"},
        {"model": "Empty row", "values": {}, "overall": None, "source": None},
    ]
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(data))
    return path


def test_shipped_reference_file_names_its_source_and_invents_no_numbers():
    reference = load_reference(REFERENCE_PATH)
    assert "2503.13939" in reference["paper"]["url"]
    for claim in reference["verified_claims"]:
        assert "2503.13939" in claim["source"]
    # Every stored number must say where it was copied from.
    for axis in ("modality", "question_type"):
        for row in reference_rows(reference, axis):
            assert row.source, f"{row.model} has numbers without a source"


def test_reference_values_must_be_percentages(tmp_path):
    bad = json.loads(REFERENCE_PATH.read_text())
    bad["tables"]["modality"]["rows"] = [{"model": "X", "values": {"CT": 0.55}, "overall": 155}]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="percentages"):
        load_reference(path)


def test_paper_table_prints_runs_and_published_rows_side_by_side(reference_file):
    rep = report({"mine": HAND}, reference=reference_file)
    table = rep.tables["modality"]
    assert table.columns == ["Model", "CT", "MRI", "Overall", "Mean"]
    assert table.rows[0] == ["mine", 75.0, 0.0, 60.0, 37.5]
    # The published row: CT given, MRI not published (–); OCT is not a column because no run tested it.
    assert table.rows[1] == ["Example-2B (published)", 50.0, None, 61.5, 70.0]
    assert len(table.rows) == 2  # the row without numbers is left out
    markdown = table.to_markdown()
    assert "| Example-2B (published) | 50.0 | – | 61.5 | 70.0 |" in markdown
    assert "Table 9 of a test" in markdown


def test_default_report_says_why_no_published_rows_are_printed():
    rep = report(HAND)
    assert [row[0] for row in rep.tables["modality"].rows] == ["run"]
    assert "could not be read" in rep.tables["modality"].note


def test_summary_and_detail_tables_carry_counts_interval_and_format_rate():
    rep = report(HAND, reference=None)
    summary = dict(zip(rep.tables["summary"].columns, rep.tables["summary"].rows[0], strict=True))
    assert summary["Questions"] == 5 and summary["Correct"] == 3 and summary["Errors"] == 1
    assert summary["Accuracy %"] == pytest.approx(60.0)
    assert summary["95% CI (Wilson)"] == "23.1–88.2"
    assert summary["Format-compliant %"] == pytest.approx(60.0)
    assert summary["Chance %"] == pytest.approx(35.0)
    detail = rep.tables["run_question_type"]
    assert [row[0] for row in detail.rows] == [MR, DD, "Overall"]
    assert detail.rows[1][1:4] == [1, 1, 100.0]
    grid = rep.tables["run_grid"]
    assert grid.rows[1] == ["MRI", "0.0 (1)", "–", "0.0 (1)"]  # the empty MRI / DD cell is marked, not 0
    assert grid.rows[-1] == ["All", "50.0 (4)", "100.0 (1)", "60.0 (5)"]


def test_comparison_table_has_per_cell_deltas_and_mcnemar_p():
    base = [result(f"q{i}", "CT", MR, i < 2) for i in range(6)]
    tuned = [result(f"q{i}", "CT", MR, i in (0, 2, 3, 5)) for i in range(6)]
    rep = report({"base": base, "tuned": tuned}, reference=None, compare=[("base", "tuned")])
    table = rep.tables["compare_base_vs_tuned"]
    overall = dict(zip(table.columns, table.rows[0], strict=True))
    assert overall["Questions"] == 6 and overall["b"] == 1 and overall["c"] == 3
    assert overall["Δ pp"] == pytest.approx(100 * 2 / 6)
    assert overall["p (McNemar)"] == pytest.approx(0.625)
    assert "| Overall | 6 | 33.3 | 66.7 | +33.3 | 1 | 3 | 0.625 |" in table.to_markdown()
    assert "compare_base_vs_tuned" in rep.figures


def test_cross_matrix_table_and_heatmap():
    runs = {"CT": [result("a", "CT", MR, True), result("b", "MRI", MR, False)]}
    runs["MRI"] = [result("a", "CT", MR, False), result("b", "MRI", MR, True)]
    rep = report({"CT": runs["CT"], "MRI": runs["MRI"]}, reference=None, matrices={"modality": runs})
    table = rep.tables["cross_modality"]
    assert table.columns == ["Trained on", "CT", "MRI", "Overall"]
    assert table.rows == [["CT", 100.0, 0.0, 50.0], ["MRI", 0.0, 100.0, 50.0]]
    assert rep.summary["matrices"]["modality"]["accuracy"] == [[1.0, 0.0], [0.0, 1.0]]
    figure = rep.figures["cross_modality"]
    assert figure.axes[0].get_title().startswith("Cross-modality")


def test_write_produces_markdown_csv_json_and_png(tmp_path, reference_file):
    answered = [
        result("x1", "OCT", "Lesion Grading", True),
        result("x2", "OCT", "Lesion Grading", False),
    ]
    rep = report({"mine": HAND + answered}, reference=reference_file, tiny_random=True)
    paths = rep.write(tmp_path)
    names = {p.name for p in paths}
    assert {"report.md", "summary.json", "summary.csv", "modality.csv", "mine_grid.png"} <= names
    markdown = (tmp_path / "report.md").read_text()
    assert "Tiny random model" in markdown and "![" in markdown and "figures/mine_grid.png" in markdown
    with (tmp_path / "tables" / "modality.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Model", "CT", "MRI", "OCT", "Overall", "Mean"]
    assert rows[2][:4] == ["Example-2B (published)", "50.0", "", "90.0"]  # CSV keeps raw values, blanks for none
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["runs"]["mine"]["overall"]["n"] == 7
    assert summary["ci_method"].startswith("Wilson")
    assert (tmp_path / "figures" / "mine_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_parsed_responses_counts_what_the_parser_reads():
    """End to end from response text: a well-formed right answer, a right answer in a broken layout, a hedge."""
    from train.data import Sample
    from train.eval.generate import score

    sample = Sample("s", "img.png", "Which modality?", ["CT", "MRI"], "A", "CT", MR)
    scored = [
        score(sample, format_completion("bright bone", "A"), "think", 0.1, 3),
        score(sample, "It is <answer>A</answer>", "think", 0.1, 3),
        score(sample, "<think>x</think><answer>A or B</answer>", "think", 0.1, 3),
    ]
    # The hedge keeps the layout (well formed) but names no single option, so it is wrong.
    expected = [(True, True, "A"), (True, False, "A"), (False, True, None)]
    assert [(r.correct, r.well_formed, r.answer) for r in scored] == expected
    summary = report(scored, reference=None).tables["summary"]
    row = dict(zip(summary.columns, summary.rows[0], strict=True))
    assert row["Accuracy %"] == pytest.approx(200 / 3) and row["Format-compliant %"] == pytest.approx(200 / 3)
    assert row["Chance %"] == pytest.approx(50.0)
