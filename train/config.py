"""Command-line / YAML configuration for ``medr1-train``: our data options next to TRL's own configs.

``TrlParser`` fills these dataclasses together with ``GRPOConfig``/``SFTConfig``, so every TRL option
(learning rate, ``num_generations``, ``beta``, ``reward_weights``, ``use_vllm``...) is a flag or a
YAML key as-is, and a recipe file under ``train/recipes/`` is just those keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import ModelConfig

# LoRA on the language model's attention and MLP projections; the vision tower stays frozen, as in
# Med-R1. A regex, because Qwen2.5-VL's vision blocks also have modules named gate_proj/up_proj/down_proj.
LANGUAGE_MODEL_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class DataArguments:
    """Which questions to train on and how their images reach the model."""

    dataset_path: list[str] = field(
        default_factory=list,
        metadata={"help": "Dataset file(s) or folder(s): medr1 JSONL, OmniMedVQA QA JSON or Med-R1 split JSON."},
    )
    dataset_format: str = field(default="auto", metadata={"help": "auto, jsonl, omnimedvqa or medr1."})
    image_root: str | None = field(
        default=None, metadata={"help": "Folder that relative image paths start from (default: the file's folder)."}
    )
    train_modalities: list[str] | None = field(
        default=None,
        metadata={"help": "Train only on these modalities (e.g. CT), as in the paper's cross-modality runs."},
    )
    train_question_types: list[str] | None = field(
        default=None, metadata={"help": "Train only on these question types (e.g. 'Disease Diagnosis')."}
    )
    test_fraction: float = field(
        default=0.0,
        metadata={"help": "Hold out this fraction of images (never of questions: an image is on one side only)."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/test split."})
    max_samples: int | None = field(default=None, metadata={"help": "Use at most this many training questions."})
    on_bad_record: str = field(
        default="skip", metadata={"help": "'skip' (report and leave out) or 'raise' (stop at the first bad record)."}
    )
    prompt_style: str = field(default="think", metadata={"help": "'think' (Med-R1's prompt) or 'no_think'."})
    image_size: int | None = field(
        default=None, metadata={"help": "Resize images to a square of this side (Med-R1 used 384)."}
    )
    max_pixels: int = field(default=401_408, metadata={"help": "Upper bound on image area (Med-R1: 401408)."})
    min_pixels: int = field(default=3136, metadata={"help": "Lower bound on image area."})


@dataclass
class GRPOScriptArguments(DataArguments):
    reward_funcs: list[str] = field(
        default_factory=lambda: ["format", "accuracy"],
        metadata={"help": "Rewards by name from train.rewards (weights: --reward_weights)."},
    )
    reward_modules: list[str] = field(
        default_factory=list,
        metadata={"help": "Python modules to import first, so rewards they register become available."},
    )
    metrics_file: str | None = field(
        default=None, metadata={"help": "JSON-lines metrics for live plots (default: OUTPUT_DIR/metrics.jsonl)."}
    )
    init_adapter: str | None = field(
        default=None,
        metadata={"help": "Continue training this LoRA adapter (a previous run's output) instead of a new one."},
    )
    vllm: str = field(
        default="auto", metadata={"help": "Generate with vLLM: 'auto' (when installed and on GPU), 'on' or 'off'."}
    )
    merge_lora_for_generation: bool = field(
        default=True,
        metadata={
            "help": "Sample completions with the LoRA adapter merged into copies of the weights (faster; the "
            "trained weights are untouched). Not with vLLM, ZeRO-3 or FSDP."
        },
    )
    encode_each_image_once: bool = field(
        default=True,
        metadata={
            "help": "Run the frozen vision tower once per question, not once per completion: the "
            "num_generations copies of a picture give the same features (exact; see train/vision_dedup.py)."
        },
    )


@dataclass
class SFTScriptArguments(DataArguments):
    metrics_file: str | None = field(
        default=None, metadata={"help": "JSON-lines metrics for live plots (default: OUTPUT_DIR/metrics.jsonl)."}
    )


@dataclass
class MedR1ModelConfig(ModelConfig):
    """TRL's model options with medr1's defaults: a LoRA adapter on the language model."""

    model_name_or_path: str | None = field(
        default="Qwen/Qwen2-VL-2B-Instruct", metadata={"help": "Hub id or local path of the base VLM."}
    )
    use_peft: bool = field(default=True, metadata={"help": "Train a LoRA adapter (False: full fine-tuning)."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
