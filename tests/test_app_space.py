"""Composition and hosting: extra tabs, the Space entry point, ZeroGPU decoration, Space files."""

from __future__ import annotations

import importlib.machinery
import runpy
import sys
import types
from pathlib import Path

import gradio as gr
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _tab_labels(demo: gr.Blocks) -> list[str]:
    return [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]


def _has_label(demo: gr.Blocks, text: str) -> bool:
    return any(text in str(getattr(block, "label", "") or "") for block in demo.blocks.values())


def test_extra_tabs_share_the_registry_and_the_model_pickers(tiny_model_dir, monkeypatch):
    from medr1_app.app import AppConfig, build_app
    from medr1_app.context import TabSpec

    monkeypatch.delenv("SPACE_ID", raising=False)
    seen = {}

    def build_finetune(ctx):
        seen["ctx"] = ctx
        seen["menu"] = ctx.menus.menu(label="Start from")
        gr.Markdown("fine-tune")

    demo = build_app(
        AppConfig(model=str(tiny_model_dir), runs_dir=None),
        extra_tabs=[TabSpec("Fine-tune", build_finetune, runs_jobs=True), TabSpec("Notes", lambda ctx: gr.Markdown())],
    )
    assert _tab_labels(demo) == ["Ask", "Fine-tune", "Notes"]
    ctx = seen["ctx"]
    assert ctx is demo.medr1_context and ctx.menus.primary is demo.medr1_ask.model
    assert ctx.menus.menus == [demo.medr1_ask.model, seen["menu"]]
    assert ctx.gpu_concurrency_id == "gpu"
    ask = next(f for f in demo.fns.values() if f.api_name == "ask")
    assert ask.concurrency_id == "gpu" and ask.concurrency_limit == 1
    # A run finished by the Fine-tune tab: add it; every picker gets it, the primary one selects it.
    spec = ctx.registry.add_path(tiny_model_dir)
    ask_update, tab_update = ctx.menus.updates([ctx.default_model, "gone"], select=spec.key)
    assert ask_update["value"] == spec.key and (spec.label, spec.key) in ask_update["choices"]
    assert tab_update["value"] == ctx.default_model and tab_update["choices"] == ask_update["choices"]


def test_on_a_space_job_tabs_and_adding_models_are_off(tiny_model_dir, monkeypatch):
    from medr1_app.app import AppConfig, build_app, launch_kwargs
    from medr1_app.context import TabSpec

    monkeypatch.setenv("SPACE_ID", "someone/medr1")
    for name in ("MEDR1_ENABLE_FINETUNE", "MEDR1_ENABLE_JOBS", "MEDR1_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    tabs = [TabSpec("Fine-tune", lambda ctx: gr.Markdown(), runs_jobs=True)]
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), extra_tabs=tabs)
    assert _tab_labels(demo) == ["Ask"]
    assert not _has_label(demo, "Add a model")
    assert launch_kwargs()["server_name"] is None  # Spaces sets GRADIO_SERVER_NAME
    monkeypatch.setenv("MEDR1_ENABLE_FINETUNE", "1")  # not enough on a public Space: a password is required too
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), extra_tabs=tabs)
    assert _tab_labels(demo) == ["Ask"]
    monkeypatch.setenv("MEDR1_PASSWORD", "s3cret")
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), extra_tabs=tabs)
    assert _tab_labels(demo) == ["Ask", "Fine-tune"]


def test_launch_settings_keep_the_app_private(monkeypatch):
    from medr1_app.app import launch_kwargs

    monkeypatch.delenv("SPACE_ID", raising=False)
    kwargs = launch_kwargs()
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["run_history"] is False
    assert kwargs["max_file_size"] and kwargs["enable_monitoring"] is False and "share" not in kwargs


def test_gpu_task_is_spaces_gpu_on_zerogpu_and_a_no_op_elsewhere(monkeypatch):
    from medr1_app.gpu import gpu_task

    def generate():
        yield 1

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert gpu_task(30)(generate) is generate

    calls = []
    fake = types.ModuleType("spaces")
    fake.__spec__ = importlib.machinery.ModuleSpec("spaces", None)

    def gpu(duration=60):
        calls.append(duration)
        return lambda fn: ("wrapped", fn)

    fake.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert gpu_task(45)(generate) == ("wrapped", generate) and calls == [45]


def test_space_entry_point_builds_the_app(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("MEDR1_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("MEDR1_PRELOAD", "1")
    monkeypatch.delenv("SPACE_ID", raising=False)
    namespace = runpy.run_path(str(ROOT / "app.py"), run_name="space_app")
    demo = namespace["demo"]
    assert isinstance(demo, gr.Blocks) and demo.medr1_context.manager.loaded.tiny
    assert _tab_labels(demo) == ["Ask", "Fine-tune", "Evaluate"]


def test_space_files(monkeypatch):
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "a Space reads its front matter from the very top of README.md"
    front = yaml.safe_load(text.split("---")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and (ROOT / front["app_file"]).is_file()
    assert str(front["sdk_version"]).split(".")[0] == gr.__version__.split(".")[0]
    assert str(front["python_version"]) == "3.11" and "hardware" not in front
    requirements = {
        line.split(">")[0].split("=")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    needed = {"torch", "torchvision", "transformers", "peft", "pydicom", "pillow", "numpy", "huggingface_hub"}
    assert needed <= requirements
    assert "gradio" not in requirements, "the Space's sdk_version decides gradio's version"


def test_a_tab_needs_no_other_tab_built_before_it(tiny_model_dir, tmp_path):
    """The Fine-tune tab alone (no Ask tab): it builds, and its model picker is wired for refreshes."""
    from medr1_app.app import AppConfig, build_context
    from medr1_app.training_runs import RunManager
    from medr1_app.ui_finetune import finetune_tab

    ctx = build_context(AppConfig(model=str(tiny_model_dir), runs_dir=str(tmp_path)))
    with gr.Blocks() as demo:
        parts = finetune_tab(RunManager(tmp_path)).build(ctx)
        ctx.menus.wire(demo)
    assert ctx.menus.menus == [parts["model"]] and ctx.menus.primary is None
    refreshes = [f for f in demo.fns.values() if f.fn is not None and f.fn.__name__.startswith("refresh")]
    assert len(refreshes) >= 3, "page load, run end, resume and load each refresh the pickers"
