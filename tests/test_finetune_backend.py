"""The Fine-tune tab's back end: safe uploads, dataset validation and training runs in a child process."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
import zipfile
from pathlib import Path

import pytest

from medr1_app.dataset_upload import UploadError, extract_zip, receive_upload, validate_dataset
from medr1_app.training_runs import RunManager, check_hardware

TESTS = Path(__file__).parent


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture
def sandbox(tmp_path):
    """A run folder inside a parent folder we watch for anything written outside the run folder."""
    run_dir = tmp_path / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    return tmp_path, run_dir


def make_zip(path: Path, entries: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("entries", "symlink", "message"),
    [
        ({"../../escape.txt": b"x", "data.jsonl": b"{}"}, None, "outside its folder"),
        ({"/etc/cron.d/evil": b"x"}, None, "absolute path"),
        ({f"f{i}.txt": b"" for i in range(10_000)}, None, "10,000 files"),
        ({"big.bin": bytes(60 * 1024**2)}, None, "at most 50 MB"),
        ({"zeros.png": bytes(40 * 1024**2)}, None, "compressed 200x"),
        ({"data.jsonl": b"{}"}, "link.png", "symbolic link"),
    ],
    ids=["path-traversal", "absolute", "file-bomb", "oversized-member", "zip-bomb", "symlink"],
)
def test_malicious_zips_are_refused_and_nothing_is_written(sandbox, entries, symlink, message):
    root, run_dir = sandbox
    archive = make_zip(root / "upload.zip", entries, symlink)
    before = tree(root)
    with pytest.raises(UploadError, match=message):
        receive_upload(archive, run_dir)
    assert tree(root) == before, "a refused upload must leave nothing behind"


def test_an_oversized_but_incompressible_member_is_refused(sandbox):
    root, run_dir = sandbox
    archive = make_zip(root / "upload.zip", {"big.bin": os.urandom(3 * 1024**2)})
    with pytest.raises(UploadError, match="at most 2 MB"):
        extract_zip(archive, run_dir / "data", max_member_bytes=2 * 1024**2)
    assert not (run_dir / "data" / "big.bin").exists()


def test_a_zip_whose_header_lies_about_sizes_is_refused(sandbox):
    root, run_dir = sandbox
    archive = make_zip(root / "upload.zip", {"a.bin": os.urandom(4096)})
    raw = bytearray(archive.read_bytes())
    # Shrink the declared uncompressed size (local header offset 22, central directory entry offset 24).
    raw[22:26] = (100).to_bytes(4, "little")
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(UploadError, match=r"larger than its header says|damaged"):
        receive_upload(archive, run_dir)
    assert not (run_dir / "data").exists()


def test_a_good_zip_is_unpacked_and_validated_with_the_training_loader(sandbox, synthetic_jsonl):
    root, run_dir = sandbox
    folder = synthetic_jsonl.parent
    lines = synthetic_jsonl.read_text().splitlines()
    bad = json.loads(lines[0]) | {"id": "bad-answer", "answer": "Z"}
    entries = {"data.jsonl": ("\n".join([*lines, json.dumps(bad)]) + "\n").encode()}
    entries |= {f"images/{p.name}": p.read_bytes() for p in (folder / "images").iterdir()}
    entries["images/" + sorted((folder / "images").iterdir())[0].name] = b"not a png"
    data_dir = receive_upload(make_zip(root / "upload.zip", entries), run_dir)
    assert data_dir == run_dir / "data" and (data_dir / "data.jsonl").is_file()

    report = validate_dataset(data_dir)
    assert len(report.loaded.samples) == 24
    assert [p.record_id for p in report.loaded.problems] == ["bad-answer"]
    assert len(report.image_problems) == 1 and "not a" in report.image_problems[0].lower()
    assert not report.usable
    text = report.markdown()
    assert "24 questions ready" in text and "| CT |" in text and "bad-answer" in text and "cannot be read" in text


def test_other_file_types_are_refused(sandbox):
    root, run_dir = sandbox
    upload = root / "notes.txt"
    upload.write_text("hello")
    with pytest.raises(UploadError, match=r"\.jsonl or \.json"):
        receive_upload(upload, run_dir)


def test_hardware_check_allows_the_tiny_model_and_refuses_a_real_one_without_gpu(tiny_model_dir):
    assert check_hardware(str(tiny_model_dir), cuda_available=False)[0]
    allowed, message = check_hardware("Qwen/Qwen2-VL-2B-Instruct", cuda_available=False)
    assert not allowed and "No GPU" in message and "GB" in message


def settings(tiny_model_dir, data: Path, out: Path, steps: int) -> dict:
    """A run's recipe: ``medr1-train grpo`` options by name, as the Fine-tune tab writes them."""
    return {
        "model_name_or_path": str(tiny_model_dir), "dataset_path": [str(data)], "output_dir": str(out),
        "reward_funcs": ["format", "letter_a"], "reward_modules": ["reward_plugins"], "num_generations": 4,
        "per_device_train_batch_size": 4, "learning_rate": 5e-3, "lora_r": 4, "lora_alpha": 8, "beta": 0.0,
        "max_completion_length": 8, "max_steps": steps, "max_pixels": 12544, "save_steps": 1,
        "gradient_checkpointing": False, "logging_steps": 1, "report_to": "none",
    }  # fmt: skip


def wait_for(condition, timeout: float = 300.0, poll: float = 0.5) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(poll)


ENV = {"PYTHONPATH": str(TESTS), "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_stop_mid_run_saves_a_loadable_adapter(tmp_path, tiny_model_dir, synthetic_jsonl):
    manager = RunManager(tmp_path / "runs")
    run = manager.start(settings(tiny_model_dir, synthetic_jsonl, manager.new_run_dir(), 500), env=ENV)
    with pytest.raises(RuntimeError, match="one run at a time"):
        manager.start(settings(tiny_model_dir, synthetic_jsonl, manager.new_run_dir(), 5), env=ENV)
    wait_for(lambda: run.status().step >= 2)
    assert run.status().state == "running"
    run.stop()
    status = run.status()
    assert status.state == "stopped" and 2 <= status.step < 500, status.message
    assert status.adapter_dir and manager.adapters() == [Path(status.adapter_dir)]
    from peft import PeftModel

    from train.model_io import load_model

    PeftModel.from_pretrained(load_model(str(tiny_model_dir)), status.adapter_dir)


@pytest.mark.slow
def test_a_killed_run_reports_the_failure_and_resumes_from_its_checkpoint(tmp_path, tiny_model_dir, synthetic_jsonl):
    manager = RunManager(tmp_path / "runs")
    out = manager.new_run_dir()
    # Killed at its first checkpoint, with steps left: under load a later kill can miss a run of 6 short steps.
    run = manager.start(settings(tiny_model_dir, synthetic_jsonl, out, 8), env=ENV)
    wait_for(lambda: (out / "checkpoint-1" / "trainer_state.json").is_file(), poll=0.1)  # complete, not begun
    os.killpg(run.process.pid, signal.SIGKILL)
    run.wait()
    status = run.status()
    assert status.state == "failed" and "SIGKILL" in status.message and "Resume" in status.message
    assert status.adapter_dir is None

    resumed = manager.start(run.recipe, resume=True, env=ENV)
    assert resumed.wait(300) == 0
    final = resumed.status()
    assert final.state == "finished" and final.step == 8 and final.adapter_dir
    steps = [r["step"] for r in final.metrics if "reward" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 8
    assert "resuming" in (out / "train.log").read_text().lower()
