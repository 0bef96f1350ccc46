"""Datasets: OmniMedVQA's raw QA files, Med-R1's split files and medr1's own JSONL, into one record type.

Every loader turns its records into :class:`Sample` (question, 2-6 options, gold letter, modality,
question type, image path, and for DICOM an optional frame and window; for a series or volume the slice
and, when the ZIP, folder or 4-D NIfTI holds several, which series). A record that cannot be used
(image missing, gold answer not among the options, an unknown field that is probably a typo, a window
that is neither a preset nor centre/width) is reported with its file and record id and then skipped,
or stops the load with ``on_error="raise"``; it is never dropped silently.

Pictures are read through :func:`train.imaging.model_picture` (PNG, JPEG... and DICOM by content, with
the record's frame and window), the function the app's viewer uses, so training and evaluation see the
pixels a clinician sees.

Med-R1's split files carry no labels: :func:`labels_from_path` reads the modality or question type from
their published names (``CT(Computed Tomography)_test.json``, ``Other Biological Attributes_train.json``),
and a question found in several files (Med-R1 lists each twice, by modality and by question type) is
kept once with both labels, so a whole ``Splits/`` folder is one dataset.

Splits follow the paper (train on one modality or question type, test on all) but keep every image on
one side: Med-R1's published splits share images between train and test, which inflates test scores
(``medr1-data audit`` measures by how much).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image

from train.imaging import ImagingError, PixelBounds, model_picture, parse_window
from train.imaging.window import window_text
from train.protocol import (
    LETTERS,
    MAX_OPTIONS,
    MIN_OPTIONS,
    build_prompt,
    format_completion,
    get_prompt,
    parse_response,
    split_options,
)

logger = logging.getLogger(__name__)

FORMATS = ("auto", "jsonl", "omnimedvqa", "medr1")

# The paper's eight modalities and five question types, with the spellings found in OmniMedVQA.
MODALITIES = ("CT", "MRI", "X-Ray", "Ultrasound", "Dermoscopy", "Fundus", "OCT", "Microscopy")
QUESTION_TYPES = (
    "Modality Recognition",
    "Anatomy Identification",
    "Disease Diagnosis",
    "Lesion Grading",
    "Biological Attribute Analysis",
)
_MODALITY_KEYS = [
    ("oct", "OCT"),
    ("optical coherence", "OCT"),
    ("ct", "CT"),
    ("computed tomography", "CT"),
    ("mr", "MRI"),
    ("magnetic", "MRI"),
    ("x-ray", "X-Ray"),
    ("xray", "X-Ray"),
    ("x ray", "X-Ray"),
    ("ultrasound", "Ultrasound"),
    ("us", "Ultrasound"),
    ("dermoscopy", "Dermoscopy"),
    ("derm", "Dermoscopy"),
    ("fundus", "Fundus"),
    ("microscopy", "Microscopy"),
]
_QUESTION_TYPE_KEYS = [
    ("modality", "Modality Recognition"),
    ("anatomy", "Anatomy Identification"),
    ("disease", "Disease Diagnosis"),
    ("lesion", "Lesion Grading"),
    ("grading", "Lesion Grading"),
    ("biological", "Biological Attribute Analysis"),
    ("attribute", "Biological Attribute Analysis"),
]
_ABBREVIATIONS = {
    "MR": "Modality Recognition",
    "AI": "Anatomy Identification",
    "DD": "Disease Diagnosis",
    "LG": "Lesion Grading",
    "OBA": "Biological Attribute Analysis",
}


def _lookup(value: str, keys: list[tuple[str, str]], canonical: Sequence[str]) -> str | None:
    text = value.strip()
    for name in canonical:
        if text.casefold() == name.casefold():
            return name
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", text.casefold())
    for key, name in keys:
        if (
            (" " in key and key in " ".join(words))
            or key in words
            or (len(key) > 3 and any(w.startswith(key) for w in words))
        ):
            return name
    return None


def normalise_modality(value: str | None) -> str | None:
    """Map OmniMedVQA's spellings (``"CT(Computed Tomography)"``, ``"MR (Mag-netic ..."``) to the paper's names.

    Unknown values are kept as given (stripped) so user-defined modalities still work.
    """
    if value is None or not str(value).strip():
        return None
    return _lookup(str(value), _MODALITY_KEYS, MODALITIES) or str(value).strip()


def normalise_question_type(value: str | None) -> str | None:
    """Map ``"Other Biological Attributes"``, ``"OBA"``... to the paper's five question types."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    return _ABBREVIATIONS.get(text.upper()) or _lookup(text, _QUESTION_TYPE_KEYS, QUESTION_TYPES) or text


