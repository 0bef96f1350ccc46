"""Synthetic DICOM files for tests, benchmarks and demos (no patient ever involved).

Real DICOM test data is either tiny (``pydicom.examples``) or cannot be redistributed, so the tests and
the benchmark build what they need: a CT phantom in Hounsfield units, any bit depth and signedness,
MONOCHROME1, colour, multi-frame, enhanced multi-frame functional groups, compressed with pydicom 3's
own encoders, and a multi-frame file of any size streamed to disk without holding it in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)


def ct_phantom(rows: int = 512, columns: int = 512, seed: int = 0) -> np.ndarray:
    """A head-sized CT slice in HU: air -1000, fat -100, soft tissue 40, a bone ring 1000, noise."""
    y, x = np.mgrid[0:rows, 0:columns]
    r = np.hypot((y - rows / 2) / (rows / 2), (x - columns / 2) / (columns / 2))
    hu = np.full((rows, columns), -1000.0)
    hu[r < 0.9] = -100
    hu[r < 0.85] = 1000
    hu[r < 0.78] = 40
    hu[(r < 0.2)] = 70  # a bleed-like bright spot in the middle
    hu += np.random.default_rng(seed).normal(0, 8, hu.shape)
    return np.rint(hu).astype(np.int16)


def make_dataset(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    modality: str = "OT",
    bits_stored: int | None = None,
    multi_frame: bool = False,
    transfer_syntax: str = ExplicitVRLittleEndian,
    **attributes: Any,
) -> Dataset:
    """A valid DICOM Part 10 dataset around ``pixels``.

    ``pixels`` is (rows, cols), (rows, cols, 3), or with ``multi_frame`` a leading frame axis. Its dtype
    sets Bits Allocated and Pixel Representation; ``attributes`` are set as DICOM keywords (e.g.
    ``RescaleIntercept=-1024``, ``WindowCenter=40``).
    """
    pixels = np.ascontiguousarray(pixels)
    frames = pixels.shape[0] if multi_frame else 1
    shape = pixels.shape[1:] if multi_frame else pixels.shape
    samples = shape[2] if len(shape) == 3 else 1
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = int(shape[0]), int(shape[1])
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    if multi_frame:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    if transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(transfer_syntax)
    return ds


def functional_groups(
    per_frame: Iterable[dict[str, dict[str, Any]]], shared: dict[str, dict[str, Any]] | None = None
) -> dict[str, Sequence]:
    """Per-frame and shared functional group sequences from plain dicts.

    ``per_frame`` yields, for each frame, ``{"FrameVOILUTSequence": {"WindowCenter": 40, ...}, ...}``.
    """

    def groups(spec: dict[str, dict[str, Any]]) -> Dataset:
        item = Dataset()
        for sequence, values in spec.items():
            inner = Dataset()
            for keyword, value in values.items():
                setattr(inner, keyword, value)
            setattr(item, sequence, Sequence([inner]))
        return item

    out = {"PerFrameFunctionalGroupsSequence": Sequence([groups(spec) for spec in per_frame])}
    if shared:
        out["SharedFunctionalGroupsSequence"] = Sequence([groups(shared)])
    return out


def to_bytes(ds: Dataset) -> bytes:
    """Serialise as a DICOM Part 10 file (preamble, DICM, file meta)."""
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def save(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` as a DICOM Part 10 file and return the path."""
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path


def gdcm_transcode(ds: Dataset, syntax: str) -> bytes:
    """Re-encode ``ds`` with python-gdcm, e.g. ``syntax="JPEGLosslessProcess14_1"`` (a gdcm.TransferSyntax name).

    pydicom 3 has no JPEG Lossless or 12-bit JPEG encoder; gdcm (a medr1 dependency) has both.
    """
    import tempfile

    import gdcm

    with tempfile.TemporaryDirectory(prefix="medr1-gdcm-") as tmp:
        source, target = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
        save(ds, source)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, syntax)))
        if not reader.Read():
            raise ValueError("gdcm could not read the dataset")
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise ValueError(f"gdcm cannot encode this image as {syntax}")
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        writer.SetFileName(str(target))
        if not writer.Write():
            raise ValueError("gdcm could not write the dataset")
        return target.read_bytes()


def write_large_multiframe(path: str | Path, frames: int, rows: int = 1024, columns: int = 1024) -> Path:
    """Stream an uncompressed 16-bit multi-frame CT to ``path`` without holding it in memory.

    Frame ``i`` is a phantom plus ``i`` HU so frames are distinguishable. The header is written by
    pydicom, then the pixel data element is appended by hand, one frame at a time.
    """
    path = Path(path)
    frame = ct_phantom(rows, columns).astype(np.int16) + np.int16(1024)
    ds = make_dataset(
        frame[np.newaxis], modality="CT", multi_frame=True, RescaleSlope=1, RescaleIntercept=-1024,
        WindowCenter=40, WindowWidth=400,
    )  # fmt: skip
    ds.NumberOfFrames = frames
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    length = frames * rows * columns * 2
    with path.open("ab") as stream:
        stream.write(struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length))
        for index in range(frames):
            stream.write((frame + np.int16(index)).tobytes())
    return path


