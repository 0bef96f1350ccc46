"""Command-line / YAML configuration for ``medr1-train`` and ``medr1-eval``: the one place for every default.

``TrlParser`` fills these dataclasses together with TRL's own configs, so every TRL option (learning
rate, ``num_generations``, ``beta``, ``reward_weights``, ``use_vllm``...) is a flag or a YAML key as-is,
and a recipe file under ``train/recipes/`` is just those keys. Training and evaluation share
:class:`DataArguments`, so a dataset is named with the same flags in both (``--dataset_path``,
``--image_root``, ``--test_fraction``, ``--max_pixels``...). The app's Fine-tune tab reads its widgets'
defaults from here (:func:`field_defaults`) and writes a recipe that ``medr1-train grpo --config`` reads
back, so a value typed in this file is the value everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from trl import GRPOConfig, ModelConfig

from train.imaging.model_input import MEDR1_MAX_PIXELS, MEDR1_MIN_PIXELS, PixelBounds
from train.protocol import PROMPT_NAMES, get_prompt

# LoRA on the language model's attention and MLP projections; the vision tower stays frozen, as in
# Med-R1. A regex, because Qwen2.5-VL's vision blocks also have modules named gate_proj/up_proj/down_proj.
LANGUAGE_MODEL_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class DataArguments:
    """Which questions to use and how their pictures reach the model (training and evaluation alike)."""

    dataset_path: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Dataset file(s) or folder(s): medr1 JSONL, OmniMedVQA QA JSON or Med-R1 split JSON "
            "(a whole Splits/ folder works too)."
        },
    )
    dataset_format: str = field(default="auto", metadata={"help": "auto, jsonl, omnimedvqa or medr1."})
    image_root: str | None = field(
        default=None, metadata={"help": "Folder that relative image paths start from (default: the file's folder)."}
    )
    test_fraction: float = field(
        default=0.0,
        metadata={"help": "Hold out this fraction of images (never of questions: an image is on one side only)."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the train/test split."})
    max_samples: int | None = field(
        default=None,
        metadata={
            "help": "Use at most this many questions (training: the first N; evaluation: spread over the cells)."
        },
    )
    on_bad_record: str = field(
        default="skip", metadata={"help": "'skip' (report and leave out) or 'raise' (stop at the first bad record)."}
    )
    prompt_style: str = field(
        default="think", metadata={"help": "'think' (reason, then answer) or 'no_think'; medr1-eval also takes 'both'."}
    )
    prompt: str | None = field(
        default=None,
        metadata={
            "help": f"Which prompt text: {', '.join(PROMPT_NAMES)} (see docs/training.md). Default: medr1 for "
            "training; for medr1-eval, the prompt each checkpoint was trained with (its medr1_card.json), else medr1."
        },
    )
    image_size: int | None = field(
        default=None, metadata={"help": "Resize images to a square of this side first (Med-R1 used 384)."}
    )
    max_pixels: int = field(
        default=MEDR1_MAX_PIXELS, metadata={"help": f"Upper bound on image area (Med-R1: {MEDR1_MAX_PIXELS})."}
    )
    min_pixels: int = field(default=MEDR1_MIN_PIXELS, metadata={"help": "Lower bound on image area."})
    frame: int = field(default=0, metadata={"help": "Frame of multi-frame DICOM files, for records that name none."})
    window: str | None = field(
        default=None,
        metadata={
            "help": "DICOM window for records that name none: a preset (lung, brain, bone, auto...) or "
            "CENTRE,WIDTH; default: the file's own window, else the modality's."
        },
    )

    def __post_init__(self) -> None:
        if self.prompt is not None:
            self.prompt = get_prompt(self.prompt).name

    @property
    def pixel_bounds(self) -> PixelBounds:
        """The model-input size rule these arguments describe (see ``train.imaging.model_input``)."""
        return PixelBounds(self.min_pixels, self.max_pixels, self.image_size)


@dataclass
class TrainingDataArguments(DataArguments):
    """The data options of a training run: the paper's train-on-one-modality (or question type) filters."""

    train_modalities: list[str] | None = field(
        default=None,
        metadata={"help": "Train only on these modalities (e.g. CT), as in the paper's cross-modality runs."},
    )
    train_question_types: list[str] | None = field(
        default=None, metadata={"help": "Train only on these question types (e.g. 'Disease Diagnosis')."}
    )


