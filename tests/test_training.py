"""``medr1-train`` end to end on the tiny model: GRPO and SFT runs, metrics, adapters, resume, data parallel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from train.callbacks import read_metrics
from train.model_io import load_model, load_processor
from train.protocol import build_messages, build_prompt

TESTS = Path(__file__).parent
TINY_IMAGES = ["--max_pixels", "12544", "--min_pixels", "3136"]


def common_args(model: Path, data: Path, out: Path, steps: int) -> list[str]:
    return [
        "--model_name_or_path", str(model), "--dataset_path", str(data), "--output_dir", str(out),
        "--max_steps", str(steps), "--logging_steps", "1", "--report_to", "none", "--gradient_checkpointing", "false",
        "--lora_r", "8", "--lora_alpha", "16", "--learning_rate", "5e-3", "--seed", "0", *TINY_IMAGES,
    ]  # fmt: skip


def run_cli(args: list[str], env: dict | None = None, launcher: list[str] | None = None, check: bool = True):
    full_env = {**os.environ, "PYTHONPATH": str(TESTS), "HF_HUB_OFFLINE": "1", **(env or {})}
    command = [*(launcher or [sys.executable, "-m"]), "train.cli", *args]
    result = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def grpo_args(model: Path, data: Path, out: Path, steps: int, rewards: list[str]) -> list[str]:
    return [
        "grpo", *common_args(model, data, out, steps), "--per_device_train_batch_size", "4", "--num_generations", "4",
        "--max_completion_length", "12", "--reward_modules", "reward_plugins", "--reward_funcs", *rewards,
    ]  # fmt: skip


def logits(model, processor, image: Image.Image) -> torch.Tensor:
    text = processor.apply_chat_template(
        build_messages(build_prompt("Which?", ["CT", "MRI"])), add_generation_prompt=True
    )
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.slow
def test_grpo_cli_writes_metrics_and_an_adapter_that_changes_the_model(tmp_path, tiny_model_dir, synthetic_jsonl):
    out = tmp_path / "run"
    run_cli([*grpo_args(tiny_model_dir, synthetic_jsonl, out, 3, ["format", "accuracy", "letter_a"]), "--beta", "0.04"])

    steps = [r for r in read_metrics(out / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for key in ("loss", "reward", "rewards/format/mean", "rewards/accuracy/mean", "completions/mean_length", "kl"):
        assert all(key in r for r in steps), key
    assert steps[-1]["samples"] and {"format", "accuracy", "letter_a"} == set(steps[-1]["samples"][0]["rewards"])

    card = json.loads((out / "medr1_card.json").read_text())
    assert card["rewards"] == ["format", "accuracy", "letter_a"] and card["tiny_random_base"] is True
    assert card["data"]["train_questions"] == 24
    assert "meaningless" in (out / "README.md").read_text()
    assert (out / "adapter_model.safetensors").is_file() and (out / "processor_config.json").is_file()

    from peft import PeftModel

    image = Image.open(sorted((synthetic_jsonl.parent / "images").iterdir())[0])
    processor = load_processor(str(out), max_pixels=12544, min_pixels=3136)  # processor saved with the adapter
    base = load_model(str(tiny_model_dir)).eval()
    before = logits(base, processor, image)
    tuned = PeftModel.from_pretrained(load_model(str(tiny_model_dir)), str(out)).eval()
    after = logits(tuned, processor, image)
    assert (after - before).abs().max() > 1e-4, "the trained adapter does not change the model's output"


@pytest.mark.slow
def test_grpo_resumes_after_a_crash(tmp_path, tiny_model_dir, synthetic_jsonl):
    out = tmp_path / "run"
    args = [*grpo_args(tiny_model_dir, synthetic_jsonl, out, 4, ["letter_a", "crash"]), "--save_steps", "1"]
    crashed = run_cli([*args, "--resume_from_checkpoint", "auto"], env={"MEDR1_CRASH_AT_STEP": "2"}, check=False)
    assert crashed.returncode == 137
    assert (out / "checkpoint-2").is_dir() and not (out / "adapter_model.safetensors").exists()
    # What a kill while saving step 3 leaves behind: a checkpoint folder without its trainer state, and a
    # half-written metrics line. Resuming must skip both rather than fail.
    (out / "checkpoint-3").mkdir()
    shutil.copy(out / "checkpoint-2" / "adapter_model.safetensors", out / "checkpoint-3")
    with (out / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 3, "rewa')

    resumed = run_cli([*args, "--resume_from_checkpoint", "auto"])
    assert "Skipping checkpoint-3" in resumed.stderr + resumed.stdout
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    steps = [r["step"] for r in read_metrics(out / "metrics.jsonl") if "reward" in r]
    assert steps == [1, 2, 3, 4], "the metrics file must continue where the checkpoint left off, without repeats"
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_sft_cli_trains_the_answer_baseline(tmp_path, tiny_model_dir, synthetic_jsonl):
    out = tmp_path / "sft"
    run_cli(["sft", *common_args(tiny_model_dir, synthetic_jsonl, out, 2), "--per_device_train_batch_size", "4"])
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert json.loads((out / "medr1_card.json").read_text())["kind"] == "sft"
    assert (out / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_two_process_data_parallel_sees_the_same_samples_as_one_process(tmp_path, tiny_model_dir, synthetic_jsonl):
    """Global batch 8 (4 questions x 2 generations) as 1 process x 8 and as 2 processes x 4 (gloo on CPU)."""

    def run(name: str, processes: int) -> list[Counter]:
        seen = tmp_path / f"seen-{name}"
        seen.mkdir()
        args = [
            *grpo_args(tiny_model_dir, synthetic_jsonl, tmp_path / name, 2, ["letter_a", "seen"]),
            "--num_generations", "2", "--per_device_train_batch_size", str(8 // processes), "--save_strategy", "no",
        ]  # fmt: skip
        launcher = None
        if processes > 1:
            launcher = [
                sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", "29533", "-m",
            ]  # fmt: skip
        run_cli(args, env={"MEDR1_SEEN_DIR": str(seen), "CUDA_VISIBLE_DEVICES": ""}, launcher=launcher)
        files = sorted(seen.glob("rank*.jsonl"))
        assert len(files) == processes
        per_rank = [[json.loads(line) for line in f.read_text().splitlines()] for f in files]
        return [Counter(id_ for rank in per_rank for id_ in rank[step]) for step in range(2)]

    single, double = run("single", 1), run("double", 2)
    assert sum(sum(c.values()) for c in single) == sum(sum(c.values()) for c in double) == 16
    assert single == double, "each step must see the same questions, whether on one process or two"
