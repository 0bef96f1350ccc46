"""``medr1-train sft``: the supervised baseline Med-R1 compares with, on TRL's ``SFTTrainer``.

OmniMedVQA has answers but no rationales, so the target is the answer block alone
(``<answer>C</answer>``) under the no-think prompt: exactly the SFT baseline of the paper. A think-style
target would need rationales we do not have, and inventing them would teach the model to fabricate.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from train.callbacks import MetricsFileCallback, StopOnSignalCallback, read_metrics
from train.config import MedR1ModelConfig, SFTScriptArguments
from train.data import to_hf_dataset
from train.model_io import load_model, load_processor, lora_config
from train.prepare import device_flags, load_training_samples, resolve_resume, write_model_card

logger = logging.getLogger(__name__)


def make_parser(prog: str = "medr1-train sft"):
    from trl import SFTConfig, TrlParser

    return TrlParser((SFTScriptArguments, SFTConfig, MedR1ModelConfig), prog=prog)


def train(
    script_args: SFTScriptArguments, training_args, model_args: MedR1ModelConfig, callbacks: list | None = None
) -> Path:
    """Run SFT and save the adapter (or model), processor and model card; returns the output dir.

    ``callbacks`` are extra ``TrainerCallback``s (the app's progress reporting, tests' probes).
    """
    from trl import SFTTrainer

    if script_args.prompt_style != "no_think":
        logger.warning("SFT targets are answers without rationales: using the no_think prompt.")
        script_args.prompt_style = "no_think"
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {"skip_prepare_dataset": True}

    loaded, train_samples, _ = load_training_samples(script_args)
    dataset = to_hf_dataset(
        train_samples,
        prompt_style="no_think",
        bounds=script_args.pixel_bounds,
        with_targets=True,
        prompt=script_args.prompt,
    )
    name = model_args.model_name_or_path
    processor = load_processor(name, max_pixels=script_args.max_pixels, min_pixels=script_args.min_pixels)
    dtype = model_args.dtype if torch.cuda.is_available() else "float32"
    model = load_model(name, dtype=dtype, attn_implementation=model_args.attn_implementation)

    output_dir = Path(training_args.output_dir)
    metrics = MetricsFileCallback(script_args.metrics_file or output_dir / "metrics.jsonl")
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=lora_config(model_args),
        callbacks=[metrics, StopOnSignalCallback(), *(callbacks or [])],
    )
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, str(output_dir)))
    trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        logged = [r for r in read_metrics(metrics.path) if "loss" in r]
        write_model_card(
            output_dir,
            "sft",
            model_args,
            script_args,
            training_args,
            loaded,
            train_samples,
            final_metrics=logged[-1] if logged else {},
        )
    trainer.accelerator.wait_for_everyone()
    return output_dir


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = device_flags(list(sys.argv[1:] if argv is None else argv))
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=args)
    train(script_args, training_args, model_args)


if __name__ == "__main__":
    main(sys.argv[1:])
