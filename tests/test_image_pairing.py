"""Every completion is generated from, scored with and trained on its own prompt's image.

Med-R1's fork of the trainer appears to tile images in a different order from its completions, which
silently trains each answer against another question's picture. Here several questions, each with a
different solid-colour image and a "case N" marker in its text, go through a real GRPO step; probes
on the model's forward and generate calls and a probe reward check the pairing at every stage.
"""

from __future__ import annotations

import functools
import json
import re

import torch
from PIL import Image
from transformers import TrainerCallback

from train.grpo import make_parser, train
from train.imaging import PixelBounds, model_picture
from train.model_io import load_processor
from train.rewards import REWARD_FUNCS, register_reward

COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]  # fmt: skip
CASE = re.compile(r"case (\d+)")
RECORD: dict[str, list] = {"generated": [], "scored": [], "trained": [], "image_checks": [], "mismatches": []}


def normalise(tokens, eos: int, pad: int) -> tuple[int, ...]:
    """Completion tokens up to and including the first EOS, trailing padding removed."""
    tokens = [int(t) for t in tokens]
    if eos in tokens:
        tokens = tokens[: tokens.index(eos) + 1]
    while tokens and tokens[-1] == pad:
        tokens.pop()
    return tuple(tokens)


if "pairing_probe" not in REWARD_FUNCS:

    @register_reward("pairing_probe")
    def pairing_probe(completions, completion_ids, prompts, image, id, **kwargs):
        """Check the image column and prompt text belong to the question id; record what was scored."""
        for case_id, picture, prompt, ids in zip(id, image, prompts, completion_ids, strict=True):
            number = int(case_id.split("-")[1])
            parts = [part for message in prompt for part in message["content"]]
            text = " ".join(part.get("text") or "" for part in parts)
            in_prompt = [part["image"] for part in parts if part.get("type") == "image"]
            pictures = [picture, *in_prompt]
            if any(p.getpixel((0, 0)) != COLOURS[number] for p in pictures) or f"case {number}" not in text:
                RECORD["mismatches"].append(("scored", case_id))
            RECORD["scored"].append((number, tuple(int(t) for t in ids)))
        return [float(len(ids) % 3) for ids in completion_ids]  # some variance, so a real gradient flows


class PairingProbe(TrainerCallback):
    """Wraps the innermost model's forward and generate to see exactly what reaches the network."""

    def __init__(self, processor, expected_pixels: dict[int, torch.Tensor]):
        self.processor = processor
        self.expected = expected_pixels
        tokenizer = processor.tokenizer
        self.eos, self.pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id
        self.image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self.assistant = tokenizer.encode("<|im_start|>assistant\n")

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        inner = next(m for m in model.modules() if type(m).__name__.endswith("ForConditionalGeneration"))
        forward, generate = inner.forward, inner.generate

        @functools.wraps(forward)  # generate() validates its kwargs against forward's signature
        def probed_forward(*a, **kw):
            self.check(kw.get("input_ids"), kw.get("pixel_values"), kw.get("image_grid_thw"))
            return forward(*a, **kw)

        def probed_generate(*a, **kw):
            # transformers 5 encodes the images inside generate() and hands forward() only their features,
            # so generation's images are checked here, training's in probed_forward.
            self.check(kw["input_ids"], kw.get("pixel_values"), kw.get("image_grid_thw"))
            out = generate(*a, **kw)
            prompt_len = kw["input_ids"].shape[1]
            for row, sequence in zip(kw["input_ids"], out, strict=True):
                self.check_row_case(row)
                RECORD["generated"].append((self.case_of(row), normalise(sequence[prompt_len:], self.eos, self.pad)))
            return out

        inner.forward, inner.generate = probed_forward, probed_generate

    def case_of(self, row) -> int:
        return int(CASE.search(self.processor.tokenizer.decode(row)).group(1))

    def check_row_case(self, row) -> None:
        assert CASE.search(self.processor.tokenizer.decode(row)), "prompt lost its case marker"

    def check(self, input_ids, pixel_values, grid) -> None:
        if input_ids is None or pixel_values is None:
            return  # a decoding step: no new image enters
        sizes = grid.prod(-1).tolist()
        assert len(sizes) == input_ids.shape[0], "one image per row expected"
        start = 0
        for row, size in zip(input_ids, sizes, strict=True):
            number = self.case_of(row)
            got = pixel_values[start : start + size]
            start += size
            ok = got.shape == self.expected[number].shape and torch.allclose(got, self.expected[number], atol=1e-5)
            RECORD["image_checks"].append(number)
            if not ok:
                RECORD["mismatches"].append(("forward", number))
            # Rows with tokens after the assistant header carry a completion: a training (or scoring) pass.
            tokens = row.tolist()
            for i in range(len(tokens) - len(self.assistant), -1, -1):
                if tokens[i : i + len(self.assistant)] == self.assistant:
                    completion = normalise(tokens[i + len(self.assistant) :], self.eos, self.pad)
                    if completion:
                        RECORD["trained"].append((number, completion))
                    break


def test_each_completion_keeps_its_own_image(tmp_path, tiny_model_dir):
    images = tmp_path / "images"
    images.mkdir()
    lines = []
    for number, colour in enumerate(COLOURS):
        Image.new("RGB", (56, 56), colour).save(images / f"{number}.png")
        question = f"What colour is case {number}?"
        lines.append({"id": f"case-{number}", "image": f"images/{number}.png", "question": question,
                      "options": ["warm", "cool"], "answer": "A", "modality": "CT"})  # fmt: skip
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))

    processor = load_processor(str(tiny_model_dir), max_pixels=12544, min_pixels=3136)
    expected = {
        n: processor.image_processor(images=[model_picture(images / f"{n}.png", bounds=PixelBounds(3136, 12544))],
                                     return_tensors="pt")["pixel_values"]
        for n in range(len(COLOURS))
    }  # fmt: skip
    script_args, training_args, model_args = make_parser().parse_args_and_config(
        args=[
            "--bf16", "false", "--use_cpu", "true", "--model_name_or_path", str(tiny_model_dir),
            "--dataset_path", str(data), "--output_dir", str(tmp_path / "out"), "--max_steps", "2",
            "--per_device_train_batch_size", "8", "--num_generations", "2", "--max_completion_length", "6",
            "--reward_funcs", "pairing_probe", "--gradient_checkpointing", "false", "--report_to", "none",
            "--save_strategy", "no", "--lora_r", "4", "--lora_alpha", "8", "--max_pixels", "12544",
            "--min_pixels", "3136", "--seed", "1",
        ]
    )  # fmt: skip
    for key in RECORD:
        RECORD[key].clear()
    train(script_args, training_args, model_args, callbacks=[PairingProbe(processor, expected)])

    assert not RECORD["mismatches"], RECORD["mismatches"]
    # 2 steps x 4 questions x 2 generations: generation, scoring and training all saw 16 completions.
    assert len(RECORD["generated"]) == len(RECORD["scored"]) == 16
    assert len({n for n, _ in RECORD["generated"]}) == 8, "every step should mix several different questions"
    assert sorted(RECORD["scored"]) == sorted(RECORD["generated"]), "a completion was scored against another prompt"
    trained = set(RECORD["trained"])
    assert set(RECORD["generated"]) <= trained, "a completion was trained with another prompt's image"
    assert len(RECORD["image_checks"]) >= 32  # images checked in generation and in the training passes
