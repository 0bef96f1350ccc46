"""DICOM series: the files of a ZIP, a folder or a drop grouped by series, ordered in space, one slice at a time.

A CT or MR study reaches a clinician as hundreds of single-frame files, often several series side by side.
:func:`scan_dicom` reads every file's header (never its pixels) and builds a :class:`SeriesListing`:

- **Grouped** by Series Instance UID (a multi-frame file is a series of its own).
- **One study, one patient.** Patient ID and Study Instance UID are compared across all files (as hashes,
  never kept, shown or logged); two of either refuse the upload, so a question never mixes two people
  or two examinations.
- **Ordered along the slice normal**: each slice's Image Position (Patient) projected on the normal of its
  Image Orientation (Patient) (row x column direction cosines), the order every DICOM viewer uses; file
  names are irrelevant. Without position tags, Instance Number, with a warning.
- **Checked**: gaps (a step over 1.5 x the series' usual spacing, with the number of slices probably
  missing), slices sharing a position, copies of one image (left out), mixed orientation, uneven spacing,
  mixed sizes. A file whose header is fine but whose pixel data is truncated is left out with a warning
  naming its place in the series; a file that cannot be read at all is left out with a warning naming its
  number in the upload. File and folder names are never shown.
- **Decoded one slice at a time**: a :class:`SeriesStudy` is a :class:`Study` whose frames are its slices, so
  ``render(slice, window)``, ``model_picture(study, slice, ...)`` and the viewer's frame slider work as for
  a multi-frame file; memory holds one slice (and its file's bytes), whatever the series' size.

What a user is shown about a series (:class:`SeriesInfo`) is technical: modality, slice count, size,
orientation, spacing, series number, body part, and the Series Description only when every word of it is
a known imaging term (:func:`train.imaging.metadata.safe_description`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import tags
from .dicom import DicomStudy, read_dataset, validate_header
from .errors import (
    CorruptFile,
    FrameOutOfRange,
    ImagingError,
    MixedStudies,
    NoPixelData,
    NotAnImage,
    SeriesNotFound,
    SeveralSeries,
    UnsafeArchive,
)
from .members import FileSet, Member
from .metadata import safe_description, series_number
from .standard import is_dicom_header, sniff_format
from .study import Frame, Study
from .window import Window, percentile_window

GAP_FACTOR = 1.5
"""A step between neighbours over this many times the series' usual spacing is reported as a gap."""
SPACING_TOLERANCE = 0.1
"""Steps differing from the usual one by more than this fraction (below a gap) are reported as uneven."""
_SAME_POSITION_MM = 0.01
_ORIENTATION_TOLERANCE = 1e-3
_LISTED = 3  # how many instances a warning spells out before "and N more"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class SeriesInfo:
    """One series as a user may see it: technical facts only, nothing that identifies a patient."""

    index: int
    """Position in the listing (what ``open(index)``, a dataset record's ``"series"`` and the CLI take)."""
    modality: str | None
    slices: int
    size: tuple[int, int]
    """(width, height) of a slice, in pixels."""
    orientation: str | None = None
    """"axial", "coronal", "sagittal" or "oblique" (from the slice normal); None when unknown."""
    pixel_spacing_mm: tuple[float, float] | None = None
    """(row spacing, column spacing) in mm."""
    slice_spacing_mm: float | None = None
    series_number: int | None = None
    description: str | None = None
    """Series Description, shown only when every word is a known imaging term; else None."""
    body_part: str | None = None
    kind: str = "series"
    """"series" (single-frame files), "multi-frame" (one file), "volume" (NIfTI) or "file" (one picture)."""
    volume: int | None = None
    volumes: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """One line for a menu: "Series 3 · CT · 120 slices · axial · 512 × 512 px · 0.7 × 0.7 mm, 2.5 mm apart"."""
        parts = []
        if self.volume is not None:
            parts.append(f"Volume {self.volume} (of {self.volumes})" if self.volumes else f"Volume {self.volume}")
        elif self.series_number is not None:
            parts.append(f"Series {self.series_number}")
        if self.modality:
            parts.append(self.modality)
        if self.description:
            parts.append(f"“{self.description}”")
        noun = "frame" if self.kind in ("multi-frame", "file") else "slice"
        parts.append(f"{self.slices} {noun}{'s' if self.slices != 1 else ''}")
        if self.orientation:
            parts.append(self.orientation)
        parts.append(f"{self.size[0]} × {self.size[1]} px")
        if self.pixel_spacing_mm:
            row, column = self.pixel_spacing_mm
            spacing = f"{column:.3g} × {row:.3g} mm"
            if self.slice_spacing_mm:
                spacing += f", {self.slice_spacing_mm:.3g} mm apart"
            parts.append(spacing)
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}")
        return " · ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """Plain types, for JSON (the CLI) and for the app's state."""
        out: dict[str, Any] = {"index": self.index, "label": self.label}
        for key in (
            "kind", "modality", "slices", "size", "orientation", "pixel_spacing_mm", "slice_spacing_mm",
            "series_number", "description", "body_part", "volume", "volumes", "warnings",
        ):  # fmt: skip
            value = getattr(self, key)
            if value is not None and value != ():
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


