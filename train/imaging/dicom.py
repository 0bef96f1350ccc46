"""DICOM objects as a :class:`Study`: validated up front, decoded one frame at a time.

Why it is built this way
------------------------
- **Validate before decoding.** The header is read with ``stop_before_pixels`` and the pixel element's
  own header (tag, VR, length) is read by hand at the position pydicom stopped, so ``open_study``
  knows - without reading a byte of pixel data - whether there is an image at all, whether its length
  matches Rows x Columns x frames, and whether a decoder is installed. A renamed PNG parsed with
  ``force=True`` therefore never gets past "no pixel data".
- **One frame, not the file.** Frames are decoded by ``pydicom.pixels`` decoders from a file handle
  (or a ``BytesIO`` over uploaded bytes) positioned at the pixel data, with ``index=frame``. A 1 GB
  multi-frame file costs one frame of memory. Deflated files are the exception: the whole dataset is
  zip-compressed, so it is inflated once (they are rare and small).
- **Display pipeline** (pydicom applies none of it for us): modality LUT (rescale slope/intercept ->
  HU for CT, or a Modality LUT table), then the VOI: the frame's window tags (enhanced multi-frame
  per-frame and shared functional groups first, pydicom 3.0 ignores them), else a VOI LUT table, else
  a CT preset from the body part, else a percentile window; then MONOCHROME1 inversion. Colour (RGB,
  YBR converted by pydicom, palette through its LUT) is scaled to 8 bits per channel.
- **Privacy.** Only the allow-listed technical attributes in :mod:`.metadata` and the pixel module
  are ever read; messages name the file and technical facts only.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    as_pixel_options,
    get_decoder,
    pixel_array,
)
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    JPEGTransferSyntaxes,
    MediaStorageDirectoryStorage,
)

from . import tags
from .codecs import describe, plugin_order, require_decoder, unsupported_variant
from .errors import CorruptFile, ImagingError, NoPixelData, NotAnImage, TooLarge, UnsupportedDicom
from .metadata import summarize
from .standard import MAX_IMAGE_PIXELS, check_pixel_count
from .study import Frame, Study
from .window import CT_PRESETS, Window, preset_for_body_part

_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_LONG_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_UNDEFINED = 0xFFFFFFFF
_GREY = ("MONOCHROME1", "MONOCHROME2")
# Codestreams that must end with the JPEG EOI / JPEG 2000 EOC marker (both FF D9; padding 00 or FF may
# follow, as in pydicom's own J2K example). A frame without it
# is truncated; checking first matters because CharLS (pyjpegls 1.5) spends seconds to minutes on a
# JPEG-LS stream missing only its last bytes before failing. Found by the fuzz tests.
_MARKER_SYNTAXES = frozenset((*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes, *JPEG2000TransferSyntaxes))
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR")

BURNED_IN_WARNING = (
    "This image has text burned into its pixels (Burned In Annotation: YES). It may show patient "
    "details: check before sharing it or sending it to the model."
)
LOSSY_WARNING = "This image was lossy-compressed at some point; fine detail may differ from the original."
NO_RESCALE_WARNING = (
    "This CT has no rescale slope/intercept, so its values may not be Hounsfield units; CT window "
    "presets are not offered. Use 'auto' or set the window by hand."
)
_RE_EXPORT = "Export it again from PACS or the viewer; if it keeps failing, export it as uncompressed DICOM."


@dataclass(frozen=True)
class PixelElement:
    """Where the pixel data sits: keyword, VR, offset of its value in the source, length (None = encapsulated)."""

    keyword: str
    vr: str
    offset: int
    length: int | None


@dataclass(frozen=True)
class FrameParams:
    """The per-frame display attributes, merged from per-frame groups, shared groups and the top level."""

    slope: float
    intercept: float
    has_rescale: bool
    windows: tuple[Window, ...]
    function: str


# -- reading and validation -------------------------------------------------------------------------


Opener = Callable[[], BinaryIO]
"""A function that opens a fresh binary stream on a file, e.g. an entry of a ZIP read in place."""


class _Nameless(io.RawIOBase):
    """A binary stream without a ``name``: pydicom writes ``fp.name`` into its warnings and logs.

    A file's path, or a ZIP entry's name, holds folder names of the export, which are often the patient's.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        self._stream.close()
        super().close()


def _open(source: Path | bytes | Opener) -> BinaryIO:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    stream = source.open("rb") if isinstance(source, Path) else source()
    return _Nameless(stream)  # type: ignore[return-value]


