"""One question, answered once or N times: parsed samples, the vote, and what a Stop leaves behind.

This is the UI-free core of the Ask tab, so the same code serves the browser, the API and the load
test. Every response goes through ``train.protocol.parse_response`` (the parser training rewards and
evaluation use), so a clinician sees exactly what an evaluation would have scored: a malformed output
stays malformed, with the parser's own list of issues.

Self-consistency: N samples drawn together in one ``generate`` call from one seed (each streamed to its
own text; the same seed and N draw the same samples again), then counted. The agreement ("4 of 5 chose
C") is how often the model gives the same answer when asked the same thing again; it is not a
probability of being right.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from PIL import Image

from train.protocol import LETTERS, ParsedResponse, parse_response

from .generation import GenerationSettings, ModelInput, StreamFn, stream_samples
from .models import LoadedModel


@dataclass
class SampledAnswer:
    """One model response and what the parser made of it."""

    index: int
    seed: int
    """The seed the samples of this answer were drawn from together (one seed for all N)."""
    text: str = ""
    parsed: ParsedResponse | None = None
    finished: bool = False
    stopped: bool = False
    seconds: float = 0.0
    free_text: bool = False
    """A question without options: the answer is the block's text (any letter the parser reads is ignored)."""
    token_ids: tuple[int, ...] = ()
    """The generated token ids (empty where the stream did not give them): evidence reads the answer in them."""

    @property
    def choice(self) -> str | None:
        """What this sample votes for: the letter, or (free-text questions) the normalised answer text."""
        parsed = self.parsed
        if parsed is None:
            return None
        if self.free_text:
            if parsed.answer and parsed.complete:
                return " ".join(parsed.answer.split()).casefold()
            return None
        return parsed.letter


@dataclass(frozen=True)
class Vote:
    """How the finished samples split."""

    counts: tuple[tuple[str, int], ...]
    total: int
    no_answer: int
    winner: str | None
    winner_count: int

    def summary(self, options: Sequence[str] | None = None) -> str:
        """A sentence such as ``4 of 5 samples chose C (CT)``."""
        if self.total == 0:
            return "No finished samples."
        if self.winner is None:
            if not self.counts:
                return f"None of the {self.total} samples gave a readable answer."
            parts = [f"{n} chose {_label(c, options)}" for c, n in self.counts]
            if self.no_answer:
                parts.append(f"{self.no_answer} gave no readable answer")
            return f"No majority across {self.total} samples: " + ", ".join(parts) + "."
        noun = "sample" if self.total == 1 else "samples"
        return f"{self.winner_count} of {self.total} {noun} chose {_label(self.winner, options)}."


def _label(choice: str, options: Sequence[str] | None) -> str:
    if options and len(choice) == 1 and choice in LETTERS[: len(options)]:
        return f"{choice} ({options[LETTERS.index(choice)]})"
    return choice if len(choice) == 1 else f"“{choice}”"


def tally(samples: Sequence[SampledAnswer]) -> Vote:
    """Count the finished samples' choices; the winner needs strictly more votes than any other."""
    finished = [s for s in samples if s.finished]
    counter = Counter(s.choice for s in finished if s.choice is not None)
    ranked = tuple(sorted(counter.items(), key=lambda item: (-item[1], item[0])))
    no_answer = sum(1 for s in finished if s.choice is None)
    winner, count = ranked[0] if ranked else (None, 0)
    if len(ranked) > 1 and ranked[1][1] == count:
        winner = None
    return Vote(ranked, len(finished), no_answer, winner, count if winner else 0)


@dataclass
class AnswerProgress:
    """Everything the answer panel shows at one moment of the stream."""

    samples: list[SampledAnswer] = field(default_factory=list)
    current: int = 0
    finished: bool = False
    stopped: bool = False
    vote: Vote | None = None

    @property
    def sample(self) -> SampledAnswer | None:
        return self.samples[self.current] if self.samples else None


def answer(
    loaded: LoadedModel,
    image: Image.Image,
    prompt: ModelInput,
    options: Sequence[str] | None,
    settings: GenerationSettings,
    stop: threading.Event | None = None,
    stream_fn: StreamFn = stream_samples,
) -> Iterator[AnswerProgress]:
    """Stream ``settings.samples`` responses to ``prompt``; yields the progress after every token.

    ``prompt`` is one question's instruction, or the whole conversation for a follow-up question.

    ``stream_fn`` is :func:`medr1_app.generation.stream_samples` in the app; tests may pass a scripted
    function with the same signature (documented test seam, never used by the app itself). The samples
    stream together; ``progress.current`` (the one the reasoning panel shows) is the first.
    """
    stop = stop or threading.Event()
    options = list(options) if options else None
    samples = [SampledAnswer(index=i, seed=settings.seed, free_text=not options) for i in range(settings.samples)]
    progress = AnswerProgress(samples=samples)
    start = time.perf_counter()
    ended: tuple[bool, ...] = (False,) * len(samples)
    for streamed in stream_fn(loaded, image, prompt, settings, stop):
        now = time.perf_counter() - start
        ended = streamed.ended
        for sample, ids in zip(samples, streamed.ids, strict=False):
            sample.token_ids = ids
        for sample, text, done in zip(samples, streamed.texts, ended, strict=True):
            if sample.finished:
                continue
            if text != sample.text or sample.parsed is None:
                sample.text = text
                sample.parsed = parse_response(text, options, settings.prompt_style, settings.prompt)
            sample.seconds = now
            sample.finished = done
        yield progress
    progress.stopped = stop.is_set() and not all(ended)
    for sample, done in zip(samples, ended, strict=True):
        sample.parsed = parse_response(sample.text, options, settings.prompt_style, settings.prompt)
        sample.finished = done
        sample.stopped = not done
    progress.finished = True
    progress.vote = tally(progress.samples)
    yield progress
