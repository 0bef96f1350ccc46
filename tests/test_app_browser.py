"""End to end in a real headless browser: Playwright for Python driving Debian's ``chromium``.

The first test replaces only the text generator (``build_app(stream_fn=...)``, the documented test
seam) so it can check what a clinician reads: a DICOM is uploaded, the window centre is moved (the
viewer re-renders and the window switches to Custom), the question is asked, the rationale streams
into its panel and the answer letter appears. The second test runs the real tiny random model and
checks that its tag-less output is presented as malformed.

Skipped when Chromium is missing, except under ``MEDR1_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where a missing browser is a failure. Set ``MEDR1_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom.examples
import pytest
from medr1_app_testkit import WELL_FORMED, ScriptedStream, launch

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("MEDR1_REQUIRE_BROWSER") == "1":
            pytest.fail("MEDR1_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MEDR1_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open_ct(page, url: str) -> str:
    page.goto(url)
    page.locator("#medr1-upload input[type=file]").set_input_files(str(pydicom.examples.get_path("ct")))
    page.wait_for_selector("#medr1-upload-status:has-text('Loaded CT_small.dcm')", timeout=30_000)
    viewer = page.locator("#medr1-viewer img")
    viewer.wait_for(timeout=30_000)
    return viewer.get_attribute("src")


def _fill_question(page) -> None:
    page.locator("#medr1-question textarea").fill("What imaging technique was used to obtain this image?")
    for letter, option in zip("ABCD", ["CT", "MRI", "X-ray", "Ultrasound"], strict=True):
        page.locator(f"#medr1-option-{letter} input").fill(option)


def test_upload_window_ask_stream_answer(browser, tiny_model_dir, shots):
    from medr1_app.app import AppConfig, build_app

    stream = ScriptedStream([WELL_FORMED], chunk=3, delay=0.03)
    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None), stream_fn=stream)
    url = launch(demo)
    page = browser.new_page(viewport={"width": 1400, "height": 1250})
    try:
        first_src = _open_ct(page, url)
        centre = page.get_by_label("number input for Window centre")
        assert float(centre.input_value()) == 50  # the CT default: soft-tissue window
        centre.fill("-600")
        centre.press("Enter")
        centre.blur()
        page.wait_for_function(
            "src => { const img = document.querySelector('#medr1-viewer img'); return img && img.src !== src; }",
            arg=first_src,
            timeout=20_000,
        )
        assert page.locator("#medr1-window input").input_value() == "Custom (sliders)"
        _fill_question(page)
        page.screenshot(path=str(shots / "browser-dicom-loaded.png"), full_page=True)

        page.locator("#medr1-ask").click()
        page.wait_for_function(
            "() => { const t = document.querySelector('#medr1-rationale textarea'); return t && t.value.length > 0; }",
            timeout=30_000,
        )
        partial = page.locator("#medr1-rationale textarea").input_value()
        page.wait_for_selector("#medr1-ask-status:has-text('Done')", timeout=30_000)
        final = page.locator("#medr1-rationale textarea").input_value()
        assert final.startswith("The picture is a grey-scale cross-section")
        assert len(partial) < len(final), "the rationale should have been seen while it streamed"
        assert page.locator("#medr1-answer [data-testid=answer-letter]").inner_text() == "A"
        assert "Well-formed answer" in page.locator("#medr1-answer").inner_text()
        assert "Research use only" in page.locator("body").inner_text()
        page.screenshot(path=str(shots / "browser-answer.png"), full_page=True)
        # The model got the windowed picture the viewer showed after the slider moved.
        assert stream.calls[-1]["size"] == (112, 112)
    finally:
        page.close()
        demo.close()


def test_real_tiny_model_output_is_shown_as_malformed(browser, tiny_model_dir, shots):
    from medr1_app.app import AppConfig, build_app

    demo = build_app(AppConfig(model=str(tiny_model_dir), runs_dir=None))
    url = launch(demo)
    page = browser.new_page(viewport={"width": 1400, "height": 1250})
    try:
        _open_ct(page, url)
        _fill_question(page)
        page.get_by_text("Generation settings").click()
        tokens = page.get_by_label("number input for Max new tokens")
        tokens.fill("32")
        tokens.press("Enter")
        page.locator("#medr1-ask").click()
        page.wait_for_selector("#medr1-ask-status:has-text('Done')", timeout=60_000)
        answer = page.locator("#medr1-answer").inner_text()
        assert "Malformed output" in answer and "No answer" in answer
        assert "answers are meaningless" in page.locator("#medr1-banner").inner_text()
        page.screenshot(path=str(shots / "browser-tiny-malformed.png"), full_page=True)
        downloads = page.locator("#medr1-downloads").inner_text()
        downloads = downloads.replace("\n", "")
        assert "answer.json" in downloads and "answer.md" in downloads and "image.png" in downloads
    finally:
        page.close()
        demo.close()
