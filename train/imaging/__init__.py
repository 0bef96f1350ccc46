"""Medical pictures into model inputs: DICOM, series, NIfTI and standard images, read one way everywhere.

Clinicians bring DICOM straight from PACS exports (single files, or a ZIP or folder of a whole study) and
PNG/JPEG screenshots; researchers' datasets name any of them, or NIfTI volumes. All of them go through
:func:`model_picture`, so the picture a GRPO step sees for a record is, pixel for pixel, the picture the
Ask tab shows for the same file, slice and window.

Public API
----------
``model_picture(source, frame=0, window=None, bounds=PixelBounds()) -> PIL.Image``
    Open, render the frame with the window, resize to the model's input size (sides multiples of 28,
    area within the bounds): exactly what the processor receives, so it does not resize again.
``open_study(source, name=None, *, series=None, view=None) -> Study``
    ``source``: a path (DICOM recognised by content, extension or not; a ZIP or folder of a DICOM study;
    a ``.nii``/``.nii.gz``), bytes, a PIL image, or a list of DICOM files. Validates, decodes one frame,
    raises an :class:`ImagingError` subclass on anything unusable (:class:`SeveralSeries` when the source
    holds several series and ``series`` does not say which: its ``listing`` opens any without rescanning).
``list_series(source, name=None) -> SeriesListing``
    The PHI-free :class:`SeriesInfo` of each series (or 4-D volume) a source holds, scanned once;
    ``listing.open(index)``.
``Study``
    ``kind`` ("dicom", "image" or "nifti"), ``name`` (the file's base name, for messages), ``num_frames``
    (a series' or volume's slices), ``frame_noun`` ("frame" or "slice"), ``size``, ``is_color``,
    ``metadata`` (PHI-free allow-list), ``warnings``, ``default_window``, ``presets``/``window_choices``;
    ``render(frame, window)`` (8-bit RGB, full resolution), ``resolve_window(frame, window)``; ``views``
    and ``reformat(view)`` (NIfTI: axial, coronal, sagittal); ``close()``.
``slice_pictures(study, count, window, bounds, token_budget) -> SlicePictures``
    ``count`` evenly spaced slices as model pictures, their indices and their token cost, for a
    multi-image prompt (:data:`MULTI_SLICE_NOTE`: Med-R1 was trained on single 2-D images).
``PixelBounds``, ``model_input_size``, ``fit_to_model``
    The model-size rule on its own (Med-R1's bounds are the defaults: 3,136 to 401,408 px).
``to_png_bytes(rgb)``, ``sniff(head)``
    Lossless PNG without metadata; classify a file's first 132 bytes.

Errors (all subclasses of ``ImagingError``, a ``ValueError``): ``ImageNotFound``, ``NotAnImage``,
``CorruptFile``, ``TooLarge``, ``FrameOutOfRange``, ``NoPixelData``, ``UnsupportedCodec``,
``UnsupportedDicom``, ``InvalidWindow``, ``SeveralSeries``, ``SeriesNotFound``, ``MixedStudies``,
``UnsafeArchive``, ``UnsupportedVolume``.

Command line: ``python -m train.imaging info SOURCE [--series S]`` prints the technical summary;
``python -m train.imaging series SOURCE`` lists what a ZIP, folder or NIfTI holds;
``python -m train.imaging png SOURCE OUT.png [--frame N] [--series S] [--view V] [--window NAME|C,W]
[--max-pixels N]`` exports a frame or slice (at the model's input size with ``--max-pixels``).
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
    MixedStudies,
    NoPixelData,
    NotAnImage,
    SeriesNotFound,
    SeveralSeries,
    TooLarge,
    UnsafeArchive,
    UnsupportedCodec,
    UnsupportedDicom,
    UnsupportedVolume,
)
from .files import Source, list_series, open_cached, open_study, sniff, to_png_bytes
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
from .nifti import NiftiStudy
from .series import SeriesInfo, SeriesListing, SeriesStudy
from .slices import MULTI_SLICE_NOTE, SlicePictures, evenly_spaced, image_tokens, slice_pictures
from .study import Frame, Study, WindowArg
from .window import AUTO, CT_PRESETS, FULL, Window, apply_window, parse_window, percentile_window

__all__ = [
    "AUTO",
    "BURNED_IN_WARNING",
    "CT_PRESETS",
    "FULL",
    "MEDR1_MAX_PIXELS",
    "MEDR1_MIN_PIXELS",
    "MULTI_SLICE_NOTE",
    "PATCH",
    "CorruptFile",
    "DicomStudy",
    "Frame",
    "FrameOutOfRange",
    "ImageNotFound",
    "ImageStudy",
    "ImagingError",
    "InvalidWindow",
    "MixedStudies",
    "NiftiStudy",
    "NoPixelData",
    "NotAnImage",
    "PixelBounds",
    "SeriesInfo",
    "SeriesListing",
    "SeriesNotFound",
    "SeriesStudy",
    "SeveralSeries",
    "SlicePictures",
    "Source",
    "Study",
    "TooLarge",
    "UnsafeArchive",
    "UnsupportedCodec",
    "UnsupportedDicom",
    "UnsupportedVolume",
    "Window",
    "WindowArg",
    "apply_window",
    "codec_table",
    "describe",
    "evenly_spaced",
    "fit_to_model",
    "image_tokens",
    "list_series",
    "model_input_size",
    "model_picture",
    "open_cached",
    "open_study",
    "parse_window",
    "percentile_window",
    "require_decoder",
    "slice_pictures",
    "sniff",
    "to_png_bytes",
]
