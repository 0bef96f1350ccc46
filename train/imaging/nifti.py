"""NIfTI volumes (``.nii``, ``.nii.gz``, NIfTI-1 and -2) as a :class:`Study` whose frames are slices.

Researchers' CT and MR data sets come as NIfTI. nibabel reads the header (shape, voxel type, scaling,
affine); the voxels are read here, one slice at a time, so a 300-slice volume costs one slice of memory:

- **Canonical orientation without loading the volume.** nibabel's ``as_closest_canonical`` would load
  (and copy) the whole array. Instead :func:`nibabel.orientations.io_orientation` says which voxel axis
  runs along each RAS axis and in which direction, and each slice is read along the right voxel axis
  and flipped: slice 0 of the axial view is the most inferior, as in a DICOM series sorted along its
  normal, and slices are shown as radiologists look at them (patient's right on the left of the screen,
  anterior up in an axial slice, superior up in a sagittal or coronal one).
- **Views.** Axial by default; sagittal and coronal reformats are offered where the spacing allows
  (the through-plane spacing at most :data:`REFORMAT_MAX_RATIO` times the in-plane one), and shown with
  square pixels. A slice along the file's own third axis is one contiguous read; a reformat reads the
  volume plane by plane (a few MB at a time) and keeps one row of each.
- **Values.** ``scl_slope``/``scl_inter`` are applied, so a CT volume stored as scaled integers comes out
  in Hounsfield units. A volume whose values look like HU (air near -1000) is offered the CT presets; any
  other gets one window for the whole volume, from slices sampled at open, so brightness does not jump
  between slices. NaN and infinite voxels are shown black, with a warning.
- **4-D volumes** (fMRI, DWI, dynamic series) have one :class:`SeriesInfo` per volume: pick one.
- **.nii.gz** is inflated once into an anonymous temporary file (deleted by the operating system when
  closed, never named), so moving through slices is a seek, not a decompression from the start.
- **Privacy.** The header's free-text fields (``descrip``, ``aux_file``, ``db_name``, ``intent_name``) and
  its extensions (where converters embed whole DICOM headers) can hold anything and are never read;
  metadata is shape, voxel size, type, scaling and orientation.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import threading
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from .errors import CorruptFile, ImagingError, NotAnImage, TooLarge, UnsupportedVolume
from .series import SeriesInfo, SeriesListing
from .standard import MAX_IMAGE_PIXELS, check_pixel_count
from .study import Frame, Study
from .window import CT_FALLBACK_PRESET, CT_PRESETS, Window, percentile_window

VIEWS = ("axial", "coronal", "sagittal")
_VIEW_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # the RAS axis each view's slices are perpendicular to
REFORMAT_MAX_RATIO = 3.0
"""A view is offered when its pixels, before being made square, are at most this many times taller than wide."""
MAX_VOLUME_BYTES = 8 * 1024**3
"""Largest voxel data accepted (and, for .nii.gz, inflated to a temporary file)."""
_CHUNK_BYTES = 8 * 1024**2  # stored bytes a reformat reads at a time
_SAMPLES_PER_PLANE = 1 << 14
_INFLATE_CHUNK = 1 << 18  # bytes in and out per step: what inflating a .nii.gz holds in memory
_NAN_WARNING = "Some voxels are not numbers (NaN or infinite); they are shown black."
_FLAT_WARNING = "The sampled slices hold a single value each: the volume may be empty."
_HU_NOTE = "Values look like Hounsfield units (air near -1000): CT window presets are offered."


def nifti_kind(head: bytes) -> str | None:
    """``"nifti1"``, ``"nifti2"``, ``"pair"`` (a .hdr of a .hdr/.img pair), ``"analyze"`` or None."""
    if len(head) >= 8 and head[4:8] in (b"n+2\x00",):
        return "nifti2"
    if len(head) < 348:
        return None
    size_le, size_be = int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")
    if head[344:348] == b"n+1\x00":
        return "nifti1"
    if head[344:348] == b"ni1\x00":
        return "pair"
    if 348 in (size_le, size_be) and head[344:348] == b"\x00\x00\x00\x00":
        return "analyze"
    return None


def is_gzip(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b"


def gzip_head(source: Path | bytes, length: int = 544) -> bytes:
    """The first ``length`` inflated bytes of a gzip file (b"" if it cannot be inflated)."""
    inflater = zlib.decompressobj(wbits=31)
    out = b""
    try:
        with _binary(source) as stream:
            pending = b""
            while len(out) < length:
                pending = pending or stream.read(1 << 16)
                if not pending or inflater.eof:
                    break
                out += inflater.decompress(pending, length - len(out))
                pending = inflater.unconsumed_tail
    except (zlib.error, OSError):
        return out
    return out


def _binary(source: Path | bytes) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb")


# -- the file -----------------------------------------------------------------------------------------


class _Voxels:
    """Positional reads on the (inflated) file: ``pread`` where there is a descriptor, else seek+read."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        try:
            self._fd: int | None = stream.fileno()
        except (OSError, AttributeError, io.UnsupportedOperation):
            self._fd = None
        self._finalizer = weakref.finalize(self, stream.close)

    def read(self, offset: int, length: int) -> bytes:
        if self._fd is not None and hasattr(os, "pread"):
            data = os.pread(self._fd, length, offset)
        else:
            with self._lock:
                self._stream.seek(offset)
                data = self._stream.read(length)
        if len(data) != length:
            raise CorruptFile("the voxel data ends early")
        return data

    def close(self) -> None:
        self._finalizer()


