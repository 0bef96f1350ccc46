"""Shared fixtures: a tiny random Qwen2-VL and a small synthetic dataset, built once per test session.

Everything is offline: the model is built from a config with a locally trained tokenizer
(``train.tiny_model``) and saved/loaded like any checkpoint.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Path of a tiny random Qwen2-VL checkpoint (config, weights, processor, tokenizer)."""
    from train.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "medr1-tiny-random-qwen2_vl", seed=0)


@pytest.fixture(scope="session")
def synthetic_jsonl(tmp_path_factory):
    """A 24-question synthetic dataset in medr1 JSONL format, with its PNG images beside it."""
    from train.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), num_samples=24, seed=0, size=56)


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """The Fine-tune demo (``train.demo_model``) in a CI size, built the way the app builds it (a child process).

    64 training and 16 held-out questions at 112 px (the app's: 600 and 48 at 224 px) and a warm-up of 8
    steps instead of 60, too short to teach the answer layout: like the learning proof's smoke preset, it
    leaves the format reward room to rise within a CI-sized run, where learning to read the pictures takes
    the full demo's hundreds of steps.
    """
    from medr1_app.models import demo_files as files_in
    from medr1_app.models import ensure_demo
    from train.demo_model import DemoSettings

    settings = DemoSettings(train_questions=64, heldout_questions=16, warmup_steps=8, image_size=112)
    files = files_in(tmp_path_factory.mktemp("demo-cache"))
    return ensure_demo(type(files)(files.root, settings))
