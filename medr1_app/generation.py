"""Streaming generation for one question: the model's exact input, token streaming and a real Stop.

Why these pieces:

* The picture arrives already at the model's input size (``train.imaging.model_picture``), so the
  processor does not resize again and the viewer's PNG *is* the model's input, pixel for pixel.
* :class:`TokenStreamer` hands each step's new tokens to the consumer as they are sampled (transformers'
  ``TextIteratorStreamer`` holds text back until a word ends, which delays the first visible token, and
  takes one sequence only). The consumer decodes only the new tokens, and after the first one gathers
  tokens for 20 ms at a time, so its work stays small and constant as the answer grows and does not hold
  the generating thread back.
* Self-consistency samples are drawn together in one ``generate`` call (:func:`stream_samples`), each
  streamed to its own text: on a GPU a step for N sequences costs about what a step for one does. On
  the CPU a small model decodes on one thread in the generating thread (``decode_threads``): its small
  operations lose more to the hand-off between threads than they gain.
* :class:`StopOnEvent` is a ``StoppingCriteria``: the Stop button sets a ``threading.Event`` and
  ``model.generate`` ends at the next token. Cancelling the Gradio event alone would only stop the
  Python generator while ``generate`` kept the GPU busy in its thread.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from train.generation import decode_threads, default_max_new_tokens, generate, sampling_kwargs
from train.protocol import DEFAULT_PROMPT, PROMPT_STYLES, build_messages, get_prompt

from .models import LoadedModel

# Temperature used for self-consistency when the user left the temperature at 0 (greedy): N greedy
# samples would all be identical and the "agreement" meaningless.
SELF_CONSISTENCY_TEMPERATURE = 0.7
MAX_SAMPLES = 10
MAX_NEW_TOKENS = 2048
# Shortest time between two streamed texts after the first (the first token is passed on at once).
STREAM_INTERVAL = 0.02


@dataclass(frozen=True)
class GenerationSettings:
    """What the Generation settings accordion holds; all of it goes into the export."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = default_max_new_tokens("think")
    prompt_style: str = "think"
    seed: int = 0
    samples: int = 1
    prompt: str = DEFAULT_PROMPT
    """Which prompt text (``train.protocol.PROMPTS``): by default the one the checkpoint was trained with."""

    def validated(self) -> GenerationSettings:
        """Check ranges; raises ``ValueError`` with a sentence fit for the UI."""
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"Prompt style must be one of {', '.join(PROMPT_STYLES)}.")
        prompt = get_prompt(self.prompt or DEFAULT_PROMPT).name
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= 2):
            raise ValueError("Temperature must be between 0 (always the most likely token) and 2.")
        if not (0 < self.top_p <= 1):
            raise ValueError("Top-p must be above 0 and at most 1.")
        if not 1 <= int(self.max_new_tokens) <= MAX_NEW_TOKENS:
            raise ValueError(f"Max new tokens must be between 1 and {MAX_NEW_TOKENS}.")
        if not 1 <= int(self.samples) <= MAX_SAMPLES:
            raise ValueError(f"The number of samples must be between 1 and {MAX_SAMPLES}.")
        return GenerationSettings(
            float(self.temperature),
            float(self.top_p),
            int(self.max_new_tokens),
            self.prompt_style,
            int(self.seed),
            int(self.samples),
            prompt,
        )

    @property
    def effective_temperature(self) -> float:
        """The temperature actually used: 0.7 instead of 0 when several samples are drawn."""
        if self.samples > 1 and self.temperature == 0:
            return SELF_CONSISTENCY_TEMPERATURE
        return self.temperature

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["effective_temperature"] = self.effective_temperature
        return data


ModelInput = str | list[dict]
"""One question's full instruction, or a whole conversation (``train.protocol.build_conversation``)."""


def build_inputs(loaded: LoadedModel, image: Image.Image | Sequence[Image.Image], prompt: ModelInput) -> Any:
    """Tokenised chat (image(s) first, then the prompt, or the conversation so far) and pixel values.

    Several pictures (slices of one study) go in the order given, one image placeholder each.
    """
    processor = loaded.processor
    images = list(image) if isinstance(image, (list, tuple)) else [image]
    messages = build_messages(prompt, images=len(images)) if isinstance(prompt, str) else prompt
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    return inputs.to(loaded.device)


class StopOnEvent(StoppingCriteria):
    """Ends ``generate`` at the next token once ``event`` is set (the Stop button)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class TokenStreamer(BaseStreamer):
    """Queue of each step's new token ids from ``generate``, one per sample (the prompt, sent first, is skipped)."""

    _END = object()
    RESTART = object()
    """Put when a failed fast attempt is started again on the ordinary path: what was streamed is void."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        """Set with the end marker, so a consumer gathering tokens for a while stops waiting at once."""
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def restart(self) -> None:
        self._prompt_seen = False
        self.queue.put(self.RESTART)

    def end(self) -> None:
        self.queue.put(self._END)
        self.ended.set()


@dataclass(frozen=True)
class Streamed:
    """Every sample's text so far; ``ended[i]``: sample ``i`` has finished (end of text or the token limit).

    ``ids`` (the last yield only): each sample's generated token ids, which evidence reads the answer
    position in; empty where the stream does not know them (a scripted test stream).
    """

    texts: tuple[str, ...]
    ended: tuple[bool, ...]
    ids: tuple[tuple[int, ...], ...] = ()


StreamFn = Callable[..., Iterator[Streamed]]
"""What :func:`medr1_app.answering.answer` streams from: :func:`stream_samples` (tests pass a scripted one)."""


class _SampleDecoder:
    """One sample's text, decoded piecewise from its new tokens, up to its end-of-text token."""

    def __init__(self, tokenizer: Any, end_ids: set[int]):
        self.tokenizer = tokenizer
        self.end_ids = end_ids
        self.ids: list[int] = []
        self.pending: list[int] = []
        self.text = ""
        self.ended = False

    def add(self, token: int) -> None:
        if self.ended:  # finished rows are padded until the longest sample ends
            return
        if token in self.end_ids:
            self.ended = True
            return
        self.pending.append(token)

    def flush(self, last: bool = False) -> bool:
        """Decode the waiting tokens; True if the text grew. Byte-level BPE decodes piecewise, but a
        character whose bytes are split across tokens decodes as U+FFFD until its last byte arrives."""
        if not self.pending:
            return False
        piece = self.tokenizer.decode(self.pending, skip_special_tokens=True)
        if piece.endswith("\ufffd") and not (last or self.ended):
            return False
        self.ids.extend(self.pending)
        self.pending = []
        self.text += piece
        return bool(piece)

    def exact(self) -> str:
        """The whole text decoded at once (a tokenizer may decode context-dependently)."""
        return self.tokenizer.decode(self.ids + self.pending, skip_special_tokens=True)


