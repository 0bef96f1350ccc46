"""Dataset loading (OmniMedVQA, Med-R1 splits, medr1 JSONL), bad-record reporting and splits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from train.data import (
    DataError,
    load_samples,
    normalise_modality,
    normalise_question_type,
    select,
    split_samples,
    to_hf_dataset,
)
from train.imaging import PixelBounds


def write_images(root: Path, names: list[str]) -> None:
    for index, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (index * 20 % 255, 80, 160)).save(path)


@pytest.fixture
def medr1_split(tmp_path):
    """A Med-R1 split file as published: image, problem (options inline), solution; 4- and 2-option questions."""
    names = ["Images/Chest CT Scan/test/000139 (9).png", "Images/Chest CT Scan/test/000140.png", "Images/x/1.png"]
    write_images(tmp_path, names)
    records = [
        {
            "image": names[0],
            "problem": "What imaging technique is employed for obtaining this image? A)Mammogram, "
            "B)Positron emission tomography (PET), C)CT, D)Fluoroscopy",
            "solution": "<answer> C </answer>",
        },
        {
            "image": names[1],
            "problem": "Is there a nodule in this image? A)Yes, B)No",
            "solution": "<answer> B </answer>",
        },
        {"image": names[2], "problem": "Is this normal? A)Yes, B)No", "solution": "<answer> D </answer>"},
    ]
    path = tmp_path / "Splits" / "modality" / "test" / "CT.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(records, indent=1))
    return path


def test_loads_med_r1_split_files(medr1_split, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = load_samples(medr1_split, image_root=tmp_path)
    first, second = result.samples
    assert first.question == "What imaging technique is employed for obtaining this image?"
    assert first.options == ["Mammogram", "Positron emission tomography (PET)", "CT", "Fluoroscopy"]
    assert (first.answer, first.answer_text) == ("C", "CT")
    assert (second.options, second.answer) == (["Yes", "No"], "B")
    assert first.modality == "CT"  # read from the split file's name
    assert Path(first.image).is_file()
    # The third record's gold answer D is not among its two options: reported, named, and skipped.
    assert len(result.problems) == 1
    assert "CT.json, record 2" in str(result.problems[0]) and "names no option" in str(result.problems[0])
    assert "record 2" in caplog.text


def test_raise_mode_names_the_file_and_record(medr1_split, tmp_path):
    with pytest.raises(DataError, match=r"CT\.json, record 2: solution .* names no option"):
        load_samples(medr1_split, image_root=tmp_path, on_error="raise")


def omnimedvqa_records() -> list[dict]:
    return [
        {
            "dataset": "Chest CT Scan",
            "question_id": "Chest CT Scan_0",
            "question_type": "Modality Recognition",
            "question": "What imaging technique was employed to obtain this picture?",
            "gt_answer": "CT",
            "image_path": "Images/ct/0.png",
            "option_A": "Mammogram",
            "option_B": "PET",
            "option_C": "CT",
            "option_D": "Fluoroscopy",
            "modality_type": "CT(Computed Tomography)",
        },
        {
            "dataset": "ISIC",
            "question_id": "ISIC_7",
            "question_type": "Other Biological Attributes",
            "question": "Is the lesion benign?",
            "gt_answer": "no",
            "image_path": "Images/derm/7.png",
            "option_A": "Yes",
            "option_B": "No",
            "modality": "Dermoscopy",
        },
        {  # gold answer text matches no option
            "question_id": "Bad_1",
            "question_type": "Disease Diagnosis",
            "question": "Which disease?",
            "gt_answer": "Pneumonia",
            "image_path": "Images/ct/0.png",
            "option_A": "Normal",
            "option_B": "Tuberculosis",
            "modality_type": "X-Ray",
        },
        {  # image missing on disk
            "question_id": "Bad_2",
            "question_type": "Disease Diagnosis",
            "question": "Which disease?",
            "gt_answer": "Normal",
            "image_path": "Images/missing.png",
            "option_A": "Normal",
            "option_B": "Tuberculosis",
            "modality_type": "X-Ray",
        },
        {  # a typo'd field
            "question_id": "Bad_3",
            "question_type": "Disease Diagnosis",
            "qustion": "Which disease?",
            "gt_answer": "Normal",
            "image_path": "Images/ct/0.png",
            "option_A": "Normal",
            "option_B": "Tuberculosis",
            "modality_type": "X-Ray",
        },
    ]


def test_loads_omnimedvqa_raw_qa_files_and_reports_every_bad_record(tmp_path):
    write_images(tmp_path, ["Images/ct/0.png", "Images/derm/7.png"])
    path = tmp_path / "QA_information" / "Open-access" / "Chest CT Scan.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(omnimedvqa_records()))
    result = load_samples(path, image_root=tmp_path)
    ct, derm = result.samples
    assert (ct.id, ct.answer, ct.modality, ct.question_type) == ("Chest CT Scan_0", "C", "CT", "Modality Recognition")
    assert (derm.options, derm.answer, derm.modality) == (["Yes", "No"], "B", "Dermoscopy")
    assert derm.question_type == "Biological Attribute Analysis"
    reasons = {p.record_id: p.reason for p in result.problems}
    assert set(reasons) == {"Bad_1", "Bad_2", "Bad_3"}
    assert "'Pneumonia' matches none of the options" in reasons["Bad_1"]
    assert "image not found" in reasons["Bad_2"] and "missing.png" in reasons["Bad_2"]
    assert "unknown field(s) ['qustion']" in reasons["Bad_3"]
    assert result.summary()["rejected"] == 3


def test_loads_medr1_jsonl_with_letter_or_text_answers(tmp_path):
    write_images(tmp_path, ["a.png", "b.png"])
    lines = [
        {"id": "q1", "image": "a.png", "question": "Which modality?", "options": ["CT", "MRI"], "answer": "B",
         "modality": "MR", "question_type": "modality"},
        {"id": "q2", "image": "b.png", "question": "Grade?", "options": {"A": "1", "B": "2", "C": "3"}, "answer": "3"},
        {"id": "q3", "image": "b.png", "question": "Describe the finding.", "answer": "A small nodule"},
    ]  # fmt: skip
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    q1, q2, q3 = load_samples(path).samples
    assert (q1.answer, q1.modality, q1.question_type) == ("B", "MRI", "Modality Recognition")
    assert (q2.options, q2.answer) == (["1", "2", "3"], "C")
    assert (q3.options, q3.answer) == ([], "A small nodule")


def test_unreadable_files_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_samples(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n{broken\n')
    with pytest.raises(DataError, match=r"bad\.jsonl, line 2: not valid JSON"):
        load_samples(bad)
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(DataError, match="Unrecognised record"):
        load_samples(odd)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("CT(Computed Tomography)", "CT"),
        ("MR (Mag-netic Resonance Imaging)", "MRI"),
        ("OCT (Optical Coherence Tomography", "OCT"),
        ("X-Ray", "X-Ray"),
        ("Fundus Photography", "Fundus"),
        ("Microscopy Images", "Microscopy"),
        ("ultrasound", "Ultrasound"),
        ("Dermoscopy", "Dermoscopy"),
        ("PET-CT hybrid", "PET-CT hybrid"),
    ],
)
def test_modality_names_are_normalised(raw, name):
    assert normalise_modality(raw) == name


def test_question_types_are_normalised():
    assert normalise_question_type("Other Biological Attributes") == "Biological Attribute Analysis"
    assert normalise_question_type("OBA") == "Biological Attribute Analysis"
    assert normalise_question_type("lesion grading") == "Lesion Grading"


def test_split_is_deterministic_and_keeps_each_image_on_one_side(synthetic_jsonl):
    samples = load_samples(synthetic_jsonl).samples
    # Two questions per image, as in OmniMedVQA where several questions share one image.
    doubled = samples + [s.__class__(**{**s.__dict__, "id": s.id + "-b"}) for s in samples]
    train, test = split_samples(doubled, test_fraction=0.3, seed=1)
    assert {s.image for s in train}.isdisjoint({s.image for s in test})
    assert len(train) + len(test) == len(doubled) and test
    assert split_samples(list(reversed(doubled)), 0.3, seed=1)[1] == list(reversed(test))
    assert split_samples(doubled, 0.3, seed=2)[1] != test


def test_select_filters_by_normalised_names(synthetic_jsonl):
    samples = load_samples(synthetic_jsonl).samples
    ct = select(samples, modalities=["ct(computed tomography)"])
    assert ct and all(s.modality == "CT" for s in ct)
    grading = select(samples, question_types=["Lesion Grading"])
    assert grading and all(s.question_type == "Lesion Grading" for s in grading)


def test_hf_dataset_has_trl_vlm_layout_and_lazy_images(synthetic_jsonl):
    samples = load_samples(synthetic_jsonl).samples[:3]
    dataset = to_hf_dataset(samples, prompt_style="think", bounds=PixelBounds(28 * 28, 32 * 32))
    row = dataset[0]
    assert row["prompt"][0]["role"] == "user" and "<think>" in row["prompt"][0]["content"]
    assert samples[0].question in row["prompt"][0]["content"]
    assert row["image"].mode == "RGB" and row["image"].width * row["image"].height <= 32 * 32
    assert (row["answer"], row["options"], row["prompt_style"]) == (samples[0].answer, samples[0].options, "think")
    sft = to_hf_dataset(samples, prompt_style="no_think", with_targets=True)
    assert sft[0]["completion"] == [{"role": "assistant", "content": f"<answer>{samples[0].answer}</answer>"}]


def test_a_grpo_batch_decodes_each_repeated_image_once(synthetic_jsonl, monkeypatch):
    """GRPO's sampler repeats each question num_generations times in a batch: one decode per file."""
    import train.data

    samples = load_samples(synthetic_jsonl).samples[:2]
    decoded: list[str] = []
    real = train.data.model_picture
    monkeypatch.setattr(train.data, "model_picture", lambda path, *a, **k: decoded.append(path) or real(path, *a, **k))
    dataset = to_hf_dataset(samples, prompt_style="no_think")
    batch = dataset.__getitems__([0, 0, 0, 1, 1, 1])
    assert [row["id"] for row in batch] == [samples[0].id] * 3 + [samples[1].id] * 3
    assert decoded == [samples[0].image, samples[1].image]
    assert batch[0]["image"].size == batch[3]["image"].size and batch[0]["image"] is batch[2]["image"]


def test_every_format_takes_a_frame_and_a_window(tmp_path):
    """OmniMedVQA and Med-R1 records may name a DICOM frame and window too, as medr1 JSONL records do."""
    write_images(tmp_path, ["a.png"])
    omni = [{"question_id": "o1", "question": "Which?", "gt_answer": "CT", "option_A": "CT", "option_B": "MRI",
             "image_path": "a.png", "frame": 3, "window": "lung"}]  # fmt: skip
    medr1 = [{"image": "a.png", "problem": "Which? A)CT, B)MRI", "solution": "<answer>A</answer>",
              "window": {"centre": -600, "width": 1500}}]  # fmt: skip
    (tmp_path / "omni.json").write_text(json.dumps(omni))
    (tmp_path / "medr1.json").write_text(json.dumps(medr1))
    (o1,) = load_samples(tmp_path / "omni.json").samples
    (m1,) = load_samples(tmp_path / "medr1.json", frame=1).samples
    assert (o1.frame, o1.window) == (3, "lung")
    assert (m1.frame, m1.window) == (1, "-600,1500")
