"""Streaming generation for one question: the model's exact input, token streaming and a real Stop.

Why these pieces:

* The picture arrives already at the model's input size (``train.imaging.model_picture``), so the
  processor does not resize again and the viewer's PNG *is* the model's input, pixel for pixel.
* :class:`TokenStreamer` hands each new token to the consumer as it is sampled (transformers'
  ``TextIteratorStreamer`` holds text back until a word ends, which delays the first visible token).
  The consumer decodes only the new tokens, and after the first one gathers tokens for 20 ms at a time,
  so its work stays small and constant as the answer grows and does not hold the generating thread back.
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
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from train.generation import default_max_new_tokens, sampling_kwargs
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
    """Queue of new token ids from ``generate`` (the prompt, sent first, is skipped)."""

    _END = object()

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(self._END)


StreamFn = Callable[..., Iterator[str]]


def stream_text(
    loaded: LoadedModel,
    image: Image.Image | Sequence[Image.Image],
    prompt: ModelInput,
    settings: GenerationSettings,
    stop: threading.Event | None = None,
    sample_index: int = 0,
    **generate_overrides: Any,
) -> Iterator[str]:
    """Yield the response text so far, once per new token, until EOS, the token limit or ``stop``.

    ``image`` must already be at the model's input size (``train.imaging.model_picture``). Sampling is seeded with
    ``settings.seed + sample_index`` so each self-consistency sample can be reproduced on its own.
    ``generate_overrides`` is for benchmarks (e.g. ``min_new_tokens``).
    """
    stop = stop or threading.Event()
    inputs = build_inputs(loaded, image, prompt)
    temperature = settings.effective_temperature
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "stopping_criteria": StoppingCriteriaList([StopOnEvent(stop)]),
        **sampling_kwargs(temperature, settings.top_p),
    }
    kwargs.update(generate_overrides)
    streamer = TokenStreamer()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            torch.manual_seed(settings.seed + sample_index)
            with torch.inference_mode():
                loaded.model.generate(**inputs, streamer=streamer, **kwargs)
        except BaseException as exc:  # re-raised in the consumer
            failure.append(exc)
            streamer.end()

    worker = threading.Thread(target=run, name="medr1-generate", daemon=True)
    worker.start()
    tokenizer = loaded.processor.tokenizer
    ids: list[int] = []
    pending: list[int] = []
    text = ""
    ended = False
    yielded_at = 0.0
    try:
        while not ended:
            item = streamer.queue.get()
            # After the first text, gather tokens for at least STREAM_INTERVAL: fewer wake-ups, decodes and
            # parses, so the consumer takes less CPU and GIL time from the generating thread.
            wait = STREAM_INTERVAL - (time.perf_counter() - yielded_at)
            if text and wait > 0 and item is not TokenStreamer._END:
                time.sleep(wait)
            while True:  # take every token already waiting: one decode and one yield for all of them
                if item is TokenStreamer._END:
                    ended = True
                    break
                pending.extend(item)
                try:
                    item = streamer.queue.get_nowait()
                except queue.Empty:
                    break
            if not pending:
                continue
            # Decode only the new tokens (byte-level BPE decodes piecewise); a character whose bytes are
            # split across tokens decodes as U+FFFD until its last byte arrives, so those tokens wait.
            piece = tokenizer.decode(pending, skip_special_tokens=True)
            if piece.endswith("\ufffd") and not ended:
                continue
            ids.extend(pending)
            pending = []
            if piece:
                text += piece
                yielded_at = time.perf_counter()
                yield text
    finally:
        if not ended:  # the consumer was closed early (client gone, event cancelled): stop generate too
            stop.set()
        worker.join()
    if failure:
        raise failure[0]
    # The pieces must add up to the whole: if a tokenizer decodes context-dependently, send the exact text.
    final = tokenizer.decode(ids + pending, skip_special_tokens=True)
    if final != text:
        yield final
