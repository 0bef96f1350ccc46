"""``medr1-eval``: the paper's tables for any model or adapter, from one command; and the Python API behind it.

Command line (``medr1-eval --help`` for every option)::

    medr1-eval --model Qwen/Qwen2-VL-2B-Instruct --adapter out/grpo-ct --with-base \\
        --data omnimedvqa/ --split test --test-fraction 0.2 --output-dir eval/ct
    medr1-eval --model Qwen/Qwen2-VL-2B-Instruct --data test.jsonl --checkpoints-only \\
        --checkpoint CT=out/grpo-ct --checkpoint MRI=out/grpo-mri ...      # cross-modality matrix
    medr1-eval report eval/ct                                          # rebuild the report offline
    medr1-eval compare eval/base/runs/base eval/ct/runs/grpo-ct --output-dir eval/diff

Every run writes ``OUTPUT_DIR/runs/NAME/results.jsonl`` as batches finish; running the same command
again resumes where it stopped. The report (``report.md``, ``summary.json``, ``tables/*.csv``,
``figures/*.png``) is rebuilt from those files at the end.

Python API (what the app's Evaluate section calls)::

    results = evaluate(model, processor, samples, prompt_style="think", batch_size=8,
                       results_path=None, progress=lambda done, total: ..., should_stop=None)
    rep = report(results)                # or report({"base": r0, "tuned": r1}, compare=[("base", "tuned")])
    rep.tables["modality"].to_markdown(); rep.figures["run_grid"]; rep.write("out/")
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.data import (
    MODALITIES,
    QUESTION_TYPES,
    DataError,
    LoadResult,
    Sample,
    dataset_files,
    load_many,
    normalise_modality,
    normalise_question_type,
    select,
    split_samples,
)
from train.eval_generate import (
    GenerationSettings,
    Generator,
    HFGenerator,
    choose_backend,
    plan_batches,
    run_batches,
)
from train.eval_report import REFERENCE_PATH, Report, build_report, load_reference
from train.eval_results import (
    RESULTS_FILE,
    QuestionResult,
    ResultsError,
    append_results,
    check_run_config,
    read_results,
)

logger = logging.getLogger(__name__)

PLAN_FILE = "eval.json"
_DEFAULT_REFERENCE = object()


# --------------------------------------------------------------------------------------------------
# Python API


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
    settings: GenerationSettings | None = None,
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
        settings = GenerationSettings(**options)
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
    done: dict[str, QuestionResult] = {}
    if results_path is not None and Path(results_path).is_file():
        wanted = {s.id for s in samples}
        done = {r.id: r for r in read_results(results_path) if r.id in wanted and not r.error}
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


# --------------------------------------------------------------------------------------------------
# Data for the command line


def load_eval_samples(args: argparse.Namespace) -> tuple[list[Sample], LoadResult]:
    """Load, check, split, filter and subsample the evaluation questions, as training splits them."""
    files = [f for path in args.data for f in dataset_files(path)]
    loaded = load_many(files, image_root=args.image_root, fmt=args.format, on_error="skip", check_images=True)
    missing = [p for p in loaded.problems if p.reason.startswith("image not found")]
    if missing and args.on_missing_images == "error":
        listed = "\n".join(
            f"  {p.reason.removeprefix('image not found: ')} (record {p.record_id})" for p in missing[:10]
        )
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(
            f"{len(missing)} of {len(loaded.samples) + len(loaded.problems)} questions point to images that do not "
            f"exist:\n{listed}{more}\n"
            "Relative image paths start at the dataset file's folder, or at --image-root if given. Fix the path, "
            "or pass --on-missing-images skip to evaluate the others (the report then says how many were left out)."
        )
    others = [p for p in loaded.problems if not p.reason.startswith("image not found")]
    if others:
        logger.warning("%d record(s) could not be used and were left out (first: %s).", len(others), others[0])
    samples = [s for s in loaded.samples if s.options]
    if len(samples) < len(loaded.samples):
        logger.warning(
            "%d free-text question(s) (no options) left out: accuracy is scored on multiple choice only.",
            len(loaded.samples) - len(samples),
        )
    if args.split != "all":
        if not 0 < args.test_fraction < 1:
            raise DataError(f"--split {args.split} needs --test-fraction between 0 and 1 (the one used in training).")
        train, test = split_samples(samples, args.test_fraction, args.split_seed)
        samples = test if args.split == "test" else train
    samples = select(samples, args.modalities, args.question_types)
    if args.max_samples is not None:
        samples = balanced_subset(samples, args.max_samples, args.seed)
    if not samples:
        raise DataError("No questions left to evaluate after --split/--modalities/--question-types.")
    return unique_ids(samples), loaded


# --------------------------------------------------------------------------------------------------
# Runs


@dataclass
class RunSpec:
    """One model to evaluate: a name, the weights, and (for matrices) the group it was trained on."""

    name: str
    model: str
    adapter: str | None
    prompt_style: str
    trained_on: str | None = None

    @property
    def directory(self) -> str:
        return f"runs/{self.name}"


def _is_adapter(path: str) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def _label(path: str) -> str:
    return Path(path.rstrip("/")).name or path


def matrix_axis(labels: Sequence[str], requested: str) -> str:
    """'modality' when every checkpoint label names a modality, 'question_type' when each names a type."""
    if requested != "auto":
        return requested
    if all(normalise_modality(label) in MODALITIES for label in labels):
        return "modality"
    if all(normalise_question_type(label) in QUESTION_TYPES for label in labels):
        return "question_type"
    raise ValueError(
        f"Checkpoint labels {list(labels)} are neither all modalities ({', '.join(MODALITIES)}) nor all question "
        f"types ({', '.join(QUESTION_TYPES)}); pass --matrix-axis to say which they are."
    )


def plan_runs(args: argparse.Namespace) -> tuple[list[RunSpec], list[tuple[str, str]], str | None]:
    """Which models run with which prompt, which pairs are compared, and the cross-matrix axis."""
    from train.model_io import adapter_base

    model = args.model or (adapter_base(args.adapter) if args.adapter else None)
    if not model:
        raise ValueError("Pass --model (a hub id or local folder); with --adapter alone, its base must be recorded.")
    styles = ["think", "no_think"] if args.prompt_style == "both" else [args.prompt_style]

    def named(name: str, style: str) -> str:
        return name if len(styles) == 1 else f"{name}-{style}"

    checkpoints: list[tuple[str, str]] = []
    for item in args.checkpoint or []:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--checkpoint {item!r}: write LABEL=PATH, e.g. CT=out/grpo-ct.")
        checkpoints.append((label.strip(), path.strip()))
    axis = matrix_axis([label for label, _ in checkpoints], args.matrix_axis) if checkpoints else None
    runs: list[RunSpec] = []
    compare: list[tuple[str, str]] = []
    for style in styles:
        main_name = named(args.name or _label(args.adapter or model), style)
        if not args.checkpoints_only:
            if args.with_base and args.adapter:
                runs.append(RunSpec(named("base", style), model, None, style))
                compare.append((named("base", style), main_name))
            runs.append(RunSpec(main_name, model, args.adapter, style))
        for label, path in checkpoints:
            trained_on = normalise_modality(label) if axis == "modality" else normalise_question_type(label)
            run_model, adapter = (model, path) if _is_adapter(path) else (path, None)
            runs.append(RunSpec(named(trained_on, style), run_model, adapter, style, trained_on=trained_on))
    if len({r.name for r in runs}) != len(runs):
        raise ValueError(f"Two runs would share a name ({[r.name for r in runs]}): give --name or distinct labels.")
    return runs, compare, axis


def _settings(args: argparse.Namespace, style: str) -> GenerationSettings:
    return GenerationSettings(
        prompt_style=style,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
        max_pixels=args.max_pixels,
        min_pixels=args.min_pixels,
        image_size=args.image_size,
    )


def _progress_bar(name: str, enabled: bool) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar (questions done, rate, ETA) fed by ``evaluate``'s progress callback."""
    from tqdm.auto import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, desc=name, unit="q", disable=not enabled, dynamic_ncols=True)
        else:
            bar.update(done - bar.n)

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


