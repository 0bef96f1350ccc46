"""``medr1-eval`` end to end on a tiny random Qwen2-VL: batching, resume, CLI outputs, errors, matrices.

The conftest's tiny model answers every question with newlines, which would make "batched equals
one-at-a-time" true for any bug. These tests use a copy whose weights are redrawn with a larger scale
(``lively_model_dir``): its answers are still gibberish, but they differ from question to question and
depend on the image and on every prompt token, so a padding or pairing mistake changes them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from train.data import load_samples
from train.eval import balanced_subset, evaluate
from train.eval.cli import main
from train.eval.generate import (
    EvalSettings,
    HFGenerator,
    chat_text,
    choose_backend,
    plan_batches,
    run_batches,
)
from train.eval.results import RESULTS_FILE, read_results
from train.eval.synthetic import make_grid_dataset
from train.model_io import load_for_inference, load_model, load_processor

MAX_NEW = 4


@pytest.fixture(scope="module")
def lively_model_dir(tiny_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("lively") / "medr1-tiny-random-lively"
    shutil.copytree(tiny_model_dir, path)
    model = load_model(str(path), dtype="float32")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.15)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def grid_jsonl(tmp_path_factory):
    """40 questions: every modality x question type, 2- and 4-option, square, wide and tall images."""
    return make_grid_dataset(tmp_path_factory.mktemp("grid"), per_cell=1, seed=0, size=56)


@pytest.fixture(scope="module")
def loaded(lively_model_dir):
    return load_for_inference(str(lively_model_dir), device="cpu"), load_processor(str(lively_model_dir))


def test_grid_dataset_covers_every_cell_with_two_option_questions(grid_jsonl):
    result = load_samples(grid_jsonl)
    assert not result.problems and len(result.samples) == 40
    cells = {(s.modality, s.question_type) for s in result.samples}
    assert len(cells) == 40
    assert {len(s.options) for s in result.samples} == {2, 4}
    assert all(s.answer in "ABCD"[: len(s.options)] for s in result.samples)


def test_small_evaluations_spread_over_modalities_and_question_types(grid_jsonl):
    samples = load_samples(grid_jsonl).samples
    eight = balanced_subset(samples, 8)
    assert len({s.modality for s in eight}) == 8
    five = balanced_subset(samples, 5)
    assert len({s.question_type for s in five}) == 5 and len({s.modality for s in five}) == 5
    assert balanced_subset(samples, 8) == eight  # deterministic
    assert balanced_subset(samples, 100) == samples


def test_batched_greedy_answers_equal_one_at_a_time(loaded, grid_jsonl):
    model, processor = loaded
    samples = balanced_subset(load_samples(grid_jsonl).samples, 8)
    settings = EvalSettings(max_new_tokens=8, batch_size=4)
    batches = plan_batches(samples, processor, settings)
    # The batches really are padded: prompts in one batch differ in length (options and image shapes).
    lengths = [
        len(processor(text=[chat_text(processor, s, "think")], images=[_image(s)], return_tensors="pt")["input_ids"][0])
        for s in batches[0]
    ]
    assert len(set(lengths)) > 1
    generator = HFGenerator(model, processor, settings)
    batched = {r.id: r.response for r in run_batches(generator, processor, batches, settings)}
    single = {r.id: r.response for r in run_batches(generator, processor, [[s] for s in samples], settings)}
    assert len(set(single.values())) > 5, "answers too uniform for this test to detect a mismatch"
    assert batched == single


def _image(sample):
    return sample.picture()


def test_batches_are_sorted_longest_first_and_keep_every_question(loaded, grid_jsonl):
    _, processor = loaded
    samples = load_samples(grid_jsonl).samples
    batches = plan_batches(samples, processor, EvalSettings(batch_size=6))
    assert [len(b) for b in batches] == [6] * 6 + [4]
    assert sorted(s.id for b in batches for s in b) == sorted(s.id for s in samples)
    tokens = [len(processor.tokenizer(chat_text(processor, b[0], "think"))["input_ids"]) for b in batches]
    images = [max(_image(s).size[0] * _image(s).size[1] for s in b) for b in batches]
    assert images[0] >= images[-1] and (images[0] > images[-1] or tokens[0] >= tokens[-1])


def test_unreadable_image_is_recorded_and_the_rest_of_the_batch_runs(loaded, grid_jsonl, tmp_path):
    model, processor = loaded
    samples = load_samples(grid_jsonl).samples[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    samples[1] = type(samples[1])(**{**samples[1].__dict__, "image": str(broken)})
    results = evaluate(model, processor, samples, max_new_tokens=4, batch_size=3)
    assert [r.id for r in results] == [s.id for s in samples]
    assert results[1].error and "broken.png" in results[1].error and not results[1].correct
    assert results[0].error is None and results[2].error is None and results[0].response


def test_evaluate_reports_progress_and_stops_between_batches(loaded, grid_jsonl, tmp_path):
    model, processor = loaded
    samples = load_samples(grid_jsonl).samples[:12]
    seen = []
    path = tmp_path / RESULTS_FILE
    results = evaluate(
        model,
        processor,
        samples,
        max_new_tokens=4,
        batch_size=4,
        results_path=path,
        progress=lambda done, total: seen.append((done, total)),
        should_stop=lambda: len(seen) >= 3,
    )
    assert seen == [(0, 12), (4, 12), (8, 12)]
    assert len(results) == 8 and len(read_results(path)) == 8


def test_backend_choice():
    assert choose_backend("auto", "cpu") == "hf"
    assert choose_backend("hf", "cuda") == "hf"
    with pytest.raises(ValueError):
        choose_backend("onnx")
    with pytest.raises(RuntimeError, match="vllm"):
        choose_backend("vllm", "cpu")


def test_backend_auto_picks_vllm_only_with_a_gpu_device(monkeypatch):
    import train.eval.generate as eval_generate

    monkeypatch.setattr(eval_generate, "vllm_available", lambda: True)
    assert choose_backend("auto", "cuda") == "vllm"
    assert choose_backend("auto", "cpu") == "hf"


def test_settings_defaults_and_validation():
    assert EvalSettings(prompt_style="think").max_new_tokens == 512
    assert EvalSettings(prompt_style="no_think").max_new_tokens == 32
    assert EvalSettings().greedy
    with pytest.raises(ValueError):
        EvalSettings(prompt_style="cot")
    with pytest.raises(ValueError):
        EvalSettings(batch_size=0)


# ---------------------------------------------------------------------------------------------- CLI


def _cli(model, data, out, *extra):
    return [
        "--model",
        str(model),
        "--dataset_path",
        str(data),
        "--output_dir",
        str(out),
        "--max_new_tokens",
        str(MAX_NEW),
        "--batch_size",
        "8",
        "--no_progress",
        *extra,
    ]


def _answers(out: Path, run: str) -> dict:
    return {r.id: (r.response, r.answer, r.well_formed) for r in read_results(out / "runs" / run / RESULTS_FILE)}


def _tables(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    for run in summary["runs"].values():
        run["overall"].pop("errors")
    return {name: run for name, run in summary["runs"].items()}


@pytest.fixture(scope="module")
def full_run(lively_model_dir, grid_jsonl, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "full"
    main(_cli(lively_model_dir, grid_jsonl, out, "--name", "tiny"))
    return out


def test_cli_writes_every_output_and_cell_counts_add_up(full_run):
    out = full_run
    for name in ("report.md", "summary.json", "eval.json", "runs/tiny/results.jsonl", "runs/tiny/run.json"):
        assert (out / name).is_file(), name
    for name in ("summary", "modality", "question_type", "tiny_grid", "tiny_modality", "tiny_question_type"):
        assert (out / "tables" / f"{name}.csv").is_file(), name
    assert (out / "figures" / "tiny_grid.png").stat().st_size > 1000
    run = json.loads((out / "summary.json").read_text())["runs"]["tiny"]
    assert run["overall"]["n"] == 40
    assert [c["n"] for c in run["by_cell"]] == [1] * 40
    assert sum(m["n"] for m in run["by_modality"].values()) == 40
    assert all(m["n"] == 5 for m in run["by_modality"].values())
    assert all(q["n"] == 8 for q in run["by_question_type"].values())
    assert sum(c["correct"] for c in run["by_cell"]) == run["overall"]["correct"]
    lines = read_results(out / "runs" / "tiny" / RESULTS_FILE)
    first = lines[0].to_json()
    for field in ("id", "modality", "question_type", "gold", "answer", "well_formed", "rationale", "latency_s"):
        assert field in first
    report = (out / "report.md").read_text()
    assert "Tiny random model" in report and "| tiny | 40 |" in report


def test_interrupted_then_resumed_run_equals_uninterrupted(
    full_run, lively_model_dir, grid_jsonl, tmp_path, monkeypatch
):
    calls = []
    interrupt = [True]
    original = HFGenerator.generate

    def interrupting(self, texts, images):
        calls.append(len(texts))
        if interrupt[0] and len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during the third batch
        return original(self, texts, images)

    monkeypatch.setattr(HFGenerator, "generate", interrupting)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        main(_cli(lively_model_dir, grid_jsonl, out, "--name", "tiny"))
    results_file = out / "runs" / "tiny" / RESULTS_FILE
    assert len(read_results(results_file)) == 16
    with results_file.open("a") as handle:  # killed while writing the next line
        handle.write('{"id": "grid-0-3", "modal')
    calls.clear()
    interrupt[0] = False
    main(_cli(lively_model_dir, grid_jsonl, out, "--name", "tiny"))
    assert sum(calls) == 24, "the resumed run must only ask the 24 unanswered questions"
    assert _answers(out, "tiny") == _answers(full_run, "tiny")
    assert _tables(out) == _tables(full_run)
    calls.clear()
    main(_cli(lively_model_dir, grid_jsonl, out, "--name", "tiny"))  # nothing left: no generation at all
    assert calls == []


def test_resume_with_other_settings_is_refused(full_run, lively_model_dir, grid_jsonl, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(full_run, out)
    args = _cli(lively_model_dir, grid_jsonl, out, "--name", "tiny")
    args[args.index("--max_new_tokens") + 1] = "16"
    with pytest.raises(SystemExit, match="max_new_tokens: 4 before, 16 now"):
        main(args)


def test_report_command_rebuilds_the_same_report(full_run, tmp_path):
    out = tmp_path / "rebuilt"
    shutil.copytree(full_run, out)
    (out / "report.md").unlink()
    main(["report", str(out)])
    assert (out / "report.md").read_text() == (full_run / "report.md").read_text()


def test_missing_images_are_named_and_counted(lively_model_dir, grid_jsonl, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(grid_jsonl.parent, data)
    images = sorted((data / "images").iterdir())
    for image in images[:3]:
        image.unlink()
    with pytest.raises(SystemExit) as error:
        main(_cli(lively_model_dir, data / "eval.jsonl", tmp_path / "out"))
    message = str(error.value)
    assert "3 of 40 questions point to images that do not exist" in message
    for image in images[:3]:
        assert image.name in message
    assert "--on_missing_images skip" in message
    skip = ["--on_missing_images", "skip", "--name", "t", "--max_samples", "8"]
    main(_cli(lively_model_dir, data / "eval.jsonl", tmp_path / "out", *skip))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["runs"]["t"]["overall"]["n"] == 8
    assert "3 record(s) left out" in summary["title"]


@pytest.fixture(scope="module")
def adapter_dir(lively_model_dir, tmp_path_factory):
    """A LoRA adapter with random (non-zero) B matrices, so it changes the model's answers."""
    from peft import LoraConfig, get_peft_model

    from train.config import LANGUAGE_MODEL_LORA_TARGETS

    torch.manual_seed(3)
    model = load_model(str(lively_model_dir), dtype="float32")
    config = LoraConfig(r=4, lora_alpha=16, target_modules=LANGUAGE_MODEL_LORA_TARGETS, init_lora_weights=False)
    path = tmp_path_factory.mktemp("adapter") / "grpo-ct"
    get_peft_model(model, config).save_pretrained(path)
    return path


