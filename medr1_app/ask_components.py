"""The Ask tab's components by name: what the layout builds and the handlers' dict returns are keyed by."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr


@dataclass(eq=False)
class AskTab:
    """The Ask tab's components (handlers return ``{component: value}`` dicts keyed by these)."""

    study: gr.State
    listing: gr.State
    """The upload's series (or volumes), scanned once: another one opens without a new scan."""
    conversation: gr.State
    banner: gr.HTML
    upload: gr.File
    upload_status: gr.HTML
    viewer: gr.Image
    viewer_info: gr.Markdown
    map_row: gr.Row
    """Under the viewer: the attention map's switch and opacity (shown once an answer has a map)."""
    show_map: gr.Checkbox
    opacity: gr.Slider
    map_method: gr.Radio
    """Attention or relevancy (gradient × attention), when the relevancy map was asked for."""
    window: gr.Dropdown
    center: gr.Slider
    width: gr.Slider
    frame: gr.Slider
    series: gr.Dropdown
    view: gr.Radio
    slices_to_ask: gr.Slider
    slices_note: gr.Markdown
    metadata: gr.Markdown
    examples_section: gr.Accordion
    gallery: gr.Gallery
    question: gr.Textbox
    option_count: gr.Dropdown
    option_boxes: list[gr.Textbox]
    ask_button: gr.Button
    stop_button: gr.Button
    ask_status: gr.HTML
    answer: gr.HTML
    sample_picker: gr.Radio
    rationale: gr.Textbox
    conversation_view: gr.Chatbot
    followup_group: gr.Group
    followup: gr.Textbox
    followup_options: gr.Textbox
    followup_button: gr.Button
    samples_view: gr.HTML
    evidence_view: gr.HTML
    evidence_on: gr.Checkbox
    relevancy_on: gr.Checkbox
    model_section: gr.Accordion
    model: gr.Dropdown
    model_status: gr.HTML
    temperature: gr.Slider
    top_p: gr.Slider
    max_new_tokens: gr.Slider
    style: gr.Radio
    prompt: gr.Dropdown
    seed: gr.Number
    samples: gr.Slider
    downloads_section: gr.Accordion
    downloads: gr.File
    result: gr.JSON
    controller: Any = field(default=None)
    """The tab's ``AskController`` (typed loosely: the controller imports this module)."""
