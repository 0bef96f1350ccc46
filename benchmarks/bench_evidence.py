"""What the Evidence panel costs per answer, beside what the answer itself costs, in one run.

    python benchmarks/bench_evidence.py                          # tiny random model, CPU
    python benchmarks/bench_evidence.py --random-2b              # Qwen2-VL-2B architecture, random weights
    python benchmarks/bench_evidence.py --random-2b --device cuda

For each repeat, on one 384 px picture and a four-option question: the answer (greedy, forced to
``--tokens`` new tokens, as ``medr1_app.generation.stream_text`` makes it), then the evidence on that
response (``train.evidence.compute_evidence``): the map and option preference (one forward pass over
prompt + response), the image-reliance check (a greedy answer on grey, up to ``--tokens`` tokens, and
one forward pass) and the optional relevancy map (one forward and one backward pass). Random weights
never close ``</answer>``, so the response is a fixed well-formed one of ``--tokens`` tokens and the
reliance answer runs to the limit: the worst case. Medians are printed, and each stage as a multiple of
the answer's own time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from PIL import Image

from train.evidence import compute_evidence
from train.generation import sampling_kwargs
from train.imaging import PixelBounds, fit_to_model
from train.model_io import load_for_inference, load_processor
from train.protocol import build_messages, build_prompt
from train.tiny_model import build_tiny_model

OPTIONS = ["CT", "MRI", "X-ray", "Ultrasound"]


def response_ids(tokenizer, tokens: int) -> list[int]:
    """A well-formed think response of exactly ``tokens`` tokens, answering B."""
    tail = tokenizer("</think><answer>B</answer>", add_special_tokens=False)["input_ids"]
    filler = tokenizer(" bright", add_special_tokens=False)["input_ids"]
    head = tokenizer("<think>", add_special_tokens=False)["input_ids"]
    body = (filler * tokens)[: max(0, tokens - len(head) - len(tail))]
    return head + body + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random-2b", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tokens", type=int, default=64, help="Tokens of the answer and of the reliance answer.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="medr1-bench-evidence-") as tmp:
        tiny = build_tiny_model(Path(tmp) / "tiny")
        processor = load_processor(str(tiny), max_pixels=401_408, min_pixels=3136)
        if args.random_2b:
            from benchmarks.bench_eval import random_2b

            dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
            model = random_2b(processor, args.device, dtype)
            name = f"Qwen2-VL-2B architecture, random weights, {dtype}".replace("torch.", "")
        else:
            model = load_for_inference(str(tiny), device=args.device)
            name = "tiny random Qwen2-VL"
        picture = fit_to_model(Image.new("RGB", (384, 384), (90, 120, 150)), PixelBounds(3136, 401_408, 384))
        messages = build_messages(build_prompt("Which modality is this?", OPTIONS, "think"))
        ids = response_ids(processor.tokenizer, args.tokens)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=[picture], return_tensors="pt").to(args.device)
        times: dict[str, list[float]] = {"answer": [], "map_and_preference": [], "image_reliance": [], "relevancy": []}
        for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
            tick = time.perf_counter()
            with torch.inference_mode():
                model.generate(**inputs, max_new_tokens=args.tokens, min_new_tokens=args.tokens, **sampling_kwargs(0.0))
            answer = time.perf_counter() - tick
            evidence = compute_evidence(
                model, processor, [picture], messages, OPTIONS, ids, max_new_tokens=args.tokens, relevancy=True
            )
            if repeat:
                times["answer"].append(answer)
                for stage, seconds in evidence.seconds.items():
                    times[stage].append(seconds)
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n## Evidence cost: {name}, {args.device}, {torch.get_num_threads()} threads\n")
        rows, cols = evidence.maps[0].grid
        print(
            f"{int(inputs['input_ids'].shape[1])} prompt tokens ({rows} x {cols} image tokens), {len(ids)} response "
            f"tokens, reliance answer up to {args.tokens} tokens; median of {args.repeats}.\n"
        )
        print("| stage | seconds | x the answer's time |")
        print("|---|---:|---:|")
        for stage, seconds in median.items():
            print(f"| {stage.replace('_', ' ')} | {seconds:.3f} | {seconds / median['answer']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
