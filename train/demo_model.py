"""The Fine-tune demo's start model and data: the learning proof's random model after its format warm-up.

Why it exists: a random model never writes the answer layout, so a Fine-tune run from the tiny random
model scores 0 on every reward, every group's advantages are 0 and every curve is flat; to a newcomer
the tab looks broken. The learning proof (``benchmarks/learning.py``) shows what GRPO needs to learn
on a CPU: a random Qwen2-VL of 0.5 M parameters whose tokenizer knows the task's words, warmed up for
60 SFT steps on answers naming a *random* option (``train.warmup``: the layout, no task knowledge), then
LoRA-GRPO on the synthetic task (``train.synthetic_task``) in its fixed option order. This module builds
that start model and writes the task's train and held-out questions next to it, offline, from seeds:
the same model and the same questions on every machine.

It can never be mistaken for a real model: its ``config.json`` carries ``medr1_demo_task`` (and the
tiny model's ``medr1_tiny_random``), its name and model card say what it is, and :func:`is_demo_model`
lets the app show a banner saying so. Its answers mean something only about the synthetic task's
pictures, and nothing medical.

The settings below are the proof's (``FULL`` in ``benchmarks/learning.py``; ``tests/test_demo_model.py``
checks they still agree); the GRPO settings of the demo run are ``train/recipes/demo_cpu.yaml``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from train.synthetic_task import TEST_SEED_OFFSET, TRAIN_SEED_OFFSET, tokenizer_corpus, write_fixed_split
from train.tiny_model import TINY_MARKER, build_tiny_model

DEMO_MARKER = "medr1_demo_task"
DEMO_NAME = "medr1-demo-synthetic-qwen2_vl"
# Bumped whenever DemoSettings or the build change, so a cached demo of another version is not reused.
DEMO_VERSION = 1
# The processor's lower bound on image area, as in the proof (its upper bound is image_size squared).
MIN_PIXELS = 56 * 56


@dataclass(frozen=True)
class DemoSettings:
    """The start model and the questions of the demo: the learning proof's settings, seed 0."""

    seed: int = 0
    hidden_size: int = 128
    num_layers: int = 2
    image_size: int = 224
    prompt_style: str = "no_think"
    answer_style: str = "letter"
    train_questions: int = 600
    heldout_questions: int = 48
    warmup_steps: int = 60
    warmup_batch_size: int = 16
    warmup_learning_rate: float = 3e-3

    @property
    def max_pixels(self) -> int:
        return self.image_size**2


@dataclass(frozen=True)
class DemoFiles:
    """Where a built demo lives: the start model and the two question sets (medr1 JSONL + PNGs)."""

    root: Path
    settings: DemoSettings = DemoSettings()

    @property
    def model(self) -> Path:
        return self.root / DEMO_NAME

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def heldout(self) -> Path:
        return self.root / "heldout"

    def complete(self) -> bool:
        """Built, with these settings: a demo of other settings (an older medr1) is rebuilt, not reused."""
        try:
            card = json.loads((self.model / "medr1_card.json").read_text())
        except (OSError, ValueError):
            return False
        return (
            card.get("settings") == asdict(self.settings)
            and card.get("version") == DEMO_VERSION
            and is_demo_model(self.model)
            and (self.train / "data.jsonl").is_file()
            and (self.heldout / "data.jsonl").is_file()
        )


def build_demo(root: str | Path, settings: DemoSettings = DemoSettings()) -> DemoFiles:
    """Write the demo's questions, build the random model and warm it up; returns the files (about a minute).

    The warm-up sees the training questions' pictures with random-option answers, as in the proof, so
    the model keeps the layout on every picture and starts GRPO at chance (about 25 % right).
    """
    from train.data import load_samples
    from train.warmup import run_warmup

    files = DemoFiles(Path(root), settings)
    train_jsonl = write_fixed_split(
        files.train, settings.train_questions, settings.seed + TRAIN_SEED_OFFSET, settings.image_size
    )
    write_fixed_split(files.heldout, settings.heldout_questions, settings.seed + TEST_SEED_OFFSET, settings.image_size)
    base = build_tiny_model(
        files.root / "random-init",
        seed=settings.seed,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        extra_corpus=tokenizer_corpus(settings.prompt_style),
    )
    run_warmup(
        base,
        files.model,
        load_samples(train_jsonl).samples,
        seed=settings.seed,
        steps=settings.warmup_steps,
        batch_size=settings.warmup_batch_size,
        learning_rate=settings.warmup_learning_rate,
        prompt_style=settings.prompt_style,
        answer_style=settings.answer_style,
        max_pixels=settings.max_pixels,
        min_pixels=MIN_PIXELS,
    )
    shutil.rmtree(base)
    mark_demo_model(files.model, settings)
    return files