def _size(source: Path | bytes) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def _read_header(
    source: Path | bytes | Opener, name: str, force: bool
) -> tuple[Dataset, PixelElement | None, Dataset | None]:
    """Read everything before the pixel data and locate the pixel element without reading it."""
    with _open(source) as stream:
        try:
            ds = dcmread(stream, stop_before_pixels=True, force=force)
        except MemoryError:
            raise TooLarge(f"{name}: the DICOM header is too large to read. {_RE_EXPORT}") from None
        except Exception as exc:  # pydicom raises many types on damaged headers
            raise CorruptFile(
                f"{name}: this looks like a DICOM file but its header cannot be read "
                f"({type(exc).__name__}); it may be truncated or damaged. {_RE_EXPORT}"
            ) from None
        if _transfer_syntax(ds) == DeflatedExplicitVRLittleEndian:
            return ds, None, _read_deflated(source, name, force)
        position = stream.tell()
        return ds, _pixel_element(stream, ds, position, name), None


def _read_deflated(source: Path | bytes | Opener, name: str, force: bool) -> Dataset:
    with _open(source) as stream:
        try:
            return dcmread(stream, force=force)
        except Exception as exc:
            raise CorruptFile(
                f"{name}: the zip-deflated DICOM data cannot be inflated ({type(exc).__name__}). {_RE_EXPORT}"
            ) from None


def _transfer_syntax(ds: Dataset) -> UID:
    file_meta = getattr(ds, "file_meta", None)
    uid = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if uid:
        return UID(str(uid).strip("\x00 "))
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little in (True, None) else ExplicitVRBigEndian


def _pixel_element(stream: BinaryIO, ds: Dataset, position: int, name: str) -> PixelElement | None:
    """Parse the pixel element header where pydicom stopped (None at end of file: no pixel data)."""
    implicit, little = ds.original_encoding
    endian = "<" if little in (True, None) else ">"
    head = stream.read(8)
    if len(head) < 8:
        return None
    group, element = struct.unpack(endian + "HH", head[:4])
    keyword = _PIXEL_TAGS.get((group << 16) | element)
    if keyword is None:
        return None
    if implicit:
        (length,) = struct.unpack(endian + "L", head[4:8])
        vr, offset = "OB", position + 8
    else:
        vr = head[4:6].decode("ascii", "replace")
        extra = stream.read(4)
        if vr not in _LONG_VRS or len(extra) < 4:
            raise CorruptFile(f"{name}: the pixel data element is malformed (VR {vr!r}). {_RE_EXPORT}")
        (length,) = struct.unpack(endian + "L", extra)
        offset = position + 12
    return PixelElement(keyword, vr, offset, None if length == _UNDEFINED else length)


def _no_pixel_message(ds: Dataset, name: str) -> str:
    """Say what the object is instead of an image, from its SOP class and modality (technical only)."""
    file_meta = getattr(ds, "file_meta", None)
    sop = tags.uid(ds, "SOPClassUID") or (tags.uid(file_meta, "MediaStorageSOPClassUID") if file_meta else None)
    sop_name = UID(sop).name if sop else ""
    modality = tags.first(ds, "Modality")
    if sop == MediaStorageDirectoryStorage or "DirectoryRecordSequence" in ds:
        what = "a DICOMDIR, the index of a CD/DVD/USB export: open the image files in the folders next to it"
    elif modality == "SR" or sop_name.endswith("SR Storage") or "SR" in sop_name.split():
        what = "a structured report (text findings), not an image"
    elif modality == "RTSTRUCT" or "Structure Set" in sop_name:
        what = "an RT structure set (contours drawn on another series): open the CT or MR images it refers to"
    elif "Waveform" in sop_name or "ECG" in sop_name or modality in ("ECG", "HD", "EPS", "RESP"):
        what = "a waveform recording (such as an ECG), not an image"
    elif "Presentation State" in sop_name:
        what = "a presentation state (display settings for other images), not an image"
    elif "Encapsulated" in sop_name:
        what = f"an encapsulated document ({sop_name}), not an image"
    elif sop_name and sop_name != str(sop):
        what = f"an object of type '{sop_name}', which holds no image"
    else:
        what = "a DICOM object without an image"
    return f"{name}: no pixel data: this is {what}."


