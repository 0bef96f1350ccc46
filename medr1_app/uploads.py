"""Uploaded files leave the server seconds after they are read: one clean-up for every tab.

Gradio writes each upload into its cache folder. Pictures and datasets from clinicians may carry patient
data, in their pixels, their DICOM headers or their file names, so every tab reads an upload through
:meth:`UploadJanitor.read` (or hands it over with :meth:`UploadJanitor.release` once copied), and the
file is deleted a few seconds later. Not at once, because Gradio stores uploads by content hash: two
users uploading the same file share one path, and deleting it the moment the first has read it would
fail the second.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import gradio as gr


def delete_upload(path: str | Path) -> None:
    """Delete an uploaded file from Gradio's upload cache (and its per-upload folder when empty).

    Only files inside Gradio's cache are touched, so an example shipped with pydicom or a file named
    by a local API caller is never deleted.
    """
    path = Path(path).resolve()
    cache = Path(gr.utils.get_upload_folder()).resolve()
    if cache not in path.parents:
        return
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


class UploadJanitor:
    """Deletes each upload a few seconds after it was read.

    Reading the same path again restarts its countdown, and a file that was uploaded again since it was
    read (a new inode at the same path) is left to its new reader's countdown. Holds file paths only.
    """

    def __init__(self, grace_seconds: float):
        self.grace = grace_seconds
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}

    def read(self, path: str | Path) -> bytes:
        """The upload's bytes; the file is released for deletion whether or not it could be read."""
        try:
            return Path(path).read_bytes()
        finally:
            self.release(path)

    def release(self, path: str | Path) -> None:
        """Delete ``path`` after the grace period (the caller has read or copied it)."""
        key = str(path)
        timer = threading.Timer(self.grace, self._delete, args=(key, _identity(key)))
        timer.daemon = True
        with self._lock:
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            self._timers[key] = timer
        timer.start()

    def _delete(self, key: str, identity: tuple[int, int] | None) -> None:
        with self._lock:
            self._timers.pop(key, None)
        if identity is not None and _identity(key) == identity:
            delete_upload(key)

    def pending(self) -> int:
        with self._lock:
            return len(self._timers)
