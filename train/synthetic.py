"""A seeded synthetic visual multiple-choice task whose answers can only be read from the pixels.

No medical data can be downloaded here, and a random model learns nothing from real scans in minutes.
This task lets tests, demos and ``benchmarks/learning.py`` check that the RL loop really learns from
images: four "modalities" drawn as distinct textures and colours, and a lesion-grading question on the
size of a bright blob. Options are shuffled per question, so the letter alone carries no signal; with
the images blanked, nothing above chance can be learned.
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


def draw(modality: str, grade: int, size: int, rng: np.random.Generator) -> Image.Image:
    """An image: the modality's texture in its tint, plus a bright disc whose radius encodes the grade."""
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
    if BLOB_RADIUS[grade] > 0:
        cx, cy = rng.uniform(0.35, 0.65, 2)
        disc = np.hypot(x - cx, y - cy) < BLOB_RADIUS[grade]
        rgb[disc] = 255
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def make_synthetic_dataset(
    output_dir: str | Path,
    num_samples: int = 200,
    seed: int = 0,
    size: int = 112,
    question_types: tuple[str, ...] = tuple(QUESTIONS),
    blank_images: bool = False,
    file_name: str = "data.jsonl",
) -> Path:
    """Write ``num_samples`` PNGs and a medr1 JSONL file; returns the JSONL path.

    ``blank_images`` writes a uniform grey image instead (the ablation in which nothing is learnable).
    """
    output_dir = Path(output_dir)
    (output_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shuffle = random.Random(seed)
    modalities = list(TEXTURES)
    lines = []
    for index in range(num_samples):
        modality = modalities[int(rng.integers(len(modalities)))]
        grade = int(rng.integers(len(GRADES)))
        question_type = question_types[index % len(question_types)]
        image = Image.new("RGB", (size, size), (128, 128, 128)) if blank_images else draw(modality, grade, size, rng)
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
    path = output_dir / file_name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
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
