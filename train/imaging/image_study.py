"""Standard images (PNG, JPEG, TIFF, BMP, WebP, GIF) as a :class:`Study`.

Decoding is :func:`~train.imaging.standard.decode_image` and the default picture is
:func:`~train.imaging.standard.to_rgb` of it: an 8-bit RGB picture, 16-bit greyscale stretched min to max.
Windowing is offered on top: greyscale pictures (including 16-bit PNG/TIFF exports) are windowed on
their stored values, colour pictures per channel (a contrast stretch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .standard import decode_image, source_name, to_rgb
from .study import Frame, Study

_GREY_MODES = ("1", "L", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageStudy(Study):
    """A standard image; frames are the pages of a TIFF or the frames of an animated GIF/WebP."""

    def __init__(self, source: Path | bytes | Image.Image, name: str | None = None) -> None:
        self._source = source
        name = name or source_name(source)
        first = decode_image(source, name=name)
        self._first = first.image
        image = first.image
        grey = image.mode in _GREY_MODES
        super().__init__(
            kind="image",
            name=name,
            num_frames=first.frames,
            size=image.size,
            metadata={
                "format": first.format,
                "mode": image.mode,
                "width": image.size[0],
                "height": image.size[1],
                "frames": first.frames,
            },
            is_color=not grey,
        )

    def _decode(self, frame: int) -> Frame:
        image = self._first if frame == 0 else decode_image(self._source, frame, name=self.name).image
        shown = np.asarray(to_rgb(image))
        # Greyscale windows act on the stored values (16-bit kept), colour ones per 8-bit channel.
        values = np.asarray(image, dtype=np.float32) if image.mode in _GREY_MODES else shown
        return Frame(values=values, default_pixels=shown)
