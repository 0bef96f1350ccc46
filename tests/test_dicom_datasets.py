"""DICOM in datasets: records name DICOM files (any name) with a frame and a window, read through one function.

Training, evaluation, the Fine-tune tab's validation and the Ask tab all make a record's picture with
``train.imaging.model_picture``; these tests check that they agree pixel for pixel and that bad DICOM is
reported per record like any other bad record.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom.examples
import pytest
from medr1_app_testkit import DOWNLOADS, RESULT, ask_args, launch
from PIL import Image

from train.data import load_samples, picture_problems, to_hf_dataset
from train.imaging import PixelBounds
from train.imaging.synthetic import ct_phantom, make_dataset, save

TESTS = Path(__file__).parent
TINY_BOUNDS = PixelBounds(3136, 12544)
TINY_FLAGS = ["--max_pixels", "12544", "--min_pixels", "3136"]


@pytest.fixture(scope="module")
def dicom_data(tmp_path_factory) -> Path:
    """A medr1 JSONL naming DICOM files without extensions: a 3-frame CT (frames differ) and pydicom's CT."""
    folder = tmp_path_factory.mktemp("dicom-data")
    frames = np.stack([ct_phantom(96, 96, seed=i) + np.int16(300 * i) for i in range(3)]).astype(np.int16)
    cine = make_dataset(
        frames + np.int16(1024), modality="CT", multi_frame=True, RescaleSlope=1, RescaleIntercept=-1024,
        WindowCenter=40, WindowWidth=400,
    )  # fmt: skip
    (folder / "scans").mkdir()
    save(cine, folder / "scans" / "IM0001")  # PACS exports often carry no extension
    shutil.copyfile(pydicom.examples.get_path("ct"), folder / "scans" / "IM0002")
    records = [
        {"id": "cine-2-lung", "image": "scans/IM0001", "frame": 2, "window": "lung"},
        {"id": "cine-0-custom", "image": "scans/IM0001", "frame": 0, "window": [40, 400]},
        {"id": "ct-default", "image": "scans/IM0002"},  # the dataset-level window applies (or the file's own)
        {"id": "ct-bone", "image": "scans/IM0002", "window": {"center": 400, "width": 1800}},
    ]
    question = {"question": "What imaging technique was used?", "options": ["CT", "MRI", "X-ray", "Ultrasound"]}
    labels = {"modality": "CT", "question_type": "Modality Recognition"}
    lines = [{**record, **question, **labels, "answer": "ABCD"[i % 4]} for i, record in enumerate(records)]
    (folder / "data.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_records_keep_their_frame_and_window_and_defaults_fill_the_rest(dicom_data):
    samples = {s.id: s for s in load_samples(dicom_data / "data.jsonl", window="abdomen", frame=0).samples}
    assert (samples["cine-2-lung"].frame, samples["cine-2-lung"].window) == (2, "lung")
    assert samples["cine-0-custom"].window == "40,400" and samples["ct-bone"].window == "400,1800"
    assert samples["ct-default"].window == "abdomen"
    frames = [np.asarray(samples["cine-2-lung"].picture(TINY_BOUNDS)), np.asarray(samples["cine-0-custom"].picture())]
    assert frames[0].shape[2] == 3 and not np.array_equal(frames[0][..., 0], frames[1][..., 0][: frames[0].shape[0]])


def test_bad_dicom_records_are_reported_per_record(dicom_data, tmp_path):
    bad = tmp_path / "bad.jsonl"
    lines = [
        {"id": "past-the-end", "image": str(dicom_data / "scans" / "IM0001"), "frame": 7},
        {"id": "no-such-preset", "image": str(dicom_data / "scans" / "IM0001"), "window": "brian"},
        {"id": "bad-window", "image": str(dicom_data / "scans" / "IM0001"), "window": "40,-3"},
        {"id": "bad-frame", "image": str(dicom_data / "scans" / "IM0001"), "frame": -1},
        {"id": "fine", "image": str(dicom_data / "scans" / "IM0002")},
    ]
    common = {"question": "Which?", "options": ["CT", "MRI"], "answer": "A"}
    bad.write_text("".join(json.dumps({**line, **common}) + "\n" for line in lines))
    loaded = load_samples(bad)
    rejected = {p.record_id: p.reason for p in loaded.problems}
    assert set(rejected) == {"bad-window", "bad-frame"}, "syntax errors are caught when the file is read"
    assert "positive" in rejected["bad-window"] and "whole number" in rejected["bad-frame"]
    problems = {p.record_id: p.reason for p in picture_problems(loaded.samples)}
    assert set(problems) == {"past-the-end", "no-such-preset"}, "file errors when the picture is made"
    assert "frame 7 does not exist" in problems["past-the-end"] and "3 frame(s)" in problems["past-the-end"]
    assert "unknown window 'brian'" in problems["no-such-preset"]


@pytest.fixture(scope="module")
def app(tiny_model_dir, tmp_path_factory):
    from medr1_app.app import AppConfig, build_app
    from medr1_app.training_runs import RunManager
    from medr1_app.ui_finetune import finetune_tab

    runs = RunManager(tmp_path_factory.mktemp("runs"))
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=str(runs.runs_dir)), extra_tabs=[finetune_tab(runs)])
    url = launch(demo)
    yield demo, url
    demo.close()


