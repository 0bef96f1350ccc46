"""Does the evidence mean anything? Scored on the learning proof's model, which really reads pixels.

Run ``benchmarks/learning.py --blob-position uniform`` first (the grounding variant: the blob can be
anywhere, so a map that favours the centre earns nothing) and, for the ablation,
``benchmarks/learning.py --blank-images``. Then::

    python benchmarks/evidence_proof.py --run runs/learning/seed0-grounding --blank-run runs/learning/seed0-blank

prints:

1. **Attention map**: over ``--questions`` held-out grading questions with a blob (grades 1-2, drawn with
   a seed neither run trained on), the map's mass inside the blob's box divided by the box's share of
   the picture (1.0 = no better than a uniform map), for the trained model and for the warm-up model
   before GRPO, for each query (the position writing the letter, or the whole answer block) and layer
   range, and the same for the gradient × attention relevancy map. Goal: 2.5 or more for the trained
   model with the shipped default.
2. **Image reliance**: on the run's 200 held-out questions (real pictures), the share of answers that
   change when each picture is replaced by grey of the same size, and the chosen letter's mean
   preference drop; for the trained, warm-up and blank-image models. Goal: >= 90 % trained, about 0 %
   blank.
3. **Cost**: mean seconds per answer of each stage (tiny model, this CPU).

Everything goes through ``train.evidence.compute_evidence``, the function the app and ``medr1-eval``
call. A JSON copy of every figure is written to ``RUN/evidence_proof.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from train.data import load_samples
from train.evidence import EvidenceError, compute_evidence
from train.generation import sampling_kwargs
from train.imaging import PixelBounds
from train.model_io import load_for_inference, load_processor
from train.protocol import build_messages, build_prompt
from train.synthetic import make_synthetic_dataset
from train.synthetic_task import TEST_SEED_OFFSET, fix_option_order

MIN_PIXELS = 56 * 56
GOAL_RATIO, GOAL_CHANGED = 2.5, 0.90
LAYER_CHOICES = ("0:1", "1:2", "all", "late")
QUERY_CHOICES = ("letter", "answer")


def grounding_questions(out: Path, n: int, seed: int, size: int):
    """``n`` grading questions with a grade 1-2 blob anywhere in the picture, never trained on."""
    path = make_synthetic_dataset(
        out,
        8 * n,
        seed=seed + TEST_SEED_OFFSET + 7919,
        size=size,
        question_types=("Lesion Grading",),
        blob_position="uniform",
    )
    fixed = fix_option_order(path, path.with_name("data-fixed-options.jsonl"))
    boxes = json.loads((out / "blob_boxes.json").read_text())
    chosen = [
        (sample, boxes[sample.id])
        for sample in load_samples(fixed).samples
        if sample.id in boxes and sample.answer_text.startswith(("Grade 1", "Grade 2"))
    ]
    if len(chosen) < n:
        raise SystemExit(f"Only {len(chosen)} grade 1-2 questions were drawn; ask for fewer.")
    return chosen[:n]


def greedy_ids(model, processor, picture, messages, max_new_tokens: int) -> list[int]:
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[picture], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling_kwargs(0.0))
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def ask(sample, bounds: PixelBounds, style: str):
    return sample.picture(bounds), build_messages(build_prompt(sample.question, sample.options, style))


def map_scores(model, processor, questions, bounds, style: str, max_new_tokens: int) -> dict:
    """Mean box ratio per (query, layers); questions without an option letter are counted and skipped."""
    ratios: dict[str, list[float]] = {f"{q} {layers}": [] for q in QUERY_CHOICES for layers in LAYER_CHOICES}
    ratios.update({f"relevancy {layers}": [] for layers in LAYER_CHOICES})
    skipped, seconds = 0, []
    for sample, box in questions:
        picture, messages = ask(sample, bounds, style)
        ids = greedy_ids(model, processor, picture, messages, max_new_tokens)
        try:
            for query in QUERY_CHOICES:
                for layers in LAYER_CHOICES:
                    evidence = compute_evidence(
                        model,
                        processor,
                        [picture],
                        messages,
                        sample.options,
                        ids,
                        layers=layers,
                        query=query,
                        reliance=False,
                        prompt_style=style,
                    )
                    ratios[f"{query} {layers}"].append(evidence.maps[0].box_ratio(box))
                    if query == "letter" and layers == "late":
                        seconds.append(evidence.seconds["map_and_preference"])
            for layers in LAYER_CHOICES:  # gradient x attention, at the letter's position
                evidence = compute_evidence(
                    model, processor, [picture], messages, sample.options, ids,
                    layers=layers, reliance=False, relevancy=True, prompt_style=style,
                )  # fmt: skip
                ratios[f"relevancy {layers}"].append(evidence.relevancy_maps[0].box_ratio(box))
        except EvidenceError:
            skipped += 1
    return {
        "ratio": {k: statistics.fmean(v) for k, v in ratios.items() if v},
        "ratio_median": {k: statistics.median(v) for k, v in ratios.items() if v},
        "n": len(questions) - skipped,
        "skipped": skipped,
        "map_seconds": statistics.fmean(seconds) if seconds else None,
    }


def reliance_scores(model, processor, samples, bounds, style: str, max_new_tokens: int) -> dict:
    changed, relies, drops, seconds, skipped = [], [], [], [], 0
    for sample in samples:
        picture, messages = ask(sample, bounds, style)
        ids = greedy_ids(model, processor, picture, messages, max_new_tokens)
        try:
            evidence = compute_evidence(
                model,
                processor,
                [picture],
                messages,
                sample.options,
                ids,
                reliance=True,
                max_new_tokens=max_new_tokens,
                prompt_style=style,
            )
        except EvidenceError:
            skipped += 1
            continue
        changed.append(evidence.reliance.changed)
        relies.append(evidence.reliance.relies)
        drops.append(evidence.reliance.probability_drop)
        seconds.append(evidence.seconds["image_reliance"])
    return {
        "changed": sum(changed) / len(changed) if changed else None,
        "relies": sum(relies) / len(relies) if relies else None,
        "probability_drop": statistics.fmean(drops) if drops else None,
        "n": len(changed),
        "skipped": skipped,
        "reliance_seconds": statistics.fmean(seconds) if seconds else None,
    }


def load(run: Path, trained: bool, size: int):
    processor = load_processor(str(run / "warmup"), max_pixels=size * size, min_pixels=MIN_PIXELS)
    model = load_for_inference(str(run / "warmup"), str(run / "grpo") if trained else None, dtype="float32")
    return model, processor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="Output dir of learning.py --blob-position uniform.")
    parser.add_argument("--blank-run", type=Path, help="Output dir of learning.py --blank-images (the ablation).")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = json.loads((args.run / "results.json").read_text())["config"]
    size, style, seed = int(config["image_size"]), config["prompt_style"], int(config["seed"])
    max_new_tokens = int(config["max_completion_length"])
    bounds = PixelBounds(MIN_PIXELS, size * size)
    questions = grounding_questions(args.run / "evidence-data", args.questions, seed, size)
    held_out = load_samples(args.run / "data" / "test" / "data-fixed-options.jsonl").samples

    start = time.time()
    figures: dict = {"maps": {}, "reliance": {}}
    models = [("trained", args.run, True), ("warm-up", args.run, False)]
    if args.blank_run:
        models.append(("blank-image ablation", args.blank_run, True))
    for name, run, trained in models:
        model, processor = load(run, trained, size)
        if name != "blank-image ablation":
            figures["maps"][name] = map_scores(model, processor, questions, bounds, style, max_new_tokens)
        figures["reliance"][name] = reliance_scores(model, processor, held_out, bounds, style, max_new_tokens)
        print(f"[evidence] {name} done at {time.time() - start:.0f} s", flush=True)

    print(f"\n## Attention map: mass in the blob's box / the box's share ({args.questions} grading questions)\n")
    print("| query, layers | " + " | ".join(figures["maps"]) + " |")
    print("|---|" + "---:|" * len(figures["maps"]))
    for key in figures["maps"]["trained"]["ratio"]:
        cells = [f"{m['ratio'][key]:.2f} (median {m['ratio_median'][key]:.2f})" for m in figures["maps"].values()]
        print(f"| {key} | " + " | ".join(cells) + " |")
    print("\n## Image reliance (held-out questions, real pictures vs grey of the same size)\n")
    print("| model | answers that change | preference falls >= 0.1 | mean drop of the chosen letter's preference | n |")
    print("|---|---:|---:|---:|---:|")
    for name, r in figures["reliance"].items():
        print(
            f"| {name} | {100 * r['changed']:.1f}% | {100 * r['relies']:.1f}% | {r['probability_drop']:+.3f} "
            f"| {r['n']} |"
        )
    trained_map = figures["maps"]["trained"]
    reliance_seconds = figures["reliance"]["trained"]["reliance_seconds"]
    print(
        f"\nCost per answer (tiny proof model, {torch.get_num_threads()} threads): map and preference "
        f"{trained_map['map_seconds']:.3f} s, image reliance {reliance_seconds:.3f} s."
    )
    default = trained_map["ratio"]["letter late"]
    changed = figures["reliance"]["trained"]["changed"]
    map_met = "MET" if default >= GOAL_RATIO else "NOT MET"
    changed_met = "MET" if changed >= GOAL_CHANGED else "NOT MET"
    print(
        f"Goals: map ratio (letter, late layers) {default:.2f} >= {GOAL_RATIO}: {map_met}; "
        f"trained answers changing {100 * changed:.1f}% >= {GOAL_CHANGED:.0%}: {changed_met}."
    )
    (args.run / "evidence_proof.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
