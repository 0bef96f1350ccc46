"""The evidence kit (``train.evidence``): the map's grid and cells, the recorded attention, the option
preference and the image-reliance check, on the tiny random model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from train.evidence import EvidenceError, EvidenceMap, compute_evidence, find_answer, iter_evidence
from train.evidence.attention import layer_range, recording_rows
from train.evidence.compute import _prompt_inputs, _with_response
from train.evidence.maps import map_from_rows
from train.imaging import PixelBounds, fit_to_model
from train.model_io import load_for_inference, load_processor
from train.protocol import build_messages, build_prompt

OPTIONS = ["CT", "MRI", "X-Ray"]
RESPONSE = "<think>bright bone edges</think><answer>B</answer>"


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    processor = load_processor(str(tiny_model_dir), max_pixels=700 * 700, min_pixels=28 * 28)
    model = load_for_inference(str(tiny_model_dir), dtype="float32")
    return model, processor


def _ask(processor, size, response=RESPONSE, seed=0):
    rng = np.random.default_rng(seed)
    picture = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    messages = build_messages(build_prompt("Which modality is this?", OPTIONS, "think"))
    ids = processor.tokenizer(response, add_special_tokens=False)["input_ids"]
    return picture, messages, ids


@pytest.mark.parametrize("size", [(308, 196), (84, 588)])
def test_map_grid_is_the_model_inputs_token_grid(tiny, size):
    model, processor = tiny
    picture = fit_to_model(_ask(processor, size)[0], PixelBounds(28 * 28, 700 * 700))
    assert picture.size == size  # both sides are multiples of 28: the model sees them unchanged
    _, messages, ids = _ask(processor, size)
    evidence = compute_evidence(model, processor, [picture], messages, OPTIONS, ids, reliance=False)
    assert evidence.maps[0].grid == (size[1] // 28, size[0] // 28)
    assert evidence.maps[0].weights.sum() == pytest.approx(1.0)
    assert evidence.complete


def test_recorded_rows_equal_eager_attention_weights(tiny):
    """The cheap row recorder returns exactly what eager attention with output_attentions would."""
    model, processor = tiny
    picture, messages, ids = _ask(processor, (112, 84))
    full = _with_response(_prompt_inputs(processor, [picture], messages, "cpu"), ids)
    rows = [full["input_ids"].shape[1] - 4, full["input_ids"].shape[1] - 2]
    with torch.no_grad(), recording_rows(model, rows) as recorder:
        logits = model(**full).logits
    assert model.config.text_config._attn_implementation != "medr1_attention_rows"  # restored after the block
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            eager = model(**full, output_attentions=True)
    finally:
        model.set_attn_implementation("sdpa")
    assert sorted(recorder.layers) == list(range(len(eager.attentions)))
    for layer, weights in enumerate(eager.attentions):
        torch.testing.assert_close(recorder.layers[layer], weights[0][:, rows].float(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(logits, eager.logits, atol=1e-5, rtol=1e-5)


def test_attention_on_one_image_token_lights_its_28px_cell():
    rows, cols, hit = 3, 5, 7  # token 7 = row 1, column 2
    span = list(range(10, 10 + rows * cols))
    weights = torch.full((2, 1, 40), 1e-9)  # heads × queries × keys
    weights[..., span[hit]] = 1.0
    evidence_map = map_from_rows({0: weights}, [0], span, (rows, cols), cell=28)
    assert evidence_map.weights[1, 2] == pytest.approx(1.0, abs=1e-6)
    picture = Image.new("RGB", (cols * 28, rows * 28), (40, 40, 40))
    overlay = np.asarray(evidence_map.overlay(picture, opacity=1.0)).astype(int)
    changed = np.abs(overlay - 40).sum(axis=2) > 30
    ys, xs = np.nonzero(changed)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (28, 55, 56, 83)
    assert np.array_equal(np.asarray(evidence_map.overlay(picture, opacity=0.0)), np.asarray(picture))


def test_box_ratio_is_one_for_a_uniform_map_and_large_inside():
    uniform = EvidenceMap(np.full((4, 4), 1 / 16))
    assert uniform.box_ratio((0.1, 0.2, 0.6, 0.7)) == pytest.approx(1.0)
    peaked = np.zeros((4, 4))
    peaked[0, 0] = 1.0
    assert EvidenceMap(peaked).box_ratio((0, 0, 0.25, 0.25)) == pytest.approx(16.0)
    assert EvidenceMap(peaked).box_ratio((0.5, 0.5, 1, 1)) == 0.0


def test_option_probabilities_sum_to_one_over_the_options(tiny):
    model, processor = tiny
    picture, messages, ids = _ask(processor, (112, 112))
    evidence = compute_evidence(model, processor, [picture], messages, OPTIONS, ids, reliance=False)
    assert list(evidence.option_probabilities) == ["A", "B", "C"]
    assert sum(evidence.option_probabilities.values()) == pytest.approx(1.0)
    assert 0 < evidence.options_mass <= 1
    record = evidence.to_record()
    assert record["attention_map"]["grid"] == [4, 4]
    assert record["attention_map"]["png_base64"]
    assert "not a chance of being right" in record["note"]


def test_image_reliance_asks_again_on_grey_of_the_same_size(tiny, monkeypatch):
    model, processor = tiny
    picture, messages, ids = _ask(processor, (140, 84))
    seen = []
    real_call = type(processor).__call__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("images"))
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(type(processor), "__call__", spy)
    evidence = compute_evidence(model, processor, [picture], messages, OPTIONS, ids, max_new_tokens=12)
    assert len(seen) == 2 and seen[0][0] is picture
    grey = seen[1][0]
    assert grey.size == picture.size and grey.getextrema() == ((128, 128),) * 3
    reliance = evidence.reliance
    assert reliance.answer_with == "B"
    assert reliance.probability_with == pytest.approx(evidence.option_probabilities["B"])
    assert 0 <= reliance.probability_without <= 1
    expected = (
        "changes"
        if reliance.changed and reliance.answer_without
        else ("names no option" if reliance.changed else "same answer")
    )
    assert expected in reliance.sentence()


def test_stop_after_the_map_skips_the_reliance_check(tiny):
    model, processor = tiny
    picture, messages, ids = _ask(processor, (112, 112))
    stages = list(iter_evidence(model, processor, [picture], messages, OPTIONS, ids, should_stop=lambda: True))
    assert len(stages) == 1 and stages[0].maps and stages[0].reliance is None and not stages[0].complete


@pytest.mark.parametrize(
    "response, letter",
    [
        ("<answer>C</answer>", "C"),
        ("<think>x</think><answer> (A) CT</answer>", "A"),
        ("<answer>Answer: b</answer>", "B"),
    ],
)
def test_the_answer_letter_is_found_in_the_tokens(tiny, response, letter):
    processor = tiny[1]
    ids = processor.tokenizer(response, add_special_tokens=False)["input_ids"]
    position = find_answer(processor.tokenizer, ids, OPTIONS)
    assert position.letter == letter
    assert processor.tokenizer.decode(ids[position.letter_index]).strip(" ([").upper().startswith(letter)


def test_no_letter_means_no_evidence_in_plain_words(tiny):
    processor = tiny[1]
    ids = processor.tokenizer("<think>unsure</think>", add_special_tokens=False)["input_ids"]
    with pytest.raises(EvidenceError, match="names no option letter after <answer>"):
        find_answer(processor.tokenizer, ids, OPTIONS)
    with pytest.raises(EvidenceError, match="letter F"):
        find_answer(processor.tokenizer, processor.tokenizer("<answer>F</answer>")["input_ids"], OPTIONS)


def test_layer_ranges():
    assert layer_range("late", 28) == list(range(14, 28))
    assert layer_range("all", 2) == [0, 1]
    assert layer_range("last", 2) == [1]
    assert layer_range("1:3", 4) == [1, 2]
    with pytest.raises(ValueError, match="outside the model"):
        layer_range([5], 2)


def test_qwen2_5_vl_gives_evidence_too(tmp_path):
    from train.tiny_model import build_tiny_model

    directory = build_tiny_model(tmp_path / "tiny-qwen2_5_vl", arch="qwen2_5_vl", seed=0)
    processor = load_processor(str(directory), max_pixels=112 * 112, min_pixels=28 * 28)
    model = load_for_inference(str(directory), dtype="float32")
    picture, messages, ids = _ask(processor, (112, 56))
    evidence = compute_evidence(model, processor, [picture], messages, OPTIONS, ids, max_new_tokens=8)
    assert evidence.maps[0].grid == (2, 4)
    assert sum(evidence.option_probabilities.values()) == pytest.approx(1.0)
    assert evidence.reliance is not None


def test_the_reliance_sentence_weighs_the_preference_not_only_the_letter():
    from train.evidence import ImageReliance

    reads = ImageReliance("A", "D", 0.89, 0.07)
    assert reads.relies and "changes: A → D" in reads.sentence() and "depends on the picture" in reads.sentence()
    tie = ImageReliance("B", "C", 0.25, 0.25)
    assert tie.changed and not tie.relies and "near-tie flips easily" in tie.sentence()
    same = ImageReliance("D", "D", 0.80, 0.83)
    assert not same.changed and "may not be reading the picture" in same.sentence()
    kept_but_weaker = ImageReliance("C", "C", 0.9, 0.5)
    assert kept_but_weaker.relies and "same answer" in kept_but_weaker.sentence()
    assert reads.to_json()["relies_on_picture"] is True
    assert reads.to_json()["probability_without_read_on"] == "original response"


def test_relevancy_is_gradient_times_attention_as_eager_attention_gives_it(tiny):
    """The relevancy map's per-layer scores equal (A * dA).clamp(0) read from eager attention with autograd."""
    from train.evidence.compute import _relevancy

    model, processor = tiny
    picture, messages, ids = _ask(processor, (112, 84))
    full = _with_response(_prompt_inputs(processor, [picture], messages, "cpu"), ids)
    position = find_answer(processor.tokenizer, ids, OPTIONS)
    predicting = full["input_ids"].shape[1] - len(ids) + position.letter_index - 1
    token = ids[position.letter_index]
    ours = _relevancy(model, full, [predicting], predicting, token)
    model.set_attn_implementation("eager")
    try:
        with torch.enable_grad():
            out = model(**full, output_attentions=True)
            for weights in out.attentions:
                weights.retain_grad()
            out.logits[0, predicting, token].backward()
    finally:
        model.set_attn_implementation("sdpa")
        model.zero_grad(set_to_none=True)
    for layer, weights in enumerate(out.attentions):
        expected = (weights * weights.grad).clamp(min=0)[0][:, [predicting]].float()
        torch.testing.assert_close(ours[layer], expected, atol=1e-6, rtol=1e-4)
    assert any(float(ours[layer].sum()) > 0 for layer in ours)
    evidence = compute_evidence(model, processor, [picture], messages, OPTIONS, ids, reliance=False, relevancy=True)
    assert evidence.relevancy_maps[0].method == "relevancy" and evidence.relevancy_maps[0].grid == (3, 4)
    assert evidence.to_record()["relevancy_map"]["method"] == "relevancy"
