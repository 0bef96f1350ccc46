"""Decoding options shared by evaluation and the app: one rule for greedy and sampled answers.

Kept in one place because the same question must be decoded the same way in ``medr1-eval`` and in the
Ask tab: a reported accuracy is only the accuracy a clinician meets if both ask ``generate`` for the
same thing. :func:`generate` is that one call, with the fast path (static KV cache) and the shared prompt
of self-consistency samples, so the app and evaluation get the same speed-ups and the same fallbacks.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch

logger = logging.getLogger(__name__)


def default_max_new_tokens(prompt_style: str) -> int:
    """Room for a rationale with the think prompt; the no-think answer block needs a handful of tokens."""
    return 512 if prompt_style == "think" else 32


def sampling_kwargs(temperature: float, top_p: float = 1.0) -> dict[str, Any]:
    """``model.generate`` keyword arguments for greedy decoding (``temperature == 0``) or sampling.

    Greedy clears the checkpoint's own sampling defaults so transformers does not warn about them.
    Sampling sets ``top_k=0`` (off): Qwen2-VL-Instruct's generation config has ``top_k=1``, which would
    turn every "sample" into the greedy answer.
    """
    if temperature < 0:
        raise ValueError("temperature cannot be negative (0 means greedy decoding).")
    if temperature == 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}


# --- the generate call itself: fast path, shared prompt, fallback -------------------------------------------

FAST_MODES = ("auto", "on", "off")
"""``auto``: the fast path on CUDA only (where transformers compiles the decode step); ``on``: also elsewhere
(static cache without compilation: what the CPU tests exercise); ``off``: transformers' default dynamic cache."""

STATIC_CACHE_STEP = 256
"""A static cache is sized to the call's length rounded up to this, so calls of similar length share one cache
(and one compiled graph): transformers keeps the largest size seen and recompiles only when a call needs more."""

SHARED_PROMPT_MODELS = ("qwen2_vl",)
"""Model types whose prompt cache is computed once for all samples of a question: those tested here (its
M-RoPE offsets are stored at the prefill and reused when generation continues from a cache). Others take
the ordinary path."""

_fast_failed: dict[str, str] = {}


def use_fast_path(mode: str, device: Any) -> bool:
    """Whether ``mode`` turns the static-cache path on for a model on ``device``."""
    if mode not in FAST_MODES:
        raise ValueError(f"fast generation must be one of {', '.join(FAST_MODES)}, not {mode!r}.")
    if mode == "off":
        return False
    return mode == "on" or torch.device(device).type == "cuda"


def fast_path_failure(model: Any) -> str | None:
    """Why the fast path was given up for this kind of model in this process (None: it was not)."""
    return _fast_failed.get(_model_key(model))


def _model_key(model: Any) -> str:
    return f"{type(model).__name__}@{getattr(model, 'device', 'cpu')}"


SMALL_MODEL_HIDDEN_SIZE = 512
"""Language models narrower than this decode on one CPU thread in a thread of their own (see
:func:`decode_threads`)."""


