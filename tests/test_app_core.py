"""The app's building blocks without a server: models, generation, answering, viewer, rendering, export."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pydicom.examples
import pytest
from medr1_app_testkit import WELL_FORMED, ScriptedStream
from PIL import Image

from train.imaging import PixelBounds, model_picture
from train.model_io import ModelLoadError
from train.protocol import build_prompt, parse_response

# ----------------------------------------------------------------------------------------- models


def test_builtin_registry_has_the_real_choices():
    from medr1_app.models import MEDR1_REPO, builtin_models

    specs = {s.key: s for s in builtin_models()}
    assert specs["qwen2-vl-2b"].source == "Qwen/Qwen2-VL-2B-Instruct"
    assert specs["qwen2.5-vl-3b"].source == "Qwen/Qwen2.5-VL-3B-Instruct"
    medr1 = [s for s in specs.values() if s.source == MEDR1_REPO]
    assert medr1 and all("unverified" in s.label and "unverified" in s.note for s in medr1)
    nothink = [s for s in medr1 if s.subfolder.startswith("Qwen_2.5_3B_nothink/")]
    assert nothink and all(s.prompt_style == "no_think" for s in nothink)


def test_model_arguments(tiny_model_dir):
    from medr1_app.models import spec_from_argument

    assert spec_from_argument("qwen2-vl-2b").source == "Qwen/Qwen2-VL-2B-Instruct"
    assert spec_from_argument("Qwen/Qwen2-VL-2B-Instruct").key == "qwen2-vl-2b"
    custom = spec_from_argument("yuxianglai117/Med-R1:VQA_OCT")
    assert (custom.source, custom.subfolder, custom.kind) == ("yuxianglai117/Med-R1", "VQA_OCT", "medr1")
    local = spec_from_argument(str(tiny_model_dir))
    assert local.tiny and local.kind == "tiny" and local.source == str(Path(tiny_model_dir).resolve())
    with pytest.raises(ModelLoadError, match="--model PATH"):
        spec_from_argument("no-such-model")


def test_ensure_tiny_model_reuses_a_built_model(tiny_model_dir, tmp_path):
    from medr1_app.models import ensure_tiny_model, spec_from_argument

    shutil.copytree(tiny_model_dir, tmp_path / "medr1-tiny-random-qwen2_vl")
    before = (tmp_path / "medr1-tiny-random-qwen2_vl" / "config.json").stat().st_mtime_ns
    assert ensure_tiny_model(tmp_path) == tmp_path / "medr1-tiny-random-qwen2_vl"
    assert (tmp_path / "medr1-tiny-random-qwen2_vl" / "config.json").stat().st_mtime_ns == before
    spec = spec_from_argument("tiny", cache_dir=tmp_path)
    assert spec.key == "tiny" and spec.tiny and "meaningless" in spec.label


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """An untrained LoRA adapter saved like a ``medr1-train grpo`` output (adapter, processor, card)."""
    from peft import LoraConfig, get_peft_model

    from train.model_io import load_model, load_processor

    out = tmp_path_factory.mktemp("runs") / "grpo-ct"
    model = get_peft_model(load_model(str(tiny_model_dir), dtype="float32"), LoraConfig(r=2, target_modules=["q_proj"]))
    model.save_pretrained(out)
    load_processor(str(tiny_model_dir)).save_pretrained(out)
    card = {"kind": "grpo", "base_model": str(tiny_model_dir), "tiny_random_base": True}
    (out / "medr1_card.json").write_text(json.dumps({**card, "data_config": {"prompt_style": "no_think"}}))
    return out


def test_runs_directory_is_scanned_and_adapters_load(adapter_dir, tiny_model_dir):
    from medr1_app.models import ModelManager, ModelRegistry, builtin_models

    registry = ModelRegistry(builtin_models(), runs_dir=adapter_dir.parent)
    found = [s for s in registry.list_models() if s.kind == "adapter"]
    assert len(found) == 1
    spec = found[0]
    assert spec.adapter == str(adapter_dir.resolve()) and spec.source == str(tiny_model_dir)
    assert spec.prompt_style == "no_think" and spec.tiny
    assert (spec.label, spec.key) in registry.choices()
    manager = ModelManager(registry, device="cpu")
    loaded = manager.get(spec.key)
    assert loaded.tiny and loaded.device == "cpu" and loaded.bounds == PixelBounds(3136, 12544)
    assert manager.get(spec.key) is loaded, "a model is loaded once"


def test_add_path_and_unknown_keys(adapter_dir, tmp_path):
    from medr1_app.models import ModelRegistry

    registry = ModelRegistry()
    spec = registry.add_path(adapter_dir)
    assert registry.get(spec.key) == spec and registry.list_models() == [spec]
    with pytest.raises(ModelLoadError, match="Unknown model"):
        registry.get("nope")
    with pytest.raises(ModelLoadError, match=r"neither config\.json"):
        registry.add_path(tmp_path)


def test_offline_hub_model_gives_a_clear_message(monkeypatch, tmp_path):
    from medr1_app.models import ModelManager, ModelRegistry, spec_from_argument

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    medr1 = spec_from_argument("yuxianglai117/Med-R1:VQA_CT")
    assert medr1.key == "medr1-2b-vqa_ct"
    registry = ModelRegistry([medr1, spec_from_argument("qwen2-vl-2b")])
    manager = ModelManager(registry, device="cpu")
    with pytest.raises(ModelLoadError, match=r"not in the local cache.*--model PATH"):
        manager.get(medr1.key)
    with pytest.raises(ModelLoadError, match="--model PATH"):
        manager.get("qwen2-vl-2b")
    assert manager.loaded is None


# ------------------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from medr1_app.models import ModelManager, ModelRegistry, spec_from_argument

    spec = spec_from_argument(str(tiny_model_dir))
    return ModelManager(ModelRegistry([spec]), device="cpu").get(spec.key)


def test_the_viewer_picture_is_exactly_the_processor_input(loaded):
    from medr1_app.generation import build_inputs

    picture = model_picture(Image.new("RGB", (640, 360), (40, 80, 120)), bounds=loaded.bounds)
    assert picture.width % 28 == 0 and picture.height % 28 == 0
    assert loaded.bounds.min_pixels <= picture.width * picture.height <= loaded.bounds.max_pixels
    inputs = build_inputs(loaded, picture, "What is this?")
    _, grid_h, grid_w = inputs["image_grid_thw"][0].tolist()
    assert (grid_w * 14, grid_h * 14) == picture.size, "the processor must not resize the viewer's picture"


def test_settings_validation():
    from medr1_app.generation import GenerationSettings

    assert GenerationSettings(samples=5).effective_temperature == 0.7
    assert GenerationSettings(temperature=0.3, samples=5).effective_temperature == 0.3
    for bad in (dict(temperature=-1), dict(top_p=0), dict(max_new_tokens=0), dict(samples=11), dict(prompt_style="x")):
        with pytest.raises(ValueError):
            GenerationSettings(**bad).validated()


def test_stream_text_streams_and_is_reproducible(loaded):
    from medr1_app.generation import GenerationSettings, stream_text

    picture = model_picture(Image.new("RGB", (100, 100), (200, 10, 10)), bounds=loaded.bounds)
    settings = GenerationSettings(temperature=1.0, max_new_tokens=40, seed=5)
    prompt = build_prompt("Which modality?", ["CT", "MRI"])
    first = list(stream_text(loaded, picture, prompt, settings))
    assert len(first) >= 2 and all(first[i + 1].startswith(first[i]) for i in range(len(first) - 1))
    assert list(stream_text(loaded, picture, prompt, settings))[-1] == first[-1]


def test_streamed_text_is_exactly_what_generate_produces(loaded):
    import torch

    from medr1_app.generation import GenerationSettings, build_inputs, stream_text

    picture = model_picture(Image.new("RGB", (90, 120), (10, 120, 200)), bounds=loaded.bounds)
    prompt = build_prompt("Which organ?", ["Liver", "Kidney", "Brain"])
    settings = GenerationSettings(temperature=0.0, max_new_tokens=40)
    streamed = list(stream_text(loaded, picture, prompt, settings, min_new_tokens=40))[-1]
    inputs = build_inputs(loaded, picture, prompt)
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, max_new_tokens=40, min_new_tokens=40, do_sample=False)
    bare = loaded.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert streamed == bare


def test_samples_stream_together_and_are_what_batched_generate_samples(loaded):
    import torch

    from medr1_app.generation import GenerationSettings, build_inputs, stream_samples

    picture = model_picture(Image.new("RGB", (100, 100), (200, 10, 10)), bounds=loaded.bounds)
    prompt = build_prompt("Which modality?", ["CT", "MRI"])
    settings = GenerationSettings(temperature=1.0, max_new_tokens=40, seed=5, samples=4)
    steps = list(stream_samples(loaded, picture, prompt, settings))
    final = steps[-1]
    assert len(final.texts) == 4 and all(final.ended) and len(set(final.texts)) > 1
    assert sum(any(step.texts[1:]) for step in steps[:-1]) >= 2, "every sample streams, not only the first"
    assert list(stream_samples(loaded, picture, prompt, settings))[-1] == final, "the seed draws them again"
    inputs = build_inputs(loaded, picture, prompt)
    torch.manual_seed(5)
    with torch.inference_mode():
        out = loaded.model.generate(
            **inputs, num_return_sequences=4, max_new_tokens=40, do_sample=True, temperature=1.0, top_k=0, top_p=1.0
        )
    bare = loaded.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert list(final.texts) == bare
    decoded = [loaded.processor.tokenizer.decode(list(ids), skip_special_tokens=True) for ids in final.ids]
    assert decoded == bare, "the token ids evidence reads are the ones shown"


def test_a_small_model_decodes_on_one_thread_and_the_rest_of_the_app_keeps_its_threads(loaded, monkeypatch):
    """On the CPU the tiny model generates on one torch thread, in the generating thread only."""
    import torch

    from medr1_app.generation import GenerationSettings, stream_samples
    from train.generation import decode_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    counts = []
    real_generate = loaded.model.generate

    def spy(**kwargs):
        counts.append((threading.current_thread().name, torch.get_num_threads()))
        return real_generate(**kwargs)

    monkeypatch.setattr(loaded.model, "generate", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # two threads here whatever this machine's default, so the test can fail
    picture = model_picture(Image.new("RGB", (100, 100), (200, 10, 10)), bounds=loaded.bounds)
    settings = GenerationSettings(temperature=1.0, max_new_tokens=8, seed=5, samples=3)
    try:
        list(stream_samples(loaded, picture, build_prompt("Which modality?", ["CT", "MRI"]), settings))
        assert counts == [("medr1-generate", 1)]
        assert torch.get_num_threads() == 2, "the caller's thread count is left as it was"
    finally:
        torch.set_num_threads(before)

    wide = type("Config", (), {"get_text_config": lambda self: type("Text", (), {"hidden_size": 1536})()})()
    assert decode_threads(type("Model", (), {"config": wide})(), "cpu") is None, "a 2B-wide model keeps torch's"
    assert decode_threads(loaded.model, "cuda:0") is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert decode_threads(loaded.model, "cpu") is None, "the user's OMP_NUM_THREADS wins"


def test_the_fast_path_streams_the_same_greedy_text(loaded):
    from dataclasses import replace

    from medr1_app.generation import GenerationSettings, stream_text

    picture = model_picture(Image.new("RGB", (90, 120), (10, 120, 200)), bounds=loaded.bounds)
    prompt = build_prompt("Which organ?", ["Liver", "Kidney", "Brain"])
    settings = GenerationSettings(temperature=0.0, max_new_tokens=40)
    ordinary = list(stream_text(replace(loaded, fast="off"), picture, prompt, settings, min_new_tokens=40))[-1]
    fast = list(stream_text(replace(loaded, fast="on"), picture, prompt, settings, min_new_tokens=40))[-1]
    assert fast == ordinary and len(loaded.processor.tokenizer(fast).input_ids) >= 30


def test_stop_leaves_unfinished_samples_unfinished(loaded):
    from medr1_app.generation import GenerationSettings, stream_samples

    picture = model_picture(Image.new("RGB", (100, 100)), bounds=loaded.bounds)
    stop = threading.Event()
    settings = GenerationSettings(temperature=1.0, max_new_tokens=400, seed=1, samples=3)
    steps = []
    for step in stream_samples(loaded, picture, "Describe.", settings, stop, min_new_tokens=400):
        steps.append(step)
        if len(steps) == 3:
            stop.set()
    assert steps[-1].ended == (False, False, False) and all(steps[-1].texts)
    assert not [t for t in threading.enumerate() if t.name == "medr1-generate"]


def test_stop_event_ends_generate_at_the_next_token(loaded):
    from medr1_app.generation import GenerationSettings, stream_text

    picture = model_picture(Image.new("RGB", (100, 100)), bounds=loaded.bounds)
    stop = threading.Event()
    settings = GenerationSettings(temperature=1.0, max_new_tokens=400, seed=1)
    seen = []
    for text in stream_text(loaded, picture, "Describe.", settings, stop):
        seen.append(text)
        if len(seen) == 3:
            at_stop = len(loaded.processor.tokenizer(text).input_ids)
            stop.set()
    final = len(loaded.processor.tokenizer(seen[-1]).input_ids)
    # Only the tokens already queued when Stop was pressed, plus at most the one being sampled.
    assert len(seen) <= 5 and final - at_stop <= 12 and final < 100
    assert not [t for t in threading.enumerate() if t.name == "medr1-generate"]


def test_closing_the_stream_early_stops_generate(loaded):
    from medr1_app.generation import GenerationSettings, stream_text

    picture = model_picture(Image.new("RGB", (100, 100)), bounds=loaded.bounds)
    stop = threading.Event()
    stream = stream_text(loaded, picture, "Describe.", GenerationSettings(temperature=1.0, max_new_tokens=400), stop)
    next(stream)
    stream.close()  # what Gradio does when the client goes away
    assert stop.is_set()
    assert not [t for t in threading.enumerate() if t.name == "medr1-generate"]


# -------------------------------------------------------------------------------------- answering


def _sample(text, options=("CT", "MRI", "X-ray"), finished=True):
    from medr1_app.answering import SampledAnswer

    parsed = parse_response(text, list(options) if options else None)
    return SampledAnswer(0, 0, text, parsed, finished, free_text=not options)


def test_tally_counts_letters_and_finds_no_majority_on_ties():
    from medr1_app.answering import tally

    vote = tally([_sample("<answer>C</answer>")] * 4 + [_sample("<answer>A</answer>")])
    assert (vote.winner, vote.winner_count, vote.total) == ("C", 4, 5)
    assert vote.summary(["CT", "MRI", "X-ray"]) == "4 of 5 samples chose C (X-ray)."
    tie = tally([_sample("<answer>A</answer>"), _sample("<answer>B</answer>"), _sample("no tags")])
    assert tie.winner is None and tie.no_answer == 1
    assert tie.summary(["CT", "MRI", "X-ray"]) == (
        "No majority across 3 samples: 1 chose A (CT), 1 chose B (MRI), 1 gave no readable answer."
    )
    assert tally([_sample("junk")]).summary() == "None of the 1 samples gave a readable answer."
    unfinished = tally([_sample("<answer>A</answer>", finished=False)])
    assert unfinished.total == 0


def test_free_text_votes_use_the_answer_text():
    from medr1_app.answering import tally

    vote = tally([_sample("<answer>A smooth ramp</answer>", options=())] * 2 + [_sample("<answer>x</answer>", ())])
    assert vote.winner == "a smooth ramp" and vote.summary() == "2 of 3 samples chose “a smooth ramp”."


def test_answer_streams_all_samples_together_from_one_seed(loaded):
    from medr1_app.answering import answer
    from medr1_app.generation import GenerationSettings

    stream = ScriptedStream(["<answer>B</answer>", "<answer>A</answer>", "<answer>B</answer>"])
    picture = Image.new("RGB", (56, 56))
    steps = list(answer(loaded, picture, "p", ["CT", "MRI"], GenerationSettings(samples=3, seed=7), stream_fn=stream))
    final = steps[-1]
    assert final.finished and len(final.samples) == 3 and len(steps) > 3
    assert [(c["samples"], c["seed"]) for c in stream.calls] == [(3, 7)], "one call draws all three samples"
    assert all(len(step.samples) == 3 for step in steps) and steps[1].samples[2].text, "each sample streams at once"
    assert [s.seed for s in final.samples] == [7, 7, 7]
    assert final.vote.winner == "B" and final.vote.winner_count == 2


def test_stop_during_self_consistency_keeps_finished_samples(loaded):
    from medr1_app.answering import answer
    from medr1_app.generation import GenerationSettings

    stop = threading.Event()
    long = "<think>" + "the rim is dense bone " * 10 + "</think><answer>B</answer>"
    stream = ScriptedStream(["<answer>A</answer>", long, long], chunk=2)
    final = None
    for progress in answer(loaded, Image.new("RGB", (56, 56)), "p", ["CT", "MRI"], GenerationSettings(samples=3),
                           stop, stream_fn=stream):  # fmt: skip
        final = progress
        if progress.samples[0].finished:
            stop.set()
    assert final.stopped and final.finished and len(final.samples) == 3
    assert final.samples[0].finished and final.samples[0].choice == "A"
    assert final.samples[1].stopped and final.samples[2].stopped and not final.samples[1].finished
    assert final.vote.total == 1 and final.vote.winner == "A"


# ----------------------------------------------------------------------------------------- viewer


def test_viewer_windows_and_bounds(tiny_model_dir):
    from medr1_app.models import spec_from_argument
    from medr1_app.viewer import CUSTOM, bounds_for, slider_range, window_arg, window_choices
    from train.imaging import open_study

    ct = open_study(pydicom.examples.get_path("ct"))
    values = [v for _, v in window_choices(ct)]
    assert values[0] == "default" and "lung" in values and values[-1] == CUSTOM
    assert window_arg(CUSTOM, 40, 80) == (40.0, 80.0) and window_arg("default", 1, 2) is None
    rng = slider_range(ct)
    assert rng.low < -500 and rng.high > 500 and rng.step == 1
    assert bounds_for(spec_from_argument(str(tiny_model_dir)), None) == PixelBounds(3136, 12544)
    assert bounds_for(spec_from_argument("qwen2-vl-2b"), None) == PixelBounds(3136, 401408)
    narrow = np.asarray(model_picture(ct, 0, (40, 80), PixelBounds(3136, 12544)))
    wide = np.asarray(model_picture(ct, 0, "bone", PixelBounds(3136, 12544)))
    assert narrow.shape == wide.shape == (112, 112, 3) and not np.array_equal(narrow, wide)
    colour = open_study(pydicom.examples.get_path("rgb_color"))
    assert window_choices(colour) == [("Default", "default")]


# -------------------------------------------------------------------------------- render & export


def test_render_escapes_model_text_and_marks_malformed_output():
    from medr1_app import render
    from medr1_app.answering import AnswerProgress

    sample = _sample("<think><script>alert(1)</script></think><answer>A or C</answer>")
    progress = AnswerProgress([sample], finished=True)
    html = render.answer_html(progress, ["CT", "MRI", "X-ray"])
    assert "Malformed output" in html and "No answer" in html and "answer names several options" in html
    assert "<script>" not in render.samples_html(AnswerProgress([sample, sample], finished=True))
    assert render.rationale_text(progress) == "<script>alert(1)</script>"
    ok = render.answer_html(AnswerProgress([_sample(WELL_FORMED)], finished=True), ["CT", "MRI", "X-ray"])
    assert 'data-testid="answer-letter">A<' in ok and "CT" in ok and "Well-formed answer" in ok
    streaming = render.answer_html(AnswerProgress([_sample("<think>Looking", finished=False)]), ["CT", "MRI"])
    assert "Generating" in streaming and "Malformed" not in streaming
    assert "meaningless" in render.banner_html(True) and render.banner_html(False) == ""
    table = render.metadata_markdown("dicom", {"modality": "CT", "pixel_spacing_mm": [0.5, 0.5]}, ["Burned-in text"])
    assert "| Modality | CT |" in table and "0.5, 0.5" in table and "⚠ Burned-in text" in table


def test_export_round_trip(tmp_path):
    from medr1_app.answering import AnswerProgress, tally
    from medr1_app.conversation import Conversation, Turn
    from medr1_app.export import AskRecord, write_export
    from medr1_app.generation import GenerationSettings
    from medr1_app.models import spec_from_argument

    samples = [_sample("<think>Dense bone.</think><answer>C</answer>"), _sample("<answer>B</answer>")]
    samples[0].seed = samples[1].seed = 4
    samples[1].index = 1
    progress = AnswerProgress(samples, finished=True, vote=tally(samples))
    picture = Image.fromarray(np.arange(56 * 56, dtype=np.uint16).reshape(56, 56).astype(np.uint8)).convert("RGB")
    options = ("CT", "MRI", "X-ray")
    first = Turn(
        "Which modality?", options, build_prompt("Which modality?", list(options)), GenerationSettings(samples=2)
    )
    first.progress = progress
    follow = Turn("Why?", (), build_prompt("Why?"), GenerationSettings())
    follow.progress = AnswerProgress(
        [_sample("<think>Bone.</think><answer>Bright bone</answer>", options=())], finished=True
    )
    conversation = Conversation(picture, {"frame": 0}, {"modality": "CT"}, "qwen2-vl-2b", [first, follow])
    png, as_json, as_md = write_export(AskRecord(spec_from_argument("qwen2-vl-2b"), conversation), None, tmp_path)
    data = json.loads(as_json.read_text())
    # The top level is the latest question; the conversation holds both, the first with its vote.
    assert data["schema"] == "medr1.ask/2" and data["question"] == "Why?" and data["options"] == {}
    assert data["samples"][0]["answer"] == "Bright bone" and data["image"]["summary"] == {"modality": "CT"}
    first_turn = data["conversation"][0]
    assert first_turn["options"] == {"A": "CT", "B": "MRI", "C": "X-ray"} and len(data["conversation"]) == 2
    assert first_turn["samples"][0]["letter"] == "C" and first_turn["samples"][1]["rationale"] is None
    assert first_turn["vote"]["counts"] == {"B": 1, "C": 1} and first_turn["vote"]["winner"] is None
    assert first_turn["settings"]["effective_temperature"] == 0.7
    markdown = as_md.read_text()
    assert "## Question 1" in markdown and "**Question:** Which modality?" in markdown
    assert "*2 samples drawn together from seed 4.*" in markdown and "### Sample 2\n" in markdown
    assert "**Answer:** B) MRI — *malformed*" in markdown
    assert "## Question 2" in markdown and "**Answer:** Bright bone — *well-formed*" in markdown
    with Image.open(png) as saved:
        assert np.array_equal(np.asarray(saved.convert("RGB")), np.asarray(picture)), "the PNG must be lossless"


def test_upload_janitor_deletes_after_a_grace_period_and_only_in_the_upload_cache(tmp_path):
    import time

    import gradio as gr

    from medr1_app.uploads import UploadJanitor

    folder = Path(gr.utils.get_upload_folder()) / f"medr1-test-{time.time_ns()}"
    folder.mkdir(parents=True)
    upload = folder / "scan.dcm"
    upload.write_bytes(b"x")
    outside = tmp_path / "keep.dcm"
    outside.write_bytes(b"x")
    janitor = UploadJanitor(0.4)
    janitor.release(upload)
    janitor.release(outside)
    time.sleep(0.25)
    janitor.release(upload)  # read again by a second user: the countdown restarts
    time.sleep(0.25)
    assert upload.exists()
    deadline = time.time() + 5
    while janitor.pending() and time.time() < deadline:
        time.sleep(0.02)
    assert not upload.exists() and not folder.exists()
    assert outside.exists(), "files outside Gradio's upload cache are never deleted"


def test_upload_janitor_leaves_a_file_uploaded_again_since_it_was_read():
    import os
    import time

    import gradio as gr

    from medr1_app.uploads import UploadJanitor

    folder = Path(gr.utils.get_upload_folder()) / f"medr1-test-{time.time_ns()}"
    folder.mkdir(parents=True)
    upload = folder / "scan.dcm"
    upload.write_bytes(b"first")
    janitor = UploadJanitor(0.2)
    janitor.release(upload)
    fresh = folder / "incoming"
    fresh.write_bytes(b"first")
    os.replace(fresh, upload)  # what Gradio does when another user uploads the same bytes
    time.sleep(0.5)
    assert upload.exists(), "the second user's upload must survive the first user's clean-up"
    janitor.release(upload)
    time.sleep(0.5)
    assert not upload.exists()
