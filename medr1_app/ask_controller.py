"""The Ask tab's event handlers: one screen state, from the picture to the conversation about it.

Every handler returns a dict of component updates (``{component: value}``), so what an event changes is
written where it happens. One rule keeps the screen honest: anything that changes what the model would see
or who answers (a new image, frame, window or model) clears the answer, its reasoning, its downloads and the
conversation; editing the question marks the answer as belonging to the question as it was asked.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
from PIL import Image

from train.evidence import EvidenceError
from train.evidence.maps import DEFAULT_OPACITY
from train.imaging import ImagingError, PixelBounds, Study, list_series, model_picture, open_study
from train.imaging.files import upload_kind
from train.imaging.slices import MULTI_SLICE_NOTE, slice_pictures
from train.model_io import ModelLoadError
from train.protocol import DEFAULT_PROMPT, LETTERS, MAX_OPTIONS, MIN_OPTIONS, build_prompt

from . import evidence_panel, render
from .answering import AnswerProgress, answer
from .context import AppContext
from .conversation import Conversation, Turn
from .examples import Example
from .export import AskRecord, record_dict, write_export
from .generation import GenerationSettings
from .gpu import gpu_task, zero_gpu
from .models import ModelSpec
from .viewer import CUSTOM, DEFAULT, bounds_for, slider_range, view_record, window_arg, window_choices

if TYPE_CHECKING:
    from .ask_components import AskTab

logger = logging.getLogger(__name__)

UI_INTERVAL = 0.05  # seconds between two updates of the streaming answer (20 per second)
FREE_TEXT = 0
NO_IMAGE = "Drop a DICOM file (any file name), a PNG or a JPEG above, or pick an example below."


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


def parse_option_lines(text: str | None) -> list[str] | None:
    """A follow-up's options, one per line (None: a free-text follow-up)."""
    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return None
    if not MIN_OPTIONS <= len(lines) <= MAX_OPTIONS:
        raise ValueError(f"Give {MIN_OPTIONS} to {MAX_OPTIONS} options, one per line, or none for a free answer.")
    return lines


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "no-session"


