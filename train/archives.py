"""ZIP archives from strangers: every entry checked before anything is read or written.

Two callers take ZIPs from people they do not know: the Fine-tune and Evaluate tabs unpack an uploaded
dataset (:func:`extract_zip`), and :mod:`train.imaging` reads a DICOM series straight out of a ZIP, one
slice at a time, without unpacking it (:func:`checked_members` then :func:`read_member`). Both get the
same checks: no absolute paths, no ``..``, no links, a bounded number of entries, bounded sizes, no
absurd compression ratios, and bytes counted while reading since the sizes in a ZIP header can lie.

Entries are named by their number ("entry 12 of 340"), never by their path: the folders of a PACS
export are often named after the patient, so a refusal message must not repeat them.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""How a ZIP file starts: a local file header, or the end record of an empty archive."""
_CHUNK = 1 << 20
_RATIO_FLOOR = 1 << 20
"""Members below this size are never refused for their compression ratio: a blank 512 x 512 slice or an
empty JSON compresses a thousandfold and is harmless; a bomb needs size."""


class ArchiveError(ValueError):
    """A ZIP that was refused or cannot be read; the message names entries by number only."""


@dataclass(frozen=True)
class ZipLimits:
    """How much a ZIP may hold: entries, bytes per entry, bytes in all, and compression ratio."""

    max_files: int = 5000
    max_member_bytes: int = 50 * 1024**2
    max_total_bytes: int = 2 * 1024**3
    max_ratio: int = 200  # uncompressed / compressed; real PNG/JPEG/JSON/DICOM archives stay far below


DATASET_LIMITS = ZipLimits()
"""Uploaded datasets (JSON plus pictures), unpacked to the run folder."""
IMAGING_LIMITS = ZipLimits(max_files=20_000, max_member_bytes=256 * 1024**2, max_total_bytes=16 * 1024**3)
"""DICOM studies read in place, one entry at a time: a whole-body CT has thousands of slices, and an
enhanced multi-frame file holds a series in one entry (read into memory when opened, hence its bound)."""


def is_zip(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes) starts like a ZIP archive."""
    return head[:4] in ZIP_MAGIC


def _entry(number: int, count: int) -> str:
    return f"entry {number} of {count}"


def _safe_name(name: str, where: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"The ZIP's {where} has an absolute path: refused. Zip the folder's contents instead.")
    if any(part == ".." for part in path.parts):
        raise ArchiveError(f"The ZIP's {where} points outside its folder ('..'): refused.")
    return path


def open_zip(archive: str | Path | bytes | BinaryIO, name: str = "The ZIP") -> zipfile.ZipFile:
    """Open a ZIP from a path, its bytes or a binary stream; :class:`ArchiveError` if it is not one."""
    source = io.BytesIO(archive) if isinstance(archive, (bytes, bytearray)) else archive
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        # The library's message can quote an entry's name: only its type is shown.
        raise ArchiveError(f"{name}: not a readable ZIP file ({type(exc).__name__}); copy or zip it again.") from None


def checked_members(bundle: zipfile.ZipFile, limits: ZipLimits = DATASET_LIMITS) -> list[zipfile.ZipInfo]:
    """The archive's file entries (folders left out), after every check; raises on the first bad entry.

    The order is the archive's own, so "entry N" in a message is stable for a given file.
    """
    members = [m for m in bundle.infolist() if not m.is_dir()]
    count = len(members)
    if count > limits.max_files:
        raise ArchiveError(f"The ZIP holds {count:,} files; at most {limits.max_files:,} are accepted.")
    total = 0
    for number, member in enumerate(members, 1):
        where = _entry(number, count)
        _safe_name(member.filename, where)
        if stat.S_ISLNK(member.external_attr >> 16):
            raise ArchiveError(f"The ZIP's {where} is a symbolic link: refused.")
        if member.file_size > limits.max_member_bytes:
            raise ArchiveError(
                f"The ZIP's {where} is {member.file_size / 1024**2:.0f} MB; "
                f"each file may be at most {limits.max_member_bytes / 1024**2:.0f} MB."
            )
        if (
            member.file_size > _RATIO_FLOOR
            and member.compress_size
            and member.file_size / member.compress_size > limits.max_ratio
        ):
            raise ArchiveError(f"The ZIP's {where} is compressed {limits.max_ratio}x or more: refused.")
        total += member.file_size
    if total > limits.max_total_bytes:
        raise ArchiveError(
            f"The ZIP unpacks to {total / 1024**3:.1f} GB; at most {limits.max_total_bytes / 1024**3:.0f} GB."
        )
    return members


def _copy_counted(source: BinaryIO, sink: BinaryIO, limit: int, where: str) -> int:
    written = 0
    while chunk := source.read(_CHUNK):
        written += len(chunk)
        if written > limit:
            raise ArchiveError(f"The ZIP's {where} is larger than its header says: refused.")
        sink.write(chunk)
    return written


def read_member(
    bundle: zipfile.ZipFile, member: zipfile.ZipInfo, number: int, count: int, limits: ZipLimits = IMAGING_LIMITS
) -> bytes:
    """One entry's bytes, read with a byte count so a lying header cannot make it larger than announced.

    ``number`` and ``count`` say which entry it is in messages (names are never shown).
    """
    where = _entry(number, count)
    sink = io.BytesIO()
    try:
        with bundle.open(member) as source:
            _copy_counted(source, sink, min(member.file_size, limits.max_member_bytes), where)
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise ArchiveError(f"The ZIP's {where} is damaged ({type(exc).__name__}); copy or zip it again.") from None
    return sink.getvalue()


def extract_zip(
    archive: str | Path,
    destination: str | Path,
    max_files: int = DATASET_LIMITS.max_files,
    max_member_bytes: int = DATASET_LIMITS.max_member_bytes,
    max_total_bytes: int = DATASET_LIMITS.max_total_bytes,
) -> Path:
    """Unpack ``archive`` into ``destination`` after checking every entry; returns ``destination``.

    Checks happen before anything is written, so a refused archive leaves nothing behind (a member that
    turns out larger than its header says stops the unpacking; the caller removes the partial folder).
    """
    limits = ZipLimits(max_files, max_member_bytes, max_total_bytes, DATASET_LIMITS.max_ratio)
    destination = Path(destination).resolve()
    with open_zip(archive, Path(archive).name) as bundle:
        members = checked_members(bundle, limits)
        destination.mkdir(parents=True, exist_ok=True)
        written, count = 0, len(members)
        for number, member in enumerate(members, 1):
            where = _entry(number, count)
            target = (destination / _safe_name(member.filename, where)).resolve()
            if destination not in target.parents:
                raise ArchiveError(f"The ZIP's {where} points outside its folder: refused.")
            target.parent.mkdir(parents=True, exist_ok=True)
            budget = min(limits.max_member_bytes, limits.max_total_bytes - written)
            try:
                with bundle.open(member) as source, target.open("wb") as sink:
                    written += _copy_counted(source, sink, budget, where)
            except ArchiveError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                raise ArchiveError(f"The ZIP's {where} is damaged ({type(exc).__name__}): refused.") from None
    return destination


__all__ = [
    "DATASET_LIMITS",
    "IMAGING_LIMITS",
    "ZIP_MAGIC",
    "ArchiveError",
    "ZipLimits",
    "checked_members",
    "extract_zip",
    "is_zip",
    "open_zip",
    "read_member",
]
