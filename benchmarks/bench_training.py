"""Training speed and memory of medr1's GRPO: seconds per step, samples/s, generation tokens/s, peak memory.

Every measurement runs the kit's real GRPO code (``train.grpo.train``, as ``medr1-train grpo``) for a few
steps on the synthetic task, one configuration per subprocess so that peak memory is that run's own.

* ``--device cpu`` (default): the tiny random Qwen2-VL of ``train.tiny_model``, LoRA and full fine-tuning,
  ``num_generations`` 4 and 8.
* ``--device cuda --random-2b``: a model with **Qwen2-VL-2B-Instruct's architecture and random weights**
  (config values written below; no hub), at Med-R1's image size (384 px, 196 image tokens), for LoRA vs
  full fine-tuning, gradient checkpointing on and off, ``num_generations`` 4 and 8.
* ``--modes lora lora-unmerged``: LoRA sampling with the adapter merged into weight copies (the kit's
  default, ``train.merged_generation``) against PEFT's unmerged adapter, side by side.

A random model rarely emits its end-of-turn token, so every completion runs to ``--max-completion-length``:
generation cost is the worst case for that length, and tokens/s counts the tokens actually generated.

    python benchmarks/bench_training.py                                  # CPU, tiny model
    python benchmarks/bench_training.py --device cuda --random-2b        # GPU matrix (8 runs)
    python benchmarks/bench_training.py --random-2b --shrink             # CPU dry run of the 2B code path

``--against DIR`` measures every configuration also in another checkout (``git worktree add DIR
COMMIT``), alternating the two so that both see the same machine load, and prints the ratio of the
median step times. The issue 19 comparison (full fine-tuning, 4 questions x 4 completions of 32
tokens, beta 0.04, one thread) against the step before that work:

    git worktree add /tmp/before fcc45b7
    python benchmarks/bench_training.py --modes full --num-generations 4 --prompts-per-step 4 \
        --threads 1 --steps 5 --warmup-steps 2 --repeats 5 --against /tmp/before
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Med-R1 trained at max_pixels 401408 on images resized to 384 px: 14 x 14 = 196 image tokens.
MED_R1_MAX_PIXELS, MED_R1_IMAGE_SIZE = 401_408, 384
TINY_MIN_PIXELS, TINY_MAX_PIXELS, TINY_IMAGE_SIZE = 56 * 56, 112 * 112, 112


def build_random_2b(out_dir: Path, shrink: bool = False, seed: int = 0) -> Path:
    """Qwen2-VL-2B-Instruct's architecture with random weights, saved with an offline processor.

    ``shrink``: one text layer and one vision block (see ``random_2b_config``).
    """
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    from benchmarks._qwen2vl_2b import random_2b_config
    from train.model_io import load_processor
    from train.tiny_model import build_tiny_model

    if (out_dir / "config.json").is_file():
        return out_dir
    with tempfile.TemporaryDirectory() as tmp:
        # The tiny model's tokenizer, chat template and processor classes; only its processor is kept.
        processor = load_processor(str(build_tiny_model(Path(tmp) / "tiny", seed=seed)))
    tokenizer = processor.tokenizer
    config = random_2b_config(tokenizer, shrink)
    torch.manual_seed(seed)
    cuda = torch.cuda.is_available()
    # Random init of 2.2B parameters takes minutes on CPU cores and seconds on the GPU.
    with torch.device("cuda" if cuda else "cpu"):
        model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16 if cuda else torch.float32)
    model.config.name_or_path = "medr1-random-qwen2-vl-2b-architecture"
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    processor.image_processor.min_pixels = TINY_MIN_PIXELS
    processor.image_processor.max_pixels = MED_R1_MAX_PIXELS
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def grpo_argv(cfg: dict[str, Any], model_dir: Path, data: Path, out_dir: Path) -> list[str]:
    """The ``medr1-train grpo`` flags of one benchmark configuration."""
    argv = [
        "--model_name_or_path", str(model_dir),
        "--dataset_path", str(data),
        "--output_dir", str(out_dir),
        "--prompt_style", "think",
        "--max_pixels", str(cfg["max_pixels"]),
        "--min_pixels", str(TINY_MIN_PIXELS),
        "--max_steps", str(cfg["warmup_steps"] + cfg["steps"]),
        "--per_device_train_batch_size", str(cfg["prompts_per_step"] * cfg["num_generations"]),
        "--num_generations", str(cfg["num_generations"]),
        "--max_completion_length", str(cfg["max_completion_length"]),
        "--learning_rate", "1e-5" if cfg["mode"] == "full" else "1e-4",
        "--use_peft", "false" if cfg["mode"] == "full" else "true",
        "--merge_lora_for_generation", "false" if cfg["mode"] == "lora-unmerged" else "true",
        "--gradient_checkpointing", "true" if cfg["gradient_checkpointing"] else "false",
        "--prefill_prompts_once", "true" if cfg.get("prefill_once", True) else "false",
        "--score_completion_tokens_only", "true" if cfg.get("score_completion_only", True) else "false",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--report_to", "none",
        "--seed", "0",
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
    ]  # fmt: skip
    if cfg["image_size"]:
        argv += ["--image_size", str(cfg["image_size"])]
    return argv


def run_one(cfg: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this process: GRPO for warm-up + measured steps; returns the figures."""
    import torch

    from train.grpo import grpo_trainer_class, make_parser, train
    from train.prepare import device_flags
    from train.synthetic import make_synthetic_dataset

    torch.set_num_threads(cfg["threads"])
    work = Path(cfg["work_dir"])
    n = cfg["prompts_per_step"] * (cfg["warmup_steps"] + cfg["steps"])
    data = make_synthetic_dataset(work / "data", max(n, 8), seed=0, size=cfg["image_size"] or TINY_IMAGE_SIZE)

    generation: list[tuple[float, int]] = []
    trainer_class = grpo_trainer_class()  # its generation includes merging the LoRA adapter, when it does
    original = trainer_class._generate_single_turn

    def timed(self, *args, **kwargs):
        """Time generation and count the completion tokens it produced."""
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        completion_ids, logprobs = original(self, *args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        generation.append((time.perf_counter() - start, sum(len(c) for c in completion_ids)))
        return completion_ids, logprobs

    trainer_class._generate_single_turn = timed
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    out_dir = work / "run"
    argv = device_flags(grpo_argv(cfg, Path(cfg["model_dir"]), data, out_dir))
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=argv)
    start = time.perf_counter()
    train(script_args, training_args, model_args)
    wall = time.perf_counter() - start
    from train.callbacks import read_metrics

    steps = [r for r in read_metrics(out_dir / "metrics.jsonl") if "step_time" in r and "train_runtime" not in r]
    measured = steps[cfg["warmup_steps"] :]
    step_times = [r["step_time"] for r in measured]
    gen = generation[cfg["warmup_steps"] :]
    completions = cfg["prompts_per_step"] * cfg["num_generations"]
    step_s = statistics.median(step_times) if step_times else float("nan")
    return {
        **{k: cfg[k] for k in ("mode", "gradient_checkpointing", "num_generations", "prompts_per_step")},
        "prefill_once": cfg.get("prefill_once", True),
        "score_completion_only": cfg.get("score_completion_only", True),
        "max_completion_length": cfg["max_completion_length"],
        "steps_measured": len(step_times),
        "step_s": step_s,
        "samples_per_s": completions / step_s,
        "generation_s": statistics.median(g[0] for g in gen) if gen else None,
        "generation_tokens_per_s": sum(g[1] for g in gen) / sum(g[0] for g in gen) if gen else None,
        "mean_completion_tokens": sum(g[1] for g in gen) / len(gen) / completions if gen else None,
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "wall_s": wall,
    }