@dataclass(frozen=True)
class Sample:
    """One multiple-choice (or free-text) question about one image."""

    id: str
    image: str
    """Absolute or root-relative path of the image file."""
    question: str
    options: list[str]
    answer: str
    """Gold option letter (A-F); the gold text for a free-text question (no options)."""
    modality: str | None = None
    question_type: str | None = None
    source: str = ""
    """File the record came from, for error messages."""
    frame: int = 0
    """Frame of a multi-frame file (DICOM cine, multi-page TIFF); 0 for single pictures."""
    window: str = ""
    """DICOM window as text: "" (the file's default), a preset name, or "CENTRE,WIDTH"."""
    series: str = ""
    """When ``image`` is a ZIP or folder of DICOM files or a 4-D NIfTI holding several: which one ("" = the only
    one; a listing index as text, or a Series Instance UID). ``frame`` is then the slice."""

    @property
    def answer_text(self) -> str:
        return self.options[LETTERS.index(self.answer)] if self.options else self.answer

    def picture(self, bounds: PixelBounds | None = None) -> Image.Image:
        """The exact picture the model receives for this question (see :func:`train.imaging.model_picture`)."""
        return model_picture(self.image, self.frame, parse_window(self.window), bounds, series=self.series or None)


@dataclass(frozen=True)
class RecordProblem:
    """Why one record was not used."""

    file: str
    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, record {self.record_id}: {self.reason}"


class DataError(ValueError):
    """A dataset that cannot be used as given; the message names the file and record."""


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    problems: list[RecordProblem] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts per modality and question type, and the rejected records with reasons."""
        return {
            "samples": len(self.samples),
            "modalities": dict(Counter(s.modality or "unknown" for s in self.samples).most_common()),
            "question_types": dict(Counter(s.question_type or "unknown" for s in self.samples).most_common()),
            "rejected": len(self.problems),
            "problems": [str(p) for p in self.problems],
        }


# Fields every format may add: which frame of a multi-frame file (or slice of a series or volume: "slice" is
# an alias), the DICOM window to show it in, and which series of a ZIP/folder/4-D NIfTI holding several.
_PICTURE_FIELDS = {"frame", "slice", "window", "series"}
_JSONL_FIELDS = {"id", "image", "question", "options", "answer", "modality", "question_type"} | _PICTURE_FIELDS
_OMNI_FIELDS = (
    {
        "question_id",
        "question_type",
        "question",
        "gt_answer",
        "image_path",
        "modality_type",
        "modality",
        "dataset",
    }
    | {f"option_{letter}" for letter in LETTERS}
    | _PICTURE_FIELDS
)
_MEDR1_FIELDS = {"id", "image", "problem", "solution", "modality", "question_type"} | _PICTURE_FIELDS


def _read_records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            records = json.loads(text)
        elif stripped.startswith("{") and path.suffix != ".jsonl" and "\n{" not in stripped:
            records = [json.loads(text)]
        else:
            records = []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}, line {number}: not valid JSON ({exc.msg}).") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
    if not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a list of JSON objects (one per question).")
    return records


def detect_format(record: dict[str, Any]) -> str:
    """Tell the three formats apart by their fields."""
    if "gt_answer" in record or "question_id" in record:
        return "omnimedvqa"
    if "problem" in record and "solution" in record:
        return "medr1"
    if "question" in record and "answer" in record:
        return "jsonl"
    raise DataError(
        f"Unrecognised record with fields {sorted(record)}: expected medr1 JSONL (image, question, options, "
        "answer), OmniMedVQA (question_id, question, gt_answer, option_A...) or Med-R1 (image, problem, solution)."
    )


def _gold_letter(gold: str, options: list[str]) -> str:
    """The letter of ``gold``, given as a letter or as an option's exact text (case and spacing aside)."""
    gold = str(gold).strip()
    if len(gold) == 1 and gold.upper() in LETTERS[: len(options)]:
        return gold.upper()
    normal = " ".join(gold.split()).casefold()
    matches = [i for i, o in enumerate(options) if " ".join(o.split()).casefold() == normal]
    if len(matches) == 1:
        return LETTERS[matches[0]]
    raise ValueError(f"gold answer {gold!r} matches none of the options {options}")


