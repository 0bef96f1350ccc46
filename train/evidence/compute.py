"""Evidence for one answer: where the model looked, how it ranked the options, whether it needed the picture.

All three are read from the response exactly as it was generated (its token ids), after it has been
generated, so they never slow the answer down:

1. **One forward pass** over prompt + response (``attention.recording_rows``): the attention of the
   position that writes the answer letter (or of the whole answer block) to the image tokens, averaged
   over heads and a range of layers, is the *attention map*; the logits at that position, restricted
   to the options' letters, are the *option preference* (softmax over the letters: how the model ranks
   the options, not a probability of being right).
2. **Image reliance**: the same question with each picture replaced by uniform grey of the same size,
   answered greedily (stopping at ``</answer>``); the chosen letter's preference without the picture is
   read where that grey answer chooses its letter. An answer whose preference survives the grey picture
   was not read from the image.
3. Optionally, the **relevancy map** (gradient × attention): the same pass with gradients, each answer-row
   attention weight times the derivative of the chosen letter's logit with respect to it.

:func:`iter_evidence` yields the evidence after each stage (map and preference first, then reliance,
then relevancy when asked for), and checks ``should_stop`` between stages and at every generated token,
so the app can show the map at once and the Stop button ends the rest.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria

from train.generation import sampling_kwargs
from train.protocol import parse_response

from .attention import layer_count, layer_range, recording_rows
from .maps import EvidenceMap, image_token_spans, map_from_rows, token_grid
from .positions import EvidenceError, find_answer, letter_tokens

GREY = (128, 128, 128)
RELIANCE_MARGIN = 0.1
"""The chosen letter's preference must fall by at least this much on the grey picture for the answer to
count as read from the image. The answer's letter alone misleads both ways: a model close to a tie flips
its letter on any change of input, and a model that reads the picture may give the same letter to grey
(``benchmarks/evidence_proof.py`` measured both)."""
QUERIES = ("letter", "answer")
"""``letter``: the position that writes the answer letter; ``answer``: every position of the answer block."""
RELIANCE_MAX_NEW_TOKENS = 1024


@dataclass(frozen=True)
class ImageReliance:
    """The same question on a grey picture of the same size."""

    answer_with: str
    answer_without: str | None
    """Letter answered on the grey picture; None when that answer names no option."""
    probability_with: float
    """The chosen letter's preference among the options, with the picture."""
    probability_without: float
    """The same letter's preference when the same response is read on the grey picture."""
    response_without: str = ""
    read_on: str = "original response"
    """Where ``probability_without`` was read: at the grey answer's own letter ("own answer"), or on the
    original response when the grey answer names no option."""

    @property
    def changed(self) -> bool:
        return self.answer_without != self.answer_with

    @property
    def probability_drop(self) -> float:
        return self.probability_with - self.probability_without

    @property
    def relies(self) -> bool:
        """The chosen letter's preference falls by at least :data:`RELIANCE_MARGIN` without the picture."""
        return self.probability_drop >= RELIANCE_MARGIN

    def sentence(self) -> str:
        """What it means, in one line for the Ask screen."""
        odds = (
            f"{self.answer_with}'s preference is {self.probability_with:.2f} with the picture and "
            f"{self.probability_without:.2f} without."
        )
        if self.answer_without is None:
            head = f"Without the picture the model names no option (with it: {self.answer_with})."
        elif self.changed:
            head = f"Without the picture the answer changes: {self.answer_with} → {self.answer_without}."
        else:
            head = f"The same answer without the picture ({self.answer_with})."
        if self.relies:
            return f"{head} {odds} The answer depends on the picture."
        if self.changed:
            return f"{head} {odds} The preference hardly moves, so the change says little (a near-tie flips easily)."
        return f"{head} {odds} The model may not be reading the picture."

    def to_json(self) -> dict[str, Any]:
        return {
            "answer_with_picture": self.answer_with,
            "answer_without_picture": self.answer_without,
            "changed": self.changed,
            "relies_on_picture": self.relies,
            "probability_with_picture": round(self.probability_with, 6),
            "probability_without_picture": round(self.probability_without, 6),
            "response_without_picture": self.response_without,
            "probability_without_read_on": self.read_on,
        }


