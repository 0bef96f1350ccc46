"""A seeded synthetic visual multiple-choice task whose answers can only be read from the pixels.

No medical data can be downloaded here, and a random model learns nothing from real scans in minutes.
This task lets tests, demos and ``benchmarks/learning.py`` check that the RL loop really learns from
images: four "modalities" drawn as distinct textures and colours, and a lesion-grading question on the
size of a bright blob. Options are shuffled per question, so the letter alone carries no signal; with
the images blanked, nothing above chance can be learned.

The blob sits near the centre by default. The *grounding* variant (``blob_position="uniform"``) puts it
anywhere it fits, so a map of where the model looked can be scored against the blob's box (written
beside the JSONL to ``blob_boxes.json``, question id -> box, since a dataset record takes no extra
fields): with a central blob, a map biased to the centre would score well for free.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

# Each synthetic modality: a background texture and a tint (RGB).
TEXTURES = {
    "CT": ("rings", (200, 200, 200)),
    "MRI": ("horizontal", (90, 140, 255)),
    "Ultrasound": ("checker", (255, 190, 60)),
    "X-Ray": ("vertical", (120, 255, 120)),
}
GRADES = ["Grade 0 (no lesion)", "Grade 1 (small lesion)", "Grade 2 (medium lesion)", "Grade 3 (large lesion)"]
BLOB_RADIUS = [0, 0.12, 0.22, 0.34]  # fraction of the image side
QUESTIONS = {
    "Modality Recognition": "Which imaging modality does this image come from?",
    "Lesion Grading": "What is the grade of the lesion in this image?",
}


BLOB_POSITIONS = ("central", "uniform")


def draw(
    modality: str, grade: int, size: int, rng: np.random.Generator, blob_position: str = "central"
) -> tuple[Image.Image, tuple[float, float, float, float] | None]:
    """An image: the modality's texture in its tint, plus a bright disc whose radius encodes the grade.

    Returns the image and the disc's bounding box as fractions of the side (x0, y0, x1, y1), or None
    without a disc. ``blob_position="uniform"`` draws the centre anywhere the whole disc fits.
    """
    texture, tint = TEXTURES[modality]
    y, x = np.mgrid[0:size, 0:size] / size
    period = 6 / size * 8
    if texture == "rings":
        pattern = np.sin(np.hypot(x - 0.5, y - 0.5) / period * 2 * np.pi)
    elif texture == "horizontal":
        pattern = np.sin(y / period * 2 * np.pi)
    elif texture == "vertical":
        pattern = np.sin(x / period * 2 * np.pi)
    else:
        pattern = np.sign(np.sin(x / period * np.pi)) * np.sign(np.sin(y / period * np.pi))
    base = 0.35 + 0.25 * pattern + rng.normal(0, 0.05, (size, size))
    rgb = np.clip(base[..., None] * np.array(tint)[None, None, :], 0, 255)
    box = None
    radius = BLOB_RADIUS[grade]
    if radius > 0:
        low, high = (0.35, 0.65) if blob_position == "central" else (radius, 1 - radius)
        cx, cy = rng.uniform(low, high, 2)
        disc = np.hypot(x - cx, y - cy) < radius
        rgb[disc] = 255
        box = (max(0.0, cx - radius), max(0.0, cy - radius), min(1.0, cx + radius), min(1.0, cy + radius))
    return Image.fromarray(rgb.astype(np.uint8), "RGB"), box


def make_synthetic_dataset(
    output_dir: str | Path,
    num_samples: int = 200,
    seed: int = 0,
    size: int = 112,
    question_types: tuple[str, ...] = tuple(QUESTIONS),
    blank_images: bool = False,
    file_name: str = "data.jsonl",
    blob_position: str = "central",
) -> Path:
    """Write ``num_samples`` PNGs and a medr1 JSONL file; returns the JSONL path.

    ``blank_images`` writes a uniform grey image instead (the ablation in which nothing is learnable).
    ``blob_position`` is "central" or "uniform" (the grounding variant, see the module docstring; it
    also writes ``blob_boxes.json``).
    """
    if blob_position not in BLOB_POSITIONS:
        raise ValueError(f"blob_position must be one of {BLOB_POSITIONS}, not {blob_position!r}.")
    output_dir = Path(output_dir)
    (output_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shuffle = random.Random(seed)
    modalities = list(TEXTURES)
    lines, boxes = [], {}
    for index in range(num_samples):
        modality = modalities[int(rng.integers(len(modalities)))]
        grade = int(rng.integers(len(GRADES)))
        question_type = question_types[index % len(question_types)]
        if blank_images:
            image, box = Image.new("RGB", (size, size), (128, 128, 128)), None
        else:
            image, box = draw(modality, grade, size, rng, blob_position)
        name = f"images/{seed}_{index:05d}.png"
        image.save(output_dir / name)
        options = list(modalities) if question_type == "Modality Recognition" else list(GRADES)
        gold = modality if question_type == "Modality Recognition" else GRADES[grade]
        shuffle.shuffle(options)
        lines.append(
            {
                "id": f"synthetic-{seed}-{index}",
                "image": name,
                "question": QUESTIONS[question_type],
                "options": options,
                "answer": "ABCDEF"[options.index(gold)],
                "modality": modality,
                "question_type": question_type,
            }
        )
        if box is not None:
            boxes[lines[-1]["id"]] = [round(v, 4) for v in box]
    path = output_dir / file_name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    if blob_position == "uniform":
        (output_dir / "blob_boxes.json").write_text(json.dumps(boxes))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="medr1-train synthetic-data", description="Write the seeded synthetic visual multiple-choice task."
    )
    parser.add_argument("output_dir")
    parser.add_argument("--num-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--blank-images", action="store_true")
    args = parser.parse_args(argv)
    path = make_synthetic_dataset(
        args.output_dir, args.num_samples, args.seed, args.size, blank_images=args.blank_images
    )
    print(f"Wrote {args.num_samples} questions to {path}")


if __name__ == "__main__":
    main()
