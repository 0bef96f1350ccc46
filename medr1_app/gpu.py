"""The one GPU slot: a Gradio concurrency id shared by generation and training, and ZeroGPU support.

Every event that runs the model or trains it must be registered with
``concurrency_id=GPU_CONCURRENCY_ID, concurrency_limit=1``: Gradio then runs at most one of them at a
time across all users and queues the rest, so an answer never competes with a training step for GPU
memory. (The Fine-tune tab's event has to stay running while its subprocess trains, e.g. by streaming
``metrics.jsonl``, for the slot to stay taken.)

On a Hugging Face ZeroGPU Space a GPU is attached only inside functions decorated with
``spaces.GPU``; :func:`gpu_task` applies that decorator there and nothing anywhere else, so the same
code runs on a laptop, a GPU server and a Space. ``spaces`` is imported only when present.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import TypeVar

GPU_CONCURRENCY_ID = "gpu"
F = TypeVar("F", bound=Callable)


def on_spaces() -> bool:
    """True inside a Hugging Face Space (the platform sets ``SPACE_ID``)."""
    return bool(os.environ.get("SPACE_ID"))


def zero_gpu() -> bool:
    """True on a ZeroGPU Space (``SPACES_ZERO_GPU`` set by the platform) with ``spaces`` installed."""
    flag = os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "true", "yes")
    return flag and importlib.util.find_spec("spaces") is not None


def gpu_task(duration: int = 120) -> Callable[[F], F]:
    """``spaces.GPU(duration=...)`` on ZeroGPU, a no-op decorator everywhere else."""
    if not zero_gpu():
        return lambda fn: fn
    import spaces

    return spaces.GPU(duration=duration)
