"""Measure the Fine-tune tab's demo as a user runs it: through the app's HTTP API, on this machine's CPU.

What the issue asks of the demo: from the tab, a run whose mean reward over the last third of its steps
exceeds the first third by at least 0.3, within 5 minutes, and a held-out accuracy after the run above
the one before. This script starts the app (``build_app`` with the Fine-tune tab, as ``medr1-app``),
presses *Use the demo dataset* (``/finetune_demo``; the first time, this builds the demo model and its
questions, which is timed separately) and *Start training* (``/finetune_start``) with the demo model and
every setting the tab shows for it (``train/recipes/demo_cpu.yaml``), waits for the run to finish and
reads the figures from what the run wrote (``metrics.jsonl``, ``heldout.json``) and from the summary the
tab shows. The load average is printed before and after: other work on the machine slows the run.

Run::

    python benchmarks/finetune_demo.py                      # the demo's cache in runs/finetune-demo/cache
    python benchmarks/finetune_demo.py --cache-dir ~/.cache/medr1   # the app's own cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if __package__ in (None, ""):  # run as a script: make `medr1_app` and `train` importable from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_RISE, GOAL_SECONDS = 0.3, 5 * 60


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/finetune-demo"), help="runs folder and report")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="where the demo model is built (default: OUT/cache)"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the demo recipe's)")
    args = parser.parse_args(argv)

    from gradio_client import Client

    from medr1_app.app import AppConfig, build_app, launch_kwargs
    from medr1_app.models import DEMO_KEY
    from medr1_app.training_runs import RunManager
    from medr1_app.ui_finetune import DEMO_RECIPE, finetune_tab, reward_thirds
    from train.callbacks import read_metrics
    from train.config import grpo_recipe
    from train.heldout import read_heldout

    runs = RunManager(args.out / "runs")
    config = AppConfig(
        model="qwen2-vl-2b", runs_dir=str(runs.runs_dir), cache_dir=str(args.cache_dir or args.out / "cache")
    )
    demo = build_app(config, extra_tabs=[finetune_tab(runs)])
    _, url, _ = demo.launch(**launch_kwargs(config, prevent_thread_lock=True, quiet=True))
    client = Client(url, verbose=False)
    report: dict = {"cpu_count": os.cpu_count(), "load_before": load()}
    try:
        tick = time.perf_counter()
        client.predict(api_name="/finetune_demo")
        report["demo_data_seconds"] = round(time.perf_counter() - tick, 1)  # includes the first-use build

        r = grpo_recipe(DEMO_RECIPE)
        settings = {
            "model_key": DEMO_KEY, "reward_names": r["reward_funcs"], "weight_text": "",
            "generations": r["num_generations"], "batch": r["per_device_train_batch_size"], "lr": r["learning_rate"],
            "rank": r["lora_r"], "alpha": r["lora_alpha"], "targets": "", "kl_beta": r["beta"],
            "completion_len": r["max_completion_length"], "steps": args.steps or r["max_steps"],
            "pixels": r["max_pixels"], "save_steps": r["save_steps"], "run_seed": r["seed"],
        }  # fmt: skip
        report["load_at_start"] = load()
        tick = time.perf_counter()
        final = client.submit(**settings, api_name="/finetune_start").result()
        report["run_seconds"] = round(time.perf_counter() - tick, 1)
        report["load_after"] = load()
    finally:
        demo.close()

    run_dir = runs.current.output_dir
    metrics = read_metrics(run_dir / "metrics.jsonl")
    first, last, third = reward_thirds(metrics)
    heldout = read_heldout(run_dir)
    steps = [m for m in metrics if "reward" in m]
    report |= {
        "run_dir": str(run_dir),
        "state": "finished" if 'data-state="finished"' in final[0] else "not finished",
        "steps": len(steps),
        "reward_first_third": round(first, 3),
        "reward_last_third": round(last, 3),
        "rise": round(last - first, 3),
        "steps_per_third": third,
        "train_accuracy_first_third": round(sum(m["rewards/accuracy/mean"] for m in steps[:third]) / third, 3),
        "train_accuracy_last_third": round(sum(m["rewards/accuracy/mean"] for m in steps[-third:]) / third, 3),
        "heldout": heldout,
        "training_seconds": round(steps[-1]["time"] - steps[0]["time"], 1) if steps else None,
        "summary_shown": final[-1],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    before, after = heldout["before"], heldout["after"]
    print(
        f"\n## Fine-tune demo from the tab ({report['cpu_count']} CPU cores; load average {report['load_at_start']} at "
        f"the start, {report['load_after']} at the end)\n\n"
        f"- Use the demo dataset: {report['demo_data_seconds']} s (the first time, the demo model is built)\n"
        f"- Start training to finished: {report['run_seconds']} s for {report['steps']} steps ({report['state']})\n"
        f"- Mean reward: {first:.3f} over the first third of the steps, {last:.3f} over the last third "
        f"({last - first:+.3f}); sampled accuracy {report['train_accuracy_first_third']:.1%} -> "
        f"{report['train_accuracy_last_third']:.1%}\n"
        f"- Held-out accuracy ({before['questions']} questions): {before['accuracy']:.1%} before -> "
        f"{after['accuracy']:.1%} after (format {before['format_rate']:.0%} -> {after['format_rate']:.0%}; "
        f"by type after: {after['by_question_type']})\n"
    )
    met = last - first >= GOAL_RISE and report["run_seconds"] <= GOAL_SECONDS and after["accuracy"] > before["accuracy"]
    print(
        f"Goal (rise >= {GOAL_RISE}, within {GOAL_SECONDS // 60} minutes, held-out after > before): "
        f"{'MET' if met else 'NOT MET'}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
