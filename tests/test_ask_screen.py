"""The Ask screen's state, conversation and one-call API, through the app's HTTP API (``gradio_client``).

A scripted text generator stands in for the model where known text matters (the documented test seam,
``build_app(stream_fn=...)``); the picture, prompt, parser, export and session state are the app's own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom.examples
import pytest
from medr1_app_testkit import (
    ANSWER,
    CONVERSATION,
    DOWNLOADS,
    EVIDENCE,
    MAP_METHOD,
    MODEL_STATUS,
    OPEN_ANSWER,
    OPEN_ASK_STATUS,
    OPEN_DOWNLOADS,
    OPEN_EVIDENCE,
    OPEN_RESULT,
    RATIONALE,
    RESULT,
    SAMPLE_PICKER,
    STATUS,
    ScriptedStream,
    ask_args,
    follow_up_args,
    launch,
)
from PIL import Image

from train.protocol import build_prompt

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

CT = Path(pydicom.examples.get_path("ct"))
FIRST = "<think>Dense bone ring and grey soft tissue: a CT slice.</think>\n<answer>A</answer>"
SECOND = "<think>The bone is brighter than anything else.</think>\n<answer>The vertebral body</answer>"


class ConversationStream(ScriptedStream):
    """FIRST to a first question, SECOND to a follow-up (whose prompt is the conversation so far)."""

    def response(self, index: int, prompt) -> str:
        return SECOND if isinstance(prompt, list) else FIRST


@pytest.fixture(scope="module")
def scripted_app(tiny_model_dir):
    from medr1_app.app import AppConfig, build_app

    stream = ConversationStream([FIRST, SECOND])
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), stream_fn=stream)
    url = launch(demo)
    yield demo, stream, url
    demo.close()


def _client(url: str) -> Client:
    return Client(url, verbose=False)


def _png(tmp_path: Path, name: str = "other.png") -> Path:
    path = tmp_path / name
    Image.fromarray(np.tile(np.linspace(0, 255, 120, dtype=np.uint8), (90, 1))).save(path)
    return path


def test_a_new_upload_clears_the_answer_and_its_downloads(scripted_app, tmp_path):
    _, _, url = scripted_app
    client = _client(url)
    client.predict([handle_file(str(CT))], api_name="/open")
    answered = client.predict(*ask_args(), api_name="/ask")
    assert 'data-testid="answer-letter">A<' in answered[ANSWER]
    assert sorted(Path(p).name for p in answered[DOWNLOADS]) == [
        "answer.json", "answer.md", "attention-map.png", "image.png"
    ]  # fmt: skip
    assert 'data-status="done"' in answered[EVIDENCE]
    opened = client.predict([handle_file(str(_png(tmp_path)))], api_name="/open")
    assert "The answer will appear here" in opened[OPEN_ANSWER] and opened[OPEN_EVIDENCE] == ""
    assert opened[OPEN_DOWNLOADS] is None and opened[OPEN_RESULT] is None and opened[OPEN_ASK_STATUS] == ""


def test_the_relevancy_map_when_asked_for_is_exported_and_offered_under_the_picture(scripted_app):
    _, _, url = scripted_app
    client = _client(url)
    client.predict([handle_file(str(CT))], api_name="/open")
    answered = client.predict(*ask_args(relevancy=True), api_name="/ask")
    names = sorted(Path(p).name for p in answered[DOWNLOADS])
    assert names == ["answer.json", "answer.md", "attention-map.png", "image.png", "relevancy-map.png"]
    record = answered[RESULT]["evidence"]
    assert record["relevancy_map"]["method"] == "relevancy" and record["attention_map"]["method"] == "attention"
    assert answered[MAP_METHOD]["visible"] is True and "relevancy map" in answered[EVIDENCE]
    plain = client.predict(*ask_args(), api_name="/ask")
    assert plain[RESULT]["evidence"]["relevancy_map"] is None and plain[MAP_METHOD]["visible"] is False


def test_an_error_is_cleared_by_the_next_success(scripted_app):
    _, _, url = scripted_app
    client = _client(url)
    failed = client.predict(*ask_args(), api_name="/ask")
    assert "Upload an image" in failed[STATUS]
    opened = client.predict([handle_file(str(CT))], api_name="/open")
    assert opened[OPEN_ASK_STATUS] == ""


def test_a_follow_up_is_asked_with_the_conversation_before_it(scripted_app):
    """The model input of the second question holds the first question's prompt and the model's reply."""
    _, stream, url = scripted_app
    client = _client(url)
    client.predict([handle_file(str(CT))], api_name="/open")
    first = client.predict(*ask_args(), api_name="/ask")
    assert [m["role"] for m in first[CONVERSATION]] == ["user", "assistant", "assistant"]
    before = len(stream.calls)
    followed = client.predict(*follow_up_args("Which structure is brightest?"), api_name="/follow_up")
    call = stream.calls[before]
    messages = call["prompt"]
    assert isinstance(messages, list) and [m["role"] for m in messages] == ["user", "assistant", "user"]
    first_prompt = build_prompt(
        "What imaging technique was used to obtain this image?", ["CT", "MRI", "X-ray", "Ultrasound"]
    )
    assert messages[0]["content"] == [{"type": "image"}, {"type": "text", "text": first_prompt}]
    assert messages[1]["content"][0]["text"] == FIRST  # the model's own reply, reasoning included
    assert messages[2]["content"][0]["text"] == build_prompt("Which structure is brightest?")
    assert call["size"] == stream.calls[before - 1]["size"], "the same picture answers the follow-up"
    # The screen: the follow-up's answer in the card, and the conversation with both turns.
    record = followed[RESULT]
    assert record["question"] == "Which structure is brightest?" and record["options"] == {}
    assert [t["question"] for t in record["conversation"]] == [
        "What imaging technique was used to obtain this image?",
        "Which structure is brightest?",
    ]
    assert record["conversation"][0]["samples"][0]["letter"] == "A"
    assert record["samples"][0]["answer"] == "The vertebral body" and "The vertebral body" in followed[ANSWER]
    chat = followed[CONVERSATION]
    assert [m["role"] for m in chat] == ["user", "assistant", "assistant", "user", "assistant", "assistant"]
    thought = chat[1]["content"][0]["text"]
    assert chat[1]["metadata"]["title"] == "Reasoning, question 1" and thought.startswith("Dense bone ring")


def test_a_follow_up_may_be_multiple_choice_and_needs_a_first_question(scripted_app):
    _, stream, url = scripted_app
    client = _client(url)
    client.predict([handle_file(str(CT))], api_name="/open")
    refused = client.predict(*follow_up_args("Why?"), api_name="/follow_up")
    assert "Ask a first question" in refused[STATUS]
    client.predict(*ask_args(), api_name="/ask")
    before = len(stream.calls)
    client.predict(*follow_up_args("Which is brightest?", ("Bone", "Fat")), api_name="/follow_up")
    assert stream.calls[before]["prompt"][-1]["content"][0]["text"] == build_prompt(
        "Which is brightest?", ["Bone", "Fat"]
    )
    bad = client.predict(*follow_up_args("Which?", ("only one",)), api_name="/follow_up")
    assert "2 to 6 options" in bad[STATUS]


def test_self_consistency_offers_every_samples_reasoning(scripted_app):
    demo, _, url = scripted_app
    client = _client(url)
    client.predict([handle_file(str(CT))], api_name="/open")
    final = client.predict(*ask_args(samples=2, seed=3), api_name="/ask")
    picker = final[SAMPLE_PICKER]
    assert picker["visible"] is True and [c[1] for c in picker["choices"]] == [0, 1]
    assert picker["choices"][0][0] == "Sample 1: A" and "Sample 2" in picker["choices"][1][0]
    assert "sample 1, the first with the most frequent answer" in final[EVIDENCE]  # which sample it explains
    # The picker's handler shows the chosen sample's reasoning in the reasoning panel.
    from medr1_app.answering import AnswerProgress, SampledAnswer, tally
    from medr1_app.conversation import Conversation, Turn
    from medr1_app.generation import GenerationSettings
    from train.protocol import parse_response

    controller = demo.medr1_ask.controller
    options = ["CT", "MRI", "X-ray", "Ultrasound"]
    samples = [SampledAnswer(i, i, t, parse_response(t, options), True) for i, t in enumerate([FIRST, SECOND])]
    turn = Turn(
        "Q", tuple(options), "Q", GenerationSettings(samples=2), AnswerProgress(samples, 1, True, False, tally(samples))
    )
    conversation = Conversation(Image.new("RGB", (56, 56)), {}, {}, "tiny", [turn])
    shown = controller.show_sample(conversation, 1)
    assert list(shown.values()) == ["[Sample 2 of 2]\nThe bone is brighter than anything else."]


def test_editing_the_question_marks_the_answer_as_the_earlier_questions(scripted_app):
    demo, _, _ = scripted_app
    from medr1_app.answering import AnswerProgress, SampledAnswer
    from medr1_app.conversation import Conversation, Turn
    from medr1_app.generation import GenerationSettings
    from train.protocol import parse_response

    controller = demo.medr1_ask.controller
    sample = SampledAnswer(0, 0, FIRST, parse_response(FIRST, ["CT", "MRI"]), True)
    turn = Turn("Q", ("CT", "MRI"), "Q", GenerationSettings(), AnswerProgress([sample], 0, True))
    updates = controller.on_question_edit(Conversation(Image.new("RGB", (56, 56)), {}, {}, "tiny", [turn]))
    card = updates[demo.medr1_ask.answer]
    assert 'data-stale="true"' in card and "for the question as it was asked" in card
    assert updates[demo.medr1_ask.downloads] is None
    assert controller.on_question_edit(None) == {}


def test_predict_answers_in_one_call_from_a_fresh_client(scripted_app):
    _, _, url = scripted_app
    record = _client(url).predict(
        image=handle_file(str(CT)),
        question="What imaging technique was used to obtain this image?",
        options=["CT", "MRI", "X-ray", "Ultrasound"],
        settings={"max_new_tokens": 32, "window": "lung"},
        api_name="/predict",
    )
    assert record["schema"] == "medr1.ask/2" and record["samples"][0]["letter"] == "A"
    assert record["image"]["window"] == "lung" and record["image"]["kind"] == "dicom"
    assert record["model"]["tiny_random"] is True and record["options"]["A"] == "CT"
    assert "CT_small" not in str(record), "no file name travels in the record"
    evidence = record["evidence"]  # the attention map, the option preference and the grey-picture check
    assert evidence["letter"] == "A" and evidence["complete"] is True
    assert evidence["attention_map"]["grid"] == [len(evidence["attention_map"]["weights"]),
                                                 len(evidence["attention_map"]["weights"][0])]  # fmt: skip
    assert abs(sum(evidence["option_probabilities"].values()) - 1) < 1e-4
    assert set(evidence["image_reliance"]) >= {"answer_without_picture", "changed", "probability_without_picture"}
    refused = _client(url).predict(
        image=handle_file(str(CT)), question="Q?", settings={"temprature": 1}, api_name="/predict"
    )
    assert "Unknown setting(s) temprature" in refused["error"]


def test_the_python_function_gives_the_same_record(tiny_model_dir):
    from medr1_app.predict import predict

    stream = ScriptedStream([FIRST])
    record = predict(CT, "Which modality?", ["CT", "MRI"], {"samples": 1}, model=str(tiny_model_dir), stream_fn=stream)
    assert record["samples"][0]["letter"] == "A" and record["question"] == "Which modality?"
    assert stream.calls[0]["prompt"] == build_prompt("Which modality?", ["CT", "MRI"])


def test_offline_default_model_leads_with_the_shortest_fix(tiny_model_dir, tmp_path, monkeypatch):
    """No hub and no cached weights: say `--model tiny` first; the library's own text under Details."""
    from medr1_app.app import AppConfig, build_app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    demo = build_app(AppConfig(model="qwen2-vl-2b", runs_dir=None))
    url = launch(demo)
    try:
        client = _client(url)
        client.predict([handle_file(str(CT))], api_name="/open")
        final = client.predict(*ask_args(), api_name="/ask")
        status = final[STATUS]
        assert status.index("medr1-app --model tiny") < status.index("<details")
        assert "with the hub reachable, the weights download on the first question" in status
        assert "OSError" not in status.split("<details")[0], "raw library text only under the toggle"
        assert "Could not be loaded" in final[MODEL_STATUS] and "loads when you ask" not in final[MODEL_STATUS]
    finally:
        demo.close()


def test_rationale_and_answer_of_the_first_turn_are_what_the_screen_shows(scripted_app):
    _, _, url = scripted_app
    client = _client(url)
    client.predict([handle_file(str(CT))], api_name="/open")
    final = client.predict(*ask_args(), api_name="/ask")
    assert final[RATIONALE] == "Dense bone ring and grey soft tissue: a CT slice."
