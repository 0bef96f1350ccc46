"""Standard images (PNG, JPEG, TIFF, BMP, WebP, GIF): decoded one frame at a time, converted to RGB.

:class:`~train.imaging.image_study.ImageStudy` builds on :func:`decode_image` and :func:`to_rgb`, so a
PNG is decoded the same way whether it feeds a GRPO step, an evaluation or a clinician's question.

Safety
------
Only the formats in :data:`SUPPORTED_FORMATS` are handed to Pillow (chosen by magic bytes first), so
Pillow's less-hardened plugins (EPS through Ghostscript, PSD, ...) are never reached from an upload.
The pixel count is checked from the header before any pixel is decoded (decompression bombs), without
touching Pillow's process-wide ``Image.MAX_IMAGE_PIXELS``. No metadata of the file (EXIF, PNG text
chunks, which may hold names or dates) is read beyond the EXIF orientation.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import (  # the plugins are imported so that Image.open(formats=SUPPORTED_FORMATS) knows them
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageCms,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from .errors import CorruptFile, FrameOutOfRange, ImageNotFound, ImagingError, NotAnImage, TooLarge

# Refuse pictures bigger than this before decoding them. Equal to Pillow's own bomb threshold
# (about 9,459 x 9,459): far above any radiograph or mammogram, and an RGB frame this size is
# already ~270 MB decoded. DICOM frames are held to the same limit.
MAX_IMAGE_PIXELS = 89_478_485
# What Pillow may open; the names are Pillow format ids. (Camera JPEGs carrying a second picture come
# back as "MPO" through the JPEG opener.)
SUPPORTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")
_FORMAT_LIST = "PNG, JPEG, TIFF, BMP, WebP or GIF"
_WIDE_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class DecodedImage(NamedTuple):
    """One decoded frame in its own Pillow mode, upright, plus what the file says about itself."""

    image: Image.Image
    frames: int
    format: str


def source_name(source: object) -> str:
    """A short name for messages: the file's base name (never its directory), or a placeholder."""
    if isinstance(source, (str, Path)):
        return Path(source).name or str(source)
    if isinstance(source, Image.Image):
        return "<image>"
    return "<uploaded file>"


def is_dicom_header(head: bytes) -> bool:
    """True when the bytes carry the DICOM Part 10 marker ``DICM`` after the 128-byte preamble."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def sniff_format(head: bytes) -> str | None:
    """Name the supported image format from its magic bytes, or None.

    Checked before Pillow sees the data so that only the formats we test and support are parsed.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    return None


def check_pixel_count(width: int, height: int, name: str) -> None:
    """Raise :class:`TooLarge` (or :class:`CorruptFile` for empty sizes) before anything is decoded."""
    if width <= 0 or height <= 0:
        raise CorruptFile(f"{name}: the file says the picture is {width} x {height} pixels. Re-export it.")
    if width * height > MAX_IMAGE_PIXELS:
        raise TooLarge(
            f"{name}: the picture is {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. Downscale or crop it, then try again."
        )


def _read_source(source: str | Path | bytes | bytearray | memoryview, name: str) -> bytes | Path:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise NotAnImage(f"{name}: the file is empty. Upload the image again.")
        return data
    path = Path(source)
    if not path.is_file():
        raise ImageNotFound(f"{name}: file not found at {path}. Check the path or the images root directory.")
    if path.stat().st_size == 0:
        raise NotAnImage(f"{name}: the file is empty (0 bytes). Copy or export it again.")
    return path


