"""Per-question evaluation results and their JSON-lines file, which is also the resume point of a run.

One line per question, appended (and flushed) as each batch finishes, so an interrupted run loses at
most the batch in flight; a restart reads the finished ids and skips them. Reports are always computed
from this file, so a resumed run and an uninterrupted one report the same numbers for the same lines.

A ``run.json`` beside the results records the settings that change answers (model, adapter, prompt
style, decoding, image size). Resuming with different settings would mix two experiments in one
table, so it is refused with a message that says which setting differs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class QuestionResult:
    """What the model answered to one question, and how it was scored."""

    id: str
    modality: str | None
    question_type: str | None
    gold: str
    """Gold option letter."""
    answer: str | None
    """Letter parsed from the response (None: no answer block, a hedge, or not an option)."""
    correct: bool
    well_formed: bool
    """The response kept exactly to ``<think>…</think><answer>…</answer>`` (or the no-think layout)."""
    n_options: int
    rationale: str | None
    response: str
    """The raw generated text (special tokens removed)."""
    latency_s: float
    """Wall time of the question's batch divided by the batch size (seconds per question)."""
    batch_size: int
    prompt_style: str
    prompt: str = "medr1"
    """Name of the prompt text asked (``train.protocol.PROMPTS``); results written before names existed: medr1."""
    image: str = ""
    frame: int = 0
    window: str = ""
    """The DICOM window the picture was shown in ("" for the file's default)."""
    series: str = ""
    """Which series of a ZIP/folder (or volume of a 4-D NIfTI) the slice came from ("" = the only one)."""
    issues: tuple[str, ...] = ()
    """Parser's plain-language notes on a malformed or unreadable answer."""
    error: str | None = None
    """Set when the question could not be run (e.g. unreadable image); such results are not scored."""
    option_probabilities: dict[str, float] | None = None
    """``--option_probabilities``: each option letter's preference at the answer position (sums to 1)."""
    reliance: dict[str, Any] | None = None
    """``--image_reliance``: the answer on grey pictures and the chosen letter's preference with and without."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["issues"] = list(self.issues)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QuestionResult:
        names = {f.name for f in fields(cls)}
        missing = {"id", "gold", "correct"} - set(data)
        if missing:
            raise ValueError(f"result line lacks {sorted(missing)}")
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["issues"] = tuple(kwargs.get("issues") or ())
        kwargs.setdefault("modality", None)
        kwargs.setdefault("question_type", None)
        kwargs.setdefault("answer", None)
        kwargs.setdefault("well_formed", False)
        kwargs.setdefault("n_options", 0)
        kwargs.setdefault("rationale", None)
        kwargs.setdefault("response", "")
        kwargs.setdefault("latency_s", 0.0)
        kwargs.setdefault("batch_size", 1)
        kwargs.setdefault("prompt_style", "think")
        return cls(**kwargs)


class ResultsError(ValueError):
    """A results file or run folder that cannot be used as asked; the message says what to do."""


def read_results(path: str | Path) -> list[QuestionResult]:
    """All results in a JSONL file, in file order; a torn last line (killed mid-write) is ignored.

    A question id that appears twice keeps its last line (a re-run of an errored question).
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"No results file at {path}.")
    lines = path.read_text(encoding="utf-8").splitlines()
    by_id: dict[str, QuestionResult] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            result = QuestionResult.from_json(json.loads(line))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            if number == len(lines):
                logger.warning("%s: ignoring an incomplete last line (the run was interrupted mid-write).", path)
                continue
            raise ResultsError(f"{path}, line {number}: not a result line ({exc}).") from exc
        by_id.pop(result.id, None)
        by_id[result.id] = result
    return list(by_id.values())


def append_results(path: str | Path, results: Iterable[QuestionResult]) -> None:
    """Append results and flush them to disk, so a crash right after loses nothing written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in results)
    _drop_torn_line(path)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _drop_torn_line(path: Path) -> None:
    """Cut a partial last line (a run killed mid-write) so that new lines do not land after garbage."""
    if not path.is_file() or not path.stat().st_size:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    logger.warning("%s: dropping an incomplete last line left by an interrupted run.", path)
    with path.open("r+b") as handle:
        handle.truncate(keep)


def finished_results(path: str | Path) -> dict[str, QuestionResult]:
    """Questions already answered in ``path``, by id (errored ones left out, so a resume retries them)."""
    path = Path(path)
    if not path.is_file():
        return {}
    return {r.id: r for r in read_results(path) if not r.error}


# Settings that change the answers: resuming under different values would mix experiments.
RUN_KEYS = (
    "model",
    "adapter",
    "prompt_style",
    "prompt",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "max_pixels",
    "min_pixels",
    "image_size",
)

# What a run.json written before a key existed meant by leaving it out.
RUN_DEFAULTS = {"prompt": "medr1"}


def check_run_config(run_dir: str | Path, config: Mapping[str, Any], overwrite: bool = False) -> bool:
    """Write ``run.json``, or check it matches a previous run in the same folder.

    Returns True when earlier results exist and will be resumed. ``overwrite`` discards them.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_file, results_file = run_dir / RUN_FILE, run_dir / RESULTS_FILE
    if overwrite:
        results_file.unlink(missing_ok=True)
        run_file.unlink(missing_ok=True)
    resuming = results_file.is_file() and results_file.stat().st_size > 0
    if resuming and run_file.is_file():
        previous = json.loads(run_file.read_text())
        changed = [
            f"{key}: {previous.get(key, RUN_DEFAULTS.get(key))!r} before, {config.get(key)!r} now"
            for key in RUN_KEYS
            if key in config and previous.get(key, RUN_DEFAULTS.get(key)) != config.get(key)
        ]
        if changed:
            raise ResultsError(
                f"{run_dir} holds results made with other settings ({'; '.join(changed)}). Resuming would mix two "
                "experiments: choose another --output-dir, or pass --overwrite to start again."
            )
    run_file.write_text(json.dumps(dict(config), indent=2, default=str) + "\n")
    return resuming
