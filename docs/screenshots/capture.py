"""Take the README's screenshots of the Ask tab with a real model through the real generation path.

Run: ``python docs/screenshots/capture.py`` (offline, CPU, a few minutes; needs Debian's ``chromium``).
``--evidence-run runs/learning/seed0-grounding`` also takes ``ask-evidence.png`` with the learning proof's
grounding model, which really reads the picture (``docs/evidence.md`` says how to make it).

No model hub is reachable here, so the model is medr1's tiny random Qwen2-VL after a short lesson in
the answer *format*: a few hundred plain next-token steps on three fixed, well-formed completions.
It then writes ``<think>…</think><answer>X</answer>`` like Med-R1 does, but what it says is
meaningless (0.2 M parameters, never shown a medical image), and the app's banner says so in every
screenshot. Nothing in the pictures is scripted: the text is what that model generated.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import pydicom.examples
import torch
from PIL import Image

from train.model_io import load_model, load_processor
from train.protocol import build_messages, build_prompt, format_completion
from train.tiny_model import build_tiny_model

HERE = Path(__file__).resolve().parent
EVIDENCE_DONE = "#medr1-evidence .medr1-evidence[data-status=done]"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
LESSONS = [
    ("What imaging technique was used to obtain this image?", ["CT", "MRI", "X-ray", "Ultrasound"], "A",
     "The picture is a grey-scale cross-section; bone is bright and the air around the body is black, "
     "which is how computed tomography shows the body."),
    ("Which part of the body is shown in this image?", ["Head", "Chest", "Abdomen", "Knee"], "C",
     "Soft tissue fills most of the field and there is no lung or skull in view, so the abdomen is the best fit."),
    ("What imaging modality produced this image?", ["Ultrasound", "CT", "Fundus photography", "Dermoscopy"], "A",
     "The image is a fan-shaped grainy sector, which is typical of ultrasound."),
]  # fmt: skip


def teach_format(model_dir: Path, out_dir: Path, steps: int, lr: float) -> Path:
    """Plain causal-LM steps on the lessons' well-formed completions (prompt tokens are not trained)."""
    torch.manual_seed(0)
    model = load_model(str(model_dir), dtype="float32")
    processor = load_processor(str(model_dir))
    rng = np.random.default_rng(0)
    batches = []
    for question, options, letter, rationale in LESSONS:
        picture = Image.fromarray(rng.integers(0, 255, (84, 84, 3), dtype=np.uint8))
        chat = processor.apply_chat_template(
            build_messages(build_prompt(question, options)), add_generation_prompt=True, tokenize=False
        )
        target = format_completion(rationale, letter) + processor.tokenizer.eos_token
        full = processor(text=[chat + target], images=[picture], return_tensors="pt")
        prompt_len = processor(text=[chat], images=[picture], return_tensors="pt")["input_ids"].shape[1]
        labels = full["input_ids"].clone()
        labels[:, :prompt_len] = -100
        batches.append((full, labels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        inputs, labels = batches[step % len(batches)]
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == steps - 1:
            print(f"format lesson step {step}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)")
    model.eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def _open_and_ask(page, url: str, question: tuple[str, list[str], str, str]) -> None:
    page.goto(url)
    page.locator("#medr1-upload input[type=file]").set_input_files(str(pydicom.examples.get_path("ct")))
    page.wait_for_selector("#medr1-upload-status:has-text('Loaded')", timeout=60_000)
    page.locator("#medr1-question textarea").fill(question[0])
    for letter, option in zip("ABCD", question[1], strict=True):
        page.locator(f"#medr1-option-{letter} input").fill(option)


def capture(model_dir: Path, out: Path) -> None:
    """The Ask screen at 1366 x 768 (laptop), 1920 x 1080 and 390 x 844 (phone), plus its other states."""
    from playwright.sync_api import sync_playwright

    from medr1_app.app import AppConfig, build_app, default_tabs, launch_kwargs

    demo = build_app(AppConfig(model=str(model_dir), runs_dir=None), extra_tabs=default_tabs())
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs())
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for name, viewport, full in (
                ("ask-answer.png", {"width": 1366, "height": 768}, False),
                ("ask-answer-1920.png", {"width": 1920, "height": 1080}, False),
                ("ask-phone.png", {"width": 390, "height": 844}, True),
            ):
                page = browser.new_page(viewport=viewport)
                _open_and_ask(page, url, LESSONS[0])
                if name == "ask-answer.png":
                    page.screenshot(path=str(out / "ask-dicom-loaded.png"))
                page.locator("#medr1-ask").click()
                page.wait_for_selector("#medr1-ask-status:has-text('Done')", timeout=120_000)
                page.wait_for_selector(EVIDENCE_DONE, timeout=300_000)
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(out / name), full_page=full)
                page.close()

            page = browser.new_page(viewport={"width": 1366, "height": 768})
            _open_and_ask(page, url, LESSONS[0])
            page.get_by_text("Generation settings").click()
            for label, value in (
                ("Self-consistency: number of answers to sample", "5"),
                ("Temperature (0 = always the most likely word)", "0.8"),
                ("Max new tokens", "160"),
            ):
                box = page.get_by_label(f"number input for {label}")
                box.fill(value)
                box.press("Enter")
            page.get_by_text("Generation settings").click()
            page.locator("#medr1-ask").click()
            page.wait_for_selector("#medr1-answer [data-testid=agreement]", timeout=300_000)
            page.wait_for_selector("#medr1-ask-status:has-text('Done')", timeout=60_000)
            page.locator("#medr1-sample-picker label").nth(2).click()
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(out / "ask-self-consistency.png"))

            page.locator("#medr1-followup textarea").fill(LESSONS[1][0])
            page.locator("#medr1-followup-options textarea").fill("\n".join(LESSONS[1][1]))
            page.locator("#medr1-followup-ask").click()
            page.wait_for_function(
                "() => document.querySelectorAll('#medr1-conversation [data-testid=user]').length >= 2",
                timeout=120_000,
            )
            page.wait_for_selector("#medr1-ask-status:has-text('Done')", timeout=120_000)
            page.locator("#medr1-answer-column").screenshot(path=str(out / "ask-follow-up.png"))
            browser.close()
    finally:
        demo.close()


