"""Helpers for the app's tests: a scripted text generator (the documented test seam) and app launching.

``ScriptedStream`` stands in for :func:`medr1_app.generation.stream_samples` where a test needs known
text (a parsed rationale and answer, a vote split). Everything else stays real: the image is opened,
windowed and resized by the app, the model and processor are loaded, the prompt is built, and the
text goes through the real parser, renderer and exporter. Tests that use it say so; the tests of the
real generation path use the tiny random model instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from train.evidence.maps import DEFAULT_OPACITY

if TYPE_CHECKING:
    from medr1_app.generation import Streamed

WELL_FORMED = (
    "<think>The picture is a grey-scale cross-section with dense bone at the rim, typical of a CT slice."
    "</think>\n<answer>A</answer>"
)


@dataclass
class ScriptedStream:
    """Streams sample ``i``'s text as ``responses[i % len(responses)]``, ``chunk`` characters per step, all
    samples together (as the model draws them), honouring ``stop`` like a model: samples that had not
    reached their end when it was set are left unfinished."""

    responses: Sequence[str]
    chunk: int = 4
    delay: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def response(self, index: int, prompt: Any) -> str:
        """The text sample ``index`` writes (subclasses answer by prompt)."""
        return self.responses[index % len(self.responses)]

    def __call__(self, loaded, image, prompt, settings, stop=None, **_: Any) -> Iterator[Streamed]:
        from medr1_app.generation import Streamed

        with self.lock:
            sizes = [picture.size for picture in image] if isinstance(image, list) else None
            self.calls.append(
                {"prompt": prompt, "size": sizes[0] if sizes else image.size, "sizes": sizes or [image.size],
                 "samples": settings.samples, "seed": settings.seed}
            )  # fmt: skip
        texts = [self.response(i, prompt) for i in range(settings.samples)]
        longest = max(len(t) for t in texts)
        end = 0
        for end in range(self.chunk, longest + self.chunk, self.chunk):
            if stop is not None and stop.is_set():
                break
            if self.delay:
                time.sleep(self.delay)
            yield Streamed(tuple(t[:end] for t in texts), tuple(end >= len(t) for t in texts))
        stopped = stop is not None and stop.is_set()
        yield Streamed(tuple(t[:end] for t in texts), tuple(end >= len(t) or not stopped for t in texts))


def launch(demo, port: int | None = None) -> str:
    """Start ``demo`` in this process (returns its URL); call ``demo.close()`` when done."""
    from medr1_app.app import launch_kwargs

    overrides: dict[str, Any] = {"prevent_thread_lock": True, "quiet": True}
    if port is not None:
        overrides["server_port"] = port
    _, url, _ = demo.launch(**launch_kwargs(**overrides))
    return url


def ask_args(
    question: str = "What imaging technique was used to obtain this image?",
    options: Sequence[str] = ("CT", "MRI", "X-ray", "Ultrasound"),
    *,
    model: str | None = None,
    window: str = "default",
    center: float = 0,
    width: float = 1,
    frame: int = 0,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 32,
    style: str = "think",
    seed: int = 0,
    samples: int = 1,
    prompt: str | None = None,
    slices: int = 1,
    evidence: bool = True,
    show_map: bool = True,
    opacity: float = DEFAULT_OPACITY,
    relevancy: bool = False,
) -> list[Any]:
    """Positional arguments of the ``/ask`` endpoint, in order (``slices``: N slices asked about together;
    ``evidence``: the attention map, option preference and image-reliance check after the answer)."""
    boxes = [*options, *[""] * (6 - len(options))]
    count = len(options) if options else 0
    return [
        model,
        window,
        center,
        width,
        frame,
        question,
        count,
        *boxes,
        temperature,
        top_p,
        max_new_tokens,
        style,
        seed,
        samples,
        prompt,
        slices,
        evidence,
        show_map,
        opacity,
        relevancy,
        "attention",
    ]


def follow_up_args(
    question: str,
    options: Sequence[str] = (),
    *,
    max_new_tokens: int = 32,
    samples: int = 1,
    seed: int = 0,
    evidence: bool = True,
) -> list[Any]:
    """Positional arguments of the (undocumented) ``/follow_up`` endpoint: the defaults of ``ask_args``."""
    return [
        None,
        "default",
        0,
        1,
        0,
        question,
        "\n".join(options),
        0.0,
        1.0,
        max_new_tokens,
        "think",
        seed,
        samples,
        None,
        evidence,
        True,
        DEFAULT_OPACITY,
        False,
        "attention",
    ]


# Indices of /ask's (and /follow_up's) outputs as clients see them: State outputs and layout blocks
# (accordions, groups) are not sent to clients.
VIEWER, ANSWER, RATIONALE, SAMPLES, DOWNLOADS, STATUS, BANNER, MODEL_STATUS, RESULT = range(9)
VIEWER_INFO, SAMPLE_PICKER, CONVERSATION, FOLLOWUP, FOLLOWUP_OPTIONS, EVIDENCE, MAP_METHOD = range(9, 16)
# Indices of /open's outputs, likewise (/open takes a list of files: one picture, a ZIP, a volume, or several).
OPEN_VIEWER, OPEN_STATUS, OPEN_METADATA, OPEN_WINDOW, OPEN_CENTER, OPEN_WIDTH, OPEN_FRAME, OPEN_UPLOAD = range(8)
OPEN_VIEWER_INFO, OPEN_SERIES, OPEN_VIEW, OPEN_SLICES, OPEN_SLICES_NOTE = range(8, 13)
OPEN_ANSWER, OPEN_RATIONALE, OPEN_SAMPLES, OPEN_SAMPLE_PICKER, OPEN_DOWNLOADS, OPEN_ASK_STATUS = range(13, 19)
OPEN_CONVERSATION, OPEN_RESULT, OPEN_EVIDENCE = range(19, 22)


def registry_with_demo(demo_files, runs_dir=None):
    """The app's default model list, its demo start model being the test session's CI-sized one
    (``demo_files`` fixture): the app's own would be built in the user's cache, at full size."""
    from medr1_app.models import ModelRegistry, builtin_models, demo_spec

    return ModelRegistry([*builtin_models(), demo_spec(demo_files)], runs_dir=runs_dir)
