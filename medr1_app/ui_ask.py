"""The Ask tab: load an image, see exactly what the model sees, ask, and watch it reason.

Layout: picture and its controls on the left, question and model on the right, then the streaming
reasoning next to the prominent answer, then the downloads. Per-user data lives in ``gr.State`` (the
opened study, with a time to live) and nowhere else: uploads are read into memory and deleted from
disk seconds later (``ctx.uploads``), nothing about the image or the question is logged.

API (for ``gradio_client``; the study is kept per session between the two calls):

- ``/open`` (file) -> loads a DICOM/PNG/JPEG upload into the session.
- ``/ask`` (model, window, centre, width, frame, question, number of options, options A-F,
  temperature, top-p, max new tokens, prompt style, seed, samples) -> streams; the last output
  ``result`` is the export's JSON document (or ``{"error": ...}``).
- ``/stop`` -> stops this session's generation at the next token.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from train.imaging import ImagingError, PixelBounds, Study, model_picture, open_study
from train.model_io import ModelLoadError
from train.protocol import LETTERS, MAX_OPTIONS, MIN_OPTIONS, PROMPT_STYLES, build_prompt

from . import render
from .answering import AnswerProgress, answer
from .context import AppContext
from .examples import Example, build_gallery
from .export import AskRecord, record_dict, write_export
from .generation import MAX_NEW_TOKENS, MAX_SAMPLES, GenerationSettings
from .gpu import gpu_task, zero_gpu
from .models import ModelSpec
from .viewer import CUSTOM, DEFAULT, bounds_for, slider_range, view_record, window_arg, window_choices

logger = logging.getLogger(__name__)

STUDY_TTL_SECONDS = 30 * 60
UI_INTERVAL = 0.05  # seconds between two updates of the streaming answer (20 per second)
FREE_TEXT = 0
OPTION_COUNTS = [("Free text (no options)", FREE_TEXT)] + [(str(n), n) for n in range(MIN_OPTIONS, MAX_OPTIONS + 1)]
STYLE_CHOICES = [("Think, then answer (<think> + <answer>)", "think"), ("Answer only (no reasoning)", "no_think")]
assert {v for _, v in STYLE_CHOICES} == set(PROMPT_STYLES)


def collect_options(count: int | None, boxes: Sequence[str | None]) -> list[str] | None:
    """The options the user filled in, or None for a free-text question; raises ValueError when incomplete."""
    count = int(count or 0)
    if count == FREE_TEXT:
        return None
    if not MIN_OPTIONS <= count <= MAX_OPTIONS:
        raise ValueError(f"Choose between {MIN_OPTIONS} and {MAX_OPTIONS} options, or a free-text question.")
    options = [" ".join(str(b or "").split()) for b in boxes[:count]]
    for letter, text in zip(LETTERS, options, strict=False):
        if not text:
            raise ValueError(f"Option {letter} is empty: fill it in, or choose fewer options.")
    return options


@dataclass
class AskTab:
    """The Ask tab's components (other tabs and tests may reach them through ``AppContext``)."""

    study: gr.State
    upload: gr.File
    upload_status: gr.HTML
    viewer: gr.Image
    window: gr.Dropdown
    center: gr.Slider
    width: gr.Slider
    frame: gr.Slider
    metadata: gr.Markdown
    gallery: gr.Gallery
    banner: gr.HTML
    model: gr.Dropdown
    model_status: gr.HTML
    question: gr.Textbox
    option_count: gr.Radio
    option_boxes: list[gr.Textbox]
    temperature: gr.Slider
    top_p: gr.Slider
    max_new_tokens: gr.Slider
    style: gr.Radio
    seed: gr.Number
    samples: gr.Slider
    ask_button: gr.Button
    stop_button: gr.Button
    ask_status: gr.HTML
    answer: gr.HTML
    rationale: gr.Textbox
    samples_view: gr.HTML
    downloads: gr.File
    result: gr.JSON
    controller: AskController | None = None


