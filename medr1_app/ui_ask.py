"""The Ask tab's layout and wiring: the picture on the left, the question, answer and reasoning on the right.

From 1366 x 768 up the picture, the question, the answer card and the streaming reasoning are on screen
together after Ask; the model, generation settings, image details and downloads sit in collapsed sections.
On a phone the two columns stack: picture, question, answer, reasoning. The handlers live in
:mod:`medr1_app.ask_controller`; per-user data lives in ``gr.State`` (the opened study and the
conversation about it, with a time to live) and nowhere else.

API (for ``gradio_client``): ``/predict`` (image file, question, options, settings: one call, no earlier
call needed; see :mod:`medr1_app.predict`) and ``/stop``. The screen's own events ``/open`` (a file) and
``/ask`` (the screen's 24 values) stay callable: ``/ask`` answers about the image ``/open`` loaded into
the same session, and ``/follow_up`` (undocumented) asks the next question of that session's conversation.
"""

from __future__ import annotations

import gradio as gr

from train.evidence.maps import DEFAULT_OPACITY
from train.protocol import LETTERS, MAX_OPTIONS, MIN_OPTIONS, PROMPT_STYLES, PROMPTS

from . import render
from .ask_components import AskTab
from .ask_controller import FREE_TEXT, NO_IMAGE, AskController
from .context import AppContext
from .examples import build_gallery
from .generation import MAX_NEW_TOKENS, MAX_SAMPLES, GenerationSettings
from .gpu import zero_gpu
from .predict import add_predict_endpoint
from .viewer import DEFAULT, window_choices

STUDY_TTL_SECONDS = 30 * 60
OPTION_COUNTS = [("Free answer", FREE_TEXT)] + [(f"{n} options", n) for n in range(MIN_OPTIONS, MAX_OPTIONS + 1)]
STYLE_CHOICES = [("Think, then answer (<think> + <answer>)", "think"), ("Answer only (no reasoning)", "no_think")]
assert {v for _, v in STYLE_CHOICES} == set(PROMPT_STYLES)
# Typing a window value and pressing Enter applies it: Gradio's slider box applies on blur only.
ENTER_APPLIES = """
<script>
document.addEventListener("keydown", (event) => {
  const box = event.target;
  if (event.key === "Enter" && box instanceof HTMLInputElement && box.type === "number"
      && box.closest("#medr1-center, #medr1-width, #medr1-frame")) {
    event.preventDefault();
    box.blur();
  }
});
</script>
"""


