"""What the app's generation path costs on top of a bare ``model.generate``: time to first token and tokens/s.

Run: ``python benchmarks/app_generation.py`` (tiny model, CPU, about a minute) or
``python benchmarks/app_generation.py --model PATH --device cuda --tokens 256`` for a real checkpoint.

Both paths get the same model, the same picture (a CT slice through the app's viewer pipeline) and the
same prompt, and are forced to the same length (``min_new_tokens = max_new_tokens``, greedy):

- **bare**: ``model.generate(**inputs)``, with the processor call inside the timing (the baseline: any
  caller must prepare the inputs) and, for reference, with the inputs prepared beforehand. Time to first
  token is a ``max_new_tokens=1`` call (prefill plus one token); tokens/s is N over the full call.
- **app**: ``medr1_app.answering.answer`` as the Ask tab calls it: the processor builds the inputs,
  ``generate`` runs in a thread with the Stop criterion and the token streamer, every token is decoded
  and parsed, and progress is yielded. Time to first token is until the first text arrives.

Gradio's HTTP streaming is not included (it depends on the network, not on this code). Goal: the app
adds under 5 %.

Self-consistency: N samples through the same path (drawn together, ``--samples``, default 5) against one
answer, and N answers asked one after the other for reference (what it cost before). Goal: N = 5 at most
1.5x one answer.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pydicom.examples
import torch

from medr1_app.answering import answer
from medr1_app.generation import GenerationSettings, build_inputs, stream_samples
from medr1_app.models import ModelManager, ModelRegistry, spec_from_argument
from train.imaging import model_picture, open_study
from train.protocol import build_prompt

QUESTION = "What imaging technique was used to obtain this image?"
OPTIONS = ["CT", "MRI", "X-ray", "Ultrasound"]


def bare_run(loaded, picture, prompt: str, tokens: int, prepare: bool, in_thread: bool = True) -> tuple[float, float]:
    """(seconds to the first token, seconds for ``tokens`` tokens) of plain ``generate`` calls.

    ``prepare``: include the processor call (chat template + image) in the timing, as any caller must
    do it and the app does it for every question; otherwise the inputs are prepared beforehand.
    ``in_thread``: run the call in a fresh thread and join it, as the app runs ``generate``. On CPU this
    matters on its own: PyTorch's intra-op thread pool behaves differently in the main thread than in a
    new one (on a busy 2-core machine the main thread was several times slower), so comparing the app's
    worker thread with a main-thread call would credit the app with a speed-up it did not earn.
    """
    ready = build_inputs(loaded, picture, prompt)

    def call(n: int) -> float:
        start = time.perf_counter()
        inputs = build_inputs(loaded, picture, prompt) if prepare else ready
        with torch.inference_mode():
            out = loaded.model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        if loaded.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        assert out.shape[1] - inputs["input_ids"].shape[1] == n
        return elapsed

    if not in_thread:
        return call(1), call(tokens)
    results: list[float] = []
    for n in (1, tokens):
        worker = threading.Thread(target=lambda n=n: results.append(call(n)))
        worker.start()
        worker.join()
    return results[0], results[1]


def in_worker(function):
    """Run ``function`` in a fresh thread and return its result: Gradio runs the Ask handler in a worker
    thread, never in the main thread (see ``bare_run`` for why that matters on CPU)."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(function()))
    worker.start()
    worker.join()
    return result[0]


def app_run(loaded, picture, prompt: str, tokens: int, samples: int = 1) -> tuple[float, float, int]:
    """(seconds to the first text, total seconds, tokens of the first sample) through the Ask tab's code path.

    ``samples > 1`` is self-consistency as the Ask tab runs it: all samples drawn together.
    """
    settings = GenerationSettings(temperature=0.0, max_new_tokens=tokens, prompt_style="think", samples=samples)
    stream_fn = functools.partial(stream_samples, min_new_tokens=tokens)
    start = time.perf_counter()
    first = None
    progress = None
    for progress in answer(loaded, picture, prompt, OPTIONS, settings, stream_fn=stream_fn):
        if first is None and progress.sample is not None and progress.sample.text:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    assert progress is not None and all(s.finished for s in progress.samples)
    text = progress.samples[0].text
    generated = len(loaded.processor.tokenizer(text, add_special_tokens=False).input_ids)
    return first if first is not None else total, total, generated


