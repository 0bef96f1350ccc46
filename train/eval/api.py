"""The evaluation API: answer questions with a model, score them, and build the paper's tables.

What ``medr1-eval`` (``train.eval.cli``), the app's Evaluate tab and the learning proof call::

    results = evaluate(model, processor, samples, prompt_style="think", batch_size=8,
                       results_path=None, progress=lambda done, total: ..., should_stop=None)
    rep = report(results)                # or report({"base": r0, "tuned": r1}, compare=[("base", "tuned")])
    rep.tables["modality"].to_markdown(); rep.figures["run_grid"]; rep.write("out/")

With ``results_path`` every batch is appended to a JSON-lines file as it finishes, and questions
already in it are not asked again, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from train.data import MODALITIES, QUESTION_TYPES, DataError, Sample
from train.eval.generate import EvalSettings, Generator, HFGenerator, plan_batches, run_batches
from train.eval.report import REFERENCE_PATH, Report, build_report, load_reference
from train.eval.results import QuestionResult, append_results, finished_results

_DEFAULT_REFERENCE = object()


def unique_ids(samples: Sequence[Sample]) -> list[Sample]:
    """Samples whose ids are unique: ids shared across files get the file's name as a prefix.

    Results are matched (resume, base vs fine-tuned) by id, so two questions must never share one.
    """
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.id] = counts.get(s.id, 0) + 1
    fixed = [dataclasses.replace(s, id=f"{Path(s.source).name}:{s.id}") if counts[s.id] > 1 else s for s in samples]
    seen: set[str] = set()
    for s in fixed:
        if s.id in seen:
            raise DataError(f"Question id {s.id!r} appears twice in {s.source}: ids must be unique within a file.")
        seen.add(s.id)
    return fixed


def balanced_subset(samples: Sequence[Sample], limit: int, seed: int = 0) -> list[Sample]:
    """At most ``limit`` questions spread evenly over the (modality, question type) cells.

    A quick evaluation on the first N records of a file would test one modality only. Here each pick
    goes to the cell whose modality and question type have been picked least so far (ties: the paper's
    order), taking a seeded-random question from it, so even 8 questions span the 8 modalities.
    """
    if limit >= len(samples):
        return list(samples)
    cells: dict[tuple[str, str], list[Sample]] = {}
    for s in samples:
        cells.setdefault((s.modality or "", s.question_type or ""), []).append(s)
    for members in cells.values():
        members.sort(key=lambda s: hashlib.sha256(f"{seed}:{s.id}".encode()).hexdigest(), reverse=True)

    def rank(value: str, names: Sequence[str]) -> tuple[int, str]:
        return (names.index(value), "") if value in names else (len(names), value)

    picked_m: dict[str, int] = {}
    picked_q: dict[str, int] = {}
    chosen: list[Sample] = []
    while len(chosen) < limit:
        m, q = min(
            (key for key, members in cells.items() if members),
            key=lambda k: (
                picked_m.get(k[0], 0) + picked_q.get(k[1], 0),
                picked_m.get(k[0], 0),
                rank(k[0], MODALITIES),
                rank(k[1], QUESTION_TYPES),
            ),
        )
        chosen.append(cells[(m, q)].pop())
        picked_m[m] = picked_m.get(m, 0) + 1
        picked_q[q] = picked_q.get(q, 0) + 1
    keep = {id(s) for s in chosen}
    return [s for s in samples if id(s) in keep]


def evaluate(
    model: Any,
    processor: Any,
    samples: Sequence[Sample],
    settings: EvalSettings | None = None,
    results_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    generator: Generator | None = None,
    **options: Any,
) -> list[QuestionResult]:
    """Answer every question with ``model`` and score it; returns results in the order of ``samples``.

    ``settings`` (or keyword ``options`` such as ``prompt_style="no_think"``, ``batch_size=8``,
    ``max_new_tokens=256``, ``temperature=0.0``, ``seed=0``, ``image_size=384``) fix how questions are
    asked. With ``results_path``, results are appended as each batch finishes and questions already in
    the file are not asked again (resume). ``progress(done, total)`` is called after each batch;
    ``should_stop()`` is checked between batches. ``generator`` replaces ``model.generate`` (vLLM).
    """
    if settings is None:
        settings = EvalSettings(**options)
    elif options:
        settings = dataclasses.replace(settings, **options)
    samples = unique_ids(samples)
    if not samples:
        raise DataError("No questions to evaluate: check the dataset path and the filters.")
    free_text = [s.id for s in samples if not s.options]
    if free_text:
        raise DataError(
            f"{len(free_text)} question(s) have no options (e.g. {free_text[0]!r}): accuracy is defined for "
            "multiple-choice questions only. Leave them out (medr1-eval does so itself)."
        )
    wanted = {s.id for s in samples}
    done = {k: r for k, r in finished_results(results_path).items() if k in wanted} if results_path else {}
    todo = [s for s in samples if s.id not in done]
    total, finished = len(samples), len(done)
    if progress is not None:
        progress(finished, total)

    def on_batch(batch: list[QuestionResult]) -> None:
        nonlocal finished
        if results_path is not None:
            append_results(results_path, batch)
        for result in batch:
            done[result.id] = result
        finished += len(batch)
        if progress is not None:
            progress(finished, total)

    if todo:
        generator = generator or HFGenerator(model, processor, settings)
        batches = plan_batches(todo, processor, settings)
        run_batches(generator, processor, batches, settings, on_batch=on_batch, should_stop=should_stop)
    return [done[s.id] for s in samples if s.id in done]


def report(
    results: Sequence[QuestionResult] | Mapping[str, Sequence[QuestionResult]],
    reference: str | Path | Mapping[str, Any] | None = _DEFAULT_REFERENCE,  # type: ignore[assignment]
    compare: Sequence[tuple[str, str]] = (),
    matrices: Mapping[str, Mapping[str, Sequence[QuestionResult]]] | None = None,
    title: str = "medr1 evaluation",
    tiny_random: bool = False,
) -> Report:
    """Tables (Markdown/CSV/JSON) and heatmaps for one run (a list) or several (name → results).

    ``reference``: the published numbers to print beside the runs (default: Med-R1's, from
    ``train/reference/medr1_paper.json``; None for none). ``compare``: (base, new) run-name pairs, each
    giving per-cell deltas and McNemar's exact test. ``matrices``: {'modality' | 'question_type':
    {training group → results}} for the cross-modality / cross-task matrices.
    """
    runs = dict(results) if isinstance(results, Mapping) else {"run": list(results)}
    if reference is _DEFAULT_REFERENCE:
        reference = load_reference(REFERENCE_PATH)
    elif isinstance(reference, (str, Path)):
        reference = load_reference(reference)
    return build_report(
        runs, reference=reference, compare=compare, matrices=matrices, title=title, tiny_random=tiny_random
    )
