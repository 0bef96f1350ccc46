"""The technical, PHI-free summary of a DICOM dataset: an allow-list, never a deny-list.

A deny-list ("drop PatientName, PatientID, ...") fails open: the next private tag or a free-text
description holding a name leaks. Here only the attributes named in :data:`ALLOWED` are ever read, and
each value must also *look* like what the attribute holds (a code string of capitals and digits, a
number, a known UID), so a patient name typed into BodyPartExamined is dropped rather than shown.
Text values are read from the raw bytes (:mod:`.tags`), so pydicom never echoes them in a warning.
Dates, times, names, IDs, institutions, descriptions and comments are not on the list and are never
touched (the one exception, Series Description, is shown only when every word is a known imaging term:
:func:`safe_description`) (pydicom converts element values lazily, so unread values are not even decoded).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from .codecs import describe
from .tags import strings

_CODE = re.compile(r"[A-Z0-9 _]{1,16}")
_LATERALITY = {"L", "R", "B", "U"}


def _number_text(text: str) -> float | int | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else round(number, 6)


def _code(values: list[str]) -> str | None:
    return values[0] if values and _CODE.fullmatch(values[0]) else None


def _codes(values: list[str]) -> list[str] | None:
    return values if values and all(_CODE.fullmatch(v) for v in values) else None


def _number(values: list[str]) -> float | int | None:
    return _number_text(values[0]) if len(values) == 1 else None


def _numbers(values: list[str]) -> list[float | int] | None:
    parsed = [_number_text(v) for v in values]
    return parsed if parsed and all(p is not None for p in parsed) else None  # type: ignore[return-value]


def _sop_class(values: list[str]) -> str | None:
    uid = UID(values[0]) if values and len(values[0]) <= 64 else None
    return uid.name if uid is not None and uid.is_valid and uid.name != uid else None


def _laterality(values: list[str]) -> str | None:
    return values[0] if len(values) == 1 and values[0] in _LATERALITY else None


# Binary (US) pixel-module attributes: numbers only, safe to let pydicom convert.
_BINARY = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "PixelRepresentation")

# (key in the summary, DICOM keyword, validator). Order is display order.
ALLOWED: tuple[tuple[str, str, Callable[[list[str]], Any]], ...] = (
    ("modality", "Modality", _code),
    ("body_part", "BodyPartExamined", _code),
    ("sop_class", "SOPClassUID", _sop_class),
    ("image_type", "ImageType", _codes),
    ("photometric_interpretation", "PhotometricInterpretation", _code),
    ("rows", "Rows", _number),
    ("columns", "Columns", _number),
    ("samples_per_pixel", "SamplesPerPixel", _number),
    ("bits_allocated", "BitsAllocated", _number),
    ("bits_stored", "BitsStored", _number),
    ("pixel_representation", "PixelRepresentation", _number),
    ("pixel_spacing_mm", "PixelSpacing", _numbers),
    ("imager_pixel_spacing_mm", "ImagerPixelSpacing", _numbers),
    ("slice_thickness_mm", "SliceThickness", _number),
    ("spacing_between_slices_mm", "SpacingBetweenSlices", _number),
    ("window_center", "WindowCenter", _numbers),
    ("window_width", "WindowWidth", _numbers),
    ("voi_lut_function", "VOILUTFunction", _code),
    ("rescale_slope", "RescaleSlope", _number),
    ("rescale_intercept", "RescaleIntercept", _number),
    ("rescale_type", "RescaleType", _code),
    ("laterality", "ImageLaterality", _laterality),
    ("view_position", "ViewPosition", _code),
    ("lossy_compression", "LossyImageCompression", _code),
    ("burned_in_annotation", "BurnedInAnnotation", _code),
)
# Keys filled from enhanced multi-frame functional groups (frame 0) when the top level lacks them.
FUNCTIONAL_KEYS = {
    "PixelMeasuresSequence": ("pixel_spacing_mm", "slice_thickness_mm", "spacing_between_slices_mm"),
    "FrameVOILUTSequence": ("window_center", "window_width", "voi_lut_function"),
    "PixelValueTransformationSequence": ("rescale_slope", "rescale_intercept", "rescale_type"),
}


def _values(source: Dataset, keyword: str) -> list[str] | None:
    if keyword in _BINARY:
        if keyword not in source:
            return None
        value = source[keyword].value
        return None if value is None else [str(value)]
    return strings(source, keyword)


def _pick(source: Dataset, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, keyword, validate in ALLOWED:
        if keys is not None and key not in keys:
            continue
        try:
            values = _values(source, keyword)
            value = validate(values) if values else None
        except Exception:  # a malformed value is simply not shown
            value = None
        if value is not None and value != []:
            out[key] = value
    return out


def summarize(ds: Dataset, *, frames: int, transfer_syntax: str, frame0_groups: list[Dataset]) -> dict[str, Any]:
    """The technical summary shown next to the image: modality, size, spacing, window, codec...

    ``frame0_groups`` are the functional-group items that apply to frame 0 (per-frame first, then
    shared), from which enhanced multi-frame objects take spacing, window and rescale.
    """
    summary = _pick(ds)
    for group in frame0_groups:
        for sequence, keys in FUNCTIONAL_KEYS.items():
            items = group[sequence].value if sequence in group else None
            if items:
                for key, value in _pick(items[0], keys).items():
                    summary.setdefault(key, value)
    summary["frames"] = frames
    summary["transfer_syntax"] = describe(transfer_syntax)
    return summary


# -- series descriptions ------------------------------------------------------------------------------
#
# Series Description is free text typed by a technologist or copied from a protocol name. It is what
# makes a series recognisable ("AX T2 FLAIR", "HEAD 5mm STD", "CHEST W/O CONTRAST"), but nothing stops
# it holding a name, a date or a research ID. It is therefore shown only when *every* word is a known
# imaging term, a short number (at most three digits before the point, so no date or ID passes), a
# number with a unit, or a reconstruction-kernel code; otherwise it is withheld entirely, never
# partly. Fail closed: a description we do not recognise costs a label, a leak would cost a patient.
_TERMS = frozenset(
    """
    ax axial sag sagittal cor coronal tra trans transverse obl oblique 2d 3d 4d mpr mip minip avg vr
    t1 t2 t1w t2w t2star pd pdw flair stir dwi dti adc trace swi gre se tse fse epi ir mprage mp rage
    space cube bravo vibe dixon haste ssfse fiesta trufi bffe tof pc cine lge psir swan thrive lava
    fs fat sat water in out opp phase post pre gad gd contrast c con with without wo w o non noncon nc
    head brain neck chest thorax lung lungs abd abdomen pelvis spine cspine tspine lspine cervical
    thoracic lumbar sacrum knee hip shoulder ankle wrist elbow hand foot cardiac heart liver kidney
    kidneys renal pancreas prostate breast orbit orbits sinus sinuses iac temporal face facial
    extremity upper lower whole body wb skull angio cta mra ctv mrv venogram perfusion perf
    std standard soft tissue bone sharp smooth detail mediastinum mediastinal window recon
    reconstruction thin thick slice slices mm cm ms kv mas scout localizer localiser loc topogram
    surview tomo dose arterial venous portal delayed native helical spiral routine volume vol
    iterative idose asir safire admire fbp dual energy mono keV iodine map maps report screen save
    l r left right bilateral bil ap pa lat lateral frontal
    """.casefold().split()
)
_TOKEN = re.compile(r"[A-Za-z0-9.]+")
_SHORT_NUMBER = re.compile(r"\d{1,3}(\.\d{1,3})?")
_NUMBER_UNIT = re.compile(r"\d{1,3}(\.\d{1,3})?(mm|cm|ms|kv|kev|mas|s)", re.I)
# Reconstruction kernels by their vendors' prefixes (Siemens B30f, Br40, Hr38, I31s, Qr40; Canon FC03).
_KERNEL = re.compile(r"(B|Br|Bv|Bf|Bl|Hr|Hf|Qr|Sa|Kr|Ur|I|H|D|U|T|FC)\d{2}[fsuh]?")
_DESCRIPTION_CHARS = re.compile(r"[A-Za-z0-9 .,_/+\-()\[\]:#&*]{1,64}")


def _known_word(token: str) -> bool:
    return (
        token.casefold() in _TERMS
        or bool(_SHORT_NUMBER.fullmatch(token))
        or bool(_NUMBER_UNIT.fullmatch(token))
        or bool(_KERNEL.fullmatch(token))
    )


def safe_description(text: str | None) -> str | None:
    """``text`` if every word in it is a known imaging term or a short number, else None (see above)."""
    if not text:
        return None
    text = " ".join(text.split())
    if not _DESCRIPTION_CHARS.fullmatch(text):
        return None
    tokens = [t.strip(".") for t in _TOKEN.findall(text)]
    tokens = [t for t in tokens if t]
    return text if tokens and all(_known_word(t) for t in tokens) else None


def series_description(ds: Dataset) -> str | None:
    """The dataset's Series Description if it passes :func:`safe_description`, read from raw bytes."""
    values = strings(ds, "SeriesDescription")
    return safe_description("\\".join(values)) if values else None


def series_number(ds: Dataset) -> int | None:
    """Series Number (an IS: a small whole number the scanner assigns), or None."""
    values = strings(ds, "SeriesNumber")
    number = _number(values) if values else None
    return number if isinstance(number, int) and 0 <= number < 100_000 else None
