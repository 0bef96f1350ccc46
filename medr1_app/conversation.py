"""A conversation about one picture: the first question in Med-R1's format, then follow-ups.

UI-free, like :mod:`medr1_app.answering`: the Ask tab, the ``/predict`` endpoint and the tests share it.
A follow-up is asked with everything before it (``train.protocol.build_conversation``): the picture once,
each earlier question's instruction and the model's own earlier reply, word for word. What carries forward
from a turn answered N times (self-consistency) is the reply of the first sample that chose the majority
answer, so the model is not shown an answer the vote rejected.

A conversation belongs to one picture and one model: a new image, frame, window or model starts a new one
(the Ask tab's single screen state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from train.evidence import Evidence
from train.protocol import build_conversation

from .answering import AnswerProgress, SampledAnswer
from .generation import GenerationSettings


@dataclass
class Turn:
    """One question and what the model answered to it."""

    question: str
    options: tuple[str, ...]
    prompt: str
    """This question's full instruction (``train.protocol.build_prompt``), as the model read it."""
    settings: GenerationSettings
    progress: AnswerProgress | None = None
    evidence: Evidence | None = None
    """The reply's evidence (``train.evidence``), once computed after the answer."""

    @property
    def reply_sample(self) -> SampledAnswer | None:
        """The sample later turns continue from: the majority's first sample, else the first sample."""
        if self.progress is None or not self.progress.samples:
            return None
        vote = self.progress.vote
        if vote is not None and vote.winner is not None:
            for sample in self.progress.samples:
                if sample.finished and sample.choice == vote.winner:
                    return sample
        return self.progress.samples[0]

    @property
    def reply(self) -> str:
        """The reply that later turns see (:attr:`reply_sample`'s text)."""
        sample = self.reply_sample
        return sample.text if sample is not None else ""


@dataclass
class Conversation:
    """The turns about one model-input picture, in order."""

    picture: Image.Image
    view: dict[str, Any]
    """How the picture was made (``viewer.view_record``): kind, frame, window, sizes."""
    image_summary: dict[str, Any]
    model_key: str
    turns: list[Turn] = field(default_factory=list)
    slices: tuple[Image.Image, ...] = ()
    """Several slices asked about together (evenly spaced through a study); empty for one picture."""

    @property
    def pictures(self) -> Image.Image | list[Image.Image]:
        """What the processor gets: the picture, or the slices in order."""
        return list(self.slices) if self.slices else self.picture

    def model_input(self, prompt: str) -> str | list[dict]:
        """What the model reads for ``prompt``: the prompt alone first, then the whole conversation."""
        if not self.turns:
            return prompt
        prompts, replies = [t.prompt for t in self.turns] + [prompt], [t.reply for t in self.turns]
        return build_conversation(prompts, replies, images=len(self.slices) or 1)

    @property
    def last(self) -> Turn | None:
        return self.turns[-1] if self.turns else None
