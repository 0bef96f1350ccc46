"""The Fine-tune demo's start model and questions (``train.demo_model``), and held-out scoring in a GRPO run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.callbacks import read_metrics
from train.config import RECIPES, grpo_recipe, read_recipe
from train.data import load_samples
from train.demo_model import DemoSettings, demo_parameters, is_demo_model
from train.synthetic_task import CANONICAL_OPTIONS
from train.tiny_model import is_tiny_random

TESTS = Path(__file__).parent


def test_the_demo_is_the_learning_proofs_model_and_settings():
    """The demo promises the proof's recipe: its start model, warm-up and GRPO settings must not drift apart.

    Where the demo differs (8 questions per step instead of 16, KL beta 0.04 instead of 0.1, 200 steps
    instead of 300, as demo_cpu.yaml explains), the difference is listed here, so a change is deliberate.
    """
    from benchmarks.learning import FULL, MIN_PIXELS, parse_args
    from train.demo_model import MIN_PIXELS as DEMO_MIN_PIXELS

    proof, demo = parse_args([]), DemoSettings()
    assert (demo.hidden_size, demo.num_layers, demo.image_size) == (FULL["hidden_size"], FULL["num_layers"], 224)
    assert FULL["image_size"] == demo.image_size and DEMO_MIN_PIXELS == MIN_PIXELS
    assert (demo.warmup_steps, demo.train_questions) == (FULL["warmup_steps"], FULL["train_samples"])
    assert (demo.warmup_batch_size, demo.warmup_learning_rate) == (proof.warmup_batch_size, proof.warmup_lr)
    assert (demo.prompt_style, demo.answer_style, demo.seed) == (proof.prompt_style, proof.answer, proof.seed)

    recipe = grpo_recipe(RECIPES / "demo_cpu.yaml")
    same = {
        "num_generations": FULL["num_generations"], "temperature": FULL["temperature"],
        "learning_rate": FULL["grpo_lr"], "lr_scheduler_type": FULL["grpo_scheduler"], "lora_r": proof.lora_r,
        "lora_alpha": proof.lora_alpha, "lora_dropout": 0.0, "max_pixels": demo.max_pixels, "min_pixels": MIN_PIXELS,
        "prompt_style": proof.prompt_style, "reward_funcs": ["format", "accuracy"], "warmup_steps": 0,
        "max_completion_length": proof.max_completion_length,
    }  # fmt: skip
    assert {k: recipe[k] for k in same} == same
    differs = {"per_device_train_batch_size": 8 * FULL["num_generations"], "beta": 0.04, "max_steps": 200}
    assert {k: recipe[k] for k in differs} == differs
    # The real models' settings stay Med-R1's.
    tab = grpo_recipe(RECIPES / "finetune_tab.yaml")
    assert (tab["beta"], tab["learning_rate"], tab["lora_r"], tab["prompt_style"]) == (0.04, 1e-5, 64, "think")
    assert set(read_recipe(RECIPES / "demo_cpu.yaml")) >= set(same) | set(differs)


def test_the_built_demo_says_what_it_is_and_its_questions_are_the_proofs_task(demo_files):
    model = demo_files.model
    assert demo_files.complete() and is_demo_model(model) and is_tiny_random(model)
    assert model.name == "medr1-demo-synthetic-qwen2_vl"
    config = json.loads((model / "config.json").read_text())
    assert config["medr1_demo_task"] == "synthetic" and config["medr1_tiny_random"] is True
    assert 0.45e6 < demo_parameters(model) < 0.55e6, "the app calls it a 0.5 M-parameter model"
    readme = (model / "README.md").read_text()
    assert "DEMO" in readme and "synthetic task only" in readme and "meaningless" in readme
    card = json.loads((model / "medr1_card.json").read_text())
    assert card["prompt_style"] == "no_think" and card["settings"]["warmup_steps"] == 8

    train = load_samples(demo_files.train / "data.jsonl")
    heldout = load_samples(demo_files.heldout / "data.jsonl")
    assert (len(train.samples), len(heldout.samples)) == (64, 16) and not train.problems and not heldout.problems
    assert sorted(p.name for p in demo_files.train.iterdir()) == ["data.jsonl", "images"]
    for sample in train.samples + heldout.samples:
        assert sample.options == CANONICAL_OPTIONS[sample.question_type], "the proof's fixed option order"
    assert Image.open(train.samples[0].image).size == (112, 112)
    pixels = {Image.open(s.image).tobytes() for s in train.samples}
    assert not pixels & {Image.open(s.image).tobytes() for s in heldout.samples}, "held-out pictures are new"


def test_a_demo_of_other_settings_is_rebuilt_not_reused(demo_files):
    from train.demo_model import DemoFiles

    assert DemoFiles(demo_files.root, demo_files.settings).complete()
    assert not DemoFiles(demo_files.root, DemoSettings()).complete()


def test_the_demo_spec_banner_and_label_say_what_it_is(demo_files):
    from medr1_app import render
    from medr1_app.models import DEMO_KEY, demo_spec, spec_for_path

    spec = demo_spec(demo_files)
    assert spec.key == DEMO_KEY == "tiny-demo" and spec.demo and spec.tiny and spec.prompt_style == "no_think"
    assert "0.5 M parameters" in spec.label and "synthetic task" in spec.label and "not a medical model" in spec.label
    banner = render.banner_html(spec.tiny, demo=spec.demo)
    assert "Demo model: 0.5 M parameters" in banner and "meaningless" in banner and 'role="alert"' in banner
    found = spec_for_path(demo_files.model)
    assert found.demo and found.kind == "demo" and "[demo model, synthetic task]" in found.label


@pytest.mark.slow
def test_grpo_scores_the_heldout_questions_before_and_after(tmp_path, demo_files):
    """``--heldout_path``: the kit's evaluation runs before the first step and after the last, into files."""
    from test_training import run_cli

    out = tmp_path / "run"
    recipe = {**read_recipe(RECIPES / "demo_cpu.yaml"), "max_steps": 2, "per_device_train_batch_size": 16}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    run_cli([
        "grpo", "--config", str(tmp_path / "recipe.yaml"), "--model_name_or_path", str(demo_files.model),
        "--dataset_path", str(demo_files.train), "--heldout_path", str(demo_files.heldout), "--output_dir", str(out),
    ])  # fmt: skip
    heldout = json.loads((out / "heldout.json").read_text())
    assert heldout["before"]["step"] == 0 and heldout["after"]["step"] == 2
    for stage in ("before", "after"):
        assert heldout[stage]["questions"] == 16 and 0 <= heldout[stage]["accuracy"] <= 1
        assert set(heldout[stage]["by_question_type"]) == set(CANONICAL_OPTIONS)
    events = [r for r in read_metrics(out / "metrics.jsonl") if r.get("event") == "heldout"]
    assert [e["stage"] for e in events] == ["before", "after"]
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if "reward" in r]
    assert steps == [1, 2]
