"""Generation speed, today's path against the fast path, in one run: the app, GRPO rollouts and medr1-eval.

    python benchmarks/bench_generation.py --device cuda          # Qwen2-VL-2B architecture, random weights, bf16
    python benchmarks/bench_generation.py                        # CPU dry run of every path on the tiny model

The prepared GPU check of issue 19 (about 5 minutes on an H200). Every figure is measured side by side in
this one process, each path after a warm-up call (compilation is timed and printed on its own):

* **app, one answer**: ``medr1_app.generation.stream_text`` as the Ask tab calls it, forced to
  ``--tokens`` new tokens: time to first token and tokens/s, with ``fast off`` (dynamic KV cache) and
  ``fast on`` (static KV cache; transformers compiles the decode step on CUDA).
* **rollouts**: 16 sequences (4 questions x 4 completions, sampled) of ``--tokens`` tokens, as GRPO asks
  for them: plain ``generate`` (today), each prompt prefilled once (``train.generation.generate_rollouts``,
  the default now), and the static cache.
* **medr1-eval**: questions/s of ``train.eval.evaluate`` (greedy, batch 16), fast off and on, and whether
  both gave the same answers.

Each tokens/s figure is also given as a share of the memory-bandwidth limit: a decode step of B sequences
reads every weight once, so at most ``B x bandwidth / weight bytes`` tokens/s (``--bandwidth-gbs``, default
4800, an H200's HBM3e). Weights are random: the answers mean nothing, the speed is the real model's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from PIL import Image

from train.data import load_samples
from train.eval import balanced_subset, evaluate
from train.eval.synthetic import make_grid_dataset
from train.generation import fast_path_failure, generate, generate_rollouts
from train.imaging import model_picture
from train.model_io import load_for_inference, load_processor, pixel_bounds
from train.protocol import build_messages, build_prompt
from train.tiny_model import build_tiny_model


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def in_thread(function):
    """Run in a fresh thread, as the app runs generation (see benchmarks/app_generation.py for why)."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(function()))
    worker.start()
    worker.join()
    return result[0]


def app_answer(loaded, picture, prompt: str, tokens: int) -> tuple[float, float]:
    """(seconds to the first text, seconds in all) of one forced-length greedy answer through the app's path."""
    from medr1_app.generation import GenerationSettings, stream_text

    settings = GenerationSettings(temperature=0.0, max_new_tokens=tokens)
    start = time.perf_counter()
    first = None
    for _ in stream_text(loaded, picture, prompt, settings, min_new_tokens=tokens):
        first = first if first is not None else time.perf_counter() - start
    sync(loaded.device)
    return first or 0.0, time.perf_counter() - start


