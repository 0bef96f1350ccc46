"""Med-R1's published ``Splits/`` as they are: file names (sic), labels from them, the whole tree, the matrices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from medr1_splits_kit import MODALITY_FILES, QUESTION_TYPE_FILES, write_splits_tree

from train.data import (
    DataError,
    dataset_files,
    labels_from_path,
    load_many,
    load_samples,
    split_side,
)
from train.eval.cli import main as eval_main


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("omnimedvqa")
    return root, write_splits_tree(root)


FILES = [("modality", stem, label) for stem, label in MODALITY_FILES.items()]
FILES += [("question_type", stem, label) for stem, label in QUESTION_TYPE_FILES.items()]


@pytest.mark.parametrize("side", ["train", "test"])
@pytest.mark.parametrize(("kind", "stem", "label"), FILES)
def test_every_published_file_name_gives_its_label_to_every_record(tree, kind, stem, label, side):
    root, _ = tree
    path = root / "Splits" / kind / side / f"{stem}_{side}.json"
    result = load_samples(path, image_root=root)
    assert result.samples and not result.problems
    other = "question_type" if kind == "modality" else "modality"
    assert {getattr(s, kind) for s in result.samples} == {label}
    assert {getattr(s, other) for s in result.samples} == {None}


def test_unknown_stays_unknown_and_sides_are_read_from_the_names(tree):
    root, _ = tree
    unknown = root / "Splits" / "modality" / "train" / "unknown_train.json"
    assert labels_from_path(unknown) == (None, None)
    assert load_samples(unknown, image_root=root).summary()["modalities"] == {"unknown": 1}
    assert split_side(unknown) == "train"
    assert split_side(Path("Splits/modality/test/X-Ray_test.json")) == "test"
    assert split_side(Path("data/test/ct.jsonl")) == "test"
    assert split_side(Path("data/questions.jsonl")) is None


def test_a_name_that_could_be_either_needs_its_folder():
    assert labels_from_path(Path("data/MR.json")) == (None, None)  # MRI or Modality Recognition?
    assert labels_from_path(Path("Splits/modality/train/MR_train.json")) == ("MRI", None)
    assert labels_from_path(Path("Splits/question_type/test/MR_test.json")) == (None, "Modality Recognition")
    assert labels_from_path(Path("src/eval_vqa/prompts/q_type/test/Lesion Grading_test.json")) == (
        None,
        "Lesion Grading",
    )
    # Folders above count only as exact names: a folder called "us" is not ultrasound.
    assert labels_from_path(Path("/home/us/data/eval.jsonl")) == (None, None)
    assert labels_from_path(Path("/data/CT/questions.jsonl")) == ("CT", None)


def test_the_whole_tree_loads_each_question_once_with_both_labels(tree):
    root, planted = tree
    files = dataset_files(root / "Splits")
    assert len(files) == len(planted["files"]) == 27
    loaded = load_many(files, image_root=root)
    assert not loaded.problems
    # 8 modalities x 5 questions + the copy + the unknown one; each of the 40 is in both trees.
    assert len(loaded.samples) == 42
    both = [s for s in loaded.samples if s.modality and s.question_type]
    assert len(both) == 40
    assert {s.modality for s in both} == set(MODALITY_FILES.values())
    assert {s.question_type for s in both} == set(QUESTION_TYPE_FILES.values())


def test_a_seventh_option_is_refused_naming_file_and_record(tmp_path):
    path = tmp_path / "Splits" / "modality" / "test" / "CT(Computed Tomography)_test.json"
    path.parent.mkdir(parents=True)
    problem = "Which organ is shown? A)Liver, B)Kidney, C)Heart, D)Lung, E)Brain, F)Spleen, G)Bone"
    six = "Which organ is shown? A)Liver, B)Kidney, C)Heart, D)Lung, E)Brain, F)Spleen"
    records = [
        {"image": "a.png", "problem": six, "solution": "<answer> F </answer>"},
        {"image": "a.png", "problem": problem, "solution": "<answer> F </answer>"},
    ]
    path.write_text(json.dumps(records))
    result = load_samples(path, check_images=False)
    assert [s.options[-1] for s in result.samples] == ["Spleen"]
    (problem_found,) = result.problems
    assert "CT(Computed Tomography)_test.json, record 1" in str(problem_found)
    assert "more than 6 options" in str(problem_found)
    with pytest.raises(DataError, match=r"record 1: more than 6 options"):
        load_samples(path, check_images=False, on_error="raise")


def test_omnimedvqa_option_g_is_named_as_a_seventh_option(tmp_path):
    record = {"question_id": "q1", "question": "Which?", "gt_answer": "A", "image_path": "a.png"}
    record |= {f"option_{letter}": letter.lower() for letter in "ABCDEFG"}
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([record]))
    (problem,) = load_samples(path, check_images=False).problems
    assert "qa.json, record q1: 7 options (option_G after option_F)" in str(problem)


# ------------------------------------------------------------------------------------- evaluation


def _eval(tiny_model_dir, data: Path, root: Path, out: Path, *labels: str, extra: tuple[str, ...] = ()) -> dict:
    argv = ["--model", str(tiny_model_dir), "--dataset_path", str(data), "--image_root", str(root)]
    argv += ["--output_dir", str(out), "--max_new_tokens", "2", "--no_progress", "--checkpoints_only"]
    argv += ["--checkpoint", *(f"{label}={tiny_model_dir}" for label in labels), *extra]
    eval_main(argv)
    return json.loads((out / "summary.json").read_text())


def test_cross_modality_matrix_over_med_r1s_test_folder_in_one_command(tiny_model_dir, tree, tmp_path):
    root, _ = tree
    summary = _eval(tiny_model_dir, root / "Splits" / "modality" / "test", root, tmp_path / "m", "CT", "MRI")
    matrix = summary["matrices"]["modality"]
    assert matrix["rows"] == ["CT", "MRI"]
    assert matrix["columns"] == ["CT", "MRI", "X-Ray", "Ultrasound", "Dermoscopy", "Fundus", "OCT", "Microscopy"]
    assert matrix["n"][0] == [4, 3, 3, 3, 3, 3, 3, 3]  # every test question counted under its file's modality
    assert sum(summary["runs"]["CT"]["by_modality"][m]["n"] for m in matrix["columns"]) == 25
    assert (tmp_path / "m" / "tables" / "cross_modality.csv").is_file()


def test_cross_task_matrix_over_the_question_type_test_folder(tiny_model_dir, tree, tmp_path):
    root, _ = tree
    data = root / "Splits" / "question_type" / "test"
    summary = _eval(tiny_model_dir, data, root, tmp_path / "q", "AI", "LG", extra=("--prompt", "medr1-eval"))
    matrix = summary["matrices"]["question_type"]
    assert matrix["rows"] == ["Anatomy Identification", "Lesion Grading"]
    assert sorted(matrix["columns"]) == sorted(QUESTION_TYPE_FILES.values())
    assert sum(matrix["n"][0]) == 14
    plan = json.loads((tmp_path / "q" / "eval.json").read_text())
    assert {run["prompt"] for run in plan["runs"]} == {"medr1-eval"}
    run = json.loads((tmp_path / "q" / "runs" / "Lesion Grading" / "run.json").read_text())
    assert run["prompt"] == "medr1-eval"
    assert "medr1-eval (think)" in (tmp_path / "q" / "report.md").read_text()