class SeriesListing(Sequence[SeriesInfo]):
    """The series of one upload, scanned once; :meth:`open` makes a :class:`Study` of one of them.

    ``warnings`` concern the upload as a whole (files that were left out); each :class:`SeriesInfo`
    carries its own. Subclasses hold what the series are read from (an archive, a volume).
    """

    def __init__(self, name: str, series: list[SeriesInfo], warnings: tuple[str, ...] = ()) -> None:
        self.name = name
        self.series = series
        self.warnings = warnings

    def __len__(self) -> int:
        return len(self.series)

    def __getitem__(self, index):  # type: ignore[override]
        return self.series[index]

    def __iter__(self) -> Iterator[SeriesInfo]:
        return iter(self.series)

    def choose(self, which: int | str | None) -> int:
        """The listing index for ``which``: None (the only series), an index, or its text (``"2"``)."""
        if which is None or (isinstance(which, str) and not which.strip()):
            if len(self.series) == 1:
                return 0
            raise SeveralSeries(self.several_message(), self)
        if isinstance(which, str) and which.strip().isdigit():
            which = int(which.strip())
        if isinstance(which, bool) or not isinstance(which, (int, np.integer)):
            raise SeriesNotFound(f"{self.name}: no series {str(which)[:64]!r}. {self.choices_text()}")
        if not 0 <= which < len(self.series):
            raise SeriesNotFound(
                f"{self.name}: there is no series {which}; this upload holds {len(self.series)}, numbered 0 to "
                f"{len(self.series) - 1}. {self.choices_text()}"
            )
        return int(which)

    def open(self, which: int | str | None = None) -> Study:
        """The chosen series as a :class:`Study` (``which``: see :meth:`choose`)."""
        raise NotImplementedError

    def several_message(self) -> str:
        noun = "volumes" if self.series and self.series[0].kind == "volume" else "series"
        return f"{self.name} holds {len(self.series)} {noun}: choose one. {self.choices_text()}"

    def choices_text(self) -> str:
        return "; ".join(f"{info.index}: {info.label}" for info in self.series[:20]) + (
            f"; and {len(self.series) - 20} more" if len(self.series) > 20 else ""
        )

    def close(self) -> None:
        """Release the archive or file the series are read from (also done on garbage collection)."""

    def __repr__(self) -> str:
        return f"<SeriesListing {len(self)} series name={self.name!r}>"


class SingleListing(SeriesListing):
    """A single DICOM file or picture, listed as a series of one so callers need not tell them apart."""

    def __init__(self, study: Study) -> None:
        modality = study.metadata.get("modality") if study.kind == "dicom" else None
        spacing = study.metadata.get("pixel_spacing_mm")
        info = SeriesInfo(
            index=0,
            modality=modality,
            slices=study.num_frames,
            size=study.size,
            pixel_spacing_mm=tuple(spacing[:2]) if isinstance(spacing, list) and len(spacing) >= 2 else None,
            kind="multi-frame" if study.num_frames > 1 else "file",
        )
        super().__init__(study.name, [info])
        self._study = study

    def open(self, which: int | str | None = None) -> Study:
        self.choose(which)
        return self._study


# -- scanning ---------------------------------------------------------------------------------------


