"""Download what was asked and answered: the picture the model saw, as JSON and as Markdown.

The export is a research record: the exact prompt, the model (and adapter) with the settings and
seeds that reproduce it, every sample's raw output next to what the parser read from it. It holds no
patient data: the picture is the windowed, resized PNG the model saw (no DICOM header travels with
it, no metadata chunks are written), the image summary is the imaging module's allow-listed technical
attributes, and the uploaded file's name is left out because file names often carry patient names.
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
from .generation import GenerationSettings
from .models import ModelSpec
from .render import DISCLAIMER


@dataclass(frozen=True)
class AskRecord:
    """Everything that defines one answered question."""

    question: str
    options: tuple[str, ...]
    prompt: str
    model: ModelSpec
    settings: GenerationSettings
    view: dict[str, Any]
    image_summary: dict[str, Any]
    progress: AnswerProgress


def record_dict(record: AskRecord) -> dict[str, Any]:
    """The JSON document (stable keys; ``schema`` versioned for readers)."""
    progress = record.progress
    vote = progress.vote
    samples = []
    for sample in progress.samples:
        parsed = sample.parsed
        samples.append(
            {
                "index": sample.index,
                "seed": sample.seed,
                "raw_output": sample.text,
                "rationale": parsed.rationale if parsed else None,
                "answer": parsed.answer if parsed else None,
                # A free-text question has no letters (the parser may still read one from "A smooth ...").
                "letter": parsed.letter if parsed and record.options else None,
                "option": parsed.option if parsed and record.options else None,
                "well_formed": parsed.well_formed if parsed else False,
                "complete": parsed.complete if parsed else False,
                "issues": list(parsed.issues) if parsed else [],
                "stopped": sample.stopped,
                "seconds": round(sample.seconds, 3),
            }
        )
    spec = record.model
    return {
        "schema": "medr1.ask/1",
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
        "settings": record.settings.as_dict(),
        "question": record.question,
        "options": {LETTERS[i]: o for i, o in enumerate(record.options)},
        "prompt": record.prompt,
        "image": {"file": "image.png", **record.view, "summary": record.image_summary},
        "samples": samples,
        "vote": None
        if vote is None
        else {
            "counts": dict(vote.counts),
            "total": vote.total,
            "no_answer": vote.no_answer,
            "winner": vote.winner,
            "agreement": vote.summary(record.options or None),
        },
        "stopped": progress.stopped,
    }


def record_markdown(data: dict[str, Any]) -> str:
    """A human-readable report of :func:`record_dict`'s document."""
    lines = [
        "# medr1 — question and answer",
        "",
        f"> {data['disclaimer']}",
        "",
        "![The image as the model saw it](image.png)",
        "",
        f"**Question:** {data['question']}",
        "",
    ]
    if data["options"]:
        lines += [f"- **{k})** {v}" for k, v in data["options"].items()] + [""]
    else:
        lines += ["*Free-text question (no options).*", ""]
    model = data["model"]
    name = model["source"] + (f" / {model['subfolder']}" if model["subfolder"] else "")
    if model["adapter"]:
        name += f" + adapter {Path(model['adapter']).name}"
    lines += [f"**Model:** {model['label']} (`{name}`)", ""]
    if model["tiny_random"]:
        lines += ["**Tiny random model: the answer below is meaningless.**", ""]
    if data["vote"]:
        lines += [f"**Agreement:** {data['vote']['agreement']}", ""]
    for sample in data["samples"]:
        head = f"## Sample {sample['index'] + 1} (seed {sample['seed']})" if len(data["samples"]) > 1 else "## Answer"
        choice = f"{sample['letter']}) {sample['option']}" if sample["letter"] and sample["option"] else None
        choice = choice or sample["letter"] or (sample["answer"] if not data["options"] else None) or "no answer"
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
    settings = data["settings"]
    lines += ["## Settings", ""] + [f"- {k}: {v}" for k, v in settings.items()]
    view = {k: v for k, v in data["image"].items() if k not in ("file", "summary")}
    lines += ["", "## Image", ""] + [f"- {k}: {v}" for k, v in view.items()]
    lines += [f"- {k}: {v}" for k, v in data["image"]["summary"].items()]
    lines += ["", f"*Exported by medr1 {data['medr1_version']} at {data['created']}.*", ""]
    return "\n".join(lines)


def write_export(record: AskRecord, image: Image.Image, directory: str | Path | None = None) -> list[Path]:
    """Write ``image.png``, ``answer.json`` and ``answer.md`` into a new folder; returns their paths."""
    folder = Path(tempfile.mkdtemp(prefix="medr1-export-", dir=directory))
    data = record_dict(record)
    png = folder / "image.png"
    png.write_bytes(to_png_bytes(image))
    as_json = folder / "answer.json"
    as_json.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    as_md = folder / "answer.md"
    as_md.write_text(record_markdown(data))
    return [png, as_json, as_md]
