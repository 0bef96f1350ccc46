"""What every tab of the app shares: the model registry and loader, the GPU slot and per-session stops.

:class:`AppContext` is handed to each tab builder, so a tab added by another module (the Fine-tune tab
of issue #5) reaches the same registry (to add the adapter it trained), the same model picker (to
refresh and select it) and the same GPU concurrency id (to queue behind answers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .generation import StreamFn, stream_text
from .gpu import GPU_CONCURRENCY_ID
from .models import ModelManager, ModelRegistry


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


@dataclass
class AppContext:
    """Shared by all tabs. ``stream_fn`` is the generation function (a test seam, see ``build_app``)."""

    registry: ModelRegistry
    manager: ModelManager
    default_model: str
    stream_fn: StreamFn = stream_text
    allow_add_models: bool = True
    on_spaces: bool = False
    gpu_concurrency_id: str = GPU_CONCURRENCY_ID
    stops: StopSignals = field(default_factory=StopSignals)
    upload_grace_seconds: float = 30.0
    """Uploads are deleted this long after they were read (see ``ui_ask.UploadJanitor``)."""
    model_dropdown: Any = None
    """The Ask tab's model picker (a ``gr.Dropdown``), set when the Ask tab is built."""
    refresh_models: Callable[[str | None], Any] | None = None
    """``refresh_models(select_key)`` returns a dropdown update with the current choices."""
