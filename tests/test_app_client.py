"""The app driven through its HTTP API with ``gradio_client``, as a script or another program would.

Two apps are launched in this process:

* ``tiny_app`` runs the **real generation path** on the tiny random model: its output is whatever the
  random weights produce (never the tags), and the tests check that it is shown as malformed.
* ``scripted_app`` replaces only the text generator (``build_app(stream_fn=...)``, the documented test
  seam) to get known responses; image handling, model loading, prompt, parser, rendering and export
  are the real ones.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pydicom
import pydicom.examples
import pytest
from medr1_app_testkit import (
    ANSWER,
    BANNER,
    DOWNLOADS,
    OPEN_FRAME,
    OPEN_METADATA,
    OPEN_STATUS,
    OPEN_UPLOAD,
    RATIONALE,
    RESULT,
    SAMPLES,
    STATUS,
    WELL_FORMED,
    ScriptedStream,
    ask_args,
    launch,
)
from PIL import Image

from train.protocol import build_prompt

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

CT = Path(pydicom.examples.get_path("ct"))
MULTIFRAME = Path(pydicom.examples.get_path("ybr_color"))


@pytest.fixture(scope="module")
def tiny_app(tiny_model_dir):
    from medr1_app.app import AppConfig, build_app

    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None, upload_grace_seconds=3.0))
    url = launch(demo)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def scripted(tiny_model_dir):
    from medr1_app.app import AppConfig, build_app

    stream = ScriptedStream([WELL_FORMED])
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), stream_fn=stream)
    url = launch(demo)
    yield stream, url
    demo.close()


def _client(url: str) -> Client:
    return Client(url, verbose=False)


@pytest.fixture
def png_file(tmp_path) -> Path:
    ramp = np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (150, 1))
    path = tmp_path / "chest.png"
    Image.fromarray(ramp).save(path)
    return path


def test_api_offers_one_call_predict_beside_the_screens_own_endpoints(tiny_app):
    """/predict needs nothing before it: the image and the question, options and settings optional."""
    api = _client(tiny_app[1]).view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/predict", "/open", "/ask", "/stop"}
    params = {p["parameter_name"]: p["parameter_has_default"] for p in api["named_endpoints"]["/predict"]["parameters"]}
    assert params == {"image": False, "question": False, "options": True, "settings": True}


def test_real_model_dicom_is_answered_and_shown_as_malformed(tiny_app):
    """End to end on the real generation path: a DICOM in, the tiny model's (tag-less) output out."""
    client = _client(tiny_app[1])
    opened = client.predict([handle_file(str(CT))], api_name="/open")
    assert "Loaded a DICOM file." in opened[OPEN_STATUS] and "CT_small" not in opened[OPEN_STATUS]
    assert "CT" in opened[OPEN_METADATA]
    job = client.submit(*ask_args(max_new_tokens=24), api_name="/ask")
    final = job.result()
    outputs = job.outputs()
    assert len(outputs) >= 3, "the answer should arrive as a stream of updates"
    result = final[RESULT]
    sample = result["samples"][0]
    assert result["model"]["tiny_random"] is True
    assert isinstance(sample["raw_output"], str)  # whatever the random weights wrote (often whitespace)
    assert sample["well_formed"] is False and sample["letter"] is None
    assert sample["issues"], "a malformed output must carry the parser's issues"
    assert "Malformed output" in final[ANSWER] and "No answer" in final[ANSWER]
    assert "Tiny random model" in final[BANNER]
    assert result["prompt"] == build_prompt(
        "What imaging technique was used to obtain this image?", ["CT", "MRI", "X-ray", "Ultrasound"]
    )
    width, height = result["image"]["model_input_size"]
    assert width % 28 == 0 and height % 28 == 0
    names = sorted(Path(p).name for p in final[DOWNLOADS])
    assert names == ["answer.json", "answer.md", "image.png"]


def test_scripted_png_gives_parsed_rationale_and_answer(scripted, png_file):
    stream, url = scripted
    stream.responses = [WELL_FORMED]
    stream.delay = 0.02  # slow enough for several screen updates (at most one per 50 ms)
    client = _client(url)
    client.predict([handle_file(str(png_file))], api_name="/open")
    job = client.submit(*ask_args(), api_name="/ask")
    final = job.result()
    stream.delay = 0.0
    rationales = [o[RATIONALE] for o in job.outputs() if isinstance(o[RATIONALE], str) and o[RATIONALE]]
    assert len(rationales) >= 3 and rationales[0] != rationales[-1], "the rationale must stream"
    sample = final[RESULT]["samples"][0]
    assert sample["letter"] == "A" and sample["option"] == "CT" and sample["well_formed"] is True
    assert sample["rationale"].startswith("The picture is a grey-scale cross-section")
    assert final[RATIONALE] == sample["rationale"]
    assert 'data-testid="answer-letter">A<' in final[ANSWER] and "Well-formed answer" in final[ANSWER]
    assert final[RESULT]["image"]["summary"]["format"] == "PNG"
    call = stream.calls[-1]
    assert call["prompt"] == final[RESULT]["prompt"]
    assert list(call["size"]) == final[RESULT]["image"]["model_input_size"]


