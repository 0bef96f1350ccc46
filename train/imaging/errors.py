"""The imaging exception family: everything opening, rendering or fitting a picture may raise.

One base, :class:`ImagingError` (a ``ValueError``), for standard images and DICOM alike, so training,
evaluation and the app each need a single ``except ImagingError`` and the fuzz tests can assert that
nothing else escapes. Subclasses let a caller react to the kind of problem.

Messages are written for a clinician: the file's base name, what is wrong in plain words, what to do.
They never contain values read from the dataset other than technical ones (sizes, codes, transfer
syntax names), so patient data cannot leak through an error shown on screen or written to a log.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CorruptFile",
    "FrameOutOfRange",
    "ImageNotFound",
    "ImagingError",
    "InvalidWindow",
    "MixedStudies",
    "NoPixelData",
    "NotAnImage",
    "SeriesNotFound",
    "SeveralSeries",
    "TooLarge",
    "UnsafeArchive",
    "UnsupportedCodec",
    "UnsupportedDicom",
    "UnsupportedVolume",
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


class UnsafeArchive(ImagingError):
    """A ZIP refused by :mod:`train.archives` (traversal, links, bombs, lying sizes) or not readable as one."""


class MixedStudies(ImagingError):
    """Files of more than one patient or study in one upload: refused, so no question mixes two people."""


class SeveralSeries(ImagingError):
    """A ZIP, folder or 4-D volume holding several series: say which. ``listing`` offers them, scanned once."""

    def __init__(self, message: str, listing: Any) -> None:
        super().__init__(message)
        self.listing = listing


class SeriesNotFound(ImagingError):
    """A series index or UID (or a 4-D volume's index) that the upload does not hold."""


class UnsupportedVolume(ImagingError):
    """A NIfTI volume whose layout cannot be shown (colour or complex voxels, more than four dimensions)."""