def _check_options(options: list[str]) -> None:
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ValueError(f"{len(options)} options; a question needs {MIN_OPTIONS} to {MAX_OPTIONS}")
    if any(not o.strip() for o in options):
        raise ValueError("an option is empty")


def _from_jsonl(record: dict[str, Any]) -> dict[str, Any]:
    options = record.get("options") or []
    if isinstance(options, dict):
        options = [options[k] for k in sorted(options)]
    options = [str(o).strip() for o in options]
    if options:
        _check_options(options)
        answer = _gold_letter(record["answer"], options)
    else:
        answer = str(record["answer"]).strip()
    return {
        "image": record["image"],
        "question": str(record["question"]),
        "options": options,
        "answer": answer,
        "modality": record.get("modality"),
        "question_type": record.get("question_type"),
    }


def _from_omnimedvqa(record: dict[str, Any]) -> dict[str, Any]:
    options = [str(record[f"option_{letter}"]).strip() for letter in LETTERS if record.get(f"option_{letter}")]
    _check_options(options)
    return {
        "image": record["image_path"],
        "question": str(record["question"]),
        "options": options,
        "answer": _gold_letter(record["gt_answer"], options),
        "modality": record.get("modality_type", record.get("modality")),
        "question_type": record.get("question_type"),
    }


def _from_medr1(record: dict[str, Any]) -> dict[str, Any]:
    question, options = split_options(str(record["problem"]))
    _check_options(options)
    parsed = parse_response(str(record["solution"]), options=options, style="no_think")
    if parsed.letter is None:
        raise ValueError(f"solution {record['solution']!r} names no option among {options}")
    return {
        "image": record["image"],
        "question": question,
        "options": options,
        "answer": parsed.letter,
        "modality": record.get("modality"),
        "question_type": record.get("question_type"),
    }


_CONVERTERS = {
    "jsonl": (_from_jsonl, _JSONL_FIELDS, "id"),
    "omnimedvqa": (_from_omnimedvqa, _OMNI_FIELDS, "question_id"),
    "medr1": (_from_medr1, _MEDR1_FIELDS, "id"),
}


def _name_in_path(path: Path, names: Sequence[str]) -> str | None:
    """A modality or question type spelled out in the file's path (``.../CT.json``, ``Lesion_Grading/``)."""

    def plain(text: str) -> str:
        return re.sub(r"[\s_\-]+", "", text.casefold())

    for part in reversed(path.with_suffix("").parts):
        for name in names:
            if plain(part) == plain(name):
                return name
    return None


# A split side at the end of a file name (Med-R1's "CT(Computed Tomography)_test"), and the folders that say
# which of the two a file name is (Med-R1's Splits/modality/..., Splits/question_type/..., prompts/q_type/...).
_SIDE_SUFFIX = re.compile(r"(?:^|[\s_\-]+)(?:train|test|val|validation)$", re.I)
_AXIS_FOLDERS = {
    "modality": "modality",
    "modalities": "modality",
    "questiontype": "question_type",
    "qtype": "question_type",
}


def split_side(path: str | Path) -> str | None:
    """'train' or 'test' when the file's name or one of its folders says so (``X_test.json``, ``train/X.json``)."""
    path = Path(path)
    match = re.search(r"(?:^|[\s_\-])(train|test)$", path.stem, re.I)
    if match:
        return match.group(1).lower()
    for part in reversed(path.parent.parts):
        if part.casefold() in ("train", "test"):
            return part.casefold()
    return None


def labels_from_path(path: str | Path) -> tuple[str | None, str | None]:
    """(modality, question type) that a dataset file's path names, for records that carry neither.

    The file name is read through the same normalisation as a record's field, so Med-R1's published names
    work as they are: ``CT(Computed Tomography)_test.json`` is CT, ``MR (Mag-netic Resonance
    Imaging)_train.json`` MRI, ``OCT (Optical Coherence Tomography_test.json`` OCT, ``Other Biological
    Attributes_test.json`` Biological Attribute Analysis. A ``modality/`` or ``question_type/`` folder above
    the file says which of the two its name is; without one, a name that could be either (``MR``: MRI or
    Modality Recognition) labels nothing. ``unknown_train.json`` stays unlabelled (counted as unknown).
    Folders above the file count only when they are a name exactly (``CT/``, ``Lesion_Grading/``).
    """
    path = Path(path)

    def plain(text: str) -> str:
        return re.sub(r"[\s_\-]+", "", text.casefold())

    axis = next((_AXIS_FOLDERS[plain(p)] for p in reversed(path.parent.parts) if plain(p) in _AXIS_FOLDERS), None)
    name = _SIDE_SUFFIX.sub("", path.stem).strip()
    modality = question_type = None
    if name:
        modality = normalise_modality(name) if axis != "question_type" else None
        question_type = normalise_question_type(name) if axis != "modality" else None
        modality = modality if modality in MODALITIES else None
        question_type = question_type if question_type in QUESTION_TYPES else None
        if modality and question_type:
            modality = question_type = None
    folders = path.parent
    return (
        modality or _name_in_path(folders, MODALITIES),
        question_type or _name_in_path(folders, QUESTION_TYPES),
    )


