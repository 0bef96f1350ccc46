"""What the app's generation path costs on top of a bare ``model.generate``: time to first token and tokens/s.

Run: ``python benchmarks/app_generation.py`` (tiny model, CPU, about a minute) or
``python benchmarks/app_generation.py --model PATH --device cuda --tokens 256`` for a real checkpoint.

Both paths get the same model, the same picture (a CT slice through the app's viewer pipeline) and the
same prompt, and are forced to the same length (``min_new_tokens = max_new_tokens``, greedy):

- **bare**: ``model.generate(**inputs)`` on inputs prepared beforehand. Time to first token is a
  ``max_new_tokens=1`` call (prefill plus one token); tokens/s is N over the full call.
- **app**: ``medr1_app.answering.answer`` as the Ask tab calls it: the processor builds the inputs,
  ``generate`` runs in a thread with the Stop criterion and the token streamer, every token is decoded
  and parsed, and progress is yielded. Time to first token is until the first text arrives.

Gradio's HTTP streaming is not included (it depends on the network, not on this code). Goal: the app
adds under 5 %.
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
from medr1_app.generation import GenerationSettings, build_inputs, stream_text
from medr1_app.imaging import open_study
from medr1_app.models import ModelManager, ModelRegistry, spec_from_argument
from medr1_app.viewer import model_picture
from train.protocol import build_prompt

QUESTION = "What imaging technique was used to obtain this image?"
OPTIONS = ["CT", "MRI", "X-ray", "Ultrasound"]


def bare_run(loaded, inputs, tokens: int, in_thread: bool = True) -> tuple[float, float]:
    """(seconds to the first token, seconds for ``tokens`` tokens) of plain ``generate`` calls.

    ``in_thread``: run the call in a fresh thread and join it, as the app runs ``generate``. On CPU this
    matters on its own: PyTorch's intra-op thread pool behaves differently in the main thread than in a
    new one (on a busy 2-core machine the main thread was several times slower), so comparing the app's
    worker thread with a main-thread call would credit the app with a speed-up it did not earn.
    """

    def call(n: int) -> float:
        start = time.perf_counter()
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


def app_run(loaded, picture, prompt: str, tokens: int) -> tuple[float, float, int]:
    """(seconds to the first text, total seconds, tokens generated) through the Ask tab's code path."""
    settings = GenerationSettings(temperature=0.0, max_new_tokens=tokens, prompt_style="think")
    stream_fn = functools.partial(stream_text, min_new_tokens=tokens)
    start = time.perf_counter()
    first = None
    progress = None
    for progress in answer(loaded, picture, prompt, OPTIONS, settings, stream_fn=stream_fn):
        if first is None and progress.sample is not None and progress.sample.text:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    text = progress.samples[0].text
    generated = len(loaded.processor.tokenizer(text, add_special_tokens=False).input_ids)
    return first if first is not None else total, total, generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    spec = spec_from_argument(args.model)
    loaded = ModelManager(ModelRegistry([spec]), device=args.device).get(spec.key)
    study = open_study(pydicom.examples.get_path("ct"))
    picture = model_picture(study, 0, None, (loaded.min_pixels, loaded.max_pixels))
    prompt = build_prompt(QUESTION, OPTIONS)
    inputs = build_inputs(loaded, picture, prompt)
    print(
        f"model: {spec.label} on {loaded.device} ({str(loaded.dtype).replace('torch.', '')}), "
        f"torch threads {torch.get_num_threads()}; picture {picture.width}x{picture.height}, "
        f"prompt {inputs['input_ids'].shape[1]} tokens, {args.tokens} new tokens, {args.repeats} repeats (medians)"
    )
    # Warm-up (first calls allocate caches and compile kernels).
    bare_run(loaded, inputs, 8)
    app_run(loaded, picture, prompt, 8)
    prep = []
    for _ in range(10):
        start = time.perf_counter()
        build_inputs(loaded, picture, prompt)
        prep.append(time.perf_counter() - start)
    prep_ms = statistics.median(prep) * 1000

    bare_ttft, bare_total, app_ttft, app_total, main_ttft, main_total = [], [], [], [], [], []
    for _ in range(args.repeats):  # interleaved, so load on a shared machine hits all alike
        ttft, total = bare_run(loaded, inputs, args.tokens)
        bare_ttft.append(ttft)
        bare_total.append(total)
        ttft, total, generated = app_run(loaded, picture, prompt, args.tokens)
        app_ttft.append(ttft)
        app_total.append(total)
        ttft, total = bare_run(loaded, inputs, args.tokens, in_thread=False)
        main_ttft.append(ttft)
        main_total.append(total)
    b_ttft, b_total = statistics.median(bare_ttft), statistics.median(bare_total)
    a_ttft, a_total = statistics.median(app_ttft), statistics.median(app_total)
    m_ttft, m_total = statistics.median(main_ttft), statistics.median(main_total)
    b_rate, a_rate = args.tokens / b_total, args.tokens / a_total
    print(f"{'path':<40}{'first token (ms)':>18}{'tokens/s':>12}{'total (s)':>12}")
    print(f"{'bare model.generate (worker thread)':<40}{b_ttft * 1000:>18.1f}{b_rate:>12.1f}{b_total:>12.3f}")
    print(f"{'app (answer + stream_text)':<40}{a_ttft * 1000:>18.1f}{a_rate:>12.1f}{a_total:>12.3f}")
    print(
        f"{'bare model.generate (main thread)':<40}{m_ttft * 1000:>18.1f}{args.tokens / m_total:>12.1f}{m_total:>12.3f}"
    )
    ttft_change = f"{100 * (a_ttft - b_ttft) / b_ttft:+.1f} % ({(a_ttft - b_ttft) * 1000:+.1f} ms)"
    print(
        f"app overhead vs the worker-thread baseline: first token {ttft_change}, "
        f"tokens/s {100 * (a_rate - b_rate) / b_rate:+.1f} %, total time {100 * (a_total - b_total) / b_total:+.1f} %"
    )
    print(
        f"of the first-token difference, {prep_ms:.1f} ms is preparing the inputs (chat template + image "
        f"processor), which the bare baseline had done beforehand: net {(a_ttft - b_ttft) * 1000 - prep_ms:+.1f} ms"
    )
    print(f"(last app run decoded {generated} tokens of text for {args.tokens} generated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
