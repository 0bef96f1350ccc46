"""``medr1-data audit``: the planted train/test overlap is found (path, pixels) and a re-split has none."""

from __future__ import annotations

import json

import pytest
from medr1_splits_kit import write_splits_tree

from train.audit import collect, overlap_rows, resplit_sides, write_resplit
from train.data import DataError, dataset_files, load_many
from train.data_cli import main


def _row(rows, tree_end: str, group: str) -> dict:
    (row,) = [r for r in rows if r["Tree"].endswith(tree_end) and r["Group"] == group]
    return row


@pytest.fixture
def tree(tmp_path):
    return tmp_path, write_splits_tree(tmp_path)


def test_planted_overlap_is_found_by_path_and_by_pixels(tree):
    root, _ = tree
    rows = overlap_rows(collect([root / "Splits"], image_root=root))
    ct = _row(rows, "modality", "modality: CT")
    assert (ct["Train questions"], ct["Test questions"], ct["Test images"]) == (2, 4, 4)
    assert ct["In same group's train: by path"] == "2 (50.0%)"
    assert ct["by pixels"] == "3 (75.0%)", "the copy under another name has the same pixels"
    mri = _row(rows, "modality", "modality: MRI")
    assert (mri["In same group's train: by path"], mri["by pixels"]) == ("2 (66.7%)", "2 (66.7%)")
    every = _row(rows, "modality", "all")
    assert every["In any train (path or pixels)"] == "17 (68.0%)"
    # The question-type tree was split independently: its test images reach training through other types.
    assert _row(rows, "question_type", "all")["In any train (path or pixels)"] == "11 (78.6%)"


def test_resplit_keeps_every_image_on_one_side_and_loses_no_record(tree, tmp_path_factory):
    root, planted = tree
    out = tmp_path_factory.mktemp("resplit")
    audit = collect([root / "Splits"], image_root=root)
    _, written = write_resplit(audit, out, seed=3)
    assert {p.relative_to(out).as_posix() for p in written} >= {
        "modality/test/CT(Computed Tomography)_test.json",
        "modality/train/CT(Computed Tomography)_train.json",
        "question_type/test/Other Biological Attributes_test.json",
    }
    before = sum(len(json.loads(p.read_text())) for p in planted["files"])
    after = sum(len(json.loads(p.read_text())) for p in written)
    assert after == before == 82
    again = overlap_rows(collect([out], image_root=root))
    for row in again:
        if row["Test images"]:
            assert row["In any train (path or pixels)"].startswith("0 "), row
            assert row["Same question, same image"].startswith("0 "), row
    # The records are Med-R1's, unchanged, so the re-split loads exactly as the original did.
    original = load_many(dataset_files(root / "Splits"), image_root=root)
    reloaded = load_many(dataset_files(out), image_root=root)
    key = lambda s: (s.image, s.question, s.modality, s.question_type)  # noqa: E731
    assert sorted(map(key, reloaded.samples)) == sorted(map(key, original.samples))


def test_resplit_sides_do_not_depend_on_file_order(tree):
    root, _ = tree
    audit = collect([root / "Splits"], image_root=root)
    forward = {(str(q.file), q.index): q.side for q in resplit_sides(audit, seed=5)}
    audit.questions.reverse()
    backward = {(str(q.file), q.index): q.side for q in resplit_sides(audit, seed=5)}
    assert forward == backward


def test_a_tree_without_images_is_audited_by_path_and_question_text(tmp_path, capsys):
    write_splits_tree(tmp_path, images=False)
    main(["audit", str(tmp_path / "Splits"), "--csv", str(tmp_path / "audit.csv")])
    printed = capsys.readouterr().out
    assert "No image was found on disk: paths are compared as the records write them" in printed
    assert "| modality: CT | 2 | 4 | 4 | 2 (50.0%) | n/a |" in printed
    assert (tmp_path / "audit.csv").read_text().startswith("Tree,Group,Train questions")


def test_question_text_repeated_across_sides_is_counted(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "test").mkdir()
    same = {"problem": "Is there a nodule? A)Yes, B)No", "solution": "<answer> A </answer>"}
    (tmp_path / "train" / "CT_train.json").write_text(json.dumps([{"image": "a.png", **same}]))
    test = [{"image": "a.png", **same}, {"image": "b.png", **same}]
    (tmp_path / "test" / "CT_test.json").write_text(json.dumps(test))
    _, ct = overlap_rows(collect([tmp_path]))
    assert ct["Group"] == "modality: CT"
    assert ct["Same question, same image"] == "1 (50.0%)"
    assert ct["Same question text"] == "2 (100.0%)"


def test_files_that_do_not_say_their_side_are_refused(tmp_path, synthetic_jsonl):
    with pytest.raises(DataError, match=r"Cannot tell training from test data for .*data\.jsonl: name files"):
        collect([synthetic_jsonl])
    with pytest.raises(SystemExit, match="medr1-data audit: Cannot tell training from test"):
        main(["audit", str(synthetic_jsonl)])
