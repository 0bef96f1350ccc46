"""A generated tree laid out like Med-R1's published ``Splits/``: its exact file names and record format.

Each question appears twice, as in Med-R1: once in ``modality/{train,test}/`` under its modality's file and
once in ``question_type/{train,test}/`` under its question type's file, the two sides drawn independently.
Records are ``{"image", "problem", "solution"}`` with the options inline and no modality field, so every
label must come from the file name. Overlap is planted on purpose, to be found: in each modality two of
the three test images are also asked about in training (same path), and one more CT test image is a byte
copy of a CT training image saved under another name (same pixels).
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

# Med-R1's file stems, as published (sic), with the label each must load as.
MODALITY_FILES = {
    "CT(Computed Tomography)": "CT",
    "MR (Mag-netic Resonance Imaging)": "MRI",
    "OCT (Optical Coherence Tomography": "OCT",
    "Microscopy Images": "Microscopy",
    "Fundus Photography": "Fundus",
    "Dermoscopy": "Dermoscopy",
    "X-Ray": "X-Ray",
    "ultrasound": "Ultrasound",
}
QUESTION_TYPE_FILES = {
    "Anatomy Identification": "Anatomy Identification",
    "Disease Diagnosis": "Disease Diagnosis",
    "Lesion Grading": "Lesion Grading",
    "Modality Recognition": "Modality Recognition",
    "Other Biological Attributes": "Biological Attribute Analysis",
}
OPTIONS = [["CT", "MRI", "X-ray", "Ultrasound"], ["Yes", "No"], ["Liver", "Kidney", "Lung"]]


def write_splits_tree(root: Path, images: bool = True) -> dict:
    """Write ``root/Splits`` (and, with ``images``, the pictures under ``root``); returns what was planted."""
    splits = root / "Splits"
    stems_m = list(MODALITY_FILES)
    stems_q = list(QUESTION_TYPE_FILES)
    files: dict[Path, list[dict]] = {}

    def add(path: Path, record: dict) -> None:
        files.setdefault(path, []).append(record)

    number = 0
    for m_index, m_stem in enumerate(stems_m):
        folder = MODALITY_FILES[m_stem]
        # Five questions per modality: image 0 asked in train and in test, image 1 likewise, image 2 in test only.
        for k, (picture, m_side) in enumerate([(0, "train"), (0, "test"), (1, "train"), (1, "test"), (2, "test")]):
            image = f"Images/{folder}/{picture}.png"
            options = OPTIONS[(m_index + k) % len(OPTIONS)]
            letter = "ABCD"[(m_index + k) % len(options)]
            problem = f"Question {number} about this image? " + ", ".join(
                f"{'ABCD'[i]}){o}" for i, o in enumerate(options)
            )
            record = {"image": image, "problem": problem, "solution": f"<answer> {letter} </answer>"}
            add(splits / "modality" / m_side / f"{m_stem}_{m_side}.json", record)
            q_stem = stems_q[number % len(stems_q)]
            q_side = "test" if number % 3 == 0 else "train"
            add(splits / "question_type" / q_side / f"{q_stem}_{q_side}.json", record)
            number += 1
    # One more CT test question whose picture is a byte copy of CT training image 1 under another name.
    copy = "Images/CT/copy-of-1.png"
    add(
        splits / "modality" / "test" / "CT(Computed Tomography)_test.json",
        {"image": copy, "problem": "Is this a copy? A)Yes, B)No", "solution": "<answer> A </answer>"},
    )
    add(
        splits / "modality" / "train" / "unknown_train.json",
        {"image": "Images/unknown/0.png", "problem": "Which? A)Yes, B)No", "solution": "<answer> B </answer>"},
    )
    for path, records in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1))
    if images:
        names = {r["image"] for records in files.values() for r in records}
        for index, name in enumerate(sorted(names - {copy})):
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (56, 56), (index * 7 % 256, 40 + index % 200, 90)).save(target)
        (root / copy).write_bytes((root / "Images/CT/1.png").read_bytes())
    return {"splits": splits, "files": sorted(files), "copy": copy}
