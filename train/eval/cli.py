"""``medr1-eval``: the paper's tables for any model or adapter, from one command.

Command line (``medr1-eval --help`` for every option; the data flags are ``medr1-train``'s own)::

    medr1-eval --model Qwen/Qwen2-VL-2B-Instruct --adapter out/grpo-ct --with_base \\
        --dataset_path omnimedvqa/ --split test --test_fraction 0.2 --output_dir eval/ct
    medr1-eval --model Qwen/Qwen2-VL-2B-Instruct --dataset_path test.jsonl --checkpoints_only \\
        --checkpoint CT=out/grpo-ct MRI=out/grpo-mri ...                   # cross-modality matrix
    medr1-eval --config eval.yaml                                      # the same keys as a YAML file
    medr1-eval report eval/ct                                          # rebuild the report offline
    medr1-eval compare eval/base/runs/base eval/ct/runs/grpo-ct --output_dir eval/diff

Options are dataclasses parsed by ``TrlParser``, like training's: :class:`~train.config.DataArguments`
(shared with ``medr1-train``, so a held-out split is named with the flags that made it) and
:class:`EvalArguments`. Dashes and underscores both work (``--test-fraction``); the flags of earlier
versions (``--data``, ``--format``, ``-o``) still work and print a one-line note.

Every run writes ``OUTPUT_DIR/runs/NAME/results.jsonl`` as batches finish; running the same command
again resumes where it stopped. The report (``report.md``, ``summary.json``, ``tables/*.csv``,
``figures/*.png``) is rebuilt from those files at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from train.config import DataArguments
from train.data import (
    MODALITIES,
    QUESTION_TYPES,
    DataError,
    LoadResult,
    Sample,
    load_and_split,
    normalise_modality,
    normalise_question_type,
    select,
)
from train.eval.api import balanced_subset, evaluate, report, unique_ids
from train.eval.generate import BACKENDS, EvalSettings, choose_backend
from train.eval.report import REFERENCE_PATH, Report
from train.eval.results import (
    RESULTS_FILE,
    QuestionResult,
    ResultsError,
    check_run_config,
    finished_results,
    read_results,
)
from train.eval.throughput import DEFAULT_BATCH_SIZE, largest_batch_size, probe_key, time_estimate
from train.generation import use_fast_path
from train.model_io import trained_prompt
from train.protocol import DEFAULT_PROMPT

logger = logging.getLogger(__name__)

PLAN_FILE = "eval.json"
# Flags of earlier medr1-eval versions -> today's (shared with medr1-train). Dash spellings of today's
# flags (--image-root, --test-fraction...) are accepted by the parser itself and need no entry here.
RENAMED_FLAGS = {"--data": "--dataset_path", "--format": "--dataset_format", "-o": "--output_dir"}


@dataclass
class EvalArguments:
    """What to evaluate, how to decode, and where the report goes (the data: ``DataArguments``)."""

    output_dir: str = field(metadata={"help": "Folder for results, tables and figures (resumed when run again)."})
    model: str | None = field(default=None, metadata={"help": "Hub id or local folder of the base model."})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter folder to merge onto --model."})
    name: str | None = field(
        default=None, metadata={"help": "Name of this run in tables (default: the adapter's or model's folder name)."}
    )
    with_base: bool = field(default=False, metadata={"help": "Also evaluate --model alone and compare."})
    checkpoint: list[str] = field(
        default_factory=list,
        metadata={"help": "LABEL=PATH checkpoints (adapter or model) trained on LABEL, a modality or question type."},
    )
    checkpoints_only: bool = field(default=False, metadata={"help": "Evaluate only the --checkpoint models."})
    matrix_axis: str = field(default="auto", metadata={"help": "auto, modality or question_type."})
    compare_to: str | None = field(
        default=None, metadata={"help": "Another run's folder or results.jsonl to compare against (as base)."}
    )
    split: str = field(
        default="all", metadata={"help": "all, test or train: the side of --test_fraction's image-disjoint split."}
    )
    modalities: list[str] | None = field(default=None, metadata={"help": "Evaluate only these modalities."})
    question_types: list[str] | None = field(default=None, metadata={"help": "Evaluate only these question types."})
    on_missing_images: str = field(
        default="error", metadata={"help": "error (stop and list them) or skip (evaluate the others)."}
    )
    batch_size: str = field(
        default="8",
        metadata={
            "help": "Questions per generate call, or 'auto': the largest batch that fits on this GPU (probed "
            "once per model and device, then remembered; 8 on the CPU)."
        },
    )
    fast_generation: str = field(
        default="off",
        metadata={
            "help": "Static KV cache whose decode step transformers compiles: auto (on CUDA), on, off. Same "
            "answers; falls back once if compiling fails. Off by default until measured on a GPU here."
        },
    )
    option_probabilities: bool = field(
        default=False,
        metadata={
            "help": "Read each answer's option preference at its letter (one forward pass per question) and "
            "report calibration (expected calibration error) beside accuracy."
        },
    )
    image_reliance: bool = field(
        default=False,
        metadata={
            "help": "Ask each question again on grey pictures of the same size and report, per modality and "
            "question type, the answers that change and the preference drop (one more answer per question; "
            "implies --option_probabilities)."
        },
    )
    max_new_tokens: int | None = field(default=None, metadata={"help": "Default: 512 (think), 32 (no_think)."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy (default)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling (with temperature > 0)."})
    seed: int = field(default=0, metadata={"help": "Seed of sampling and of --max_samples' subset."})
    backend: str = field(default="auto", metadata={"help": "auto, hf or vllm."})
    device: str | None = field(default=None, metadata={"help": "cuda, cuda:1, cpu (default: cuda when available)."})
    dtype: str | None = field(
        default=None, metadata={"help": "bfloat16, float16, float32 (default: bf16 on GPU, float32 on CPU)."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Discard earlier results instead of resuming."})
    reference: str | None = field(
        default=None, metadata={"help": "Reference numbers JSON, or 'none' (default: Med-R1's published numbers)."}
    )
    no_progress: bool = field(default=False, metadata={"help": "No progress bar."})

    def __post_init__(self) -> None:
        choices = {
            "split": ("all", "test", "train"),
            "matrix_axis": ("auto", "modality", "question_type"),
            "on_missing_images": ("error", "skip"),
            "backend": BACKENDS,
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"--{key} must be one of {', '.join(allowed)}, not {getattr(self, key)!r}.")
        self.batch_size = str(self.batch_size)
        if self.batch_size != "auto" and not (self.batch_size.isdigit() and int(self.batch_size) >= 1):
            raise ValueError(f"--batch_size must be a positive number or 'auto', not {self.batch_size!r}.")
        use_fast_path(self.fast_generation, "cpu")


def make_parser(prog: str = "medr1-eval"):
    from trl import TrlParser

    return TrlParser((DataArguments, EvalArguments), prog=prog)


def modernise_argv(argv: Sequence[str], warn: Callable[[str], None] = print) -> list[str]:
    """Old flag spellings to today's (one note each), and repeated ``--checkpoint`` merged into one list."""
    out: list[str] = []
    checkpoints: list[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        flag, eq, value = item.partition("=") if item.startswith("--") else (item, "", "")
        if flag in RENAMED_FLAGS:
            warn(f"medr1-eval: {flag} is now {RENAMED_FLAGS[flag]} (the same flag as medr1-train); {flag} still works.")
            flag = RENAMED_FLAGS[flag]
        if flag == "--checkpoint":
            if eq:
                checkpoints.append(value)
            index += 1
            while index < len(items) and not items[index].startswith("-"):
                checkpoints.append(items[index])
                index += 1
            continue
        out.append(flag + eq + value)
        index += 1
    return out + (["--checkpoint", *checkpoints] if checkpoints else [])


# --------------------------------------------------------------------------------------------------
# Data


def load_eval_samples(args: EvalArguments, data: DataArguments) -> tuple[list[Sample], LoadResult]:
    """Load, check, split, filter and subsample the evaluation questions, as training splits them."""
    if args.split != "all" and not 0 < data.test_fraction < 1:
        raise DataError(f"--split {args.split} needs --test_fraction between 0 and 1 (the one used in training).")
    loaded, train, test = load_and_split(dataclasses.replace(data, on_bad_record="skip"))
    missing = [p for p in loaded.problems if p.reason.startswith("image not found")]
    if missing and args.on_missing_images == "error":
        listed = "\n".join(
            f"  {p.reason.removeprefix('image not found: ')} (record {p.record_id})" for p in missing[:10]
        )
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(
            f"{len(missing)} of {len(loaded.samples) + len(loaded.problems)} questions point to images that do not "
            f"exist:\n{listed}{more}\n"
            "Relative image paths start at the dataset file's folder, or at --image_root if given. Fix the path, "
            "or pass --on_missing_images skip to evaluate the others (the report then says how many were left out)."
        )
    others = [p for p in loaded.problems if not p.reason.startswith("image not found")]
    if others:
        logger.warning("%d record(s) could not be used and were left out (first: %s).", len(others), others[0])
    chosen = {"all": loaded.samples, "train": train, "test": test}[args.split]
    samples = [s for s in chosen if s.options]
    if len(samples) < len(chosen):
        logger.warning(
            "%d free-text question(s) (no options) left out: accuracy is scored on multiple choice only.",
            len(chosen) - len(samples),
        )
    samples = select(samples, args.modalities, args.question_types)
    if data.max_samples is not None:
        samples = balanced_subset(samples, data.max_samples, args.seed)
    if not samples:
        raise DataError("No questions left to evaluate after --split/--modalities/--question_types.")
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
    prompt: str = "medr1"
    """Prompt text's name: --prompt, else the one the checkpoint's medr1_card.json records, else medr1."""

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
        f"types ({', '.join(QUESTION_TYPES)}); pass --matrix_axis to say which they are."
    )