def _inflate(source: Path | bytes, needed: int, name: str) -> BinaryIO:
    """Inflate a .nii.gz into an anonymous temporary file, up to the ``needed`` bytes the header announces.

    Bounded by the header (itself bounded by :data:`MAX_VOLUME_BYTES`), so a gzip bomb stops there; the
    file has no name on disk (POSIX: unlinked at creation) and disappears when closed.
    """
    spool = tempfile.TemporaryFile(prefix="medr1-")  # noqa: SIM115 (returned open, closed by the volume)
    written = 0
    try:
        with _binary(source) as stream:
            inflater = zlib.decompressobj(wbits=31)
            pending = b""
            while written < needed:
                if not pending:
                    pending = stream.read(_INFLATE_CHUNK)
                    if not pending:
                        break
                out = inflater.decompress(pending, min(_INFLATE_CHUNK, needed - written))
                spool.write(out)
                written += len(out)
                if inflater.eof:  # a concatenated gzip member may follow
                    pending, inflater = inflater.unused_data, zlib.decompressobj(wbits=31)
                else:
                    pending = inflater.unconsumed_tail
    except zlib.error:
        spool.close()
        raise CorruptFile(
            f"{name}: the gzip data is damaged and cannot be inflated. Copy or export it again."
        ) from None
    except BaseException:
        spool.close()
        raise
    if written < needed:
        spool.close()
        raise CorruptFile(
            f"{name}: the volume is truncated: its header announces {needed:,} bytes but the file inflates to "
            f"{written:,}. Copy or export it again."
        )
    spool.flush()
    return spool


@dataclass(frozen=True)
class _Layout:
    """The voxel array as stored: Fortran order, ``shape`` (x, y, z, t), type, where it starts, its scaling."""

    shape: tuple[int, int, int, int]
    dtype: np.dtype
    offset: int
    slope: float
    inter: float
    zooms: tuple[float, float, float]
    ornt: np.ndarray  # (3, 2): for voxel axis i, the RAS axis it runs along and the direction (+1/-1)
    axcodes: str
    version: str