def test_extensionless_dicom_is_recognised_by_content(tiny_app, tmp_path):
    bare = tmp_path / f"IM{uuid.uuid4().hex[:6]}"
    shutil.copyfile(CT, bare)
    opened = _client(tiny_app[1]).predict([handle_file(str(bare))], api_name="/open")
    assert "Loaded" in opened[OPEN_STATUS] and "CT" in opened[OPEN_METADATA]


def test_bad_files_show_the_imaging_error_and_the_app_keeps_serving(tiny_app, tmp_path):
    client = _client(tiny_app[1])
    text = tmp_path / "notes.dcm"
    text.write_text("Patient seen today; no image here.")
    opened = client.predict([handle_file(str(text))], api_name="/open")
    assert "medr1-status-error" in opened[OPEN_STATUS]
    assert "notes.dcm: not a DICOM file" in opened[OPEN_STATUS]

    report = pydicom.dcmread(CT)
    del report.PixelData
    no_pixels = tmp_path / "report.dcm"
    report.save_as(no_pixels)
    opened = client.predict([handle_file(str(no_pixels))], api_name="/open")
    assert "medr1-status-error" in opened[OPEN_STATUS] and "report.dcm" in opened[OPEN_STATUS]

    # The failed uploads left no study behind: asking now is refused with a clear message.
    final = client.predict(*ask_args(), api_name="/ask")
    assert "Upload an image" in final[STATUS] and final[RESULT] == {"error": final[RESULT]["error"]}
    # ... and the app still serves a good file.
    opened = client.predict([handle_file(str(CT))], api_name="/open")
    assert "Loaded a DICOM file." in opened[OPEN_STATUS] and "CT_small" not in opened[OPEN_STATUS]


def test_uploads_are_deleted_once_read(tiny_app, tmp_path):
    import gradio as gr

    unique = tmp_path / f"upload-{uuid.uuid4().hex}.dcm"
    shutil.copyfile(CT, unique)
    opened = _client(tiny_app[1]).predict([handle_file(str(unique))], api_name="/open")
    assert "Loaded" in opened[OPEN_STATUS]
    assert opened[OPEN_UPLOAD] is None  # the upload box is cleared
    janitor = tiny_app[0].medr1_context.uploads
    deadline = time.time() + 10
    while janitor.pending() and time.time() < deadline:
        time.sleep(0.05)
    assert list(Path(gr.utils.get_upload_folder()).rglob(unique.name)) == []


