"""The Fine-tune tab through the app's HTTP API: demo data, a real run, the adapter in the Ask tab."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pydicom.examples
import pytest
import reward_plugins  # noqa: F401 - registers "letter_a" in train.rewards, as a user's module would
import yaml
from medr1_app_testkit import RESULT, ask_args, launch, registry_with_demo

from train.callbacks import read_metrics

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

TESTS = Path(__file__).parent
CT = Path(pydicom.examples.get_path("ct"))
# /finetune_start as clients see it: progress, 4 plots, samples, download, result, summary (buttons stay
# server-side).
PROGRESS, SAMPLES, DOWNLOAD, RESULT_TEXT, SUMMARY = 0, 5, 6, 7, 8


@pytest.fixture(scope="module")
def app(tiny_model_dir, demo_files, tmp_path_factory):
    from medr1_app.app import AppConfig, build_app
    from medr1_app.training_runs import RunManager
    from medr1_app.ui_finetune import finetune_tab

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    runs = RunManager(tmp_path_factory.mktemp("runs"))
    demo = build_app(
        AppConfig(model=str(tiny_model_dir), runs_dir=str(runs.runs_dir)),
        extra_tabs=[finetune_tab(runs)],
        registry=registry_with_demo(demo_files, runs.runs_dir),
    )
    url = launch(demo)
    yield demo, url, runs
    demo.close()


def start_kwargs(ctx, steps: int, rewards=("format", "accuracy", "letter_a")) -> dict:
    return {
        "model_key": ctx.default_model, "reward_names": list(rewards), "weight_text": "", "generations": 4,
        "batch": 4, "lr": 5e-3, "rank": 4, "alpha": 8, "targets": "", "kl_beta": 0.04, "completion_len": 32,
        "steps": steps, "pixels": 12544, "save_steps": 1, "run_seed": 0,
    }  # fmt: skip


def test_the_summary_gives_the_rise_of_the_mean_reward_and_the_heldout_accuracy():
    from medr1_app.ui_finetune import reward_thirds, summary_html

    steps = [{"step": i + 1, "reward": r} for i, r in enumerate([1.0, 1.2, 1.1, 1.3, 1.5, 1.7])]
    assert reward_thirds(steps[:2]) is None, "no third to average yet"
    assert reward_thirds(steps) == pytest.approx((1.1, 1.6, 2))
    before = {"event": "heldout", "stage": "before", "step": 0, "questions": 48, "accuracy": 0.25}
    running = summary_html([before, *steps], done=False)
    assert 'data-first="1.100"' in running and 'data-last="1.600"' in running and 'data-rise="0.500"' in running
    assert "1.10 over the first third" in running and "1.60 over the last third (+0.50" in running
    assert "48 questions never trained on" in running and "25.0 % before → …" in running
    after = {**before, "stage": "after", "step": 6, "accuracy": 0.729}
    finished = summary_html([before, *steps, after], done=True)
    assert "25.0 % before → 72.9 % after" in finished and 'data-after="0.7290"' in finished
    assert summary_html([], done=True) == "", "nothing to say before the first step"


def test_the_demo_model_gets_the_demo_recipe_and_every_other_model_med_r1s(demo_files):
    from medr1_app.models import builtin_models, demo_spec
    from medr1_app.ui_finetune import DEMO_RECIPE, SETTINGS_LABELS, TAB_RECIPE, recipe_for

    assert recipe_for(demo_spec(demo_files)) == DEMO_RECIPE
    assert {recipe_for(spec) for spec in builtin_models()} == {TAB_RECIPE}
    assert "Med-R1" in SETTINGS_LABELS[TAB_RECIPE] and "demo" in SETTINGS_LABELS[DEMO_RECIPE]


def test_rewards_registered_in_train_appear_in_the_tab(app):
    from medr1_app.ui_finetune import reward_choices, reward_modules

    assert {"format", "accuracy", "letter_a"} <= set(reward_choices())
    assert reward_modules(["format", "letter_a"]) == ["reward_plugins"]


@pytest.mark.slow
def test_demo_data_run_then_answer_with_the_adapter(app):
    demo, url, runs = app
    ctx = demo.medr1_context
    client = Client(url, verbose=False)
    report = client.predict(api_name="/finetune_demo")  # the validation report (State and button stay server-side)
    assert "64 questions ready" in report and "| CT |" in report and "16 more questions" in report

    job = client.submit(**start_kwargs(ctx, steps=3), api_name="/finetune_start")
    final = job.result()
    updates = job.outputs()
    assert len(updates) >= 2, "progress should stream while training"
    assert 'data-state="finished"' in final[PROGRESS] and "Adapter saved" in final[RESULT_TEXT]
    assert "rewards:" in final[SAMPLES]
    assert Path(final[DOWNLOAD]["value"]).suffix == ".zip" and final[DOWNLOAD]["interactive"]

    run_dir = runs.current.output_dir
    assert runs.adapters() == [run_dir]
    metrics = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in metrics] == [1, 2, 3]
    assert all("rewards/letter_a/mean" in r and "kl" in r for r in metrics), "the tab's reward choice reaches the run"
    # The run is the kit's CLI on a recipe in the run folder, which repeats it from a shell.
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert recipe["beta"] == 0.04 and recipe["reward_funcs"] == ["format", "accuracy", "letter_a"]
    assert recipe["output_dir"] == str(run_dir) and recipe["max_steps"] == 3
    # The demo data's held-out questions are scored before and after, whichever model trains on them.
    assert recipe["heldout_path"] == [str(run_dir / "heldout")] and recipe["prompt_style"] == "think"
    assert "Held-out accuracy</b> (16 questions never trained on" in final[SUMMARY] and "% after" in final[SUMMARY]

    message = client.predict(api_name="/finetune_load")  # the key it selects stays server-side (a State)
    assert "Selected" in message
    key = f"adapter:{run_dir.resolve()}"
    client.predict([handle_file(str(CT))], api_name="/open")
    answer = client.predict(*ask_args(model=key, max_new_tokens=16), api_name="/ask")
    assert answer[RESULT]["model"]["adapter"] == str(run_dir.resolve())


@pytest.mark.slow
def test_the_demo_model_trains_with_the_demo_settings_then_answers_a_heldout_question(app, demo_files):
    """The loop the demo shows, through the API: the demo start model, its recipe, held-out scores, then Ask."""
    from medr1_app.models import DEMO_KEY
    from medr1_app.ui_finetune import DEMO_RECIPE
    from train.config import grpo_recipe
    from train.data import load_samples

    demo, url, runs = app
    client = Client(url, verbose=False)
    client.predict(api_name="/finetune_demo")
    r = grpo_recipe(DEMO_RECIPE)
    final = client.submit(
        model_key=DEMO_KEY, reward_names=r["reward_funcs"], weight_text="", generations=r["num_generations"],
        batch=16, lr=r["learning_rate"], rank=r["lora_r"], alpha=r["lora_alpha"], targets="", kl_beta=r["beta"],
        completion_len=r["max_completion_length"], steps=3, pixels=r["max_pixels"], save_steps=50, run_seed=0,
        api_name="/finetune_start",
    ).result()  # fmt: skip
    assert 'data-state="finished"' in final[PROGRESS]
    run_dir = runs.current.output_dir
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    # What the widgets do not show comes from the demo's recipe: no reasoning, sampling, schedule.
    assert (recipe["prompt_style"], recipe["temperature"], recipe["lr_scheduler_type"]) == ("no_think", 0.7, "cosine")
    assert recipe["model_name_or_path"] == str(demo.medr1_context.registry.get(DEMO_KEY).source)
    assert 'data-before="' in final[SUMMARY] and 'data-after="' in final[SUMMARY]

    assert "Selected" in client.predict(api_name="/finetune_load")
    key = f"adapter:{run_dir.resolve()}"
    adapter = demo.medr1_context.registry.get(key)
    assert adapter.demo and "[demo model, synthetic task]" in adapter.label, "labelled as the demo's"
    assert adapter.prompt_style == "no_think", "Ask's prompt picker follows the way it was trained"
    question = load_samples(demo_files.heldout / "data.jsonl").samples[0]
    client.predict([handle_file(question.image)], api_name="/open")
    answer = client.predict(
        *ask_args(question.question, question.options, model=key, style="no_think", max_new_tokens=24),
        api_name="/ask",
    )
    # Answered by the adapter (the CI demo's short warm-up need not have taught the layout yet, so what it
    # answers is not checked here; docs/benchmarks.md has the full demo's answers).
    assert answer[RESULT]["model"]["adapter"] == str(run_dir.resolve()) and answer[RESULT]["samples"]


@pytest.mark.slow
def test_stop_then_sigkill_then_resume(app):
    demo, url, runs = app
    ctx = demo.medr1_context
    client = Client(url, verbose=False)
    client.predict(api_name="/finetune_demo")
    job = client.submit(**start_kwargs(ctx, steps=400, rewards=("format", "letter_a")), api_name="/finetune_start")
    first = _wait_for_run(runs, job)
    _wait(lambda: first.status().step >= 1)
    assert "Stopping" in client.predict(api_name="/finetune_stop")
    stopped = job.result()
    assert 'data-state="stopped"' in stopped[PROGRESS] and "Adapter saved" in stopped[RESULT_TEXT]

    # A new run, killed as the OOM killer would: the app keeps serving and shows the failure.
    client.predict(api_name="/finetune_demo")
    job = client.submit(**start_kwargs(ctx, steps=8, rewards=("letter_a",)), api_name="/finetune_start")
    run = _wait_for_run(runs, job, other_than=first)
    _wait(lambda: (run.output_dir / "checkpoint-1" / "trainer_state.json").is_file(), poll=0.1)  # steps left
    os.killpg(run.process.pid, signal.SIGKILL)
    failed = job.result()
    assert 'data-state="failed"' in failed[PROGRESS] and "SIGKILL" in failed[RESULT_TEXT]
    assert client.predict([handle_file(str(CT))], api_name="/open")  # still serving

    resumed = client.submit(api_name="/finetune_resume").result()
    assert 'data-state="finished"' in resumed[PROGRESS]
    steps = [r["step"] for r in read_metrics(run.output_dir / "metrics.jsonl") if "reward" in r]
    assert steps[-1] == 8 and steps == sorted(set(steps))


def _wait(condition, timeout: float = 300.0, poll: float = 0.3) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(poll)


def _wait_for_run(runs, job, other_than=None):
    """The run the start event launched (the app has one RunManager: at most one run at a time)."""
    _wait(lambda: runs.current is not None and runs.current is not other_than and runs.current.running, 120)
    return runs.current


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({}, False),
        ({"MEDR1_ENABLE_JOBS": "1"}, False),
        ({"MEDR1_ENABLE_JOBS": "1", "MEDR1_PASSWORD": "s3cret"}, True),
        ({"MEDR1_ENABLE_FINETUNE": "1", "MEDR1_PASSWORD": "s3cret"}, True),
    ],
    ids=["default", "enabled-without-password", "enabled-with-password", "older-variable-name"],
)
def test_public_app_shows_job_tabs_only_when_enabled_and_password_protected(tiny_model_dir, monkeypatch, env, shown):
    """Fine-tune and Evaluate both hold the GPU slot for minutes: neither is open to any visitor."""
    import gradio as gr

    from medr1_app.app import AppConfig, build_app, default_tabs, launch_kwargs

    for name in ("MEDR1_ENABLE_FINETUNE", "MEDR1_ENABLE_JOBS", "MEDR1_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = AppConfig(model=str(tiny_model_dir), runs_dir=None, public=True)
    demo = build_app(config, extra_tabs=default_tabs())
    tabs = {block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)}
    assert ("Fine-tune" in tabs) is shown and ("Evaluate" in tabs) is shown and "Ask" in tabs
    assert ("auth" in launch_kwargs(config)) is shown
    if shown:
        assert launch_kwargs(config)["auth"] == ("medr1", "s3cret")
    private = AppConfig(model=str(tiny_model_dir), runs_dir=None, public=False)
    assert private.jobs_enabled() and "auth" not in launch_kwargs(private)
