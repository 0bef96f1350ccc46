"""The Fine-tune tab: LoRA-GRPO on the user's questions with the training kit itself, watched live.

The tab validates the data with ``train.data`` (what training will read), offers every reward
registered in ``train.rewards`` (so a reward added there appears here), takes its widgets' defaults
from the CLI's dataclasses and a recipe (``train.config.grpo_recipe``): ``train/recipes/finetune_tab.yaml``
(Med-R1's settings) for real models, ``train/recipes/demo_cpu.yaml`` (the learning proof's settings,
which learn on a CPU) for the demo start model (``train.demo_model``), switching when the model does.
It launches ``medr1-train grpo --config RUN/recipe.yaml`` in a child process through
:mod:`medr1_app.training_runs`. The start event keeps streaming the run's ``metrics.jsonl`` while it
trains, registered on the GPU concurrency id, so answers in the Ask tab queue behind the run instead
of competing with it for GPU memory.

The demo (*Use the demo dataset*): the learning proof's synthetic task, its training questions in
``RUN/data`` and 48 held-out ones in ``RUN/heldout`` (``--heldout_path``: scored with the kit's
evaluation before the first step and after the last, see ``train/heldout.py``), and the demo start
model selected, so *Start training* shows the reward rising within minutes on a CPU and the held-out
accuracy before and after the run.
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
from train.config import RECIPES, grpo_recipe, read_recipe
from train.demo_model import DemoFiles
from train.model_io import ModelLoadError

from .context import AppContext, TabSpec
from .dataset_upload import UploadError, receive_upload, validate_dataset
from .models import DEMO_KEY, ModelSpec, demo_files, ensure_demo
from .render import esc
from .training_runs import RunManager, RunStatus, check_hardware

POLL_SECONDS = 1.5
TAB_RECIPE = RECIPES / "finetune_tab.yaml"
DEMO_RECIPE = RECIPES / "demo_cpu.yaml"
SETTINGS_LABELS = {
    TAB_RECIPE: "Settings (Med-R1 defaults)",
    DEMO_RECIPE: "Settings (the demo's CPU settings, from the learning proof)",
}
HELP = (
    "Train a LoRA adapter with GRPO, Med-R1's recipe: for each question the model samples several answers, "
    "and answers that keep the `<think>…</think><answer>…</answer>` format and pick the right option are "
    "reinforced. Upload questions in medr1 JSONL, OmniMedVQA or Med-R1 format (a ZIP with the images), or "
    "start with the demo dataset. Research use only.\n\n"
    "**New here?** *Use the demo dataset*: it selects the demo model (0.5 M parameters, trained only on "
    "medr1's synthetic task of textures and discs) with settings that learn on a CPU. *Start training* and "
    "watch the reward rise over about five minutes as GRPO teaches it to read the pictures; the accuracy "
    "on 48 questions it never trains on is shown before and after."
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


def recipe_for(spec: ModelSpec | None) -> Path:
    """The recipe a model's widgets start from: the demo's CPU settings for the demo model, else Med-R1's."""
    return DEMO_RECIPE if spec is not None and spec.demo else TAB_RECIPE


def reward_thirds(metrics: list[dict[str, Any]]) -> tuple[float, float, int] | None:
    """(mean reward over the first third of the logged steps, over the last third, steps per third).

    What "the reward rose" means on this screen, and what the tests and the demo's measurement check:
    a curve of sampled answers is noisy step to step, a mean over a third of the run is not.
    """
    rewards = [r["reward"] for r in metrics if r.get("reward") is not None and r.get("step")]
    third = len(rewards) // 3
    if third < 1:
        return None
    return sum(rewards[:third]) / third, sum(rewards[-third:]) / third, third