@dataclass(frozen=True)
class Evidence:
    """What :func:`iter_evidence` found so far; fields are None until their stage has run."""

    letter: str
    maps: tuple[EvidenceMap, ...] = ()
    """One map per picture, in the order the pictures were given."""
    option_probabilities: dict[str, float] | None = None
    options_mass: float | None = None
    """Share of the model's whole next-token probability that went to the options' letters."""
    reliance: ImageReliance | None = None
    query: str = "letter"
    relevancy_maps: tuple[EvidenceMap, ...] = ()
    """Gradient × attention maps, one per picture, when asked for (``relevancy=True``)."""
    seconds: dict[str, float] = field(default_factory=dict)
    complete: bool = False

    def to_record(self) -> dict[str, Any]:
        """``record["evidence"]`` of the answer export and of ``/predict``."""
        maps = [m.to_json() for m in self.maps]
        relevancy = [m.to_json() for m in self.relevancy_maps]
        return {
            "letter": self.letter,
            "query": self.query,
            "attention_map": maps[0] if len(maps) == 1 else (maps or None),
            "relevancy_map": relevancy[0] if len(relevancy) == 1 else (relevancy or None),
            "option_probabilities": None
            if self.option_probabilities is None
            else {k: round(v, 6) for k, v in self.option_probabilities.items()},
            "options_mass": None if self.options_mass is None else round(self.options_mass, 6),
            "image_reliance": None if self.reliance is None else self.reliance.to_json(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "complete": self.complete,
            "note": (
                "The attention map shows where the answer position attended, not why the model answered; "
                "option probabilities are the model's preference among the options, not a chance of being right."
            ),
        }


class _ShouldStop(StoppingCriteria):
    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), bool(self.should_stop()), dtype=torch.bool, device=input_ids.device)


def _prompt_inputs(processor: Any, pictures: Sequence[Image.Image], messages: list[dict], device: Any) -> Any:
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(text=[text], images=list(pictures), return_tensors="pt").to(device)


