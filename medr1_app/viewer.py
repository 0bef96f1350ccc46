"""The viewer's logic: window choices, slider ranges, and which pixel bounds size the picture.

Kept apart from the Gradio wiring so it can be tested directly. The picture the viewer shows is
always :func:`train.imaging.model_picture`'s output, the function training and evaluation use: the
study rendered with the chosen window, then resized exactly as the model's processor would. What the
clinician sees is what the model gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from train.imaging import AUTO, FULL, PixelBounds, Study, WindowArg
from train.model_io import pixel_bounds

from .models import LoadedModel, ModelSpec

DEFAULT = "default"
CUSTOM = "custom"


def window_choices(study: Study | None) -> list[tuple[str, str]]:
    """``(label, value)`` pairs for the Window dropdown; empty for colour pictures (no windowing)."""
    if study is None or study.is_color:
        return [("Default", DEFAULT)]
    choices = [("Default (from the file or modality)", DEFAULT)]
    for name, window in study.presets.items():
        label = f"{name.capitalize()} (C {window.center:g} / W {window.width:g})"
        choices.append((label, name))
    choices += [("Auto (0.5–99.5 percentile)", AUTO), ("Full range (min–max)", FULL), ("Custom (sliders)", CUSTOM)]
    return choices


def window_arg(preset: str | None, center: float | None, width: float | None) -> WindowArg:
    """What ``Study.render`` takes for the dropdown's value and the sliders."""
    if preset in (None, "", DEFAULT):
        return None
    if preset == CUSTOM:
        return (float(center if center is not None else 0.0), float(width if width and width > 0 else 1.0))
    return preset


@dataclass(frozen=True)
class SliderRange:
    """Centre and width slider bounds for a frame, in modality units (HU for CT)."""

    low: float
    high: float
    max_width: float
    step: float


def slider_range(study: Study, frame: int = 0) -> SliderRange:
    """Centre spans the frame's values; width up to twice that span (CT: about -1024..3071 HU)."""
    full = study.resolve_window(frame, FULL)
    if full is None:
        return SliderRange(0, 255, 512, 1)
    low, high = full.center - full.width / 2, full.center + full.width / 2
    span = max(high - low, 1.0)
    step = 1.0 if span > 20 else round(span / 200, 6) or 0.01
    return SliderRange(low, high, 2 * span, step)


def bounds_for(spec: ModelSpec | None, loaded: LoadedModel | None) -> PixelBounds:
    """The pixel bounds the model will use: from the loaded model, else its files, else Med-R1's."""
    if spec is not None and loaded is not None and loaded.spec.key == spec.key:
        return loaded.bounds
    if spec is not None:
        for folder in (spec.adapter, spec.source):
            if folder and Path(folder).is_dir():
                found = pixel_bounds(folder)
                if found:
                    return found
    return PixelBounds()


def view_record(study: Study, frame: int, window: WindowArg, picture: Image.Image) -> dict[str, Any]:
    """How the picture was made, for the export: technical facts only (the slice index, never a file name)."""
    resolved = study.resolve_window(frame, window)
    series = getattr(study, "info", None)
    place = {"slice": frame, "slices": study.num_frames} if study.frame_noun == "slice" else {}
    return {
        "kind": study.kind,
        "frame": frame,
        "frames": study.num_frames,
        **place,
        **({"series": series.label} if series is not None else {}),
        **({"view": study.metadata["view"]} if study.metadata.get("view") else {}),
        "window": window if isinstance(window, str) or window is None else "custom",
        "window_center": None if resolved is None else resolved.center,
        "window_width": None if resolved is None else resolved.width,
        "original_size": list(study.size),
        "model_input_size": list(picture.size),
    }