def _end_ids(loaded: LoadedModel) -> set[int]:
    configured = getattr(loaded.model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
    ids.add(loaded.processor.tokenizer.eos_token_id)
    return {int(i) for i in ids if i is not None}


def stream_samples(
    loaded: LoadedModel,
    image: Image.Image | Sequence[Image.Image],
    prompt: ModelInput,
    settings: GenerationSettings,
    stop: threading.Event | None = None,
    **generate_overrides: Any,
) -> Iterator[Streamed]:
    """Yield all ``settings.samples`` texts so far, as tokens arrive, until they end, the limit or ``stop``.

    The samples are drawn together, in one ``generate`` call (``train.generation.generate``: the prompt
    is computed once, then each step samples a token for every sample), seeded once with
    ``settings.seed``: the same seed and number of samples draw the same samples again. ``image`` must
    already be at the model's input size (``train.imaging.model_picture``). ``generate_overrides`` is for
    benchmarks (e.g. ``min_new_tokens``).
    """
    stop = stop or threading.Event()
    inputs = build_inputs(loaded, image, prompt)
    count = int(settings.samples)
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "stopping_criteria": StoppingCriteriaList([StopOnEvent(stop)]),
        **sampling_kwargs(settings.effective_temperature, settings.top_p),
    }
    kwargs.update(generate_overrides)
    streamer = TokenStreamer()
    failure: list[BaseException] = []

    threads = decode_threads(loaded.model, loaded.device)

    def run() -> None:
        try:
            if threads is not None:
                torch.set_num_threads(threads)  # this thread only (see train.generation.decode_threads)
            torch.manual_seed(settings.seed)
            with torch.inference_mode():
                generate(loaded.model, inputs, samples=count, fast=loaded.fast, streamer=streamer, **kwargs)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, name="medr1-generate", daemon=True)
    worker.start()
    tokenizer, end_ids = loaded.processor.tokenizer, _end_ids(loaded)
    rows = [_SampleDecoder(tokenizer, end_ids) for _ in range(count)]
    finished = False
    yielded_at = 0.0
    try:
        while not finished:
            item = streamer.queue.get()
            # After the first text, gather tokens for at least STREAM_INTERVAL: fewer wake-ups, decodes and
            # parses, so the consumer takes less CPU and GIL time from the generating thread. The wait ends
            # early when generation does, so the last tokens are not held back.
            wait = STREAM_INTERVAL - (time.perf_counter() - yielded_at)
            if yielded_at and wait > 0 and item is not TokenStreamer._END:
                streamer.ended.wait(wait)
            while True:  # take every step already waiting: one decode and one yield for all of them
                if item is TokenStreamer._END:
                    finished = True
                    break
                if item is TokenStreamer.RESTART:
                    rows = [_SampleDecoder(tokenizer, end_ids) for _ in range(count)]
                else:
                    for row, token in zip(rows, item, strict=True):
                        row.add(token)
                try:
                    item = streamer.queue.get_nowait()
                except queue.Empty:
                    break
            ended_before = [row.ended for row in rows]
            grew = [row.flush(last=finished) for row in rows]
            if not finished and (any(grew) or ended_before != [row.ended for row in rows]):
                yielded_at = time.perf_counter()
                yield Streamed(tuple(row.text for row in rows), tuple(row.ended for row in rows))
    finally:
        if not finished:  # the consumer was closed early (client gone, event cancelled): stop generate too
            stop.set()
        worker.join()
    if failure:
        raise failure[0]
    # Without a Stop, generate ended because every sample did (its end token, or the token limit).
    ended = tuple(row.ended or not stop.is_set() for row in rows)
    yield Streamed(tuple(row.exact() for row in rows), ended, tuple(tuple(row.ids + row.pending) for row in rows))


def stream_text(
    loaded: LoadedModel,
    image: Image.Image | Sequence[Image.Image],
    prompt: ModelInput,
    settings: GenerationSettings,
    stop: threading.Event | None = None,
    **generate_overrides: Any,
) -> Iterator[str]:
    """One response's text so far, once per new piece (:func:`stream_samples` with one sample)."""
    shown = None
    for streamed in stream_samples(loaded, image, prompt, replace(settings, samples=1), stop, **generate_overrides):
        if streamed.texts[0] != shown:
            shown = streamed.texts[0]
            yield shown