def mark_demo_model(model_dir: Path, settings: DemoSettings) -> None:
    """Name the warmed-up checkpoint for what it is: config marker, model card and README."""
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    config[DEMO_MARKER] = "synthetic"
    config[TINY_MARKER] = True
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for leftover in ("training_args.bin",):
        (model_dir / leftover).unlink(missing_ok=True)
    from safetensors import safe_open

    with safe_open(str(model_dir / "model.safetensors"), "pt") as handle:
        n_params = sum(_numel(handle.get_slice(k).get_shape()) for k in handle.keys())  # noqa: SIM118
    card = {
        "kind": "demo-warmup",
        "demo_task": "synthetic",
        "tiny_random_base": True,
        "parameters": n_params,
        "prompt": "medr1",
        "prompt_style": settings.prompt_style,
        "settings": asdict(settings),
        "version": DEMO_VERSION,
        "what": "Random weights plus a format warm-up on random-option answers: it answers the synthetic "
        "task at chance (about 25 %) until GRPO teaches it. Meaningless on any real image.",
    }
    (model_dir / "medr1_card.json").write_text(json.dumps(card, indent=2))
    (model_dir / "README.md").write_text(
        f"# medr1 DEMO model: {n_params / 1e6:.2f} M parameters, synthetic task only\n\n"
        f"**Random weights ({n_params:,} parameters) after a {settings.warmup_steps}-step format warm-up on the "
        "synthetic task (`train.synthetic`), with answers naming a random option.** It writes the answer layout "
        "and knows nothing else: it starts at chance, and only GRPO on the synthetic task (the app's Fine-tune "
        "demo) teaches it to read those pictures. Its answers about any real image are meaningless. Built "
        "offline by `train.demo_model` (seed {settings.seed}). Never use it for anything clinical.\n"
    )


def _numel(shape: list[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def demo_parameters(model_dir: str | Path) -> int | None:
    """The parameter count written in a demo model's card (None for anything else)."""
    try:
        return int(json.loads((Path(model_dir) / "medr1_card.json").read_text())["parameters"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_demo_model(model_path: str | Path) -> bool:
    """True when ``model_path`` (a checkpoint or an adapter trained on one) is the demo's start model."""
    path = Path(model_path)
    for candidate in (path / "config.json", path / "adapter_config.json"):
        if candidate.is_file():
            data = json.loads(candidate.read_text())
            if data.get(DEMO_MARKER):
                return True
            base = data.get("base_model_name_or_path")
            if base and Path(base) != path and Path(base).is_dir():
                return is_demo_model(base)
    return False


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="medr1-train demo",
        description="Build the Fine-tune demo offline: the start model (0.5 M parameters, format warm-up) and the "
        "synthetic task's training and held-out questions.",
    )
    parser.add_argument("output_dir")
    parser.add_argument(
        "--settings", default="{}", help="DemoSettings fields to change, as JSON (the tests build a small demo)."
    )
    args = parser.parse_args(argv)
    files = build_demo(args.output_dir, DemoSettings(**json.loads(args.settings)))
    print(
        f"Demo built in {files.root}. Train it as the Fine-tune tab does:\n"
        f"  medr1-train grpo --config train/recipes/demo_cpu.yaml --model_name_or_path {files.model} \\\n"
        f"    --dataset_path {files.train} --heldout_path {files.heldout} --output_dir runs/demo"
    )


if __name__ == "__main__":
    main()
