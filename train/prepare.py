"""What GRPO and SFT runs share: data selection, device defaults, resuming and the model card."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from train.config import DataArguments, TrainingDataArguments
from train.data import DataError, LoadResult, load_and_split, select
from train.model_io import MODEL_CARD
from train.protocol import get_prompt

logger = logging.getLogger(__name__)


def load_training_samples(data_args: TrainingDataArguments) -> tuple[LoadResult, list, list]:
    """Load, filter and split the data: returns (everything loaded, train samples, held-out samples).

    The split is made over all modalities first and the training filter applied after, so the
    held-out side is the same set of images whichever modality a run trains on (the paper's
    train-on-one, test-on-all design).
    """
    loaded, train, test = load_and_split(data_args)
    train = select(train, data_args.train_modalities, data_args.train_question_types)
    if data_args.max_samples is not None:
        train = train[: data_args.max_samples]
    if not train:
        raise DataError(
            f"No training questions left from {len(loaded.samples)} loaded: check --train_modalities "
            f"{data_args.train_modalities} / --train_question_types {data_args.train_question_types} against "
            f"the data's modalities {sorted(loaded.summary()['modalities'])}."
        )
    logger.info(
        "Training on %d questions (%d held out, %d records rejected).", len(train), len(test), len(loaded.problems)
    )
    return loaded, train, test


def device_flags(argv: list[str]) -> list[str]:
    """Without a GPU, train in float32 on the CPU: TRL defaults to bf16, which the CPU check rejects.

    Prepended to the command line, so an explicit flag from the user still wins, and a GPU recipe's
    ``bf16: true`` does not stop a CPU smoke run of the same recipe.
    """
    if torch.cuda.is_available():
        return argv
    logger.warning("No GPU found: training in float32 on the CPU.")
    return ["--bf16", "false", "--use_cpu", "true", *argv]


def resolve_resume(value: str | bool | None, output_dir: str) -> str | bool | None:
    """``--resume_from_checkpoint auto|true|last`` resumes the latest *complete* checkpoint if there is one.

    With 'auto' a first run simply starts, so the same command restarts a crashed job. A job killed while
    saving leaves a ``checkpoint-N`` folder without ``trainer_state.json`` (the Trainer writes it last);
    resuming from it fails, so such folders are skipped with a warning and the one before is used.
    """
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.lower() in ("auto", "true", "last"):
        last = last_complete_checkpoint(Path(output_dir))
        if last is None:
            if value.lower() != "auto":
                raise FileNotFoundError(f"No complete checkpoint to resume in {output_dir}.")
            return None
        logger.info("Resuming from %s", last)
        return str(last)
    return value


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The highest ``checkpoint-N`` folder holding ``trainer_state.json``; incomplete ones are reported."""
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    if not output_dir.is_dir():
        return None
    numbered = []
    for path in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = path.name.removeprefix(f"{PREFIX_CHECKPOINT_DIR}-")
        if path.is_dir() and suffix.isdigit():
            numbered.append((int(suffix), path))
    for _, path in sorted(numbered, reverse=True):
        if (path / TRAINER_STATE_NAME).is_file():
            return path
        logger.warning(
            "Skipping %s: it has no %s, so the run was stopped while saving it.", path.name, TRAINER_STATE_NAME
        )
    return None


def write_model_card(
    output_dir: str | Path,
    kind: str,
    model_args: Any,
    data_args: DataArguments,
    training_args: Any,
    loaded: LoadResult,
    train_samples: list,
    rewards: list[str] | None = None,
    final_metrics: dict[str, Any] | None = None,
) -> Path:
    """README.md and medr1_card.json next to the saved weights: what it is, trained on what, and how."""
    output_dir = Path(output_dir)
    from train.tiny_model import is_tiny_random

    base = model_args.model_name_or_path
    tiny = Path(base).is_dir() and is_tiny_random(base)
    summary = loaded.summary()
    n_train = len(train_samples)
    prompt = get_prompt(data_args.prompt).name
    card = {
        "kind": kind,
        "base_model": base,
        "adapter": bool(model_args.use_peft),
        "tiny_random_base": tiny,
        # The prompt text it was trained with (train.protocol.PROMPTS) and the style: what the app and
        # medr1-eval ask it with by default.
        "prompt": prompt,
        "prompt_style": data_args.prompt_style,
        "data": {
            "files": list(data_args.dataset_path),
            "train_questions": n_train,
            "modalities": summary["modalities"],
            "question_types": summary["question_types"],
            "rejected_records": summary["rejected"],
            "train_modalities": data_args.train_modalities,
            "train_question_types": data_args.train_question_types,
            # How the pictures were made: the frames and windows the training records asked for.
            "frames": dict(Counter(s.frame for s in train_samples).most_common()),
            "windows": dict(Counter(s.window or "file default" for s in train_samples).most_common()),
        },
        "rewards": rewards,
        "reward_weights": getattr(training_args, "reward_weights", None),
        "data_config": {**asdict(data_args), "prompt": prompt},
        "training_config": {
            k: getattr(training_args, k, None)
            for k in (
                "learning_rate",
                "num_train_epochs",
                "max_steps",
                "per_device_train_batch_size",
                "gradient_accumulation_steps",
                "num_generations",
                "beta",
                "temperature",
                "max_completion_length",
                "loss_type",
                "seed",
                "bf16",
            )
        },
        "lora": {k: getattr(model_args, k) for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")},
        "final_metrics": final_metrics or {},
    }
    (output_dir / MODEL_CARD).write_text(json.dumps(card, indent=2, default=str))
    warning = (
        "\n> **Tiny random base model: this checkpoint exists to test the pipeline; its answers are meaningless.**\n"
        if tiny
        else ""
    )
    what = "LoRA adapter" if model_args.use_peft else "fully fine-tuned model"
    rewards_line = f"- Rewards: {', '.join(rewards)} (weights {card['reward_weights']})\n" if rewards else ""
    (output_dir / "README.md").write_text(
        f"---\nbase_model: {base}\nlibrary_name: {'peft' if model_args.use_peft else 'transformers'}\n"
        f"tags: [medr1, {kind}, medical-imaging, vision-language]\n---\n\n"
        f"# medr1 {kind.upper()} {what}\n{warning}\n"
        f"- Base model: `{base}`\n"
        f"- Data: {', '.join(map(str, data_args.dataset_path))}: {n_train} training questions; "
        f"modalities {summary['modalities']}; question types {summary['question_types']}\n"
        f"{rewards_line}"
        f"- Prompt: {prompt} ({data_args.prompt_style}); images max_pixels={data_args.max_pixels}, "
        f"min_pixels={data_args.min_pixels}, image_size={data_args.image_size}; DICOM default frame "
        f"{data_args.frame}, window {data_args.window or 'from the file'}\n"
        f"- Full configuration: `medr1_card.json`\n\n"
        "Research use only: not a medical device, not for diagnosis.\n"
    )
    return output_dir / "README.md"
