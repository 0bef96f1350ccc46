"""The Fine-tune tab: LoRA-GRPO on the user's questions with the training kit itself, watched live.

The tab validates the data with ``train.data`` (what training will read), offers every reward
registered in ``train.rewards`` (so a reward added there appears here), takes its widgets' defaults
from the CLI's dataclasses and ``train/recipes/finetune_tab.yaml`` (``train.config.grpo_recipe``), and
launches ``medr1-train grpo --config RUN/recipe.yaml`` in a child process through
:mod:`medr1_app.training_runs`. The start event keeps streaming the run's ``metrics.jsonl`` while it
trains, registered on the GPU concurrency id, so answers in the Ask tab queue behind the run instead
of competing with it for GPU memory.
"""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from train import rewards as reward_registry
from train.config import RECIPES, grpo_recipe
from train.model_io import ModelLoadError

from .context import AppContext, TabSpec
from .dataset_upload import UploadError, receive_upload, validate_dataset
from .examples import demo_dataset_dir
from .render import esc
from .training_runs import RunManager, RunStatus, check_hardware

POLL_SECONDS = 1.5
TAB_RECIPE = RECIPES / "finetune_tab.yaml"
HELP = (
    "Train a LoRA adapter with GRPO, Med-R1's recipe: for each question the model samples several answers, "
    "and answers that keep the `<think>…</think><answer>…</answer>` format and pick the right option are "
    "reinforced. Upload questions in medr1 JSONL, OmniMedVQA or Med-R1 format (a ZIP with the images), or "
    "start with the demo dataset. Research use only."
)


def reward_choices() -> list[str]:
    """Every reward registered in the training kit, by name."""
    return sorted(reward_registry.REWARD_FUNCS)


def reward_modules(names: list[str]) -> list[str]:
    """Modules the training process must import for ``names`` (built-ins are imported anyway)."""
    modules = {reward_registry.REWARD_FUNCS[n].__module__ for n in names}
    return sorted(m for m in modules if m not in ("train.rewards", "__main__"))


def parse_weights(text: str, count: int) -> list[float] | None:
    """'1, 0.5' -> [1.0, 0.5]; empty means equal weights."""
    if not text.strip():
        return None
    try:
        weights = [float(w) for w in text.replace(";", ",").split(",") if w.strip()]
    except ValueError as exc:
        raise gr.Error(f"Reward weights must be numbers separated by commas, e.g. 1, 0.5 ({exc}).") from exc
    if len(weights) != count:
        raise gr.Error(f"Give one weight per selected reward: {count} rewards, {len(weights)} weights.")
    return weights