def load_samples(
    path: str | Path,
    image_root: str | Path | None = None,
    fmt: str = "auto",
    on_error: str = "skip",
    modality: str | None = None,
    question_type: str | None = None,
    check_images: bool = True,
    frame: int = 0,
    window: object = None,
) -> LoadResult:
    """Load one dataset file (JSON list or JSON lines) into samples, reporting every bad record.

    ``image_root`` is where relative image paths start (default: the file's folder). ``modality`` and
    ``question_type`` fill records that lack them (Med-R1's split files carry neither; when not given
    they are read from the file's path by :func:`labels_from_path`, e.g.
    ``Splits/modality/train/CT(Computed Tomography)_train.json``). ``frame`` and ``window`` are the
    dataset-level defaults for records that name no ``frame``/``window`` of their own (a window is a preset
    name, ``"CENTRE,WIDTH"``, ``[centre, width]`` or ``{"center": C, "width": W}``).
    """
    if on_error not in ("skip", "raise"):
        raise ValueError("on_error must be 'skip' or 'raise'.")
    path = Path(path)
    result = LoadResult()
    total = 0
    for _, _, item in iter_records(path, image_root, fmt, modality, question_type, check_images, frame, window):
        total += 1
        if isinstance(item, Sample):
            result.samples.append(item)
            continue
        if on_error == "raise":
            raise DataError(f"{item}. Fix the record, or pass on_error='skip' to leave it out.")
        result.problems.append(item)
    if result.problems:
        logger.warning("%s: %d of %d records skipped:", path, len(result.problems), total)
        for problem in result.problems[:20]:
            logger.warning("  %s", problem)
        if len(result.problems) > 20:
            logger.warning("  ... and %d more", len(result.problems) - 20)
    return result


def iter_records(
    path: str | Path,
    image_root: str | Path | None = None,
    fmt: str = "auto",
    modality: str | None = None,
    question_type: str | None = None,
    check_images: bool = True,
    frame: int = 0,
    window: object = None,
) -> Iterator[tuple[int, dict[str, Any], Sample | RecordProblem]]:
    """Each record of a file as (index, the record as written, its :class:`Sample` or why it is unusable).

    What :func:`load_samples` is made of, for tools that need the records themselves (``medr1-data audit
    --resplit`` writes them back unchanged).
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown dataset format {fmt!r}: use one of {', '.join(FORMATS)}.")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Dataset file not found: {path}.")
    root = Path(image_root) if image_root is not None else path.parent
    records = _read_records(path)
    if not records:
        raise DataError(f"{path}: the file holds no records.")
    detected = detect_format(records[0]) if fmt == "auto" else fmt
    convert, known, id_field = _CONVERTERS[detected]
    path_modality, path_question_type = labels_from_path(path)

    for index, record in enumerate(records):
        record_id = str(record.get(id_field, index))
        try:
            unknown = sorted(set(record) - known)
            extra_options = [k for k in unknown if re.fullmatch(r"option_[G-Z]", k)]
            if extra_options:
                raise ValueError(
                    f"{MAX_OPTIONS + len(extra_options)} options ({', '.join(extra_options)} after option_F): "
                    f"medr1 handles {MAX_OPTIONS} at most (letters A to F)"
                )
            if unknown:
                raise ValueError(f"unknown field(s) {unknown}; known fields are {sorted(known)}")
            fields = convert(record)
            image = Path(str(fields["image"]).removeprefix("file://"))
            image = image if image.is_absolute() else root / image
            if check_images and not image.exists():  # a folder of DICOM files is an image too
                raise ValueError(f"image not found: {image}")
            picture_frame = _frame(_slice_field(record, frame))
            picture_series = _series(record.get("series"))
            picture_window = window_text(parse_window(record.get("window", window)))
        except KeyError as exc:
            yield index, record, RecordProblem(str(path), record_id, f"missing field {exc.args[0]!r}")
        except ValueError as exc:
            yield index, record, RecordProblem(str(path), record_id, str(exc))
        else:
            sample = Sample(
                id=record_id,
                image=str(image),
                question=" ".join(fields["question"].split()),
                options=fields["options"],
                answer=fields["answer"],
                modality=normalise_modality(fields["modality"] or modality or path_modality),
                question_type=normalise_question_type(fields["question_type"] or question_type or path_question_type),
                source=str(path),
                frame=picture_frame,
                window=picture_window,
                series=picture_series,
            )
            yield index, record, sample


def _frame(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValueError(f"frame must be a whole number from 0, not {str(value)[:20]!r}")
    return int(value)


def _slice_field(record: dict[str, Any], default: object) -> object:
    if "slice" in record and "frame" in record and record["slice"] != record["frame"]:
        raise ValueError('give "frame" or "slice" (the same thing for a series or volume), not both')
    return record.get("slice", record.get("frame", default))


def _series(value: object) -> str:
    """A record's ``"series"``: a listing index (0, 1...) or a Series Instance UID, as text; "" when absent."""
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = str(value).strip() if isinstance(value, str) else ""
    if text and len(text) <= 64 and all(c.isdigit() or c == "." for c in text):
        return text
    raise ValueError(f"series must be an index from 0 or a Series Instance UID, not {str(value)[:20]!r}")