def _int(ds: Dataset, keyword: str, name: str, default: int | None = None) -> int:
    """A binary (US) pixel-module value, or an IS value read from raw text; CorruptFile if unusable."""
    if keyword == "NumberOfFrames":
        values = tags.numbers(ds, keyword)
        value: Any = values[0] if len(values) == 1 else (None if not values else math.nan)
    else:
        value = ds.get(keyword)
    if value in (None, "") and default is not None:
        return default
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise CorruptFile(
            f"{name}: the image header has no valid {keyword} value, so the pixels cannot be laid out. {_RE_EXPORT}"
        ) from None
    return number


def _validate_pixel_module(ds: Dataset, element: PixelElement, name: str) -> dict[str, Any]:
    """Check the Image Pixel module is self-consistent before any decoding; return its values."""
    rows, columns = _int(ds, "Rows", name), _int(ds, "Columns", name)
    if not (0 < rows < 65536 and 0 < columns < 65536):
        raise CorruptFile(f"{name}: the header gives an image of {columns} x {rows} pixels. {_RE_EXPORT}")
    check_pixel_count(columns, rows, name)
    frames = _int(ds, "NumberOfFrames", name, default=1) or 1
    if frames < 1:
        raise CorruptFile(f"{name}: the header gives {frames} frames. {_RE_EXPORT}")
    samples = _int(ds, "SamplesPerPixel", name, default=1)
    bits = _int(ds, "BitsAllocated", name)
    floating = element.keyword != "PixelData"
    stored = bits if floating else _int(ds, "BitsStored", name, default=bits)
    sign = 0 if floating else _int(ds, "PixelRepresentation", name, default=0)
    photometric = tags.first(ds, "PhotometricInterpretation")
    if samples not in (1, 3) or bits not in (1, 8, 16, 32, 64) or not 1 <= stored <= bits or sign not in (0, 1):
        raise UnsupportedDicom(
            f"{name}: unusual pixel layout ({samples} samples of {stored}/{bits} bits); medr1 reads 1 or 3 "
            "samples of 1 to 64 bits. Export the image as standard DICOM or PNG."
        )
    if photometric not in _GREY + _COLOUR:
        raise UnsupportedDicom(
            f"{name}: the colour model {photometric[:20] or '(none)'} is not supported (MONOCHROME1/2, RGB, "
            "YBR and PALETTE COLOR are). Export the image as RGB or greyscale."
        )
    if (samples == 1) != (photometric in (*_GREY, "PALETTE COLOR")):
        raise CorruptFile(
            f"{name}: the header says {photometric} with {samples} sample(s) per pixel, which contradict "
            f"each other. {_RE_EXPORT}"
        )
    return {"rows": rows, "columns": columns, "frames": frames, "samples": samples, "bits": bits,
            "stored": stored, "signed": sign == 1, "photometric": photometric}  # fmt: skip


def _check_length(info: dict[str, Any], element: PixelElement, ts: UID, file_size: int, name: str) -> None:
    """Catch truncated files and lying headers before a decoder reads past the end."""
    remaining = file_size - element.offset
    if element.length is None:
        if not ts.is_compressed:
            raise CorruptFile(f"{name}: uncompressed pixel data has no length. {_RE_EXPORT}")
        if remaining < 8 or info["frames"] > remaining // 8:
            raise CorruptFile(
                f"{name}: the compressed pixel data is missing or too short for {info['frames']} frame(s); "
                f"the file is probably truncated. {_RE_EXPORT}"
            )
        return
    if ts.is_compressed:
        raise CorruptFile(f"{name}: compressed pixel data must be encapsulated but is not. {_RE_EXPORT}")
    pixels = info["rows"] * info["columns"] * info["samples"] * info["frames"]
    expected = math.ceil(pixels / 8) if info["bits"] == 1 else pixels * info["bits"] // 8
    if info["photometric"] == "YBR_FULL_422":
        expected = expected // 3 * 2
    if element.length < expected or element.offset + element.length > file_size + 1:
        have = min(element.length, max(remaining, 0))
        raise CorruptFile(
            f"{name}: the pixel data is truncated: the header announces {info['frames']} frame(s) of "
            f"{info['columns']} x {info['rows']} ({expected:,} bytes) but only {have:,} bytes are there. "
            f"{_RE_EXPORT}"
        )


@dataclass(frozen=True)
class DicomHeader:
    """A DICOM image's header, checked: dataset without pixels, pixel element, transfer syntax, pixel module."""

    ds: Dataset
    element: PixelElement
    full: Dataset | None
    """The whole dataset, for deflated files only (they must be inflated to be read at all)."""
    transfer_syntax: UID
    info: dict[str, Any]