def build_ask_tab(ctx: AppContext) -> AskTab:
    """Create the Ask tab's components and events inside the current ``gr.Tab``."""
    controller = AskController(ctx)
    defaults = GenerationSettings()
    study = gr.State(None, time_to_live=STUDY_TTL_SECONDS)
    listing = gr.State(None, time_to_live=STUDY_TTL_SECONDS)
    conversation = gr.State(None, time_to_live=STUDY_TTL_SECONDS)
    with gr.Row(equal_height=False, elem_id="medr1-ask-layout"):
        with gr.Column(scale=5, min_width=320, elem_id="medr1-picture-column"):
            upload = gr.File(
                label="Image: DICOM (any file name, several files or a ZIP of a series), NIfTI, PNG or JPEG",
                show_label=False,
                file_count="multiple",
                type="filepath",
                elem_id="medr1-upload",
                height=64,
            )
            upload_status = gr.HTML(elem_id="medr1-upload-status")
            viewer = gr.Image(
                label="What the model sees",
                show_label=False,
                type="pil",
                format="png",
                interactive=False,
                height="min(60vh, 720px)",
                buttons=["download", "fullscreen"],
                elem_id="medr1-viewer",
            )
            viewer_info = gr.Markdown(NO_IMAGE, elem_id="medr1-viewer-info")
            with gr.Row(visible=False, elem_id="medr1-map-row", equal_height=True) as map_row:
                show_map = gr.Checkbox(
                    value=True, label="Show where the answer looked (map)", elem_id="medr1-show-map",
                    min_width=200,
                )  # fmt: skip
                opacity = gr.Slider(
                    0, 1, value=DEFAULT_OPACITY, step=0.05, label="Map opacity", elem_id="medr1-map-opacity"
                )
            map_method = gr.Radio(
                [("Attention", "attention"), ("Relevancy (gradient × attention)", "relevancy")],
                value="attention", label="Map", visible=False, elem_id="medr1-map-method",
                elem_classes="medr1-inline",
            )  # fmt: skip
            with gr.Row(elem_id="medr1-window-row"):
                window = gr.Dropdown(
                    choices=window_choices(None), value=DEFAULT, label="Window", interactive=False,
                    elem_id="medr1-window", min_width=160,
                )  # fmt: skip
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", visible=False, elem_id="medr1-frame")
            with gr.Row(elem_id="medr1-slider-row"):
                center = gr.Slider(0, 255, value=128, label="Window centre", visible=False, elem_id="medr1-center")
                width = gr.Slider(1, 512, value=256, label="Window width", visible=False, elem_id="medr1-width")
            series = gr.Dropdown([], label="Series (technical description only)", visible=False, elem_id="medr1-series")
            view = gr.Radio([], label="View", visible=False, elem_id="medr1-view", elem_classes="medr1-inline")
            slices_to_ask = gr.Slider(
                1, 16, value=1, step=1, visible=False, elem_id="medr1-slices",
                label="Ask about this slice (1) or N slices spread through the study",
            )  # fmt: skip
            slices_note = gr.Markdown(elem_id="medr1-slices-note")
            with gr.Accordion("Image details (technical, no patient data)", open=False):
                metadata = gr.Markdown(elem_id="medr1-metadata")
            with gr.Accordion("Examples: click one to load it with a question", open=True) as examples_section:
                controller.examples, items = build_gallery()
                gallery = gr.Gallery(
                    value=items, show_label=False, columns=4, height="auto", allow_preview=False, format="png",
                    buttons=[], elem_id="medr1-examples",
                )  # fmt: skip
        with gr.Column(scale=5, min_width=320, elem_id="medr1-answer-column"):
            banner = gr.HTML(controller.banner(ctx.default_model), elem_id="medr1-banner")
            question = gr.Textbox(
                label="Question",
                lines=2,
                max_lines=4,
                placeholder="e.g. What imaging technique was used to obtain this image?",
                elem_id="medr1-question",
            )
            option_boxes = []
            with gr.Group(elem_id="medr1-options"):
                for start in range(0, MAX_OPTIONS, 2):
                    with gr.Row():
                        for i in (start, start + 1):
                            box = gr.Textbox(
                                label=f"Option {LETTERS[i]}",
                                visible=i < 4,
                                max_lines=1,
                                min_width=120,
                                elem_id=f"medr1-option-{LETTERS[i]}",
                            )
                            option_boxes.append(box)
            with gr.Row(elem_id="medr1-ask-row", equal_height=True):
                option_count = gr.Dropdown(
                    OPTION_COUNTS, value=4, label="Answer options", elem_id="medr1-option-count", scale=2,
                    min_width=110, container=False,
                )  # fmt: skip
                ask_button = gr.Button("Ask", variant="primary", elem_id="medr1-ask", scale=3, min_width=90)
                stop_button = gr.Button("Stop", variant="stop", elem_id="medr1-stop", scale=1, min_width=70)
            ask_status = gr.HTML(elem_id="medr1-ask-status")
            answer_view = gr.HTML(render.EMPTY_ANSWER, elem_id="medr1-answer")
            sample_picker = gr.Radio(
                [], label="Show the reasoning of", visible=False, elem_id="medr1-sample-picker",
                elem_classes="medr1-inline",
            )  # fmt: skip
            rationale = gr.Textbox(
                label="Reasoning (streams as it is written)",
                lines=6,
                max_lines=14,
                interactive=False,
                autoscroll=True,
                buttons=["copy"],
                elem_id="medr1-rationale",
            )
            evidence_view = gr.HTML(elem_id="medr1-evidence")
            with gr.Group(visible=False, elem_id="medr1-followup-group") as followup_group:
                conversation_view = gr.Chatbot(
                    label="Conversation about this image",
                    show_label=False,
                    height=300,
                    buttons=["copy"],
                    elem_id="medr1-conversation",
                )
                followup = gr.Textbox(
                    label="Follow-up question (asked with the conversation so far)",
                    lines=1,
                    max_lines=3,
                    placeholder="e.g. Which finding supports that answer?",
                    elem_id="medr1-followup",
                )
                with gr.Row(equal_height=True):
                    followup_options = gr.Textbox(
                        label="Its options, one per line (empty: a free answer)",
                        lines=1,
                        max_lines=6,
                        scale=3,
                        elem_id="medr1-followup-options",
                    )
                    followup_button = gr.Button("Ask follow-up", scale=1, min_width=110, elem_id="medr1-followup-ask")
            with gr.Accordion("Every sample's reasoning and raw output", open=False):
                samples_view = gr.HTML(elem_id="medr1-samples")
            with gr.Accordion(controller.model_label(ctx.default_model), open=False) as model_section:
                with gr.Row():
                    model = ctx.menus.menu(primary=True, label="Model", scale=8, elem_id="medr1-model")
                    refresh = gr.Button("↻", scale=1, min_width=40, elem_id="medr1-refresh-models")
                model_status = gr.HTML(controller.model_status(ctx.default_model), elem_id="medr1-model-status")
                if ctx.allow_add_models:
                    with gr.Row():
                        add_path = gr.Textbox(
                            label="Add a model: a local folder, fine-tuned adapter, or owner/repo[:folder]",
                            placeholder="/path/to/run or yuxianglai117/Med-R1:VQA_CT",
                            scale=4,
                        )
                        add_button = gr.Button("Add", scale=1)
            with gr.Accordion("Generation settings", open=False):
                temperature = gr.Slider(
                    0, 2, value=defaults.temperature, step=0.05, label="Temperature (0 = always the most likely word)"
                )
                top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.05, label="Top-p")
                max_new_tokens = gr.Slider(
                    16, MAX_NEW_TOKENS, value=defaults.max_new_tokens, step=16, label="Max new tokens"
                )
                spec = controller.spec(ctx.default_model)
                style = gr.Radio(
                    STYLE_CHOICES, value=spec.prompt_style if spec else defaults.prompt_style, label="Prompt"
                )
                prompt = gr.Dropdown(
                    [(f"{p.name}: {p.description}", p.name) for p in PROMPTS.values()],
                    value=spec.prompt if spec else defaults.prompt,
                    label="Prompt text (default: the one this model was trained with)",
                    elem_id="medr1-prompt",
                )
                seed = gr.Number(value=defaults.seed, precision=0, label="Seed")
                samples = gr.Slider(
                    1, MAX_SAMPLES, value=defaults.samples, step=1, elem_id="medr1-samples-count",
                    label="Self-consistency: number of answers to sample (above 1, temperature 0 becomes 0.7)",
                )  # fmt: skip
                evidence_on = gr.Checkbox(
                    value=True, elem_id="medr1-evidence-on",
                    label="Evidence after each answer: attention map, option preference, and the same question on "
                    "a grey picture (costs about one more answer)",
                )  # fmt: skip
                relevancy_on = gr.Checkbox(
                    value=False, elem_id="medr1-relevancy-on",
                    label="Also a relevancy map (gradient × attention, as LVLM-Interpret; one backward pass more)",
                )  # fmt: skip
            with gr.Accordion("Downloads (after an answer)", open=False) as downloads_section:
                downloads = gr.File(
                    label="The picture shown, and the questions, reasoning, answers and settings (JSON, Markdown)",
                    file_count="multiple",
                    interactive=False,
                    elem_id="medr1-downloads",
                )
    result = gr.JSON(visible=False, label="result")

    tab = AskTab(
        study=study, listing=listing, conversation=conversation, banner=banner, upload=upload,
        upload_status=upload_status, viewer=viewer, viewer_info=viewer_info, map_row=map_row, show_map=show_map,
        opacity=opacity, map_method=map_method, evidence_view=evidence_view, evidence_on=evidence_on,
        relevancy_on=relevancy_on, window=window, center=center,
        width=width, frame=frame, series=series, view=view, slices_to_ask=slices_to_ask, slices_note=slices_note,
        metadata=metadata, examples_section=examples_section, gallery=gallery, question=question,
        option_count=option_count, option_boxes=option_boxes, ask_button=ask_button, stop_button=stop_button,
        ask_status=ask_status, answer=answer_view, sample_picker=sample_picker, rationale=rationale,
        conversation_view=conversation_view, followup_group=followup_group, followup=followup,
        followup_options=followup_options, followup_button=followup_button, samples_view=samples_view,
        model_section=model_section, model=model, model_status=model_status, temperature=temperature, top_p=top_p,
        max_new_tokens=max_new_tokens, style=style, prompt=prompt, seed=seed, samples=samples,
        downloads_section=downloads_section, downloads=downloads, result=result, controller=controller,
    )  # fmt: skip
    controller.tab = tab
    _wire(ctx, tab, controller, refresh, (add_path, add_button) if ctx.allow_add_models else None)
    return tab