def metric_frames(metrics: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-format tables for the four plots: total reward, each reward, KL, completion length."""
    steps = [r for r in metrics if "reward" in r and r.get("step")]

    def frame(keys: dict[str, str]) -> pd.DataFrame:
        rows = [
            {"step": r["step"], "value": r[key], "series": label}
            for r in steps
            for key, label in keys.items()
            if r.get(key) is not None
        ]
        return pd.DataFrame(rows, columns=["step", "value", "series"])

    names = sorted({k.split("/")[1] for r in steps for k in r if k.startswith("rewards/") and k.endswith("/mean")})
    return (
        frame({"reward": "total reward"}),
        frame({f"rewards/{n}/mean": n for n in names}),
        frame({"kl": "KL"}),
        frame({"completions/mean_length": "mean length"}),
    )


def progress_html(status: RunStatus) -> str:
    fraction = min(1.0, status.step / status.max_steps) if status.max_steps else 0.0
    eta = ""
    if status.eta_seconds is not None and status.state in ("running", "stopping"):
        minutes, seconds = divmod(int(status.eta_seconds), 60)
        eta = f" · about {minutes} min {seconds:02d} s left"
    colour = {"failed": "#c62828", "finished": "#2e7d32", "stopped": "#ef6c00"}.get(status.state, "#1565c0")
    return (
        f'<div class="medr1-progress" data-state="{esc(status.state)}">'
        f'<div style="background:#e0e0e0;border-radius:6px;height:14px">'
        f'<div style="width:{fraction * 100:.1f}%;background:{colour};height:14px;border-radius:6px"></div></div>'
        f"<p><b>{esc(status.state.title())}</b>: {esc(status.message)}{esc(eta)}</p></div>"
    )


def samples_markdown(metrics: list[dict[str, Any]]) -> str:
    latest = next((r for r in reversed(metrics) if r.get("samples")), None)
    if latest is None:
        return "_Sample answers appear here after the first step._"
    lines = [f"**Sample answers at step {latest['step']}**"]
    for sample in latest["samples"]:
        rewards = ", ".join(f"{k} {v:.2f}" for k, v in sample["rewards"].items() if v is not None)
        text = sample["completion"].strip().replace("```", "'''")[:1200] or "(empty)"
        lines += [f"- rewards: {rewards}", f"```text\n{text}\n```"]
    return "\n".join(lines)


def adapter_archive(adapter_dir: str) -> str:
    """``<run>/<run>.zip``: the adapter, processor, model card and metrics (no checkpoints, no training data)."""
    folder = Path(adapter_dir)
    archive = folder / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for item in sorted(folder.iterdir()):
            if item.is_file() and item.suffix not in (".zip", ".bin", ".log"):
                bundle.write(item, f"{folder.name}/{item.name}")
    return str(archive)


def build_finetune_tab(ctx: AppContext, runs: RunManager) -> dict[str, Any]:
    """Lay out the tab and wire its events; returns the components by name (for tests)."""
    gr.Markdown(HELP)
    defaults = grpo_recipe(TAB_RECIPE)
    run_dir = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Dataset: .jsonl, .json or .zip with images", file_types=[".jsonl", ".json", ".zip"])
            demo_button = gr.Button("Use the demo dataset (synthetic, 48 questions)")
            report = gr.Markdown("_No data yet._")
        with gr.Column(scale=1):
            model = ctx.menus.menu(label="Start from (a base model or an adapter)")
            hardware = gr.Markdown(check_hardware_text(ctx, ctx.default_model))
            rewards = gr.CheckboxGroup(
                reward_choices(), value=defaults["reward_funcs"], label="Rewards (from train.rewards)"
            )
            weights = gr.Textbox(label="Reward weights (comma separated; empty = equal)", value="")
            with gr.Accordion("Settings (Med-R1 defaults)", open=False):
                num_generations = gr.Slider(
                    2,
                    16,
                    value=defaults["num_generations"],
                    step=1,
                    label="Answers sampled per question (num_generations)",
                )
                batch_size = gr.Number(
                    defaults["per_device_train_batch_size"],
                    precision=0,
                    label="Questions x answers per step (a multiple of the above)",
                )
                learning_rate = gr.Number(defaults["learning_rate"], label="Learning rate")
                lora_r = gr.Dropdown([4, 8, 16, 32, 64, 128], value=defaults["lora_r"], label="LoRA rank")
                lora_alpha = gr.Number(defaults["lora_alpha"], precision=0, label="LoRA alpha")
                lora_targets = gr.Textbox("", label="LoRA target modules (empty: the language model's projections)")
                beta = gr.Number(defaults["beta"], label="KL penalty beta")
                max_completion = gr.Slider(
                    32, 1024, value=defaults["max_completion_length"], step=32, label="Max answer length (tokens)"
                )
                max_steps = gr.Number(defaults["max_steps"], precision=0, label="Training steps")
                max_pixels = gr.Number(defaults["max_pixels"], precision=0, label="Max image pixels")
                save_every = gr.Number(
                    defaults["save_steps"], precision=0, label="Save a checkpoint every N steps (for Resume)"
                )
                seed = gr.Number(defaults["seed"], precision=0, label="Seed")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", interactive=False)
        stop = gr.Button("Stop (keeps the adapter so far)", variant="stop")
        resume = gr.Button("Resume from last checkpoint")
    progress = gr.HTML(progress_html(RunStatus("idle", "Not started.")))
    with gr.Row():
        plot_reward = gr.LinePlot(x="step", y="value", color="series", title="Total reward")
        plot_each = gr.LinePlot(x="step", y="value", color="series", title="Each reward (mean)")
    with gr.Row():
        plot_kl = gr.LinePlot(x="step", y="value", color="series", title="KL to the start model")
        plot_length = gr.LinePlot(x="step", y="value", color="series", title="Answer length (tokens)")
    samples = gr.Markdown(samples_markdown([]))
    with gr.Row():
        load = gr.Button("Load this adapter in the Ask tab", interactive=False)
        download = gr.DownloadButton("Download adapter (.zip)", interactive=False)
    with gr.Row(visible=bool(os.environ.get("HF_TOKEN"))):
        hub_repo = gr.Textbox(label="Push to the Hub as (owner/name)")
        push = gr.Button("Push adapter to the Hub")
    result = gr.Markdown("")

    def prepare(file: str | None, demo: bool = False):
        folder = runs.new_run_dir("finetune")
        try:
            if demo:
                shutil.copytree(demo_dataset_dir(), folder / "data")
            elif file:
                receive_upload(file, folder)
            else:
                return None, "_No data yet._", gr.update(interactive=False)
            checked = validate_dataset(folder / "data")
        except UploadError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return None, f"**Upload refused:** {esc(str(exc))}", gr.update(interactive=False)
        finally:
            if file and not demo:
                ctx.uploads.release(file)  # copied into the run folder: the cached upload goes
        return str(folder), checked.markdown(), gr.update(interactive=checked.usable)

    upload.upload(lambda f: prepare(f), upload, [run_dir, report, start], api_name="finetune_upload")
    demo_button.click(lambda: prepare(None, demo=True), None, [run_dir, report, start], api_name="finetune_demo")
    model.change(lambda key: check_hardware_text(ctx, key), model, hardware, api_visibility="private")

    outputs = [progress, plot_reward, plot_each, plot_kl, plot_length, samples, load, download, result]

    def follow(run) -> Iterator[tuple]:
        while True:
            status = run.status()
            done = status.state not in ("running", "stopping")
            frames = metric_frames(status.metrics)
            finished_adapter = status.adapter_dir if done else None
            yield (
                progress_html(status),
                *frames,
                samples_markdown(status.metrics),
                gr.update(interactive=bool(finished_adapter)),
                gr.update(value=adapter_archive(finished_adapter) if finished_adapter else None,
                          interactive=bool(finished_adapter)),
                _result_text(status) if done else "",
            )  # fmt: skip
            if done:
                return
            time.sleep(POLL_SECONDS)

    def start_run(folder, model_key, reward_names, weight_text, generations, batch, lr, rank, alpha, targets,
                  kl_beta, completion_len, steps, pixels, save_steps, run_seed):  # fmt: skip
        if not folder:
            raise gr.Error("Load a dataset first (upload one or use the demo dataset).")
        if not reward_names:
            raise gr.Error("Pick at least one reward.")
        generations, batch = int(generations), int(batch)
        if batch % generations:
            raise gr.Error(
                f"Questions x answers per step ({batch}) must be a multiple of num_generations ({generations})."
            )
        base, init_adapter = training_source(ctx, model_key)
        allowed, message = check_hardware(base)
        if not allowed:
            raise gr.Error(message)
        spec = ctx.registry.get(model_key)
        recipe = {
            **{key: defaults[key] for key in ("logging_steps", "report_to", "prompt_style", "min_pixels")},
            "model_name_or_path": base, "dataset_path": [str(Path(folder) / "data")], "output_dir": str(folder),
            "reward_funcs": list(reward_names), "reward_weights": parse_weights(weight_text, len(reward_names)),
            "reward_modules": reward_modules(reward_names), "num_generations": generations,
            "per_device_train_batch_size": batch, "learning_rate": float(lr), "lora_r": int(rank),
            "lora_alpha": int(alpha), "lora_target_modules": targets.split() or None, "beta": float(kl_beta),
            "max_completion_length": int(completion_len), "max_steps": int(steps), "max_pixels": int(pixels),
            "save_steps": max(1, int(save_steps)), "seed": int(run_seed), "init_adapter": init_adapter,
            "gradient_checkpointing": not spec.tiny,
        }  # fmt: skip
        try:
            run = runs.start(recipe)
        except RuntimeError as exc:
            raise gr.Error(str(exc)) from exc
        yield from follow(run)

    def resume_run(folder):
        run = runs.current
        if run is None or (folder and run.output_dir != Path(folder)):
            raise gr.Error("Nothing to resume in this session: start a run first.")
        if run.running:
            raise gr.Error("The run is still going.")
        try:
            run = runs.start(run.recipe, resume=True)
        except RuntimeError as exc:
            raise gr.Error(str(exc)) from exc
        yield from follow(run)

    def stop_run():
        if runs.current is None or not runs.current.running:
            return "No run is going."
        runs.current.request_stop()
        return "Stopping after the current step; the adapter trained so far will be saved."

    def load_adapter(folder):
        run = runs.current
        adapter = run.status().adapter_dir if run is not None else None
        if not adapter:
            raise gr.Error("No adapter yet: wait for the run to finish or stop it.")
        spec = ctx.registry.add_path(adapter)
        return spec.key, f"Selected **{esc(spec.label)}** in the Ask tab's model list. Switch to Ask to try it."

    def push_adapter(repo: str):
        run = runs.current
        adapter = run.status().adapter_dir if run is not None else None
        if not adapter or not repo.strip():
            raise gr.Error("Finish a run and give a repository name (owner/name) first.")
        from huggingface_hub import HfApi

        api = HfApi(token=os.environ.get("HF_TOKEN"))
        api.create_repo(repo.strip(), exist_ok=True, private=True)
        api.upload_folder(repo_id=repo.strip(), folder_path=adapter,
                          ignore_patterns=["checkpoint-*", "data/*", "train.log", "*.bin"])  # fmt: skip
        return f"Pushed to https://huggingface.co/{esc(repo.strip())} (private)."

    settings_inputs = [run_dir, model, rewards, weights, num_generations, batch_size, learning_rate, lora_r, lora_alpha,
                       lora_targets, beta, max_completion, max_steps, max_pixels, save_every, seed]  # fmt: skip
    gpu = {"concurrency_id": ctx.gpu_concurrency_id, "concurrency_limit": 1}
    started = start.click(start_run, settings_inputs, outputs, api_name="finetune_start", **gpu)
    resumed = resume.click(resume_run, run_dir, outputs, api_name="finetune_resume", **gpu)
    stop.click(stop_run, None, result, api_name="finetune_stop", concurrency_limit=None)
    chosen = gr.State(None)
    loaded = load.click(load_adapter, run_dir, [chosen, result], api_name="finetune_load")
    # The run's adapter (finished or stopped) appears in every model picker; Load selects it in Ask's.
    ctx.menus.refresh_after(started)
    ctx.menus.refresh_after(resumed)
    ctx.menus.refresh_after(loaded, select=chosen)
    push.click(push_adapter, hub_repo, result, api_visibility="private")
    return {"run_dir": run_dir, "start": start, "stop": stop, "resume": resume, "model": model, "rewards": rewards}


def training_source(ctx: AppContext, key: str) -> tuple[str, str | None]:
    """(base model to load, adapter to continue training or None) for a model-picker choice."""
    spec = ctx.registry.get(key)
    if spec.adapter:
        return spec.source, spec.adapter
    if spec.subfolder:
        raise gr.Error(
            f"{spec.label} lives in a folder of a hub repository, which the trainer cannot load directly: download "
            f"it (`hf download {spec.source} --include '{spec.subfolder}/*'`) and add that folder as a model."
        )
    return spec.source, None


def check_hardware_text(ctx: AppContext, key: str | None) -> str:
    if not key:
        return ""
    try:
        base, _ = training_source(ctx, key)
    except (gr.Error, ModelLoadError, ValueError, OSError) as exc:  # shown to the user, never raised into the UI
        return f"⚠️ {esc(str(getattr(exc, 'message', exc)))}"
    allowed, message = check_hardware(base)
    return ("✅ " if allowed else "⛔ ") + esc(message)


def _result_text(status: RunStatus) -> str:
    if status.state == "failed":
        return f"**The run failed.** {esc(status.message)}\n\n```text\n{status.log_tail[-2000:]}\n```"
    if status.adapter_dir:
        folder = esc(status.adapter_dir)
        return f"**Adapter saved** in `{folder}` with its model card. Load it in the Ask tab or download it."
    return esc(status.message)


def finetune_tab(runs: RunManager | None = None) -> TabSpec:
    """The tab as a ``TabSpec`` for ``build_app(extra_tabs=...)``.

    Runs go to the registry's runs folder (where the model pickers find adapters) unless a
    ``RunManager`` is given.
    """

    def build(ctx: AppContext) -> dict[str, Any]:
        return build_finetune_tab(ctx, runs or RunManager(ctx.registry.runs_dir or "runs"))

    return TabSpec("Fine-tune", build, runs_jobs=True)
