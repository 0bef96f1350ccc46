"""The learning proof's data: seeded train/held-out splits of the synthetic task, and warm-up targets.

The task itself is ``train.synthetic`` (unchanged): four texture/colour "modalities" and a blob-size
grading question, options shuffled per question. Train and held-out questions come from two different
generator seeds, so no image (not even the same noise or blob position) appears on both sides.

Warm-up targets name a *random* option ``k``, chosen independently of the image and of the gold answer
(balanced over the options, see :func:`warmup_choices`):
``<answer>{text of option k}</answer>`` (answer style "text") or ``<answer>{letter k}</answer>`` ("letter").
They teach the layout and carry no information about which option is correct: after the warm-up every
letter has a probability of about 0.25 on every image, and answers sampled in the first GRPO steps are
right about one time in four (greedy answers follow differences of a few hundredths, see
``benchmarks/learning.py``).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from train.data import Sample, load_samples
from train.protocol import LETTERS, build_prompt, format_completion
from train.synthetic import GRADES, QUESTIONS, TEXTURES, make_synthetic_dataset
from train.tiny_model import DEFAULT_SYSTEM_PROMPT

# Train and held-out generator seeds are derived from the run seed so both splits move with it.
TRAIN_SEED_OFFSET, TEST_SEED_OFFSET = 1_000, 2_000


@dataclass(frozen=True)
class TaskSplits:
    train_jsonl: Path
    test_jsonl: Path
    train: list[Sample]
    test: list[Sample]


OPTION_ORDERS = ("fixed", "shuffled")
# The canonical option order of the "fixed" variant: the generator's own lists.
CANONICAL_OPTIONS = {"Modality Recognition": list(TEXTURES), "Lesion Grading": list(GRADES)}


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


def make_splits(
    out_dir: Path,
    seed: int,
    n_train: int,
    n_test: int,
    blank_images: bool = False,
    options: str = "shuffled",
    image_size: int = 112,
) -> TaskSplits:
    """Write the train and held-out splits (PNG + medr1 JSONL) under ``out_dir`` and load them back.

    ``options="fixed"`` rewrites each question with its options in the generator's canonical order
    (see :func:`fix_option_order`); images, questions and gold answers are unchanged.
    """
    if options not in OPTION_ORDERS:
        raise ValueError(f"options must be one of {OPTION_ORDERS}, not {options!r}.")
    paths = []
    for split, n, offset in (("train", n_train, TRAIN_SEED_OFFSET), ("test", n_test, TEST_SEED_OFFSET)):
        path = make_synthetic_dataset(
            out_dir / split, n, seed=seed + offset, size=image_size, blank_images=blank_images
        )
        if options == "fixed":
            path = fix_option_order(path, path.with_name("data-fixed-options.jsonl"))
        paths.append(path)
    return TaskSplits(paths[0], paths[1], load_samples(paths[0]).samples, load_samples(paths[1]).samples)


def fix_option_order(src: Path, dst: Path) -> Path:
    """Copy a synthetic JSONL with every question's options in canonical order, the gold letter remapped.

    Why this variant exists: with shuffled options, answering with a letter needs a pointer from the
    option the image shows to the letter printed before it. A random 2-layer model does not learn that
    pointer within this script's CPU budget even from gold answers, so GRPO could not be judged on it.
    With a fixed order each letter stands for one class, as in many real benchmarks' grading questions;
    the classes are drawn uniformly, so no letter is right more often than another and with blank
    images nothing above chance can be learned.
    """
    records = []
    for line in src.read_text().splitlines():
        record = json.loads(line)
        gold = record["options"][LETTERS.index(record["answer"])]
        record["options"] = CANONICAL_OPTIONS[record["question_type"]]
        record["answer"] = LETTERS[record["options"].index(gold)]
        records.append(record)
    dst.write_text("".join(json.dumps(r) + "\n" for r in records))
    return dst


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


ANSWER_STYLES = ("text", "letter")


def warmup_choices(samples: Sequence[Sample], rng: random.Random) -> list[int]:
    """The option each warm-up target names: random, never looking at the gold answer or the image, *balanced*.

    Within each question type, every run of ``len(options)`` consecutive questions names each option once,
    in a random order. Why balanced rather than drawn independently: the warm-up's last batches set the
    letter prior GRPO starts from, and an independent draw left it skewed (seed 1: A/B/C/D sampled
    21/39/31/8 % at temperature 0.7). GRPO only sees a letter rewarded when it samples it on an image of
    that class, so the rare letter's class was merged into a neighbour's and never recovered (held-out
    65 %). With balanced targets read in order (``train_sampling_strategy="sequential"`` in
    ``_warmup.py``), every batch pushes the prior towards uniform.
    """
    counts: dict[str, int] = {}
    blocks: dict[str, list[int]] = {}
    choices = []
    for sample in samples:
        key = str(sample.question_type)
        position = counts.get(key, 0)
        counts[key] = position + 1
        n = len(sample.options)
        if position % n == 0 or len(blocks[key]) != n:
            blocks[key] = rng.sample(range(n), n)
        choices.append(blocks[key][position % n])
    return choices


def warmup_target(sample: Sample, k: int, prompt_style: str, answer_style: str) -> str:
    """A well-formed answer naming option ``k`` (chosen by :func:`warmup_choices`, blind to the gold answer).

    ``text`` answers with the option's text (``<answer>MRI</answer>``), which the kit's parser and
    accuracy reward accept as that option; ``letter`` with its letter. In think style the rationale is
    the option's text in both cases (it says which option was picked, nothing about the image).
    """
    if answer_style not in ANSWER_STYLES:
        raise ValueError(f"answer_style must be one of {ANSWER_STYLES}, not {answer_style!r}.")
    answer = sample.options[k] if answer_style == "text" else LETTERS[k]
    return format_completion(sample.options[k], answer, style=prompt_style)


def warmup_dataset(
    samples: Sequence[Sample],
    seed: int,
    prompt_style: str,
    answer_style: str,
    max_pixels: int,
    min_pixels: int,
):
    """The kit's TRL VLM dataset (``train.data.to_hf_dataset``) with a random-option ``completion`` column.

    ``to_hf_dataset(with_targets=True)`` targets the gold letter without a rationale; the warm-up needs
    the opposite (a random option, possibly as text), so only the completion column is replaced here.
    """
    from train.data import to_hf_dataset
    from train.imaging import PixelBounds

    choices = warmup_choices(samples, random.Random(seed))
    targets = [warmup_target(s, k, prompt_style, answer_style) for s, k in zip(samples, choices, strict=True)]
    dataset = to_hf_dataset(samples, prompt_style, bounds=PixelBounds(min_pixels, max_pixels))
    return dataset.add_column("completion", [[{"role": "assistant", "content": t}] for t in targets])