def one_after_another(loaded, picture, prompt: str, tokens: int, samples: int) -> tuple[float, float]:
    """N answers asked one after the other: what self-consistency cost before the samples were batched."""
    start = time.perf_counter()
    first = None
    for _ in range(samples):
        ttft, _, _ = app_run(loaded, picture, prompt, tokens)
        first = first if first is not None else ttft
    return first or 0.0, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--samples", type=int, default=5, help="self-consistency samples compared with one answer")
    args = parser.parse_args(argv)

    spec = spec_from_argument(args.model)
    loaded = ModelManager(ModelRegistry([spec]), device=args.device).get(spec.key)
    study = open_study(pydicom.examples.get_path("ct"))
    picture = model_picture(study, 0, None, loaded.bounds)
    prompt = build_prompt(QUESTION, OPTIONS)
    inputs = build_inputs(loaded, picture, prompt)
    print(
        f"model: {spec.label} on {loaded.device} ({str(loaded.dtype).replace('torch.', '')}), "
        f"torch threads {torch.get_num_threads()}; picture {picture.width}x{picture.height}, "
        f"prompt {inputs['input_ids'].shape[1]} tokens, {args.tokens} new tokens, {args.repeats} repeats (medians)"
    )
    # Warm-up (first calls allocate caches and compile kernels).
    bare_run(loaded, picture, prompt, 8, prepare=True)
    in_worker(lambda: app_run(loaded, picture, prompt, 8))
    in_worker(lambda: app_run(loaded, picture, prompt, 8, args.samples))

    paths = {
        "bare: inputs ready, generate": lambda: bare_run(loaded, picture, prompt, args.tokens, prepare=False),
        "bare: processor + generate": lambda: bare_run(loaded, picture, prompt, args.tokens, prepare=True),
        "app: answer() + stream_samples": lambda: in_worker(lambda: app_run(loaded, picture, prompt, args.tokens))[:2],
        f"app: {args.samples} samples together": lambda: in_worker(
            lambda: app_run(loaded, picture, prompt, args.tokens, args.samples)
        )[:2],
        f"app: {args.samples} answers one by one": lambda: in_worker(
            lambda: one_after_another(loaded, picture, prompt, args.tokens, args.samples)
        ),
        "bare: inputs ready, main thread": lambda: bare_run(
            loaded, picture, prompt, args.tokens, prepare=False, in_thread=False
        ),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(args.repeats):  # interleaved, so load on a shared machine hits every path alike
        for name, run in paths.items():
            times[name].append(run())
    medians = {
        name: (statistics.median(t for t, _ in runs), statistics.median(total for _, total in runs))
        for name, runs in times.items()
    }
    print(f"{'path':<36}{'first token (ms)':>18}{'tokens/s':>12}{'total (s)':>12}{'total, quartiles (s)':>24}")
    for name, (ttft, total) in medians.items():
        q1, _, q3 = statistics.quantiles([t for _, t in times[name]], n=4)
        print(f"{name:<36}{ttft * 1000:>18.1f}{args.tokens / total:>12.1f}{total:>12.3f}{q1:>15.3f} – {q3:.3f}")
    (b_ttft, b_total), (a_ttft, a_total) = (
        medians["bare: processor + generate"],
        medians["app: answer() + stream_samples"],
    )
    print(
        f"app overhead vs 'processor + generate': first token {100 * (a_ttft - b_ttft) / b_ttft:+.1f} % "
        f"({(a_ttft - b_ttft) * 1000:+.1f} ms), tokens/s {100 * (b_total / a_total - 1):+.1f} %, "
        f"total time {100 * (a_total - b_total) / b_total:+.1f} %"
    )
    together = medians[f"app: {args.samples} samples together"][1]
    one_by_one = medians[f"app: {args.samples} answers one by one"][1]
    print(
        f"self-consistency: {args.samples} samples together cost {together / a_total:.2f}x one answer "
        f"(goal <= 1.5x); one by one {one_by_one / a_total:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
