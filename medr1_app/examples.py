"""The example gallery: DICOM files that ship with pydicom, each with a question in Med-R1's style.

Shipped with an installed package, so the gallery works offline and on a Space without adding image
files to this repository. They are pydicom's public test objects (their header fields hold test values,
which the app never reads anyway). The questions are Med-R1's question types (modality recognition,
anatomy identification) plus one free-text question; the app does not know or claim the right answer.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .imaging import ImagingError, open_study, to_png_bytes


@dataclass(frozen=True)
class Example:
    """One gallery entry: a pydicom example name, a caption and a question with its options."""

    name: str
    caption: str
    question: str
    options: tuple[str, ...]
    frame: int = 0

    @property
    def path(self) -> Path:
        import pydicom.examples

        return Path(pydicom.examples.get_path(self.name))


EXAMPLES: tuple[Example, ...] = (
    Example(
        "ct",
        "CT slice (DICOM, HU windowing)",
        "What imaging technique was used to obtain this image?",
        ("CT", "MRI", "X-ray", "Ultrasound"),
    ),
    Example(
        "overlay",
        "MR abdomen (DICOM, file windows)",
        "Which part of the body is shown in this image?",
        ("Head", "Chest", "Abdomen", "Knee"),
    ),
    Example(
        "ybr_color",
        "Ultrasound, 30 frames (DICOM multi-frame)",
        "What imaging modality produced this image?",
        ("Ultrasound", "CT", "Fundus photography", "Dermoscopy"),
        frame=10,
    ),
    Example(
        "mr",
        "MR slice (DICOM), free-text question",
        "Describe what this image shows.",
        (),
    ),
)


def build_gallery(directory: str | Path | None = None) -> tuple[list[Example], list[tuple[str, str]]]:
    """The examples that open in this installation and their ``(thumbnail path, caption)`` gallery items.

    The two lists line up: the gallery's selected index is an index into the examples.
    """
    folder = Path(tempfile.mkdtemp(prefix="medr1-examples-", dir=directory))
    examples, items = [], []
    for example in EXAMPLES:
        try:
            study = open_study(example.path)
            picture = study.render(min(example.frame, study.num_frames - 1))
        except (ImagingError, OSError, ValueError):
            continue
        picture.thumbnail((256, 256))
        thumb = folder / f"{example.name}.png"
        thumb.write_bytes(to_png_bytes(picture))
        examples.append(example)
        items.append((str(thumb), example.caption))
    return examples, items
