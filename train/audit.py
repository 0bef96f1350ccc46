"""``medr1-data audit``: how much of a test set its training set has already seen, and a re-split without it.

Med-R1's published ``Splits/`` share images between train and test (396 of 3,169 CT test images are also in
the CT training file), so a score on its test files partly measures memory. This tool shows that for any
datasets whose files say their side (``*_train.json`` / ``*_test.json``, or ``train/`` and ``test/``
folders), per modality and per question type:

* **by path**: test images whose path also appears among the training questions;
* **by pixels**: test images whose decoded pixels equal a training image's (the same picture saved
  under another name or in another format), when the images are on disk;
* **by question**: test questions asked word for word (same options) about the same image in training,
  and test questions whose text and options appear in training about any image (templated questions make
  this common; it is context, not leakage).

"Same group" compares a test group with the training questions of the same modality or question type
(what a model trained on that group saw); "any" with every training question of the tree (a question type
experiment trains on one type, but the same image may come with another type's question).

``--resplit OUT`` writes every file again under ``OUT`` (same names, same record format, records
unchanged) with each image, identified by its pixels where readable and by its path otherwise, on one
side only, drawn by a seeded hash so that each file keeps about its share of test questions.

Nothing from the records is printed except counts and the files' own names; no image or question text
leaves the machine.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from train.data import (
    DataError,
    Sample,
    dataset_files,
    iter_records,
    split_side,
)
from train.imaging import ImagingError, open_study, parse_window

logger = logging.getLogger(__name__)

SIDES = ("train", "test")


@dataclass(frozen=True)
class Question:
    """One record of an audited file, with the keys it is compared by."""

    file: Path
    index: int
    record: dict[str, Any]
    side: str
    tree: str
    """The folder a train/test pair lives in (``Splits/modality``); questions are compared within it."""
    stem: str
    """The file's name without its side (``CT(Computed Tomography)``): files pair up by (tree, stem)."""
    modality: str | None
    question_type: str | None
    path_key: str
    image_key: str
    """Pixel hash where the picture could be read, else the path: the unit a re-split keeps on one side."""
    text_key: str
    has_pixels: bool


@dataclass
class Audit:
    questions: list[Question]
    unreadable_records: list[tuple[Path, int, dict[str, Any], str]]
    """(file, index, record, why) of records that are not questions medr1 can read (--resplit keeps their side)."""
    paths_as_written: bool
    """No image was found on disk and no --image_root given: paths were compared as the records write them."""
    pixels_checked: bool


def _tree_and_stem(path: Path) -> tuple[str, str]:
    parent = path.parent
    if parent.name.casefold() in SIDES:
        parent = parent.parent
    stem = re.sub(r"(?:^|[\s_\-]+)(?:train|test)$", "", path.stem, flags=re.I).strip()
    return str(parent), stem


def _text_key(sample: Sample) -> str:
    return " ".join(sample.question.casefold().split()) + " || " + " | ".join(o.casefold() for o in sample.options)


def pixel_hash(sample: Sample) -> str | None:
    """SHA-256 of the picture's decoded pixels (size included), as the model's viewer renders them."""
    try:
        study = open_study(sample.image)
        picture = study.render(sample.frame, parse_window(sample.window))
    except (ImagingError, OSError):
        return None
    digest = hashlib.sha256(f"{picture.mode}:{picture.size}:".encode())
    digest.update(picture.tobytes())
    return digest.hexdigest()


def collect(
    paths: Iterable[str | Path], image_root: str | Path | None = None, pixels: bool = True, fmt: str = "auto"
) -> Audit:
    """Read every file under ``paths`` with its side, tree and keys; a file whose side is unclear is refused."""
    files = [f for p in paths for f in dataset_files(p)]
    if not files:
        raise DataError("No dataset files given.")
    sides = {f: split_side(f) for f in files}
    unclear = [str(f) for f, side in sides.items() if side is None]
    if unclear:
        raise DataError(
            f"Cannot tell training from test data for {', '.join(unclear[:5])}"
            + (f" and {len(unclear) - 5} more" if len(unclear) > 5 else "")
            + ": name files *_train / *_test (as Med-R1 does) or put them in train/ and test/ folders."
        )
    read: list[tuple[Path, int, dict[str, Any], Sample]] = []
    unreadable_records = []
    for file in files:
        for index, record, item in iter_records(file, image_root, fmt, check_images=False):
            if isinstance(item, Sample):
                read.append((file, index, record, item))
            else:
                unreadable_records.append((file, index, record, item.reason))
    as_written = image_root is None and not any(Path(s.image).is_file() for _, _, _, s in read)
    hashes: dict[tuple[str, int, str], str | None] = {}
    questions = []
    for file, index, record, sample in read:
        if as_written:
            try:
                path_key = Path(sample.image).relative_to(file.parent).as_posix()
            except ValueError:
                path_key = Path(sample.image).as_posix()
        else:
            path_key = os.path.normpath(sample.image)
        digest = None
        if pixels and not as_written:
            key = (sample.image, sample.frame, sample.window)
            if key not in hashes:
                hashes[key] = pixel_hash(sample)
            digest = hashes[key]
        tree, stem = _tree_and_stem(file)
        questions.append(
            Question(
                file=file,
                index=index,
                record=record,
                side=sides[file],
                tree=tree,
                stem=stem,
                modality=sample.modality,
                question_type=sample.question_type,
                path_key=f"{path_key}#{sample.frame}",
                image_key=f"pixels:{digest}" if digest else f"path:{path_key}#{sample.frame}",
                text_key=_text_key(sample),
                has_pixels=digest is not None,
            )
        )
    return Audit(questions, unreadable_records, as_written, pixels and not as_written)


