"""Several slices as one multi-image prompt: which slices, their pictures, and what they cost in tokens.

Qwen2-VL takes several pictures in one prompt, and a CT study is a stack of them: Google's MedGemma CT
notebook samples up to 85 slices evenly, the MedGemma DICOM demo samples a series' slices. Med-R1 was
trained and evaluated on single 2-D images, so this is outside what it learned; :data:`MULTI_SLICE_NOTE`
says so in words an app can show next to the option.

Every picture is :func:`~train.imaging.model_picture` of its slice (same window for all), so each is
exactly what the processor receives; its cost is one visual token per 28 x 28 px of it, plus the two
markers around it (``<|vision_start|>``, ``<|vision_end|>``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from .errors import FrameOutOfRange
from .model_input import PixelBounds, model_picture
from .study import Study, WindowArg

MULTI_SLICE_NOTE = (
    "Med-R1 was trained and evaluated on single 2-D images. Asking about several slices at once is outside "
    "what it learned: its answer may rest on one slice, and it has not been validated this way."
)
VISION_MARKERS = 2
"""Tokens around each picture's visual tokens: ``<|vision_start|>`` and ``<|vision_end|>``."""


def image_tokens(size: tuple[int, int], bounds: PixelBounds | None = None) -> int:
    """Visual tokens of a picture already at the model's input size: one per patch x patch px (28 x 28)."""
    patch = (bounds or PixelBounds()).patch
    width, height = size
    return (width // patch) * (height // patch)


def evenly_spaced(num_frames: int, count: int) -> list[int]:
    """``count`` slice indices spread over ``num_frames``: the middle of each of ``count`` equal runs.

    Centres rather than the two ends, since a series' first and last slices are often its emptiest;
    every slice when ``count >= num_frames``. ``evenly_spaced(120, 4) == [15, 45, 75, 105]``.
    """
    if num_frames < 1 or count < 1:
        raise FrameOutOfRange(f"cannot choose {count} slice(s) among {num_frames}: both must be at least 1.")
    if count >= num_frames:
        return list(range(num_frames))
    return [int((2 * i + 1) * num_frames // (2 * count)) for i in range(count)]


@dataclass(frozen=True)
class SlicePictures:
    """The pictures of a multi-slice prompt, in slice order, with their indices and their token cost."""

    indices: tuple[int, ...]
    pictures: tuple[Image.Image, ...]
    tokens_per_picture: tuple[int, ...]
    bounds: PixelBounds

    @property
    def image_tokens(self) -> int:
        """Visual tokens in all (``<|image_pad|>`` tokens)."""
        return sum(self.tokens_per_picture)

    @property
    def prompt_tokens(self) -> int:
        """What the pictures add to the prompt: visual tokens plus their start and end markers."""
        return self.image_tokens + VISION_MARKERS * len(self.pictures)


def budget_bounds(bounds: PixelBounds, count: int, token_budget: int) -> PixelBounds:
    """``bounds`` with ``max_pixels`` lowered so ``count`` pictures stay within ``token_budget`` visual tokens."""
    per_picture = max(1, token_budget // max(1, count))
    max_pixels = max(bounds.patch * bounds.patch, min(bounds.max_pixels, per_picture * bounds.patch * bounds.patch))
    return replace(bounds, max_pixels=max_pixels, min_pixels=min(bounds.min_pixels, max_pixels))


def slice_pictures(
    study: Study,
    count: int,
    window: WindowArg = None,
    bounds: PixelBounds | None = None,
    token_budget: int | None = None,
) -> SlicePictures:
    """``count`` evenly spaced slices of ``study`` as the processor receives them, and what they cost.

    ``token_budget`` (optional) caps the visual tokens of all pictures together by making each smaller
    (:func:`budget_bounds`): 8 slices of a 512 x 512 CT cost 2,592 visual tokens at Med-R1's bounds, 512
    with ``token_budget=512``. Slices are decoded one at a time.
    """
    bounds = bounds or PixelBounds()
    if token_budget is not None:
        bounds = budget_bounds(bounds, count, token_budget)
    indices = evenly_spaced(study.num_frames, count)
    pictures = tuple(model_picture(study, i, window, bounds) for i in indices)
    return SlicePictures(tuple(indices), pictures, tuple(image_tokens(p.size, bounds) for p in pictures), bounds)


__all__ = [
    "MULTI_SLICE_NOTE",
    "VISION_MARKERS",
    "SlicePictures",
    "budget_bounds",
    "evenly_spaced",
    "image_tokens",
    "slice_pictures",
]
