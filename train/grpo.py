"""``medr1-train grpo``: Med-R1's GRPO fine-tuning of a Qwen2-VL-family model, LoRA by default.

In the style of TRL's ``grpo_vlm.py`` example: our data options plus TRL's ``GRPOConfig`` and
``ModelConfig`` with Med-R1's defaults (``train.config``), parsed from flags and/or ``--config
recipe.yaml``; the model, processor, dataset and rewards built here and handed to TRL's
``GRPOTrainer``, with changes that save time and leave the numbers as they are: sampling with the
LoRA adapter merged into weight copies (``train.merged_generation``), encoding each question's picture
once for all its completions (``train.vision_dedup``), prefilling each question's prompt once for all
its completions (``train.generation.rollouts_prefilled_once``), projecting only the completion tokens
onto the vocabulary in the log-probability passes, on the CPU as TRL does on CUDA
(``train.completion_scoring``), and, when asked, a static KV cache whose decode step transformers
compiles (``--fast_generation``). Multi-GPU and multi-node runs are the same command under
``accelerate launch --config_file train/recipes/accelerate/zero2.yaml``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import sys
from pathlib import Path

import torch

from train.callbacks import MetricsFileCallback, StopOnSignalCallback, read_metrics
from train.completion_scoring import completion_tokens_only
from train.config import GRPOScriptArguments, MedR1ModelConfig, grpo_config_classes
from train.data import to_hf_dataset
from train.generation import is_out_of_memory, rollouts_prefilled_once, use_fast_path
from train.heldout import HeldOutCallback
from train.merged_generation import can_merge_for_generation, lora_merged_for_generation
from train.model_io import load_model, load_processor, lora_config
from train.prepare import device_flags, load_training_samples, resolve_resume, write_model_card
from train.rewards import get_reward_funcs
from train.vision_dedup import encode_each_image_once

logger = logging.getLogger(__name__)


def make_parser(prog: str = "medr1-train grpo"):
    from trl import TrlParser

    return TrlParser(grpo_config_classes(), prog=prog)


def use_vllm(choice: str) -> bool:
    """'auto' turns vLLM generation on when it is installed and a GPU is present."""
    if choice not in ("auto", "on", "off"):
        raise ValueError(f"--vllm must be auto, on or off, not {choice!r}.")
    available = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if choice == "on" and not available:
        raise RuntimeError("--vllm on needs the vllm package and a GPU: `pip install medr1[vllm]`, or use --vllm off.")
    return choice == "on" or (choice == "auto" and available)


@functools.cache
def grpo_trainer_class():
    """TRL's ``GRPOTrainer``, sampling with the LoRA adapter merged when that is safe (see merged_generation).

    Built on first use so that importing this module does not import TRL; cached so there is one class.
    """
    from trl import GRPOTrainer

    class MedR1GRPOTrainer(GRPOTrainer):
        merge_lora_for_generation = True
        prefill_prompts_once = True
        score_completion_tokens_only = True

        def _generate_single_turn(self, *args, **kwargs):
            with contextlib.ExitStack() as stack:
                if self.merge_lora_for_generation and can_merge_for_generation(self):
                    stack.enter_context(lora_merged_for_generation(self.model))
                if self.prefill_prompts_once and not self.use_vllm:
                    stack.enter_context(rollouts_prefilled_once(self.model))
                return self._generate_falling_back(*args, **kwargs)

        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            if not self.score_completion_tokens_only:
                return super()._get_per_token_logps_and_entropies(*args, **kwargs)
            with completion_tokens_only():
                return super()._get_per_token_logps_and_entropies(*args, **kwargs)

        def _generate_falling_back(self, *args, **kwargs):
            """The static-cache (fast) path, or today's path if that fails: logged once, then kept."""
            config = self.generation_config
            if getattr(config, "cache_implementation", None) != "static":
                return super()._generate_single_turn(*args, **kwargs)
            try:
                return super()._generate_single_turn(*args, **kwargs)
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise
                logger.warning(
                    "Fast rollouts (static cache) failed, sampling the ordinary way from now on: %s: %s",
                    type(exc).__name__,
                    (str(exc).splitlines() or [""])[0][:300],
                )
                config.cache_implementation = None
                config.disable_compile = True
                self.generation_kwargs.pop("cache_implementation", None)
                return super()._generate_single_turn(*args, **kwargs)

    return MedR1GRPOTrainer


