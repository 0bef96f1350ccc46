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
