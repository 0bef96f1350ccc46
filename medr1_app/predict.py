"""One question about one image in one call: the app's ``/predict`` endpoint and the same as a Python function.

Programs should not have to drive the screen (``/open`` then ``/ask`` with 24 positional values): they send
the image, the question, its options and a dict of settings, and get back the answer record, the same JSON
document the Ask tab's export holds. Nothing is kept between calls.

    from gradio_client import Client, handle_file
    record = Client("http://127.0.0.1:7860/").predict(
        image=handle_file("IM0001"), question="What imaging technique was used?",
        options=["CT", "MRI", "X-ray", "Ultrasound"], settings={"max_new_tokens": 256}, api_name="/predict")

    from medr1_app.predict import predict            # in Python, without a server
    record = predict("IM0001", "What imaging technique was used?", ["CT", "MRI"], model="tiny")
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import FileData

from train.evidence import EvidenceError
from train.imaging import model_picture, open_study, parse_window
from train.protocol import build_prompt

from .answering import answer
from .context import AppContext
from .conversation import Conversation, Turn
from .evidence_panel import run_evidence
from .export import AskRecord, record_dict
from .generation import GenerationSettings, StreamFn, stream_samples
from .gpu import gpu_task
from .models import ModelManager, ModelRegistry, ModelSpec, builtin_models, spec_from_argument
from .viewer import view_record

# Settings a caller may give besides the generation settings: which model, and how the picture is shown.
PICTURE_KEYS = ("frame", "slice", "window", "series", "view")
SETTING_KEYS = tuple(f.name for f in fields(GenerationSettings)) + PICTURE_KEYS + ("model", "evidence", "relevancy")


def _settings(settings: dict[str, Any] | None, spec: ModelSpec) -> GenerationSettings:
    """The generation settings asked for; prompt and style default to those the checkpoint was trained with."""
    given = {k: v for k, v in (settings or {}).items() if k in {f.name for f in fields(GenerationSettings)}}
    given.setdefault("prompt", spec.prompt)
    given.setdefault("prompt_style", spec.prompt_style)
    return GenerationSettings(**given).validated()


def predict(
    image: str | Path | bytes,
    question: str,
    options: list[str] | tuple[str, ...] | None = None,
    settings: dict[str, Any] | None = None,
    *,
    model: str | None = None,
    manager: ModelManager | None = None,
    stream_fn: StreamFn = stream_samples,
    name: str | None = None,
) -> dict[str, Any]:
    """Answer ``question`` about ``image`` (a DICOM file, a ZIP of a series, a NIfTI volume or a picture).

    ``options``: 2 to 6 option texts, or none for a free-text question. ``settings``: any of
    temperature, top_p, max_new_tokens, prompt_style, prompt (a name in ``train.protocol.PROMPTS``; default:
    the one the checkpoint was trained with), seed, samples (self-consistency), frame (or slice), window
    (a preset name or "CENTRE,WIDTH"), series (which series of a ZIP, or volume of a 4-D NIfTI), view
    (axial, coronal or sagittal, for a NIfTI volume), model (a registry key, a folder, or
    owner/repo[:folder]) and evidence (default true: ``record["evidence"]`` holds the attention map, the
    option preference and the image-reliance check, see ``train.evidence``; false skips them) and relevancy
    (default false: also the gradient × attention map).
    Raises ``ValueError`` (including the imaging errors) for bad input and ``ModelLoadError`` when the
    model cannot be loaded, with messages fit to show.
    """
    given = dict(settings or {})
    unknown = sorted(set(given) - set(SETTING_KEYS))
    if unknown:
        raise ValueError(f"Unknown setting(s) {', '.join(unknown)}: use {', '.join(SETTING_KEYS)}.")
    model = given.get("model") or model or "qwen2-vl-2b"
    if manager is None:
        manager = ModelManager(ModelRegistry(builtin_models()))
    try:
        key = manager.registry.get(model).key
    except Exception:  # not a registry key: a path, "tiny" or a hub id
        key = manager.registry.add(spec_from_argument(model)).key
    generation = _settings(given, manager.registry.get(key))
    loaded = manager.get(key)
    study = open_study(image, name=name, series=given.get("series"), view=given.get("view"))
    frame = int(given.get("slice", given.get("frame")) or 0)
    window = parse_window(given.get("window"))
    picture = model_picture(study, frame, window, loaded.bounds)
    options = [" ".join(str(o).split()) for o in options or []] or None
    prompt = build_prompt(question or "", options, generation.prompt_style, generation.prompt)
    conversation = Conversation(picture, view_record(study, frame, window, picture), dict(study.metadata), key)
    turn = Turn(" ".join((question or "").split()), tuple(options or ()), prompt, generation)
    conversation.turns.append(turn)
    for progress in answer(loaded, picture, prompt, options, generation, stream_fn=stream_fn):
        turn.progress = progress
    record = record_dict(AskRecord(loaded.spec, conversation))
    if options and given.get("evidence", True) and turn.progress is not None:
        try:
            for evidence in run_evidence(
                loaded, conversation, turn, lambda: False, relevancy=bool(given.get("relevancy"))
            ):
                turn.evidence = evidence
            record = record_dict(AskRecord(loaded.spec, conversation))
        except EvidenceError as exc:  # no letter to explain: the answer stands, the record says why
            record["evidence"] = {"error": str(exc)}
    return record


def add_predict_endpoint(ctx: AppContext) -> None:
    """Register ``/predict`` on the app being built (inside its ``gr.Blocks``), on the GPU slot."""

    @gpu_task(duration=120)
    def run(image: FileData, question: str, options: list[str] | None = None, settings: dict | None = None) -> dict:
        """Answer a question about an image (DICOM, PNG or JPEG) in one call; returns the answer record.

        settings: temperature, top_p, max_new_tokens, prompt_style ("think" or "no_think"), prompt (medr1,
        medr1-train, medr1-eval, think-after), seed, samples, frame (or slice), window (a preset name or
        "CENTRE,WIDTH"), series and view (for a ZIP of series or a NIfTI volume), model (a key of the
        app's model menu) and evidence (default true: the record's "evidence" holds the attention map, the
        option preference and the image-reliance check).
        """
        path = image.get("path") if isinstance(image, dict) else getattr(image, "path", None)
        if not path:
            return {"error": "Send the image as a file (gradio_client: handle_file(path))."}
        try:
            data = ctx.uploads.read(path)
            settings = {"model": ctx.default_model, **(settings or {})}
            return predict(
                data, question, options, settings, manager=ctx.manager, stream_fn=ctx.stream_fn,
                name=Path(path).name,
            )  # fmt: skip
        except (ValueError, OSError) as exc:  # the imaging, option and settings errors, in our words
            return {"error": str(exc)}
        except Exception as exc:  # a model that cannot load or fails: say so, keep serving
            return {"error": getattr(exc, "summary", None) or f"The model failed ({type(exc).__name__})."}

    gr.api(run, api_name="predict", concurrency_id=ctx.gpu_concurrency_id, concurrency_limit=1)