@dataclass
class GRPOScriptArguments(TrainingDataArguments):
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
    heldout_path: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Questions never trained on, scored with the kit's evaluation before the first step and "
            "after the last (OUTPUT_DIR/heldout.json and metrics.jsonl; see train/heldout.py)."
        },
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
    prefill_prompts_once: bool = field(
        default=True,
        metadata={
            "help": "Run each question's prompt through the model once and share its KV cache among the "
            "num_generations completions (the same samples; see train/generation.py)."
        },
    )
    score_completion_tokens_only: bool = field(
        default=True,
        metadata={
            "help": "In the log-probability passes, project only the completion tokens onto the vocabulary, as "
            "TRL does on CUDA, also on the CPU (the same numbers; see train/completion_scoring.py)."
        },
    )
    fast_generation: str = field(
        default="off",
        metadata={
            "help": "Rollouts with a static KV cache whose decode step transformers compiles: 'auto' (on "
            "CUDA), 'on' or 'off'. Falls back to the ordinary path, once, if compiling fails. Off by default: "
            "not yet measured on a GPU here (docs/benchmarks.md)."
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
class SFTScriptArguments(TrainingDataArguments):
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


@dataclass
class MedR1GRPOConfig(GRPOConfig):
    """TRL's GRPO options with Med-R1's values where its recipe differs from TRL's defaults."""

    beta: float = field(
        default=0.04,
        metadata={"help": "KL coefficient to the starting model (Med-R1: 0.04; 0 loads no reference model)."},
    )
    num_generations: int | None = field(default=4, metadata={"help": "Answers sampled per question (Med-R1: 4)."})
    learning_rate: float = field(
        default=1e-5,
        metadata={"help": "Peak learning rate (LoRA; Med-R1's full fine-tuning used 1e-6, see its recipe)."},
    )


def field_defaults(*classes: type) -> dict[str, Any]:
    """``{field name: default}`` of dataclasses, later classes winning, without instantiating them.

    What the app's Fine-tune tab shows before the user changes anything; instantiating ``GRPOConfig``
    would set up devices and check combinations that do not matter for reading a default.
    """
    out: dict[str, Any] = {}
    for cls in classes:
        for item in dataclasses.fields(cls):
            if item.default is not dataclasses.MISSING:
                out[item.name] = item.default
            elif item.default_factory is not dataclasses.MISSING:
                out[item.name] = item.default_factory()
    return out


def grpo_config_classes() -> tuple[type, type, type]:
    """The dataclasses ``medr1-train grpo`` parses, in its order: script, GRPO, model."""
    return GRPOScriptArguments, MedR1GRPOConfig, MedR1ModelConfig


RECIPES = Path(__file__).with_name("recipes")


def grpo_recipe(path: str | Path | None = None) -> dict[str, Any]:
    """Every ``medr1-train grpo`` option with its default, overlaid by a recipe YAML's keys.

    A key the parser does not know is refused here, before a run is started with it.
    """
    values = field_defaults(*grpo_config_classes())
    if path is not None:
        values.update(read_recipe(path))
    return values


def read_recipe(path: str | Path) -> dict[str, Any]:
    """Only the keys a recipe YAML sets (checked against ``medr1-train grpo``'s options)."""
    loaded = yaml.safe_load(Path(path).read_text()) or {}
    check_recipe_keys(loaded)
    return loaded


def check_recipe_keys(values: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming any key that is not a ``medr1-train grpo`` option."""
    known = set(field_defaults(*grpo_config_classes()))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Not medr1-train grpo options: {', '.join(unknown)}.")


def write_recipe(path: str | Path, values: dict[str, Any]) -> Path:
    """Write ``values`` as a recipe that ``medr1-train grpo --config PATH`` reads back (keys checked)."""
    check_recipe_keys(values)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
    return path