def execute_run(spec: RunSpec, samples: Sequence[Sample], args: argparse.Namespace, output_dir: Path) -> list:
    """Load one model, evaluate it (resuming from its results file) and return its results."""
    import torch

    from train.model_io import load_for_inference, load_processor

    settings = _settings(args, spec.prompt_style)
    run_dir = output_dir / spec.directory
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    backend = choose_backend(args.backend, device)
    config = {
        "name": spec.name,
        "model": spec.model,
        "adapter": spec.adapter,
        "trained_on": spec.trained_on,
        **dataclasses.asdict(settings),
        "data": [str(d) for d in args.data],
        "split": args.split,
        "test_fraction": args.test_fraction,
        "split_seed": args.split_seed,
        "questions": len(samples),
        # Recorded, not enforced on resume: they change rounding, not the experiment.
        "backend": backend,
        "device": device,
        "dtype": args.dtype,
    }
    resuming = check_run_config(run_dir, config, overwrite=args.overwrite)
    results_path = run_dir / RESULTS_FILE
    if resuming:
        have = {r.id for r in read_results(results_path) if not r.error}
        left = sum(s.id not in have for s in samples)
        print(f"[{spec.name}] resuming: {len(samples) - left} of {len(samples)} questions already answered.")
        if left == 0:
            return evaluate(None, None, samples, settings, results_path=results_path)
    processor = load_processor(spec.model, max_pixels=args.max_pixels, min_pixels=args.min_pixels)
    generator = None
    model = None
    if backend == "vllm":
        from train.eval_generate import VLLMGenerator

        generator = VLLMGenerator(spec.model, processor, settings, adapter=spec.adapter, dtype=args.dtype or "auto")
    else:
        model = load_for_inference(spec.model, adapter=spec.adapter, dtype=args.dtype, device=device)
    update, close = _progress_bar(spec.name, not args.no_progress)
    try:
        return evaluate(
            model, processor, samples, settings, results_path=results_path, progress=update, generator=generator
        )
    finally:
        close()
        if generator is not None:
            generator.close()


