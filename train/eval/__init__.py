"""Evaluation: accuracy per modality and question type, the paper's tables, matrices and comparisons.

- :mod:`train.eval.api`: ``evaluate(model, processor, samples, ...)`` and ``report(results, ...)``, the
  Python API the app's Evaluate tab and the benchmarks call.
- :mod:`train.eval.cli`: ``medr1-eval`` (runs, resume, reports from results files).
- :mod:`train.eval.generate`: batched generation (HF ``generate`` or vLLM) and scoring.
- :mod:`train.eval.results`: the per-question results file, which is also the resume point.
- :mod:`train.eval.metrics` and :mod:`train.eval.report`: statistics, tables and heatmaps.
- :mod:`train.eval.synthetic`: a seeded dataset covering all 8 x 5 cells, for offline checks.
"""

from __future__ import annotations

from train.eval.api import balanced_subset, evaluate, report, unique_ids
from train.eval.generate import EvalSettings
from train.eval.report import Report
from train.eval.results import QuestionResult, read_results

__all__ = [
    "EvalSettings",
    "QuestionResult",
    "Report",
    "balanced_subset",
    "evaluate",
    "read_results",
    "report",
    "unique_ids",
]