def run_config(script: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """One configuration in its own process (so that peak memory is its own) with ``script``'s code."""
    proc = subprocess.run(
        [sys.executable, str(script), "--single", json.dumps(cfg)],
        capture_output=True,
        text=True,
        check=False,
        cwd=script.parents[1],
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        return {**cfg, "error": failure_reason(proc.stderr or proc.stdout)}
    return json.loads(lines[-1].removeprefix("BENCH_RESULT "))


def checkout_label(path: Path) -> str:
    """The short commit of another checkout, for the tables (its folder name if git cannot tell)."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or path.name


def side_by_side(results: list[dict[str, Any]]) -> list[str]:
    """Per configuration: this checkout's median s/step against the other's, and the repeat-by-repeat ratios.

    Only this checkout's default variant (prompt prefilled once, completion scored only) is compared.
    """
    lines = []
    keys = sorted({(r["mode"], r["gradient_checkpointing"], r["num_generations"]) for r in results})
    for mode, checkpointing, generations in keys:
        group = [r for r in results if (r["mode"], r["gradient_checkpointing"], r["num_generations"]) == (
            mode, checkpointing, generations) and "error" not in r]  # fmt: skip
        ours = {r["repeat"]: r["step_s"] for r in group
                if r["code"] == "this" and r["prefill_once"] and r["score_completion_only"]}  # fmt: skip
        theirs = {r["repeat"]: r["step_s"] for r in group if r["code"] != "this"}
        paired = sorted(ours[k] / theirs[k] for k in ours.keys() & theirs.keys())
        if not paired:
            continue
        other = next(r["code"] for r in group if r["code"] != "this")
        mine, before = statistics.median(ours.values()), statistics.median(theirs.values())
        lines.append(
            f"{mode}, checkpointing {'on' if checkpointing else 'off'}, {generations} generations: this checkout "
            f"{mine:.3f} s/step, {other} {before:.3f} s/step (medians of {len(ours)} and {len(theirs)}): "
            f"{mine / before:.2f}x; paired ratios {', '.join(f'{x:.2f}' for x in paired)}"
        )
    return lines


def failure_reason(output: str) -> str:
    """One line for the table: running out of GPU memory is named as such, whatever layer noticed it.

    cuBLAS reports it as ``CUBLAS_STATUS_ALLOC_FAILED`` when the allocator is already full.
    """
    if any(sign in output for sign in ("OutOfMemoryError", "CUDA out of memory", "CUBLAS_STATUS_ALLOC_FAILED")):
        return "out of GPU memory"
    tail = output.strip().splitlines()[-1:] or ["no output"]
    return tail[0][:200]


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores visible"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        text += f"; GPU {props.name}, {props.total_memory / 2**30:.0f} GiB"
    return text + f"; torch {torch.__version__}"


def _prefill(result: dict[str, Any]) -> str:
    if result.get("code", "this") != "this":
        return "as that code does"
    return "once per question" if result.get("prefill_once", True) else "per completion"


def _scored(result: dict[str, Any]) -> str:
    if result.get("code", "this") != "this":
        return "as that code does"
    return "completion" if result.get("score_completion_only", True) else "every position"


def format_table(results: list[dict[str, Any]]) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = [
        "| code | mode | grad. checkpointing | prompt prefilled | log-probs scored | num_generations "
        "| completions/step | s/step | samples/s | generation tok/s | peak GPU GiB | peak RSS GiB |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        head = (
            f"| {r.get('code', 'this')} | {r['mode']} | {'on' if r['gradient_checkpointing'] else 'off'} "
            f"| {_prefill(r)} | {_scored(r)} "
        )
        if "error" in r:
            lines.append(f"{head}| {r['num_generations']} | - | failed: {r['error']} | | | | |")
            continue
        lines.append(
            f"{head}"
            f"| {r['num_generations']} | {r['prompts_per_step'] * r['num_generations']} | {num(r['step_s'], '.3f')} "
            f"| {num(r['samples_per_s'], '.1f')} | {num(r['generation_tokens_per_s'], '.0f')} "
            f"| {num(r['peak_gpu_gib'], '.1f')} | {num(r['peak_rss_gib'], '.2f')} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--random-2b", action="store_true", help="Qwen2-VL-2B architecture, random weights.")
    parser.add_argument("--shrink", action="store_true", help="With --random-2b: 1 text layer, 1 vision block.")
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("lora", "lora-unmerged", "full"),
        default=["lora", "full"],
        help="lora-unmerged: LoRA sampling through PEFT's unmerged adapter (--merge_lora_for_generation false).",
    )
    parser.add_argument("--gradient-checkpointing", nargs="+", choices=("on", "off"), default=None)
    parser.add_argument(
        "--prefill-once",
        nargs="+",
        choices=("on", "off"),
        default=["on"],
        help="each question's prompt prefilled once for its completions (on, the default) or per completion (off, "
        "as before); 'on off' measures both, alternating",
    )
    parser.add_argument(
        "--score-completion-only",
        nargs="+",
        choices=("on", "off"),
        default=["on"],
        help="log-prob passes project the completion tokens only (on, the default) or every position (off, TRL's "
        "choice off CUDA); 'on off' measures both, alternating",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (git worktree add DIR COMMIT): every configuration runs there too, alternated",
    )
    parser.add_argument("--repeats", type=int, default=1, help="Run every configuration this many times, alternated.")
    parser.add_argument("--num-generations", nargs="+", type=int, default=[4, 8])
    parser.add_argument("--prompts-per-step", type=int, default=None, help="Default: 4 (2B) or 8 (tiny).")
    parser.add_argument("--max-completion-length", type=int, default=None, help="Default: 256 (2B) or 32 (tiny).")
    parser.add_argument("--steps", type=int, default=3, help="Measured steps per configuration.")
    parser.add_argument("--warmup-steps", type=int, default=1, help="Steps run first and not measured.")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads.")
    parser.add_argument("--output", type=Path, default=Path("runs/bench"), help="Models, data, results.json.")
    parser.add_argument("--single", help=argparse.SUPPRESS)  # internal: one configuration as JSON
    args = parser.parse_args(argv)
    args.output = args.output.resolve()  # --against runs the other checkout's code from its own folder
    big = args.random_2b
    args.gradient_checkpointing = args.gradient_checkpointing or (["off", "on"] if args.device == "cuda" else ["off"])
    args.prompts_per_step = args.prompts_per_step or (4 if big else 8)
    args.max_completion_length = args.max_completion_length or (256 if big else 32)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.single:
        print("BENCH_RESULT " + json.dumps(run_one(json.loads(args.single))), flush=True)
        return 0
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA GPU is visible here. Run the CPU benchmark, or use a GPU machine.")
    if args.device == "cpu" and torch.cuda.is_available():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the subprocesses must not see the GPU
    args.output.mkdir(parents=True, exist_ok=True)
    if args.random_2b:
        model_dir = build_random_2b(
            args.output / ("random-qwen2-vl-2b" + ("-shrunk" if args.shrink else "")), args.shrink
        )
        max_pixels, image_size = MED_R1_MAX_PIXELS, MED_R1_IMAGE_SIZE
    else:
        from train.tiny_model import build_tiny_model

        model_dir = args.output / "tiny-random-qwen2_vl"
        if not (model_dir / "config.json").is_file():
            build_tiny_model(model_dir, seed=0)
        max_pixels, image_size = TINY_MAX_PIXELS, TINY_IMAGE_SIZE
    runs = [("this", Path(__file__).resolve(), args.prefill_once, args.score_completion_only)]
    if args.against:
        script = args.against.resolve() / "benchmarks" / "bench_training.py"
        if not script.is_file():
            sys.exit(f"--against {args.against}: no benchmarks/bench_training.py there (git worktree add DIR COMMIT).")
        runs.append((checkout_label(args.against), script, [None], [None]))
    results = []
    for repeat, mode, checkpointing, generations in product(
        range(args.repeats), args.modes, args.gradient_checkpointing, args.num_generations
    ):
        for code, script, prefills, scorings in runs:
            for prefill, scored in product(prefills, scorings):
                cfg = {
                    "prefill_once": prefill != "off",
                    "score_completion_only": scored != "off",
                    "repeat": repeat,
                    "mode": mode,
                    "gradient_checkpointing": checkpointing == "on",
                    "num_generations": generations,
                    "prompts_per_step": args.prompts_per_step,
                    "max_completion_length": args.max_completion_length,
                    "steps": args.steps,
                    "warmup_steps": args.warmup_steps,
                    "threads": args.threads,
                    "max_pixels": max_pixels,
                    "image_size": image_size,
                    "model_dir": str(model_dir),
                    "work_dir": str(
                        args.output / f"{code}-{mode}-gc{checkpointing}-g{generations}-p{prefill}-s{scored}-{repeat}"
                    ),
                }
                print(f"[bench] {code}: {mode}, checkpointing {checkpointing}, num_generations {generations}, "
                      f"prefill once {prefill or '-'}, completion only {scored or '-'} ...", flush=True)  # fmt: skip
                result = {**run_config(script, cfg), "code": code, "repeat": repeat}
                results.append(result)
                print(f"[bench] {json.dumps(result)}", flush=True)
    record = {
        "date": datetime.date.today().isoformat(),
        "hardware": hardware(),
        "model": "random Qwen2-VL-2B architecture" + (" (shrunk)" if args.shrink else "")
        if args.random_2b
        else "tiny random Qwen2-VL (train.tiny_model)",
        "results": results,
    }
    (args.output / "results.json").write_text(json.dumps(record, indent=2))
    print(f"\n## GRPO training speed: {record['model']}\n\n{record['date']}; {record['hardware']}\n")
    print(format_table(results))
    if args.against:
        print("\n" + "\n".join(side_by_side(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