# --------------------------------------------------------------------------------------------------
# The overlap table

COLUMNS = (
    "Tree",
    "Group",
    "Train questions",
    "Test questions",
    "Test images",
    "In same group's train: by path",
    "by pixels",
    "In any train (path or pixels)",
    "Same question, same image",
    "Same question text",
)


def _share(count: int, total: int) -> str:
    return f"{count} ({100 * count / total:.1f}%)" if total else "0"


def overlap_rows(audit: Audit) -> list[dict[str, Any]]:
    """One row per (tree, modality or question type) plus one per tree: counts as a user would quote them."""
    by_tree: dict[str, list[Question]] = defaultdict(list)
    for q in audit.questions:
        by_tree[q.tree].append(q)
    rows = []
    for tree in sorted(by_tree):
        items = by_tree[tree]
        train_all = [q for q in items if q.side == "train"]
        any_paths = {q.path_key for q in train_all}
        any_images = {q.image_key for q in train_all}
        groups: list[tuple[str, Any]] = [("all", lambda q: True)]
        for axis, label in (("modality", "modality"), ("question_type", "question type")):
            values = sorted({getattr(q, axis) or "unknown" for q in items})
            if values != ["unknown"]:
                groups += [(f"{label}: {v}", lambda q, a=axis, v=v: (getattr(q, a) or "unknown") == v) for v in values]
        for name, member in groups:
            train = [q for q in train_all if member(q)]
            test = [q for q in items if q.side == "test" and member(q)]
            # Test images are counted as files (distinct paths); pixels tell when two files are one picture.
            test_files: dict[str, set[str]] = defaultdict(set)
            for q in test:
                test_files[q.path_key].add(q.image_key)
            paths = {q.path_key for q in train}
            images = {q.image_key for q in train if q.has_pixels}
            pairs = {(q.image_key, q.text_key) for q in train}
            texts = {q.text_key for q in train}
            total = len(test_files)
            checked = audit.pixels_checked and any(q.has_pixels for q in test)
            row = {
                "Tree": tree,
                "Group": name,
                "Train questions": len(train),
                "Test questions": len(test),
                "Test images": total,
                "In same group's train: by path": _share(sum(p in paths for p in test_files), total),
                "by pixels": (
                    _share(sum(bool(keys & images) for keys in test_files.values()), total) if checked else "n/a"
                ),
                "In any train (path or pixels)": _share(
                    sum(p in any_paths or bool(keys & any_images) for p, keys in test_files.items()), total
                ),
                "Same question, same image": _share(sum((q.image_key, q.text_key) in pairs for q in test), len(test)),
                "Same question text": _share(sum(q.text_key in texts for q in test), len(test)),
            }
            rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(columns))) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str] = COLUMNS) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------------------------------
# Re-split


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def resplit_sides(audit: Audit, seed: int = 42) -> list[Question]:
    """Every question with a new side: one side per image, each file pair keeping about its test share.

    An image's chance of going to test is the mean test share of the file pairs its questions come from
    (weighted by question count), drawn by a seeded hash of the image, so the result does not depend on
    file order and every image, wherever it is asked about, lands on exactly one side.
    """
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for q in audit.questions:
        counts[(q.tree, q.stem)][q.side] += 1
    share = {key: c["test"] / (c["train"] + c["test"]) for key, c in counts.items()}
    weights: dict[str, list[float]] = defaultdict(list)
    for q in audit.questions:
        weights[q.image_key].append(share[(q.tree, q.stem)])
    side = {k: "test" if _unit_hash(k, seed) < sum(w) / len(w) else "train" for k, w in weights.items()}
    return [replace(q, side=side[q.image_key]) for q in audit.questions]


def _twin(file: Path, side: str) -> Path:
    """The file that holds ``side`` of ``file``'s pair: side folder and ``_train``/``_test`` suffix swapped."""
    other = "test" if side == "train" else "train"
    name = re.sub(rf"(?i)(^|[\s_\-]){other}(?=\.)", lambda m: m.group(1) + side, file.name)
    parent = file.parent
    if parent.name.casefold() == other:
        parent = parent.parent / side
    return parent / name


