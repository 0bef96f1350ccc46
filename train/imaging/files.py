"""Files in, pictures out: sniff a source, open it as a :class:`Study`, write a lossless PNG.

A source is one file (DICOM, PNG/JPEG/..., NIfTI), or a whole study: a ZIP, a folder or a list of DICOM
files (:mod:`.series`), or a NIfTI volume (:mod:`.nifti`). :func:`list_series` says what a source holds,
scanned once; :func:`open_study` opens it (``series=`` chooses when it holds several).
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread

from train.archives import is_zip

from .dicom import DicomStudy
from .errors import CorruptFile, ImageNotFound, ImagingError, NotAnImage, TooLarge
from .image_study import ImageStudy
from .members import files_set, folder_set, zip_set
from .nifti import NiftiListing, NiftiVolume, gzip_head, is_gzip, nifti_kind
from .series import SeriesListing, SingleListing, scan_dicom
from .standard import is_dicom_header, sniff_format, source_name
from .study import Study

FileSource = str | Path | bytes | bytearray | memoryview | Image.Image
Source = FileSource | Sequence[str | Path | bytes]
"""A path (file or folder), bytes, a PIL image, or a list of DICOM files (paths or bytes)."""
_HEAD = 544  # enough for DICOM's preamble (132), NIfTI-1's magic (344) and NIfTI-2's header (540)

# DICOM files written without the Part 10 preamble begin directly with a data element, nearly always
# of the file meta group (0002) or the identifying group (0008). Only such files are parsed with
# force=True; anything else is not DICOM.
_RAW_DICOM_GROUPS = (b"\x02\x00", b"\x08\x00")


def looks_like_raw_dicom(head: bytes) -> bool:
    """True for a DICOM dataset without preamble: a little-endian group 0002/0008 tag at offset 0."""
    return len(head) >= 8 and head[:2] in _RAW_DICOM_GROUPS


def sniff(head: bytes) -> str | None:
    """``"dicom"``, ``"dicom-raw"`` (no preamble), ``"image"`` or None, from the first 132 bytes."""
    if is_dicom_header(head):
        return "dicom"
    if sniff_format(head):
        return "image"
    if looks_like_raw_dicom(head):
        return "dicom-raw"
    return None


def _source_name(source: object) -> str:
    if isinstance(source, (list, tuple)):
        return f"{len(source)} files"
    return source_name(source)


def _peek(source: FileSource, name: str) -> tuple[str, bytes]:
    """What a single source is: "zip", "nifti", "nifti-gz" or "file" (DICOM, picture, or unknown), and its head."""
    if isinstance(source, Image.Image):
        return "file", b""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:_HEAD])
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            return "file", b""  # _open_file says "not found"
        with path.open("rb") as stream:
            head = stream.read(_HEAD)
    else:
        raise TypeError(f"open_study takes a path, bytes, a PIL image or a list of files, not {type(source).__name__}")
    if sniff(head[:132]) in ("dicom", "image"):
        return "file", head
    if is_zip(head):
        return "zip", head
    if nifti_kind(head):
        return "nifti", head
    if is_gzip(head):
        return "nifti-gz", head
    return "file", head


def upload_kind(source: FileSource) -> str:
    """ "zip", "nifti" or "file" (one DICOM file or picture), from the first bytes, for an upload handler.

    A single picture is read into memory and can be deleted from disk at once; a ZIP or a volume is
    opened from its path and keeps its own open handle (it may be far larger than one picture).
    """
    kind, _ = _peek(source, _source_name(source))
    return "nifti" if kind.startswith("nifti") else kind


def _data(source: FileSource) -> Path | bytes:
    return bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source)  # type: ignore[arg-type]


def list_series(source: Source, name: str | None = None) -> SeriesListing:
    """What ``source`` holds, scanned once: the series of a ZIP/folder/list, the volumes of a NIfTI, or one file.

    Each entry is a PHI-free :class:`~train.imaging.series.SeriesInfo` (``label`` for a menu);
    ``listing.open(index)`` opens one without scanning again. Raises an :class:`ImagingError` for an
    upload that cannot be used at all (no DICOM in a ZIP, two patients, an unsafe ZIP, a damaged volume).
    """
    name = name or _source_name(source)
    try:
        if isinstance(source, (list, tuple)):
            if not source:
                raise NotAnImage("No files were given.")
            if len(source) == 1:
                return list_series(source[0], name)
            return scan_dicom(files_set(source, name))
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            return scan_dicom(folder_set(source, name))
        kind, head = _peek(source, name)
        if kind == "zip":
            return scan_dicom(zip_set(_data(source), name))
        if kind in ("nifti", "nifti-gz"):
            gz = kind == "nifti-gz"
            data = _data(source)
            return NiftiListing(NiftiVolume(data, name, head=gzip_head(data) if gz else head, gz=gz))
    except ImagingError:
        raise
    except MemoryError:
        raise TooLarge(f"{name}: not enough memory to open this upload.") from None
    except Exception as exc:  # the last line of defence: a damaged upload must never crash the app
        raise CorruptFile(
            f"{name}: the upload could not be read ({type(exc).__name__}); it is probably damaged. Copy it again."
        ) from exc
    return SingleListing(_open_file(source, name))  # type: ignore[arg-type]


def open_study(
    source: Source, name: str | None = None, *, series: int | str | None = None, view: str | None = None
) -> Study:
    """Open a DICOM file, a standard image, a DICOM series (ZIP, folder, list of files) or a NIfTI volume.

    ``source`` is a path (DICOM recognised by content, extension or not; a folder), the file's bytes, a
    PIL image, or a list of DICOM files. ``name`` is how messages refer to it (default: the base name of
    the path). ``series`` chooses among several series (index in :func:`list_series`, or a Series
    Instance UID) or the volume of a 4-D NIfTI; without it a source holding several raises
    :class:`~train.imaging.errors.SeveralSeries`, whose ``listing`` opens any of them without scanning
    again. ``view`` ("axial", "coronal", "sagittal") is for NIfTI volumes. One frame is decoded (frame 0,
    or a series' or volume's middle slice), so damaged data fails here. Raises an :class:`ImagingError`
    subclass for anything that cannot be shown, never anything else for bad data (``TypeError`` for a
    wrong argument type).
    """
    if not isinstance(source, (list, tuple)) and not (isinstance(source, (str, Path)) and Path(source).is_dir()):
        kind, _ = _peek(source, name or _source_name(source))
        if kind == "file":
            study = _open_file(source, name)
            SingleListing(study).choose(series)  # a single picture is series 0 (a record may say so)
            return study if view is None else study.reformat(view)
    listing = list_series(source, name)
    if isinstance(listing, NiftiListing):
        return listing.open(series, view)
    study = listing.open(series)
    return study if view is None else study.reformat(view)


_CACHE_SIZE = 8
_cache: OrderedDict[tuple, Study] = OrderedDict()
_cache_lock = threading.Lock()


def open_cached(source: str | Path, *, series: int | str | None = None, view: str | None = None) -> Study:
    """:func:`open_study` for a path, keeping the last few series and volumes open for the next call.

    Training and evaluation ask for slice after slice of the same ZIP or NIfTI: scanning a 300-file ZIP or
    inflating a .nii.gz for every record would dominate. Single files are opened afresh (cheap, and they
    hold nothing open). The key includes the file's size and modification time, and the process id (a
    forked data-loader worker opens its own handles rather than sharing the parent's file offsets).
    """
    path = Path(source)
    try:
        status = path.stat()
    except OSError:
        return open_study(source, series=series, view=view)
    if not path.is_dir() and _peek(path, path.name)[0] == "file":
        return open_study(source, series=series, view=view)
    key = (os.getpid(), str(path.resolve()), status.st_mtime_ns, status.st_size, str(series), view)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    study = open_study(source, series=series, view=view)
    with _cache_lock:
        _cache[key] = study
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return study


def _open_file(source: FileSource, name: str | None = None) -> Study:
    """Open a DICOM file or a standard image, validated, with frame 0 decoded.

    ``source`` is a path (extension irrelevant: DICOM is recognised by content), the file's bytes,
    or a PIL image. ``name`` is how messages refer to it (default: the base name of the path). Raises
    an :class:`ImagingError` subclass for anything that cannot be shown, never anything else for bad
    data (a ``TypeError`` for a wrong argument type is a programming error).
    """
    name = name or source_name(source)
    if isinstance(source, Image.Image):
        return ImageStudy(source, name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data: Path | bytes = bytes(source)
        head = data[:132]
    elif isinstance(source, (str, Path)):
        data = Path(source)
        if not data.is_file():
            raise ImageNotFound(f"{name}: file not found. Check the path, or upload the file again.")
        with data.open("rb") as stream:
            head = stream.read(132)
    else:
        raise TypeError(f"open_study takes a path, bytes or a PIL image, not {type(source).__name__}")
    if not head:
        raise NotAnImage(f"{name}: the file is empty. Copy or export it again.")
    kind = sniff(head)
    try:
        if kind == "image":
            return ImageStudy(data, name)
        if kind in ("dicom", "dicom-raw"):
            return DicomStudy(data, name, preamble=kind == "dicom")
    except ImagingError:
        raise
    except MemoryError:
        raise TooLarge(f"{name}: not enough memory to open this file.") from None
    except Exception as exc:  # the last line of defence: a damaged file must never crash the app
        raise CorruptFile(
            f"{name}: the file could not be read ({type(exc).__name__}); it is probably damaged. "
            "Export or copy it again."
        ) from exc
    raise NotAnImage(
        f"{name}: not a DICOM file or a PNG, JPEG, TIFF, BMP, WebP or GIF image. Check that the right file "
        "was chosen; for DICOM from a CD, pick the image files, not DICOMDIR or the viewer program."
    )


def picture_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) of a file's picture from its header alone, no pixel decoded; None if unreadable.

    For planning (evaluation batches sorted by their image-token count), where decoding every picture
    twice would double the cost. DICOM is read up to Rows and Columns only.
    """
    try:
        with Path(path).open("rb") as stream:
            kind = sniff(stream.read(132))
        if kind == "image":
            with Image.open(path) as image:
                return image.size
        if kind in ("dicom", "dicom-raw"):
            ds = dcmread(path, stop_before_pixels=True, force=kind == "dicom-raw", specific_tags=["Rows", "Columns"])
            return int(ds.Columns), int(ds.Rows)
    except Exception:  # unreadable headers are reported when the picture is made; here they only lose the estimate
        return None
    return None


def to_png_bytes(rgb: Image.Image, compress_level: int = 3) -> bytes:
    """Lossless PNG of a rendered picture, with no metadata chunks (nothing identifying is written).

    Greyscale content (R = G = B, as every windowed DICOM) is stored as 8-bit grey: the same pixels
    in a third of the bytes.
    """
    image = rgb if rgb.mode in ("RGB", "L") else rgb.convert("RGB")
    if image.mode == "RGB":
        array = np.asarray(image)
        if np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2]):
            image = Image.fromarray(np.ascontiguousarray(array[..., 0]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