def _with_response(inputs: Any, response_ids: Sequence[int]) -> dict[str, Any]:
    """The prompt's inputs with the response appended as ordinary tokens (one unpadded sequence)."""
    ids = torch.as_tensor([list(response_ids)], dtype=inputs["input_ids"].dtype, device=inputs["input_ids"].device)
    full = dict(inputs)
    full["input_ids"] = torch.cat([inputs["input_ids"], ids], dim=1)
    full["attention_mask"] = torch.ones_like(full["input_ids"])
    if "mm_token_type_ids" in inputs:
        full["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(ids)], dim=1)
    return full


def _letter_probabilities(logits: torch.Tensor, tokens: dict[str, int]) -> tuple[dict[str, float], float]:
    probs = torch.softmax(logits.float(), dim=-1)
    picked = torch.stack([probs[t] for t in tokens.values()])
    mass = float(picked.sum())
    share = picked / picked.sum() if mass > 0 else torch.full_like(picked, 1 / len(tokens))
    return {letter: float(p) for letter, p in zip(tokens, share, strict=True)}, mass


def grey_like(pictures: Sequence[Image.Image]) -> list[Image.Image]:
    """Uniform grey pictures of the same sizes: the same number of image tokens, no image content."""
    return [Image.new("RGB", p.size, GREY) for p in pictures]


def iter_evidence(
    model: Any,
    processor: Any,
    pictures: Sequence[Image.Image],
    messages: list[dict],
    options: Sequence[str],
    response_ids: Sequence[int],
    *,
    layers: str | Sequence[int] | None = "late",
    query: str = "letter",
    reliance: bool = True,
    relevancy: bool = False,
    max_new_tokens: int = RELIANCE_MAX_NEW_TOKENS,
    seed: int = 0,
    prompt_style: str = "think",
    prompt: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[Evidence]:
    """Yield :class:`Evidence` after each stage; the last one has ``complete=True`` unless stopped.

    ``pictures`` are the pictures exactly as the model received them (``train.imaging.model_picture``)
    and ``messages`` the chat the response answered (``train.protocol.build_messages`` or
    ``build_conversation``). Raises :class:`~train.evidence.positions.EvidenceError` when the response
    has no option letter to explain. ``relevancy`` adds a last stage: the gradient × attention map (one
    forward and one backward pass).
    """
    if query not in QUERIES:
        raise ValueError(f"query must be one of {QUERIES}, not {query!r}.")
    should_stop = should_stop or (lambda: False)
    tokenizer = processor.tokenizer
    position = find_answer(tokenizer, response_ids, options)
    tokens = letter_tokens(tokenizer, response_ids, position, options)
    chosen_layers = layer_range(layers, layer_count(model))
    device = next(model.parameters()).device
    seconds: dict[str, float] = {}

    tick = time.perf_counter()
    inputs = _prompt_inputs(processor, pictures, messages, device)
    prompt_length = int(inputs["input_ids"].shape[1])
    predicting = prompt_length + position.letter_index - 1
    if query == "letter":
        rows = [predicting]
    else:
        rows = list(range(prompt_length + position.block[0] - 1, prompt_length + position.block[1] - 1))
    full = _with_response(inputs, response_ids)
    with torch.inference_mode(), recording_rows(model, rows) as recorder:
        logits = model(**full, logits_to_keep=torch.tensor([predicting], device=device)).logits[0, -1]
    spans = image_token_spans(full["input_ids"][0], int(model.config.image_token_id))
    grids = inputs["image_grid_thw"].tolist()
    merge = int(getattr(model.config.vision_config, "spatial_merge_size", 2))
    patch = int(getattr(model.config.vision_config, "patch_size", 14))
    if len(spans) != len(grids):
        raise EvidenceError(f"Found {len(spans)} runs of image tokens for {len(grids)} pictures.")
    maps = tuple(
        map_from_rows(recorder.layers, chosen_layers, span, token_grid(grid, merge), patch * merge)
        for span, grid in zip(spans, grids, strict=True)
    )
    probabilities, mass = _letter_probabilities(logits, tokens)
    seconds["map_and_preference"] = time.perf_counter() - tick
    evidence = Evidence(position.letter, maps, probabilities, mass, query=query, seconds=dict(seconds))
    yield evidence
    if reliance:
        if should_stop():
            return
        tick = time.perf_counter()
        grey = _prompt_inputs(processor, grey_like(pictures), messages, device)
        criteria = StoppingCriteriaList([StopStringCriteria(tokenizer, ["</answer>"]), _ShouldStop(should_stop)])
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = model.generate(
                **grey, max_new_tokens=max_new_tokens, stopping_criteria=criteria, **sampling_kwargs(0.0)
            )
        if should_stop():
            return
        grey_ids = output[0, grey["input_ids"].shape[1] :].tolist()
        text = tokenizer.decode(grey_ids, skip_special_tokens=True)
        answer_without = parse_response(text, options, prompt_style, prompt).letter
        # The chosen letter's preference without the picture is read where the grey answer chooses its own
        # letter, after its own reasoning: read after the original reasoning instead, which already names the
        # answer, a think prompt's letter would keep its preference whatever the picture. A grey answer that
        # names no option is read on the original response.
        read_ids, read_at, read_on = list(response_ids), position, "original response"
        if answer_without is not None:
            with contextlib.suppress(EvidenceError):
                read_at, read_ids, read_on = find_answer(tokenizer, grey_ids, options), grey_ids, "own answer"
        at = int(grey["input_ids"].shape[1]) + read_at.letter_index - 1
        with torch.inference_mode():
            grey_logits = model(
                **_with_response(grey, read_ids), logits_to_keep=torch.tensor([at], device=device)
            ).logits[0, -1]
        without, _ = _letter_probabilities(grey_logits, letter_tokens(tokenizer, read_ids, read_at, options))
        seconds["image_reliance"] = time.perf_counter() - tick
        result = ImageReliance(
            position.letter, answer_without, probabilities[position.letter], without[position.letter], text, read_on
        )
        evidence = replace(evidence, reliance=result, seconds=dict(seconds))
        if relevancy:
            yield evidence
    if relevancy:
        if should_stop():
            return
        tick = time.perf_counter()
        layer_scores = _relevancy(model, full, rows, predicting, tokens[position.letter])
        relevancy_maps = tuple(
            map_from_rows(layer_scores, chosen_layers, span, token_grid(grid, merge), patch * merge, "relevancy")
            for span, grid in zip(spans, grids, strict=True)
        )
        seconds["relevancy"] = time.perf_counter() - tick
        evidence = replace(evidence, relevancy_maps=relevancy_maps, seconds=dict(seconds))
    yield replace(evidence, complete=True)


def _relevancy(model: Any, full: dict[str, Any], rows: list[int], predicting: int, token: int) -> dict[int, Any]:
    """Gradient × attention per layer (LVLM-Interpret's relevancy, without its rollout across layers): the
    answer rows' attention weights times the gradient of the chosen letter's logit with respect to them,
    negative parts dropped."""
    frozen = [p for p in model.parameters() if p.requires_grad]
    for parameter in frozen:  # no parameter gradients: the graph starts at the input embeddings instead
        parameter.requires_grad_(False)
    hook = model.get_input_embeddings().register_forward_hook(lambda module, args, out: out.requires_grad_(True))
    device = full["input_ids"].device
    try:
        with torch.enable_grad(), recording_rows(model, rows, gradients=True) as recorder:
            logits = model(**full, logits_to_keep=torch.tensor([predicting], device=device)).logits[0, -1]
            logits[token].float().backward()
    finally:
        hook.remove()
        for parameter in frozen:
            parameter.requires_grad_(True)
    return {
        index: (leaf.detach() * leaf.grad).clamp(min=0).cpu()
        if leaf.grad is not None
        else torch.zeros_like(leaf.detach().cpu())
        for index, leaf in recorder.leaves.items()
    }


def compute_evidence(*args: Any, **kwargs: Any) -> Evidence:
    """:func:`iter_evidence` to the end (for scripts and evaluation)."""
    stages = list(iter_evidence(*args, **kwargs))
    last = stages[-1] if stages else None
    if last is None:
        raise EvidenceError("Evidence was stopped before anything was computed.")
    return last


__all__ = ["Evidence", "ImageReliance", "compute_evidence", "grey_like", "iter_evidence"]