def _layout(head: bytes, kind: str, name: str) -> _Layout:
    import nibabel as nib
    from nibabel.orientations import aff2axcodes, io_orientation

    header_class = nib.Nifti2Header if kind == "nifti2" else nib.Nifti1Header
    fixed = 540 if kind == "nifti2" else 348  # the fixed header only: extensions (e.g. an embedded DICOM
    # header, full of patient data) are never read
    try:
        header = header_class.from_fileobj(io.BytesIO(head[:fixed]), check=False)
        shape = tuple(int(n) for n in header.get_data_shape())
        dtype = header.get_data_dtype()
        offset = int(header.get_data_offset())
        slope, inter = header.get_slope_inter()
        affine = header.get_best_affine()
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
    except ImagingError:
        raise
    except Exception as exc:  # nibabel raises HeaderDataError, ValueError, struct.error... on damaged headers
        raise CorruptFile(
            f"{name}: the NIfTI header cannot be read ({type(exc).__name__}); the file is probably damaged."
        ) from None
    if dtype.fields is not None:
        raise UnsupportedVolume(f"{name}: colour (RGB) NIfTI volumes are not supported; convert it to greyscale.")
    if dtype.kind not in "biuf":
        raise UnsupportedVolume(f"{name}: voxels of type {dtype} (complex?) cannot be shown; save magnitudes.")
    if not shape or any(n <= 0 for n in shape):
        raise CorruptFile(
            f"{name}: the volume holds no voxels (its shape is {' × '.join(map(str, shape)) or 'empty'})."
        )
    if len(shape) > 4 and any(n != 1 for n in shape[4:]):
        raise UnsupportedVolume(
            f"{name}: a {len(shape)}-D volume ({' × '.join(map(str, shape))}) cannot be shown; medr1 reads 2-D, 3-D "
            "and 4-D NIfTI. Split it into 3-D volumes."
        )
    full = (*shape[:4], *(1,) * (4 - min(len(shape), 4)))
    nx, ny, nz, nt = full[:4]
    largest, second, _ = sorted((nx, ny, nz), reverse=True)
    check_pixel_count(largest, second, name)  # the largest slice any view could show
    if nx * ny * nz * nt * dtype.itemsize > MAX_VOLUME_BYTES:
        raise TooLarge(f"{name}: the volume is over {MAX_VOLUME_BYTES / 1024**3:.0f} GB of voxels; crop or split it.")
    zooms = tuple(z if math.isfinite(z) and z > 0 else 1.0 for z in (*zooms, 1.0, 1.0)[:3])
    if not np.all(np.isfinite(affine)):
        affine = np.diag([*zooms, 1.0])
    try:
        ornt = io_orientation(affine)
        codes = "".join(aff2axcodes(affine))
    except Exception:  # a degenerate affine: take the voxel axes as they are
        ornt, codes = np.array([[0, 1], [1, 1], [2, 1]], dtype=float), "RAS"
    if np.any(np.isnan(ornt)):
        ornt, codes = np.array([[0, 1], [1, 1], [2, 1]], dtype=float), "RAS"
    slope = 1.0 if slope is None or not math.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not math.isfinite(inter) else float(inter)
    return _Layout(full, dtype, offset, slope, inter, zooms, ornt, codes, "NIfTI-2" if kind == "nifti2" else "NIfTI-1")


