"""Files in, pictures out: sniff a file, open it as a :class:`Study`, write a lossless PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread

from .dicom import DicomStudy
from .errors import CorruptFile, ImageNotFound, ImagingError, NotAnImage, TooLarge
from .image_study import ImageStudy
from .standard import is_dicom_header, sniff_format, source_name
from .study import Study

Source = str | Path | bytes | bytearray | memoryview | Image.Image

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


def open_study(source: Source, name: str | None = None) -> Study:
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
