"""The prompt layout and the response parser: what the model is asked and how its words are read."""

from __future__ import annotations

import pytest

from train.protocol import (
    build_messages,
    build_prompt,
    format_completion,
    format_question,
    parse_response,
    split_options,
)

OPTIONS = ["Mammogram", "PET", "CT", "Fluoroscopy"]
T = "<think>The scan shows axial slices.</think>"

# (completion, expected letter, expected well_formed, expected complete)
CASES = [
    (f"{T}<answer>C</answer>", "C", True, True),
    (f"{T}\n<answer>C</answer>", "C", True, True),
    (f"  {T}\n\n<answer> C </answer>\n", "C", True, True),
    (f"{T}<answer>(C)</answer>", "C", True, True),
    (f"{T}<answer>[C]</answer>", "C", True, True),
    (f"{T}<answer>C.</answer>", "C", True, True),
    (f"{T}<answer>C)</answer>", "C", True, True),
    (f"{T}<answer>C) CT</answer>", "C", True, True),
    (f"{T}<answer>C. CT</answer>", "C", True, True),
    (f"{T}<answer>(C) CT</answer>", "C", True, True),
    (f"{T}<answer>CT</answer>", "C", True, True),
    (f"{T}<answer>ct</answer>", "C", True, True),
    (f"{T}<answer>c</answer>", "C", True, True),
    (f"{T}<answer>Answer: C</answer>", "C", True, True),
    (f"{T}<answer>The answer is C</answer>", "C", True, True),
    (f"{T}<answer>Option C</answer>", "C", True, True),
    (f"{T}<answer>Positron emission tomography</answer>", None, True, True),
    (f"{T}<answer>A, C</answer>", None, True, True),
    (f"{T}<answer>A or C</answer>", None, True, True),
    (f"{T}<answer>A and C</answer>", None, True, True),
    (f"{T}<answer>AC</answer>", None, True, True),
    (f"{T}<answer>C/D</answer>", None, True, True),
    (f"{T}<answer>E</answer>", None, True, True),
    (f"{T}<answer></answer>", None, False, True),
    (f"{T}<answer>C) PET</answer>", None, True, True),
    (f"{T}<answer>C", "C", False, False),
    (f"{T}<answer>", None, False, False),
    ("<think>The scan shows", None, False, False),
    ("<think>The scan shows<answer>C</answer>", "C", False, True),
    (f"Sure! {T}<answer>C</answer>", "C", False, True),
    (f"{T}<answer>C</answer> Hope this helps.", "C", False, True),
    (f"{T}<answer>C</answer><answer>D</answer>", None, False, True),
    (f"{T}<answer>C</answer><answer>C</answer>", "C", False, True),
    ("<answer>C</answer>", "C", False, True),
    ("The answer is C.", None, False, False),
    ("C", None, False, False),
    ("<THINK>x</THINK><ANSWER>C</ANSWER>", "C", False, True),
    (f"{T}{T}<answer>C</answer>", "C", False, True),
    ("<think></think><answer>C</answer>", "C", False, True),
    ("", None, False, False),
]


@pytest.mark.parametrize(("text", "letter", "well_formed", "complete"), CASES)
def test_parse_response_cases(text, letter, well_formed, complete):
    parsed = parse_response(text, OPTIONS)
    assert parsed.letter == letter
    assert parsed.well_formed is well_formed
    assert parsed.complete is complete
    if letter is not None:
        assert parsed.option == OPTIONS["ABCDEF".index(letter)]
    if not well_formed or letter is None:
        assert parsed.issues, "a malformed or unanswered response must say what is wrong"


def test_case_count_is_at_least_25():
    assert len({c[0] for c in CASES}) >= 25


def test_rationale_is_extracted_while_streaming_and_when_complete():
    assert parse_response("<think>Looking at the left lung", OPTIONS).rationale == "Looking at the left lung"
    assert parse_response(f"{T}<answer>C</answer>", OPTIONS).rationale == "The scan shows axial slices."
    assert parse_response("<answer>C</answer>", OPTIONS).rationale is None