def plan_runs(args: EvalArguments, data: DataArguments) -> tuple[list[RunSpec], list[tuple[str, str]], str | None]:
    """Which models run with which prompt, which pairs are compared, and the cross-matrix axis."""
    from train.model_io import adapter_base

    model = args.model or (adapter_base(args.adapter) if args.adapter else None)
    if not model:
        raise ValueError("Pass --model (a hub id or local folder); with --adapter alone, its base must be recorded.")
    styles = ["think", "no_think"] if data.prompt_style == "both" else [data.prompt_style]

    def named(name: str, style: str) -> str:
        return name if len(styles) == 1 else f"{name}-{style}"

    def prompt_for(*paths: str | None) -> str:
        """--prompt when given, else the prompt the (first local) checkpoint was trained with, else medr1."""
        if data.prompt:
            return data.prompt
        for path in paths:
            if path and Path(path).is_dir():
                return trained_prompt(path)[0] or DEFAULT_PROMPT
        return DEFAULT_PROMPT

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
                runs.append(RunSpec(named("base", style), model, None, style, prompt=prompt_for(model)))
                compare.append((named("base", style), main_name))
            runs.append(RunSpec(main_name, model, args.adapter, style, prompt=prompt_for(args.adapter, model)))
        for label, path in checkpoints:
            trained_on = normalise_modality(label) if axis == "modality" else normalise_question_type(label)
            run_model, adapter = (model, path) if _is_adapter(path) else (path, None)
            spec = RunSpec(named(trained_on, style), run_model, adapter, style, trained_on, prompt_for(path))
            runs.append(spec)
    if len({r.name for r in runs}) != len(runs):
        raise ValueError(f"Two runs would share a name ({[r.name for r in runs]}): give --name or distinct labels.")
    return runs, compare, axis


