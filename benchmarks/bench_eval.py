"""Questions per second of ``medr1-eval``: batched vs one-at-a-time generation, same model, same questions.

    python benchmarks/bench_eval.py                                  # tiny random Qwen2-VL on the CPU
    python benchmarks/bench_eval.py --device cuda --random-2b        # Qwen2-VL-2B's architecture, random weights
    python benchmarks/bench_eval.py --model Qwen/Qwen2-VL-2B-Instruct --device cuda

The questions are ``train.eval.synthetic.make_grid_dataset``'s (every modality x question type, 2- and
4-option, square/wide/tall pictures), so batches are really padded. Every configuration answers the same
questions through the public ``train.eval.evaluate`` API, greedy, with the same ``max_new_tokens``;
the script also checks that batched answers equal one-at-a-time answers. Repeats are interleaved across
batch sizes and the best time of each is kept, which is the fairest figure on a shared machine.

``--random-2b`` builds Qwen2-VL-2B-Instruct's architecture (Qwen2-1.5B language model: 28 layers, hidden
1536, 12 heads / 2 KV heads, MLP 8960, vocabulary 151936; 32-block, 1280-wide vision tower) from a config
with random weights, directly on the device, with medr1's offline tokenizer: the speed of a 2B model
without downloading one. Its answers are meaningless.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks._qwen2vl_2b import random_2b_config
from train.data import load_samples
from train.eval import balanced_subset, evaluate
from train.eval.synthetic import make_grid_dataset
from train.model_io import load_for_inference, load_processor
from train.tiny_model import build_tiny_model


def random_2b(processor, device: str, dtype: torch.dtype):
    """Qwen2-VL-2B's architecture with random weights, created on ``device`` (no CPU copy of 2B weights)."""
    from transformers import Qwen2VLForConditionalGeneration

    config = random_2b_config(processor.tokenizer)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="A local checkpoint or hub id (default: a freshly built tiny random model).")
    source.add_argument("--random-2b", action="store_true", help="Qwen2-VL-2B's architecture with random weights.")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu).")
    parser.add_argument("--dtype", help="Default: bfloat16 on cuda, float32 on cpu.")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--image-size", type=int, help="Square image side (default: 384 with --random-2b, as Med-R1).")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice).")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if args.device.startswith("cuda") else None)
    image_size = args.image_size or (384 if args.random_2b else None)

    with tempfile.TemporaryDirectory(prefix="medr1-bench-") as tmp:
        tmp = Path(tmp)
        per_cell = max(1, math.ceil(args.questions / 40))
        data = make_grid_dataset(tmp / "data", per_cell=per_cell, seed=0, size=56)
        samples = balanced_subset(load_samples(data).samples, args.questions)
        if args.model:
            name = args.model
            processor = load_processor(args.model)
            model = load_for_inference(args.model, dtype=args.dtype, device=args.device)
        elif args.random_2b:
            name = "Qwen2-VL-2B architecture, random weights"
            tiny = build_tiny_model(tmp / "tokenizer-source")
            processor = load_processor(str(tiny), max_pixels=401_408, min_pixels=3136)
            model = random_2b(processor, args.device, dtype or torch.float32)
        else:
            name = "tiny random Qwen2-VL (medr1 tiny-model)"
            tiny = build_tiny_model(tmp / "tiny")
            processor = load_processor(str(tiny))
            model = load_for_inference(str(tiny), dtype=args.dtype, device=args.device)
        params = sum(p.numel() for p in model.parameters())
        options = {"max_new_tokens": args.max_new_tokens, "image_size": image_size}
        evaluate(model, processor, samples[:2], batch_size=2, **{**options, "max_new_tokens": 2})  # warm-up

        best: dict[int, float] = {}
        answers: dict[int, dict[str, str]] = {}
        for _ in range(args.repeats):
            for batch_size in args.batch_sizes:
                start = time.perf_counter()
                results = evaluate(model, processor, samples, batch_size=batch_size, **options)
                elapsed = time.perf_counter() - start
                best[batch_size] = min(elapsed, best.get(batch_size, math.inf))
                answers[batch_size] = {r.id: r.response for r in results}

    device = args.device
    if device.startswith("cuda") and torch.cuda.is_available():
        device += f" ({torch.cuda.get_device_name(0)})"
    else:
        device += f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"model: {name}, {params / 1e6:,.1f} M parameters, {model.dtype}")
    print(f"device: {device}; torch {torch.__version__}")
    print(
        f"{len(samples)} questions, greedy, max_new_tokens={args.max_new_tokens}, image_size={image_size}, "
        f"best of {args.repeats}"
    )
    print()
    reference = args.batch_sizes[0]
    columns = ["batch size", "seconds", "questions/s", f"speed-up vs batch {reference}", f"same answers as {reference}"]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|---|")
    for batch_size in args.batch_sizes:
        rate = len(samples) / best[batch_size]
        speedup = best[reference] / best[batch_size]
        same = "yes" if answers[batch_size] == answers[reference] else "NO"
        print(f"| {batch_size} | {best[batch_size]:.2f} | {rate:.2f} | {speedup:.2f}x | {same} |")


if __name__ == "__main__":
    main()
