"""Evaluation reports: the paper's tables and figures as Markdown, CSV, JSON and heatmap PNGs.

A report is built from results only (never from a live model), so ``medr1-eval report RUN_DIR``
rebuilds it offline and the app can show the same tables it would write. Tables carry raw values
(accuracies in percent, counts, p-values); Markdown rounds them for reading, CSV and JSON keep them.

Figures are drawn on ``matplotlib.figure.Figure`` objects directly (no pyplot state), so building a
report inside the Gradio app's worker threads is safe.

Reference rows (published numbers) come from ``train/reference/medr1_paper.json``. A row is printed
only when it holds at least one number; the file says which table each number was copied from.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.eval.metrics import (
    Breakdown,
    Comparison,
    CrossMatrix,
    axis_value,
    breakdown,
    cell_stats_of_row,
    compare_runs,
    cross_matrix,
    macro_accuracy,
    ordered_groups,
)
from train.eval.results import QuestionResult
from train.evidence.calibration import expected_calibration_error

REFERENCE_PATH = Path(__file__).parent.parent / "reference" / "medr1_paper.json"
EMPTY = "–"


def pct(value: float | None) -> float | None:
    """A fraction as a percentage (None stays None)."""
    return None if value is None else 100.0 * value


@dataclass
class Table:
    """A named table: raw cell values plus how to print floats per column."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    """Python format spec per column for floats (default '.1f')."""
    note: str = ""

    def _cell(self, column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return EMPTY
        if isinstance(value, float):
            return format(value, self.formats.get(column, ".1f"))
        return str(value).replace("|", "\\|")

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(self._cell(c, v) for c, v in zip(self.columns, row, strict=True)) + " |")
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.columns)
            for row in self.rows:
                writer.writerow(["" if v is None else v for v in row])
        return path

    def to_json(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": self.rows, "note": self.note}


# --------------------------------------------------------------------------------------------------
# Reference numbers


@dataclass(frozen=True)
class ReferenceRow:
    model: str
    values: dict[str, float]
    """Accuracy in percent per group (modality or question type)."""
    overall: float | None
    source: str


def load_reference(path: str | Path | None = REFERENCE_PATH) -> dict[str, Any] | None:
    """Read and check a reference file (None → no reference); values must be percentages in [0, 100]."""
    if path is None:
        return None
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    for axis, table in (data.get("tables") or {}).items():
        if axis not in ("modality", "question_type"):
            raise ValueError(f"{path}: unknown table {axis!r} (expected 'modality' or 'question_type').")
        for row in table.get("rows", []):
            numbers = [*(row.get("values") or {}).values(), row.get("overall")]
            for value in numbers:
                if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 100):
                    raise ValueError(f"{path}: {row.get('model')!r} has {value!r}; accuracies are percentages 0-100.")
    return data


def reference_rows(reference: Mapping[str, Any] | None, axis: str) -> list[ReferenceRow]:
    """The rows of one reference table that hold at least one number."""
    if not reference:
        return []
    table = (reference.get("tables") or {}).get(axis) or {}
    rows = []
    for row in table.get("rows", []):
        values = {k: float(v) for k, v in (row.get("values") or {}).items() if v is not None}
        overall = row.get("overall")
        if values or overall is not None:
            rows.append(
                ReferenceRow(
                    model=row["model"],
                    values=values,
                    overall=None if overall is None else float(overall),
                    source=row.get("source") or table.get("source") or "",
                )
            )
    return rows


# --------------------------------------------------------------------------------------------------
# Tables


def summary_table(breakdowns: Mapping[str, Breakdown], latencies: Mapping[str, float | None]) -> Table:
    columns = [
        "Run",
        "Questions",
        "Correct",
        "Accuracy %",
        "95% CI (Wilson)",
        "Mean over modalities %",
        "Format-compliant %",
        "Answered %",
        "Chance %",
        "Errors",
        "s/question",
    ]
    table = Table("summary", "Overall", columns, formats={"s/question": ".3f"})
    for run, b in breakdowns.items():
        o = b.overall
        ci = o.ci95
        table.rows.append(
            [
                run,
                o.n,
                o.correct,
                pct(o.accuracy),
                f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}" if ci else None,
                pct(macro_accuracy(b.by_modality)),
                pct(o.format_rate),
                pct(o.answered_rate),
                pct(o.chance),
                o.errors,
                latencies.get(run),
            ]
        )
    table.note = (
        "Accuracy counts a question right only when the parsed option letter equals the gold letter. "
        "Format-compliant: exactly the layout the prompt asked for: Med-R1's `<think>…</think><answer>…</answer>`, "
        "the answer block alone for no-think, the answer first for think-after. Chance: mean of 1/(number of options)."
    )
    return table


def paper_table(breakdowns: Mapping[str, Breakdown], axis: str, reference: Mapping[str, Any] | None = None) -> Table:
    """The paper's layout: one row per model, one column per modality (or question type), then Overall."""
    groups = ordered_groups(
        (g for b in breakdowns.values() for g in (b.by_modality if axis == "modality" else b.by_question_type)), axis
    )
    refs = reference_rows(reference, axis)
    name = "modality" if axis == "modality" else "question_type"
    title = "Accuracy (%) per modality" if axis == "modality" else "Accuracy (%) per question type"
    table = Table(name, title, ["Model", *groups, "Overall", "Mean"])
    for run, b in breakdowns.items():
        stats = b.by_modality if axis == "modality" else b.by_question_type
        cells = [pct(stats[g].accuracy) if g in stats else None for g in groups]
        table.rows.append([run, *cells, pct(b.overall.accuracy), pct(macro_accuracy(stats))])
    for ref in refs:
        mean = sum(ref.values.values()) / len(ref.values) if ref.values else None
        table.rows.append([f"{ref.model} (published)", *(ref.values.get(g) for g in groups), ref.overall, mean])
    notes = ["Overall: every question weighs the same (micro average). Mean: unweighted mean of the columns shown."]
    if refs:
        sources = sorted({r.source for r in refs if r.source})
        notes.append("Published rows: " + "; ".join(sources) + ".")
    elif reference is not None:
        notes.append(f"No published numbers printed: {reference.get('status', 'none stored for this table')}")
    table.note = " ".join(notes)
    return table