class NiftiVolume:
    """An open NIfTI file: its layout and positional reads of its voxels, shared by every view and volume."""

    def __init__(self, source: Path | bytes, name: str, *, head: bytes, gz: bool) -> None:
        kind = nifti_kind(head)
        if kind == "pair":
            raise NotAnImage(
                f"{name}: this is the header of a NIfTI .hdr/.img pair; medr1 reads single-file NIfTI. Convert it "
                "to .nii (e.g. nibabel: nib.save(nib.load('x.hdr'), 'x.nii'))."
            )
        if kind == "analyze":
            raise NotAnImage(f"{name}: this looks like an Analyze 7.5 header, not NIfTI; convert it to .nii.")
        if kind is None and gz and len(head) < 348:
            raise CorruptFile(
                f"{name}: the gzip data ends or breaks after {len(head)} bytes, before a NIfTI header could be read: "
                "the file is truncated or damaged. Copy it again."
            )
        if kind is None:
            raise NotAnImage(f"{name}: a gzip file that does not hold a NIfTI volume. Unpack it and check what it is.")
        self.name = name
        self.compressed = gz
        self.layout = _layout(head, kind, name)
        nx, ny, nz, nt = self.layout.shape
        needed = self.layout.offset + nx * ny * nz * nt * self.layout.dtype.itemsize
        if gz:
            stream: BinaryIO = _inflate(source, needed, name)
        elif isinstance(source, bytes):
            stream = io.BytesIO(source)
        else:
            stream = Path(source).open("rb")  # noqa: SIM115 (kept open for the slices, closed by close())
        size = stream.seek(0, io.SEEK_END)
        if size < needed:
            stream.close()
            raise CorruptFile(
                f"{name}: the volume is truncated: its header announces {needed:,} bytes of data but the file has "
                f"{size:,}. Copy or export it again."
            )
        self._voxels = _Voxels(stream)
        self._samples: dict[int, tuple[Window | None, bool, tuple[str, ...]]] = {}

    # -- reading -----------------------------------------------------------------------------------
    def _raw_planes(self, k0: int, k1: int, t: int) -> np.ndarray:
        """Stored voxel planes ``k0..k1`` along the file's third axis, [k, y, x] (C order of the Fortran data)."""
        layout = self.layout
        nx, ny, nz, _ = layout.shape
        plane = nx * ny * layout.dtype.itemsize
        data = self._voxels.read(layout.offset + (t * nz + k0) * plane, (k1 - k0) * plane)
        return np.frombuffer(data, dtype=layout.dtype).reshape(k1 - k0, ny, nx)

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        """Stored values to float32 with ``scl_slope``/``scl_inter`` applied (HU for a scaled CT)."""
        values = raw.astype(np.float32)
        if self.layout.slope != 1.0:
            values *= np.float32(self.layout.slope)
        if self.layout.inter != 0.0:
            values += np.float32(self.layout.inter)
        return values

    def _planes(self, k0: int, k1: int, t: int) -> np.ndarray:
        return self._scaled(self._raw_planes(k0, k1, t))

    def voxel_plane(self, axis: int, index: int, t: int) -> np.ndarray:
        """The 2-D plane where voxel axis ``axis`` equals ``index``, indexed by the other two axes in order."""
        nx, ny, nz, _ = self.layout.shape
        if axis == 2:
            return self._planes(index, index + 1, t)[0].T  # [x, y]
        rows = []
        step = max(1, _CHUNK_BYTES // max(1, nx * ny * self.layout.dtype.itemsize))
        for k0 in range(0, nz, step):
            block = self._raw_planes(k0, min(nz, k0 + step), t)  # [k, y, x], stored type
            row = block[:, :, index] if axis == 0 else block[:, index, :]  # [k, y] or [k, x]
            rows.append(row.copy())  # a copy, so the block itself is freed
        return self._scaled(np.concatenate(rows, axis=0)).T  # [y, z] or [x, z]

    def view_geometry(self, view: str) -> tuple[int, int, tuple[int, int], tuple[float, float]]:
        """For ``view``: (voxel axis across the slices, slice count, the in-plane voxel axes, their spacing)."""
        ornt = self.layout.ornt
        world = _VIEW_AXIS[view]
        axis = int(next(i for i in range(3) if int(ornt[i, 0]) == world))
        in_plane = tuple(sorted((i for i in range(3) if i != axis), key=lambda i: int(ornt[i, 0])))
        spacing = (self.layout.zooms[in_plane[0]], self.layout.zooms[in_plane[1]])
        return axis, self.layout.shape[axis], in_plane, spacing  # type: ignore[return-value]

    def slice_values(self, view: str, index: int, t: int) -> np.ndarray:
        """Slice ``index`` of ``view`` as displayed: rows top to bottom, columns left to right, square pixels."""
        ornt = self.layout.ornt
        axis, count, in_plane, spacing = self.view_geometry(view)
        voxel_index = index if ornt[axis, 1] > 0 else count - 1 - index
        plane = self.voxel_plane(axis, voxel_index, t)  # indexed by the two other voxel axes, in order
        first, second = sorted(i for i in range(3) if i != axis)
        if int(ornt[first, 0]) > int(ornt[second, 0]):
            plane = plane.T  # now [lower RAS axis, higher RAS axis]
        for position, voxel_axis in enumerate(in_plane):
            if ornt[voxel_axis, 1] < 0:
                plane = np.flip(plane, axis=position)
        # Display: rows run down the higher RAS axis (anterior or superior at the top), columns run from the
        # patient's right (or anterior, in a sagittal slice) on the left.
        shown = np.ascontiguousarray(plane[::-1, ::-1].T)
        return _square_pixels(shown, row_spacing=spacing[1], column_spacing=spacing[0])

    # -- sampling ----------------------------------------------------------------------------------
    def sample(self, t: int) -> tuple[Window | None, bool, tuple[str, ...]]:
        """From planes at 25, 50 and 75 % of the file's third axis: a window, whether values look like HU, warnings."""
        if t in self._samples:
            return self._samples[t]
        nz = self.layout.shape[2]
        picks = sorted({min(nz - 1, int(nz * f)) for f in (0.25, 0.5, 0.75)})
        planes = []
        for k in picks:  # a strided subset of each plane: the window is the same to a grey level, memory is not
            plane = self._planes(k, k + 1, t)[0]
            step = max(1, int(math.sqrt(plane.size / _SAMPLES_PER_PLANE)))
            planes.append(np.ascontiguousarray(plane[::step, ::step]))
        values = np.concatenate([p.ravel() for p in planes])
        finite = np.isfinite(values)
        warnings = []
        if not finite.all():
            warnings.append(_NAN_WARNING)
        good = values[finite]
        hu = False
        window: Window | None = None
        if good.size == 0 or all(np.nanmin(p) == np.nanmax(p) for p in planes if np.isfinite(p).any()):
            warnings.append(_FLAT_WARNING)
        if good.size:
            low, high = np.percentile(good, [0.5, 99.5])
            hu = -3100 <= low <= -900 and -500 < high <= 4000
            window = percentile_window(good)
        result = window, hu, tuple(warnings)
        self._samples[t] = result
        return result

    def close(self) -> None:
        self._voxels.close()


def _display_size(columns: int, rows: int, column_spacing: float, row_spacing: float) -> tuple[int, int]:
    """(width, height) of a slice once its pixels are square: the coarser direction is stretched."""
    ratio = row_spacing / column_spacing
    if abs(ratio - 1) < 0.01:
        return columns, rows
    return (columns, max(1, round(rows * ratio))) if ratio > 1 else (max(1, round(columns / ratio)), rows)


def _square_pixels(values: np.ndarray, *, row_spacing: float, column_spacing: float) -> np.ndarray:
    """Resample so a pixel is as tall as it is wide (a 5 mm slice stack seen from the side), bilinear."""
    rows, columns = values.shape
    size = _display_size(columns, rows, column_spacing, row_spacing)
    if size == (columns, rows) or size[0] * size[1] > MAX_IMAGE_PIXELS:
        return values
    finite = np.isfinite(values)
    if finite.all():
        return np.asarray(Image.fromarray(values.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    filled = Image.fromarray(np.where(finite, values, 0).astype(np.float32)).resize(size, Image.Resampling.BILINEAR)
    mask = Image.fromarray(finite.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)
    out = np.asarray(filled).copy()
    out[np.asarray(mask) == 0] = np.nan
    return out


def _allowed_views(volume: NiftiVolume) -> tuple[str, ...]:
    allowed = []
    for view in VIEWS:
        _, _, in_plane, (column_spacing, row_spacing) = volume.view_geometry(view)
        width, height = (volume.layout.shape[i] for i in in_plane)
        ratio = max(row_spacing, column_spacing) / min(row_spacing, column_spacing)
        if ratio <= REFORMAT_MAX_RATIO and width > 1 and height > 1:
            allowed.append(view)
    return tuple(allowed)


def _native_view(volume: NiftiVolume) -> str:
    """The view whose slices are the file's own planes (its third voxel axis)."""
    world = int(volume.layout.ornt[2, 0])
    return next(v for v, axis in _VIEW_AXIS.items() if axis == world)


class NiftiStudy(Study):
    """One volume of a NIfTI file in one view; frames are slices. Build it with :func:`train.imaging.open_study`."""

    _container = "volume"

    def __init__(self, volume: NiftiVolume, t: int = 0, view: str | None = None) -> None:
        self._volume = volume
        self._t = t
        layout = volume.layout
        allowed = _allowed_views(volume)
        if view is None:
            view = "axial" if "axial" in allowed else _native_view(volume)
        view = view.strip().lower()
        if view not in VIEWS:
            raise UnsupportedVolume(f"{volume.name}: unknown view {view[:20]!r}; choose {', '.join(VIEWS)}.")
        if view not in allowed and view != _native_view(volume):
            raise UnsupportedVolume(
                f"{volume.name}: a {view} view would stretch its pixels more than {REFORMAT_MAX_RATIO:g} times "
                f"(voxels of {' × '.join(f'{z:g}' for z in layout.zooms)} mm); choose "
                f"{', '.join(allowed) or 'the native view'}."
            )
        self.view = view
        self._views = tuple(v for v in VIEWS if v in allowed or v == _native_view(volume))
        window, hu, warnings = volume.sample(t)
        _, count, _, _ = volume.view_geometry(view)
        nt = layout.shape[3]
        name = volume.name if nt == 1 else f"{volume.name}, volume {t}"
        self.name = name
        first = volume.slice_values(view, count // 2, t)
        self.default_window = default = CT_PRESETS[CT_FALLBACK_PRESET] if hu else window
        presets = dict(CT_PRESETS) if hu else {}
        metadata: dict[str, Any] = {
            "format": layout.version + (" (gzip)" if volume.compressed else ""),
            "dimensions": list(layout.shape[: 4 if nt > 1 else 3]),
            "voxel_size_mm": [round(z, 6) for z in layout.zooms],
            "data_type": str(layout.dtype.newbyteorder("=")),
            "orientation": layout.axcodes,
            "view": view,
            "slices": count,
            "rows": int(first.shape[0]),
            "columns": int(first.shape[1]),
        }
        if layout.slope != 1.0 or layout.inter != 0.0:
            metadata["rescale_slope"], metadata["rescale_intercept"] = layout.slope, layout.inter
        if nt > 1:
            metadata["volume"], metadata["volumes"] = t, nt
        if hu:
            metadata["value_units"] = "HU (from the values)"
        super().__init__(
            kind="nifti",
            name=name,
            num_frames=count,
            size=(int(first.shape[1]), int(first.shape[0])),
            metadata=metadata,
            warnings=(*warnings, *((_HU_NOTE,) if hu else ())),
            default_window=default,
            presets=presets,
            frame_noun="slice",
        )
        self._cached = (count // 2, self._frame_of(first))  # decoded above to learn the size: keep it

    @property
    def views(self) -> tuple[str, ...]:
        return self._views

    def reformat(self, view: str) -> NiftiStudy:
        """The same volume in another plane (one of :attr:`views`); shares the open file."""
        return NiftiStudy(self._volume, self._t, view)

    def _decode(self, frame: int) -> Frame:
        return self._frame_of(self._volume.slice_values(self.view, frame, self._t))

    def _frame_of(self, values: np.ndarray) -> Frame:
        finite = np.isfinite(values)
        mask = None
        if not finite.all():
            self._add_warning(_NAN_WARNING)
            mask = finite if finite.any() else None
        return Frame(values=values, mask=mask, default_window=self.default_window)

    def close(self) -> None:
        """Close the file (shared by this volume's other views and volumes)."""
        self._volume.close()


class NiftiListing(SeriesListing):
    """A NIfTI file's volumes: one for a 3-D file, one per time point (or direction...) for a 4-D one."""

    def __init__(self, volume: NiftiVolume) -> None:
        layout = volume.layout
        nt = layout.shape[3]
        infos = []
        view = "axial" if "axial" in _allowed_views(volume) else _native_view(volume)
        axis, count, in_plane, spacing = volume.view_geometry(view)
        for t in range(nt):
            infos.append(
                SeriesInfo(
                    index=t,
                    modality=None,
                    slices=count,
                    size=_display_size(layout.shape[in_plane[0]], layout.shape[in_plane[1]], *spacing),
                    orientation=view,
                    pixel_spacing_mm=(spacing[1], spacing[0]),
                    slice_spacing_mm=layout.zooms[axis],
                    kind="volume",
                    volume=t if nt > 1 else None,
                    volumes=nt if nt > 1 else None,
                )
            )
        super().__init__(volume.name, infos)
        self.volume = volume

    def open(self, which: int | str | None = None, view: str | None = None) -> NiftiStudy:
        return NiftiStudy(self.volume, self.choose(which), view)

    def close(self) -> None:
        self.volume.close()


__all__ = ["MAX_VOLUME_BYTES", "REFORMAT_MAX_RATIO", "VIEWS", "NiftiListing", "NiftiStudy", "NiftiVolume", "nifti_kind"]
