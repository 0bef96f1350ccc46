"""``--batch_size auto`` and the time estimate: the largest batch that fits, found once; a line before a long run."""

from __future__ import annotations

import json

import pytest
import torch

from train.eval.throughput import largest_batch_size, time_estimate


class FakeGPU:
    """Batches above ``capacity`` questions run out of memory, as a GPU would."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.tried: list[int] = []

    def __call__(self, size: int) -> None:
        self.tried.append(size)
        if size > self.capacity:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {size} GiB")


def test_the_largest_batch_that_fits_is_found_once_and_remembered(tmp_path):
    cache = tmp_path / "batch_sizes.json"
    gpu = FakeGPU(capacity=40)
    assert largest_batch_size(gpu, "model|H200|bf16", "cuda", limit=1000, cache=cache) == 32
    assert gpu.tried == [8, 16, 32, 64], "doubling stops at the first batch that does not fit"
    assert json.loads(cache.read_text()) == {"model|H200|bf16": 32}
    again = FakeGPU(capacity=40)
    assert largest_batch_size(again, "model|H200|bf16", "cuda", limit=1000, cache=cache) == 32
    assert again.tried == [], "a size found earlier for this model and device is not probed again"
    other = FakeGPU(capacity=300)
    assert largest_batch_size(other, "model|A100|bf16", "cuda", limit=1000, cache=cache) == 256
    fewer = largest_batch_size(FakeGPU(300), "model|H200|bf16", "cuda", limit=20, cache=cache)
    assert fewer == 20, "never more than the questions asked"


def test_a_gpu_smaller_than_the_smallest_batch_still_gets_a_size(tmp_path):
    gpu = FakeGPU(capacity=3)
    assert largest_batch_size(gpu, "k", "cuda:0", limit=100, cache=tmp_path / "c.json") == 2
    assert gpu.tried == [8, 4, 2]


def test_other_errors_are_not_taken_for_a_full_gpu(tmp_path):
    def broken(size: int) -> None:
        raise ValueError("the picture of record 3 cannot be read")

    with pytest.raises(ValueError, match="record 3"):
        largest_batch_size(broken, "k", "cuda", limit=100, cache=tmp_path / "c.json")


def test_on_the_cpu_nothing_is_probed(tmp_path):
    gpu = FakeGPU(capacity=1000)
    assert largest_batch_size(gpu, "k", "cpu", limit=100, cache=tmp_path / "c.json") == 8
    assert largest_batch_size(gpu, "k", "cpu", limit=3, cache=tmp_path / "c.json") == 3
    assert gpu.tried == [] and not (tmp_path / "c.json").exists()


def test_time_estimate_reads_like_a_sentence():
    line = time_estimate(17_662, 16, 16, 8.0, "grpo-ct")
    assert line.startswith("[grpo-ct] 17,646 questions ≈ 2.5 h on this device at most (2.00 questions/s")
    assert time_estimate(100, 10, 10, 5.0).startswith("90 questions ≈ 45 s")
    assert "≈ 15 min" in time_estimate(1000, 0, 10, 9.0)


def test_medr1_eval_prints_the_estimate_after_the_first_batch(monkeypatch, capsys):
    from train.eval import cli

    clock = iter([100.0, 130.0, 140.0])
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    seen = []
    progress = cli._time_estimate_after_first_batch("base", lambda done, total: seen.append(done))
    progress(0, 1000)  # before the first batch
    progress(8, 1000)  # the first batch took 30 s: 992 more questions ≈ 62 min
    progress(16, 1000)
    assert seen == [0, 8, 16]
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        "[base] 992 questions ≈ 62 min on this device at most (0.27 questions/s in the first batch, which holds "
        "the longest prompts)."
    ]


def test_batch_size_auto_runs_medr1_eval_on_the_cpu(tmp_path, tiny_model_dir, synthetic_jsonl):
    from train.eval.cli import main

    out = tmp_path / "eval"
    code = main(
        ["--model", str(tiny_model_dir), "--dataset_path", str(synthetic_jsonl), "--output_dir", str(out),
         "--batch_size", "auto", "--max_new_tokens", "4", "--max_samples", "6", "--no_progress", "true",
         "--reference", "none"]
    )  # fmt: skip
    assert code in (0, None)
    run = json.loads(next(out.glob("runs/*/run.json")).read_text())
    assert run["batch_size"] == 8 and run["fast_generation"] == "off"
    with pytest.raises((SystemExit, ValueError)):
        main(["--model", "m", "--dataset_path", "d", "--output_dir", str(out), "--batch_size", "lots"])


def test_a_batch_that_stops_fitting_is_asked_in_halves(caplog):
    from train.eval.throughput import split_on_out_of_memory

    asked = []

    def generate_batch(texts, images):
        asked.append(len(texts))
        if len(texts) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return [f"answer to {t}" for t in texts]

    texts = [f"q{i}" for i in range(10)]
    assert split_on_out_of_memory(generate_batch, texts, [None] * 10) == [f"answer to q{i}" for i in range(10)]
    assert asked == [10, 5, 2, 3, 5, 2, 3]
    assert "ran out of GPU memory" in caplog.text

    def never_fits(texts, images):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        split_on_out_of_memory(never_fits, ["q"], [None])