def detail_table(run: str, b: Breakdown, axis: str) -> Table:
    stats = b.by_modality if axis == "modality" else b.by_question_type
    label = "Modality" if axis == "modality" else "Question type"
    columns = [label, "Questions", "Correct", "Accuracy %", "CI low %", "CI high %", "Format-compliant %", "Chance %"]
    table = Table(f"{run}_{axis}", f"{run}: accuracy per {label.lower()} with 95% Wilson intervals", columns)
    for group, s in [*stats.items(), ("Overall", b.overall)]:
        ci = s.ci95
        table.rows.append(
            [
                group,
                s.n,
                s.correct,
                pct(s.accuracy),
                pct(ci[0]) if ci else None,
                pct(ci[1]) if ci else None,
                pct(s.format_rate),
                pct(s.chance),
            ]
        )
    return table


def grid_table(run: str, b: Breakdown) -> Table:
    """Modality x question type: accuracy and question count in every cell (empty cells shown as –)."""
    question_types = list(b.by_question_type)
    table = Table(f"{run}_grid", f"{run}: accuracy % (questions) per modality and question type", ["Modality"])
    table.columns += [*question_types, "All"]
    for modality, total in b.by_modality.items():
        row: list[Any] = [modality]
        for q in question_types:
            s = b.by_cell[(modality, q)]
            row.append(f"{100 * s.accuracy:.1f} ({s.n})" if s.n else EMPTY)
        row.append(f"{100 * total.accuracy:.1f} ({total.n})" if total.n else EMPTY)
        table.rows.append(row)
    footer: list[Any] = ["All"]
    for q in question_types:
        s = b.by_question_type[q]
        footer.append(f"{100 * s.accuracy:.1f} ({s.n})" if s.n else EMPTY)
    footer.append(f"{100 * b.overall.accuracy:.1f} ({b.overall.n})" if b.overall.n else EMPTY)
    table.rows.append(footer)
    return table


def matrix_table(matrix: CrossMatrix) -> Table:
    name = "cross_modality" if matrix.axis == "modality" else "cross_task"
    title = (
        "Cross-modality accuracy (%): rows = training modality, columns = test modality"
        if matrix.axis == "modality"
        else "Cross-task accuracy (%): rows = training question type, columns = test question type"
    )
    table = Table(name, title, ["Trained on", *matrix.columns, "Overall"])
    for row in matrix.rows:
        table.rows.append(
            [row, *(pct(matrix.accuracy(row, c)) for c in matrix.columns), pct(cell_stats_of_row(matrix, row).accuracy)]
        )
    table.note = "Diagonal cells are in-domain; the rest measure generalisation to unseen groups."
    return table


