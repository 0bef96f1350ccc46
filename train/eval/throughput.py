"""How fast an evaluation can go on this device: the largest batch that fits, and how long the run will take.

``--batch_size auto`` tries batches of the longest questions (the batches are planned longest first), each
generating the full ``max_new_tokens``, doubling until the GPU runs out of memory, and keeps the largest
that fitted. The probe costs a few generate calls, so its answer is written to a small JSON file keyed by
model, device, dtype and the settings that change memory, and read back on later runs. On the CPU memory
is not the limit, and the default batch (8) is used.

:func:`time_estimate` is the line printed after the first batch, before a long run goes on: the first batch
holds the longest prompts, so the estimate is an upper bound.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from train.generation import is_out_of_memory

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8
CANDIDATES = (8, 16, 32, 64, 128, 256)


def cache_file() -> Path:
    """Where found batch sizes are kept (``MEDR1_CACHE`` or ``~/.cache/medr1``)."""
    root = Path(os.environ.get("MEDR1_CACHE") or Path.home() / ".cache" / "medr1")
    return root / "batch_sizes.json"


def largest_batch_size(
    try_batch: Callable[[int], None],
    key: str,
    device: str,
    limit: int,
    candidates: Sequence[int] = CANDIDATES,
    cache: Path | None = None,
) -> int:
    """The largest of ``candidates`` (at most ``limit``, the number of questions) for which ``try_batch`` fits.

    ``try_batch(n)`` runs one worst-case batch of ``n`` questions and raises an out-of-memory error if it
    does not fit. The answer is cached under ``key`` (see :func:`probe_key`). On a CPU device nothing is
    probed. If even the smallest candidate does not fit, halves are tried down to 1.
    """
    if not str(device).startswith("cuda"):
        logger.info("--batch_size auto: %d on %s (no GPU memory to fill).", DEFAULT_BATCH_SIZE, device)
        return min(DEFAULT_BATCH_SIZE, max(limit, 1))
    cache = cache or cache_file()
    known = _read(cache)
    if key in known:
        size = min(int(known[key]), max(limit, 1))
        logger.info("--batch_size auto: %d (found earlier for this model and device, %s).", size, cache)
        return size
    fitted = 0
    for size in [c for c in candidates if c <= limit] or [max(limit, 1)]:
        if not _fits(try_batch, size):
            break
        fitted = size
    if fitted == 0:  # not even the smallest candidate: look below it
        size = min(candidates[0], max(limit, 1)) // 2
        while size >= 1 and not _fits(try_batch, size):
            size //= 2
        fitted = max(size, 1)
    known[key] = fitted
    _write(cache, known)
    logger.info("--batch_size auto: %d (the largest batch that fitted; kept in %s).", fitted, cache)
    return fitted


def _fits(try_batch: Callable[[int], None], size: int) -> bool:
    try:
        try_batch(size)
        return True
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        return False
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def probe_key(model: Any, device: str, settings: Any, adapter: str | None = None) -> str:
    """What the batch size depends on: the model, the device and the settings that change memory."""
    name = getattr(getattr(model, "config", None), "name_or_path", None) or type(model).__name__
    gpu = torch.cuda.get_device_name(torch.device(device)) if str(device).startswith("cuda") else str(device)
    dtype = str(getattr(model, "dtype", "")).replace("torch.", "")
    parts = [
        name, adapter or "", gpu, dtype, settings.max_new_tokens, settings.max_pixels, settings.image_size,
        settings.prompt_style, settings.fast_generation,
    ]  # fmt: skip
    return "|".join(str(p) for p in parts)


def _read(cache: Path) -> dict[str, int]:
    try:
        data = json.loads(cache.read_text())
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write(cache: Path, known: dict[str, int]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    except OSError as exc:  # a read-only home: the probe runs again next time, nothing else changes
        logger.warning("Could not keep the batch size in %s (%s).", cache, exc)


def time_estimate(total: int, done: int, first_questions: int, first_seconds: float, name: str = "") -> str:
    """``[name] 17,662 questions ≈ 43 min on this device`` from the first batch's time."""
    left = max(total - done, 0)
    seconds = first_seconds / max(first_questions, 1) * left
    if seconds < 90:
        span = f"{seconds:.0f} s"
    elif seconds < 90 * 60:
        span = f"{seconds / 60:.0f} min"
    else:
        span = f"{seconds / 3600:.1f} h"
    prefix = f"[{name}] " if name else ""
    rate = first_questions / first_seconds if first_seconds > 0 else float("inf")
    return (
        f"{prefix}{left:,} questions ≈ {span} on this device at most ({rate:.2f} questions/s in the first batch, "
        "which holds the longest prompts)."
    )


def split_on_out_of_memory(generate_batch: Callable[[list, list], list], texts: list, images: list) -> list:
    """``generate_batch(texts, images)``, halving the batch (and halving again) when it runs out of GPU memory.

    A batch that fitted at the start of a long run can stop fitting later (a longer answer, a fragmented
    allocator); losing the run to it would cost hours. One question that alone does not fit still fails.
    Greedy answers do not depend on the batch they were asked in (tests/test_evaluate_pipeline.py).
    """
    try:
        return generate_batch(texts, images)
    except Exception as exc:
        if len(texts) < 2 or not is_out_of_memory(exc):
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    half = len(texts) // 2
    logger.warning("A batch of %d questions ran out of GPU memory; asking it in two halves.", len(texts))
    first = split_on_out_of_memory(generate_batch, texts[:half], images[:half])
    return first + split_on_out_of_memory(generate_batch, texts[half:], images[half:])
