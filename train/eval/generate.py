"""Batched answer generation for evaluation: length-sorted, left-padded batches, HF ``generate`` or vLLM.

Why batches are built this way:

* **Sorted by length.** Every prompt in a batch is padded to the longest one, and padding is paid for at
  every decoding step. Sorting by the prompt's token count, image tokens included (computed from the
  picture's header size, without decoding pixels), keeps similar lengths together, longest first so
  that an out-of-memory error shows up in the first batch rather than at the end of a long run.
* **Left padding** (``train.model_io.load_processor`` sets it) so every prompt ends where generation
  starts; Qwen2-VL derives its (m)rope positions from the attention mask, so a padded prompt gets the
  same positions as an unpadded one. ``tests/test_evaluate_pipeline.py`` checks that greedy batched
  answers equal one-at-a-time answers token for token.
* **Only new tokens are decoded**, then read by ``train.protocol.parse_response``, the same parser the
  rewards and the app use. Pictures are made by ``Sample.picture`` (``train.imaging.model_picture``),
  the app's own function, so DICOM records are answered with the frame and window they name.

Greedy decoding (``temperature=0``) is the default and is deterministic. With sampling each batch is
seeded from ``seed`` and its question ids, so a re-run reproduces the answers, but batches formed
differently (a resumed run) sample differently.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image

from train.data import Sample
from train.eval.results import QuestionResult
from train.eval.throughput import split_on_out_of_memory
from train.generation import default_max_new_tokens, generate, sampling_kwargs, use_fast_path
from train.imaging import ImagingError, PixelBounds, model_input_size
from train.imaging.files import picture_size
from train.model_io import pixel_bounds
from train.protocol import PROMPT_STYLES, build_messages, build_prompt, get_prompt, parse_response

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "vllm")


@dataclass
class EvalSettings:
    """How questions are asked and answers decoded; everything here changes the answers."""

    prompt_style: str = "think"
    prompt: str = "medr1"
    """The prompt text's name (``train.protocol.PROMPTS``): the words the question is asked in."""
    max_new_tokens: int | None = None
    """None: 512 with the think prompt, 32 without."""
    temperature: float = 0.0
    """0 is greedy decoding (the default, deterministic)."""
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 8
    fast_generation: str = "off"
    """``train.generation.FAST_MODES``: a static KV cache whose decode step transformers compiles (CUDA)."""
    max_pixels: int | None = None
    """Image area bounds (None: the processor's own, capped at Med-R1's bound, as in the app)."""
    min_pixels: int | None = None
    image_size: int | None = None
    """Resize to a square of this side, as Med-R1 did (384); None keeps the aspect ratio."""
    sort_by_length: bool = True
    option_probabilities: bool = False
    """Read each answer's option preference (``train.eval.evidence``; one forward pass per question)."""
    image_reliance: bool = False
    """Also ask each question on grey pictures of the same size (implies option probabilities)."""

    def __post_init__(self) -> None:
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"Unknown prompt style {self.prompt_style!r}: use one of {', '.join(PROMPT_STYLES)}.")
        self.prompt = get_prompt(self.prompt).name
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        use_fast_path(self.fast_generation, "cpu")  # an unknown mode fails here
        if self.temperature < 0:
            raise ValueError("temperature cannot be negative (0 means greedy decoding).")
        if self.max_new_tokens is None:
            self.max_new_tokens = default_max_new_tokens(self.prompt_style)
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def bounds(self, processor: Any) -> PixelBounds:
        """The pictures' size rule: these settings' bounds where given, else the processor's."""
        own = pixel_bounds(processor) or PixelBounds()
        return PixelBounds(
            self.min_pixels or own.min_pixels, self.max_pixels or own.max_pixels, self.image_size, own.patch
        )


def chat_text(processor: Any, sample: Sample, prompt_style: str, prompt: str | None = None) -> str:
    """The full model input text for one question: chat template, image placeholder, the named prompt."""
    text = build_prompt(sample.question, sample.options, prompt_style, prompt)
    return processor.apply_chat_template(build_messages(text), add_generation_prompt=True, tokenize=False)


