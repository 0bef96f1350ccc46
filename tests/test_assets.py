"""``assets/``: the gallery's examples open, and the committed demo dataset is exactly what its recipe makes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from medr1_app.examples import build_gallery, demo_dataset_dir, load_examples
from train.data import load_samples
from train.synthetic import make_synthetic_dataset


def test_every_gallery_example_opens_and_names_its_question():
    examples = load_examples()
    shown, items = build_gallery()
    assert len(shown) == len(examples) == len(items) >= 5
    assert {e.image.split(":")[0] for e in examples} >= {"pydicom", "demo/images/2024_00009.png"}
    for example, (thumb, caption) in zip(shown, items, strict=True):
        assert Path(thumb).is_file() and caption == example.caption and example.question.endswith(("?", "."))


def test_the_demo_dataset_equals_its_recipe(tmp_path):
    """assets/README.md names the command that made demo/: the files must still be its output."""
    made = make_synthetic_dataset(tmp_path, num_samples=48, seed=2024, size=112)
    committed = demo_dataset_dir() / "data.jsonl"
    assert committed.read_text() == made.read_text()
    for record in map(json.loads, committed.read_text().splitlines()):
        ours = np.asarray(Image.open(demo_dataset_dir() / record["image"]))
        fresh = np.asarray(Image.open(tmp_path / record["image"]))
        assert np.array_equal(ours, fresh), record["image"]
    loaded = load_samples(committed)
    assert len(loaded.samples) == 48 and not loaded.problems
