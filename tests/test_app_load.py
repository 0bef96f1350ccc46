"""A short version (about 10 s) of ``benchmarks/app_load.py``: 8 concurrent clients on the tiny model.

The real generation path, in this process: no errors, every answer belongs to its own request (same
question, seed and image as asked, and the same text that request produced when asked alone), and the
resident memory does not climb.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from medr1_app_testkit import launch

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "app_load.py"


def _load_module():
    spec = importlib.util.spec_from_file_location("medr1_app_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_eight_clients_for_ten_seconds(tiny_model_dir, tmp_path):
    from medr1_app.app import AppConfig, build_app

    bench = _load_module()
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None))
    url = launch(demo)
    try:
        images = bench.make_images(tmp_path)
        pool = bench.question_pool(3)
        expected = bench.reference_pass(url, images, pool, max_new_tokens=16)
        report = bench.run_load(
            url, 8, 10.0, images, pool, expected, max_new_tokens=16, rss=lambda: bench.rss_of(os.getpid())
        )
    finally:
        demo.close()
    print("\n".join(report.lines()))
    assert report.errors == []
    assert report.mismatches == []
    assert report.answers >= 8
    start, _, end = report.rss_summary()
    assert end - start < 150, f"memory grew by {end - start:.0f} MiB in 10 s"