def heldout_results(metrics: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The run's held-out scores by stage ("before", "after"), from its ``metrics.jsonl`` events."""
    return {r["stage"]: r for r in metrics if r.get("event") == "heldout" and r.get("stage")}


def summary_html(metrics: list[dict[str, Any]], done: bool) -> str:
    """The two numbers that say whether the run learned: the reward's rise and the held-out accuracy."""
    parts, data = [], {}
    thirds = reward_thirds(metrics)
    if thirds is not None:
        first, last, third = thirds
        data |= {"first": f"{first:.3f}", "last": f"{last:.3f}", "rise": f"{last - first:.3f}"}
        parts.append(
            f"<p><b>Mean reward</b> (the sum of the rewards): {first:.2f} over the first third of the steps "
            f"→ {last:.2f} over the last third ({last - first:+.2f}; {third} logged steps each)</p>"
        )
    heldout = heldout_results(metrics)
    if heldout:
        before, after = heldout.get("before"), heldout.get("after")
        n = (before or after)["questions"]
        data |= {k: f"{v['accuracy']:.4f}" for k, v in heldout.items() if k in ("before", "after")}
        after_text = f"{100 * after['accuracy']:.1f} % after" if after else ("…" if not done else "not measured")
        before_text = f"{100 * before['accuracy']:.1f} % before" if before else "not measured before"
        parts.append(
            f"<p><b>Held-out accuracy</b> ({n} questions never trained on, greedy answers scored by the kit's "
            f"evaluation): {before_text} → {after_text}</p>"
        )
    if not parts:
        return ""
    attributes = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
    return f'<div class="medr1-run-summary" data-testid="run-summary"{attributes}>{"".join(parts)}</div>'


def link_tree(src: Path, dst: Path) -> Path:
    """Copy a folder by hard links where the file system allows (the demo's 600 pictures: 44 MB), else by copies."""

    def link(source: str, target: str) -> None:
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    shutil.copytree(src, dst, copy_function=link)
    return dst


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
    first_recipe = recipe_for(_spec(ctx, ctx.default_model))
    defaults = grpo_recipe(first_recipe)
    demo = _demo_files(ctx)
    run_dir = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Dataset: .jsonl, .json or .zip with images", file_types=[".jsonl", ".json", ".zip"])
            demo_button = gr.Button(
                f"Use the demo dataset (synthetic task: {demo.settings.train_questions} questions, "
                f"{demo.settings.heldout_questions} held out)",
                elem_id="medr1-finetune-demo",
            )
            report = gr.Markdown("_No data yet._", elem_id="medr1-finetune-report")
        with gr.Column(scale=1):
            model = ctx.menus.menu(label="Start from (a base model or an adapter)", elem_id="medr1-finetune-model")
            hardware = gr.Markdown(check_hardware_text(ctx, ctx.default_model))
            rewards = gr.CheckboxGroup(
                reward_choices(), value=defaults["reward_funcs"], label="Rewards (from train.rewards)"
            )
            weights = gr.Textbox(label="Reward weights (comma separated; empty = equal)", value="")
            with gr.Accordion(SETTINGS_LABELS[first_recipe], open=False) as settings_box:
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
                    8, 1024, value=defaults["max_completion_length"], step=8, label="Max answer length (tokens)"
                )
                max_steps = gr.Number(defaults["max_steps"], precision=0, label="Training steps")
                max_pixels = gr.Number(defaults["max_pixels"], precision=0, label="Max image pixels")
                save_every = gr.Number(
                    defaults["save_steps"], precision=0, label="Save a checkpoint every N steps (for Resume)"
                )
                seed = gr.Number(defaults["seed"], precision=0, label="Seed")
    # The widgets that show a recipe key: they follow the model's recipe when the model changes.
    recipe_widgets = {
        "reward_funcs": rewards, "num_generations": num_generations, "per_device_train_batch_size": batch_size,
        "learning_rate": learning_rate, "lora_r": lora_r, "lora_alpha": lora_alpha, "beta": beta,
        "max_completion_length": max_completion, "max_steps": max_steps, "max_pixels": max_pixels,
        "save_steps": save_every, "seed": seed,
    }  # fmt: skip
    with gr.Row():
        start = gr.Button("Start training", variant="primary", interactive=False, elem_id="medr1-finetune-start")
        stop = gr.Button("Stop (keeps the adapter so far)", variant="stop")
        resume = gr.Button("Resume from last checkpoint")
    progress = gr.HTML(progress_html(RunStatus("idle", "Not started.")))
    summary = gr.HTML("", elem_id="medr1-run-summary")
    with gr.Row():
        plot_reward = gr.LinePlot(
            x="step", y="value", color="series", title="Total reward", elem_id="medr1-plot-reward"
        )
        plot_each = gr.LinePlot(x="step", y="value", color="series", title="Each reward (mean)")
    with gr.Row():
        plot_kl = gr.LinePlot(x="step", y="value", color="series", title="KL to the start model")
        plot_length = gr.LinePlot(
            x="step", y="value", color="series", title="Answer length (tokens)", elem_id="medr1-plot-length"
        )
    samples = gr.Markdown(samples_markdown([]))
    with gr.Row():
        load = gr.Button("Load this adapter in the Ask tab", interactive=False)
        download = gr.DownloadButton("Download adapter (.zip)", interactive=False)
    with gr.Row(visible=bool(os.environ.get("HF_TOKEN"))):
        hub_repo = gr.Textbox(label="Push to the Hub as (owner/name)")
        push = gr.Button("Push adapter to the Hub")
    result = gr.Markdown("")

    def checked_folder(folder: Path) -> tuple[str, str, Any]:
        checked = validate_dataset(folder / "data")
        text = checked.markdown()
        if (folder / "heldout").is_dir():
            text += (
                f"\n\n{demo.settings.heldout_questions} more questions, on pictures the run never trains on, are "
                "scored before the first step and after the last (held-out accuracy)."
            )
        return str(folder), text, gr.update(interactive=checked.usable)

    def prepare_upload(file: str | None):
        if not file:
            return None, "_No data yet._", gr.update(interactive=False)
        folder = runs.new_run_dir("finetune")
        try:
            receive_upload(file, folder)
            return checked_folder(folder)
        except UploadError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return None, f"**Upload refused:** {esc(str(exc))}", gr.update(interactive=False)
        finally:
            ctx.uploads.release(file)  # copied into the run folder: the cached upload goes

    def prepare_demo():
        if not demo.complete():
            yield (
                None,
                "_Building the demo model and its questions (once; about a minute on a CPU)…_",
                gr.update(interactive=False),
            )
        try:
            files = ensure_demo(demo)
        except ModelLoadError as exc:
            raise gr.Error(str(exc)) from exc
        folder = runs.new_run_dir("finetune-demo")
        link_tree(files.train, folder / "data")
        link_tree(files.heldout, folder / "heldout")
        yield checked_folder(folder)

    def select_demo_model(current: str | None):
        """The demo data selects the demo model (which switches the settings to the demo's)."""
        return gr.update(value=DEMO_KEY) if _spec(ctx, DEMO_KEY) is not None else gr.update(value=current)

    upload.upload(prepare_upload, upload, [run_dir, report, start], api_name="finetune_upload")
    demo_button.click(prepare_demo, None, [run_dir, report, start], api_name="finetune_demo").then(
        select_demo_model, model, model, api_visibility="private"
    )

    def settings_for(key: str | None) -> dict:
        """The chosen model's recipe in the widgets, and what this machine can do with the model."""
        chosen = recipe_for(_spec(ctx, key))
        values = grpo_recipe(chosen)
        updates: dict[Any, Any] = {widget: values[name] for name, widget in recipe_widgets.items()}
        updates[settings_box] = gr.update(label=SETTINGS_LABELS[chosen])
        updates[hardware] = check_hardware_text(ctx, key)
        return updates

    model.change(settings_for, model, [hardware, settings_box, *recipe_widgets.values()], api_visibility="private")

    outputs = [progress, plot_reward, plot_each, plot_kl, plot_length, samples, load, download, result, summary]

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
                summary_html(status.metrics, done),
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
        heldout = Path(folder) / "heldout"
        chosen = recipe_for(spec)
        recipe = {
            # Everything the model's recipe sets (the demo's: temperature, schedule...), then the widgets.
            **{key: grpo_recipe(chosen)[key] for key in ("logging_steps", "report_to", "prompt_style", "min_pixels")},
            **read_recipe(chosen),
            "model_name_or_path": base, "dataset_path": [str(Path(folder) / "data")], "output_dir": str(folder),
            "reward_funcs": list(reward_names), "reward_weights": parse_weights(weight_text, len(reward_names)),
            "reward_modules": reward_modules(reward_names), "num_generations": generations,
            "per_device_train_batch_size": batch, "learning_rate": float(lr), "lora_r": int(rank),
            "lora_alpha": int(alpha), "lora_target_modules": targets.split() or None, "beta": float(kl_beta),
            "max_completion_length": int(completion_len), "max_steps": int(steps), "max_pixels": int(pixels),
            "save_steps": max(1, int(save_steps)), "seed": int(run_seed), "init_adapter": init_adapter,
            "gradient_checkpointing": not spec.tiny,
            "heldout_path": [str(heldout)] if heldout.is_dir() else [],
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


def _spec(ctx: AppContext, key: str | None) -> ModelSpec | None:
    try:
        return ctx.registry.get(key) if key else None
    except ModelLoadError:
        return None


def _demo_files(ctx: AppContext) -> DemoFiles:
    """Where this app's demo start model lives (its registry entry's folder, else the default cache)."""
    spec = _spec(ctx, DEMO_KEY)
    return spec.demo_files if spec is not None and spec.demo_files is not None else demo_files()


def training_source(ctx: AppContext, key: str) -> tuple[str, str | None]:
    """(base model to load, adapter to continue training or None) for a model-picker choice.

    The demo start model is built here on first use, so a run can start from it at once.
    """
    spec = ctx.registry.get(key)
    if spec.demo_files is not None:
        try:
            return str(ensure_demo(spec.demo_files).model), None
        except ModelLoadError as exc:
            raise gr.Error(str(exc)) from exc
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
    spec = _spec(ctx, key)
    if spec is not None and spec.demo_files is not None and not spec.demo_files.complete():
        return (
            "✅ Demo model (0.5 M parameters, synthetic task only): trains on this CPU. It is built the first "
            "time it is used (about a minute, offline) and kept in the cache."
        )
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
