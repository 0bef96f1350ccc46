"""Hugging Face Space entry point: the same app as ``medr1-app``, configured from the environment.

Space variables (Settings -> Variables): ``MEDR1_MODEL`` (default ``qwen2-vl-2b``; any ``--model``
value of ``medr1-app``); ``MEDR1_ENABLE_FINETUNE=1`` plus ``MEDR1_PASSWORD`` to show the training tabs
behind a login (off on Spaces: ZeroGPU grants minutes, not hours); ``MEDR1_PRELOAD=0`` to load the model
on the first question instead of at start-up. Locally, ``python app.py`` behaves like ``medr1-app``.
"""

from __future__ import annotations

import importlib.util
import os

if importlib.util.find_spec("spaces") is not None:
    import spaces  # noqa: F401  - ZeroGPU needs it imported before torch

from medr1_app.app import AppConfig, build_app, default_tabs, launch_kwargs
from medr1_app.gpu import on_spaces

config = AppConfig()
demo = build_app(config, extra_tabs=default_tabs())  # training tabs stay hidden on a Space unless enabled
if os.environ.get("MEDR1_PRELOAD", "1" if on_spaces() else "0") == "1":
    # Load (and on Spaces, download) the weights now, so the first visitor does not wait for them.
    demo.medr1_context.manager.get(demo.medr1_context.default_model)

if __name__ == "__main__":
    demo.launch(**launch_kwargs(config))