def decode_threads(model: Any, device: Any) -> int | None:
    """Torch threads for decoding ``model`` in a thread that does nothing else; None: leave torch's count.

    Why: a decode step of a small model (the tiny and demo models are 64 wide) is hundreds of small
    operations, and those just over PyTorch's grain size are split across threads, whose hand-offs then
    cost more than the arithmetic, most of all on a shared machine where the second core is busy (the
    app's own streaming consumer runs beside generation). Measured on this project's 2-core machine, 5
    self-consistency samples of 48 tokens with the tiny model: 0.199 s on 2 threads, 0.120 s on one. A
    model as wide as Qwen2-VL-2B (1536) multiplies matrices large enough to share: 5 samples of 16 tokens
    took 4.4-4.7 s on 2 threads against 4.8-5.3 s on one, so it keeps torch's count. An
    ``OMP_NUM_THREADS`` set by the user always wins.

    ``torch.set_num_threads`` applies to the calling thread only, so a caller sets it in the thread that
    generates and no other work in the process changes.
    """
    if torch.device(device).type != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    text_config = model.config.get_text_config()
    hidden = getattr(text_config, "hidden_size", None)
    return 1 if hidden is not None and hidden < SMALL_MODEL_HIDDEN_SIZE else None


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA out-of-memory error, however the layer that noticed it words it (cuBLAS: ``ALLOC_FAILED``)."""
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower() or "CUBLAS_STATUS_ALLOC" in text


def generate(
    model: Any,
    inputs: Mapping[str, Any],
    *,
    samples: int = 1,
    fast: str = "off",
    streamer: Any = None,
    **kwargs: Any,
) -> torch.Tensor:
    """``model.generate(**inputs, **kwargs)`` with ``samples`` sequences per prompt, as fast as this stack allows.

    * **Fast path** (``fast``, see :data:`FAST_MODES`): a static KV cache, which lets transformers compile
      the decode step on CUDA (``torch.compile``, CUDA graphs through its default compile config). If that
      fails (an unsupported op, no compiler), the reason is logged once and this and every later call take
      the ordinary path. Out-of-memory errors are not hidden: they are raised as they are.
    * **Shared prompt** (several samples, one question, ordinary path): the prompt and its picture are run
      through the model once and the cache repeated for each sample, instead of once per sample; the
      samples are the ones plain ``num_return_sequences`` sampling draws from the same seed.

    Returns what ``model.generate`` returns: prompt and new tokens, ``samples`` rows per prompt. A
    ``streamer`` with a ``restart()`` method is told when a failed fast attempt is started again.
    """
    if samples > 1:
        kwargs["num_return_sequences"] = samples
    if use_fast_path(fast, model.device) and _model_key(model) not in _fast_failed:
        length = inputs["input_ids"].shape[1] + int(kwargs.get("max_new_tokens") or 0)
        static = {
            "cache_implementation": "static",
            "max_cache_len": -(-length // STATIC_CACHE_STEP) * STATIC_CACHE_STEP,
        }
        try:
            return model.generate(**inputs, streamer=streamer, **static, **kwargs)
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            _fast_failed[_model_key(model)] = reason
            logger.warning("Fast generation (static cache) failed, using the ordinary path from now on: %s", reason)
            if streamer is not None and hasattr(streamer, "restart"):
                streamer.restart()
    if samples > 1 and _can_share_prompt(model, inputs):
        return _generate_shared_prompt(model, inputs, samples, streamer, kwargs)
    return model.generate(**inputs, streamer=streamer, **kwargs)


def _can_share_prompt(model: Any, inputs: Mapping[str, Any]) -> bool:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    ids = inputs.get("input_ids")
    return model_type in SHARED_PROMPT_MODELS and ids is not None and ids.shape[0] == 1 and ids.shape[1] > 1


TEXT_INPUTS = ("input_ids", "attention_mask", "mm_token_type_ids")
IMAGE_INPUTS = ("pixel_values", "image_grid_thw")


def _generate_shared_prompt(
    model: Any, inputs: Mapping[str, Any], samples: int, streamer: Any, kwargs: dict[str, Any]
) -> torch.Tensor:
    """One prompt, ``samples`` sequences: the prompt is prefilled once (see :func:`prefill_once`)."""
    text = {name: inputs[name] for name in TEXT_INPUTS if name in inputs}
    # generate repeats the prompt itself (num_return_sequences), and with it the M-RoPE offsets.
    cache = prefill_once(model, inputs, repeats=samples, repeat_offsets=False)
    return model.generate(**text, cache=cache, streamer=streamer, **kwargs)


def prefill_once(model: Any, unique: Mapping[str, Any], repeats: int, repeat_offsets: bool = True) -> Any:
    """The KV cache of all but the last token of each prompt in ``unique``, each repeated ``repeats`` times.

    ``generate`` given this cache and the full prompts (each ``repeats`` times, in order) runs only the
    last prompt token for every sequence before sampling, so its random draws and its output are those
    of the ordinary call on the repeated prompts, while the prompt and its picture went through the model
    once instead of ``repeats`` times. Qwen2-VL's M-RoPE offsets, stored at the prefill, are repeated alike
    (``repeat_offsets``), unless ``generate`` repeats them itself (``num_return_sequences``).
    """
    from transformers import DynamicCache

    head = {name: (value[:, :-1] if name in TEXT_INPUTS else value) for name, value in unique.items()}
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.inference_mode():
        model(**head, cache=cache, use_cache=True, logits_to_keep=1)
    cache.batch_repeat_interleave(repeats)
    if not repeat_offsets:
        return cache
    for module in model.modules():
        deltas = getattr(module, "rope_deltas", None)
        if isinstance(deltas, torch.Tensor) and deltas.shape[0] == unique["input_ids"].shape[0]:
            module.rope_deltas = deltas.repeat_interleave(repeats, dim=0)
    return cache


def repeated_prompts(inputs: Mapping[str, Any]) -> int:
    """``g`` when the batch is groups of ``g`` identical prompts in a row (same tokens and pictures), else 1.

    That is how GRPO asks: TRL places each question's ``num_generations`` copies next to each other. Only
    inputs made of token ids, masks and one Qwen2-VL picture per prompt are recognised.
    """
    ids = inputs.get("input_ids")
    if ids is None or set(inputs) - {*TEXT_INPUTS, *IMAGE_INPUTS}:
        return 1
    rows = ids.shape[0]
    grid = inputs.get("image_grid_thw")
    if grid is not None and grid.shape[0] != rows:
        return 1
    pictures = torch.split(inputs["pixel_values"], grid.prod(-1).tolist()) if grid is not None else None
    size = 1
    while size < rows and _same_row(inputs, pictures, 0, size):
        size += 1
    if size == 1 or rows % size:
        return 1
    for start in range(size, rows, size):
        if not all(_same_row(inputs, pictures, start, start + offset) for offset in range(1, size)):
            return 1
    return size


def _same_row(inputs: Mapping[str, Any], pictures: Any, a: int, b: int) -> bool:
    for name in TEXT_INPUTS:
        if name in inputs and not torch.equal(inputs[name][a], inputs[name][b]):
            return False
    return pictures is None or torch.equal(pictures[a], pictures[b])


def generate_rollouts(generate_fn: Any, model: Any, **kwargs: Any) -> torch.Tensor:
    """GRPO's rollout ``generate`` with each question's prompt prefilled once for all its completions.

    ``generate_fn`` is the model's own ``generate`` and ``kwargs`` what TRL passes it (the padded prompts,
    their pictures, ``generation_config``). It is called unchanged when the batch has no repeated prompts,
    when the model type is not one whose cache can be shared, or when a static cache is asked for (the
    fast path). Either way the output is that of ``generate_fn(**kwargs)``.
    """
    inputs = {name: value for name, value in kwargs.items() if isinstance(value, torch.Tensor)}
    options = {name: value for name, value in kwargs.items() if name not in inputs}
    config = options.get("generation_config")
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    static = getattr(config, "cache_implementation", None) or options.get("cache_implementation")
    usable = not static and "cache" not in options and model_type in SHARED_PROMPT_MODELS
    group = repeated_prompts(inputs) if usable else 1
    if group == 1 or inputs["input_ids"].shape[1] < 2:
        return generate_fn(**kwargs)
    unique = {name: value[::group] for name, value in inputs.items() if name in TEXT_INPUTS}
    if "pixel_values" in inputs:
        grid = inputs["image_grid_thw"]
        pictures = torch.split(inputs["pixel_values"], grid.prod(-1).tolist())
        unique["pixel_values"] = torch.cat(pictures[::group])
        unique["image_grid_thw"] = grid[::group]
    cache = prefill_once(model, unique, repeats=group)
    text = {name: inputs[name] for name in TEXT_INPUTS if name in inputs}
    return generate_fn(**text, cache=cache, **options)


@contextlib.contextmanager
def rollouts_prefilled_once(model: Any) -> Iterator[None]:
    """Within the block, ``model.generate`` (as TRL's GRPO calls it) prefills each question once for its
    ``num_generations`` completions (:func:`generate_rollouts`); the model is left as it was after."""
    original = model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        if args:
            return original(*args, **kwargs)
        return generate_rollouts(original, model, **kwargs)

    model.generate = generate
    try:
        yield
    finally:
        del model.generate
