"""What every tab of the app shares: models, the GPU slot, uploads, per-session stops; and what a tab is.

:class:`AppContext` is handed to each tab builder (a :class:`TabSpec`), so every tab reaches the same
registry (to add the adapter it trained), the same GPU concurrency id (to queue behind answers) and the
same upload clean-up. Tabs never reach into each other: a tab that changes the list of models says so
through :class:`ModelMenus`, and ``build_app`` wires every model picker of every tab to refresh
together once all tabs exist, so no tab depends on the order they are built in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from .evidence_panel import run_evidence
from .generation import StreamFn, stream_samples
from .gpu import GPU_CONCURRENCY_ID
from .models import ModelManager, ModelRegistry
from .uploads import UploadJanitor


class StopSignals:
    """One Stop event per browser session, so a Stop press stops that user's generation only.

    ``arm`` is called when Ask is clicked (before the request waits in the queue), ``take`` when the
    generation starts: a Stop pressed while the request was still queued is therefore honoured too.
    Holds ``threading.Event`` objects only, nothing about the question or the image.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, threading.Event] = {}
        self._running: dict[str, threading.Event] = {}

    def arm(self, session: str) -> None:
        with self._lock:
            self._pending[session] = threading.Event()

    def take(self, session: str) -> threading.Event:
        with self._lock:
            event = self._pending.pop(session, None) or threading.Event()
            self._running[session] = event
            return event

    def stop(self, session: str) -> bool:
        """Set the session's pending and running events; True when there was something to stop."""
        with self._lock:
            events = [e for e in (self._pending.get(session), self._running.get(session)) if e is not None]
        for event in events:
            event.set()
        return bool(events)

    def done(self, session: str, event: threading.Event) -> None:
        with self._lock:
            if self._running.get(session) is event:
                del self._running[session]

    def forget(self, session: str) -> None:
        with self._lock:
            self._pending.pop(session, None)
            self._running.pop(session, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._running)


class ModelMenus:
    """Every model picker in the app, refreshed together from the registry.

    A tab creates its picker with :meth:`menu` and names the events after which the list may have changed
    (:meth:`refresh_after`: a run finished, ↻ pressed); ``build_app`` then calls :meth:`wire`, which
    refreshes every picker after each of those events and when the page loads. Each picker keeps its
    own selection when it still exists; an event can also name a component holding a key to select in
    the primary picker (the Ask tab's).
    """

    def __init__(self, registry: ModelRegistry, default_key: str):
        self.registry = registry
        self.default_key = default_key
        self.menus: list[gr.Dropdown] = []
        self.primary: gr.Dropdown | None = None
        self._triggers: list[tuple[Any, Any]] = []
        self._on_select: list[tuple[Callable[..., Any], list[Any], list[Any]]] = []

    def menu(self, primary: bool = False, **kwargs: Any) -> gr.Dropdown:
        """A ``gr.Dropdown`` of the registry's models, registered for refreshes.

        It accepts any value (``allow_custom_value``): the registry, not the list a session last saw,
        decides what a key means, so an adapter registered a moment ago (or named by an API caller) is
        usable at once, and an unknown key gets the handler's own message.
        """
        kwargs.setdefault("allow_custom_value", True)
        dropdown = gr.Dropdown(choices=self.registry.choices(), value=self.default_key, **kwargs)
        self.menus.append(dropdown)
        if primary:
            self.primary = dropdown
        return dropdown

    def refresh_after(self, dependency: Any, select: Any = None) -> None:
        """Refresh every picker after ``dependency`` (an event's return value); ``select``: a component
        whose value, a model key, the primary picker then selects."""
        self._triggers.append((dependency, select))

    def on_select(self, fn: Callable[..., Any], inputs: list[Any], outputs: list[Any]) -> None:
        """Run ``fn`` after an event selected a model in the primary picker (``refresh_after(..., select=)``).

        The primary picker's own handlers listen to ``.input`` (a user's choice), which a selection made by
        another tab does not fire; without this the Ask tab would keep the previous model's banner and
        prompt after *Load this adapter in the Ask tab*.
        """
        self._on_select.append((fn, inputs, outputs))

    def updates(self, values: Sequence[str | None], select: str | None = None) -> list[Any]:
        """One dropdown update per picker: the current choices, each keeping its value if it still exists."""
        choices = self.registry.choices()
        keys = {key for _, key in choices}
        out = []
        for menu, value in zip(self.menus, values, strict=True):
            if select in keys and menu is self.primary:
                value = select
            out.append(gr.update(choices=choices, value=value if value in keys else self.default_key))
        return out

    def wire(self, demo: gr.Blocks) -> None:
        """Attach the refreshes (call once, after every tab is built, inside ``demo``)."""
        if not self.menus:
            return
        menus = list(self.menus)

        def refresh(*values: str | None) -> Any:
            updates = self.updates(values)
            return updates[0] if len(updates) == 1 else updates  # Gradio reads one output's list as its value

        def refresh_selecting(key: str | None, *values: str | None) -> Any:
            updates = self.updates(values, select=key)
            return updates[0] if len(updates) == 1 else updates

        demo.load(refresh, menus, menus, api_visibility="private", queue=False)
        for dependency, select in self._triggers:
            if select is None:
                dependency.then(refresh, menus, menus, api_visibility="private")
            else:
                selected = dependency.then(refresh_selecting, [select, *menus], menus, api_visibility="private")
                for fn, inputs, outputs in self._on_select:
                    selected = selected.then(fn, inputs, outputs, api_visibility="private")


@dataclass(frozen=True)
class TabSpec:
    """A tab: ``build(ctx)`` is called inside ``gr.Tab(title)`` and may return its components.

    ``runs_jobs=True`` marks tabs that run long jobs on the server (training, evaluation): a public
    deployment shows them only when asked to and behind a password (``AppConfig.jobs_enabled``).
    """

    title: str
    build: Callable[[AppContext], Any]
    runs_jobs: bool = False


@dataclass
class AppContext:
    """Shared by all tabs. ``stream_fn`` is the generation function and ``evidence_fn`` the evidence run
    after an answer (test seams, see ``build_app``)."""

    registry: ModelRegistry
    manager: ModelManager
    default_model: str
    stream_fn: StreamFn = stream_samples
    evidence_fn: Callable[..., Iterator[Any]] = run_evidence
    allow_add_models: bool = True
    on_spaces: bool = False
    gpu_concurrency_id: str = GPU_CONCURRENCY_ID
    stops: StopSignals = field(default_factory=StopSignals)
    upload_grace_seconds: float = 30.0
    """Uploads are deleted this long after they were read (see :class:`~medr1_app.uploads.UploadJanitor`)."""
    uploads: UploadJanitor = field(init=False)
    menus: ModelMenus = field(init=False)

    def __post_init__(self) -> None:
        self.uploads = UploadJanitor(self.upload_grace_seconds)
        self.menus = ModelMenus(self.registry, self.default_model)
