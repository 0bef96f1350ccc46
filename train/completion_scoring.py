"""Score only the completion tokens in GRPO's log-probability passes, on the CPU too.

Every GRPO step runs TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``) two or three times: the
reference pass (the KL term), the policy pass and its backward. Where Triton runs (CUDA, XPU) the head
projects only the labelled positions, the completion tokens, onto the vocabulary. Everywhere else it
projects *every* position of every sequence (the prompt, the picture's tokens, the padding) and masks the
results afterwards: TRL does that so that devices that compile per shape (Neuron) see one tile shape per
batch. A CPU does not compile per shape, and Med-R1's prompts are several times longer than its
completions, so on the CPU most of the head's work, forward and backward, was thrown away: with 4
questions × 4 completions of 32 tokens on the tiny model, 4 to 5 positions were scored per kept one.

Within :func:`completion_tokens_only` the head takes its compact branch on the CPU as well. The kept
log-probabilities, entropies and gradients are the same numbers (``tests/test_grpo_speed.py`` checks
them against the full projection); positions outside the completion are zero either way.

TRL chooses the branch with the private ``trl.trainer.utils._use_triton(device)``, used there for that
choice only (the kernel itself reads its own module's copy, so the CPU keeps its torch fallback). Should
a TRL release move it, the block does nothing and the step is as fast as TRL makes it; the test above
then fails, so the change does not go unnoticed.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

# Devices on which TRL projects every position although nothing there compiles per shape.
COMPACT_DEVICE_TYPES = ("cpu",)


@contextlib.contextmanager
def completion_tokens_only() -> Iterator[bool]:
    """Within the block TRL's fused LM head scores the labelled positions only; yields whether it could."""
    utils = importlib.import_module("trl.trainer.utils")
    original = getattr(utils, "_use_triton", None)
    if original is None:
        yield False
        return

    def compact(device) -> bool:
        return device.type in COMPACT_DEVICE_TYPES or original(device)

    utils._use_triton = compact
    try:
        yield True
    finally:
        utils._use_triton = original
