"""The imaging exception family: everything :func:`open_study` and ``Study.render`` may raise.

``ImagingError`` *is* ``train.images.ImageError`` (an alias, not a subclass): standard-image failures
raised inside ``train`` and DICOM failures raised here share one base, so the app needs a single
``except ImagingError`` and the fuzz tests can assert that nothing else escapes. ``train`` cannot import
this package (the dependency runs app -> train), which is why the base lives there.

Messages are written for a clinician: the file's base name, what is wrong in plain words, what to do.
They never contain values read from the dataset other than technical ones (sizes, codes, transfer
syntax names), so patient data cannot leak through an error shown on screen or written to a log.
"""

from __future__ import annotations

from train.images import CorruptFile, FrameOutOfRange, ImageError, ImageNotFound, NotAnImage, TooLarge

ImagingError = ImageError

__all__ = [
    "CorruptFile",
    "FrameOutOfRange",
    "ImageNotFound",
    "ImagingError",
    "InvalidWindow",
    "NoPixelData",
    "NotAnImage",
    "TooLarge",
    "UnsupportedCodec",
    "UnsupportedDicom",
]


class NoPixelData(ImagingError):
    """A valid DICOM object that holds no image: a report, structure set, waveform, DICOMDIR..."""


class UnsupportedCodec(ImagingError):
    """The pixel data uses a compression no installed decoder handles (the message names the package)."""


class UnsupportedDicom(ImagingError):
    """An image whose layout cannot be shown (an unknown colour model or sample format)."""


class InvalidWindow(ImagingError):
    """A window argument that is neither a known preset name nor a (centre, width) with width > 0."""