class AskController:
    """Event handlers of the Ask tab, bound to one :class:`AppContext` and the tab's components."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx
        self.examples: list[Example] = []
        self.tab: AskTab | None = None
        self._failed: dict[str, str] = {}  # model key -> the short reason it could not be loaded
        # ZeroGPU attaches a GPU only inside this call; elsewhere gpu_task is a no-op.
        self._generate = gpu_task(duration=120)(self._generate_impl)
        # The evidence takes a GPU slot of its own after the answer's is released (ZeroGPU).
        self._evidence = gpu_task(duration=60)(self._evidence_impl)

    # -- model -------------------------------------------------------------------------------------
    def spec(self, key: str | None) -> ModelSpec | None:
        try:
            return self.ctx.registry.get(key or self.ctx.default_model)
        except ModelLoadError:
            return None

    def _bounds(self, key: str | None) -> PixelBounds:
        return bounds_for(self.spec(key), self.ctx.manager.loaded)

    def banner(self, key: str | None) -> str:
        spec = self.spec(key)
        if spec is None:
            return ""
        loaded = self.ctx.manager.loaded
        tiny = spec.tiny or bool(loaded and loaded.spec.key == spec.key and loaded.tiny)
        return render.banner_html(tiny, spec.note if not tiny else "", demo=spec.demo, adapter=spec.kind == "adapter")

    def model_status(self, key: str | None) -> str:
        key = key or self.ctx.default_model
        loaded = self.ctx.manager.loaded
        if loaded is not None and loaded.spec.key == key:
            dtype = str(loaded.dtype).replace("torch.", "")
            return render.status_html(f"Loaded on {loaded.device} ({dtype}) in {loaded.load_seconds:.1f} s.", "info")
        if key in self._failed:
            return render.status_html(f"Could not be loaded: {self._failed[key]}", "error")
        return render.status_html("This model loads when you ask the first question.", "info")

    def _prompt_of(self, key: str | None) -> str:
        spec = self.spec(key)
        return spec.prompt if spec else DEFAULT_PROMPT

    def prompt_defaults(self, key: str | None) -> dict:
        """The prompt a checkpoint was trained with (its model card): the picker follows the model."""
        tab = self.tab
        assert tab is not None
        spec = self.spec(key)
        if spec is None:
            return {}
        return {tab.prompt: spec.prompt, tab.style: spec.prompt_style}

    def model_label(self, key: str | None) -> str:
        spec = self.spec(key)
        return f"Model: {spec.label}" if spec else "Model"

    def _model_updates(self, key: str | None) -> dict:
        tab = self.tab
        assert tab is not None
        return {
            tab.banner: self.banner(key),
            tab.model_status: self.model_status(key),
            tab.model_section: gr.update(label=self.model_label(key)),
        }

    def load_error(self, spec: ModelSpec, exc: ModelLoadError) -> tuple[str, str]:
        """(shortest fix, library text) for a model that failed to load."""
        if exc.unreachable:
            short = (
                f"{spec.label} is not on this machine and the model hub cannot be reached. For an offline look, "
                "start `medr1-app --model tiny`; with the hub reachable, the weights download on the first question."
            )
        else:
            short = getattr(exc, "summary", str(exc))
        return short, str(exc)

    # -- the screen state --------------------------------------------------------------------------
    def cleared(self) -> dict:
        """Everything that belongs to an answer, emptied: a new picture or model gets a fresh screen."""
        tab = self.tab
        assert tab is not None
        return {
            tab.answer: render.EMPTY_ANSWER,
            tab.rationale: "",
            tab.samples_view: "",
            tab.sample_picker: gr.update(choices=[], value=None, visible=False),
            tab.downloads: None,
            tab.downloads_section: gr.update(label="Downloads (after an answer)"),
            tab.ask_status: "",
            tab.conversation: None,
            tab.conversation_view: [],
            tab.followup_group: gr.update(visible=False),
            tab.result: None,
            tab.evidence_view: evidence_panel.EMPTY,
            tab.map_row: gr.update(visible=False),
            tab.map_method: gr.update(visible=False, value="attention"),
        }

    def _viewer(self, study: Study, picture: Image.Image) -> dict:
        tab = self.tab
        assert tab is not None
        width, height = study.size
        frames = f", {study.num_frames} frames" if study.num_frames > 1 else ""
        info = f"What the model sees: **{picture.width} × {picture.height} px** (from {width} × {height}{frames})"
        return {tab.viewer: picture, tab.viewer_info: info}

    def _window_controls(
        self, study: Study, frame: int, preset: str, center: float | None, width: float | None
    ) -> dict:
        """Dropdown and sliders for ``frame``: ranges from this frame's values, values from its window."""
        tab = self.tab
        assert tab is not None
        rng = slider_range(study, frame)
        windowing = not study.is_color
        resolved = study.resolve_window(frame, window_arg(preset, center, width)) if preset != CUSTOM else None
        if preset == CUSTOM and center is not None and width is not None:
            value_center, value_width = float(center), float(width)
        elif resolved is not None:
            value_center, value_width = resolved.center, resolved.width
        else:
            value_center, value_width = (rng.low + rng.high) / 2, rng.high - rng.low
        return {
            tab.window: gr.update(choices=window_choices(study), value=preset, interactive=windowing),
            tab.center: gr.update(
                minimum=min(rng.low, value_center), maximum=max(rng.high, value_center), value=value_center,
                step=rng.step, visible=windowing,
            ),
            tab.width: gr.update(
                minimum=min(1, value_width), maximum=max(rng.max_width, value_width), value=value_width,
                step=rng.step, visible=windowing,
            ),
        }  # fmt: skip

    def _study_outputs(
        self, study: Study, key: str | None, frame: int | None = None, status: str = "", listing=None,
        series_index: int = 0,
    ) -> dict:  # fmt: skip
        """Everything the screen shows for a newly opened study (a picture, a file's frames, a series, a volume).

        A series or a volume opens on its middle slice (already decoded, and usually the informative one).
        """
        tab = self.tab
        assert tab is not None
        if frame is None:
            frame = study.num_frames // 2 if study.frame_noun == "slice" else 0
        picture = model_picture(study, frame, None, self._bounds(key))
        several = listing is not None and len(listing) > 1
        warnings = [*(listing.warnings if listing is not None else ()), *study.warnings]
        return {
            **self.cleared(),
            tab.study: study,
            **self._viewer(study, picture),
            tab.upload_status: render.status_html(status, "info") if status else "",
            tab.metadata: render.metadata_markdown(study.kind, study.metadata, tuple(dict.fromkeys(warnings))),
            **self._window_controls(study, frame, DEFAULT, None, None),
            tab.frame: gr.update(
                minimum=0, maximum=max(study.num_frames - 1, 1), value=frame, step=1, visible=study.num_frames > 1,
                label=study.frame_noun.capitalize(),
            ),
            tab.examples_section: gr.update(open=False),
            tab.series: gr.update(
                choices=[(info.label, info.index) for info in listing] if several else [],
                value=series_index if several else None, visible=several,
            ),
            tab.view: gr.update(
                choices=list(study.views), visible=bool(study.views),
                value=study.metadata.get("view") or (study.views[0] if study.views else None),
            ),
            tab.slices_to_ask: gr.update(
                value=1, maximum=min(16, max(study.num_frames, 2)), visible=study.num_frames > 1,
                label=f"Ask about this {study.frame_noun} (1) or N {study.frame_noun}s spread through the study",
            ),
            tab.slices_note: "",
            **({tab.listing: listing} if listing is not None else {}),
        }  # fmt: skip

    def _error_outputs(self, message: str) -> dict:
        tab = self.tab
        assert tab is not None
        return {
            **self.cleared(),
            tab.study: None,
            tab.viewer: None,
            tab.viewer_info: NO_IMAGE,
            tab.upload_status: render.status_html(message, "error"),
            tab.metadata: "",
            tab.window: gr.update(choices=window_choices(None), value=DEFAULT, interactive=False),
            tab.center: gr.update(visible=False),
            tab.width: gr.update(visible=False),
            tab.frame: gr.update(visible=False),
        }

    # -- image events ------------------------------------------------------------------------------
    def open_upload(self, paths: str | list[str] | None, model_key: str | None) -> dict:
        """Open what was dropped: one picture or DICOM file, a ZIP of a series, a NIfTI volume, or several files.

        A single picture is read into memory and its upload deleted seconds later; a ZIP or a volume is
        opened from its path (its own open handle keeps it readable after the upload is deleted, and it
        is never held whole in memory); several dropped DICOM files are read into memory and grouped by
        series. Names inside a ZIP are never shown; several files are named by their count.
        """
        tab = self.tab
        assert tab is not None
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        if not paths:
            return {}
        name = Path(paths[0]).name if len(paths) == 1 else f"{len(paths)} files"
        try:
            kind = upload_kind(paths[0]) if len(paths) == 1 else "files"
            if kind in ("zip", "nifti"):
                listing = list_series(paths[0], name=name)
            else:
                data = [self.ctx.uploads.read(p) for p in paths]
                listing = list_series(data[0] if len(data) == 1 else data, name=name)
            study = listing.open(0)
        except OSError:  # e.g. removed by the janitor just before an identical re-upload landed
            return {**self._error_outputs(f"{name}: the upload could not be read. Upload it again."), tab.upload: None}
        except ImagingError as exc:
            return {**self._error_outputs(str(exc)), tab.upload: None}
        finally:
            for path in paths:
                self.ctx.uploads.release(path)
        # What was loaded, never its file name (names often carry a patient's name); errors above may name
        # it, so the user knows which of their files to fix.
        what = {"zip": "a ZIP of DICOM files", "nifti": "a NIfTI volume", "files": f"{len(paths)} files"}.get(
            kind, "a DICOM file" if study.kind == "dicom" else "a picture"
        )
        status = f"Loaded {what}." + (f" It holds {len(listing)} series: pick one below." if len(listing) > 1 else "")
        return {**self._study_outputs(study, model_key, status=status, listing=listing), tab.upload: None}

    def on_series(self, listing, index: int | None, model_key: str | None) -> dict:
        """Another series (or volume) of the same upload, opened without scanning it again."""
        if listing is None or index is None:
            return {}
        try:
            study = listing.open(int(index))
        except ImagingError as exc:
            return self._error_outputs(str(exc))
        return self._study_outputs(study, model_key, listing=listing, series_index=int(index))

    def on_view(self, listing, index: int | None, study: Study | None, view: str | None, model_key: str | None):
        """A volume seen from another side (axial, coronal, sagittal): a study of its own slices."""
        tab = self.tab
        assert tab is not None
        if study is None or not view or view == study.metadata.get("view"):
            return {}
        try:
            other = study.reformat(view)
        except ImagingError as exc:
            return {tab.upload_status: render.status_html(str(exc), "error")}
        return self._study_outputs(other, model_key, listing=listing, series_index=int(index or 0))

    def open_example(self, evt: gr.SelectData, model_key: str | None) -> dict:
        """Open a gallery example and fill in its question and options."""
        tab = self.tab
        assert tab is not None
        example = self.examples[evt.index]
        try:
            study = open_study(example.path)
        except ImagingError as exc:
            return self._error_outputs(str(exc))
        frame = min(example.frame, study.num_frames - 1)
        count = len(example.options) if example.options else FREE_TEXT
        boxes = {
            box: gr.update(value=example.options[i] if i < len(example.options) else "", visible=i < count)
            for i, box in enumerate(tab.option_boxes)
        }
        outputs = self._study_outputs(study, model_key, frame=frame, status=f"Example: {example.caption}.")
        return {**outputs, tab.question: example.question, tab.option_count: count, **boxes}

    def _render(self, study: Study, key: str | None, preset: str, center: float, width: float, frame: int) -> dict:
        tab = self.tab
        assert tab is not None
        try:
            picture = model_picture(study, int(frame or 0), window_arg(preset, center, width), self._bounds(key))
        except ImagingError as exc:
            return {tab.upload_status: render.status_html(str(exc), "error")}
        return {**self._viewer(study, picture), tab.upload_status: ""}

    def on_window(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        """A preset was picked: move the sliders to its (centre, width), then render."""
        if study is None:
            return {}
        frame = int(frame or 0)
        return {
            **self.cleared(),
            **self._render(study, key, preset, center, width, frame),
            **self._window_controls(study, frame, preset, center, width),
        }

    def on_slider(self, study: Study | None, key: str | None, center: float, width: float, frame: int) -> dict:
        """Centre or width moved (or typed, then Enter): switch the dropdown to Custom and render."""
        tab = self.tab
        assert tab is not None
        if study is None:
            return {}
        return {
            **self.cleared(),
            **self._render(study, key, CUSTOM, center, width, frame),
            tab.window: gr.update(value=CUSTOM),
        }

    def on_frame(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        """Another frame: its own window and slider ranges (frames of one file can differ widely)."""
        if study is None:
            return {}
        frame = int(frame or 0)
        if preset == CUSTOM:  # a hand-set window stays; the ranges follow the frame
            return {
                **self.cleared(),
                **self._render(study, key, CUSTOM, center, width, frame),
                **self._window_controls(study, frame, CUSTOM, center, width),
            }
        return self.on_window(study, key, preset, center, width, frame)

    def on_model(self, study: Study | None, key: str | None, preset: str, center: float, width: float, frame: int):
        """Another model picked: new banner and status; re-render, since its input size may differ."""
        updates = {**self.cleared(), **self._model_updates(key), **self.prompt_defaults(key)}
        if study is not None:
            updates.update(self._render(study, key, preset, center, width, int(frame or 0)))
        return updates

    def on_question_edit(self, conversation: Conversation | None) -> dict:
        """The question changed after an answer: say plainly that the answer is for the earlier text."""
        tab = self.tab
        assert tab is not None
        turn = conversation.last if conversation else None
        if turn is None or turn.progress is None or len(conversation.turns) > 1:
            return {}
        return {tab.answer: render.answer_html(turn.progress, turn.options, stale=True), tab.downloads: None}

    def add_model(self, value: str) -> dict:
        """Add a local checkpoint/adapter folder or ``owner/repo[:folder]`` to the registry and select it."""
        from .models import spec_from_argument

        tab = self.tab
        assert tab is not None
        value = (value or "").strip()
        if not value:
            return {tab.model_status: render.status_html("Type a folder path or owner/repo[:folder].", "error")}
        try:
            spec = self.ctx.registry.add(spec_from_argument(value))
        except ModelLoadError as exc:
            return {tab.model_status: render.status_html(str(exc), "error")}
        return {
            tab.model: gr.update(choices=self.ctx.registry.choices(), value=spec.key),
            tab.model_status: render.status_html(f"Added {spec.label}. It loads when you ask.", "info"),
        }

    def on_slices(self, study: Study | None, key: str | None, count: int | None) -> dict:
        """Several slices asked about at once: which ones, what they cost in visual tokens, and the caveat."""
        tab = self.tab
        assert tab is not None
        if study is None or int(count or 1) <= 1:
            return {tab.slices_note: ""}
        try:
            chosen = slice_pictures(study, int(count), None, self._bounds(key))
        except ImagingError as exc:
            return {tab.slices_note: render.status_html(str(exc), "error")}
        shown = ", ".join(str(i) for i in chosen.indices)
        return {
            tab.slices_note: f"The question goes with {len(chosen.indices)} {study.frame_noun}s ({shown}): "
            f"**{chosen.image_tokens} image tokens** in the prompt. {MULTI_SLICE_NOTE}"
        }

    def show_sample(self, conversation: Conversation | None, index: int | None) -> dict:
        """The self-consistency picker: show that sample's reasoning in the reasoning panel."""
        tab = self.tab
        assert tab is not None
        turn = conversation.last if conversation else None
        if turn is None or turn.progress is None or index is None:
            return {}
        return {tab.rationale: render.sample_rationale(turn.progress, index)}

    def on_map(self, conversation: Conversation | None, show: bool, opacity: float, method: str = "attention") -> dict:
        """The map's switch, opacity or kind changed: redraw the viewer from the kept evidence (no model call)."""
        tab = self.tab
        assert tab is not None
        picture = evidence_panel.overlay(conversation, bool(show), float(opacity), method or "attention")
        return {tab.viewer: picture} if picture is not None else {}

    # -- asking ------------------------------------------------------------------------------------
    def arm(self, request: gr.Request) -> None:
        self.ctx.stops.arm(_session(request))

    def stop(self, request: gr.Request) -> str:
        stopped = self.ctx.stops.stop(_session(request))
        return render.status_html("Stopping…" if stopped else "Nothing is running.", "info")

    def _generate_impl(self, key, picture, prompt, options, settings, stop) -> Iterator[AnswerProgress]:
        loaded = self.ctx.manager.get(key)
        yield from answer(loaded, picture, prompt, options, settings, stop, stream_fn=self.ctx.stream_fn)

    def _evidence_impl(self, key, conversation, turn, should_stop, relevancy=False):
        loaded = self.ctx.manager.get(key)
        yield from self.ctx.evidence_fn(loaded, conversation, turn, should_stop, relevancy=relevancy)

    def _explain(
        self, key: str, conversation: Conversation, turn: Turn, stop, show_map: bool, opacity: float,
        relevancy: bool = False, method: str = "attention",
    ) -> Generator[dict, None, str]:  # fmt: skip
        """After the answer: the Evidence panel stage by stage and the map on the viewer; returns the
        panel's final HTML."""
        tab = self.tab
        assert tab is not None
        should_stop = (lambda: False) if stop is None else stop.is_set
        evidence = None
        try:
            for evidence in self._evidence(key, conversation, turn, should_stop, relevancy):
                turn.evidence = evidence
                next_step = ""
                if not evidence.complete:
                    next_step = (
                        "Asking again on a grey picture (image reliance)…"
                        if evidence.reliance is None
                        else "Computing the relevancy map (gradient × attention)…"
                    )
                single = bool(evidence.maps) and not conversation.slices
                update = {
                    tab.evidence_view: evidence_panel.evidence_html(evidence, conversation, working=next_step),
                    tab.map_row: gr.update(visible=single),
                    tab.map_method: gr.update(visible=single and bool(evidence.relevancy_maps)),
                }
                if show_map and single:
                    update[tab.viewer] = evidence_panel.overlay(conversation, True, opacity, method)
                yield update
        except EvidenceError as exc:
            return evidence_panel.evidence_html(None, conversation, error=str(exc))
        except Exception as exc:  # the answer stands; the operator's log has the traceback
            logger.exception("Evidence failed")
            message = f"The evidence could not be computed ({type(exc).__name__}); the answer above stands."
            return evidence_panel.evidence_html(None, conversation, error=message)
        if evidence is None:
            return evidence_panel.evidence_html(None, conversation, error="Evidence stopped.")
        return evidence_panel.evidence_html(evidence, conversation, stopped=not evidence.complete)

    def ask(
        self,
        study: Study | None, model_key: str | None, preset: str, center: float, width: float, frame: int,
        question: str, option_count: int, a: str, b: str, c: str, d: str, e: str, f: str,
        temperature: float, top_p: float, max_new_tokens: int, style: str, seed: float, samples: int,
        prompt_name: str | None, slices_to_ask: int | None, evidence_on: bool = True, show_map: bool = True,
        opacity: float = DEFAULT_OPACITY, relevancy_on: bool = False, map_method: str = "attention",
        request: gr.Request = None,
    ) -> Iterator[dict]:  # fmt: skip
        """The first question about the picture shown (or N evenly spaced slices): a new conversation."""
        try:
            options = collect_options(option_count, [a, b, c, d, e, f])
        except ValueError as exc:
            yield self._ask_error(str(exc))
            return
        yield from self._answer_turn(
            None, study, model_key, preset, center, width, frame, question, options,
            (temperature, top_p, max_new_tokens, style, seed, samples, prompt_name), request, slices_to_ask,
            (evidence_on, show_map, opacity, relevancy_on, map_method),
        )  # fmt: skip

    def follow_up(
        self,
        conversation: Conversation | None, study: Study | None, model_key: str | None, preset: str, center: float,
        width: float, frame: int, question: str, option_lines: str,
        temperature: float, top_p: float, max_new_tokens: int, style: str, seed: float, samples: int,
        prompt_name: str | None, evidence_on: bool = True, show_map: bool = True, opacity: float = DEFAULT_OPACITY,
        relevancy_on: bool = False, map_method: str = "attention", request: gr.Request = None,
    ) -> Iterator[dict]:  # fmt: skip
        """A further question about the same picture, asked with the conversation before it."""
        if conversation is None or not conversation.turns:
            yield self._ask_error("Ask a first question about the image, then follow up on its answer.")
            return
        try:
            options = parse_option_lines(option_lines)
        except ValueError as exc:
            yield self._ask_error(str(exc))
            return
        yield from self._answer_turn(
            conversation, study, model_key, preset, center, width, frame, question, options,
            (temperature, top_p, max_new_tokens, style, seed, samples, prompt_name), request, 1,
            (evidence_on, show_map, opacity, relevancy_on, map_method),
        )  # fmt: skip

    def _unfinished(self, conversation: Conversation | None) -> dict:
        """After a failure: drop the turn that got no answer, so a follow-up never sees an empty reply."""
        tab = self.tab
        assert tab is not None
        if conversation is None:
            return {}
        if conversation.turns and conversation.turns[-1].progress is None:
            conversation.turns.pop()
        return {tab.conversation: conversation if conversation.turns else None}

    def _ask_error(self, message: str, details: str | None = None) -> dict:
        tab = self.tab
        assert tab is not None
        return {tab.ask_status: render.status_html(message, "error", details), tab.result: {"error": message}}

    def _answer_turn(
        self, conversation: Conversation | None, study: Study | None, model_key: str | None, preset: str,
        center: float, width: float, frame: int, question: str, options: list[str] | None,
        generation: tuple, request: gr.Request, slices_to_ask: int | None = 1,
        evidence: tuple = (True, True, DEFAULT_OPACITY, False, "attention"),
    ) -> Iterator[dict]:  # fmt: skip
        tab = self.tab
        assert tab is not None
        session = _session(request)
        stop = self.ctx.stops.take(session)
        export_dir: Path | None = None
        started = time.perf_counter()
        key = model_key or self.ctx.default_model
        try:
            if study is None:
                yield self._ask_error("Upload an image (DICOM, PNG or JPEG) or pick an example first.")
                return
            temperature, top_p, max_new_tokens, style, seed, samples, prompt_name = generation
            evidence_on, show_map, opacity = bool(evidence[0]), bool(evidence[1]), float(evidence[2])
            relevancy_on, map_method = bool(evidence[3]), str(evidence[4] or "attention")
            settings = GenerationSettings(
                float(temperature), float(top_p), int(max_new_tokens), style, int(seed or 0), int(samples),
                prompt_name or self._prompt_of(key),
            ).validated()  # fmt: skip
            prompt = build_prompt(question or "", options, settings.prompt_style, settings.prompt)
            spec = self.ctx.registry.get(key)
            if stop.is_set():
                yield self._ask_error("Stopped before it started.")
                return
            loaded = self.ctx.manager.loaded
            if loaded is None or loaded.spec.key != key:
                yield {tab.ask_status: render.status_html(f"Loading {spec.label}… (first use)", "info")}
                try:
                    loaded = self.ctx.manager.get(key)
                except ModelLoadError as exc:
                    short, details = self.load_error(spec, exc)
                    self._failed[key] = short
                    yield {**self._ask_error(short, details), **self._model_updates(key)}
                    return
                self._failed.pop(key, None)
            if conversation is None:  # a first question: the conversation starts from the picture shown now
                window = window_arg(preset, center, width)
                picture = model_picture(study, int(frame or 0), window, loaded.bounds)
                view = view_record(study, int(frame or 0), window, picture)
                slices: tuple = ()
                if int(slices_to_ask or 1) > 1 and study.num_frames > 1:
                    chosen = slice_pictures(study, int(slices_to_ask), window, loaded.bounds)
                    slices = chosen.pictures
                    view.update(slices_asked=list(chosen.indices), image_tokens=chosen.image_tokens)
                conversation = Conversation(picture, view, dict(study.metadata), key, slices=slices)
            turn = Turn(" ".join((question or "").split()), tuple(options or ()), prompt, settings)
            model_input = conversation.model_input(prompt)
            conversation.turns.append(turn)
            working = "Generating" + (f" {settings.samples} samples" if settings.samples > 1 else "") + "…"
            yield {
                **self._viewer(study, conversation.picture),
                tab.answer: render.answer_html(None),
                tab.rationale: "",
                tab.samples_view: "",
                tab.sample_picker: gr.update(choices=[], value=None, visible=False),
                tab.downloads: None,
                tab.evidence_view: evidence_panel.EMPTY,
                tab.map_row: gr.update(visible=False),
                tab.map_method: gr.update(visible=False),
                tab.ask_status: render.status_html(working, "info"),
                **self._model_updates(key),
                tab.result: None,
                tab.conversation: conversation,
                tab.conversation_view: render.conversation_messages(conversation.turns),
            }
            progress: AnswerProgress | None = None
            stop_arg = None if zero_gpu() else stop  # a threading.Event cannot cross into the ZeroGPU worker
            shown_at, shown_sample = 0.0, -1
            for progress in self._generate(key, conversation.pictures, model_input, options, settings, stop_arg):
                # At most one screen update every UI_INTERVAL s (a new sample always shows at once):
                # rendering and sending every token would slow the generating thread for no visible gain.
                now = time.perf_counter()
                if now - shown_at < UI_INTERVAL and progress.current == shown_sample and not progress.finished:
                    continue
                shown_at, shown_sample = now, progress.current
                yield {
                    tab.answer: render.answer_html(progress, options),
                    tab.rationale: render.rationale_text(progress),
                    tab.samples_view: render.samples_html(progress, options),
                }
            if progress is None:
                conversation.turns.pop()
                yield self._ask_error("The model produced no output.")
                return
            turn.progress = progress
            record = AskRecord(loaded.spec, conversation)
            elapsed = time.perf_counter() - started
            done = "Stopped." if progress.stopped else f"Done in {elapsed:.1f} s."
            choices = render.sample_choices(progress, options)

            def finished(evidence_html: str) -> dict:
                """The whole answered screen (API callers read the last update of each output)."""
                nonlocal export_dir
                has_map = turn.evidence is not None and bool(turn.evidence.maps) and not conversation.slices
                if export_dir is not None:  # an earlier export of this answer, before its evidence
                    shutil.rmtree(export_dir, ignore_errors=True)
                files = write_export(record)
                export_dir = files[0].parent
                what = (
                    "pictures, evidence map, JSON, Markdown"
                    if turn.evidence is not None
                    else "pictures, JSON, Markdown"
                )
                return {  # the viewer already shows the picture: sent again, it would be written to the cache again
                    tab.answer: render.answer_html(progress, options),
                    tab.rationale: render.rationale_text(progress),
                    tab.samples_view: render.samples_html(progress, options),
                    tab.sample_picker: gr.update(
                        choices=choices, value=progress.current if choices else None, visible=bool(choices)
                    ),
                    tab.downloads: [str(p) for p in files],
                    tab.downloads_section: gr.update(label=f"Downloads ({len(files)} files: {what})"),
                    tab.ask_status: render.status_html(done, "info"),
                    **self._model_updates(key),
                    tab.result: record_dict(record),
                    tab.conversation: conversation,
                    tab.conversation_view: render.conversation_messages(conversation.turns),
                    tab.followup_group: gr.update(visible=True),
                    tab.followup: "",
                    tab.followup_options: "",
                    tab.evidence_view: evidence_html,
                    tab.map_row: gr.update(visible=has_map),
                    tab.map_method: gr.update(visible=has_map and bool(turn.evidence.relevancy_maps)),
                }

            if not (evidence_on and options and not progress.stopped and not stop.is_set()):
                yield finished(evidence_panel.EMPTY)
                return
            working = "Reading the evidence: attention map and option preference…"
            yield finished(evidence_panel.evidence_html(None, conversation, working=working))
            panel = yield from self._explain(
                key, conversation, turn, stop_arg, show_map, opacity, relevancy_on, map_method
            )
            yield finished(panel)
        except (ValueError, ModelLoadError) as exc:  # ImagingError is a ValueError
            yield {**self._ask_error(str(exc)), **self._unfinished(conversation)}
        except Exception as exc:  # e.g. out of GPU memory: say so in the panel, keep serving
            # The traceback (code lines, no argument values) goes to the log for the operator.
            logger.exception("Answering failed")
            message = (
                f"The model failed ({type(exc).__name__}). Try fewer new tokens or samples; "
                "the server log has the details."
            )
            yield {**self._ask_error(message), **self._unfinished(conversation)}
        finally:
            self.ctx.stops.done(session, stop)
            if export_dir is not None:  # Gradio has copied the files into its cache by now
                shutil.rmtree(export_dir, ignore_errors=True)
