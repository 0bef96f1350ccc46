"""Loading a VLM and its processor for training or inference, and the LoRA adapter configuration.

Kept in one place so training, evaluation and the app load models identically (dtype, image size
bounds, processor), and so the error for a model that is neither cached nor reachable is one clear
message instead of a stack of hub retries.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from train.imaging import MEDR1_MAX_PIXELS, PixelBounds
from train.protocol import PROMPT_STYLES, PROMPTS

logger = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model or adapter that cannot be loaded; the message says what to do.

    ``unreachable`` is True when the weights are neither local nor downloadable here (no hub), so a
    caller can lead with its own shortest fix; ``cause`` keeps the library's own words for a details view.
    """

    def __init__(self, message: str, *, cause: str = "", unreachable: bool = False):
        super().__init__(message + (f" Cause: {cause}" if cause else ""))
        self.summary = message
        self.cause = cause
        self.unreachable = unreachable


def default_dtype(requested: str | None = None) -> torch.dtype:
    """bf16 on a GPU that supports it, float32 elsewhere ('auto'/None), else the named dtype."""
    if requested not in (None, "auto"):
        return getattr(torch, requested)
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _explain(name: str, exc: Exception) -> ModelLoadError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(exc).lower()
    where = "not a local folder" if not Path(name).exists() else "a local folder that is not a complete checkpoint"
    hint = (
        "The model hub is not reachable and these weights are not in the local cache. "
        if offline or "connect" in str(exc).lower() or "resolve" in str(exc).lower()
        else ""
    )
    return ModelLoadError(
        f"Could not load model {name!r} ({where}). {hint}Download it once where the hub is reachable "
        f"(`hf download {name}`), or pass a local checkpoint with --model PATH "
        f"(for offline checks: `medr1-train tiny-model DIR`).",
        cause=f"{type(exc).__name__}: {exc}",
        unreachable=bool(hint) and not Path(name).exists(),
    )


def load_processor(name: str, max_pixels: int | None = None, min_pixels: int | None = None) -> Any:
    """The model's processor with image-size bounds set, left padding for batched generation."""
    from transformers import AutoProcessor

    # Bounds go in as the image processor's ``size`` (min/max_pixels kwargs are deprecated in transformers 5).
    kwargs: dict[str, Any] = {}
    if max_pixels is not None or min_pixels is not None:
        from transformers import AutoImageProcessor

        try:
            size = dict(AutoImageProcessor.from_pretrained(name).size)
        except (OSError, ValueError) as exc:
            raise _explain(name, exc) from exc
        size = {k: v for k, v in size.items() if k in ("shortest_edge", "longest_edge") and v is not None}
        if min_pixels is not None:
            size["shortest_edge"] = min_pixels
        if max_pixels is not None:
            size["longest_edge"] = max_pixels
        kwargs["size"] = size
    try:
        processor = AutoProcessor.from_pretrained(name, **kwargs)
    except (OSError, ValueError) as exc:
        raise _explain(name, exc) from exc
    if getattr(processor, "tokenizer", None) is None or getattr(processor, "image_processor", None) is None:
        raise ModelLoadError(
            f"{name!r} has no image processor: it is not a vision-language checkpoint (or torchvision is missing)."
        )
    processor.tokenizer.padding_side = "left"
    return processor


def pixel_bounds(source: Any, cap: int | None = MEDR1_MAX_PIXELS) -> PixelBounds | None:
    """The model's input-size rule, from a loaded processor or a checkpoint folder (read, not loaded).

    The one place pixel bounds are read: training, evaluation and the app's viewer all size pictures
    with it. ``cap`` holds the upper bound at Med-R1's training size: Qwen2-VL's processor allows about
    12.8 megapixels (thousands of image tokens) by default, which only costs memory and drifts from
    training. None when a folder has no processor configuration.
    """
    if isinstance(source, (str, Path)):
        config: dict[str, Any] = {}
        for name in ("preprocessor_config.json", "processor_config.json"):
            path = Path(source) / name
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                config = data.get("image_processor", data)
                break
        if not config:
            return None
        size = config.get("size") or {}
        low, high = config.get("min_pixels"), config.get("max_pixels")
        patch, merge = config.get("patch_size"), config.get("merge_size")
    else:
        processor = getattr(source, "image_processor", source)
        size = getattr(processor, "size", None) or {}
        low, high = getattr(processor, "min_pixels", None), getattr(processor, "max_pixels", None)
        patch, merge = getattr(processor, "patch_size", None), getattr(processor, "merge_size", None)
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    low = get("shortest_edge") or low or PixelBounds.min_pixels
    high = get("longest_edge") or high or PixelBounds.max_pixels
    if cap:
        high = min(int(high), cap)
    factor = int(patch) * int(merge) if patch and merge else PixelBounds.patch
    return PixelBounds(min(int(low), int(high)), int(high), patch=factor)


def load_model(name: str, dtype: str | torch.dtype | None = None, attn_implementation: str | None = None, **kwargs):
    """A Qwen2-VL-family model for conditional generation, on CPU, in ``dtype`` (default: see above)."""
    from transformers import AutoModelForImageTextToText

    torch_dtype = dtype if isinstance(dtype, torch.dtype) else default_dtype(dtype)
    try:
        return AutoModelForImageTextToText.from_pretrained(
            name, dtype=torch_dtype, attn_implementation=attn_implementation, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise _explain(name, exc) from exc


def load_for_inference(name: str, adapter: str | None = None, dtype: str | None = None, device: str | None = None):
    """Model (with an optional LoRA adapter merged) in eval mode on ``device`` (default: cuda if present)."""
    model = load_model(name, dtype=dtype)
    if adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Could not load LoRA adapter {adapter!r} onto {name!r}: {exc}") from exc
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval()


MODEL_CARD = "medr1_card.json"


def read_model_card(path: str | Path) -> dict[str, Any]:
    """A medr1 checkpoint's ``medr1_card.json`` (written by ``train.prepare.write_model_card``); {} if none."""
    try:
        card = json.loads((Path(path) / MODEL_CARD).read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def trained_prompt(path: str | Path) -> tuple[str | None, str | None]:
    """(prompt name, prompt style) a medr1 checkpoint was trained with, from its card; None where unknown.

    Cards written before prompts had names hold only ``data_config.prompt_style``: their text was medr1's.
    """
    card = read_model_card(path)
    if not card:
        return None, None
    data = card.get("data_config") or {}
    style = card.get("prompt_style") or data.get("prompt_style")
    name = card.get("prompt") or data.get("prompt") or "medr1"
    return (name if name in PROMPTS else None), (style if style in PROMPT_STYLES else None)


def adapter_base(adapter_dir: str | Path) -> str | None:
    """The base model an adapter was trained on (from its ``adapter_config.json``)."""
    import json

    config = Path(adapter_dir) / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text()).get("base_model_name_or_path")


def lora_config(model_args: Any):
    """PEFT LoRA config from TRL's ``ModelConfig`` fields; None for full fine-tuning."""
    if not model_args.use_peft:
        return None
    from peft import LoraConfig

    from train.config import LANGUAGE_MODEL_LORA_TARGETS

    targets = model_args.lora_target_modules or LANGUAGE_MODEL_LORA_TARGETS
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        bias="none",
        use_rslora=model_args.use_rslora,
        use_dora=model_args.use_dora,
        modules_to_save=model_args.lora_modules_to_save,
    )
