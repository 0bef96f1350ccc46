"""``assets/``: the gallery's examples open, and the committed demo dataset is exactly what its recipe makes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from medr1_app.examples import build_gallery, demo_gallery_dir, load_examples
from train.data import load_samples
from train.demo_model import DemoSettings
from train.synthetic_task import CANONICAL_OPTIONS, TEST_SEED_OFFSET, write_fixed_split


def test_every_gallery_example_opens_and_names_its_question():
    examples = load_examples()
    shown, items = build_gallery()
    assert len(shown) == len(examples) == len(items) >= 5
    assert {e.image.split(":")[0] for e in examples} >= {"pydicom", "demo/images/2000_00000.png"}
    for example, (thumb, caption) in zip(shown, items, strict=True):
        assert Path(thumb).is_file() and caption == example.caption and example.question.endswith(("?", "."))


def test_the_demo_gallery_is_the_demo_tasks_first_heldout_questions(tmp_path):
    """assets/README.md names the command that made demo/: the first held-out questions of the Fine-tune demo,
    which the demo model never trains on; the gallery asks each exactly as the demo's data does."""
    demo = DemoSettings()
    made = write_fixed_split(tmp_path, 4, seed=demo.seed + TEST_SEED_OFFSET, image_size=demo.image_size)
    committed = demo_gallery_dir() / "data.jsonl"
    assert committed.read_text() == made.read_text()
    for record in map(json.loads, committed.read_text().splitlines()):
        ours = np.asarray(Image.open(demo_gallery_dir() / record["image"]))
        fresh = np.asarray(Image.open(tmp_path / record["image"]))
        assert np.array_equal(ours, fresh), record["image"]
    loaded = load_samples(committed)
    assert len(loaded.samples) == 4 and not loaded.problems
    assert {s.question_type for s in loaded.samples} == set(CANONICAL_OPTIONS)
    shown = {e.image: e for e in load_examples() if e.image.startswith("demo/")}
    for sample in loaded.samples:
        example = shown[f"demo/{Path(sample.image).relative_to(demo_gallery_dir()).as_posix()}"]
        assert (example.question, list(example.options)) == (sample.question, sample.options)
