"""The app's Evaluate tab: the kit's evaluation on the loaded model, shown as the paper's tables and a heatmap."""

from __future__ import annotations

from pathlib import Path

import pytest
from medr1_app_testkit import launch

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402


def test_evaluate_tab_shows_tables_and_heatmap(tiny_model_dir, tmp_path):
    from medr1_app.app import AppConfig, build_app
    from medr1_app.ui_evaluate import evaluate_tab

    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=str(tmp_path)), extra_tabs=[evaluate_tab()])
    url = launch(demo)
    try:
        tables, heatmap, files = Client(url, verbose=False).predict(
            model_key=demo.medr1_context.default_model, dataset=None, count=16, prompt_style="think", tokens=16,
            batch=8, api_name="/evaluate",
        )  # fmt: skip
    finally:
        demo.close()
    assert "Tiny random model" in tables
    assert "per modality" in tables and "per question type" in tables and "| 16 |" in tables
    assert Path(heatmap).suffix == ".png"
    assert {Path(f).name for f in files} >= {"report.md", "summary.json", "summary.csv"}
    assert not list(tmp_path.glob("evals/*/data")), "uploaded or generated questions are not kept"
