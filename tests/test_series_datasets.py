"""Dataset records that name a DICOM series (ZIP or folder) or a NIfTI volume, with a slice and a window.

Training and evaluation read them through ``Sample.picture`` (``model_picture``), the function the app's
viewer uses, so a record's picture is the slice a clinician sees for the same file, series, slice and window.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from train.data import load_samples, picture_problems, split_samples, to_hf_dataset
from train.imaging import PixelBounds, model_picture, open_cached, open_study, parse_window
from train.imaging.synthetic import ct_series, write_nifti, write_series

TINY = PixelBounds(3136, 12544)
QUESTION = {"question": "Which organ?", "options": ["Brain", "Liver"], "answer": "A", "modality": "CT"}


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("volumes")
    main = ct_series(40, rows=32, columns=32)
    short = ct_series(6, rows=32, columns=32, series_number=5, study_uid=main[0].StudyInstanceUID)
    write_series([*main, *short], folder / "study.zip")
    write_series(main, folder / "export" / "CT")
    hu = np.full((32, 32, 20), -1000, np.int16)
    hu[8:24, 8:24] = 40
    write_nifti(folder / "ct.nii.gz", hu, zooms=(1.0, 1.0, 2.0))
    dwi = np.stack([np.full((16, 16, 4), 100 * (t + 1), np.int16) for t in range(2)], axis=-1)
    write_nifti(folder / "dwi.nii", dwi)
    records = [
        {"id": "zip-lung", "image": "study.zip", "series": 0, "slice": 20, "window": "lung"},
        {"id": "zip-short", "image": "study.zip", "series": "1", "frame": 3},
        {"id": "folder", "image": "export", "frame": 7, "window": [40, 400]},
        {"id": "nifti", "image": "ct.nii.gz", "slice": 10, "window": "brain"},
        {"id": "dwi", "image": "dwi.nii", "slice": 2, "series": 1},
    ]
    (folder / "data.jsonl").write_text("".join(json.dumps({**r, **QUESTION}) + "\n" for r in records))
    return folder


def test_records_name_a_series_or_volume_a_slice_and_a_window(volumes):
    samples = {s.id: s for s in load_samples(volumes / "data.jsonl").samples}
    assert [(s.frame, s.series, s.window) for s in samples.values()] == [
        (20, "0", "lung"), (3, "1", ""), (7, "", "40,400"), (10, "", "brain"), (2, "1", ""),
    ]  # fmt: skip
    opened = {
        "zip-lung": open_study(volumes / "study.zip", series=0),
        "zip-short": open_study(volumes / "study.zip", series=1),
        "folder": open_study(volumes / "export"),
        "nifti": open_study(volumes / "ct.nii.gz"),
        "dwi": open_study(volumes / "dwi.nii", series=1),
    }
    for key, study in opened.items():
        sample = samples[key]
        expected = model_picture(study, sample.frame, parse_window(sample.window))
        assert np.array_equal(np.asarray(sample.picture()), np.asarray(expected)), key
    assert picture_problems(list(samples.values())) == []


def test_the_training_dataset_hands_over_the_same_slices(volumes):
    samples = load_samples(volumes / "data.jsonl").samples
    dataset = to_hf_dataset(samples, bounds=TINY)
    assert dataset.column_names[:5] == ["id", "image_path", "frame", "window", "series"]
    for row, sample in zip(dataset, samples, strict=True):
        assert np.array_equal(np.asarray(row["image"]), np.asarray(sample.picture(TINY))), sample.id


def test_bad_series_slices_and_fields_are_reported_per_record(volumes, tmp_path):
    lines = [
        {"id": "which-series", "image": str(volumes / "study.zip"), "slice": 2},
        {"id": "no-such-series", "image": str(volumes / "study.zip"), "series": 7},
        {"id": "past-the-end", "image": str(volumes / "export"), "slice": 40},
        {"id": "which-volume", "image": str(volumes / "dwi.nii")},
        {"id": "both", "image": str(volumes / "export"), "slice": 2, "frame": 3},
        {"id": "odd-series", "image": str(volumes / "export"), "series": "CT head"},
        {"id": "fine", "image": str(volumes / "export"), "slice": 39},
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({**line, **QUESTION}) + "\n" for line in lines))
    loaded = load_samples(bad)
    rejected = {p.record_id: p.reason for p in loaded.problems}
    assert set(rejected) == {"both", "odd-series"}
    assert "not both" in rejected["both"] and "index from 0 or a Series Instance UID" in rejected["odd-series"]
    problems = {p.record_id: p.reason for p in picture_problems(loaded.samples)}
    assert set(problems) == {"which-series", "no-such-series", "past-the-end", "which-volume"}
    assert problems["which-series"].startswith("study.zip holds 2 series: choose one.")
    assert "there is no series 7" in problems["no-such-series"]
    assert "slice 40 does not exist; this series has 40 slice(s), numbered 0 to 39" in problems["past-the-end"]
    assert problems["which-volume"].startswith("dwi.nii holds 2 volumes: choose one.")


def test_every_slice_of_a_study_stays_on_one_side_of_the_split(volumes):
    samples = load_samples(volumes / "data.jsonl").samples
    slices = [replace(s, id=f"{s.id}-{i}", frame=i) for s in samples for i in range(5)]
    sides = set()
    for seed in range(12):
        train, test = split_samples(slices, test_fraction=0.5, seed=seed)
        assert not {s.image for s in train} & {s.image for s in test}
        sides.add((len(train), len(test)))
    assert len(sides) > 1, "the seeds moved whole studies between the sides"


def test_a_path_to_a_series_or_volume_is_kept_open_between_pictures(volumes):
    first = open_cached(volumes / "study.zip", series=0)
    assert open_cached(volumes / "study.zip", series=0) is first
    assert open_cached(volumes / "study.zip", series=1) is not first
    assert open_cached(volumes / "ct.nii.gz") is open_cached(str(volumes / "ct.nii.gz"))