def test_base_vs_adapter_comparison_and_cross_modality_matrix(lively_model_dir, adapter_dir, grid_jsonl, tmp_path):
    out = tmp_path / "matrix"
    extra = ["--max_samples", "8", "--adapter", str(adapter_dir), "--with_base"]
    extra += ["--checkpoint", f"CT={adapter_dir}", f"mri={lively_model_dir}"]
    main(_cli(lively_model_dir, grid_jsonl, out, *extra))
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["CT", "MRI", "base", "grpo-ct"]
    # The same weights give the same answers whichever way they are named: the matrix rows are real runs.
    assert _answers(out, "MRI") == _answers(out, "base")
    assert _answers(out, "CT") == _answers(out, "grpo-ct")
    assert len(_answers(out, "base")) == 8
    summary = json.loads((out / "summary.json").read_text())
    matrix = summary["matrices"]["modality"]
    assert matrix["rows"] == ["CT", "MRI"] and len(matrix["columns"]) == 8
    assert sum(sum(row) for row in matrix["n"]) == 16
    comparison = summary["comparisons"][0]
    assert (comparison["base"], comparison["new"]) == ("base", "grpo-ct")
    assert comparison["overall"]["n"] == 8
    assert (out / "tables" / "cross_modality.csv").is_file() and (out / "figures" / "cross_modality.png").is_file()
    assert (out / "tables" / "compare_base_vs_grpo-ct.csv").is_file()
    main(["compare", str(out / "runs" / "base"), str(out / "runs" / "grpo-ct"), "-o", str(tmp_path / "diff")])
    assert "grpo-ct vs base" in (tmp_path / "diff" / "report.md").read_text()


