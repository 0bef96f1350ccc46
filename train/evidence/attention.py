"""The language model's attention from chosen query positions, recorded during one ordinary forward pass.

Why not ``output_attentions=True`` with eager attention: that keeps every layer's full L×L matrix for
every head (Qwen2-VL-2B, 1,700 tokens: about 2 GB in bf16) only to read one row of each. Here the
text model's attention is switched, for the length of one pass, to a function that computes its output
with PyTorch's SDPA as usual and, beside it, the softmax of the *same* rotated queries and keys for the
requested rows only: the weights are exactly those eager attention would return for those rows
(``tests/test_evidence.py`` checks them against ``output_attentions``), whatever kernel the model
otherwise uses, at a cost of a few rows per layer.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

IMPLEMENTATION = "medr1_attention_rows"


class RowRecorder:
    """Collects, per decoder layer, the attention weights of ``rows`` (heads × rows × keys).

    With ``gradients=True`` the recorded rows *are* the layer's attention for those rows: their outputs
    are recomputed from the recorded weights (``weights @ values``, equal to SDPA's) and the weights keep
    their gradient, so a backward pass from the answer's logit gives each weight's full derivative
    (``leaves``, as eager attention's weights would), which gradient × attention needs.
    """

    def __init__(self, rows: Sequence[int], gradients: bool = False):
        self.rows = torch.as_tensor(list(rows), dtype=torch.long)
        self.gradients = gradients
        self.layers: dict[int, torch.Tensor] = {}
        self.leaves: dict[int, torch.Tensor] = {}

    def weights(self, module: Any, query: torch.Tensor, key: torch.Tensor, mask: Any, scaling: float | None):
        rows = self.rows.to(query.device)
        keys = repeat_kv(key, getattr(module, "num_key_value_groups", 1))[0].float()  # heads × L × d
        queries = query[0, :, rows].float()  # heads × rows × d
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        scores = queries @ keys.transpose(-1, -2) * scale
        length = keys.shape[-2]
        if isinstance(mask, torch.Tensor):
            picked = mask[0, :, rows, :length]
            scores = scores.masked_fill(~picked, float("-inf")) if picked.dtype == torch.bool else scores + picked
        else:  # no mask tensor: plain causal attention over one unpadded sequence
            causal = torch.arange(length, device=scores.device)[None, :] > rows[:, None]
            scores = scores.masked_fill(causal[None], float("-inf"))
        return torch.softmax(scores, dim=-1)

    def record(self, module: Any, query, key, value, mask: Any, scaling: float | None, output: torch.Tensor):
        """Keep this layer's rows; with gradients, route the rows' output through them (returns the output)."""
        index = int(getattr(module, "layer_idx", len(self.layers)))
        if not self.gradients:
            with torch.no_grad():
                self.layers[index] = self.weights(module, query, key, mask, scaling).cpu()
            return output
        weights = self.weights(module, query, key, mask, scaling)
        self.layers[index] = weights.detach().cpu()
        if weights.requires_grad:
            weights.retain_grad()
        self.leaves[index] = weights
        values = repeat_kv(value, getattr(module, "num_key_value_groups", 1))[0]  # heads × L × d
        rows_out = (weights.to(values.dtype) @ values).transpose(0, 1)  # rows × heads × d
        output = output.clone()
        output[0, self.rows.to(output.device)] = rows_out.to(output.dtype)
        return output


_ACTIVE: contextvars.ContextVar[RowRecorder | None] = contextvars.ContextVar("medr1_row_recorder", default=None)


def _attention_with_rows(module, query, key, value, attention_mask, **kwargs):
    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    recorder = _ACTIVE.get()
    if recorder is not None and query.shape[2] > 1:
        output = recorder.record(module, query, key, value, attention_mask, kwargs.get("scaling"), output)
    return output, None


AttentionInterface.register(IMPLEMENTATION, _attention_with_rows)
AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)


def text_config(model: Any) -> Any:
    """The config object the language model's attention layers read ``_attn_implementation`` from."""
    config = model.config
    return getattr(config, "text_config", None) or config


@contextlib.contextmanager
def recording_rows(model: Any, rows: Sequence[int], gradients: bool = False) -> Iterator[RowRecorder]:
    """Within the block, forward passes record the attention of ``rows`` in every text decoder layer.

    The vision tower keeps its own implementation (its config is a separate object).
    """
    config = text_config(model)
    previous = config._attn_implementation
    recorder = RowRecorder(rows, gradients)
    token = _ACTIVE.set(recorder)
    config._attn_implementation = IMPLEMENTATION
    try:
        yield recorder
    finally:
        config._attn_implementation = previous
        _ACTIVE.reset(token)


def layer_count(model: Any) -> int:
    return int(text_config(model).num_hidden_layers)


def layer_range(spec: str | Sequence[int] | None, count: int) -> list[int]:
    """Which decoder layers a map averages: "all", "late" (the second half, the default), "last", "a:b"
    (Python slice over layer indices) or explicit indices.
    """
    if spec is None or spec == "late":
        return list(range(count // 2, count)) or [count - 1]
    if spec == "all":
        return list(range(count))
    if spec == "last":
        return [count - 1]
    if isinstance(spec, str):
        if ":" not in spec:
            raise ValueError(f"Layers {spec!r}: use all, late, last, a:b or a list of indices.")
        start, stop = (int(part) if part.strip() else None for part in spec.split(":", 1))
        chosen = list(range(count))[slice(start, stop)]
    else:
        chosen = [int(i) for i in spec]
    if not chosen or any(not 0 <= i < count for i in chosen):
        raise ValueError(f"Layers {spec!r} are outside the model's 0..{count - 1}.")
    return chosen
