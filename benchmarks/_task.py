"""The learning proof's data: seeded train/held-out splits of the synthetic task, and warm-up targets.

The task itself is ``train.synthetic`` (unchanged): four texture/colour "modalities" and a blob-size
grading question, options shuffled per question. Train and held-out questions come from two different
generator seeds, so no image (not even the same noise or blob position) appears on both sides.

The fixed option order, the seed offsets and the tokenizer corpus live in ``train.synthetic_task``, the
warm-up targets in ``train.warmup``: the app's Fine-tune demo (``train.demo_model``) uses them too. They
are imported here under their old names, so ``from benchmarks._task import ...`` keeps working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from train.data import Sample, load_samples
from train.synthetic import make_synthetic_dataset
from train.synthetic_task import (
    CANONICAL_OPTIONS,
    TEST_SEED_OFFSET,
    TRAIN_SEED_OFFSET,
    fix_option_order,
    tokenizer_corpus,
)
from train.warmup import ANSWER_STYLES, warmup_choices, warmup_dataset, warmup_target

__all__ = [
    "ANSWER_STYLES",
    "CANONICAL_OPTIONS",
    "OPTION_ORDERS",
    "TEST_SEED_OFFSET",
    "TRAIN_SEED_OFFSET",
    "TaskSplits",
    "fix_option_order",
    "grey_copies",
    "make_splits",
    "tokenizer_corpus",
    "warmup_choices",
    "warmup_dataset",
    "warmup_target",
]


@dataclass(frozen=True)
class TaskSplits:
    train_jsonl: Path
    test_jsonl: Path
    train: list[Sample]
    test: list[Sample]


OPTION_ORDERS = ("fixed", "shuffled")


def make_splits(
    out_dir: Path,
    seed: int,
    n_train: int,
    n_test: int,
    blank_images: bool = False,
    options: str = "shuffled",
    image_size: int = 112,
    blob_position: str = "central",
) -> TaskSplits:
    """Write the train and held-out splits (PNG + medr1 JSONL) under ``out_dir`` and load them back.

    ``options="fixed"`` rewrites each question with its options in the generator's canonical order
    (see :func:`fix_option_order`); images, questions and gold answers are unchanged.
    ``blob_position="uniform"`` is the grounding variant (blob anywhere, its box in each record).
    """
    if options not in OPTION_ORDERS:
        raise ValueError(f"options must be one of {OPTION_ORDERS}, not {options!r}.")
    paths = []
    for split, n, offset in (("train", n_train, TRAIN_SEED_OFFSET), ("test", n_test, TEST_SEED_OFFSET)):
        path = make_synthetic_dataset(
            out_dir / split,
            n,
            seed=seed + offset,
            size=image_size,
            blank_images=blank_images,
            blob_position=blob_position,
        )
        if options == "fixed":
            path = fix_option_order(path, path.with_name("data-fixed-options.jsonl"))
        paths.append(path)
    return TaskSplits(paths[0], paths[1], load_samples(paths[0]).samples, load_samples(paths[1]).samples)


def grey_copies(samples: Sequence[Sample], grey_png: Path) -> list[Sample]:
    """The same questions with one uniform grey picture instead of their images (``--warmup-images grey``).

    The idea: with one grey picture there is no image variation for random answers to teach the model to
    ignore. What it costs: a model warmed up on grey loses the layout on a quarter to a half of the real
    images, unevenly across classes, so GRPO starts from uneven letters. The proof now warms up on the
    real images (see ``benchmarks/learning.py``); this stays for comparison.
    """
    size = Image.open(samples[0].image).size if samples else (112, 112)
    Image.new("RGB", size, (128, 128, 128)).save(grey_png)
    return [dataclasses.replace(s, image=str(grey_png)) for s in samples]
