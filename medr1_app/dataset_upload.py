"""Uploaded training data: unpack safely, then validate with the training kit's own loaders.

A Fine-tune tab on a shared server takes files from strangers. A ZIP is unpacked only after every
entry has been checked (no absolute paths, no ``..``, no links, bounded count and sizes, no absurd
compression ratios), and bytes are counted while writing since the sizes in a ZIP header can lie.
The dataset is then read by ``train.data`` (the same loader the training run will use), and every
picture is made once as training will make it (DICOM frames and windows included), so the validation
report shows exactly what training will see, bad pictures named by their record.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from train.data import DataError, LoadResult, dataset_files, load_many, picture_problems

MAX_FILES = 5000
MAX_MEMBER_BYTES = 50 * 1024**2
MAX_TOTAL_BYTES = 2 * 1024**3
MAX_RATIO = 200  # uncompressed / compressed; real PNG/JPEG/JSON archives stay far below
DATA_SUFFIXES = (".json", ".jsonl")


class UploadError(ValueError):
    """An upload that was refused; nothing of it was written outside the run folder."""


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UploadError(f"The ZIP entry {name!r} has an absolute path: refused. Zip the folder's contents instead.")
    if any(part == ".." for part in path.parts):
        raise UploadError(f"The ZIP entry {name!r} points outside its folder ('..'): refused.")
    return path


def extract_zip(
    archive: str | Path,
    destination: str | Path,
    max_files: int = MAX_FILES,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Path:
    """Unpack ``archive`` into ``destination`` after checking every entry; returns ``destination``.

    Checks happen before anything is written, so a refused archive leaves nothing behind.
    """
    destination = Path(destination).resolve()
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadError(f"{Path(archive).name}: not a readable ZIP file ({exc}).") from exc
    with bundle:
        members = [m for m in bundle.infolist() if not m.is_dir()]
        if len(members) > max_files:
            raise UploadError(f"The ZIP holds {len(members):,} files; at most {max_files:,} are accepted.")
        total = 0
        for member in members:
            _safe_name(member.filename)
            if stat.S_ISLNK(member.external_attr >> 16):
                raise UploadError(f"The ZIP entry {member.filename!r} is a symbolic link: refused.")
            if member.file_size > max_member_bytes:
                raise UploadError(
                    f"The ZIP entry {member.filename!r} is {member.file_size / 1024**2:.0f} MB; "
                    f"each file may be at most {max_member_bytes / 1024**2:.0f} MB."
                )
            if member.compress_size and member.file_size / member.compress_size > MAX_RATIO:
                raise UploadError(f"The ZIP entry {member.filename!r} is compressed {MAX_RATIO}x or more: refused.")
            total += member.file_size
        if total > max_total_bytes:
            raise UploadError(
                f"The ZIP unpacks to {total / 1024**3:.1f} GB; at most {max_total_bytes / 1024**3:.0f} GB."
            )
        destination.mkdir(parents=True, exist_ok=True)
        written = 0
        for member in members:
            target = (destination / _safe_name(member.filename)).resolve()
            if destination not in target.parents:
                raise UploadError(f"The ZIP entry {member.filename!r} points outside its folder: refused.")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with bundle.open(member) as source, target.open("wb") as sink:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        if written > max_total_bytes or sink.tell() + len(chunk) > max_member_bytes:
                            raise UploadError(f"The ZIP entry {member.filename!r} is larger than its header says.")
                        sink.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise UploadError(f"The ZIP entry {member.filename!r} is damaged ({exc}): refused.") from exc
    return destination


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