def test_issue_messages_say_what_is_wrong():
    assert "several options" in " ".join(parse_response(f"{T}<answer>A, C</answer>", OPTIONS).issues)
    assert "disagree" in " ".join(parse_response(f"{T}<answer>C</answer><answer>D</answer>", OPTIONS).issues)
    assert "outside" in " ".join(parse_response(f"Sure! {T}<answer>C</answer>", OPTIONS).issues)
    assert "</answer>" in " ".join(parse_response(f"{T}<answer>C", OPTIONS).issues)
    assert "lower case" in " ".join(parse_response("<THINK>x</THINK><ANSWER>C</ANSWER>", OPTIONS).issues)


def test_no_think_style_accepts_the_answer_block_alone():
    parsed = parse_response("<answer>B</answer>", OPTIONS, style="no_think")
    assert (parsed.letter, parsed.well_formed) == ("B", True)
    assert not parse_response(f"{T}<answer>B</answer>", OPTIONS, style="no_think").well_formed


def test_option_starting_with_a_letter_word_is_matched_by_text():
    options = ["A lesion", "No lesion"]
    assert parse_response(f"{T}<answer>A lesion</answer>", options).letter == "A"
    assert parse_response(f"{T}<answer>No lesion</answer>", options).letter == "B"


def test_free_text_question_keeps_the_answer_text():
    parsed = parse_response(f"{T}<answer>Left lower lobe nodule</answer>")
    assert parsed.letter is None and parsed.answer == "Left lower lobe nodule" and parsed.well_formed


def test_format_question_matches_med_r1_layout():
    text = format_question("What imaging technique was employed to obtain this picture?", OPTIONS)
    assert text == "What imaging technique was employed to obtain this picture? A)Mammogram, B)PET, C)CT, D)Fluoroscopy"


@pytest.mark.parametrize(
    ("options", "message"),
    [(["only one"], "2 to 6"), ([str(i) for i in range(7)], "2 to 6"), (["CT", " "], "empty"), (["CT", "ct"], "same")],
)
def test_format_question_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        format_question("Which?", options)


def test_think_prompt_is_med_r1_verbatim():
    prompt = build_prompt("Which modality?", ["CT", "MRI"])
    assert prompt == (
        "Which modality? A)CT, B)MRI Your task: 1. Think through the question step by step, enclose your reasoning "
        "process in <think>...</think> tags. 2. Then provide the correct single-letter choice (A, B, C, D,...) inside "
        "<answer>...</answer> tags. 3. No extra information or text outside of these tags."
    )
    assert "<think>" not in build_prompt("Which modality?", ["CT", "MRI"], style="no_think")
    with pytest.raises(ValueError, match="prompt style"):
        build_prompt("Which?", ["CT", "MRI"], style="cot")


def test_messages_put_the_image_before_the_text():
    messages = build_messages("hello")
    assert [part["type"] for part in messages[0]["content"]] == ["image", "text"]
    assert build_messages("hello", with_image=False)[0]["content"] == [{"type": "text", "text": "hello"}]


def test_format_completion_round_trips_through_the_parser():
    text = format_completion("Bright blob in the left lobe.", "B")
    parsed = parse_response(text, OPTIONS)
    assert (parsed.letter, parsed.well_formed, parsed.rationale) == ("B", True, "Bright blob in the left lobe.")
    assert parse_response(format_completion("", "D", style="no_think"), OPTIONS, style="no_think").well_formed


def test_split_options_handles_commas_and_brackets_inside_options():
    question, options = split_options(
        "What imaging technique is employed for obtaining this image? A)Mammogram, "
        "B)Positron emission tomography (PET), C)CT, D)Fluoroscopy"
    )
    assert question == "What imaging technique is employed for obtaining this image?"
    assert options == ["Mammogram", "Positron emission tomography (PET)", "CT", "Fluoroscopy"]
    assert split_options("Is there a lesion? A)Yes, B)No") == ("Is there a lesion?", ["Yes", "No"])
    assert split_options("Grade? A)1, 2 or 3, B)4") == ("Grade?", ["1, 2 or 3", "4"])
