"""Sample GRPO's completions with the LoRA adapter folded into merged copies of the base weights.

Why: PEFT keeps the adapter beside each projection, so every generated token runs the base product plus
two small ones (and dropout) per projection. Token-by-token generation is bound by kernel launches, and on
an H200 it made LoRA-GRPO of the Qwen2-VL-2B architecture sample at 349 tokens/s; merged, 613 tokens/s and
1.64x faster steps (README, "Training speed"), since generation is 80-95 % of a GRPO step.

How: each adapted ``nn.Linear`` gets its weight replaced, for the duration of generation, by a *copy* with
the adapter merged in (PEFT's own ``merge(safe_merge=True)``, so DoRA and LoRA biases follow PEFT's
maths), and the original tensors are put back afterwards. Merging in place and subtracting again would
round the frozen bfloat16 weights a little on every step; restoring the original tensors keeps the
trained model bit for bit what it was. The copies cost the adapted weights' size in memory while sampling
(about 2.6 GB for the 2B model's language projections in bf16).

It is not used where weights are sharded across processes (DeepSpeed ZeRO-3, FSDP) or where a base layer
is not a plain ``nn.Linear`` (quantized models): there the adapter stays unmerged, as in TRL.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

logger = logging.getLogger(__name__)


def adapted_linears(model: torch.nn.Module) -> list[torch.nn.Module] | None:
    """The LoRA layers of ``model`` with an active adapter, or None when one of them cannot be merged here."""
    from peft.tuners.lora import LoraLayer

    layers = []
    for module in model.modules():
        if not isinstance(module, LoraLayer) or module.merged or getattr(module, "disable_adapters", False):
            continue
        if type(module.get_base_layer()) is not torch.nn.Linear:
            return None
        if any(name in module.lora_A for name in module.active_adapters):
            layers.append(module)
    return layers


@contextlib.contextmanager
def lora_merged_for_generation(model: torch.nn.Module) -> Iterator[bool]:
    """Within the block ``model`` computes with merged weights; yields whether it merged anything.

    The base layers' original weight and bias tensors are restored on exit, exceptions included.
    """
    layers = adapted_linears(model)
    if not layers:
        yield False
        return
    saved = []
    try:
        for layer in layers:
            base = layer.get_base_layer()
            bias = base.bias.data if base.bias is not None else None
            saved.append((layer, base, base.weight.data, bias, list(layer.merged_adapters)))
            with torch.no_grad():
                layer.merge(safe_merge=True)  # writes a merged copy into base.weight.data
        yield True
    finally:
        for layer, base, weight, bias, merged_adapters in saved:
            base.weight.data = weight
            if bias is not None:
                base.bias.data = bias
            layer.merged_adapters[:] = merged_adapters


def can_merge_for_generation(trainer) -> bool:
    """Whether ``trainer`` (a TRL ``GRPOTrainer``) generates with whole, unsharded weights of a PEFT model."""
    from accelerate.utils import is_peft_model

    if getattr(trainer, "use_vllm", False) or not is_peft_model(trainer.model):
        return False
    if getattr(trainer, "is_fsdp_enabled", False):
        return False
    if getattr(trainer, "is_deepspeed_enabled", False):
        plugin = trainer.accelerator.state.deepspeed_plugin
        if plugin is not None and plugin.zero_stage == 3:
            return False
    return True
