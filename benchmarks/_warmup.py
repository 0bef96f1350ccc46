"""The format warm-up: a short SFT on random-option targets, saved as a full checkpoint GRPO starts from.

A random model never writes ``<think>…</think><answer>…</answer>``, so every reward is 0, every
advantage is 0 and GRPO has no gradient. The warm-up fixes the layout only: its targets name a random
option (see ``benchmarks/_task.py``), so the model it leaves answers at chance.

Why not ``medr1-train sft``: the kit's SFT is Med-R1's answer-only baseline, its targets are the *gold*
letters, which is exactly the task knowledge the proof must not leak. This runs TRL's ``SFTTrainer``
with the same settings as ``train/sft.py`` on the warm-up rows instead.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks._task import warmup_dataset
from train.data import Sample
from train.model_io import load_model, load_processor


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