def test_compare_to_an_earlier_run_pairs_the_shared_questions(full_run, lively_model_dir, grid_jsonl, tmp_path):
    out = tmp_path / "again"
    main(
        _cli(
            lively_model_dir,
            grid_jsonl,
            out,
            "--name",
            "tiny",
            "--max-samples",
            "8",
            "--compare-to",
            str(full_run / "runs" / "tiny"),
        )
    )
    comparison = json.loads((out / "summary.json").read_text())["comparisons"][0]
    assert (comparison["base"], comparison["new"]) == ("tiny (compared)", "tiny")
    assert comparison["overall"]["n"] == 8 and comparison["only_in_base"] == 32
    # Same model, same settings, same questions: identical answers, so no discordant pair.
    assert comparison["overall"]["delta"] == 0 and comparison["overall"]["p_value"] == 1.0


def test_free_text_questions_are_refused_by_the_api(loaded, grid_jsonl):
    model, processor = loaded
    sample = load_samples(grid_jsonl).samples[0]
    free = type(sample)(**{**sample.__dict__, "id": "free-1", "options": [], "answer": "CT"})
    with pytest.raises(ValueError, match="no options"):
        evaluate(model, processor, [sample, free], max_new_tokens=2)


def parse(argv):
    from train.eval.cli import make_parser, modernise_argv

    return make_parser().parse_args_and_config(args=modernise_argv(argv, warn=lambda _: None))