def read_dataset(
    source: Path | bytes | Opener, name: str, *, preamble: bool
) -> tuple[Dataset, PixelElement | None, Dataset | None]:
    """The header (no pixel read), the pixel element's place, and the whole dataset of a deflated file.

    A series scan needs the header even when the pixel data turns out to be unusable, to say *which*
    slice was left out; :func:`validate_header` then checks the image itself.
    """
    return _read_header(source, name, force=not preamble)


def validate_header(
    ds: Dataset, element: PixelElement | None, full: Dataset | None, name: str, *, preamble: bool, size: int
) -> DicomHeader:
    """Check that ``ds`` holds a displayable image whose pixel data is all there, decoding nothing."""
    if full is not None:  # deflated: the whole dataset is in memory already
        keyword = next((k for k in _PIXEL_TAGS.values() if k in full), None)
        element = PixelElement(keyword, "OB", 0, len(full[keyword].value)) if keyword else None
        ds = full
    if element is None:
        if not preamble and tags.uid(ds, "SOPClassUID") is None:
            raise NotAnImage(
                f"{name}: not a DICOM file or a PNG, JPEG, TIFF, BMP, WebP or GIF image. Check that the "
                "right file was chosen."
            )
        raise NoPixelData(_no_pixel_message(ds, name))
    if not preamble and ("Rows" not in ds or "Columns" not in ds):
        raise NotAnImage(f"{name}: not a DICOM image (no DICM marker and no image header). Check the file.")
    ts = _transfer_syntax(ds)
    require_decoder(ts, name)
    info = _validate_pixel_module(ds, element, name)
    if full is None:
        _check_length(info, element, ts, size, name)
    return DicomHeader(ds, element, full, ts, info)


def read_header(source: Path | bytes | Opener, name: str, *, preamble: bool, size: int) -> DicomHeader:
    """Read and validate everything a frame needs, decoding no pixel: the checks of ``open_study``.

    A series scan runs its two halves (:func:`read_dataset`, :func:`validate_header`) on every file of a
    ZIP or folder, from a stream on the entry so only the header is inflated, and decodes a slice only
    when it is shown. ``size`` is the file's length in bytes, against which the pixel data's announced
    length is checked.
    """
    ds, element, full = read_dataset(source, name, preamble=preamble)
    return validate_header(ds, element, full, name, preamble=preamble, size=size)


# -- per-frame attributes ---------------------------------------------------------------------------


def _groups(ds: Dataset, frame: int) -> list[Dataset]:
    """Functional-group items applying to ``frame``: per-frame first, then shared."""
    out: list[Dataset] = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        out.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        out.append(shared[0])
    return out


def _macro(groups: list[Dataset], keyword: str) -> Dataset | None:
    for group in groups:
        items = group.get(keyword) if keyword in group else None
        if items:
            return items[0]
    return None


def frame_params(ds: Dataset, frame: int) -> FrameParams:
    """Rescale and window for ``frame``, honouring enhanced multi-frame functional groups."""
    groups = _groups(ds, frame)
    rescale = _macro(groups, "PixelValueTransformationSequence")
    source = rescale if rescale is not None and "RescaleSlope" in rescale else ds
    has_rescale = "RescaleSlope" in source or "RescaleIntercept" in source
    slope = (tags.numbers(source, "RescaleSlope") or [1.0])[0]
    intercept = (tags.numbers(source, "RescaleIntercept") or [0.0])[0]
    if not (0 < abs(slope) <= 1e6 and abs(intercept) <= 1e9):  # NaN fails too: a damaged rescale is ignored
        slope, intercept, has_rescale = 1.0, 0.0, False
    voi = _macro(groups, "FrameVOILUTSequence")
    source = voi if voi is not None and "WindowCenter" in voi else ds
    pairs = zip(tags.numbers(source, "WindowCenter"), tags.numbers(source, "WindowWidth"), strict=False)
    windows = tuple(Window(c, w) for c, w in pairs if math.isfinite(c) and math.isfinite(w) and w > 0)
    function = tags.first(source, "VOILUTFunction") or "LINEAR"
    return FrameParams(slope, intercept, has_rescale, windows, function)


# -- the study --------------------------------------------------------------------------------------