def load_many(paths: Iterable[str | Path], **kwargs: Any) -> LoadResult:
    """Load several files (e.g. a directory of OmniMedVQA QA files) into one result.

    A question found in several files is kept once, with every label the files give it (see
    :func:`merge_repeats`): Med-R1's ``Splits/`` holds each question twice, once under ``modality/`` and
    once under ``question_type/``, so the whole tree loads as one set of questions that have both.
    """
    total = LoadResult()
    for path in paths:
        part = load_samples(path, **kwargs)
        total.samples.extend(part.samples)
        total.problems.extend(part.problems)
    total.samples = merge_repeats(total.samples)
    return total


def merge_repeats(samples: Sequence[Sample]) -> list[Sample]:
    """One sample per question asked in several files (same image, question, options and answer).

    The first file's record is kept, with the modality or question type it lacks taken from the others.
    Repeats within one file are left as they are (that file's own business).
    """
    kept: list[Sample] = []
    first: dict[tuple, int] = {}
    merged = 0
    for sample in samples:
        key = (sample.image, sample.question, tuple(sample.options), sample.answer, sample.frame, sample.window)
        index = first.get(key)
        if index is None or kept[index].source == sample.source:
            first.setdefault(key, len(kept))
            kept.append(sample)
            continue
        have = kept[index]
        kept[index] = replace(
            have,
            modality=have.modality or sample.modality,
            question_type=have.question_type or sample.question_type,
        )
        merged += 1
    if merged:
        logger.info("%d question(s) found in more than one file were kept once, with the labels of each.", merged)
    return kept


def dataset_files(path: str | Path) -> list[Path]:
    """A file, or every ``*.json``/``*.jsonl`` under a directory (sorted, for determinism)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file())
        if not files:
            raise DataError(f"{path}: no .json or .jsonl files in this folder.")
        return files
    return [path]


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_samples(
    samples: Sequence[Sample], test_fraction: float = 0.2, seed: int = 42, group_by_image: bool = True
) -> tuple[list[Sample], list[Sample]]:
    """Deterministic train/test split; with ``group_by_image`` no image appears on both sides.

    Each image (or question) is assigned by a seeded hash, so the split does not depend on file
    order and adding records does not move existing ones across the split.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError("test_fraction must be in [0, 1).")
    train, test = [], []
    for sample in samples:
        key = sample.image if group_by_image else f"{sample.source}:{sample.id}"
        (test if _unit_hash(key, seed) < test_fraction else train).append(sample)
    return train, test


def select(
    samples: Iterable[Sample], modalities: Sequence[str] | None = None, question_types: Sequence[str] | None = None
) -> list[Sample]:
    """Keep samples of the given modalities / question types (names normalised; None keeps all)."""
    wanted_m = {normalise_modality(m) for m in modalities} if modalities else None
    wanted_q = {normalise_question_type(q) for q in question_types} if question_types else None
    return [
        s
        for s in samples
        if (wanted_m is None or s.modality in wanted_m) and (wanted_q is None or s.question_type in wanted_q)
    ]