def comparison_table(comparison: Comparison) -> Table:
    columns = ["Cell", "Questions", f"{comparison.base} %", f"{comparison.new} %", "Δ pp", "b", "c", "p (McNemar)"]
    table = Table(
        f"compare_{comparison.base}_vs_{comparison.new}",
        f"{comparison.new} vs {comparison.base} on the same questions",
        columns,
        formats={"p (McNemar)": ".3g", "Δ pp": "+.1f"},
    )
    cells = [("Overall", comparison.overall)]
    cells += [(f"modality: {k}", v) for k, v in comparison.by_modality.items()]
    cells += [(f"question type: {k}", v) for k, v in comparison.by_question_type.items()]
    for label, cell in cells:
        table.rows.append(
            [
                label,
                cell.n,
                pct(cell.base_accuracy),
                pct(cell.new_accuracy),
                pct(cell.delta),
                cell.base_only,
                cell.new_only,
                cell.p_value,
            ]
        )
    unmatched = ""
    if comparison.only_in_base or comparison.only_in_new:
        unmatched = (
            f" Not compared: {comparison.only_in_base} question(s) only in {comparison.base}, "
            f"{comparison.only_in_new} only in {comparison.new}."
        )
    table.note = (
        f"b: right in {comparison.base} only; c: right in {comparison.new} only. Two-sided exact McNemar test "
        "per row, not adjusted for multiple comparisons." + unmatched
    )
    return table


# --------------------------------------------------------------------------------------------------
# Figures