def decode_image(
    source: str | Path | bytes | bytearray | memoryview | Image.Image, frame: int = 0, name: str | None = None
) -> DecodedImage:
    """Decode one frame of a standard image, upright, keeping its mode (16-bit stays 16-bit).

    Multi-page TIFFs and animated GIF/WebP have several frames; everything else has one. ``name`` is
    what messages call the file (default: its base name, or a placeholder for bytes).
    """
    name = name or source_name(source)
    if isinstance(source, Image.Image):
        check_pixel_count(*source.size, name)
        if frame != 0:
            raise FrameOutOfRange(f"{name}: an in-memory picture has one frame; frame {frame} does not exist.")
        return DecodedImage(ImageOps.exif_transpose(source), 1, source.format or "image")
    data = _read_source(source, name)
    stream: io.BufferedIOBase = io.BytesIO(data) if isinstance(data, bytes) else data.open("rb")
    with stream:
        head = stream.read(132)
        stream.seek(0)
        if is_dicom_header(head):
            raise NotAnImage(
                f"{name}: this is a DICOM file, not a {_FORMAT_LIST} image: open it with "
                "train.imaging.open_study, which reads both."
            )
        kind = sniff_format(head)
        if kind is None:
            raise NotAnImage(
                f"{name}: not a {_FORMAT_LIST} image (the first bytes match none of them). "
                "Export the picture in one of these formats, or upload the DICOM file itself."
            )
        return _decode_stream(stream, frame, name, kind)


def _decode_stream(stream: io.BufferedIOBase, frame: int, name: str, kind: str) -> DecodedImage:
    try:
        with Image.open(stream, formats=SUPPORTED_FORMATS) as image:
            check_pixel_count(*image.size, name)
            frames = int(getattr(image, "n_frames", 1) or 1)
            if not 0 <= frame < frames:
                raise FrameOutOfRange(f"{name}: frame {frame} does not exist; the file has {frames} frame(s).")
            if frame:
                image.seek(frame)
                check_pixel_count(*image.size, name)
            image.load()
            return DecodedImage(ImageOps.exif_transpose(image), frames, image.format or kind)
    except ImagingError:
        raise
    except Image.DecompressionBombError:
        # Pillow refuses at twice its own limit before we see the size: read the size from the header
        # with the format's own parser (no pixel decoded) and say it in our words.
        size = _header_size(stream, kind)
        if size is not None:
            check_pixel_count(*size, name)
        raise TooLarge(
            f"{name}: the picture is larger than {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, the limit. "
            "Downscale or crop it, then try again."
        ) from None
    except MemoryError as exc:
        raise TooLarge(f"{name}: not enough memory to decode this picture. Downscale it and retry.") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(
            f"{name}: starts like a {kind} file but is not one that can be read. Re-export it as PNG."
        ) from exc
    except Exception as exc:  # Pillow's parsers raise many types on damaged input; all mean the same here.
        raise CorruptFile(
            f"{name}: the {kind} file is damaged or truncated ({type(exc).__name__}: {exc}). "
            "Copy or export it again; PNG is the safest choice."
        ) from exc


def _stretch_to_uint8(array: np.ndarray) -> np.ndarray:
    """Linear min-max stretch of a greyscale array to 0..255; NaN and inf become black."""
    values = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = float(values[finite].min()), float(values[finite].max())
    if high <= low:
        return np.where(finite, 0 if high <= 0 else 255, 0).astype(np.uint8)
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    16-bit, 32-bit and float greyscale are stretched min-to-max (a screenshot or export carries no
    window; DICOM does its own windowing in :mod:`train.imaging.dicom`). Transparent pixels are composited
    onto black, the background of every medical viewer. CIELAB goes through a colour-managed transform
    (Pillow's plain convert would mix channels), CMYK through its embedded ICC profile when it has one.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _WIDE_GREY:
        return Image.fromarray(_stretch_to_uint8(np.asarray(image))).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA") if mode != "La" else image.convert("LA").convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "LAB":
        transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
        return ImageCms.applyTransform(image, transform)
    if mode == "CMYK" and image.info.get("icc_profile"):
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
            return ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # A broken profile: fall back to Pillow's plain conversion below.
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise NotAnImage(f"{source_name(image)}: colour mode {mode} cannot be shown. Export as RGB PNG.") from exc


def _header_size(stream: io.BufferedIOBase, kind: str) -> tuple[int, int] | None:
    """(width, height) from the header alone, through the format's plugin without Pillow's bomb check."""
    try:
        stream.seek(0)
        width, height = Image.OPEN[kind][0](stream, "").size
    except Exception:  # any failure here: the caller says the limit without the picture's size
        return None
    return int(width), int(height)