def train(
    script_args: GRPOScriptArguments, training_args, model_args: MedR1ModelConfig, callbacks: list | None = None
) -> Path:
    """Run GRPO and save the adapter (or full model), processor and model card; returns the output dir.

    ``callbacks`` are extra ``TrainerCallback``s (the app's progress reporting, tests' probes).
    """
    for module in script_args.reward_modules:
        importlib.import_module(module)
    reward_funcs = get_reward_funcs(script_args.reward_funcs)
    if training_args.reward_weights is not None and len(training_args.reward_weights) != len(reward_funcs):
        raise ValueError(
            f"--reward_weights has {len(training_args.reward_weights)} values for {len(reward_funcs)} rewards "
            f"({', '.join(script_args.reward_funcs)})."
        )
    training_args.use_vllm = use_vllm(script_args.vllm)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fast = not training_args.use_vllm and use_fast_path(script_args.fast_generation, device)
    if fast and training_args.cache_implementation is None:
        training_args.cache_implementation = "static"
    # Reward functions need every column (answer, options, prompt_style, prompt_name...).
    training_args.remove_unused_columns = False

    loaded, train_samples, _ = load_training_samples(script_args)
    dataset = to_hf_dataset(
        train_samples, prompt_style=script_args.prompt_style, bounds=script_args.pixel_bounds, prompt=script_args.prompt
    )
    name = model_args.model_name_or_path
    processor = load_processor(name, max_pixels=script_args.max_pixels, min_pixels=script_args.min_pixels)
    dtype = model_args.dtype if torch.cuda.is_available() else "float32"
    model = load_model(name, dtype=dtype, attn_implementation=model_args.attn_implementation)

    peft_config = lora_config(model_args)
    if script_args.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, script_args.init_adapter, is_trainable=True)
        peft_config = None

    output_dir = Path(training_args.output_dir)
    metrics = MetricsFileCallback(script_args.metrics_file or output_dir / "metrics.jsonl")
    extra = [heldout_callback(script_args, training_args, output_dir, metrics)] if script_args.heldout_path else []
    trainer = grpo_trainer_class()(
        model=model,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[metrics, StopOnSignalCallback(), *extra, *(callbacks or [])],
    )
    trainer.merge_lora_for_generation = script_args.merge_lora_for_generation
    trainer.prefill_prompts_once = script_args.prefill_prompts_once
    trainer.score_completion_tokens_only = script_args.score_completion_tokens_only
    if trainer.generation_config.cache_implementation == "static":
        # TRL turns compilation off for its rollouts; the static cache is there so the decode step compiles.
        trainer.generation_config.disable_compile = False
    if script_args.encode_each_image_once:
        encode_each_image_once(trainer.model)
    metrics.trainer = trainer
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, str(output_dir)))
    trainer.save_model(str(output_dir))
    if trainer.accelerator.is_main_process:
        logged = [r for r in read_metrics(metrics.path) if "reward" in r]
        write_model_card(
            output_dir,
            "grpo",
            model_args,
            script_args,
            training_args,
            loaded,
            train_samples,
            rewards=list(script_args.reward_funcs),
            final_metrics={k: v for k, v in (logged[-1] if logged else {}).items() if k != "samples"},
        )
        logger.info("Saved to %s", output_dir)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def heldout_callback(script_args: GRPOScriptArguments, training_args, output_dir: Path, metrics) -> HeldOutCallback:
    """``--heldout_path``: its questions read like the training data (same loader, image rules and prompt)."""
    from train.data import dataset_files, load_many

    files = [f for p in script_args.heldout_path for f in dataset_files(p)]
    loaded = load_many(
        files,
        image_root=script_args.image_root,
        fmt=script_args.dataset_format,
        on_error=script_args.on_bad_record,
        frame=script_args.frame,
        window=script_args.window,
    )
    return HeldOutCallback(
        [s for s in loaded.samples if s.options],  # accuracy is defined for multiple choice only
        output_dir,
        metrics,
        prompt_style=script_args.prompt_style,
        prompt=script_args.prompt or "medr1",
        max_new_tokens=training_args.max_completion_length,
        max_pixels=script_args.max_pixels,
        min_pixels=script_args.min_pixels,
        image_size=script_args.image_size,
        batch_size=16,
    )


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    script_args, training_args, model_args = make_parser().parse_args_and_config(
        args=device_flags(list(sys.argv[1:] if argv is None else argv))
    )
    train(script_args, training_args, model_args)


if __name__ == "__main__":
    main(sys.argv[1:])