def rollout_batch(processor, pictures, questions: int, copies: int) -> dict:
    texts, images = [], []
    for i in range(questions):
        prompt = build_prompt(f"Question {i}: which modality is this?" + " Look closely." * i, ["CT", "MRI", "X-ray"])
        chat = processor.apply_chat_template(build_messages(prompt), add_generation_prompt=True, tokenize=False)
        texts += [chat] * copies
        images += [pictures[i % len(pictures)]] * copies
    return dict(processor(text=texts, images=images, padding=True, return_tensors="pt"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, help="New tokens per answer (default: 256 on cuda, 24 on cpu).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--questions", type=int, help="medr1-eval questions (default: 128 on cuda, 16 on cpu).")
    parser.add_argument("--bandwidth-gbs", type=float, default=4800.0, help="Memory bandwidth, GB/s (H200: 4800).")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA GPU is visible here.")
    tokens = args.tokens or (256 if cuda else 24)
    n_questions = args.questions or (128 if cuda else 16)

    from medr1_app.models import LoadedModel, spec_from_argument

    with tempfile.TemporaryDirectory(prefix="medr1-bench-gen-") as tmp:
        tmp = Path(tmp)
        tiny = build_tiny_model(tmp / "tiny")
        if cuda:
            from benchmarks.bench_eval import random_2b

            processor = load_processor(str(tiny), max_pixels=401_408, min_pixels=3136)
            model = random_2b(processor, args.device, torch.bfloat16)
            name, image_size = "Qwen2-VL-2B architecture, random weights", 384
        else:
            processor = load_processor(str(tiny))
            model = load_for_inference(str(tiny), device="cpu")
            name, image_size = "tiny random Qwen2-VL (CPU dry run)", None
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        bounds = pixel_bounds(processor)
        if image_size:
            bounds = type(bounds)(bounds.min_pixels, bounds.max_pixels, image_size, bounds.patch)
        pictures = [
            model_picture(Image.new("RGB", (512, 512), colour), bounds=bounds)
            for colour in ((30, 140, 200), (220, 20, 20), (20, 200, 60), (128, 128, 128))
        ]
        prompt = build_prompt("Which imaging technique was used?", ["CT", "MRI", "X-ray", "Ultrasound"])
        spec = spec_from_argument(str(tiny))
        loaded = {
            mode: LoadedModel(spec, model, processor, args.device, model.dtype, bounds, fast=mode)
            for mode in ("off", "on")
        }

        def limit(sequences: int) -> float:
            return sequences * args.bandwidth_gbs * 1e9 / weight_bytes

        print(f"model: {name}, {weight_bytes / 1e9:.2f} GB of weights ({model.dtype}), device {args.device}")
        if cuda:
            print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
        print(f"{tokens} new tokens per answer, {args.repeats} repeats (medians); limit per sequence "
              f"{limit(1):,.0f} tokens/s at {args.bandwidth_gbs:,.0f} GB/s\n")  # fmt: skip

        # ---- app: one answer ------------------------------------------------------------------------------------
        rows = []
        for mode in ("off", "on"):
            start = time.perf_counter()
            in_thread(lambda mode=mode: app_answer(loaded[mode], pictures[0], prompt, tokens))  # warm-up / compile
            warm = time.perf_counter() - start
            runs = [in_thread(lambda mode=mode: app_answer(loaded[mode], pictures[0], prompt, tokens))
                    for _ in range(args.repeats)]  # fmt: skip
            ttft = statistics.median(r[0] for r in runs)
            total = statistics.median(r[1] for r in runs)
            rows.append((mode, warm, ttft, tokens / total))
        print("| app, one answer | first call (s) | time to first token (ms) | tokens/s | share of limit |")
        print("|---|---:|---:|---:|---:|")
        for mode, warm, ttft, rate in rows:
            print(f"| fast {mode} | {warm:.1f} | {ttft * 1000:.0f} | {rate:,.1f} | {100 * rate / limit(1):.1f} % |")
        print(f"fast path fallback: {fast_path_failure(model) or 'none'}\n")

        # ---- rollouts -------------------------------------------------------------------------------------------
        batch = {k: v.to(args.device) for k, v in rollout_batch(processor, pictures, 4, 4).items()}
        sequences = batch["input_ids"].shape[0]
        sampling = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True, temperature=1.0, top_k=0)

        def plain():
            return model.generate(**batch, **sampling)

        def prefilled():
            return generate_rollouts(model.generate, model, **batch, **sampling)

        def static():
            return generate(model, batch, fast="on", **sampling)

        rollout_rows = []
        for label, call in (("plain generate (before)", plain), ("prompt prefilled once", prefilled),
                            ("static cache, compiled", static)):  # fmt: skip
            with torch.inference_mode():
                start = time.perf_counter()
                call()
                sync(args.device)
                warm = time.perf_counter() - start
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    call()
                    sync(args.device)
                    times.append(time.perf_counter() - start)
            rate = sequences * tokens / statistics.median(times)
            rollout_rows.append((label, warm, rate))
        print(f"| rollouts, {sequences} sequences | first call (s) | tokens/s | vs before | share of limit |")
        print("|---|---:|---:|---:|---:|")
        for label, warm, rate in rollout_rows:
            print(f"| {label} | {warm:.1f} | {rate:,.0f} | {rate / rollout_rows[0][2]:.2f}x "
                  f"| {100 * rate / limit(sequences):.1f} % |")  # fmt: skip
        print()

        # ---- medr1-eval -----------------------------------------------------------------------------------------
        data = make_grid_dataset(tmp / "data", per_cell=max(1, n_questions // 40 + 1), seed=0, size=64)
        samples = balanced_subset(load_samples(data).samples, n_questions)
        options = dict(batch_size=16, max_new_tokens=tokens, image_size=image_size)
        eval_rows, answers = [], {}
        for mode in ("off", "on"):
            evaluate(model, processor, samples[:16], fast_generation=mode, **options)  # warm-up / compile
            start = time.perf_counter()
            results = evaluate(model, processor, samples, fast_generation=mode, **options)
            sync(args.device)
            seconds = time.perf_counter() - start
            answers[mode] = [r.response for r in results]
            eval_rows.append((mode, len(samples) / seconds))
        print(f"| medr1-eval, {len(samples)} questions, batch 16, greedy | questions/s |")
        print("|---|---:|")
        for mode, rate in eval_rows:
            print(f"| fast {mode} | {rate:.2f} |")
        print(f"same answers with the fast path: {'yes' if answers['on'] == answers['off'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
