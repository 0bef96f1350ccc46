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


# ------------------------------------------------------------------------------ the prompt registry

# Med-R1's own strings, copied here by hand from Yuxiang-Lai117/Med-R1 at commit
# 88d76c73e7d21cd958a2b2dc32eca038be766f8f (the protocol, quoted with its source):
MEDR1_TRAIN_THINK = (  # src/r1-v/src/open_r1/grpo_vqa.py, line 152
    "{Question} Your task: 1. Think through the question step by step, enclose your reasoning process in "
    "<think>...</think> tags. 2. Then provide the correct single-letter choice (A, B, C, D,...) inside "
    "<answer>...</answer> tags. 3. No extra information or text outside of these tags."
)
MEDR1_TRAIN_NO_THINK = (  # src/r1-v/src/open_r1/grpo_vqa_nothink.py, line 151
    "{Question} Your task: 1. Provide the correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> "
    "tags. 2. No extra information or text outside of this tag."
)
MEDR1_EVAL_THINK = (  # src/eval_vqa/test_qwen2vl_vqa.py, line 43 (test_qwen2_5vl_vqa.py, line 45)
    "{Question} Think through the question step by step in <think>...</think> tags. Then provide the correct "
    "single-letter choice (A, B, C, D,...) inside <answer>...</answer> tags."
)
MEDR1_EVAL_NO_THINK = (  # src/eval_vqa/test_qwen2vl_vqa_nothink.py, line 44 (test_qwen2_5vl_vqa_nothink.py, 45)
    "{Question} Provide the correct single-letter choice (A, B, C, D,...) inside <answer>...</answer> tags."
)


def test_med_r1_prompts_are_byte_for_byte_its_own():
    from train.protocol import PROMPTS

    assert PROMPTS["medr1-train"].think.encode() == MEDR1_TRAIN_THINK.encode()
    assert PROMPTS["medr1-train"].no_think.encode() == MEDR1_TRAIN_NO_THINK.encode()
    assert PROMPTS["medr1-eval"].think.encode() == MEDR1_EVAL_THINK.encode()
    assert PROMPTS["medr1-eval"].no_think.encode() == MEDR1_EVAL_NO_THINK.encode()
    # Med-R1 fills {Question} with its record's "problem": the question, a space, then "A)x, B)y".
    problem = "What imaging technique is employed for obtaining this image? A)Mammogram, B)PET, C)CT, D)Fluoroscopy"
    asked = build_prompt(
        "What imaging technique is employed for obtaining this image?", OPTIONS, "no_think", "medr1-eval"
    )
    assert asked == MEDR1_EVAL_NO_THINK.format(Question=problem)


def test_medr1_prompt_is_unchanged():
    """The tiny model's tokenizer corpus and the learning proof's measured numbers depend on these texts."""
    from train.protocol import NO_THINK_TEMPLATE, PROMPTS, THINK_TEMPLATE

    assert PROMPTS["medr1"].think == THINK_TEMPLATE == MEDR1_TRAIN_THINK
    assert NO_THINK_TEMPLATE == (
        "{Question} Your task: provide the correct single-letter choice (A, B, C, D,...) inside "
        "<answer>...</answer> tags. No extra information or text outside of these tags."
    )
    assert PROMPTS["medr1"].no_think == NO_THINK_TEMPLATE
    assert build_prompt("Which?", ["CT", "MRI"]) == build_prompt("Which?", ["CT", "MRI"], "think", "medr1")


def test_every_prompt_asks_for_the_layout_its_parser_accepts():
    from train.protocol import PROMPT_NAMES

    for name in PROMPT_NAMES:
        for style in ("think", "no_think"):
            text = build_prompt("Which?", ["CT", "MRI"], style, name)
            assert text.startswith("Which? A)CT, B)MRI ") and "<answer>...</answer>" in text
            assert ("<think>...</think>" in text) == (style == "think"), (name, style)
            completion = format_completion("Because.", "B", style, name)
            parsed = parse_response(completion, ["CT", "MRI"], style, name)
            assert (parsed.letter, parsed.well_formed, parsed.issues) == ("B", True, ()), (name, style)
        free = build_prompt("What is shown?", None, "think", name)
        assert "A)" not in free and "<answer>...</answer>" in free
    with pytest.raises(ValueError, match=r"Unknown prompt 'med-r1': use one of medr1, medr1-train"):
        build_prompt("Which?", ["CT", "MRI"], prompt="med-r1")


def test_think_after_puts_the_answer_first_and_the_format_check_follows_it():
    answer_first = "<answer>C</answer>\n<think>Axial slices with bone windows.</think>"
    after = parse_response(answer_first, OPTIONS, prompt="think-after")
    assert (after.letter, after.well_formed, after.rationale) == ("C", True, "Axial slices with bone windows.")
    assert build_prompt("Which?", OPTIONS, prompt="think-after").index("<answer>") < build_prompt(
        "Which?", OPTIONS, prompt="think-after"
    ).index("<think>")
    assert not parse_response(answer_first, OPTIONS).well_formed
    assert "the layout is not <think>…</think><answer>…</answer>" in parse_response(answer_first, OPTIONS).issues
    think_first = parse_response(f"{T}<answer>C</answer>", OPTIONS, prompt="think-after")
    assert not think_first.well_formed and think_first.letter == "C"
    assert "the layout is not <answer>…</answer><think>…</think>" in think_first.issues
    streaming = parse_response("<answer>C</answer><think>Axial sl", OPTIONS, prompt="think-after")
    assert (streaming.letter, streaming.complete, streaming.rationale) == ("C", True, "Axial sl")


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        ("<think></think><answer>B</answer>", "the reasoning block is empty"),
        ("<think> </think>\n<answer>B</answer>", "the reasoning block is empty"),
        (f"{T}<answer> </answer>", "the answer block is empty"),
        ("<think>x</think><think>y</think><answer>B</answer>", "there are 2 reasoning blocks"),
    ],
)
def test_empty_and_repeated_blocks_are_named(text, issue):
    parsed = parse_response(text, OPTIONS)
    assert not parsed.well_formed
    assert issue in parsed.issues
    assert "the tags are not in lower case" not in parsed.issues


def test_a_seventh_option_is_not_glued_onto_the_sixth():
    six = "Which organ? A)Liver, B)Kidney, C)Heart, D)Lung, E)Brain, F)Spleen"
    assert split_options(six)[1][-1] == "Spleen"
    with pytest.raises(ValueError, match="more than 6 options"):
        split_options(six + ", G)Bone")
