"""Windowing: how stored values (Hounsfield units for CT) become the 256 grey levels on screen.

A CT slice spans about 4,000 HU but a screen shows 256 levels, so a radiologist looks through a
*window* (centre, width) chosen for the tissue: brain, lung, bone... The file's own window tags come
first (they are what the acquiring site chose); without them CT falls back to a preset picked from the
body part, and other modalities to a percentile window computed from the frame itself.

The linear functions follow DICOM PS3.3 C.11.2.1.2 ("LINEAR", "LINEAR_EXACT", "SIGMOID") and write
straight to 0..255 in float32, which is what keeps a 512 x 512 slice within a few milliseconds
(pydicom's ``apply_windowing`` works in float64 and returns the stored bit range, not 8 bits).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .errors import InvalidWindow


class Window(NamedTuple):
    """A display window in the units of the image after its modality LUT (HU for CT)."""

    center: float
    width: float


AUTO = "auto"  # per frame: the 0.5th to 99.5th percentile of the pixel values
FULL = "full"  # per frame: minimum to maximum

# Radiopaedia's standard CT windows, given as width/level in the issue and stored here as
# (centre, width). Subdural and stroke have ranges in the literature; these are common midpoints.
CT_PRESETS: dict[str, Window] = {
    "brain": Window(40, 80),
    "subdural": Window(75, 215),
    "stroke": Window(40, 40),
    "lung": Window(-600, 1500),
    "mediastinum": Window(50, 350),
    "abdomen": Window(50, 400),
    "liver": Window(30, 150),
    "bone": Window(400, 1800),
}

# BodyPartExamined (DICOM CID 4031 codes and common vendor variants) -> default CT preset.
_BODY_PART_PRESET = {
    "brain": ("HEAD", "BRAIN", "SKULL", "HEADNECK", "HEAD_NECK", "IAC", "ORBIT", "SINUS"),
    "lung": ("LUNG", "LUNGS"),
    "mediastinum": ("CHEST", "THORAX", "HEART", "MEDIASTINUM", "CHESTABDOMEN", "CHEST_ABDOMEN"),
    "abdomen": ("ABDOMEN", "PELVIS", "ABDOMENPELVIS", "ABDOMEN_PELVIS", "KIDNEY", "PANCREAS", "CAP"),
    "liver": ("LIVER",),
    "bone": (
        "SPINE", "CSPINE", "TSPINE", "LSPINE", "SSPINE", "EXTREMITY", "HIP", "KNEE", "SHOULDER",
        "ANKLE", "FOOT", "HAND", "WRIST", "ELBOW", "FEMUR", "TIBIA", "HUMERUS", "PELVIS_BONE",
    ),
}  # fmt: skip
CT_FALLBACK_PRESET = "abdomen"  # the general soft-tissue window, when the body part says nothing

_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
# Percentiles are computed on at most this many samples: a strided subset gives the same window
# to within a grey level and keeps "auto" cheap on large radiographs.
_MAX_SAMPLES = 1 << 18


def preset_for_body_part(body_part: str | None) -> str:
    """The CT preset name for a BodyPartExamined value (the soft-tissue window when unknown)."""
    code = (body_part or "").strip().upper().replace(" ", "")
    for preset, codes in _BODY_PART_PRESET.items():
        if code in codes:
            return preset
    return CT_FALLBACK_PRESET


def check_window(window: object) -> Window:
    """Validate a user-supplied (centre, width) and return it as a :class:`Window`."""
    try:
        center, width = (float(v) for v in window)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InvalidWindow(
            f"window must be a preset name or a (centre, width) pair of numbers, not {type(window).__name__}."
        ) from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise InvalidWindow(f"window width must be a positive number (got centre {center}, width {width}).")
    return Window(center, width)


def parse_window(value: object) -> str | Window | None:
    """A window as written in a dataset record, a recipe or a command line, made ready for ``Study.render``.

    Accepts None or "" (the file's default), a preset name (``"lung"``, ``"auto"``), ``"CENTRE,WIDTH"``
    (``"-600,1500"``), a ``[centre, width]`` pair, or ``{"center": C, "width": W}`` (``centre`` also
    accepted). Preset names are checked against the file when it is opened, not here.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if "," not in text:
            return text.lower()
        centre, _, width = text.partition(",")
        try:
            return check_window((float(centre), float(width)))
        except InvalidWindow:
            raise
        except ValueError:
            raise InvalidWindow(f"window {text[:40]!r}: write a preset name or CENTRE,WIDTH, e.g. -600,1500.") from None
    if isinstance(value, dict):
        centre = value.get("center", value.get("centre"))
        width = value.get("width")
        if centre is None or width is None or set(value) - {"center", "centre", "width"}:
            raise InvalidWindow(
                'a window object needs exactly "center" and "width", e.g. {"center": 40, "width": 400}.'
            )
        return check_window((centre, width))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return check_window(value)
    raise InvalidWindow('a window is a preset name, CENTRE,WIDTH, [centre, width] or {"center": C, "width": W}.')


def window_text(window: str | Window | None) -> str:
    """The inverse of :func:`parse_window`: ``""``, a preset name, or ``"CENTRE,WIDTH"``."""
    if window is None:
        return ""
    if isinstance(window, str):
        return window
    return f"{window.center:g},{window.width:g}"


def apply_window(values: np.ndarray, window: Window, function: str = "LINEAR") -> np.ndarray:
    """Map ``values`` through ``window`` to uint8 (0 = black), per DICOM's VOI LUT functions.

    ``LINEAR`` is the DICOM default and what presets use; ``LINEAR_EXACT`` maps exactly
    ``centre - width/2 .. centre + width/2`` and is used for the percentile and full-range windows;
    ``SIGMOID`` is honoured when the file asks for it. Non-finite values come out black.
    """
    center, width = float(window.center), float(window.width)
    function = function.upper() if function.upper() in _FUNCTIONS else "LINEAR"
    # float32 is twice as fast; float64 only for windows beyond float32's range (damaged headers).
    dtype = np.float32 if max(abs(center), abs(width)) < 1e30 else np.float64
    x = np.asarray(values, dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if function == "SIGMOID":
            y = 255.0 / (1.0 + np.exp(-4.0 * (x - dtype(center)) / dtype(width)))
        else:
            if function == "LINEAR" and width > 1:
                lower, span = center - 0.5 - (width - 1) / 2, width - 1
            else:
                lower, span = center - width / 2, width
            y = x - dtype(lower)
            y *= dtype(255.0 / span)
        np.clip(y, 0, 255, out=y)
        y += dtype(0.5)
        y[~np.isfinite(y)] = 0
        return y.astype(np.uint8)


def _sample(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    step = max(1, int(math.sqrt(values.size / _MAX_SAMPLES)))
    sample = values[::step, ::step] if values.ndim >= 2 else values
    if mask is not None:
        sample = sample[mask[::step, ::step]]
    sample = np.asarray(sample, dtype=np.float32).ravel()
    return sample[np.isfinite(sample)]


def _span(low: float, high: float) -> Window:
    if not high > low:  # constant image: centre the value, show it mid-grey
        return Window(low, 1.0)
    return Window((low + high) / 2, high - low)


def percentile_window(
    values: np.ndarray, mask: np.ndarray | None = None, low: float = 0.5, high: float = 99.5
) -> Window:
    """A window spanning the ``low``..``high`` percentiles of the (unmasked, finite) values."""
    sample = _sample(values, mask)
    if sample.size == 0:
        return Window(0.0, 1.0)
    lo, hi = np.percentile(sample, [low, high])
    return _span(float(lo), float(hi))


def full_window(values: np.ndarray, mask: np.ndarray | None = None) -> Window:
    """A window spanning the minimum to maximum of the (unmasked, finite) values."""
    x = np.asarray(values)
    if mask is not None:
        x = x[mask]
    x = x[np.isfinite(x)] if x.dtype.kind == "f" else x
    if x.size == 0:
        return Window(0.0, 1.0)
    return _span(float(x.min()), float(x.max()))