def heatmap(
    values: Sequence[Sequence[float | None]],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str,
    diverging: bool = False,
    row_title: str = "",
    column_title: str = "",
):
    """An annotated heatmap (percent values) like the paper's figures; empty cells are hatched grey."""
    import numpy as np
    from matplotlib.figure import Figure

    data = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    width = max(4.0, 0.9 * len(column_labels) + 2.5)
    height = max(2.5, 0.55 * len(row_labels) + 1.8)
    figure = Figure(figsize=(width, height), dpi=110)
    axes = figure.add_subplot()
    if diverging:
        bound = max(1.0, float(np.nanmax(np.abs(data)))) if np.isfinite(data).any() else 1.0
        image = axes.imshow(data, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
    else:
        image = axes.imshow(data, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    axes.set_facecolor("#dddddd")
    axes.set_xticks(range(len(column_labels)), labels=column_labels, rotation=35, ha="right")
    axes.set_yticks(range(len(row_labels)), labels=row_labels)
    axes.set_xlabel(column_title)
    axes.set_ylabel(row_title)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            value = data[i, j]
            if np.isnan(value):
                axes.text(j, i, EMPTY, ha="center", va="center", color="#555555", fontsize=8)
            else:
                text = f"{value:+.1f}" if diverging else f"{value:.1f}"
                light = abs(value) > 0.6 * bound if diverging else value < 60
                axes.text(j, i, text, ha="center", va="center", color="white" if light else "black", fontsize=8)
    axes.set_title(title)
    figure.colorbar(image, ax=axes, label="Δ accuracy (pp)" if diverging else "accuracy (%)")
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------------------------------
# The report


@dataclass
class Report:
    """Tables, figures and a JSON summary for one or several runs; ``write`` saves them all."""

    tables: dict[str, Table]
    figures: dict[str, Any]
    summary: dict[str, Any]
    title: str = "medr1 evaluation"

    def markdown(self) -> str:
        parts = [f"# {self.title}", ""]
        if self.summary.get("tiny_random"):
            parts += ["> **Tiny random model: these numbers test the pipeline and mean nothing.**", ""]
        for table in self.tables.values():
            parts.append(table.to_markdown())
            figure = self.summary.get("figures", {}).get(table.name)
            if figure:
                parts += [f"![{table.title}]({figure})", ""]
        return "\n".join(parts)

    def write(self, output_dir: str | Path) -> list[Path]:
        """Write report.md, summary.json, tables/*.csv and figures/*.png; returns the paths written."""
        output_dir = Path(output_dir)
        (output_dir / "tables").mkdir(parents=True, exist_ok=True)
        (output_dir / "figures").mkdir(parents=True, exist_ok=True)
        written = [table.write_csv(output_dir / "tables" / f"{name}.csv") for name, table in self.tables.items()]
        for name, figure in self.figures.items():
            path = output_dir / "figures" / f"{name}.png"
            figure.savefig(path)
            written.append(path)
        summary = dict(self.summary)
        summary["tables"] = {name: table.to_json() for name, table in self.tables.items()}
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        (output_dir / "report.md").write_text(self.markdown())
        return [*written, output_dir / "summary.json", output_dir / "report.md"]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


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


def build_report(
    runs: Mapping[str, Sequence[QuestionResult]],
    reference: Mapping[str, Any] | None = None,
    compare: Sequence[tuple[str, str]] = (),
    matrices: Mapping[str, Mapping[str, Sequence[QuestionResult]]] | None = None,
    title: str = "medr1 evaluation",
    tiny_random: bool = False,
) -> Report:
    """Everything for ``runs`` (name → results): summary, paper-layout tables, per-run details and grids,
    comparisons (base, new) and cross matrices (axis → {training group → results}), with heatmaps.
    """
    if not runs:
        raise ValueError("No results to report.")
    breakdowns = {name: breakdown(results) for name, results in runs.items()}
    latencies = {}
    for name, results in runs.items():
        timed = [r.latency_s for r in results if not r.error]
        latencies[name] = sum(timed) / len(timed) if timed else None
    tables: dict[str, Table] = {}
    figures: dict[str, Any] = {}
    figure_paths: dict[str, str] = {}

    def add(table: Table, figure: Any = None) -> None:
        table.name = _safe(table.name)
        tables[table.name] = table
        if figure is not None:
            figures[table.name] = figure
            figure_paths[table.name] = f"figures/{table.name}.png"

    summary = summary_table(breakdowns, latencies)
    asked = {name: sorted({f"{r.prompt} ({r.prompt_style})" for r in results}) for name, results in runs.items()}
    listed = "; ".join(f"{name}: {', '.join(prompts)}" for name, prompts in asked.items())
    summary.note += f" Prompts asked (names in train.protocol.PROMPTS): {listed}."
    add(summary)
    add(paper_table(breakdowns, "modality", reference))
    add(paper_table(breakdowns, "question_type", reference))
    for axis, runs_by_group in (matrices or {}).items():
        if runs_by_group:
            matrix = cross_matrix(runs_by_group, axis)
            table = matrix_table(matrix)
            values = [[pct(matrix.accuracy(r, c)) for c in matrix.columns] for r in matrix.rows]
            label = "modality" if axis == "modality" else "question type"
            title = table.title.split(":")[0]
            add(table, heatmap(values, matrix.rows, matrix.columns, title, False, "trained on", f"test {label}"))
    comparisons = []
    for base, new in compare:
        comparison = compare_runs(runs[base], runs[new], base, new)
        comparisons.append(comparison)
        table = comparison_table(comparison)
        modalities, question_types = list(comparison.by_modality), list(comparison.by_question_type)
        deltas = [[pct(comparison.by_cell[(m, q)].delta) for q in question_types] for m in modalities]
        add(
            table,
            heatmap(deltas, modalities, question_types, f"{new} − {base} (pp)", True, "modality", "question type")
            if modalities and question_types
            else None,
        )
    calibration = calibration_table(runs)
    if calibration is not None:
        add(calibration)
    for name, results in runs.items():
        reliance = reliance_table(name, results)
        if reliance is not None:
            add(reliance)
    for name, b in breakdowns.items():
        add(detail_table(name, b, "modality"))
        add(detail_table(name, b, "question_type"))
        grid = grid_table(name, b)
        values = [[pct(b.by_cell[(m, q)].accuracy) for q in b.by_question_type] for m in b.by_modality]
        add(
            grid,
            heatmap(
                values,
                list(b.by_modality),
                list(b.by_question_type),
                f"{name}: accuracy (%)",
                False,
                "modality",
                "question type",
            ),
        )
    summary = {
        "title": title,
        "tiny_random": tiny_random,
        "ci_method": "Wilson score interval, 95%",
        "runs": {name: b.to_json() for name, b in breakdowns.items()},
        "comparisons": [c.to_json() for c in comparisons],
        "reference": None
        if reference is None
        else {"source": reference.get("paper"), "status": reference.get("status")},
        "figures": figure_paths,
    }
    if matrices:
        summary["matrices"] = {axis: cross_matrix(r, axis).to_json() for axis, r in matrices.items() if r}
    return Report(tables=tables, figures=figures, summary=summary, title=title)