def capture_evidence(run: Path, out: Path) -> None:
    """``ask-evidence.png``: the learning proof's grounding model (it reads pixels) on a held-out picture
    whose blob is off-centre, its attention map on the viewer and the Evidence panel filled in (with the
    relevancy map asked for too, so the panel offers it)."""
    import json

    from playwright.sync_api import sync_playwright

    from medr1_app.app import AppConfig, build_app, launch_kwargs

    boxes = json.loads((run / "evidence-data" / "blob_boxes.json").read_text())
    records = [
        json.loads(line) for line in (run / "evidence-data" / "data-fixed-options.jsonl").read_text().splitlines()
    ]
    record = next(r for r in records if r["id"] in boxes and r["answer"] in "BC" and boxes[r["id"]][0] > 0.45)
    demo = build_app(AppConfig(model=str(run / "grpo"), runs_dir=None))
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs())
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(url)
            page.locator("#medr1-upload input[type=file]").set_input_files(str(run / "evidence-data" / record["image"]))
            page.wait_for_selector("#medr1-upload-status:has-text('Loaded')", timeout=60_000)
            page.locator("#medr1-question textarea").fill(record["question"])
            for letter, option in zip("ABCD", record["options"], strict=True):
                page.locator(f"#medr1-option-{letter} input").fill(option)
            page.get_by_text("Generation settings").click()
            page.locator("#medr1-relevancy-on input[type=checkbox]").check()
            page.get_by_text("Generation settings").click()
            page.locator("#medr1-ask").click()
            page.wait_for_selector(EVIDENCE_DONE, timeout=120_000)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(out / "ask-evidence.png"))
            page.locator("#medr1-evidence").scroll_into_view_if_needed()
            page.screenshot(path=str(out / "ask-evidence-panel.png"))
            browser.close()
    finally:
        demo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE))
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--evidence-run",
        type=Path,
        help="Output of benchmarks/learning.py --blob-position uniform after benchmarks/evidence_proof.py: "
        "also take ask-evidence.png with its trained model.",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        tiny = build_tiny_model(Path(folder) / "medr1-tiny-random-qwen2_vl", seed=0)
        taught = teach_format(tiny, Path(folder) / "medr1-tiny-random-format-taught", args.steps, args.lr)
        capture(taught, out)
    if args.evidence_run:
        capture_evidence(args.evidence_run, out)
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
