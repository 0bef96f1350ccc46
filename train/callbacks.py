"""Trainer callbacks: a JSON-lines metrics stream for live plots, and a graceful stop on a signal.

The app's Fine-tune tab runs training in a separate process and follows ``metrics.jsonl`` to draw its
curves, so every log event becomes one self-contained JSON line (flushed at once). Stopping with
SIGTERM/SIGINT ends the run at the next step boundary, after which the normal end-of-training save
writes the adapter trained so far.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsFileCallback(TrainerCallback):
    """Append one JSON object per log event to ``path``; on resume, drop lines past the checkpoint.

    Each line holds ``step``, ``epoch``, ``time`` and everything the trainer logged (``loss``,
    ``reward``, ``rewards/<name>/mean``, ``kl``, ``completions/mean_length``...). With
    ``trainer`` set (GRPO), it adds ``samples``: the last few completions with their rewards.
    """

    def __init__(self, path: str | Path, num_samples: int = 4):
        self.path = Path(path)
        self.num_samples = num_samples
        self.trainer: Any = None
        self._start = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            # read_metrics drops a half-written last line left by a killed run.
            kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= state.global_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.write_event({"event": "train_begin", "step": state.global_step, "max_steps": state.max_steps})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, "max_steps": state.max_steps}
        record.update({k: _clean(v) for k, v in logs.items() if isinstance(v, (int, float, str)) or v is None})
        samples = self._samples()
        if samples:
            record["samples"] = samples
        self.write_event(record)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.write_event({"event": "train_end", "step": state.global_step, "max_steps": state.max_steps})

    def _samples(self) -> list[dict[str, Any]]:
        logs = getattr(self.trainer, "_logs", None)
        if not logs or not logs.get("completion"):
            return []
        completions = list(logs["completion"])[-self.num_samples :]
        rewards = {name: list(values)[-len(completions) :] for name, values in logs.get("rewards", {}).items()}
        from train.rewards import completion_text

        return [
            {"completion": completion_text(c), "rewards": {n: _clean(v[i]) for n, v in rewards.items() if i < len(v)}}
            for i, c in enumerate(completions)
        ]

    def write_event(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line, with ``time``: seconds since the callback was made."""
        record["time"] = round(time.time() - self._start, 3)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


class StopOnSignalCallback(TrainerCallback):
    """Turn SIGTERM/SIGINT into a clean stop at the next step, so the final save still runs."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Only the main thread may install handlers (not so inside some test runners' workers).
            with contextlib.suppress(ValueError):
                signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second signal: stop now
            raise KeyboardInterrupt
        logger.warning("Stop requested (signal %d): finishing this step, then saving.", signum)
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_training_stop = True
            control.should_save = True
        return control


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Parse a metrics file, skipping a partly written last line (the writer may be mid-line)."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
