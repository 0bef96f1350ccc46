"""The picture the model receives: every training, evaluation and app picture goes through here.

Qwen2-VL cuts a picture into 14 px patches and merges them 2 x 2, so its processor resizes every input
to sides that are multiples of 28 px with an area inside the model's pixel bounds (``smart_resize``).
Doing that resize here, once, means the processor has nothing left to do: the pixels the Ask tab shows
are the pixels training and evaluation hand the model, and a dataset is decoded at model size once.

The processor's rule is not idempotent for thin pictures: when one side is held at one patch it can
return an area above ``max_pixels``, and a second pass shrinks again (2999 x 15 at 12,544 px: 812 x 28,
then 588 x 28...). :func:`model_input_size` therefore returns a size the rule leaves unchanged, inside
the bounds, so the processor's single pass keeps it (``tests/test_model_input.py`` checks this against
the real processor over random sizes and bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .errors import TooLarge
from .files import Source, open_cached, open_study
from .standard import source_name, to_rgb
from .study import Study, WindowArg

PATCH = 28
"""Pixels per side of one visual token: 14 px patches merged 2 x 2 (Qwen2-VL and Qwen2.5-VL)."""
MEDR1_MAX_PIXELS = 401_408
"""Med-R1's upper bound on a picture's area (512 visual tokens of 28 x 28 px)."""
MEDR1_MIN_PIXELS = 4 * PATCH * PATCH
"""The lower bound Med-R1 and the processor use (3,136 px: 4 visual tokens)."""
MAX_ASPECT_RATIO = 200
"""Qwen2-VL's resizer refuses pictures whose sides differ by more than this factor."""


@dataclass(frozen=True)
class PixelBounds:
    """How big the model's input may be: area bounds, and Med-R1's optional square pre-resize."""

    min_pixels: int = MEDR1_MIN_PIXELS
    max_pixels: int = MEDR1_MAX_PIXELS
    image_size: int | None = None
    """Resize to a square of this side first, as Med-R1 did (384); the model size follows from it."""
    patch: int = PATCH

    def __post_init__(self) -> None:
        if self.patch < 1 or self.max_pixels < self.patch * self.patch:
            raise ValueError(f"max_pixels must be at least one {self.patch} x {self.patch} patch.")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"min_pixels must be between 1 and max_pixels ({self.max_pixels}).")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError("image_size must be a positive number of pixels.")


def qwen_smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's own resize rule (transformers' ``smart_resize``), as (height, width)."""
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def check_aspect_ratio(width: int, height: int, name: str) -> None:
    """Refuse the shapes the model cannot take, in our words and with the picture's size."""
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise TooLarge(
            f"{name}: the picture is {width} x {height} pixels, more than {MAX_ASPECT_RATIO}:1 between its "
            "sides, which the model cannot take. Crop it to the region of interest."
        )


def model_input_size(width: int, height: int, bounds: PixelBounds | None = None) -> tuple[int, int]:
    """(width, height) the model receives for a ``width`` x ``height`` picture: a fixed point of Qwen's rule.

    Sides are multiples of ``bounds.patch`` at most 200:1 apart; the area lies within the bounds unless
    the picture is so thin that one patch on its short side already exceeds ``max_pixels``.
    """
    bounds = bounds or PixelBounds()
    factor = bounds.patch
    if bounds.image_size:
        width = height = bounds.image_size
    h, w = qwen_smart_resize(height, width, factor, bounds.min_pixels, bounds.max_pixels)
    # Thin pictures: shrink the long side a patch at a time until the area fits and the sides stay within
    # the ratio the processor accepts (rounding can turn 199.97:1 into 201:1).
    while (h * w > bounds.max_pixels or max(h, w) > MAX_ASPECT_RATIO * min(h, w)) and max(h, w) > factor:
        if h >= w:
            h -= factor
        else:
            w -= factor
    return w, h


def fit_to_model(picture: Image.Image, bounds: PixelBounds | None = None, name: str | None = None) -> Image.Image:
    """An RGB copy of ``picture`` at :func:`model_input_size` (the square pre-resize first, if asked)."""
    bounds = bounds or PixelBounds()
    check_aspect_ratio(*picture.size, name or source_name(picture))
    rgb = to_rgb(picture)
    if bounds.image_size:
        rgb = rgb.resize((bounds.image_size, bounds.image_size), Image.Resampling.BICUBIC)
    size = model_input_size(*rgb.size, bounds=bounds)
    return rgb if size == rgb.size else rgb.resize(size, Image.Resampling.BICUBIC)


def model_picture(
    source: Source | Study,
    frame: int = 0,
    window: WindowArg = None,
    bounds: PixelBounds | None = None,
    name: str | None = None,
    series: int | str | None = None,
) -> Image.Image:
    """The exact picture the processor receives for a file, a frame and a window: the one entry point.

    ``source`` is a path (DICOM recognised by content, extension or not; a ZIP or folder of a DICOM series;
    a NIfTI volume), the file's bytes, a PIL image, or an already opened :class:`Study` (the app keeps one
    per session). For a series or volume ``frame`` is the slice and ``series`` chooses the series (or a
    4-D volume's volume); a path to one is kept open between calls (:func:`~train.imaging.files.open_cached`).
    The frame is rendered with ``window`` (None: the file's or the modality's default; a preset name such
    as ``"lung"``; or ``(centre, width)`` in modality units) and resized to :func:`model_input_size`.
    Raises an :class:`~train.imaging.errors.ImagingError` for anything that cannot be used.
    """
    if isinstance(source, Study):
        study = source
    elif isinstance(source, (str, Path)) and name is None:
        study = open_cached(source, series=series)
    else:
        study = open_study(source, name=name, series=series)
    return fit_to_model(study.render(frame, window), bounds, name=study.name)
