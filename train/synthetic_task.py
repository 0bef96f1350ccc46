"""The synthetic task as the learning proof and the Fine-tune demo ask it: one option order, seeded splits.

The task itself is ``train.synthetic`` (unchanged): four texture/colour "modalities" and a blob-size
grading question. ``benchmarks/learning.py`` (the proof that GRPO learns) and the app's Fine-tune demo
(``train.demo_model``) both ask it in the *fixed* option order (:func:`fix_option_order`) and write
their train and held-out questions from two generator seeds derived from one run seed
(:data:`TRAIN_SEED_OFFSET`, :data:`TEST_SEED_OFFSET`), so no image, not even the same noise or blob
position, appears on both sides.
"""

from __future__ import annotations

import json
from pathlib import Path

from train.protocol import LETTERS, build_prompt
from train.synthetic import GRADES, QUESTIONS, TEXTURES, make_synthetic_dataset
from train.tiny_model import DEFAULT_SYSTEM_PROMPT

# Train and held-out generator seeds are derived from the run seed so both splits move with it.
TRAIN_SEED_OFFSET, TEST_SEED_OFFSET = 1_000, 2_000
# The canonical option order of the "fixed" variant: the generator's own lists.
CANONICAL_OPTIONS = {"Modality Recognition": list(TEXTURES), "Lesion Grading": list(GRADES)}
FIXED_OPTIONS_FILE = "data-fixed-options.jsonl"


def tokenizer_corpus(prompt_style: str) -> list[str]:
    """Texts for the random model's tokenizer (``build_tiny_model(extra_corpus=...)``): every prompt of the task.

    The tiny model's default tokenizer knows the prompt templates but not the chat template's system
    line or the task's questions and options, so it spells them letter by letter: 119 text tokens for a
    modality question and 154 for a grading one (batches are padded to the longer). Knowing these words,
    it writes 84 and 101, like a real tokenizer would, and a GRPO step costs about a quarter less. Token
    counts alone carry no answer: the same text serves every image.
    """
    texts = [f"system\n{DEFAULT_SYSTEM_PROMPT}", "user\n", "assistant\n"]
    for question_type, options in CANONICAL_OPTIONS.items():
        texts.append(build_prompt(QUESTIONS[question_type], options, style=prompt_style))
    return texts * 4


def fix_option_order(src: Path, dst: Path) -> Path:
    """Copy a synthetic JSONL with every question's options in canonical order, the gold letter remapped.

    Why this variant exists: with shuffled options, answering with a letter needs a pointer from the
    option the image shows to the letter printed before it. A random 2-layer model does not learn that
    pointer within the proof's CPU budget even from gold answers, so GRPO could not be judged on it.
    With a fixed order each letter stands for one class, as in many real benchmarks' grading questions;
    the classes are drawn uniformly, so no letter is right more often than another and with blank
    images nothing above chance can be learned.
    """
    records = []
    for line in Path(src).read_text().splitlines():
        record = json.loads(line)
        gold = record["options"][LETTERS.index(record["answer"])]
        record["options"] = CANONICAL_OPTIONS[record["question_type"]]
        record["answer"] = LETTERS[record["options"].index(gold)]
        records.append(record)
    Path(dst).write_text("".join(json.dumps(r) + "\n" for r in records))
    return Path(dst)


def write_fixed_split(out_dir: str | Path, num_samples: int, seed: int, image_size: int) -> Path:
    """One split of the task in the fixed option order: ``out_dir/images/*.png`` and ``out_dir/data.jsonl``.

    Unlike ``benchmarks/_task.make_splits`` (which keeps the generator's shuffled file beside the fixed
    one, for the proof's ``--options`` switch), only the fixed file is left, so the folder is a dataset a
    user can load as it is (the Fine-tune tab validates a folder's every JSONL file).
    """
    out_dir = Path(out_dir)
    shuffled = make_synthetic_dataset(out_dir, num_samples, seed=seed, size=image_size, file_name="shuffled.jsonl")
    fixed = fix_option_order(shuffled, out_dir / "data.jsonl")
    shuffled.unlink()
    return fixed