def to_hf_dataset(
    samples: Sequence[Sample],
    prompt_style: str = "think",
    bounds: PixelBounds | None = None,
    with_targets: bool = False,
    prompt: str | None = None,
):
    """A ``datasets.Dataset`` in TRL's VLM layout: conversational ``prompt`` plus an ``image`` column.

    ``prompt`` names the instruction text (``train.protocol.PROMPTS``; default ``medr1``); it travels in the
    ``prompt_name`` column so the rewards read each answer in the layout that text asked for.
    ``with_targets`` adds SFT's ``completion`` column: the well-formed answer block for the gold letter.

    Pictures are made lazily (on access, through :meth:`Sample.picture`: the file's frame in its window,
    at the model's input size for ``bounds``) so a dataset of tens of thousands of scans does not sit in
    memory; the other columns reach the reward functions.
    """
    from datasets import Dataset

    if not samples:
        raise DataError("No samples to train or evaluate on: check the dataset path and the filters.")
    columns = (
        "id", "image_path", "frame", "window", "series", "question", "options", "answer", "modality", "question_type",
    )  # fmt: skip
    prompt = get_prompt(prompt).name
    rows: dict[str, list] = {key: [] for key in (*columns, "prompt", "prompt_style", "prompt_name")}
    for s in samples:
        for key, value in asdict(s).items():
            if key == "image":
                rows["image_path"].append(value)
            elif key in rows:
                rows[key].append(value)
        text = build_prompt(s.question, s.options, prompt_style, prompt)
        rows["prompt"].append([{"role": "user", "content": text}])
        rows["prompt_style"].append(prompt_style)
        rows["prompt_name"].append(prompt)
        if with_targets:
            target = format_completion("", s.answer, style="no_think")
            rows.setdefault("completion", []).append([{"role": "assistant", "content": target}])
    dataset = Dataset.from_dict(rows)
    dataset.set_transform(AttachPictures(bounds))
    return dataset


@dataclass(frozen=True)
class AttachPictures:
    """The dataset's on-access transform: each row's picture, made from its file, frame, window and series.

    A module-level class rather than a closure because ``datasets`` fingerprints the transform by
    pickling it: an instance pickles by reference in microseconds, where a closure took about 12 s to
    fail (and fall back to a random fingerprint) at the start of every training run.
    """

    bounds: PixelBounds | None = None

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        # GRPO's sampler asks for each question num_generations times in one batch: decode each picture once.
        keys = list(zip(batch["image_path"], batch["frame"], batch["window"], batch["series"], strict=True))
        loaded = {
            key: model_picture(key[0], key[1], parse_window(key[2]), self.bounds, series=key[3] or None)
            for key in dict.fromkeys(keys)
        }
        batch["image"] = [loaded[key] for key in keys]
        return batch


def picture_problems(samples: Sequence[Sample], bounds: PixelBounds | None = None) -> list[RecordProblem]:
    """Make every distinct picture once, as training will; one problem per record whose picture fails.

    A damaged DICOM, a frame past the end or a window preset the file does not offer is reported with
    the record that names it, like any other bad record, before a run is started on the data.
    """
    failures: dict[tuple[str, int, str, str], str] = {}
    problems = []
    for s in samples:
        key = (s.image, s.frame, s.window, s.series)
        if key not in failures:
            try:
                s.picture(bounds)
                failures[key] = ""
            except ImagingError as exc:
                failures[key] = str(exc)
        if failures[key]:
            problems.append(RecordProblem(s.source, s.id, failures[key]))
    return problems


def load_and_split(data_args: Any, check_images: bool = True) -> tuple[LoadResult, list[Sample], list[Sample]]:
    """Load every file of ``data_args.dataset_path`` and split it by image: (all loaded, train, test).

    What training and evaluation share (``DataArguments``): the files, their format, the image root,
    bad-record handling, the dataset-level frame and window, and the image-disjoint split, so a model
    evaluated with ``--split test`` is scored on exactly the images its training run held out.
    """
    if not data_args.dataset_path:
        raise DataError("No dataset given: pass --dataset_path FILE_OR_FOLDER (medr1 JSONL, OmniMedVQA or Med-R1).")
    files = [f for p in data_args.dataset_path for f in dataset_files(p)]
    loaded = load_many(
        files,
        image_root=data_args.image_root,
        fmt=data_args.dataset_format,
        on_error=data_args.on_bad_record,
        check_images=check_images,
        frame=data_args.frame,
        window=data_args.window,
    )
    train, test = split_samples(loaded.samples, data_args.test_fraction, data_args.split_seed)
    return loaded, train, test
