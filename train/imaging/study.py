"""The :class:`Study` interface shared by DICOM and standard images, and the render pipeline.

A study decodes one frame at a time (the last one is cached, so moving the window slider does not
decode again), chooses a window, and returns 8-bit RGB. Subclasses only say how to decode a frame
into a :class:`Frame`; the window logic lives here so both kinds behave the same.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from .errors import CorruptFile, FrameOutOfRange, ImagingError, InvalidWindow, TooLarge, UnsupportedVolume
from .window import AUTO, FULL, Window, apply_window, check_window, full_window, percentile_window

WindowArg = None | str | Window | Sequence[float]


@dataclass
class Frame:
    """One decoded frame, ready for windowing.

    ``values`` are in modality units (HU for CT) as float32, or colour channels; ``mask`` marks the
    pixels that carry image (False on padding outside the scanned field); ``default_pixels`` is the
    uint8 picture to show when no linear window applies by default (colour images, VOI LUT tables,
    standard images as training sees them); ``invert`` is MONOCHROME1 (high values dark).
    """

    values: np.ndarray
    mask: np.ndarray | None = None
    default_window: Window | None = None
    default_function: str = "LINEAR"
    default_pixels: np.ndarray | None = None
    invert: bool = False


@dataclass(eq=False, repr=False)
class Study:
    """A loaded image or DICOM object: what the viewer and the model need, and nothing identifying.

    Attributes are technical only: ``metadata`` comes from an allow-list, ``warnings`` are fixed
    sentences, ``name`` is the file's base name as the user supplied it.
    """

    kind: str  # "dicom" or "image"
    name: str
    num_frames: int
    size: tuple[int, int]  # (width, height) of one frame
    metadata: dict[str, Any]
    warnings: tuple[str, ...] = ()
    default_window: Window | None = None
    presets: dict[str, Window] = field(default_factory=dict)
    is_color: bool = False
    frame_noun: str = "frame"
    """What one of ``num_frames`` is called in labels and messages: "frame", or "slice" for series and volumes."""

    _container = "file"  # what holds the frames, in messages ("this series has 120 slices")

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[int, Frame] | None = None

    # -- subclass hook -------------------------------------------------------------------------
    def _decode(self, frame: int) -> Frame:
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------------
    @property
    def window_choices(self) -> tuple[str, ...]:
        """Names ``render`` accepts: the presets, then ``"auto"`` (percentile) and ``"full"`` (min-max)."""
        return (*self.presets, AUTO, FULL)

    def render(self, frame: int = 0, window: WindowArg = None) -> Image.Image:
        """Decode ``frame`` (only that frame) and return it windowed as an 8-bit RGB picture.

        ``window`` is None (the file's or the modality's default), a preset name from
        :attr:`window_choices`, or a ``(centre, width)`` pair in modality units (HU for CT).
        """
        with self._guard(frame):
            decoded = self._frame(frame)
            chosen, function = self._choose(decoded, window)
            if chosen is None and decoded.default_pixels is not None:
                pixels = decoded.default_pixels
            else:
                pixels = apply_window(decoded.values, chosen or Window(0, 1), function)
            if decoded.invert:
                pixels = 255 - pixels
            return _to_rgb_image(pixels)

    def resolve_window(self, frame: int = 0, window: WindowArg = None) -> Window | None:
        """The (centre, width) ``render`` would use, e.g. to show it beside the slider.

        None when the default is not a linear window (a colour image, a VOI LUT table, a standard
        image shown as training sees it).
        """
        with self._guard(frame):
            return self._choose(self._frame(frame), window)[0]

    def drop_cache(self) -> None:
        """Forget the cached decoded frame (to free memory, or to time a cold decode)."""
        with self._lock:
            self._cached = None

    @property
    def views(self) -> tuple[str, ...]:
        """Other planes this study can be shown in (a NIfTI volume: "axial", "sagittal", "coronal"); () if none."""
        return ()

    def reformat(self, view: str) -> Study:
        """The same data seen in another plane from :attr:`views` (only volumes offer any)."""
        raise UnsupportedVolume(f"{self.name}: only NIfTI volumes can be shown in another plane ({view[:20]!r} asked).")

    def close(self) -> None:
        """Release what the study holds open (an archive, a temporary file); a no-op for a single picture.

        Optional: what a study holds is also released when it is garbage-collected.
        """

    def _add_warning(self, warning: str) -> None:
        """Add a warning found while decoding (e.g. NaN voxels in a slice), once."""
        if warning not in self.warnings:
            self.warnings = (*self.warnings, warning)

    def __repr__(self) -> str:
        width, height = self.size
        modality = self.metadata.get("modality") or self.metadata.get("format") or "?"
        return f"<Study {self.kind} {modality} {width}x{height} frames={self.num_frames} name={self.name!r}>"

    __str__ = __repr__

    # -- internals -----------------------------------------------------------------------------
    @contextmanager
    def _guard(self, frame: object) -> Iterator[None]:
        """Turn anything unexpected into a CorruptFile: a damaged file must never crash the app."""
        try:
            yield
        except ImagingError:
            raise
        except MemoryError:
            raise TooLarge(f"{self.name}: not enough memory to show frame {frame}.") from None
        except Exception as exc:
            raise CorruptFile(
                f"{self.name}: {self.frame_noun} {frame} could not be displayed ({type(exc).__name__}); the "
                f"{self._container} is probably damaged. Export or copy it again."
            ) from exc

    def _frame(self, frame: int) -> Frame:
        noun = self.frame_noun
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise FrameOutOfRange(f"{self.name}: {noun} must be a whole number, not {type(frame).__name__}.")
        if not 0 <= frame < self.num_frames:
            raise FrameOutOfRange(
                f"{self.name}: {noun} {frame} does not exist; this {self._container} has {self.num_frames} "
                f"{noun}(s), numbered 0 to {self.num_frames - 1}."
            )
        with self._lock:
            if self._cached is not None and self._cached[0] == frame:
                return self._cached[1]
        decoded = self._decode(int(frame))
        with self._lock:
            self._cached = (int(frame), decoded)
        return decoded

    def _choose(self, decoded: Frame, window: WindowArg) -> tuple[Window | None, str]:
        if window is None:
            if decoded.default_window is not None:
                return decoded.default_window, decoded.default_function
            if decoded.default_pixels is not None:
                return None, "LINEAR"
            return percentile_window(decoded.values, decoded.mask), "LINEAR_EXACT"
        if isinstance(window, str):
            key = window.strip().lower()
            if key == AUTO:
                return percentile_window(decoded.values, decoded.mask), "LINEAR_EXACT"
            if key == FULL:
                return full_window(decoded.values, decoded.mask), "LINEAR_EXACT"
            for name, preset in self.presets.items():
                if name.lower() == key:
                    return preset, "LINEAR"
            raise InvalidWindow(
                f"{self.name}: unknown window {window[:40]!r}; choose one of {', '.join(self.window_choices)} "
                "or give (centre, width)."
            )
        return check_window(window), "LINEAR"


def _to_rgb_image(pixels: np.ndarray) -> Image.Image:
    if pixels.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")
    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]))