def _settings(args: EvalArguments, data: DataArguments, style: str, prompt: str) -> EvalSettings:
    return EvalSettings(
        prompt_style=style,
        prompt=prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=DEFAULT_BATCH_SIZE if args.batch_size == "auto" else int(args.batch_size),
        fast_generation=args.fast_generation,
        option_probabilities=args.option_probabilities or args.image_reliance,
        image_reliance=args.image_reliance,
        max_pixels=data.max_pixels,
        min_pixels=data.min_pixels,
        image_size=data.image_size,
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


def _time_estimate_after_first_batch(
    name: str, update: Callable[[int, int], None], quiet_below_s: float = 120.0
) -> Callable[[int, int], None]:
    """``update``, plus one line after the first batch: how long the rest will take (when over 2 minutes)."""
    state: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        update(done, total)
        now = time.perf_counter()
        if "start" not in state:
            state.update(start=now, initial=done)
            return
        if "told" in state or done <= state["initial"]:
            return
        state["told"] = 1.0
        seconds, questions = now - state["start"], done - state["initial"]
        if seconds / questions * (total - done) >= quiet_below_s:
            print(time_estimate(total, done, int(questions), seconds, name), flush=True)

    return progress


def auto_batch_size(model: Any, processor: Any, samples: Sequence[Sample], settings: Any, device: str, adapter=None):
    """``--batch_size auto``: probe worst-case batches of the longest questions (see ``train.eval.throughput``)."""
    from train.eval.generate import HFGenerator, chat_text, plan_batches

    probe_settings = dataclasses.replace(settings, batch_size=len(samples))
    longest = plan_batches(list(samples), processor, probe_settings)[0]
    bounds = settings.bounds(processor)
    generator = HFGenerator(model, processor, settings)

    def try_batch(size: int) -> None:
        chosen = (longest * (size // len(longest) + 1))[:size]
        texts = [chat_text(processor, s, settings.prompt_style, settings.prompt) for s in chosen]
        images = [s.picture(bounds) for s in chosen]
        generator.generate(texts, images, min_new_tokens=settings.max_new_tokens)

    key = probe_key(model, device, settings, adapter)
    return largest_batch_size(try_batch, key, device, limit=len(samples))


def execute_run(
    spec: RunSpec, samples: Sequence[Sample], args: EvalArguments, data: DataArguments, output_dir: Path
) -> list:
    """Load one model, evaluate it (resuming from its results file) and return its results."""
    import torch

    from train.model_io import load_for_inference, load_processor

    settings = _settings(args, data, spec.prompt_style, spec.prompt)
    run_dir = output_dir / spec.directory
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    backend = choose_backend(args.backend, device)
    config = {
        "name": spec.name,
        "model": spec.model,
        "adapter": spec.adapter,
        "trained_on": spec.trained_on,
        **dataclasses.asdict(settings),
        "data": [str(d) for d in data.dataset_path],
        "split": args.split,
        "test_fraction": data.test_fraction,
        "split_seed": data.split_seed,
        "frame": data.frame,
        "window": data.window,
        "questions": len(samples),
        # Recorded, not enforced on resume: they change rounding, not the experiment.
        "backend": backend,
        "device": device,
        "dtype": args.dtype,
    }
    resuming = check_run_config(run_dir, config, overwrite=args.overwrite)
    results_path = run_dir / RESULTS_FILE
    if resuming:
        have = finished_results(results_path)
        left = sum(s.id not in have for s in samples)
        print(f"[{spec.name}] resuming: {len(samples) - left} of {len(samples)} questions already answered.")
        if left == 0:
            return evaluate(None, None, samples, settings, results_path=results_path)
    processor = load_processor(spec.model, max_pixels=data.max_pixels, min_pixels=data.min_pixels)
    generator = None
    model = None
    if backend == "vllm" and (settings.option_probabilities or settings.image_reliance):
        raise ValueError(
            "--option_probabilities and --image_reliance read the model's logits and attention, which vLLM does "
            "not return: add --backend hf."
        )
    if backend == "vllm":
        from train.eval.generate import VLLMGenerator

        generator = VLLMGenerator(spec.model, processor, settings, adapter=spec.adapter, dtype=args.dtype or "auto")
    else:
        model = load_for_inference(spec.model, adapter=spec.adapter, dtype=args.dtype, device=device)
        if args.batch_size == "auto":
            settings.batch_size = auto_batch_size(model, processor, samples, settings, device, spec.adapter)
    update, close = _progress_bar(spec.name, not args.no_progress)
    announce = _time_estimate_after_first_batch(spec.name, update)
    try:
        return evaluate(
            model, processor, samples, settings, results_path=results_path, progress=announce, generator=generator
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
# Commands


def run_command(argv: Sequence[str]) -> Report:
    data, args = make_parser().parse_args_and_config(args=modernise_argv(argv))
    if not args.model and not args.adapter:
        raise ValueError("Pass --model (and optionally --adapter).")
    if data.prompt_style not in ("think", "no_think", "both"):
        raise ValueError(f"--prompt_style must be think, no_think or both, not {data.prompt_style!r}.")
    samples, loaded = load_eval_samples(args, data)
    runs, compare, axis = plan_runs(args, data)
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
        execute_run(spec, samples, args, data, output_dir)
    rep = write_report(output_dir, args.reference)
    print(rep.tables["summary"].to_markdown())
    print(rep.tables["modality"].to_markdown())
    print(rep.tables["question_type"].to_markdown())
    for name, table in rep.tables.items():
        if name == "calibration" or name.startswith("reliance_"):
            print(table.to_markdown())
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
    parser.add_argument("--output_dir", "--output-dir", "-o", required=True)
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