def _load_run_results(path: str | Path) -> tuple[str, list[QuestionResult]]:
    """A run folder (with results.jsonl) or a results file, as (name, results)."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    name = path.name if path.is_dir() else path.parent.name
    return name, read_results(file)


def write_report(output_dir: Path, reference: str | None) -> Report:
    """Rebuild the report of an output folder from its plan (eval.json) and its results files."""
    plan_path = output_dir / PLAN_FILE
    if not plan_path.is_file():
        raise ResultsError(f"{output_dir} has no {PLAN_FILE}: it is not a medr1-eval output folder.")
    plan = json.loads(plan_path.read_text())
    ids = set(plan.get("question_ids") or [])
    runs: dict[str, list[QuestionResult]] = {}
    for run in plan["runs"]:
        file = output_dir / run["directory"] / RESULTS_FILE
        if file.is_file():
            results = read_results(file)
            runs[run["name"]] = [r for r in results if not ids or r.id in ids]
    for name, path in plan.get("external", {}).items():
        runs[name] = _load_run_results(path)[1]
    if not runs:
        raise ResultsError(f"No results in {output_dir}/runs yet: run the evaluation first.")
    matrices: dict[str, dict[str, list[QuestionResult]]] = {}
    if plan.get("matrix_axis"):
        matrices[plan["matrix_axis"]] = {
            run["trained_on"] + ("" if len(plan["styles"]) == 1 else f" ({run['prompt_style']})"): runs[run["name"]]
            for run in plan["runs"]
            if run.get("trained_on") and run["name"] in runs
        }
    compare = [(a, b) for a, b in plan.get("compare", []) if a in runs and b in runs]
    rep = report(
        runs,
        reference=None if reference == "none" else (reference or REFERENCE_PATH),
        compare=compare,
        matrices=matrices or None,
        title=plan.get("title", "medr1 evaluation"),
        tiny_random=plan.get("tiny_random", False),
    )
    rep.write(output_dir)
    return rep


# --------------------------------------------------------------------------------------------------
# Command line


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medr1-eval",
        description=(
            "Evaluate a VLM (optionally with a LoRA adapter) on medical multiple-choice questions: accuracy per "
            "modality and question type with 95%% CIs, format compliance, cross-modality/cross-task matrices and "
            "base-vs-fine-tuned comparison. Also: 'medr1-eval report OUT_DIR', 'medr1-eval compare BASE NEW -o OUT'."
        ),
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="Hub id or local folder of the base model.")
    model.add_argument("--adapter", help="LoRA adapter folder to merge onto --model.")
    model.add_argument("--name", help="Name of this run in tables (default: the adapter's or model's folder name).")
    model.add_argument("--with-base", action="store_true", help="Also evaluate --model alone and compare.")
    model.add_argument(
        "--checkpoint",
        action="append",
        metavar="LABEL=PATH",
        help="A checkpoint (adapter or model) trained on LABEL (a modality or question type); repeat for the matrix.",
    )
    model.add_argument("--checkpoints-only", action="store_true", help="Evaluate only the --checkpoint models.")
    model.add_argument("--matrix-axis", choices=("auto", "modality", "question_type"), default="auto")
    model.add_argument("--compare-to", help="Another run's folder or results.jsonl to compare against (as base).")
    data = parser.add_argument_group("data")
    data.add_argument("--data", nargs="+", required=True, help="Dataset file(s) or folder(s).")
    data.add_argument("--format", default="auto", choices=("auto", "jsonl", "omnimedvqa", "medr1"))
    data.add_argument("--image-root", help="Folder relative image paths start from (default: each file's folder).")
    data.add_argument("--split", choices=("all", "test", "train"), default="all")
    data.add_argument("--test-fraction", type=float, default=0.0, help="As in training (an image is on one side).")
    data.add_argument("--split-seed", type=int, default=42)
    data.add_argument("--modalities", nargs="+")
    data.add_argument("--question-types", nargs="+")
    data.add_argument("--max-samples", type=int, help="At most N questions, spread evenly over the cells.")
    data.add_argument("--on-missing-images", choices=("error", "skip"), default="error")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--prompt-style", choices=("think", "no_think", "both"), default="think")
    gen.add_argument("--batch-size", type=int, default=8)
    gen.add_argument("--max-new-tokens", type=int, help="Default: 512 (think), 32 (no_think).")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default).")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--image-size", type=int, help="Resize images to a square (Med-R1: 384).")
    gen.add_argument("--max-pixels", type=int)
    gen.add_argument("--min-pixels", type=int)
    gen.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto")
    gen.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available).")
    gen.add_argument("--dtype", help="bfloat16, float16, float32 (default: bf16 on GPU, float32 on CPU).")
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", "-o", required=True)
    out.add_argument("--overwrite", action="store_true", help="Discard earlier results instead of resuming.")
    out.add_argument("--reference", help="Reference numbers JSON, or 'none' (default: Med-R1's published numbers).")
    out.add_argument("--no-progress", action="store_true")
    return parser


def run_command(argv: Sequence[str]) -> Report:
    args = make_parser().parse_args(argv)
    if not args.model and not args.adapter:
        raise ValueError("Pass --model (and optionally --adapter).")
    samples, loaded = load_eval_samples(args)
    runs, compare, axis = plan_runs(args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    from train.tiny_model import is_tiny_random

    tiny = any(Path(r.model).is_dir() and is_tiny_random(r.model) for r in runs)
    external = {}
    if args.compare_to:
        name, _ = _load_run_results(args.compare_to)
        if name in {r.name for r in runs}:
            name = f"{name} (compared)"
        external[name] = str(Path(args.compare_to).resolve())
        compare += [(name, r.name) for r in runs if r.trained_on is None]
    skipped = len(loaded.problems)
    plan = {
        "title": "medr1 evaluation" + (f" ({skipped} record(s) left out: see the log)" if skipped else ""),
        "runs": [{**dataclasses.asdict(r), "directory": r.directory} for r in runs],
        "styles": sorted({r.prompt_style for r in runs}),
        "compare": compare,
        "matrix_axis": axis,
        "external": external,
        "tiny_random": tiny,
        "question_ids": [s.id for s in samples],
        "left_out_records": [str(p) for p in loaded.problems],
    }
    (output_dir / PLAN_FILE).write_text(json.dumps(plan, indent=2) + "\n")
    print(f"Evaluating {len(runs)} run(s) on {len(samples)} questions ({skipped} record(s) left out).")
    for spec in runs:
        execute_run(spec, samples, args, output_dir)
    rep = write_report(output_dir, args.reference)
    print(rep.tables["summary"].to_markdown())
    print(rep.tables["modality"].to_markdown())
    print(rep.tables["question_type"].to_markdown())
    print(f"Report: {output_dir / 'report.md'}")
    return rep


def report_command(argv: Sequence[str]) -> Report:
    parser = argparse.ArgumentParser(prog="medr1-eval report", description="Rebuild the report of an output folder.")
    parser.add_argument("output_dir")
    parser.add_argument("--reference", help="Reference numbers JSON, or 'none'.")
    args = parser.parse_args(argv)
    rep = write_report(Path(args.output_dir), args.reference)
    print(rep.tables["summary"].to_markdown())
    print(f"Report: {Path(args.output_dir) / 'report.md'}")
    return rep


def compare_command(argv: Sequence[str]) -> Report:
    parser = argparse.ArgumentParser(
        prog="medr1-eval compare", description="Compare two runs on their shared questions (McNemar's exact test)."
    )
    parser.add_argument("base", help="Base run folder or results.jsonl.")
    parser.add_argument("new", help="Fine-tuned run folder or results.jsonl.")
    parser.add_argument("--output-dir", "-o", required=True)
    parser.add_argument("--reference", help="Reference numbers JSON, or 'none'.")
    args = parser.parse_args(argv)
    base_name, base = _load_run_results(args.base)
    new_name, new = _load_run_results(args.new)
    if base_name == new_name:
        base_name, new_name = f"{base_name} (base)", f"{new_name} (new)"
    reference = None if args.reference == "none" else (args.reference or REFERENCE_PATH)
    rep = report({base_name: base, new_name: new}, reference=reference, compare=[(base_name, new_name)])
    rep.write(args.output_dir)
    print(rep.tables[next(n for n in rep.tables if n.startswith("compare_"))].to_markdown())
    print(f"Report: {Path(args.output_dir) / 'report.md'}")
    return rep


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    commands = {"report": report_command, "compare": compare_command}
    try:
        if argv and argv[0] in commands:
            commands[argv[0]](argv[1:])
        else:
            run_command(argv)
    except (DataError, ResultsError, ValueError, RuntimeError, OSError) as exc:
        sys.exit(f"medr1-eval: {exc}")


if __name__ == "__main__":
    main()
