"""Evidence in evaluation: ``--option_probabilities`` / ``--image_reliance`` results, tables and errors."""

from __future__ import annotations

import pytest

from train.data import load_samples
from train.eval import EvalSettings, evaluate
from train.eval.report import build_report, calibration_table, reliance_table
from train.eval.results import QuestionResult, read_results
from train.evidence.calibration import expected_calibration_error, reliability_bins
from train.model_io import load_for_inference, load_processor


class AlwaysA:
    """A generator that answers A to everything, on the real tiny model (whose own answers are noise)."""

    def __init__(self, model):
        self.model = model

    def generate(self, texts, images, **overrides):
        return ["<answer>A</answer>"] * len(texts)


def test_expected_calibration_error_by_hand():
    # Two bins: 0.9 confident and right 1 of 2 times (gap 0.4), 0.3 confident and right 1 of 2 (gap 0.2).
    confidences, correct = [0.9, 0.9, 0.3, 0.3], [True, False, True, False]
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.3)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == pytest.approx(0.0)
    assert [b.n for b in reliability_bins(confidences, correct)][3] == 2
    assert expected_calibration_error([], []) is None


def test_eval_with_image_reliance_writes_results_and_tables(tiny_model_dir, synthetic_jsonl, tmp_path):
    processor = load_processor(str(tiny_model_dir))
    model = load_for_inference(str(tiny_model_dir), dtype="float32")
    samples = load_samples(synthetic_jsonl).samples[:6]
    settings = EvalSettings(prompt_style="no_think", max_new_tokens=8, image_reliance=True, option_probabilities=True)
    results = evaluate(
        model, processor, samples, settings, results_path=tmp_path / "results.jsonl", generator=AlwaysA(model)
    )
    for result in read_results(tmp_path / "results.jsonl"):  # what a resumed run reads back
        assert sum(result.option_probabilities.values()) == pytest.approx(1.0)
        assert result.reliance["answer_with_picture"] == "A"
        assert set(result.reliance) >= {"changed", "probability_with_picture", "probability_without_picture"}
    report = build_report({"tiny": results})
    calibration = report.tables["calibration"]
    assert calibration.rows[0][:2] == ["tiny", 6]
    assert 0 <= calibration.rows[0][4] <= 100
    reliance = report.tables["reliance_tiny"]
    assert reliance.rows[-1][:3] == ["all", "all", 6]
    assert {tuple(row[:2]) for row in reliance.rows[:-1]} <= {(s.modality, s.question_type) for s in samples}
    assert "answers changed" in reliance.to_markdown()


def test_tables_are_left_out_without_evidence():
    plain = QuestionResult(
        "q", "CT", "Modality", "A", "A", True, True, 4, None, "<answer>A</answer>", 0.1, 1, "no_think"
    )
    assert calibration_table({"run": [plain]}) is None
    assert reliance_table("run", [plain]) is None
    assert "calibration" not in build_report({"run": [plain]}).tables


def test_vllm_backend_refuses_evidence_flags(tiny_model_dir, synthetic_jsonl, tmp_path, monkeypatch):
    from train.eval import cli

    monkeypatch.setattr(cli, "choose_backend", lambda choice, device: "vllm")
    with pytest.raises(ValueError, match="add --backend hf"):
        cli.run_command(
            [
                "--model",
                str(tiny_model_dir),
                "--dataset_path",
                str(synthetic_jsonl),
                "--output_dir",
                str(tmp_path),
                "--image_reliance",
                "--no_progress",
                "--max_samples",
                "2",
            ]
        )
