"""Download what was asked and answered: the picture the model saw, as JSON and as Markdown.

The export is a research record: every question of the conversation with its exact prompt, the model
(and adapter) with the settings and seeds that reproduce it, every sample's raw output next to what the
parser read from it. It holds no patient data: the picture is the windowed, resized PNG the model saw (no
DICOM header travels with it, no metadata chunks are written), the image summary is the imaging module's
allow-listed technical attributes, and the uploaded file's name is left out because file names often
carry patient names.

The document's top level describes the latest question (what the answer card shows); ``conversation``
lists every question asked about the picture, the latest last.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from train import __version__ as medr1_version
from train.imaging import to_png_bytes
from train.protocol import LETTERS

from .answering import AnswerProgress
from .conversation import Conversation, Turn
from .models import ModelSpec
from .render import DISCLAIMER

SCHEMA = "medr1.ask/2"


@dataclass(frozen=True)
class AskRecord:
    """Everything that defines the answered conversation: the model and the turns about one picture."""

    model: ModelSpec
    conversation: Conversation


def _samples(progress: AnswerProgress | None, options: tuple[str, ...]) -> list[dict[str, Any]]:
    samples = []
    for sample in progress.samples if progress else []:
        parsed = sample.parsed
        samples.append(
            {
                "index": sample.index,
                "seed": sample.seed,
                "raw_output": sample.text,
                "rationale": parsed.rationale if parsed else None,
                "answer": parsed.answer if parsed else None,
                # A free-text question has no letters (the parser may still read one from "A smooth ...").
                "letter": parsed.letter if parsed and options else None,
                "option": parsed.option if parsed and options else None,
                "well_formed": parsed.well_formed if parsed else False,
                "complete": parsed.complete if parsed else False,
                "issues": list(parsed.issues) if parsed else [],
                "stopped": sample.stopped,
                "seconds": round(sample.seconds, 3),
            }
        )
    return samples


def turn_dict(turn: Turn) -> dict[str, Any]:
    """One question of the conversation, its settings, samples, vote and evidence (None until computed)."""
    vote = turn.progress.vote if turn.progress else None
    evidence = turn.evidence.to_record() if turn.evidence is not None else None
    return {
        "question": turn.question,
        "options": {LETTERS[i]: o for i, o in enumerate(turn.options)},
        "prompt": turn.prompt,
        "settings": turn.settings.as_dict(),
        "samples": _samples(turn.progress, turn.options),
        "vote": None
        if vote is None
        else {
            "counts": dict(vote.counts),
            "total": vote.total,
            "no_answer": vote.no_answer,
            "winner": vote.winner,
            "agreement": vote.summary(turn.options or None),
        },
        "stopped": bool(turn.progress and turn.progress.stopped),
        "evidence": evidence,
    }


def record_dict(record: AskRecord) -> dict[str, Any]:
    """The JSON document (stable keys; ``schema`` versioned for readers)."""
    spec, conversation = record.model, record.conversation
    turns = [turn_dict(t) for t in conversation.turns]
    latest = turns[-1] if turns else turn_dict(Turn("", (), "", None))  # type: ignore[arg-type]
    return {
        "schema": SCHEMA,
        "disclaimer": DISCLAIMER,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "medr1_version": medr1_version,
        "model": {
            "key": spec.key,
            "label": spec.label,
            "source": spec.source,
            "subfolder": spec.subfolder,
            "adapter": spec.adapter,
            "tiny_random": spec.tiny,
        },
        **latest,
        "image": {"file": "image.png", **conversation.view, "summary": conversation.image_summary},
        "conversation": turns,
    }


def _turn_markdown(turn: dict[str, Any], number: int | None) -> list[str]:
    lines = [f"## Question {number}" if number else "## Question", "", f"**Question:** {turn['question']}", ""]
    if turn["options"]:
        lines += [f"- **{k})** {v}" for k, v in turn["options"].items()] + [""]
    else:
        lines += ["*Free-text question (no options).*", ""]
    if turn["vote"]:
        lines += [f"**Agreement:** {turn['vote']['agreement']}", ""]
    if len(turn["samples"]) > 1:
        seed = turn["samples"][0]["seed"]
        lines += [f"*{len(turn['samples'])} samples drawn together from seed {seed}.*", ""]
    for sample in turn["samples"]:
        head = f"### Sample {sample['index'] + 1}" if len(turn["samples"]) > 1 else "### Answer"
        choice = f"{sample['letter']}) {sample['option']}" if sample["letter"] and sample["option"] else None
        choice = choice or sample["letter"] or (sample["answer"] if not turn["options"] else None) or "no answer"
        status = "well-formed" if sample["well_formed"] and not sample["issues"] else "malformed"
        if sample["stopped"]:
            status = "stopped before the end"
        lines += [head, "", f"**Answer:** {choice} — *{status}*", ""]
        if sample["issues"]:
            lines += ["Issues: " + "; ".join(sample["issues"]), ""]
        lines += ["**Reasoning:**", "", "```text", sample["rationale"] or "(none)", "```", ""]
        lines += [
            "<details><summary>Raw output</summary>",
            "",
            "```text",
            sample["raw_output"],
            "```",
            "",
            "</details>",
            "",
        ]
    lines += _evidence_markdown(turn.get("evidence"))
    lines += ["**Settings:** " + ", ".join(f"{k} {v}" for k, v in turn["settings"].items()), ""]
    return lines


def _evidence_markdown(evidence: dict[str, Any] | None) -> list[str]:
    if not evidence:
        return []
    lines = ["### Evidence", ""]
    if evidence.get("option_probabilities"):
        shares = ", ".join(f"{k} {v:.2f}" for k, v in evidence["option_probabilities"].items())
        lines += [f"**Option preference** (not a probability of being right): {shares}", ""]
    reliance = evidence.get("image_reliance")
    if reliance:
        without = reliance["answer_without_picture"] or "no option"
        verdict = "changes" if reliance["changed"] else "stays the same"
        lines += [
            f"**Image reliance:** on a grey picture of the same size the answer {verdict} "
            f"({reliance['answer_with_picture']} → {without}); preference "
            f"{reliance['probability_with_picture']:.2f} with the picture, "
            f"{reliance['probability_without_picture']:.2f} without.",
            "",
        ]
    if evidence.get("attention_map"):
        lines += [
            "**Attention map:** `attention-map.png` (where the answer position attended; not an explanation).",
            "",
        ]
    return lines


def record_markdown(data: dict[str, Any]) -> str:
    """A human-readable report of :func:`record_dict`'s document, every question of the conversation."""
    lines = ["# medr1 — questions and answers", "", f"> {data['disclaimer']}", ""]
    lines += ["![The image as the model saw it](image.png)", ""]
    model = data["model"]
    name = model["source"] + (f" / {model['subfolder']}" if model["subfolder"] else "")
    if model["adapter"]:
        name += f" + adapter {Path(model['adapter']).name}"
    lines += [f"**Model:** {model['label']} (`{name}`)", ""]
    if model["tiny_random"]:
        lines += ["**Tiny random model: the answers below are meaningless.**", ""]
    turns = data["conversation"]
    for number, turn in enumerate(turns, 1):
        lines += _turn_markdown(turn, number if len(turns) > 1 else None)
        if number < len(turns):
            lines += ["*The next question was asked with this conversation before it.*", ""]
    view = {k: v for k, v in data["image"].items() if k not in ("file", "summary")}
    lines += ["## Image", ""] + [f"- {k}: {v}" for k, v in view.items()]
    lines += [f"- {k}: {v}" for k, v in data["image"]["summary"].items()]
    lines += ["", f"*Exported by medr1 {data['medr1_version']} at {data['created']}.*", ""]
    return "\n".join(lines)