def _wire(ctx: AppContext, tab: AskTab, controller: AskController, refresh: gr.Button, adding) -> None:
    """Every event of the tab, beside the components it reads and writes."""
    answer_parts = [
        tab.answer, tab.rationale, tab.samples_view, tab.sample_picker, tab.downloads, tab.downloads_section,
        tab.ask_status, tab.conversation, tab.conversation_view, tab.followup_group, tab.result, tab.evidence_view,
        tab.map_row, tab.map_method,
    ]  # fmt: skip
    # /open's outputs keep their historical order for API callers (viewer, status, metadata, window, centre,
    # width, frame, upload box); the screen's other parts follow. The State output is not sent to clients.
    picture = [tab.study, tab.viewer, tab.upload_status, tab.metadata, tab.window, tab.center, tab.width, tab.frame,
               tab.upload, tab.viewer_info, tab.examples_section, tab.series, tab.view, tab.slices_to_ask,
               tab.slices_note, tab.listing]  # fmt: skip
    view_inputs = [tab.study, tab.model, tab.window, tab.center, tab.width, tab.frame]
    model_parts = [tab.banner, tab.model_status, tab.model_section]
    light = {"concurrency_limit": 8, "concurrency_id": "viewer"}

    tab.upload.upload(
        controller.open_upload, [tab.upload, tab.model], [*picture, *answer_parts],
        api_name="open", **light,
    )  # fmt: skip
    tab.gallery.select(
        controller.open_example,
        [tab.model],
        [*picture, *answer_parts, tab.question, tab.option_count, *tab.option_boxes],
        api_visibility="private",
        **light,
    )
    render_outputs = [tab.viewer, tab.viewer_info, tab.upload_status, tab.window, tab.center, tab.width, *answer_parts]
    tab.series.input(
        controller.on_series, [tab.listing, tab.series, tab.model], [*picture, *answer_parts],
        api_visibility="private", **light,
    )  # fmt: skip
    tab.view.input(
        controller.on_view, [tab.listing, tab.series, tab.study, tab.view, tab.model], [*picture, *answer_parts],
        api_visibility="private", **light,
    )  # fmt: skip
    tab.slices_to_ask.release(
        controller.on_slices, [tab.study, tab.model, tab.slices_to_ask], [tab.slices_note], api_visibility="private",
        **light,
    )  # fmt: skip
    tab.window.input(controller.on_window, view_inputs, render_outputs, api_visibility="private", **light)
    for slider in (tab.center, tab.width):
        slider.release(
            controller.on_slider, [tab.study, tab.model, tab.center, tab.width, tab.frame], render_outputs,
            api_visibility="private", trigger_mode="always_last", **light,
        )  # fmt: skip
    tab.frame.release(
        controller.on_frame, view_inputs, render_outputs, api_visibility="private", trigger_mode="always_last",
        **light,
    )  # fmt: skip
    tab.model.input(
        controller.on_model, view_inputs,
        [*model_parts, tab.viewer, tab.viewer_info, tab.upload_status, tab.prompt, tab.style, *answer_parts],
        api_visibility="private", **light,
    )  # fmt: skip
    # A model selected by another tab (Fine-tune's Load) gets the same banner, status and prompt as a user's pick.
    ctx.menus.on_select(
        controller.on_model, view_inputs,
        [*model_parts, tab.viewer, tab.viewer_info, tab.upload_status, tab.prompt, tab.style, *answer_parts],
    )  # fmt: skip
    ctx.menus.refresh_after(refresh.click(None, None, None, api_visibility="private", queue=False))
    if adding is not None:
        add_path, add_button = adding
        added = add_button.click(
            controller.add_model, [add_path], [tab.model, tab.model_status], api_visibility="private"
        ).then(
            controller.on_model, view_inputs, [*model_parts, tab.viewer, tab.viewer_info, tab.upload_status,
                                               tab.prompt, tab.style, *answer_parts], api_visibility="private",
        )  # fmt: skip
        ctx.menus.refresh_after(added)
    tab.option_count.change(
        lambda n: [gr.update(visible=int(n or 0) > i) for i in range(MAX_OPTIONS)],
        [tab.option_count],
        tab.option_boxes,
        api_visibility="private",
        queue=False,
    )
    for editable in (tab.question, tab.option_count, *tab.option_boxes):
        editable.input(
            controller.on_question_edit, [tab.conversation], [tab.answer, tab.downloads], api_visibility="private",
            queue=False,
        )  # fmt: skip
    tab.sample_picker.input(
        controller.show_sample, [tab.conversation, tab.sample_picker], [tab.rationale], api_visibility="private"
    )
    generation = [tab.temperature, tab.top_p, tab.max_new_tokens, tab.style, tab.seed, tab.samples, tab.prompt]
    evidence = [tab.evidence_on, tab.show_map, tab.opacity, tab.relevancy_on, tab.map_method]
    ask_inputs = [
        *view_inputs, tab.question, tab.option_count, *tab.option_boxes, *generation, tab.slices_to_ask, *evidence,
    ]  # fmt: skip
    # /ask's outputs keep their historical order for API callers (viewer, answer, rationale, samples,
    # downloads, status, banner, model status, result); the screen's other parts follow.
    ask_outputs = [
        tab.viewer, tab.answer, tab.rationale, tab.samples_view, tab.downloads, tab.ask_status, tab.banner,
        tab.model_status, tab.result, tab.viewer_info, tab.sample_picker, tab.downloads_section, tab.model_section,
        tab.conversation, tab.conversation_view, tab.followup_group, tab.followup, tab.followup_options,
        tab.evidence_view, tab.map_row, tab.map_method,
    ]  # fmt: skip
    gpu = {"concurrency_id": ctx.gpu_concurrency_id, "concurrency_limit": 1, "show_progress": "minimal"}
    ask_event = tab.ask_button.click(controller.arm, None, None, queue=False, api_visibility="private").then(
        controller.ask, ask_inputs, ask_outputs, api_name="ask", **gpu
    )
    followup_inputs = [tab.conversation, *view_inputs, tab.followup, tab.followup_options, *generation, *evidence]
    followups = []
    for name, trigger in (("follow_up", tab.followup_button.click), (None, tab.followup.submit)):
        visibility = {"api_name": name, "api_visibility": "undocumented"} if name else {"api_visibility": "private"}
        followups.append(
            trigger(controller.arm, None, None, queue=False, api_visibility="private").then(
                controller.follow_up, followup_inputs, ask_outputs, **visibility, **gpu
            )
        )
    for control in (tab.show_map.input, tab.opacity.release, tab.map_method.input):
        control(
            controller.on_map, [tab.conversation, tab.show_map, tab.opacity, tab.map_method], [tab.viewer],
            api_visibility="private", **light,
        )  # fmt: skip
    tab.stop_button.click(
        controller.stop,
        None,
        tab.ask_status,
        api_name="stop",
        queue=False,
        cancels=[ask_event, *followups] if zero_gpu() else None,  # ZeroGPU: the worker cannot see the Stop event
    )
    add_predict_endpoint(ctx)
