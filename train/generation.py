"""Decoding options shared by evaluation and the app: one rule for greedy and sampled answers.

Kept in one place because the same question must be decoded the same way in ``medr1-eval`` and in the
Ask tab: a reported accuracy is only the accuracy a clinician meets if both ask ``generate`` for the
same thing.
"""

from __future__ import annotations

from typing import Any


def default_max_new_tokens(prompt_style: str) -> int:
    """Room for a rationale with the think prompt; the no-think answer block needs a handful of tokens."""
    return 512 if prompt_style == "think" else 32


def sampling_kwargs(temperature: float, top_p: float = 1.0) -> dict[str, Any]:
    """``model.generate`` keyword arguments for greedy decoding (``temperature == 0``) or sampling.

    Greedy clears the checkpoint's own sampling defaults so transformers does not warn about them.
    Sampling sets ``top_k=0`` (off): Qwen2-VL-Instruct's generation config has ``top_k=1``, which would
    turn every "sample" into the greedy answer.
    """
    if temperature < 0:
        raise ValueError("temperature cannot be negative (0 means greedy decoding).")
    if temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