def write_export(
    record: AskRecord, image: Image.Image | None = None, directory: str | Path | None = None
) -> list[Path]:
    """Write ``image.png`` (and ``slice-NNNN.png`` for several slices), ``attention-map.png`` once the
    latest answer's evidence exists, ``answer.json`` and ``answer.md``."""
    folder = Path(tempfile.mkdtemp(prefix="medr1-export-", dir=directory))
    data = record_dict(record)
    png = folder / "image.png"
    png.write_bytes(to_png_bytes(image if image is not None else record.conversation.picture))
    slices = []  # several slices asked about together: each picture the model got, named by its index
    for index, picture in zip(data["image"].get("slices_asked", []), record.conversation.slices, strict=False):
        slices.append(folder / f"slice-{index:04d}.png")
        slices[-1].write_bytes(to_png_bytes(picture))
    latest = record.conversation.last
    maps = []
    if latest is not None and latest.evidence is not None and latest.evidence.maps:
        pictures = list(record.conversation.slices) or [record.conversation.picture]
        indices = data["image"].get("slices_asked") or [None]
        for index, evidence_map, picture in zip(indices, latest.evidence.maps, pictures, strict=False):
            maps.append(folder / ("attention-map.png" if index is None else f"attention-map-{index:04d}.png"))
            maps[-1].write_bytes(evidence_map.png_bytes(picture))
        for index, evidence_map, picture in zip(indices, latest.evidence.relevancy_maps, pictures, strict=False):
            maps.append(folder / ("relevancy-map.png" if index is None else f"relevancy-map-{index:04d}.png"))
            maps[-1].write_bytes(evidence_map.png_bytes(picture))
    as_json = folder / "answer.json"
    as_json.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    as_md = folder / "answer.md"
    as_md.write_text(record_markdown(data))
    return [png, *slices, *maps, as_json, as_md]