class DicomStudy(Study):
    """A DICOM image object. Build it with :func:`train.imaging.open_study`."""

    def __init__(self, source: Path | bytes, name: str, *, preamble: bool) -> None:
        header = read_header(source, name, preamble=preamble, size=_size(source))
        ds, full, element, info = header.ds, header.full, header.element, header.info
        self._source, self._ds, self._full, self._element = source, ds, full, element
        self._ts = header.transfer_syntax
        self._info = info
        self._photometric: str = info["photometric"]
        self._opts = self._decode_options(element)
        self._plugins = plugin_order(self._ts)
        params = frame_params(ds, 0)
        modality = tags.first(ds, "Modality")
        warnings = []
        if tags.first(ds, "BurnedInAnnotation") == "YES":
            warnings.append(BURNED_IN_WARNING)
        if tags.first(ds, "LossyImageCompression") == "01":
            warnings.append(LOSSY_WARNING)
        colour = info["samples"] == 3 or self._photometric == "PALETTE COLOR"
        presets = {("file" if i == 0 else f"file {i + 1}"): w for i, w in enumerate(params.windows)}
        self._ct_preset: str | None = None
        if modality == "CT" and not colour:
            if params.has_rescale:
                presets.update(CT_PRESETS)
                self._ct_preset = preset_for_body_part(tags.first(ds, "BodyPartExamined"))
            else:
                warnings.append(NO_RESCALE_WARNING)
        self._has_voi_lut = bool(ds.get("VOILUTSequence")) and not colour
        default = None
        if not colour:
            if params.windows:
                default = params.windows[0]
            elif not self._has_voi_lut and self._ct_preset:
                default = CT_PRESETS[self._ct_preset]
        super().__init__(
            kind="dicom",
            name=name,
            num_frames=info["frames"],
            size=(info["columns"], info["rows"]),
            metadata=summarize(ds, frames=info["frames"], transfer_syntax=self._ts, frame0_groups=_groups(ds, 0)),
            warnings=tuple(warnings),
            default_window=default,
            presets={} if colour else presets,
            is_color=colour,
        )
        self._frame(0)  # decode now: a damaged frame fails at upload, and the first render is cached

    def _decode_options(self, element: PixelElement) -> dict[str, Any]:
        vr = element.vr if element.vr in ("OB", "OW", "OF", "OD") else ("OW" if self._info["bits"] > 8 else "OB")
        return as_pixel_options(
            self._ds, transfer_syntax_uid=self._ts, pixel_keyword=element.keyword, pixel_vr=vr,
            number_of_frames=self._info["frames"],
        )  # fmt: skip

    # -- decoding ---------------------------------------------------------------------------------
    def _decode_raw(self, frame: int) -> np.ndarray:
        try:
            return self._try_plugins(frame)
        except ImagingError:
            raise
        except MemoryError:
            raise TooLarge(f"{self.name}: not enough memory to decode frame {frame}.") from None
        except Exception as exc:  # codec plugins raise RuntimeError, ValueError, OSError...
            unsupported = unsupported_variant(self._ts, exc, self.name)
            if unsupported is not None:
                raise unsupported from exc
            detail = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise CorruptFile(
                f"{self.name}: frame {frame} could not be decoded from {describe(self._ts)} "
                f"({type(exc).__name__}{': ' + detail if detail else ''}). The file may be damaged. "
                f"{_RE_EXPORT}"
            ) from exc

    def _try_plugins(self, frame: int) -> np.ndarray:
        """Try the plugins in :func:`plugin_order` until one decodes the frame."""
        error: Exception | None = None
        for plugin in self._plugins:
            try:
                array = self._run_decoder(frame, plugin)
            except ImagingError:
                raise
            except Exception as exc:  # this plugin cannot read it: try the next one
                error = exc
                continue
            return array
        raise error or RuntimeError("no decoding plugin is installed")

    def _run_decoder(self, frame: int, plugin: str) -> np.ndarray:
        """Decode one frame from a handle positioned at the pixel data, or from the inflated dataset."""
        element = self._element
        if self._full is not None:
            return pixel_array(self._full, index=frame, decoding_plugin=plugin)
        decoder = get_decoder(self._ts)
        with _open(self._source) as stream:  # BytesIO shares the uploaded bytes, it does not copy them
            stream.seek(element.offset)
            if self._ts not in _MARKER_SYNTAXES:
                return decoder.as_array(stream, index=frame, decoding_plugin=plugin, **self._opts)[0]
            data = get_frame(
                stream,
                frame,
                number_of_frames=self._info["frames"],
                extended_offsets=self._opts.get("extended_offsets"),
                endianness="<" if self._ds.original_encoding[1] in (True, None) else ">",
            )
        if not data[-64:].rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
            raise CorruptFile(
                f"{self.name}: frame {frame} is truncated (its compressed data stops before the end-of-image "
                f"marker). {_RE_EXPORT}"
            )
        opts = {**self._opts, "number_of_frames": 1}
        return decoder.as_array(encapsulate([data]), index=0, decoding_plugin=plugin, **opts)[0]

    def _decode(self, frame: int) -> Frame:
        raw = self._decode_raw(frame)
        expected = (self._info["rows"], self._info["columns"])
        if raw.shape[:2] != expected:
            raise CorruptFile(f"{self.name}: frame {frame} decoded to the wrong size. {_RE_EXPORT}")
        if self.is_color:
            rgb = self._colour_to_uint8(raw)
            return Frame(values=rgb, default_pixels=rgb)
        params = frame_params(self._ds, frame)
        values = self._modality_lut(raw, params)
        frame_default = params.windows[0] if params.windows else None
        voi_pixels = None
        if frame_default is None and self._has_voi_lut:
            voi_pixels = self._voi_lut(values)
        elif frame_default is None and self._ct_preset:
            frame_default = CT_PRESETS[self._ct_preset]
        return Frame(
            values=values,
            mask=self._padding_mask(raw),
            default_window=frame_default,
            default_function=params.function if params.windows else "LINEAR",
            default_pixels=voi_pixels,
            invert=self._photometric == "MONOCHROME1",
        )

    def _modality_lut(self, raw: np.ndarray, params: FrameParams) -> np.ndarray:
        if self._ds.get("ModalityLUTSequence") and not params.has_rescale:
            return np.asarray(apply_modality_lut(raw, self._ds), dtype=np.float32)
        values = raw.astype(np.float32)
        if params.slope != 1.0:
            values *= np.float32(params.slope)
        if params.intercept != 0.0:
            values += np.float32(params.intercept)
        return values

    def _voi_lut(self, values: np.ndarray) -> np.ndarray | None:
        """Apply the first VOI LUT table (ours: pydicom 3.0.2's apply_voi wraps values past an 8-bit table)."""
        try:
            item = self._ds.VOILUTSequence[0]
            entries, first_mapped, bits = (int(v) for v in item.LUTDescriptor)
            if first_mapped > 32767 and self._info["signed"]:
                first_mapped -= 65536  # an SS descriptor read as US
            data = item["LUTData"].value
            if isinstance(data, (bytes, bytearray)):
                endian = "<" if self._ds.original_encoding[1] in (True, None) else ">"
                lut = np.frombuffer(data, dtype=endian + "u2")
            else:
                lut = np.asarray(list(data), dtype=np.float64)
            lut = lut[: entries or 65536].astype(np.float32)
            if lut.size == 0 or not 8 <= bits <= 16:
                return None
        except Exception:  # a malformed table: fall back to the percentile window
            return None
        index = np.clip(np.rint(np.nan_to_num(values)) - first_mapped, 0, lut.size - 1).astype(np.intp)
        scale = np.float32(255.0 / ((1 << bits) - 1))
        return np.clip(lut[index] * scale + np.float32(0.5), 0, 255).astype(np.uint8)

    def _padding_mask(self, raw: np.ndarray) -> np.ndarray | None:
        if "PixelPaddingValue" not in self._ds:
            return None
        try:
            pad = int(self._ds.PixelPaddingValue)
            limit = int(self._ds.get("PixelPaddingRangeLimit", pad))
        except (TypeError, ValueError):
            return None
        low, high = min(pad, limit), max(pad, limit)
        mask = (raw < low) | (raw > high)
        return mask if mask.any() and not mask.all() else None

    def _colour_to_uint8(self, raw: np.ndarray) -> np.ndarray:
        if self._photometric == "PALETTE COLOR":
            try:
                rgb = apply_color_lut(raw, self._ds)
            except Exception as exc:
                raise CorruptFile(
                    f"{self.name}: the palette colour table is missing or damaged ({type(exc).__name__}). {_RE_EXPORT}"
                ) from None
            bits = 8 if rgb.dtype == np.uint8 else 16
        else:
            rgb, bits = raw, self._info["stored"]
        if rgb.dtype == np.uint8 and bits <= 8:
            return np.ascontiguousarray(rgb)
        scale = np.float32(255.0 / ((1 << bits) - 1))
        return np.clip(rgb.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)


__all__ = [
    "BURNED_IN_WARNING",
    "MAX_IMAGE_PIXELS",
    "DicomHeader",
    "DicomStudy",
    "FrameParams",
    "Opener",
    "PixelElement",
    "frame_params",
    "read_dataset",
    "read_header",
    "validate_header",
]