def write_resplit(audit: Audit, out_dir: str | Path, seed: int = 42) -> tuple[list[Question], list[Path]]:
    """Write the re-split under ``out_dir`` (same relative names and record format); returns it and the files."""
    out_dir = Path(out_dir)
    moved = resplit_sides(audit, seed)
    files = sorted({q.file for q in audit.questions} | {f for f, *_ in audit.unreadable_records})
    if not files:
        raise DataError("Nothing to re-split.")
    root = Path(os.path.commonpath([str(f.parent.resolve()) for f in files]))
    if root.name.casefold() in SIDES:
        root = root.parent
    targets: dict[Path, list[dict[str, Any]]] = defaultdict(list)
    by_pair_side = {(q.tree, q.stem, q.side): q.file for q in audit.questions}
    for q in sorted(moved, key=lambda q: (str(q.file), q.index)):
        source = by_pair_side.get((q.tree, q.stem, q.side)) or _twin(q.file, q.side)
        targets[source].append(q.record)
    for file, _, record, _ in audit.unreadable_records:
        targets[file].append(record)
    written = []
    for source, records in sorted(targets.items()):
        target = out_dir / source.resolve().relative_to(root)
        if target.resolve() in {f.resolve() for f in files}:
            raise DataError(f"--resplit {out_dir} would overwrite the input {source}: choose another folder.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        else:
            text = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return moved, written


def proportion_rows(before: Sequence[Question], after: Sequence[Question]) -> list[dict[str, Any]]:
    """Each file pair's test share before and after a re-split."""

    def shares(questions: Sequence[Question]) -> dict[tuple[str, str], Counter]:
        counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for q in questions:
            counts[(q.tree, q.stem)][q.side] += 1
        return counts

    old, new = shares(before), shares(after)
    rows = []
    for key in sorted(old):
        o, n = old[key], new[key]
        rows.append(
            {
                "Tree": key[0],
                "File": key[1] or "(unnamed)",
                "Questions": o["train"] + o["test"],
                "Test share before": f"{100 * o['test'] / (o['train'] + o['test']):.1f}%",
                "Test share after": f"{100 * n['test'] / (n['train'] + n['test']):.1f}%",
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Command line


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medr1-data audit",
        description="Train/test overlap (by image path, pixels and question text) per modality and question type.",
    )
    parser.add_argument("datasets", nargs="+", help="Files or folders (a whole Med-R1 Splits/ folder works).")
    parser.add_argument("--image_root", "--image-root", help="Folder relative image paths start from.")
    parser.add_argument("--format", dest="fmt", default="auto", help="auto, jsonl, omnimedvqa or medr1.")
    parser.add_argument("--no_pixels", "--no-pixels", action="store_true", help="Compare paths and text only.")
    parser.add_argument("--csv", help="Also write the table as CSV to this file.")
    parser.add_argument("--resplit", metavar="OUT", help="Write an image-disjoint re-split under OUT.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the re-split (default 42).")
    return parser


def run(argv: Sequence[str]) -> list[dict[str, Any]]:
    args = make_parser().parse_args(list(argv))
    audit = collect(args.datasets, args.image_root, pixels=not args.no_pixels, fmt=args.fmt)
    sides = Counter(q.side for q in audit.questions)
    print(
        f"{len(audit.questions)} questions ({sides['train']} train, {sides['test']} test) from "
        f"{len({q.file for q in audit.questions})} files; {len(audit.unreadable_records)} record(s) not readable as "
        "questions."
    )
    if audit.paths_as_written:
        print(
            "No image was found on disk: paths are compared as the records write them (pass --image_root to "
            "compare the files themselves, and their pixels)."
        )
    elif not audit.pixels_checked:
        print("Pixels not compared (--no_pixels).")
    rows = overlap_rows(audit)
    print(markdown(rows))
    if args.csv:
        print(f"Table: {write_csv(rows, args.csv)}")
    if args.resplit:
        moved, written = write_resplit(audit, args.resplit, args.seed)
        after = replace(audit, questions=moved)
        print(f"Re-split written to {args.resplit} ({len(written)} files, seed {args.seed}):")
        columns = ("Tree", "File", "Questions", "Test share before", "Test share after")
        print(markdown(proportion_rows(audit.questions, moved), columns))
        print("Overlap after the re-split:")
        print(markdown(overlap_rows(after)))
        if audit.unreadable_records:
            print(f"{len(audit.unreadable_records)} unreadable record(s) were written back on their own side.")
    return rows


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(sys.argv[1:] if argv is None else argv)
    except (DataError, OSError) as exc:
        sys.exit(f"medr1-data audit: {exc}")


if __name__ == "__main__":
    main()