@dataclass
class SliceHeader:
    """What the scan keeps of one file: where it is, what it belongs to; no pixel, no name, no identity."""

    member: Member
    preamble: bool
    frames: int
    size: tuple[int, int]
    series_uid: str | None
    sop_uid: str | None
    instance: int | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    modality: str | None
    series_number: int | None
    description: str | None
    body_part: str | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    patient: str | None = field(default=None, repr=False)
    """A hash of Patient ID, only to tell two patients apart."""
    study: str | None = field(default=None, repr=False)
    """A hash of Study Instance UID, only to tell two studies apart."""
    problem: str | None = None
    """Why the pixel data cannot be used (the header being fine): the slice is left out with a warning."""
    place: float | None = None
    """Distance along the series' slice normal, in mm (set when the series is ordered)."""


def _digest(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else None


def _vector(ds: Any, keyword: str, length: int) -> np.ndarray | None:
    values = tags.numbers(ds, keyword)
    if len(values) != length or not all(math.isfinite(v) for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


def _orientation(ds: Any) -> np.ndarray | None:
    cosines = _vector(ds, "ImageOrientationPatient", 6)
    if cosines is None:
        return None
    row, column = cosines[:3], cosines[3:]
    if not (0.9 < np.linalg.norm(row) < 1.1 and 0.9 < np.linalg.norm(column) < 1.1) or abs(row @ column) > 0.1:
        return None  # not direction cosines: treat as absent
    return cosines


def _normal(cosines: np.ndarray) -> np.ndarray:
    normal = np.cross(cosines[:3], cosines[3:])
    return normal / np.linalg.norm(normal)


def _int_text(ds: Any, keyword: str) -> int | None:
    values = tags.numbers(ds, keyword)
    if len(values) != 1 or not math.isfinite(values[0]) or not values[0].is_integer():
        return None
    return int(values[0])


def _first_sentence(message: str, prefix: str) -> str:
    """The reason in an error message, without the file label in front or the advice after it."""
    text = message.removeprefix(prefix).removeprefix(": ")
    return text.partition(". ")[0].strip().rstrip(".")


def _slice_header(member: Member, label: str, preamble: bool) -> SliceHeader:
    ds, element, full = read_dataset(member.open, label, preamble=preamble)
    file_meta = getattr(ds, "file_meta", None)
    if element is None and full is None and not (tags.uid(ds, "SOPClassUID") or (file_meta and len(file_meta))):
        # pydicom parses garbage after a DICM marker into an empty dataset: a damaged file, not a DICOMDIR
        raise CorruptFile(f"{label}: the DICOM header is empty or unreadable")
    problem = None
    try:
        header = validate_header(ds, element, full, label, preamble=preamble, size=member.size)
        frames, size = header.info["frames"], (header.info["columns"], header.info["rows"])
    except (NoPixelData, NotAnImage):
        raise
    except ImagingError as exc:
        problem = _first_sentence(str(exc), label)
        frames = 1
        size = (0, 0)
        with contextlib.suppress(TypeError, ValueError):  # Rows and Columns are binary (US): numbers only
            size = (int(ds.get("Columns")), int(ds.get("Rows")))
    spacing = tags.numbers(ds, "PixelSpacing")
    thickness = tags.numbers(ds, "SliceThickness")
    modality = tags.first(ds, "Modality")
    body_part = tags.first(ds, "BodyPartExamined")
    return SliceHeader(
        member=member,
        preamble=preamble,
        frames=frames,
        size=size,
        series_uid=tags.uid(ds, "SeriesInstanceUID"),
        sop_uid=tags.uid(ds, "SOPInstanceUID"),
        instance=_int_text(ds, "InstanceNumber"),
        position=_vector(ds, "ImagePositionPatient", 3),
        orientation=_orientation(ds),
        modality=modality if modality.isalnum() and len(modality) <= 16 else None,
        series_number=series_number(ds),
        description=safe_description("\\".join(tags.strings(ds, "SeriesDescription") or [])),
        body_part=body_part if body_part.replace("_", "").isalnum() and len(body_part) <= 16 else None,
        pixel_spacing=(spacing[0], spacing[1])
        if len(spacing) == 2 and all(math.isfinite(v) and v > 0 for v in spacing)
        else None,
        thickness=thickness[0] if len(thickness) == 1 and math.isfinite(thickness[0]) and thickness[0] > 0 else None,
        patient=_digest((tags.strings(ds, "PatientID") or [""])[0]),
        study=_digest(tags.uid(ds, "StudyInstanceUID")),
        problem=problem,
    )


@dataclass
class _Upload:
    """What the scan found besides images, for the messages and warnings."""

    unreadable: list[tuple[int, str]] = field(default_factory=list)
    not_images: int = 0
    other: Counter = field(default_factory=Counter)


def _kind_of(head: bytes) -> str | None:
    if is_dicom_header(head):
        return "dicom"
    if sniff_format(head):
        return "picture"
    if head[:4] in _ZIP_MAGIC:
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] == b"n+2\x00":
        return "nifti"
    if len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00"):
        return "dicom-raw"
    return None


def scan_dicom(files: FileSet) -> DicomListing:
    """Read every file's header, group by series, order the slices, check them: see the module docstring."""
    upload = _Upload()
    headers: list[SliceHeader] = []
    count = len(files)
    for member in files:
        label = f"{files.name}, file {member.number} of {count}"
        try:
            with member.open() as stream:
                head = stream.read(352)
        except UnsafeArchive:
            raise
        except Exception:
            upload.unreadable.append((member.number, "it cannot be read from the upload"))
            continue
        kind = _kind_of(head)
        if kind not in ("dicom", "dicom-raw"):
            upload.other[kind or "other"] += 1
            continue
        try:
            headers.append(_slice_header(member, label, preamble=kind == "dicom"))
        except NoPixelData:
            upload.not_images += 1
        except NotAnImage as exc:
            if kind == "dicom":  # the DICM marker is there: a damaged DICOM file, not some other file
                upload.unreadable.append((member.number, _first_sentence(str(exc), label)))
            else:
                upload.other["other"] += 1
        except UnsafeArchive:
            raise
        except ImagingError as exc:
            upload.unreadable.append((member.number, _first_sentence(str(exc), label)))
        except Exception as exc:  # a damaged file must cost only itself, never the upload
            upload.unreadable.append((member.number, f"it cannot be read ({type(exc).__name__})"))
    _refuse_mixed(files.name, headers)
    if not headers:
        raise _no_images(files, upload)
    groups: dict[Any, list[SliceHeader]] = {}
    for header in headers:
        key = ("file", header.member.number) if header.frames > 1 else ("series", header.series_uid or "")
        groups.setdefault(key, []).append(header)
    built = [_build_series(key, group) for key, group in groups.items()]
    warnings = [*_upload_warnings(upload, count), *(b for b in built if isinstance(b, str))]
    series = [b for b in built if not isinstance(b, str)]
    if not series:
        first = next(iter(headers))
        raise CorruptFile(
            f"{files.name}: every DICOM image in it is damaged ({first.problem or 'unreadable'}). "
            "Export the study again."
        )
    series.sort(key=lambda s: (s[0].series_number is None, s[0].series_number or 0, -s[0].slices, s[2]))
    infos = [replace(info, index=i) for i, (info, _, _) in enumerate(series)]
    return DicomListing(files, infos, [slices for _, slices, _ in series], [uid for _, _, uid in series], warnings)


def _refuse_mixed(name: str, headers: list[SliceHeader]) -> None:
    patients = {h.patient for h in headers if h.patient}
    if len(patients) > 1:
        raise MixedStudies(
            f"{name} holds images of {len(patients)} different patients (their Patient IDs differ). medr1 opens "
            "one patient's study at a time, so that no question mixes two people: export each patient's study "
            "on its own."
        )
    studies = {h.study for h in headers if h.study}
    if len(studies) > 1:
        raise MixedStudies(
            f"{name} holds {len(studies)} different studies (examinations). medr1 opens one study at a time, so "
            "that a question is never asked about the wrong examination: export or zip each study on its own."
        )


def _no_images(files: FileSet, upload: _Upload) -> ImagingError:
    where = {"zip": "The ZIP", "folder": "The folder"}.get(files.kind, "These files")
    if upload.unreadable:
        number, reason = upload.unreadable[0]
        return CorruptFile(
            f"{files.name}: no usable DICOM image: {len(upload.unreadable)} DICOM file(s) could not be read "
            f"(file {number}: {reason}). Export the study again."
        )
    hint = ""
    if upload.other.get("nifti"):
        hint = " It holds NIfTI volumes: open the .nii or .nii.gz file itself."
    elif upload.other.get("picture"):
        hint = " It holds PNG/JPEG/TIFF pictures: upload a picture itself."
    elif upload.not_images:
        hint = " It holds only DICOM objects without images (a DICOMDIR, reports): add the image files."
    found = sum(upload.other.values()) + upload.not_images
    return NotAnImage(f"{files.name}: {where.lower()} holds no DICOM images ({found} other file(s)).{hint}")


def _upload_warnings(upload: _Upload, count: int) -> Iterator[str]:
    if upload.unreadable:
        numbers = ", ".join(str(n) for n, _ in upload.unreadable[:_LISTED])
        more = f" and {len(upload.unreadable) - _LISTED} more" if len(upload.unreadable) > _LISTED else ""
        yield (
            f"{len(upload.unreadable)} DICOM file(s) could not be read and were left out (file {numbers}{more} "
            f"of {count}: {upload.unreadable[0][1]})"
        )
    ignored = sum(upload.other.values()) + upload.not_images
    if ignored:
        yield f"{ignored} file(s) that are not DICOM images (a DICOMDIR, reports, viewer files...) were ignored."


def _listed(items: Sequence[str]) -> str:
    text = ", ".join(items[:_LISTED])
    return text + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _orientation_label(normal: np.ndarray | None) -> str | None:
    if normal is None:
        return None
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _order(group: list[SliceHeader]) -> tuple[list[SliceHeader], np.ndarray | None, list[str]]:
    """Sort along the slice normal (the most common orientation's), else by Instance Number."""
    warnings: list[str] = []
    if all(h.position is not None and h.orientation is not None for h in group):
        common = Counter(tuple(np.round(h.orientation, 3)) for h in group).most_common(1)[0][0]
        normal = _normal(np.asarray(common))
        for h in group:
            h.place = float(h.position @ normal)  # type: ignore[operator]
        ordered = sorted(group, key=lambda h: (h.place, h.instance or 0, h.member.number))
        others = sum(
            1 for h in group if np.max(np.abs(h.orientation - np.asarray(common))) > _ORIENTATION_TOLERANCE * 10
        )
        if others:
            warnings.append(
                f"{others} of {len(group)} slices have a different orientation from the rest (a localiser mixed "
                "into the series?); all are ordered along the main orientation's normal."
            )
        return ordered, normal, warnings
    if all(h.instance is not None for h in group):
        warnings.append("The slices carry no position tags: they are ordered by Instance Number.")
        return sorted(group, key=lambda h: (h.instance, h.member.number)), None, warnings
    warnings.append(
        "The slices carry neither position tags nor instance numbers: their order is the upload's file order, "
        "which may be wrong."
    )
    return sorted(group, key=lambda h: (h.instance is None, h.instance or 0, h.member.number)), None, warnings


def _drop_copies(ordered: list[SliceHeader]) -> tuple[list[SliceHeader], list[str]]:
    seen: set[str] = set()
    kept, copies = [], 0
    for h in ordered:
        if h.sop_uid and h.sop_uid in seen:
            copies += 1
            continue
        if h.sop_uid:
            seen.add(h.sop_uid)
        kept.append(h)
    return kept, [f"{copies} duplicate cop{'ies' if copies > 1 else 'y'} of the same image left out."] if copies else []


def _drop_damaged(ordered: list[SliceHeader]) -> tuple[list[SliceHeader], list[str]]:
    damaged = [(i, h) for i, h in enumerate(ordered) if h.problem]
    if not damaged:
        return ordered, []
    places = [f"slice {i}" + (f" (at {h.place:.1f} mm)" if h.place is not None else "") for i, h in damaged]
    warning = (
        f"{len(damaged)} damaged slice(s) left out: {_listed(places)} of the {len(ordered)} "
        f"({damaged[0][1].problem}); the series is numbered without them."
    )
    return [h for h in ordered if not h.problem], [warning]


def _geometry_warnings(ordered: list[SliceHeader]) -> tuple[list[str], float | None]:
    """Gaps, shared positions and uneven spacing along the normal; returns the warnings and the usual step."""
    if len(ordered) < 2 or any(h.place is None for h in ordered):
        return [], None
    places = np.asarray([h.place for h in ordered])
    steps = np.diff(places)
    warnings = []
    same = [f"slices {i} and {i + 1}" for i in np.flatnonzero(steps < _SAME_POSITION_MM)]
    if same:
        warnings.append(
            f"{len(same)} pair(s) of slices share a position ({_listed(same)}): the series may hold two "
            "acquisitions or echoes; check the slice you ask about."
        )
    moving = steps[steps >= _SAME_POSITION_MM]
    if moving.size == 0:
        return warnings, None
    usual = float(np.median(moving))
    gaps = [(i, s) for i, s in enumerate(steps) if s > GAP_FACTOR * usual]
    if gaps:
        missing = sum(max(1, round(s / usual) - 1) for _, s in gaps)
        listed = [f"between slices {i} and {i + 1} ({s:.3g} mm)" for i, s in gaps]
        warnings.append(
            f"{len(gaps)} gap(s) in the series, about {missing} slice(s) missing: {_listed(listed)}, where the "
            f"series steps {usual:.3g} mm."
        )
    uneven = moving[(np.abs(moving - usual) > SPACING_TOLERANCE * usual) & (moving <= GAP_FACTOR * usual)]
    if uneven.size:
        low, high = float(min(uneven.min(), usual)), float(max(uneven.max(), usual))
        warnings.append(f"The slice spacing is uneven: from {low:.3g} to {high:.3g} mm between neighbours.")
    return warnings, usual


def _build_series(key: Any, group: list[SliceHeader]) -> tuple[SeriesInfo, list[SliceHeader], str] | str:
    """Order and check one group; returns (info, slices, sort key), or a warning when nothing usable is left."""
    if key[0] == "file":
        header = group[0]
        if header.problem:
            return f"A multi-frame image (file {header.member.number}) is damaged and was left out ({header.problem})"
        info = SeriesInfo(
            index=0, modality=header.modality, slices=header.frames, size=header.size,
            orientation=_orientation_label(_normal(header.orientation) if header.orientation is not None else None),
            pixel_spacing_mm=header.pixel_spacing, series_number=header.series_number,
            description=header.description, body_part=header.body_part, kind="multi-frame",
        )  # fmt: skip
        return info, group, f"~{header.member.number:08d}"
    unique, copies = _drop_copies(sorted(group, key=lambda h: h.member.number))
    ordered, normal, warnings = _order(unique)
    ordered, damaged = _drop_damaged(ordered)
    if not ordered:
        return f"A series of {len(group)} slice(s) was left out: every slice is damaged ({group[0].problem})"
    geometry, usual = _geometry_warnings(ordered)
    sizes = Counter(h.size for h in ordered)
    size = sizes.most_common(1)[0][0]
    if len(sizes) > 1:
        warnings.append(
            f"The slices come in {len(sizes)} sizes (most are {size[0]} × {size[1]} px); the viewer shows each "
            "at its own size."
        )
    first = next((h for h in ordered if h.size == size), ordered[0])
    spacing = usual if usual is not None else first.thickness
    info = SeriesInfo(
        index=0, modality=first.modality, slices=len(ordered), size=size, orientation=_orientation_label(normal),
        pixel_spacing_mm=first.pixel_spacing, slice_spacing_mm=round(spacing, 4) if spacing else None,
        series_number=first.series_number, description=first.description, body_part=first.body_part,
        kind="series", warnings=tuple(warnings + copies + damaged + geometry),
    )  # fmt: skip
    return info, ordered, key[1] or ""


# -- the listing and the study ------------------------------------------------------------------------


class DicomListing(SeriesListing):
    """The series of a ZIP, folder or drop of DICOM files; the file set stays open while the listing lives."""

    def __init__(
        self,
        files: FileSet,
        infos: list[SeriesInfo],
        slices: list[list[SliceHeader]],
        uids: list[str],
        warnings: list[str],
    ) -> None:
        super().__init__(files.name, infos, tuple(warnings))
        self.files = files
        self._slices = slices
        self._uids = uids

    def choose(self, which: int | str | None) -> int:
        if isinstance(which, str) and which.strip() and not which.strip().isdigit():
            text = which.strip()
            if text in self._uids:
                return self._uids.index(text)
            raise SeriesNotFound(f"{self.name}: no series has the Series Instance UID given. {self.choices_text()}")
        return super().choose(which)

    def open(self, which: int | str | None = None) -> Study:
        index = self.choose(which)
        info, slices = self.series[index], self._slices[index]
        if info.kind == "multi-frame":
            member = slices[0].member
            source = member.path if member.path is not None else member.read()
            name = self.name if len(self) == 1 else f"{self.name}, series {index}"
            study = DicomStudy(source, name, preamble=slices[0].preamble)
            study.warnings = (*self.warnings, *study.warnings)
            return study
        return SeriesStudy(self, index)

    def close(self) -> None:
        self.files.close()


class SeriesStudy(Study):
    """A series of single-frame DICOM files as one :class:`Study`: frame ``i`` is slice ``i`` along the normal."""

    _container = "series"

    def __init__(self, listing: DicomListing, index: int) -> None:
        self._listing = listing
        self._slices = listing._slices[index]
        self.info = listing.series[index]
        name = listing.name if len(listing) == 1 else f"{listing.name}, series {index}"
        self.name = name  # for the messages of the first decode below
        self.num_frames = len(self._slices)
        reference, reference_index = self._reference()
        self._window: Window | None = None
        metadata = dict(reference.metadata)
        info = self.info
        extra = {
            "slices": self.num_frames, "orientation": info.orientation, "slice_spacing_mm": info.slice_spacing_mm,
            "series_number": info.series_number, "series_description": info.description,
        }  # fmt: skip
        metadata.update({key: value for key, value in extra.items() if value is not None})
        metadata["frames"] = self.num_frames
        metadata["ordered_by"] = (
            "position" if all(h.place is not None for h in self._slices) else "instance number or file order"
        )
        super().__init__(
            kind="dicom",
            name=name,
            num_frames=self.num_frames,
            size=self.info.size,
            metadata=metadata,
            warnings=(*listing.warnings, *self.info.warnings, *reference.warnings),
            default_window=reference.default_window,
            presets=dict(reference.presets),
            is_color=reference.is_color,
            frame_noun="slice",
        )
        decoded = reference._frame(0)
        if decoded.default_window is None and decoded.default_pixels is None and not reference.is_color:
            # No window in the files: one window for the whole series (from the middle slice), not one per slice,
            # so the brightness does not jump while scrolling.
            self._window = percentile_window(decoded.values, decoded.mask)
            self.default_window = self._window
        self._cached = (reference_index, self._with_series_window(decoded))  # decoded already: the first view

    def _reference(self) -> tuple[DicomStudy, int]:
        """Open the middle slice (else the nearest that opens) to learn presets, colour and warnings."""
        middle = self.num_frames // 2
        order = sorted(range(self.num_frames), key=lambda i: abs(i - middle))[:8]  # the middle, else a neighbour
        error: ImagingError | None = None
        for i in order:
            try:
                return self._open_slice(i), i
            except ImagingError as exc:
                error = error or exc
        assert error is not None
        raise error

    def _slice_name(self, i: int) -> str:
        return f"{self.name}, slice {i}"

    def _open_slice(self, i: int) -> DicomStudy:
        header = self._slices[i]
        member = header.member
        source = member.path if member.path is not None else member.read()
        try:
            return DicomStudy(source, self._slice_name(i), preamble=header.preamble)
        except ImagingError as exc:
            message = str(exc).replace(": frame 0 ", ": the slice ", 1)
            raise type(exc)(f"{message} The other slices are unaffected.") from None

    def _decode(self, frame: int) -> Frame:
        return self._with_series_window(self._open_slice(frame)._frame(0))

    def _with_series_window(self, decoded: Frame) -> Frame:
        if self._window is not None and decoded.default_window is None and decoded.default_pixels is None:
            return replace(decoded, default_window=self._window)
        return decoded

    def slice_position(self, frame: int) -> float | None:
        """The slice's distance along the series' normal, in mm (None when ordered without positions)."""
        if not 0 <= frame < self.num_frames:
            raise FrameOutOfRange(f"{self.name}: slice {frame} does not exist (0 to {self.num_frames - 1}).")
        return self._slices[frame].place

    def close(self) -> None:
        """Close the upload this series is read from (shared by every series opened from the same listing)."""
        self._listing.close()


__all__ = [
    "GAP_FACTOR",
    "DicomListing",
    "SeriesInfo",
    "SeriesListing",
    "SeriesStudy",
    "SingleListing",
    "scan_dicom",
]
