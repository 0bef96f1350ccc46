"""Take the docs' screenshots of the Fine-tune demo: a real demo run in the browser, then its adapter in Ask.

Run: ``python docs/screenshots/capture_finetune_demo.py`` (offline, CPU, about five minutes; needs
Debian's ``chromium``). Nothing is scripted: the app builds (or finds in ``--cache-dir``) the demo model,
the run is the tab's own 200-step demo run, and the Ask screenshot shows what the trained adapter answers
about a held-out gallery picture.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="where the demo model is (built if missing)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from medr1_app.app import AppConfig, build_app, default_tabs, launch_kwargs

    runs = Path(tempfile.mkdtemp(prefix="medr1-demo-runs-"))
    cache = str(args.cache_dir) if args.cache_dir else None
    config = AppConfig(model="qwen2-vl-2b", runs_dir=str(runs), cache_dir=cache)
    demo = build_app(config, extra_tabs=default_tabs())
    _, url, _ = demo.launch(**launch_kwargs(config, prevent_thread_lock=True, quiet=True))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.goto(url)
            page.get_by_role("tab", name="Fine-tune").click()
            page.locator("#medr1-finetune-demo").click()
            page.wait_for_selector("text=600 questions ready", timeout=300_000)
            page.wait_for_selector("text=Settings (the demo's CPU settings", timeout=30_000)
            print(f"load average at the start: {os.getloadavg()}")
            tick = time.perf_counter()
            page.locator("#medr1-finetune-start").click()
            page.wait_for_selector(".medr1-progress[data-state=finished]", timeout=1_200_000)
            print(f"Start training to finished: {time.perf_counter() - tick:.0f} s; load average {os.getloadavg()}")
            page.wait_for_timeout(1500)  # the last plot update
            scrolled = page.evaluate("window.scrollY")  # bounding boxes are in the viewport, the clip in the page
            top = page.locator("#medr1-finetune-start").bounding_box()["y"] + scrolled - 16
            plots = page.locator("#medr1-plot-length").bounding_box()
            clip = {"x": 0, "y": top, "width": 1366, "height": plots["y"] + scrolled + plots["height"] + 16 - top}
            page.screenshot(path=str(args.out / "finetune-demo.png"), clip=clip, full_page=True)
            print(page.locator("[data-testid=run-summary]").inner_text())

            page.get_by_role("button", name="Load this adapter in the Ask tab").click()
            page.wait_for_selector("text=Switch to Ask to try it", timeout=30_000)
            page.get_by_role("tab", name="Ask").click()
            page.screenshot(path=str(args.out / "finetune-demo-gallery.png"), full_page=True)  # for review only
            page.get_by_text("Demo 4 · lesion grade").click()
            page.wait_for_function(
                "() => document.querySelector('#medr1-question textarea').value.includes('grade')", timeout=30_000
            )
            page.locator("#medr1-ask").click()
            page.wait_for_selector("#medr1-ask-status:has-text('Done')", timeout=120_000)
            page.set_viewport_size({"width": 1366, "height": 768})
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(args.out / "finetune-demo-ask.png"))
            print(page.locator("#medr1-answer").inner_text())
            browser.close()
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