class AskController:
    """Event handlers of the Ask tab, bound to one :class:`AppContext`."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.examples: list[Example] = []
        # ZeroGPU attaches a GPU only inside this call; elsewhere gpu_task is a no-op.
        self._generate = gpu_task(duration=120)(self._generate_impl)

    # -- helpers --------------------------------------------------------------------------------
    def _spec(self, key: str | None) -> ModelSpec | None:
        try:
            return self.ctx.registry.get(key or self.ctx.default_model)
        except ModelLoadError:
            return None

    def _bounds(self, key: str | None) -> PixelBounds:
        return bounds_for(self._spec(key), self.ctx.manager.loaded)

    def banner(self, key: str | None) -> str:
        spec = self._spec(key)
        if spec is None:
            return ""
        loaded = self.ctx.manager.loaded
        tiny = spec.tiny or bool(loaded and loaded.spec.key == spec.key and loaded.tiny)
        return render.banner_html(tiny, spec.note if not tiny else "")

    def model_status(self, key: str | None) -> str:
        loaded = self.ctx.manager.loaded
        if loaded is not None and loaded.spec.key == key:
            dtype = str(loaded.dtype).replace("torch.", "")
            return render.status_html(f"Loaded on {loaded.device} ({dtype}) in {loaded.load_seconds:.1f} s.", "info")
        return render.status_html("This model loads when you ask the first question.", "info")

    def _study_outputs(self, study: Study, key: str | None, frame: int = 0, status: str = "") -> tuple:
        """Outputs after a study is opened: state, viewer, status, metadata, window, centre, width, frame."""
        picture = model_picture(study, frame, None, self._bounds(key))
        rng = slider_range(study, frame)
        resolved = study.resolve_window(frame, None)
        windowing = not study.is_color
        center = resolved.center if resolved else (rng.low + rng.high) / 2
        width = resolved.width if resolved else rng.high - rng.low
        return (
            study,
            gr.update(value=picture, label=self._viewer_label(study, picture)),
            render.status_html(status, "info") if status else "",
            render.metadata_markdown(study.kind, study.metadata, study.warnings),
            gr.update(choices=window_choices(study), value=DEFAULT, interactive=windowing),
            gr.update(
                minimum=min(rng.low, center), maximum=max(rng.high, center), value=center, step=rng.step,
                visible=windowing,
            ),
            gr.update(
                minimum=min(1, width), maximum=max(rng.max_width, width), value=width, step=rng.step,
                visible=windowing,
            ),
            gr.update(
                minimum=0, maximum=max(study.num_frames - 1, 1), value=frame, step=1, visible=study.num_frames > 1
            ),
        )  # fmt: skip

    @staticmethod
    def _viewer_label(study: Study, picture: Image.Image) -> str:
        width, height = study.size
        return (
            f"What the model sees: {picture.width} × {picture.height} px "
            f"(from {width} × {height}{f', {study.num_frames} frames' if study.num_frames > 1 else ''})"
        )

    def _error_outputs(self, message: str) -> tuple:
        return (
            None,
            gr.update(value=None, label="What the model sees"),
            render.status_html(message, "error"),
            "",
            gr.update(choices=window_choices(None), value=DEFAULT, interactive=False),
            gr.update(visible=False),
            gr.update(visible=False),
            gr.update(visible=False),
        )

    # -- image events ---------------------------------------------------------------------------
    def open_upload(self, path: str | None, model_key: str | None) -> tuple:
        """Read the upload into memory, delete it from disk, open it (DICOM recognised by content)."""
        if not path:
            return (gr.skip(),) * 9
        name = Path(path).name
        try:
            data = self.ctx.uploads.read(path)
        except OSError:  # e.g. removed by the janitor just before an identical re-upload landed
            return (*self._error_outputs(f"{name}: the upload could not be read. Upload it again."), None)
        try:
            study = open_study(data, name=name)
        except ImagingError as exc:
            return (*self._error_outputs(str(exc)), None)
        return (*self._study_outputs(study, model_key, status=f"Loaded {name}."), None)

    def open_example(self, evt: gr.SelectData, model_key: str | None) -> tuple:
        """Open a gallery example and fill in its question and options."""
        example = self.examples[evt.index]
        try:
            study = open_study(example.path)
        except ImagingError as exc:
            return (*self._error_outputs(str(exc)), *([gr.skip()] * (2 + MAX_OPTIONS)))
        frame = min(example.frame, study.num_frames - 1)
        count = len(example.options) if example.options else FREE_TEXT
        boxes = [
            gr.update(value=example.options[i] if i < len(example.options) else "", visible=i < count)
            for i in range(MAX_OPTIONS)
        ]
        outputs = self._study_outputs(study, model_key, frame=frame, status=f"Example: {example.caption}.")
        return (*outputs, example.question, count, *boxes)

    def _render(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        if study is None:
            return gr.skip(), gr.skip()
        try:
            picture = model_picture(study, int(frame or 0), window_arg(preset, center, width), self._bounds(key))
        except ImagingError as exc:
            return gr.skip(), render.status_html(str(exc), "error")
        return gr.update(value=picture, label=self._viewer_label(study, picture)), gr.skip()

    def on_window(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        """A preset was picked: move the sliders to its (centre, width), then render."""
        if study is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        image, status = self._render(study, key, preset, center, width, frame)
        if preset == CUSTOM:
            return image, status, gr.skip(), gr.skip()
        resolved = study.resolve_window(int(frame or 0), window_arg(preset, center, width))
        if resolved is None:
            return image, status, gr.skip(), gr.skip()
        return image, status, gr.update(value=resolved.center), gr.update(value=resolved.width)

    def on_slider(self, study: Study | None, key: str | None, center: float, width: float, frame: int):
        """Centre or width moved: switch the dropdown to Custom and render with the sliders' window."""
        image, status = self._render(study, key, CUSTOM, center, width, frame)
        return image, status, gr.update(value=CUSTOM) if study is not None else gr.skip()

    def on_frame(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        return self.on_window(study, key, preset, center, width, frame)

    def on_model(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        """Another model picked: new banner and status; re-render, since its input size may differ."""
        image, _ = self._render(study, key, preset, center, width, frame)
        return self.banner(key), self.model_status(key), image

    def add_model(self, value: str) -> tuple:
        """Add a local checkpoint/adapter folder or ``owner/repo[:folder]`` to the picker and select it."""
        from .models import spec_from_argument

        value = (value or "").strip()
        if not value:
            return gr.skip(), render.status_html("Type a folder path or owner/repo[:folder].", "error")
        try:
            spec = self.ctx.registry.add(spec_from_argument(value))
        except ModelLoadError as exc:
            return gr.skip(), render.status_html(str(exc), "error")
        return gr.update(choices=self.ctx.registry.choices(), value=spec.key), render.status_html(
            f"Added {spec.label}. It loads when you ask.", "info"
        )

    # -- asking ---------------------------------------------------------------------------------
    def arm(self, request: gr.Request) -> None:
        self.ctx.stops.arm(_session(request))

    def stop(self, request: gr.Request) -> str:
        stopped = self.ctx.stops.stop(_session(request))
        return render.status_html("Stopping…" if stopped else "Nothing is running.", "info")

    def _generate_impl(self, key, picture, prompt, options, settings, stop) -> Iterator[AnswerProgress]:
        loaded = self.ctx.manager.get(key)
        yield from answer(loaded, picture, prompt, options, settings, stop, stream_fn=self.ctx.stream_fn)

    def ask(
        self,
        study: Study | None,
        model_key: str | None,
        preset: str,
        center: float,
        width: float,
        frame: int,
        question: str,
        option_count: int,
        a: str,
        b: str,
        c: str,
        d: str,
        e: str,
        f: str,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        style: str,
        seed: float,
        samples: int,
        request: gr.Request,
    ) -> Iterator[tuple]:
        """Outputs: viewer, answer, rationale, samples, downloads, status, banner, model status, result."""
        session = _session(request)
        stop = self.ctx.stops.take(session)
        skip = gr.skip()
        export_dir: Path | None = None
        started = time.perf_counter()

        def error(message: str) -> tuple:
            return skip, skip, skip, skip, skip, render.status_html(message, "error"), skip, skip, {"error": message}

        try:
            if study is None:
                yield error("Upload an image (DICOM, PNG or JPEG) or pick an example first.")
                return
            options = collect_options(option_count, [a, b, c, d, e, f])
            prompt = build_prompt(question or "", options, style)
            settings = GenerationSettings(
                float(temperature), float(top_p), int(max_new_tokens), style, int(seed or 0), int(samples)
            ).validated()
            key = model_key or self.ctx.default_model
            spec = self.ctx.registry.get(key)
            if stop.is_set():
                yield error("Stopped before it started.")
                return
            loaded = self.ctx.manager.loaded
            if loaded is None or loaded.spec.key != key:
                yield (
                    skip,
                    skip,
                    "",
                    "",
                    None,
                    render.status_html(f"Loading {spec.label}… (first use)", "info"),
                    skip,
                    skip,
                    None,
                )
                loaded = self.ctx.manager.get(key)
            window = window_arg(preset, center, width)
            frame = int(frame or 0)
            picture = model_picture(study, frame, window, loaded.bounds)
            view = view_record(study, frame, window, picture)
            working = "Generating" + (f" {settings.samples} samples" if settings.samples > 1 else "") + "…"
            yield (
                gr.update(value=picture, label=self._viewer_label(study, picture)),
                render.answer_html(None),
                "",
                "",
                None,
                render.status_html(working, "info"),
                self.banner(key),
                self.model_status(key),
                None,
            )
            progress: AnswerProgress | None = None
            stop_arg = None if zero_gpu() else stop  # a threading.Event cannot cross into the ZeroGPU worker
            shown_at, shown_sample = 0.0, -1
            for progress in self._generate(key, picture, prompt, options, settings, stop_arg):
                # At most one screen update every UI_INTERVAL s (a new sample always shows at once):
                # rendering and sending every token would slow the generating thread for no visible gain.
                now = time.perf_counter()
                if now - shown_at < UI_INTERVAL and progress.current == shown_sample and not progress.finished:
                    continue
                shown_at, shown_sample = now, progress.current
                yield (
                    skip,
                    render.answer_html(progress, options),
                    render.rationale_text(progress),
                    render.samples_html(progress, options),
                    skip,
                    skip,
                    skip,
                    skip,
                    skip,
                )
            if progress is None:
                yield error("The model produced no output.")
                return
            record = AskRecord(
                question=" ".join((question or "").split()),
                options=tuple(options or ()),
                prompt=prompt,
                model=loaded.spec,
                settings=settings,
                view=view,
                image_summary=dict(study.metadata),
                progress=progress,
            )
            files = write_export(record, picture)
            export_dir = files[0].parent
            elapsed = time.perf_counter() - started
            done = "Stopped." if progress.stopped else f"Done in {elapsed:.1f} s."
            yield (
                skip,
                render.answer_html(progress, options),
                render.rationale_text(progress),
                render.samples_html(progress, options),
                [str(p) for p in files],
                render.status_html(done, "info"),
                self.banner(key),
                self.model_status(key),
                record_dict(record),
            )
        except (ValueError, ModelLoadError) as exc:  # ImagingError is a ValueError
            yield error(str(exc))
        except Exception as exc:  # e.g. out of GPU memory: say so in the panel, keep serving
            # The traceback (code lines, no argument values) goes to the log for the operator.
            logger.exception("Answering failed")
            yield error(
                f"The model failed ({type(exc).__name__}). Try fewer new tokens or samples; "
                "the server log has the details."
            )
        finally:
            self.ctx.stops.done(session, stop)
            if export_dir is not None:  # Gradio has copied the files into its cache by now
                shutil.rmtree(export_dir, ignore_errors=True)


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "no-session"


def build_ask_tab(ctx: AppContext) -> AskTab:
    """Create the Ask tab's components and events inside the current ``gr.Tab``."""
    controller = AskController(ctx)
    study = gr.State(None, time_to_live=STUDY_TTL_SECONDS)
    banner = gr.HTML(controller.banner(ctx.default_model), elem_id="medr1-banner")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5, min_width=320):
            upload = gr.File(
                label="Upload a DICOM file (any name, with or without extension), PNG or JPEG",
                file_count="single",
                type="filepath",
                elem_id="medr1-upload",
                height=110,
            )
            upload_status = gr.HTML(elem_id="medr1-upload-status")
            viewer = gr.Image(
                label="What the model sees",
                type="pil",
                format="png",
                interactive=False,
                height=420,
                buttons=["download", "fullscreen"],
                elem_id="medr1-viewer",
            )
            with gr.Row():
                window = gr.Dropdown(
                    choices=window_choices(None),
                    value=DEFAULT,
                    label="Window",
                    interactive=False,
                    elem_id="medr1-window",
                )
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", visible=False, elem_id="medr1-frame")
            with gr.Row():
                center = gr.Slider(0, 255, value=128, label="Window centre", visible=False, elem_id="medr1-center")
                width = gr.Slider(1, 512, value=256, label="Window width", visible=False, elem_id="medr1-width")
            with gr.Accordion("Image details (technical, no patient data)", open=False):
                metadata = gr.Markdown(elem_id="medr1-metadata")
            controller.examples, items = build_gallery()
            gallery = gr.Gallery(
                value=items,
                label="Examples (click one to load it with a question)",
                columns=4,
                height=180,
                allow_preview=False,
                format="png",
                buttons=[],
                elem_id="medr1-examples",
            )
        with gr.Column(scale=5, min_width=320):
            with gr.Row():
                model = ctx.menus.menu(primary=True, label="Model", scale=8, elem_id="medr1-model")
                refresh = gr.Button("↻", scale=1, min_width=40, elem_id="medr1-refresh-models")
            model_status = gr.HTML(controller.model_status(ctx.default_model))
            if ctx.allow_add_models:
                with (
                    gr.Accordion("Add a model (local folder, fine-tuned adapter, or owner/repo[:folder])", open=False),
                    gr.Row(),
                ):
                    add_path = gr.Textbox(
                        show_label=False, placeholder="/path/to/run or yuxianglai117/Med-R1:VQA_CT", scale=4
                    )
                    add_button = gr.Button("Add", scale=1)
            question = gr.Textbox(
                label="Question",
                lines=2,
                placeholder="e.g. What imaging technique was used to obtain this image?",
                elem_id="medr1-question",
            )
            option_count = gr.Radio(OPTION_COUNTS, value=4, label="Answer options", elem_id="medr1-option-count")
            option_boxes = []
            with gr.Group():
                for i, letter in enumerate(LETTERS):
                    option_boxes.append(
                        gr.Textbox(
                            label=f"Option {letter}", visible=i < 4, max_lines=1, elem_id=f"medr1-option-{letter}"
                        )
                    )
            with gr.Accordion("Generation settings", open=False):
                temperature = gr.Slider(
                    0, 2, value=0.0, step=0.05, label="Temperature (0 = always the most likely word)"
                )
                top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p")
                max_new_tokens = gr.Slider(16, MAX_NEW_TOKENS, value=512, step=16, label="Max new tokens")
                style = gr.Radio(STYLE_CHOICES, value="think", label="Prompt")
                seed = gr.Number(value=0, precision=0, label="Seed")
                samples = gr.Slider(
                    1,
                    MAX_SAMPLES,
                    value=1,
                    step=1,
                    label="Self-consistency: number of answers to sample (above 1, temperature 0 becomes 0.7)",
                    elem_id="medr1-samples",
                )
            with gr.Row():
                ask_button = gr.Button("Ask", variant="primary", elem_id="medr1-ask")
                stop_button = gr.Button("Stop", variant="stop", elem_id="medr1-stop")
            ask_status = gr.HTML(elem_id="medr1-ask-status")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            rationale = gr.Textbox(
                label="Reasoning (streams as the model writes it)",
                lines=12,
                max_lines=30,
                interactive=False,
                autoscroll=True,
                buttons=["copy"],
                elem_id="medr1-rationale",
            )
        with gr.Column(scale=2):
            answer_view = gr.HTML(render.answer_html(None), elem_id="medr1-answer")
    with gr.Accordion("Every sample's reasoning (self-consistency)", open=False):
        samples_view = gr.HTML(elem_id="medr1-samples")
    downloads = gr.File(
        label="Download: the image shown, and the question, reasoning, answer and settings (JSON, Markdown)",
        file_count="multiple",
        interactive=False,
        elem_id="medr1-downloads",
    )
    result = gr.JSON(visible=False, label="result")

    view_inputs = [study, model, window, center, width, frame]
    study_outputs = [study, viewer, upload_status, metadata, window, center, width, frame]
    light = {"concurrency_limit": 8, "concurrency_id": "viewer"}
    upload.upload(controller.open_upload, [upload, model], [*study_outputs, upload], api_name="open", **light)
    gallery.select(
        controller.open_example,
        [model],
        [*study_outputs, question, option_count, *option_boxes],
        api_visibility="private",
        **light,
    )
    window.input(
        controller.on_window, view_inputs, [viewer, upload_status, center, width], api_visibility="private", **light
    )
    for slider in (center, width):
        slider.release(
            controller.on_slider,
            [study, model, center, width, frame],
            [viewer, upload_status, window],
            api_visibility="private",
            trigger_mode="always_last",
            **light,
        )
    frame.release(
        controller.on_frame, view_inputs, [viewer, upload_status, center, width], api_visibility="private",
        trigger_mode="always_last", **light,
    )  # fmt: skip
    model.input(controller.on_model, view_inputs, [banner, model_status, viewer], api_visibility="private", **light)
    ctx.menus.refresh_after(refresh.click(None, None, None, api_visibility="private", queue=False))
    if ctx.allow_add_models:
        added = add_button.click(
            controller.add_model, [add_path], [model, model_status], api_visibility="private"
        ).then(controller.on_model, view_inputs, [banner, model_status, viewer], api_visibility="private")
        ctx.menus.refresh_after(added)
    option_count.change(
        lambda n: [gr.update(visible=int(n or 0) > i) for i in range(MAX_OPTIONS)],
        [option_count],
        option_boxes,
        api_visibility="private",
        queue=False,
    )
    ask_inputs = [
        study, model, window, center, width, frame, question, option_count, *option_boxes,
        temperature, top_p, max_new_tokens, style, seed, samples,
    ]  # fmt: skip
    ask_outputs = [viewer, answer_view, rationale, samples_view, downloads, ask_status, banner, model_status, result]
    ask_event = ask_button.click(controller.arm, None, None, queue=False, api_visibility="private").then(
        controller.ask,
        ask_inputs,
        ask_outputs,
        api_name="ask",
        concurrency_id=ctx.gpu_concurrency_id,
        concurrency_limit=1,
        show_progress="minimal",
    )
    stop_button.click(
        controller.stop,
        None,
        ask_status,
        api_name="stop",
        queue=False,
        cancels=[ask_event] if zero_gpu() else None,  # ZeroGPU: the worker cannot see the Stop event
    )
    return AskTab(
        study, upload, upload_status, viewer, window, center, width, frame, metadata, gallery, banner, model,
        model_status, question, option_count, option_boxes, temperature, top_p, max_new_tokens, style, seed,
        samples, ask_button, stop_button, ask_status, answer_view, rationale, samples_view, downloads, result,
        controller,
    )  # fmt: skip
