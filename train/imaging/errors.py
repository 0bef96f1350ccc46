"""The imaging exception family: everything opening, rendering or fitting a picture may raise.

One base, :class:`ImagingError` (a ``ValueError``), for standard images and DICOM alike, so training,
evaluation and the app each need a single ``except ImagingError`` and the fuzz tests can assert that
nothing else escapes. Subclasses let a caller react to the kind of problem.

Messages are written for a clinician: the file's base name, what is wrong in plain words, what to do.
They never contain values read from the dataset other than technical ones (sizes, codes, transfer
syntax names), so patient data cannot leak through an error shown on screen or written to a log.
"""

from __future__ import annotations

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


class ImagingError(ValueError):
    """A picture that cannot be used, with a message that names the file, the problem and a fix."""


class ImageNotFound(ImagingError):
    """The path does not point to a readable file."""


class NotAnImage(ImagingError):
    """The bytes are neither DICOM nor a supported standard image format."""


class CorruptFile(ImagingError):
    """The format is recognised but the file is damaged, truncated or internally inconsistent."""


class TooLarge(ImagingError):
    """The picture is too big (pixel count) or too thin (aspect ratio) to be used safely."""


class FrameOutOfRange(ImagingError):
    """A frame index outside the file's frames."""


class NoPixelData(ImagingError):
    """A valid DICOM object that holds no image: a report, structure set, waveform, DICOMDIR..."""


class UnsupportedCodec(ImagingError):
    """The pixel data uses a compression no installed decoder handles (the message names the package)."""


class UnsupportedDicom(ImagingError):
    """An image whose layout cannot be shown (an unknown colour model or sample format)."""


class InvalidWindow(ImagingError):
    """A window argument that is neither a known preset name nor a (centre, width) with width > 0."""
