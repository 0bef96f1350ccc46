"""``build_app``: the whole Gradio app, composed of tabs, plus the launch settings that keep it private.

Tabs are composable: the Ask tab is built here, and other modules add theirs through ``extra_tabs``
(:func:`default_tabs`: Fine-tune and Evaluate). Each :class:`~medr1_app.context.TabSpec` builder
receives the shared :class:`~medr1_app.context.AppContext`: the model registry
(``ctx.registry.add_path(run_dir)`` makes a new adapter selectable), the model pickers
(``ctx.menus``, refreshed together once every tab is built), the upload clean-up (``ctx.uploads``) and
the GPU concurrency id (``ctx.gpu_concurrency_id``).

Privacy settings applied by :func:`launch_kwargs`: ``run_history=False`` (Gradio 6 would otherwise
keep every input and output in the browser), a file size limit, no monitoring endpoint, no footer
link to the run history, and a cache that Gradio empties every few minutes (``delete_cache``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from . import render
from .context import AppContext, TabSpec
from .evidence_panel import run_evidence
from .generation import StreamFn, stream_samples
from .gpu import on_spaces
from .models import ModelManager, ModelRegistry, builtin_models, demo_files, demo_spec, spec_from_argument
from .ui_ask import ENTER_APPLIES, AskTab, build_ask_tab

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
DEFAULT_MODEL = "qwen2-vl-2b"
# Every 5 minutes, delete cached files (rendered views, exports) older than 10 minutes.
DELETE_CACHE = (300, 600)


@dataclass
class AppConfig:
    """How the app is set up; the CLI and the Space entry fill it from flags and the environment."""

    model: str = field(default_factory=lambda: os.environ.get("MEDR1_MODEL", DEFAULT_MODEL))
    runs_dir: str | None = "runs"
    cache_dir: str | None = None
    device: str | None = None
    dtype: str | None = None
    fast_generation: str = field(default_factory=lambda: os.environ.get("MEDR1_FAST_GENERATION", "off"))
    """``train.generation.FAST_MODES``: auto (static KV cache, compiled, on CUDA), on, off (the default until
    it is measured on a GPU)."""
    public: bool = field(default_factory=on_spaces)
    """Reachable by others: a hosted Space, or ``--host`` other than loopback."""
    enable_jobs: bool | None = None
    """Tabs that run jobs (Fine-tune, Evaluate). None: on for a private app; on a public one only with
    ``MEDR1_ENABLE_JOBS=1`` (or its older name ``MEDR1_ENABLE_FINETUNE=1``) and ``MEDR1_PASSWORD`` set."""
    allow_add_models: bool = field(default_factory=lambda: not on_spaces())
    max_file_size: str = "512mb"
    upload_grace_seconds: float = 30.0
    title: str = "medr1 — see a model reason about a medical image"

    def jobs_enabled(self) -> bool:
        """Training and evaluation hold the one GPU slot that answers wait on, for minutes, with anyone's data:
        a public app shows those tabs only when asked to and behind a password."""
        if self.enable_jobs is not None:
            return self.enable_jobs
        if not self.public:
            return True
        wanted = "1" in (os.environ.get("MEDR1_ENABLE_JOBS", ""), os.environ.get("MEDR1_ENABLE_FINETUNE", ""))
        if wanted and not os.environ.get("MEDR1_PASSWORD"):
            logger.warning("MEDR1_ENABLE_JOBS=1 ignored: a public app needs MEDR1_PASSWORD to protect its job tabs.")
        return wanted and bool(os.environ.get("MEDR1_PASSWORD"))


def default_tabs() -> list[TabSpec]:
    """The tabs ``medr1-app`` and the Space add after Ask: Fine-tune and Evaluate.

    Their modules build on :class:`TabSpec` and :class:`AppContext`; ``build_app`` itself adds no tab
    unless asked, so tests and embedders choose what they compose.
    """
    from .ui_evaluate import evaluate_tab
    from .ui_finetune import finetune_tab

    return [finetune_tab(), evaluate_tab()]


def build_context(
    config: AppConfig,
    registry: ModelRegistry | None = None,
    manager: ModelManager | None = None,
    stream_fn: StreamFn | None = None,
    evidence_fn: Callable[..., Iterator[Any]] | None = None,
) -> AppContext:
    """Registry (built-ins, the ``--model`` choice, the runs directory), loader and shared state."""
    if registry is None:
        # The built-ins, and the Fine-tune demo's start model, built the first time it is picked.
        registry = ModelRegistry([*builtin_models(), demo_spec(demo_files(config.cache_dir))], runs_dir=config.runs_dir)
    chosen = spec_from_argument(config.model, cache_dir=config.cache_dir)
    registry.add(chosen)
    manager = manager or ModelManager(registry, device=config.device, dtype=config.dtype, fast=config.fast_generation)
    return AppContext(
        registry=registry,
        manager=manager,
        default_model=chosen.key,
        stream_fn=stream_fn or stream_samples,
        evidence_fn=evidence_fn or run_evidence,
        allow_add_models=config.allow_add_models,
        on_spaces=on_spaces(),
        upload_grace_seconds=config.upload_grace_seconds,
    )


def build_app(
    config: AppConfig | None = None,
    *,
    extra_tabs: Sequence[TabSpec] = (),
    registry: ModelRegistry | None = None,
    manager: ModelManager | None = None,
    stream_fn: StreamFn | None = None,
    evidence_fn: Callable[..., Iterator[Any]] | None = None,
) -> gr.Blocks:
    """The app as a ``gr.Blocks`` (call ``.launch(**launch_kwargs(config))`` on it).

    ``stream_fn`` is a **test seam only**: tests pass a scripted function with the signature of
    :func:`medr1_app.generation.stream_samples` to get deterministic text; the app never sets it.
    ``evidence_fn`` likewise replaces :func:`medr1_app.evidence_panel.run_evidence` (e.g. to hold a stage).
    The returned Blocks carries ``medr1_context`` (the :class:`AppContext`) and ``medr1_ask``
    (the Ask tab's components) for other tabs and for tests.
    """
    config = config or AppConfig()
    ctx = build_context(config, registry=registry, manager=manager, stream_fn=stream_fn, evidence_fn=evidence_fn)
    with gr.Blocks(title=config.title, delete_cache=DELETE_CACHE, analytics_enabled=False) as demo:
        gr.HTML(
            f'<div class="medr1-header"><h1>{render.esc(config.title)}</h1>{render.disclaimer_html(short=True)}</div>',
            elem_id="medr1-header",
        )
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                ask: AskTab = build_ask_tab(ctx)
            for tab in extra_tabs:
                if tab.runs_jobs and not config.jobs_enabled():
                    logger.info(
                        "Tab %r left out: jobs are disabled on this public app (MEDR1_ENABLE_JOBS=1 and "
                        "MEDR1_PASSWORD enable them).",
                        tab.title,
                    )
                    continue
                with gr.Tab(tab.title):
                    tab.build(ctx)
        gr.HTML(render.disclaimer_html(), elem_id="medr1-footer-disclaimer")
        ctx.menus.wire(demo)
    demo.queue(max_size=64, default_concurrency_limit=1)
    demo.medr1_context = ctx  # type: ignore[attr-defined]
    demo.medr1_ask = ask  # type: ignore[attr-defined]
    return demo


def launch_kwargs(config: AppConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """``Blocks.launch`` arguments: private by default (loopback, no run history, size-limited uploads)."""
    config = config or AppConfig()
    kwargs: dict[str, Any] = {
        "server_name": None if on_spaces() else "127.0.0.1",
        "max_file_size": config.max_file_size,
        "run_history": False,
        "footer_links": ["api"],
        "enable_monitoring": False,
        "show_error": False,
        "ssr_mode": False,
        "css_paths": [STATIC / "medr1.css"],
        "head": ENTER_APPLIES,
        "theme": gr.themes.Soft(primary_hue="blue"),
    }
    if config.public and config.jobs_enabled() and os.environ.get("MEDR1_PASSWORD"):
        # Gradio's login page in front of the whole app, since a job tab is exposed publicly.
        kwargs["auth"] = (os.environ.get("MEDR1_USER", "medr1"), os.environ["MEDR1_PASSWORD"])
    kwargs.update(overrides)
    return kwargs
