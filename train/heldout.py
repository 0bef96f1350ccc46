"""Held-out accuracy before and after a training run: ``medr1-train grpo --heldout_path DATA``.

A rising reward says the model earns more on the questions it trains on; whether it learned anything
that carries over shows only on questions it never saw. With ``--heldout_path``, the run scores those
questions with the kit's evaluation (``train.eval.evaluate``: greedy answers, the prompt and the parser
that ``medr1-eval`` and the rewards use) once before its first step and once after its last, writes
both to ``OUTPUT_DIR/heldout.json`` and adds them to ``metrics.jsonl`` (``"event": "heldout"``), where
the app's Fine-tune tab reads them: the "before" figure appears while the run trains, the "after" one
when it ends. A resumed run keeps the "before" of its first start.

Single process only: under ``accelerate launch`` with several processes the evaluation is skipped (with
a warning), since generating on one rank while the others wait would stall sharded models.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from train.data import Sample

logger = logging.getLogger(__name__)

HELDOUT_FILE = "heldout.json"


def heldout_summary(results: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, format rate, count and accuracy per question type of ``train.eval`` results."""
    n = len(results)
    by_type: dict[str, list[bool]] = {}
    for r in results:
        by_type.setdefault(str(r.question_type), []).append(r.correct)
    return {
        "questions": n,
        "accuracy": sum(r.correct for r in results) / n if n else 0.0,
        "format_rate": sum(r.well_formed for r in results) / n if n else 0.0,
        "by_question_type": {k: sum(v) / len(v) for k, v in sorted(by_type.items())},
    }


def read_heldout(output_dir: str | Path) -> dict[str, Any]:
    """``OUTPUT_DIR/heldout.json`` as written by :class:`HeldOutCallback`; {} when there is none."""
    try:
        data = json.loads((Path(output_dir) / HELDOUT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class HeldOutCallback(TrainerCallback):
    """Score ``samples`` before the first step and after the last; results to ``heldout.json`` and the metrics."""

    def __init__(self, samples: Sequence[Sample], output_dir: str | Path, metrics: Any = None, **eval_options: Any):
        self.samples = list(samples)
        self.output_dir = Path(output_dir)
        self.metrics = metrics
        self.eval_options = eval_options

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step == 0:  # a resumed run keeps the "before" of its first start
            self._score("before", state, model, processing_class, args)

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._score("after", state, model, processing_class, args)

    def _score(self, stage: str, state, model, processor, args) -> None:
        if getattr(args, "world_size", 1) > 1:
            logger.warning("Held-out evaluation skipped: it runs in single-process training only.")
            return
        from train.eval import evaluate

        start = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            results = evaluate(model, processor, self.samples, **self.eval_options)
        finally:
            model.train(was_training)
        summary = {"step": state.global_step, **heldout_summary(results), "seconds": time.perf_counter() - start}
        data = read_heldout(self.output_dir) if stage == "after" else {}
        data[stage] = summary
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / HELDOUT_FILE).write_text(json.dumps(data, indent=2))
        if self.metrics is not None:
            self.metrics.write_event({"event": "heldout", "stage": stage, **summary})
        logger.info(
            "Held-out %s training (step %d): accuracy %.1f %%, format %.1f %% on %d questions (%.1f s).",
            stage,
            state.global_step,
            100 * summary["accuracy"],
            100 * summary["format_rate"],
            summary["questions"],
            summary["seconds"],
        )
