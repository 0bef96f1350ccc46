"""The Evaluate tab: a small evaluation of a model from the picker, shown as the paper's tables and heatmaps.

It calls the training kit's evaluation API (``train.eval.evaluate`` and ``report``), the code behind
``medr1-eval``, on the model the Ask tab already loaded, so the numbers here are computed the way a
researcher's command-line run computes them. For a full benchmark, use ``medr1-eval``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr

from train.data import DataError
from train.eval import balanced_subset, evaluate, report
from train.eval.synthetic import make_grid_dataset
from train.model_io import ModelLoadError

from .context import AppContext, TabSpec
from .dataset_upload import UploadError, receive_upload, validate_dataset
from .gpu import gpu_task

HELP = (
    "Score a model on multiple-choice questions and see accuracy per modality and per question type, as in "
    "the Med-R1 paper. Upload a dataset (.jsonl, .json or a .zip with images) or use the synthetic grid "
    "(8 modalities x 5 question types; it only checks the pipeline). For full runs use `medr1-eval`."
)


def build_evaluate_tab(ctx: AppContext, output_root: str | Path) -> dict[str, Any]:
    """Lay out the tab and wire its event; returns the components by name."""
    output_root = Path(output_root)
    gr.Markdown(HELP)
    with gr.Row():
        with gr.Column():
            model = ctx.menus.menu(label="Model")
            upload = gr.File(label="Dataset (optional)", file_types=[".jsonl", ".json", ".zip"])
            questions = gr.Slider(8, 400, value=40, step=8, label="Questions (spread over all modalities and types)")
        with gr.Column():
            style = gr.Radio(["think", "no_think"], value="think", label="Prompt")
            max_new_tokens = gr.Slider(16, 1024, value=256, step=16, label="Max answer length (tokens)")
            batch_size = gr.Slider(1, 32, value=8, step=1, label="Batch size")
    run = gr.Button("Evaluate", variant="primary")
    tables = gr.Markdown()
    heatmap = gr.Image(label="Accuracy by modality and question type", type="filepath", format="png")
    files = gr.File(label="Report files (Markdown, CSV, JSON, PNG)", file_count="multiple")

    @gpu_task(duration=300)
    def run_evaluation(model_key, dataset, count, prompt_style, tokens, batch, progress=gr.Progress()):  # noqa: B008
        folder = output_root / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            if dataset:
                try:
                    receive_upload(dataset, folder)
                finally:
                    ctx.uploads.release(dataset)
            else:
                make_grid_dataset(folder / "data", per_cell=2, seed=0, size=56)
            loaded_data = validate_dataset(folder / "data", check_decode=False).loaded
            samples = balanced_subset([s for s in loaded_data.samples if s.options], int(count))
            loaded = ctx.manager.get(model_key)
            progress(0, desc="Answering")
            results = evaluate(  # asked with the prompt text the checkpoint was trained with (its model card)
                loaded.model, loaded.processor, samples, prompt_style=prompt_style, prompt=loaded.spec.prompt,
                max_new_tokens=int(tokens),
                batch_size=int(batch), results_path=folder / "results.jsonl",
                progress=lambda done, total: progress(done / max(1, total), desc=f"{done} of {total} questions"),
            )  # fmt: skip
        except (UploadError, DataError, ModelLoadError) as exc:
            shutil.rmtree(folder / "data", ignore_errors=True)
            raise gr.Error(str(exc)) from exc
        shutil.rmtree(folder / "data", ignore_errors=True)  # the questions and images are not kept
        name = loaded.spec.label
        # The demo model is tiny but trained: its numbers mean something on the demo task's questions only.
        title = f"Evaluation of {name}" + (
            " (meaningful on the demo task's questions only)" if loaded.spec.demo else ""
        )
        result = report({name: results}, title=title, tiny_random=loaded.tiny and not loaded.spec.demo)
        written = result.write(folder)
        grid = next((p for p in written if p.suffix == ".png"), None)
        text = "\n".join(line for line in result.markdown().splitlines() if not line.startswith("!["))
        return text, str(grid) if grid else None, [str(p) for p in written]

    run.click(
        run_evaluation,
        [model, upload, questions, style, max_new_tokens, batch_size],
        [tables, heatmap, files],
        api_name="evaluate",
        concurrency_id=ctx.gpu_concurrency_id,
        concurrency_limit=1,
    )
    return {"model": model, "run": run, "tables": tables}


def evaluate_tab(output_root: str | Path | None = None) -> TabSpec:
    """The tab as a ``TabSpec``; reports go under ``<runs dir>/evals`` unless ``output_root`` is given.

    It runs jobs (an evaluation holds the GPU slot answers wait on), so a public deployment shows it
    only when enabled and behind a password, like Fine-tune.
    """

    def build(ctx: AppContext) -> dict[str, Any]:
        root = output_root or Path(ctx.registry.runs_dir or "runs") / "evals"
        return build_evaluate_tab(ctx, root)

    return TabSpec("Evaluate", build, runs_jobs=True)
