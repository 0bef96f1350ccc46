"""Medical image ingestion: DICOM and standard images, turned into what the model sees and the viewer shows.

Clinicians bring DICOM straight from PACS exports and PNG/JPEG screenshots; both go through here.
Standard images are decoded by ``train.images`` (the same code path as training and evaluation);
DICOM is read with pydicom 3 one frame at a time.

Public API
----------
``open_study(source, name=None) -> Study``
    ``source``: a path (DICOM recognised by content, extension or not), bytes, or a PIL image.
    Validates, decodes frame 0, raises an :class:`ImagingError` subclass on anything unusable.

``Study``
    - ``kind``: ``"dicom"`` or ``"image"``; ``name``: the file's base name (for messages).
    - ``num_frames``; ``size``: (width, height); ``is_color``.
    - ``metadata``: PHI-free technical summary (allow-list: modality, body part, photometric
      interpretation, rows/columns, frames, spacing, window, rescale, transfer syntax...).
    - ``warnings``: sentences to show, e.g. burned-in annotation, lossy compression.
    - ``default_window``: (centre, width) used by default for frame 0, or None (colour, VOI LUT table,
      percentile window, standard image as training sees it).
    - ``presets``: name -> :class:`Window` ("file" windows, CT presets for CT); ``window_choices``
      adds ``"auto"`` (0.5-99.5 percentile) and ``"full"`` (min-max).
    - ``render(frame=0, window=None) -> PIL.Image`` (8-bit RGB): decodes only ``frame``; ``window`` is
      None, a name from ``window_choices`` or a (centre, width) pair in modality units (HU for CT).
    - ``resolve_window(frame=0, window=None) -> Window | None``: the window ``render`` would use.
    - ``drop_cache()``: forget the cached decoded frame.

``to_model_image(rgb, max_pixels=401408, min_pixels=3136) -> PIL.Image``
    Resize for Qwen2-VL keeping the aspect ratio (``train.images.prepare_for_model``).
``to_png_bytes(rgb) -> bytes``
    Lossless PNG without metadata, for display and export.
``sniff(head) -> "dicom" | "dicom-raw" | "image" | None``
    Classify the first 132 bytes of a file (for upload filters).

Errors (all subclasses of ``ImagingError``, which is ``train.images.ImageError``, a ``ValueError``)
    ``ImageNotFound``, ``NotAnImage``, ``CorruptFile``, ``TooLarge``, ``FrameOutOfRange``,
    ``NoPixelData``, ``UnsupportedCodec``, ``UnsupportedDicom``, ``InvalidWindow``.

Command line: ``python -m medr1_app.imaging info FILE`` prints the technical summary;
``python -m medr1_app.imaging png FILE OUT.png [--frame N] [--window NAME|C,W]`` exports a frame.
"""

from __future__ import annotations

from .base import Frame, Study, WindowArg
from .codecs import codec_table, describe, require_decoder
from .dicom import BURNED_IN_WARNING, DicomStudy
from .errors import (
    CorruptFile,
    FrameOutOfRange,
    ImageNotFound,
    ImagingError,
    InvalidWindow,
    NoPixelData,
    NotAnImage,
    TooLarge,
    UnsupportedCodec,
    UnsupportedDicom,
)
from .picture import ImageStudy
from .study import open_study, sniff, to_model_image, to_png_bytes
from .window import AUTO, CT_PRESETS, FULL, Window, apply_window, percentile_window

__all__ = [
    "AUTO",
    "BURNED_IN_WARNING",
    "CT_PRESETS",
    "FULL",
    "CorruptFile",
    "DicomStudy",
    "Frame",
    "FrameOutOfRange",
    "ImageNotFound",
    "ImageStudy",
    "ImagingError",
    "InvalidWindow",
    "NoPixelData",
    "NotAnImage",
    "Study",
    "TooLarge",
    "UnsupportedCodec",
    "UnsupportedDicom",
    "Window",
    "WindowArg",
    "apply_window",
    "codec_table",
    "describe",
    "open_study",
    "percentile_window",
    "require_decoder",
    "sniff",
    "to_model_image",
    "to_png_bytes",
]
