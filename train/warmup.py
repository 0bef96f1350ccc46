"""The format warm-up: a short SFT on random-option answers, saved as a full checkpoint GRPO starts from.

A random model never writes ``<think>…</think><answer>…</answer>``, so every reward is 0, every
advantage is 0 and GRPO has no gradient. The warm-up fixes the layout only: its targets name a *random*
option ``k``, chosen independently of the image and of the gold answer (balanced over the options, see
:func:`warmup_choices`): ``<answer>{text of option k}</answer>`` (answer style "text") or
``<answer>{letter k}</answer>`` ("letter"). They teach the layout and carry no information about which
option is correct: after the warm-up every letter has a probability of about 0.25 on every image, and
answers sampled in the first GRPO steps are right about one time in four (greedy answers follow
differences of a few hundredths, see ``benchmarks/learning.py``).

The learning proof (``benchmarks/learning.py``) and the app's demo start model (``train.demo_model``)
both start GRPO from this. Why not ``medr1-train sft``: the kit's SFT is Med-R1's answer-only baseline,
its targets are the *gold* letters, which is exactly the task knowledge the proof must not leak. This
runs TRL's ``SFTTrainer`` with the same settings as ``train/sft.py`` on the warm-up rows instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from train.data import Sample
from train.model_io import load_model, load_processor
from train.protocol import LETTERS, format_completion

ANSWER_STYLES = ("text", "letter")


def warmup_choices(samples: Sequence[Sample], rng: random.Random) -> list[int]:
    """The option each warm-up target names: random, never looking at the gold answer or the image, *balanced*.

    Within each question type, every run of ``len(options)`` consecutive questions names each option once,
    in a random order. Why balanced rather than drawn independently: the warm-up's last batches set the
    letter prior GRPO starts from, and an independent draw left it skewed (seed 1: A/B/C/D sampled
    21/39/31/8 % at temperature 0.7). GRPO only sees a letter rewarded when it samples it on an image of
    that class, so the rare letter's class was merged into a neighbour's and never recovered (held-out
    65 %). With balanced targets read in order (``train_sampling_strategy="sequential"`` in
    :func:`run_warmup`), every batch pushes the prior towards uniform.
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


def run_warmup(
    base_dir: Path,
    out_dir: Path,
    samples: list[Sample],
    seed: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    prompt_style: str,
    answer_style: str,
    max_pixels: int,
    min_pixels: int,
) -> Path:
    """Fine-tune the language model (vision tower frozen) on random-option answers; returns the checkpoint dir.

    Full fine-tuning of the small language model (a random network has nothing for LoRA to adapt;
    GRPO afterwards is LoRA, as in Med-R1). The vision tower stays frozen and random, so all the model
    knows about images comes from its initialisation and, later, from what GRPO teaches the language model.
    """
    from trl import SFTConfig, SFTTrainer

    processor = load_processor(str(base_dir), max_pixels=max_pixels, min_pixels=min_pixels)
    model = load_model(str(base_dir), dtype="float32")
    for name, param in model.named_parameters():
        param.requires_grad = "visual" not in name
    args = SFTConfig(
        output_dir=str(out_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        # In order, so that every batch holds the balanced targets of ``warmup_choices`` (see there).
        train_sampling_strategy="sequential",
        warmup_steps=0,
        logging_steps=max(1, steps // 5),
        save_strategy="no",
        report_to="none",
        bf16=False,
        use_cpu=True,
        seed=seed,
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    dataset = warmup_dataset(samples, seed, prompt_style, answer_style, max_pixels, min_pixels)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
    trainer.train()
    trainer.save_model(str(out_dir))
    processor.save_pretrained(str(out_dir))
    return out_dir
