"""Medical pictures into model inputs: DICOM and standard images, read one way for training, evaluation and the app.

Clinicians bring DICOM straight from PACS exports and PNG/JPEG screenshots; researchers' datasets name
either. All of them go through :func:`model_picture`, so the picture a GRPO step sees for a record is,
pixel for pixel, the picture the Ask tab shows for the same file, frame and window.

Public API
----------
``model_picture(source, frame=0, window=None, bounds=PixelBounds()) -> PIL.Image``
    Open, render the frame with the window, resize to the model's input size (sides multiples of 28,
    area within the bounds): exactly what the processor receives, so it does not resize again.
``open_study(source, name=None) -> Study``
    ``source``: a path (DICOM recognised by content, extension or not), bytes, or a PIL image.
    Validates, decodes frame 0, raises an :class:`ImagingError` subclass on anything unusable.
``Study``
    ``kind`` ("dicom" or "image"), ``name`` (the file's base name, for messages), ``num_frames``,
    ``size``, ``is_color``, ``metadata`` (PHI-free allow-list), ``warnings``, ``default_window``,
    ``presets``/``window_choices``; ``render(frame, window)`` (8-bit RGB, full resolution) and
    ``resolve_window(frame, window)``.
``PixelBounds``, ``model_input_size``, ``fit_to_model``
    The model-size rule on its own (Med-R1's bounds are the defaults: 3,136 to 401,408 px).
``to_png_bytes(rgb)``, ``sniff(head)``
    Lossless PNG without metadata; classify a file's first 132 bytes.

Errors (all subclasses of ``ImagingError``, a ``ValueError``): ``ImageNotFound``, ``NotAnImage``,
``CorruptFile``, ``TooLarge``, ``FrameOutOfRange``, ``NoPixelData``, ``UnsupportedCodec``,
``UnsupportedDicom``, ``InvalidWindow``.

Command line: ``python -m train.imaging info FILE`` prints the technical summary;
``python -m train.imaging png FILE OUT.png [--frame N] [--window NAME|C,W] [--max-pixels N]`` exports a
frame (at the model's input size with ``--max-pixels``).
"""

from __future__ import annotations

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
from .files import Source, open_study, sniff, to_png_bytes
from .image_study import ImageStudy
from .model_input import (
    MEDR1_MAX_PIXELS,
    MEDR1_MIN_PIXELS,
    PATCH,
    PixelBounds,
    fit_to_model,
    model_input_size,
    model_picture,
)
from .study import Frame, Study, WindowArg
from .window import AUTO, CT_PRESETS, FULL, Window, apply_window, parse_window, percentile_window

__all__ = [
    "AUTO",
    "BURNED_IN_WARNING",
    "CT_PRESETS",
    "FULL",
    "MEDR1_MAX_PIXELS",
    "MEDR1_MIN_PIXELS",
    "PATCH",
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
    "PixelBounds",
    "Source",
    "Study",
    "TooLarge",
    "UnsupportedCodec",
    "UnsupportedDicom",
    "Window",
    "WindowArg",
    "apply_window",
    "codec_table",
    "describe",
    "fit_to_model",
    "model_input_size",
    "model_picture",
    "open_study",
    "parse_window",
    "percentile_window",
    "require_decoder",
    "sniff",
    "to_png_bytes",
]