def image_tokens(sample: Sample, bounds: PixelBounds) -> int:
    """Visual tokens the question's picture will cost, from its header size only; 0 if unreadable."""
    size = picture_size(sample.image)
    if size is None and not bounds.image_size:
        return 0
    width, height = model_input_size(*(size or (1, 1)), bounds=bounds)
    return (width // bounds.patch) * (height // bounds.patch)


def plan_batches(samples: Sequence[Sample], processor: Any, settings: EvalSettings) -> list[list[Sample]]:
    """Group questions into batches of similar length (longest first); ties keep dataset order."""
    if not settings.sort_by_length:
        ordered = list(samples)
    else:
        tokenizer = getattr(processor, "tokenizer", processor)
        bounds = settings.bounds(processor)
        lengths = {}
        for index, sample in enumerate(samples):
            text = chat_text(processor, sample, settings.prompt_style, settings.prompt)
            text_tokens = len(tokenizer(text)["input_ids"])
            lengths[index] = text_tokens + image_tokens(sample, bounds)
        ordered = [samples[i] for i in sorted(lengths, key=lambda i: (-lengths[i], i))]
    size = settings.batch_size
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class Generator(Protocol):
    """Turns a batch of (chat text, image) into generated texts, one per prompt, in order."""

    def generate(self, texts: Sequence[str], images: Sequence[Image.Image]) -> list[str]: ...


def _batch_seed(seed: int, samples: Sequence[Sample]) -> int:
    return (seed * 1_000_003 + zlib.crc32("\n".join(s.id for s in samples).encode())) % 2**63


class HFGenerator:
    """``model.generate`` on padded batches; the model stays where it is (use ``load_for_inference``)."""

    def __init__(self, model: Any, processor: Any, settings: EvalSettings):
        self.model = model
        self.processor = processor
        self.settings = settings
        tokenizer = processor.tokenizer
        if tokenizer.padding_side != "left":
            raise ValueError(
                "The processor pads on the right; batched generation needs left padding. Load it with "
                "train.model_io.load_processor, or set processor.tokenizer.padding_side = 'left'."
            )
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def generate(self, texts: Sequence[str], images: Sequence[Image.Image], **overrides: Any) -> list[str]:
        """``overrides`` go to ``generate`` as well (``min_new_tokens`` for a worst-case batch-size probe)."""
        settings = self.settings
        inputs = self.processor(text=list(texts), images=list(images), padding=True, return_tensors="pt")
        inputs = inputs.to(self.model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "pad_token_id": self.pad_token_id}
        kwargs.update(sampling_kwargs(settings.temperature, settings.top_p))
        kwargs.update(overrides)
        with torch.inference_mode():
            output = generate(self.model, inputs, fast=settings.fast_generation, **kwargs)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()


def choose_backend(choice: str, device: str | None = None) -> str:
    """'auto' picks vLLM when it is installed, a GPU is present and the device is not the CPU."""
    if choice not in BACKENDS:
        raise ValueError(f"Unknown backend {choice!r}: use one of {', '.join(BACKENDS)}.")
    on_cpu = device is not None and str(device).startswith("cpu")
    if choice == "vllm":
        if not vllm_available() or on_cpu:
            raise RuntimeError(
                "--backend vllm needs the vllm package and a GPU (`pip install medr1[vllm]`); use --backend hf."
            )
        return "vllm"
    if choice == "auto" and vllm_available() and not on_cpu:
        return "vllm"
    return "hf"


class VLLMGenerator:
    """vLLM's offline engine (continuous batching, paged attention) for GPU evaluation.

    A LoRA adapter is merged into the base weights first (written to a temporary folder), because
    medr1's adapters target modules by regex, which vLLM's LoRA loader does not accept.
    """

    def __init__(
        self,
        model: str,
        processor: Any,
        settings: EvalSettings,
        adapter: str | None = None,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
    ):
        from vllm import LLM, SamplingParams

        self.settings = settings
        self._tmp: tempfile.TemporaryDirectory | None = None
        path = model
        if adapter:
            self._tmp = tempfile.TemporaryDirectory(prefix="medr1-merged-")
            path = merge_adapter(model, adapter, self._tmp.name)
        bounds = settings.bounds(processor)
        mm_kwargs = {"min_pixels": bounds.min_pixels, "max_pixels": bounds.max_pixels}
        self.llm = LLM(
            model=path,
            dtype=dtype,
            seed=settings.seed,
            limit_mm_per_prompt={"image": 1},
            mm_processor_kwargs=mm_kwargs,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        self.params = SamplingParams(
            temperature=settings.temperature,
            top_p=settings.top_p if not settings.greedy else 1.0,
            max_tokens=settings.max_new_tokens,
            seed=settings.seed,
        )

    def generate(self, texts: Sequence[str], images: Sequence[Image.Image]) -> list[str]:
        prompts = [{"prompt": t, "multi_modal_data": {"image": i}} for t, i in zip(texts, images, strict=True)]
        outputs = self.llm.generate(prompts, self.params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def merge_adapter(model: str, adapter: str, output_dir: str | Path) -> str:
    """Merge a LoRA adapter into its base model and save both weights and processor to ``output_dir``."""
    from train.model_io import load_for_inference, load_processor

    merged = load_for_inference(model, adapter=adapter, device="cpu")
    merged.save_pretrained(output_dir)
    load_processor(model).save_pretrained(output_dir)
    return str(output_dir)


def score(
    sample: Sample,
    text: str,
    prompt_style: str,
    latency_s: float,
    batch_size: int,
    error: str | None = None,
    prompt: str | None = None,
) -> QuestionResult:
    """Read one response with the shared parser (in the layout ``prompt`` asked for) and score it."""
    prompt = get_prompt(prompt).name
    parsed = parse_response(text, sample.options, prompt_style, prompt)
    return QuestionResult(
        id=sample.id,
        modality=sample.modality,
        question_type=sample.question_type,
        gold=sample.answer,
        answer=parsed.letter,
        correct=error is None and parsed.letter is not None and parsed.letter == sample.answer,
        well_formed=error is None and parsed.well_formed,
        n_options=len(sample.options),
        rationale=parsed.rationale,
        response=text,
        latency_s=latency_s,
        batch_size=batch_size,
        prompt_style=prompt_style,
        prompt=prompt,
        image=sample.image,
        frame=sample.frame,
        window=sample.window,
        series=sample.series,
        issues=parsed.issues,
        error=error,
    )


def _add_evidence(generator, processor, samples, images, results, settings: EvalSettings) -> list[QuestionResult]:
    from train.eval.evidence import with_evidence

    model = getattr(generator, "model", None)
    if model is None:
        raise ValueError(
            "--option_probabilities and --image_reliance read the model's own logits and attention: run them "
            "with --backend hf (the vLLM backend returns text only)."
        )
    return [
        with_evidence(result, model, processor, sample, picture, settings)
        for result, sample, picture in zip(results, samples, images, strict=True)
    ]


def run_batches(
    generator: Generator,
    processor: Any,
    batches: Sequence[Sequence[Sample]],
    settings: EvalSettings,
    on_batch: Callable[[list[QuestionResult]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[QuestionResult]:
    """Generate and score batch after batch; ``on_batch`` sees each batch's results as soon as they exist.

    A question whose image cannot be read is recorded with ``error`` (and not scored); the rest of its
    batch still runs. ``should_stop`` is checked between batches (the app's Stop button).
    """
    results: list[QuestionResult] = []
    bounds = settings.bounds(processor)
    for batch in batches:
        if should_stop is not None and should_stop():
            break
        ready, images, failed = [], [], []
        for sample in batch:
            try:
                images.append(sample.picture(bounds))
                ready.append(sample)
            except ImagingError as exc:
                failed.append(
                    score(sample, "", settings.prompt_style, 0.0, len(batch), error=str(exc), prompt=settings.prompt)
                )
        batch_results = list(failed)
        if ready:
            texts = [chat_text(processor, s, settings.prompt_style, settings.prompt) for s in ready]
            seed_context = contextlib.nullcontext()
            if not settings.greedy:
                seed_context = torch.random.fork_rng(devices=[])
                torch.manual_seed(_batch_seed(settings.seed, ready))
            start = time.perf_counter()
            with seed_context:
                outputs = split_on_out_of_memory(generator.generate, texts, images)
            per_question = (time.perf_counter() - start) / len(ready)
            scored = [
                score(s, out, settings.prompt_style, per_question, len(ready), prompt=settings.prompt)
                for s, out in zip(ready, outputs, strict=True)
            ]
            if settings.option_probabilities or settings.image_reliance:
                scored = _add_evidence(generator, processor, ready, images, scored, settings)
            batch_results += scored
        results += batch_results
        if on_batch is not None:
            on_batch(batch_results)
    return results
