"""The files of one upload: a ZIP read in place, a folder, or several files dropped at once.

A DICOM study arrives as hundreds of files. :class:`FileSet` gives the series scan one view of all three
forms: numbered members with a size, a stream opener (so a header can be read without inflating a whole
ZIP entry) and a bounded ``read``. A ZIP is never unpacked to disk: its entries are checked by
:mod:`train.archives` (traversal, links, bombs, lying sizes) and read one at a time.

Member names stay inside this module. The folders of a PACS export are often named after the patient
("DOE^JANE/CT HEAD 2024-03-15/IM0001"), so everything outside refers to a member by its number
("file 17 of 300"); names are used here only to skip operating-system litter (``__MACOSX``, ``.DS_Store``).
"""

from __future__ import annotations

import io
import os
import weakref
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from train.archives import IMAGING_LIMITS, ArchiveError, checked_members, open_zip, read_member

from .errors import ImageNotFound, TooLarge, UnsafeArchive

MAX_FOLDER_FILES = IMAGING_LIMITS.max_files
_LITTER = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True, eq=False)
class Member:
    """One file of a :class:`FileSet`: its number, its size, and how to read it (never its name)."""

    number: int
    """1-based position in the set: what messages call it ("file 17 of 300")."""
    size: int
    _open: Callable[[], BinaryIO]
    _read: Callable[[], bytes]
    path: Path | None = None
    """Set for files on disk, so a multi-frame file can be decoded frame by frame from it."""

    def open(self) -> BinaryIO:
        """A fresh binary stream on the member (a ZIP entry is inflated as far as it is read)."""
        return self._open()

    def read(self) -> bytes:
        """The member's bytes (bounded by :data:`train.archives.IMAGING_LIMITS` for a ZIP entry)."""
        return self._read()


class FileSet(Sequence[Member]):
    """The members of one upload, in a fixed order, and whatever must stay open to read them."""

    def __init__(self, name: str, kind: str, members: list[Member], closer: Callable[[], None] | None = None) -> None:
        self.name = name
        self.kind = kind  # "zip", "folder" or "files"
        self._members = members
        self._finalizer = weakref.finalize(self, closer) if closer else None

    def __len__(self) -> int:
        return len(self._members)

    def __getitem__(self, index):  # type: ignore[override]
        return self._members[index]

    def close(self) -> None:
        """Close the archive (also done when the set is garbage-collected)."""
        if self._finalizer is not None:
            self._finalizer()

    def __repr__(self) -> str:
        return f"<FileSet {self.kind} {len(self)} files name={self.name!r}>"


def _litter(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p in _LITTER or p.startswith("._") for p in parts)


def zip_set(source: str | Path | bytes, name: str) -> FileSet:
    """The entries of a ZIP (a path or its bytes), checked up front and read in place, one at a time."""
    try:
        bundle = open_zip(source if isinstance(source, bytes) else Path(source), name)
        infos = checked_members(bundle, IMAGING_LIMITS)
    except ArchiveError as exc:
        raise UnsafeArchive(f"{name}: {_lower_first(str(exc))}") from None
    infos = [info for info in infos if not _litter(info.filename)]
    count = len(infos)

    def member(number: int, info: zipfile.ZipInfo) -> Member:
        def read() -> bytes:
            try:
                return read_member(bundle, info, number, count, IMAGING_LIMITS)
            except ArchiveError as exc:
                raise UnsafeArchive(f"{name}: {_lower_first(str(exc))}") from None

        return Member(number, info.file_size, lambda: bundle.open(info), read)

    return FileSet(name, "zip", [member(n, info) for n, info in enumerate(infos, 1)], bundle.close)


def _disk_member(number: int, path: Path, size: int) -> Member:
    return Member(number, size, lambda: path.open("rb"), path.read_bytes, path)


def folder_set(folder: str | Path, name: str) -> FileSet:
    """Every file under ``folder`` (sub-folders included, links to folders not followed), sorted."""
    folder = Path(folder)
    paths: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not _litter(d))
        paths.extend(Path(root) / f for f in sorted(files) if not _litter(f))
        if len(paths) > MAX_FOLDER_FILES:
            raise TooLarge(f"{name}: the folder holds more than {MAX_FOLDER_FILES:,} files; open one study's folder.")
    members = []
    for path in paths:
        try:
            if path.is_file():
                members.append(_disk_member(len(members) + 1, path, path.stat().st_size))
        except OSError:  # unreadable entries are simply not part of the study
            continue
    return FileSet(name, "folder", members)


def files_set(sources: Sequence[str | Path | bytes], name: str) -> FileSet:
    """Several files given at once (paths or bytes), e.g. a drag-and-drop of a series' files."""
    members = []
    for number, source in enumerate(sources, 1):
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            members.append(Member(number, len(data), lambda d=data: io.BytesIO(d), lambda d=data: d))
            continue
        path = Path(source)
        if not path.is_file():
            raise ImageNotFound(f"{name}: file {number} of {len(sources)} was not found. Add the files again.")
        members.append(_disk_member(number, path, path.stat().st_size))
    return FileSet(name, "files", members)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text.startswith("The ") else text


__all__ = ["FileSet", "Member", "files_set", "folder_set", "zip_set"]