def test_run_plan_for_both_prompts_and_cross_task_checkpoints(tmp_path):
    from train.eval.cli import matrix_axis, plan_runs

    argv = ["--model", "base", "--dataset_path", "d.jsonl", "--output_dir", str(tmp_path), "--prompt_style", "both"]
    argv += [
        "--checkpoint",
        f"Disease Diagnosis={tmp_path}",
        "lesion grading=out/lg",
        "--checkpoints_only",
    ]
    data, args = parse(argv)
    runs, compare, axis = plan_runs(args, data)
    assert axis == "question_type" and compare == []
    assert [r.name for r in runs] == [
        "Disease Diagnosis-think",
        "Lesion Grading-think",
        "Disease Diagnosis-no_think",
        "Lesion Grading-no_think",
    ]
    assert (runs[0].model, runs[0].adapter, runs[0].prompt_style) == (str(tmp_path), None, "think")
    with pytest.raises(ValueError, match="--matrix_axis"):
        matrix_axis(["CT", "Lesion Grading"], "auto")
    with pytest.raises(ValueError, match="LABEL=PATH"):
        plan_runs(*reversed(parse(["--model", "m", "--dataset_path", "d", "--output_dir", "o", "--checkpoint", "CT"])))


def test_old_flag_spellings_still_work_with_a_one_line_note(tmp_path):
    """Flags of earlier versions map to the names medr1-train uses; repeated --checkpoint still adds up."""
    from train.eval.cli import modernise_argv

    notes = []
    argv = ["--model", "m", "--data", "d.jsonl", "--format", "medr1", "-o", str(tmp_path), "--image-root", "imgs"]
    argv += ["--test-fraction", "0.2", "--split", "test", "--checkpoint", "CT=a", "--checkpoint", "MRI=b"]
    modern = modernise_argv(argv, warn=notes.append)
    assert len(notes) == 3 and all(n.count("\n") == 0 and "still works" in n for n in notes)
    data, args = parse(argv)
    assert data.dataset_path == ["d.jsonl"] and data.dataset_format == "medr1" and data.image_root == "imgs"
    assert data.test_fraction == 0.2 and args.output_dir == str(tmp_path) and args.checkpoint == ["CT=a", "MRI=b"]
    assert "--dataset_path" in modern and "--data" not in modern