def test_training_hands_the_processor_the_ask_tabs_png_pixel_for_pixel(app, dicom_data, tiny_model_dir):
    """Frame 2 of a multi-frame CT in the lung window: the training row's picture is the Ask tab's PNG."""
    from gradio_client import Client, handle_file

    from train.model_io import load_processor

    _, url = app
    client = Client(url, verbose=False)
    client.predict([handle_file(str(dicom_data / "scans" / "IM0001"))], api_name="/open")
    answer = client.predict(*ask_args(window="lung", frame=2, max_new_tokens=16), api_name="/ask")
    assert answer[RESULT]["image"]["frame"] == 2 and answer[RESULT]["image"]["window"] == "lung"
    files = {Path(p).name: Path(p) for p in answer[DOWNLOADS]}
    shown = np.asarray(Image.open(files["image.png"]).convert("RGB"))

    samples = load_samples(dicom_data / "data.jsonl").samples
    row = to_hf_dataset(samples, bounds=TINY_BOUNDS)[0]
    assert row["id"] == "cine-2-lung"
    trained = np.asarray(row["image"])
    assert trained.shape == shown.shape and np.array_equal(trained, shown)

    processor = load_processor(str(tiny_model_dir), max_pixels=12544, min_pixels=3136)
    features = processor.image_processor(images=[row["image"]], return_tensors="pt")
    _, grid_h, grid_w = features["image_grid_thw"][0].tolist()
    assert (grid_w * 14, grid_h * 14) == row["image"].size, "the processor must not resize the picture again"


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder))
    return buffer.getvalue()


def test_the_fine_tune_tab_validates_a_dicom_dataset(app, dicom_data, tmp_path):
    from gradio_client import Client, handle_file

    _, url = app
    client = Client(url, verbose=False)
    good = tmp_path / "dicom.zip"
    good.write_bytes(_zip(dicom_data))
    report = client.predict(handle_file(str(good)), api_name="/finetune_upload")
    assert "4 questions ready" in report and "cannot be read" not in report

    broken = tmp_path / "broken"
    shutil.copytree(dicom_data, broken)
    lines = (broken / "data.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"frame": 2', '"frame": 5')
    (broken / "data.jsonl").write_text("\n".join(lines) + "\n")
    (broken / "broken.zip").write_bytes(_zip(broken))
    report = client.predict(handle_file(str(broken / "broken.zip")), api_name="/finetune_upload")
    assert "1 records' pictures cannot be read" in report and "record cine-2-lung" in report
    assert "frame 5 does not exist" in report


@pytest.mark.slow
def test_a_dicom_dataset_trains_and_evaluates_with_the_kits_commands(dicom_data, tiny_model_dir, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(TESTS), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "grpo"
    train = [
        sys.executable, "-m", "train.cli", "grpo", "--model_name_or_path", str(tiny_model_dir),
        "--dataset_path", str(dicom_data / "data.jsonl"), "--window", "abdomen", "--output_dir", str(out),
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--num_generations", "2",
        "--max_completion_length", "6", "--beta", "0", "--lora_r", "4", "--lora_alpha", "8",
        "--gradient_checkpointing", "false", "--report_to", "none", "--logging_steps", "1", *TINY_FLAGS,
    ]  # fmt: skip
    result = subprocess.run(train, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((out / "medr1_card.json").read_text())
    assert card["data"]["frames"] == {"0": 3, "2": 1}  # JSON keys are strings
    assert card["data"]["windows"] == {"lung": 1, "40,400": 1, "abdomen": 1, "400,1800": 1}
    assert card["data_config"]["window"] == "abdomen"

    report = tmp_path / "eval"
    evaluate = [
        sys.executable, "-m", "train.eval.cli", "--model", str(tiny_model_dir), "--adapter", str(out),
        "--dataset_path", str(dicom_data / "data.jsonl"), "--output_dir", str(report), "--max_new_tokens", "4",
        "--no_progress", *TINY_FLAGS,
    ]  # fmt: skip
    result = subprocess.run(evaluate, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in next(report.glob("runs/*/results.jsonl")).read_text().splitlines()]
    assert len(lines) == 4 and not any(line["error"] for line in lines)
    assert {(line["id"], line["frame"], line["window"]) for line in lines} >= {("cine-2-lung", 2, "lung")}
