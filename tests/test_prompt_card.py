"""A checkpoint is asked with the prompt it was trained with: recorded in its card, read back by eval and the app."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from train.config import GRPOScriptArguments
from train.data import LoadResult
from train.eval.cli import make_parser, modernise_argv, plan_runs
from train.eval.results import ResultsError, check_run_config
from train.model_io import trained_prompt
from train.prepare import write_model_card


def _card(out, prompt: str | None, style: str = "think"):
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "base-model"}))
    data = GRPOScriptArguments(dataset_path=["d.jsonl"], prompt=prompt, prompt_style=style)
    model = SimpleNamespace(
        model_name_or_path="base-model",
        use_peft=True,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        lora_target_modules=None,
    )
    write_model_card(out, "grpo", model, data, SimpleNamespace(), LoadResult(), [])
    return json.loads((out / "medr1_card.json").read_text())


def test_the_card_records_the_prompt_name_and_style(tmp_path):
    card = _card(tmp_path / "run", "medr1-train", "no_think")
    assert (card["prompt"], card["prompt_style"], card["data_config"]["prompt"]) == (
        "medr1-train",
        "no_think",
        "medr1-train",
    )
    assert "Prompt: medr1-train (no_think)" in (tmp_path / "run" / "README.md").read_text()
    assert _card(tmp_path / "default", None)["prompt"] == "medr1"
    assert trained_prompt(tmp_path / "run") == ("medr1-train", "no_think")


def test_a_card_from_before_prompt_names_means_medr1(tmp_path):
    (tmp_path / "medr1_card.json").write_text(json.dumps({"data_config": {"prompt_style": "no_think"}}))
    assert trained_prompt(tmp_path) == ("medr1", "no_think")
    assert trained_prompt(tmp_path / "nothing-here") == (None, None)


def test_an_unknown_prompt_name_is_refused_with_the_choices():
    with pytest.raises(
        ValueError, match="Unknown prompt 'medr2': use one of medr1, medr1-train, medr1-eval, think-after"
    ):
        GRPOScriptArguments(prompt="medr2")


def test_medr1_eval_asks_each_checkpoint_with_its_own_prompt_unless_told(tmp_path):
    _card(tmp_path / "ct", "think-after")
    _card(tmp_path / "mri", None)

    def plan(*extra: str):
        argv = ["--model", "base-model", "--dataset_path", "d.jsonl", "--output_dir", str(tmp_path), *extra]
        argv += ["--checkpoints_only", "--checkpoint", f"CT={tmp_path / 'ct'}", f"MRI={tmp_path / 'mri'}"]
        data, args = make_parser().parse_args_and_config(args=modernise_argv(argv, warn=lambda _: None))
        return {r.name: r.prompt for r in plan_runs(args, data)[0]}

    assert plan() == {"CT": "think-after", "MRI": "medr1"}
    assert plan("--prompt", "medr1-eval") == {"CT": "medr1-eval", "MRI": "medr1-eval"}


def test_resuming_with_another_prompt_is_refused(tmp_path):
    config = {"model": "m", "prompt_style": "think", "prompt": "medr1"}
    check_run_config(tmp_path, config)
    (tmp_path / "results.jsonl").write_text('{"id": "1", "gold": "A", "correct": true}\n')
    assert check_run_config(tmp_path, config) is True
    with pytest.raises(ResultsError, match="prompt: 'medr1' before, 'medr1-train' now"):
        check_run_config(tmp_path, {**config, "prompt": "medr1-train"})
    # A run.json written before prompts had names was made with medr1's text.
    (tmp_path / "run.json").write_text(json.dumps({"model": "m", "prompt_style": "think"}))
    assert check_run_config(tmp_path, config) is True


def test_the_app_reads_the_prompt_back_and_med_r1_checkpoints_default_to_its_training_text(tmp_path):
    from medr1_app.models import MEDR1_REPO, builtin_models, spec_for_path, spec_from_argument

    _card(tmp_path / "run", "think-after")
    spec = spec_for_path(tmp_path / "run")
    assert (spec.kind, spec.prompt, spec.prompt_style) == ("adapter", "think-after", "think")
    medr1 = [s for s in builtin_models() if s.source == MEDR1_REPO]
    assert medr1 and {s.prompt for s in medr1} == {"medr1-train"}
    assert spec_from_argument(f"{MEDR1_REPO}:VQA_OCT").prompt == "medr1-train"
    assert spec_from_argument("qwen2-vl-2b").prompt == "medr1"