# -- series and volumes -------------------------------------------------------------------------------

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
"""Image Orientation (Patient) of an axial slice: rows along +x (patient left), columns along +y (posterior)."""


def ct_series(
    slices: int = 120,
    rows: int = 64,
    columns: int = 64,
    *,
    spacing: float = 2.5,
    pixel_spacing: float = 0.7,
    first_position: float = -150.0,
    orientation: tuple[float, ...] = AXIAL,
    series_uid: str | None = None,
    study_uid: str | None = None,
    patient_id: str = "SYNTH-0001",
    patient_name: str = "SYNTHETIC^PATIENT",
    series_number: int = 2,
    description: str = "AX HEAD STD",
    seed: int = 0,
    **attributes: Any,
) -> list[Dataset]:
    """A CT series of single-frame slices sharing one Series Instance UID, ``spacing`` mm apart.

    Slice ``k`` (counted along the slice normal) carries a 4 x 4 marker in its top-left corner whose
    value is ``10 * k`` HU, so a test can read back which slice it is shown; Instance Number is ``k + 1``.
    ``attributes`` are set on every slice (e.g. ``BodyPartExamined="HEAD"``).
    """
    base = ct_phantom(rows, columns, seed=seed)
    row, column = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    normal = np.cross(row, column)
    origin = -(columns / 2) * pixel_spacing * row - (rows / 2) * pixel_spacing * column
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_of_reference = generate_uid()
    out = []
    for k in range(slices):
        pixels = base.copy()
        pixels[:4, :4] = 10 * k
        position = origin + (first_position + k * spacing) * normal
        ds = make_dataset(
            pixels, modality="CT", RescaleSlope=1, RescaleIntercept=0, WindowCenter=40, WindowWidth=400,
            PatientName=patient_name, PatientID=patient_id, StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid, SeriesNumber=series_number, SeriesDescription=description,
            FrameOfReferenceUID=frame_of_reference, InstanceNumber=k + 1,
            ImagePositionPatient=[round(float(v), 4) for v in position],
            ImageOrientationPatient=[float(v) for v in orientation],
            PixelSpacing=[pixel_spacing, pixel_spacing], SliceThickness=spacing, **attributes,
        )  # fmt: skip
        out.append(ds)
    return out


def write_series(
    datasets: Iterable[Dataset], target: str | Path, *, names: Iterable[str] | None = None, seed: int = 0
) -> Path:
    """Write slices as files under ``target`` (a folder, or a ``.zip`` written deflated), in shuffled order.

    ``names`` (relative paths, may hold folders) default to random hexadecimal names: file names say
    nothing about the order, as in a real PACS export.
    """
    import zipfile

    target = Path(target)
    datasets = list(datasets)
    rng = np.random.default_rng(seed)
    names = list(names) if names is not None else [f"{rng.integers(1 << 48):012x}" for _ in datasets]
    order = rng.permutation(len(datasets))
    if target.suffix.lower() == ".zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as bundle:
            for i in order:
                bundle.writestr(names[i], to_bytes(datasets[i]))
        return target
    for i in order:
        path = target / names[i]
        path.parent.mkdir(parents=True, exist_ok=True)
        save(datasets[i], path)
    return target


def write_nifti(
    path: str | Path,
    data: np.ndarray,
    *,
    zooms: tuple[float, ...] = (1.0, 1.0, 1.0),
    affine: np.ndarray | None = None,
    slope: float | None = None,
    inter: float | None = None,
) -> Path:
    """Save ``data`` (x, y, z[, t]) as NIfTI-1 (``.nii`` or ``.nii.gz`` by the name) with a RAS affine of ``zooms``.

    With ``slope``/``inter`` the stored integers are scaled on reading (``scl_slope``/``scl_inter``): store
    ``(hu - inter) / slope`` to get ``hu`` back, as CT converters do.
    """
    import nibabel as nib

    if affine is None:
        affine = np.diag([*zooms[:3], 1.0])
    image = nib.Nifti1Image(data, affine)
    image.header.set_zooms(tuple(zooms[: data.ndim]) + (1.0,) * max(0, data.ndim - len(zooms)))
    if slope is not None or inter is not None:
        image.header.set_slope_inter(slope if slope is not None else 1.0, inter if inter is not None else 0.0)
    nib.save(image, str(path))
    return Path(path)
