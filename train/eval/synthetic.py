"""A seeded evaluation set covering the paper's full grid: 8 modalities x 5 question types.

``train.synthetic`` makes a learnable task on four modalities; evaluation needs every cell of the
paper's tables instead, including 2-option questions (chance 50 %, not 25 %) and pictures of different
shapes (so batches really are padded). Nothing here is medical: the pictures are tinted noise and the
answers are random. It exists so the evaluation pipeline, the app's Evaluate tab and the benchmark
can run end to end offline.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from train.data import MODALITIES, QUESTION_TYPES

QUESTIONS = {
    "Modality Recognition": ("What imaging modality was used to obtain this image?", list(MODALITIES)),
    "Anatomy Identification": (
        "Which organ is shown in this image?",
        ["Brain", "Lung", "Liver", "Kidney", "Heart", "Retina"],
    ),
    "Disease Diagnosis": (
        "What is the most likely diagnosis?",
        ["Normal", "Tumour", "Pneumonia", "Fracture", "Haemorrhage", "Cyst"],
    ),
    "Lesion Grading": ("What is the grade of the lesion?", ["Grade 0", "Grade 1", "Grade 2", "Grade 3"]),
    "Biological Attribute Analysis": (
        "Which attribute best describes the tissue in this image?",
        ["Benign", "Malignant", "Inflamed", "Healthy"],
    ),
}
# Width x height multipliers of the base size: square, wide and tall pictures give different token counts.
SHAPES = ((1, 1), (2, 1), (1, 2), (3, 2))


def make_grid_dataset(
    output_dir: str | Path,
    per_cell: int = 1,
    seed: int = 0,
    size: int = 56,
    two_option_every: int = 3,
    file_name: str = "eval.jsonl",
) -> Path:
    """Write ``8 * 5 * per_cell`` questions (medr1 JSONL) and their PNGs; returns the JSONL path.

    Every ``two_option_every``-th question has 2 options, the others 4 (Modality Recognition: 4 of the 8
    modality names, always including the right one).
    """
    if per_cell < 1:
        raise ValueError("per_cell must be at least 1.")
    output_dir = Path(output_dir)
    (output_dir / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shuffle = random.Random(seed)
    records = []
    index = 0
    for m_index, modality in enumerate(MODALITIES):
        tint = np.array([60 + 25 * m_index, 200 - 20 * m_index, 90 + 15 * (m_index % 4)], dtype=np.float64)
        for question_type in QUESTION_TYPES:
            question, pool = QUESTIONS[question_type]
            for _ in range(per_cell):
                n_options = 2 if two_option_every and index % two_option_every == 0 else 4
                if question_type == "Modality Recognition":
                    others = [m for m in pool if m != modality]
                    options = [modality, *shuffle.sample(others, n_options - 1)]
                else:
                    options = shuffle.sample(pool, n_options)
                gold = options[shuffle.randrange(n_options)]
                shuffle.shuffle(options)
                wide, tall = SHAPES[index % len(SHAPES)]
                noise = rng.normal(0.5, 0.2, (size * tall, size * wide, 1))
                pixels = np.clip(noise * tint, 0, 255).astype(np.uint8)
                name = f"images/grid_{seed}_{index:05d}.png"
                Image.fromarray(pixels, "RGB").save(output_dir / name)
                records.append(
                    {
                        "id": f"grid-{seed}-{index}",
                        "image": name,
                        "question": question,
                        "options": options,
                        "answer": "ABCDEF"[options.index(gold)],
                        "modality": modality,
                        "question_type": question_type,
                    }
                )
                index += 1
    path = output_dir / file_name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