def test_identical_uploads_from_two_users_at_once(tiny_app):
    """Gradio stores uploads by content hash: one user's clean-up must not break another's upload."""
    results = []

    def open_ct():
        results.append(_client(tiny_app[1]).predict([handle_file(str(CT))], api_name="/open")[OPEN_STATUS])

    threads = [threading.Thread(target=open_ct) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all("Loaded a DICOM file." in r for r in results)


def test_multiframe_dicom_gets_a_frame_slider_and_the_frame_is_used(scripted):
    _, url = scripted
    client = _client(url)
    opened = client.predict([handle_file(str(MULTIFRAME))], api_name="/open")
    frame = opened[OPEN_FRAME]
    assert frame["visible"] is True and frame["maximum"] == 29
    final = client.predict(*ask_args(frame=7), api_name="/ask")
    assert final[RESULT]["image"]["frame"] == 7 and final[RESULT]["image"]["frames"] == 30


def test_stop_really_stops_generation(tiny_app):
    """Real model, long generation; /stop ends model.generate at the next token."""
    client = _client(tiny_app[1])
    client.predict([handle_file(str(CT))], api_name="/open")
    start = time.perf_counter()
    job = client.submit(*ask_args(max_new_tokens=2048, temperature=1.0, seed=3), api_name="/ask")
    deadline = time.time() + 60
    while len(job.outputs()) < 4 and time.time() < deadline:
        time.sleep(0.05)
    assert len(job.outputs()) >= 4, "generation did not start streaming"
    client.predict(api_name="/stop")
    final = job.result(timeout=60)
    elapsed = time.perf_counter() - start
    sample = final[RESULT]["samples"][0]
    assert sample["stopped"] is True and final[RESULT]["stopped"] is True
    assert "Stopped" in final[ANSWER]
    tokenizer = tiny_app[0].medr1_context.manager.loaded.processor.tokenizer
    assert len(tokenizer(sample["raw_output"]).input_ids) < 2048
    assert elapsed < 60
    time.sleep(0.2)
    assert not [t for t in threading.enumerate() if t.name == "medr1-generate"], "generate is still running"


def test_self_consistency_shows_the_vote_split(scripted, png_file):
    stream, url = scripted
    stream.responses = [
        "<think>Bone is bright.</think><answer>C</answer>",
        "<think>Looks like a radiograph.</think><answer>C</answer>",
        "<think>Maybe a CT.</think><answer>A</answer>",
        "<think>Projection image.</think><answer>C</answer>",
        "<think>Plain film.</think><answer>C</answer>",
    ]
    client = _client(url)
    client.predict([handle_file(str(png_file))], api_name="/open")
    final = client.predict(*ask_args(samples=5, seed=10), api_name="/ask")
    vote = final[RESULT]["vote"]
    assert vote["agreement"] == "4 of 5 samples chose C (X-ray)."
    assert vote["counts"] == {"C": 4, "A": 1} and vote["winner"] == "C"
    assert "4 of 5 samples chose C (X-ray)." in final[ANSWER]
    assert final[SAMPLES].count("<details") == 5 and "Maybe a CT." in final[SAMPLES]
    assert [s["seed"] for s in final[RESULT]["samples"]] == [10] * 5
    assert final[RESULT]["settings"]["effective_temperature"] == 0.7


def test_malformed_scripted_output_is_not_dressed_up(scripted, png_file):
    stream, url = scripted
    stream.responses = ["I think it is A or C. <answer>A or C</answer>"]
    client = _client(url)
    client.predict([handle_file(str(png_file))], api_name="/open")
    final = client.predict(*ask_args(), api_name="/ask")
    sample = final[RESULT]["samples"][0]
    assert sample["letter"] is None and not sample["well_formed"]
    assert "the answer names several options" in sample["issues"]
    assert "No answer" in final[ANSWER] and "Malformed output" in final[ANSWER]
    assert "answer names several options" in final[ANSWER]
    assert "raw model output" in final[RATIONALE]


def test_free_text_question_and_option_validation(scripted, png_file):
    stream, url = scripted
    stream.responses = ["<think>Uniform gradient.</think><answer>A smooth grey ramp</answer>"]
    client = _client(url)
    client.predict([handle_file(str(png_file))], api_name="/open")
    final = client.predict(*ask_args("Describe the image.", ()), api_name="/ask")
    assert final[RESULT]["options"] == {} and "A smooth grey ramp" in final[ANSWER]
    assert "short final answer" in final[RESULT]["prompt"]

    final = client.predict(*ask_args(options=("CT", "MRI", "", "US")), api_name="/ask")
    assert "Option C is empty" in final[STATUS]
    final = client.predict(*ask_args(options=("CT", "ct")), api_name="/ask")
    assert "same text" in final[STATUS]
    final = client.predict(*ask_args(question="  "), api_name="/ask")
    assert "question is empty" in final[STATUS]


def test_each_session_keeps_its_own_image(scripted, png_file):
    stream, url = scripted
    stream.responses = [WELL_FORMED]
    first, second, third = _client(url), _client(url), _client(url)
    assert "Loaded" in first.predict([handle_file(str(CT))], api_name="/open")[OPEN_STATUS]
    assert "Loaded" in second.predict([handle_file(str(png_file))], api_name="/open")[OPEN_STATUS]
    assert second.predict(*ask_args(), api_name="/ask")[RESULT]["image"]["kind"] == "image"
    assert first.predict(*ask_args(), api_name="/ask")[RESULT]["image"]["summary"]["modality"] == "CT"
    assert "Upload an image" in third.predict(*ask_args(), api_name="/ask")[STATUS]


def test_export_files_hold_the_answer_and_no_file_name(scripted, tmp_path):
    stream, url = scripted
    stream.responses = [WELL_FORMED]
    named = tmp_path / "DOE_JANE_1970.dcm"
    shutil.copyfile(CT, named)
    client = _client(url)
    client.predict([handle_file(str(named))], api_name="/open")
    final = client.predict(*ask_args(), api_name="/ask")
    files = {Path(p).name: Path(p) for p in final[DOWNLOADS]}
    markdown = files["answer.md"].read_text()
    as_json = files["answer.json"].read_text()
    assert "**Answer:** A) CT — *well-formed*" in markdown and "Research use only" in markdown
    for text in (markdown, as_json):
        assert "DOE" not in text and "JANE" not in text
    with Image.open(files["image.png"]) as png:
        assert list(png.size) == final[RESULT]["image"]["model_input_size"]


def test_a_failing_generator_is_reported_and_the_app_keeps_serving(scripted, png_file):
    stream, url = scripted
    client = _client(url)
    client.predict([handle_file(str(png_file))], api_name="/open")
    try:
        stream.responses = None  # the scripted generator now fails inside generation (TypeError)
        final = client.predict(*ask_args(), api_name="/ask")
    finally:
        stream.responses = [WELL_FORMED]
    assert "The model failed (TypeError)" in final[STATUS] and "error" in final[RESULT]
    assert client.predict(*ask_args(), api_name="/ask")[RESULT]["samples"][0]["letter"] == "A"
