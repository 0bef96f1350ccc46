"""The example gallery and the demo dataset, read from the repository's ``assets/`` folder.

``assets/examples.json`` lists each example's picture, caption and question; ``assets/README.md`` gives
the source and licence of every file. DICOM examples are named ``pydicom:NAME``: the example files that
ship inside the installed pydicom package, so the gallery works offline and on a Space without copies
of them here. The others are paths inside ``assets/``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from train.imaging import ImagingError, open_study, to_png_bytes

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PYDICOM_PREFIX = "pydicom:"


def assets_dir() -> Path:
    """The ``assets/`` folder; a clear error where medr1 was installed without it (not from a clone)."""
    if not (ASSETS / "examples.json").is_file():
        raise FileNotFoundError(
            f"medr1's assets folder is missing ({ASSETS}): install medr1 from a clone of its repository "
            "(`pip install -e .`), which keeps assets/ next to the code."
        )
    return ASSETS


def demo_gallery_dir() -> Path:
    """Four held-out questions of the Fine-tune demo's task (medr1 JSONL and PNGs), shown in the gallery.

    The demo's training and held-out questions are written from their seeds on first use
    (``train.demo_model``); these four are the first held-out ones, so the demo model, after a run in the
    Fine-tune tab, can be asked about pictures it never trained on. See ``assets/README.md``.
    """
    return assets_dir() / "demo"


@dataclass(frozen=True)
class Example:
    """One gallery entry: its picture (``pydicom:NAME`` or a path in ``assets/``), caption and question."""

    image: str
    caption: str
    question: str
    options: tuple[str, ...]
    frame: int = 0

    @property
    def path(self) -> Path:
        if self.image.startswith(PYDICOM_PREFIX):
            import pydicom.examples

            return Path(pydicom.examples.get_path(self.image.removeprefix(PYDICOM_PREFIX)))
        return assets_dir() / self.image


def load_examples(path: str | Path | None = None) -> tuple[Example, ...]:
    """The examples listed in ``assets/examples.json`` (or ``path``), in order."""
    data = json.loads(Path(path or assets_dir() / "examples.json").read_text())
    return tuple(
        Example(item["image"], item["caption"], item["question"], tuple(item["options"]), item.get("frame", 0))
        for item in data
    )


def build_gallery(directory: str | Path | None = None) -> tuple[list[Example], list[tuple[str, str]]]:
    """The examples that open in this installation and their ``(thumbnail path, caption)`` gallery items.

    The two lists line up: the gallery's selected index is an index into the examples.
    """
    folder = Path(tempfile.mkdtemp(prefix="medr1-examples-", dir=directory))
    examples, items = [], []
    for index, example in enumerate(load_examples()):
        try:
            study = open_study(example.path)
            picture = study.render(min(example.frame, study.num_frames - 1))
        except (ImagingError, OSError, ValueError):
            continue
        picture.thumbnail((256, 256))
        thumb = folder / f"example-{index}.png"
        thumb.write_bytes(to_png_bytes(picture))
        examples.append(example)
        items.append((str(thumb), example.caption))
    return examples, items
