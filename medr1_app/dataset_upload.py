"""Uploaded training data: unpack safely, then validate with the training kit's own loaders.

A Fine-tune tab on a shared server takes files from strangers. A ZIP is unpacked only after every
entry has been checked (no absolute paths, no ``..``, no links, bounded count and sizes, no absurd
compression ratios), and bytes are counted while writing since the sizes in a ZIP header can lie: the
checks live in :mod:`train.archives`, shared with the imaging kit's DICOM series in a ZIP.
The dataset is then read by ``train.data`` (the same loader the training run will use), and every
picture is made once as training will make it (DICOM frames and windows included), so the validation
report shows exactly what training will see, bad pictures named by their record.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from train import archives
from train.archives import ArchiveError
from train.data import DataError, LoadResult, dataset_files, load_many, picture_problems

MAX_FILES = archives.DATASET_LIMITS.max_files
MAX_MEMBER_BYTES = archives.DATASET_LIMITS.max_member_bytes
MAX_TOTAL_BYTES = archives.DATASET_LIMITS.max_total_bytes
MAX_RATIO = archives.DATASET_LIMITS.max_ratio
DATA_SUFFIXES = (".json", ".jsonl")


class UploadError(ValueError):
    """An upload that was refused; nothing of it was written outside the run folder."""


def extract_zip(
    archive: str | Path,
    destination: str | Path,
    max_files: int = MAX_FILES,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Path:
    """Unpack ``archive`` into ``destination`` after checking every entry (:func:`train.archives.extract_zip`)."""
    try:
        return archives.extract_zip(archive, destination, max_files, max_member_bytes, max_total_bytes)
    except ArchiveError as exc:
        raise UploadError(str(exc)) from exc


def receive_upload(upload: str | Path, run_dir: str | Path) -> Path:
    """Copy or unpack an uploaded dataset (JSONL, JSON or ZIP) into ``run_dir/data``; returns that folder."""
    upload, data_dir = Path(upload), Path(run_dir) / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    try:
        if zipfile.is_zipfile(upload):
            extract_zip(upload, data_dir)
        elif upload.suffix.lower() in DATA_SUFFIXES:
            data_dir.mkdir(parents=True)
            shutil.copyfile(upload, data_dir / upload.name)
        else:
            raise UploadError(
                f"{upload.name}: upload a .jsonl or .json dataset, or a .zip holding one with its images."
            )
    except UploadError:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return data_dir


@dataclass
class ValidationReport:
    """What training will see: the loader's result plus images that will not decode."""

    loaded: LoadResult
    files: list[Path]
    image_problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.loaded.samples) and not self.image_problems

    def markdown(self) -> str:
        summary = self.loaded.summary()
        lines = [f"**{summary['samples']} questions ready** from {', '.join(f.name for f in self.files)}."]
        for title, key in (("Modality", "modalities"), ("Question type", "question_types")):
            lines += ["", f"| {title} | Questions |", "| --- | ---: |"]
            lines += [f"| {name} | {count} |" for name, count in summary[key].items()]
        if summary["rejected"]:
            lines += ["", f"**{summary['rejected']} records rejected:**"]
            lines += [f"- {problem}" for problem in summary["problems"][:50]]
        if self.image_problems:
            lines += ["", f"**{len(self.image_problems)} records' pictures cannot be read:**"]
            lines += [f"- {problem}" for problem in self.image_problems[:50]]
        return "\n".join(lines)


def validate_dataset(data_dir: str | Path, check_decode: bool = True) -> ValidationReport:
    """Load every dataset file under ``data_dir`` as training would, and make each record's picture once."""
    data_dir = Path(data_dir)
    try:
        files = dataset_files(data_dir)
    except DataError as exc:
        raise UploadError(str(exc)) from exc
    try:
        loaded = load_many(files, image_root=None, on_error="skip")
    except DataError as exc:
        raise UploadError(str(exc)) from exc
    report = ValidationReport(loaded=loaded, files=files)
    if check_decode:
        report.image_problems = [str(problem) for problem in picture_problems(loaded.samples)]
    return report
