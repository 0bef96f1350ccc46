"""The format warm-up of the learning proof: now ``train.warmup`` (the app's demo model uses it too).

Kept under its old name, so ``from benchmarks._warmup import run_warmup`` keeps working.
"""

from __future__ import annotations

from train.warmup import run_warmup

__all__ = ["run_warmup"]
