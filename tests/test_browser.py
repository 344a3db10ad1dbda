"""The page as a person uses it: `python app.py` driven in headless Chromium (Debian's) through Playwright."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import PORTRAIT, cut_speech, serve_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium on a closed network stalls on its own background fetches.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GENERATE_TIMEOUT_MS = 120_000
RESULT_SRC = "() => document.querySelector('#result video')?.getAttribute('src') || null"
FADED_IN = """(element) => {
    for (; element; element = element.parentElement)
        if (parseFloat(getComputedStyle(element).opacity) < 1) return false;
    return true;
}"""
STAGES = ["Preparing the speech", "Finding the face", "Moving the lips", "Writing the video"]
# Records, from before the click on, every progress stage the page shows and any traceback text that flashes by.
WATCH = """(stages) => {
    window.seen = {stages: [], traceback: false};
    const look = () => {
        const text = document.body.innerText;
        for (const stage of stages)
            if (text.includes(stage) && !window.seen.stages.includes(stage)) window.seen.stages.push(stage);
        if (text.includes("Traceback")) window.seen.traceback = true;
    };
    new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_app(tmp_path_factory.mktemp("browser-app")) as running:
        yield running


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh tab per test, failing the test on any uncaught script error in the page."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    script_errors: list[str] = []
    tab.on("pageerror", lambda error: script_errors.append(str(error)))
    yield tab
    context.close()
    assert not script_errors, f"script errors in the page: {script_errors}"


def open_with_haar(page: Page, url: str) -> None:
    """Load the app and pick the cascade detector before any face is uploaded: random S3FD weights are slow."""
    page.goto(url)
    page.get_by_text("Options", exact=True).click()
    haar = page.locator("#detector").get_by_label("haar")
    haar.check()
    expect(haar).to_be_checked()


def upload_face(page: Page, path: Path) -> None:
    page.locator("#face input[type=file]").set_input_files(str(path))
    expect(page.locator("#face")).to_contain_text(path.name)


def assert_no_traceback(page: Page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "Something went wrong" not in body, body[-2000:]


def saved(page: Page, path: Path, full_page: bool = True) -> Path:
    page.screenshot(path=path, full_page=full_page)
    assert path.is_file() and path.stat().st_size > 0
    return path


def test_text_tab_makes_a_video(server, page, tmp_path):
    open_with_haar(page, server.url)
    upload_face(page, PORTRAIT)
    expect(page.locator("#face-preview img")).to_be_visible()  # the first frame with the face numbered
    expect(page.get_by_text("1 face found.")).to_be_visible()

    page.locator("#text textarea").fill("Good morning, how are you?")
    page.evaluate(WATCH, STAGES)
    log_start = len(server.log.read_text())
    page.locator("#generate-text").click()
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    seen = page.evaluate("window.seen")
    assert not seen["traceback"]
    assert seen["stages"] and seen["stages"] == sorted(seen["stages"], key=STAGES.index), seen  # shown, in order
    src = page.evaluate(RESULT_SRC)
    assert src.startswith(server.url) and src.endswith("-lipsync.mp4")

    status = page.locator("#status")
    expect(status).to_contain_text("espeak-ng")  # gTTS cannot reach Google here: the offline voice speaks
    expect(status).to_contain_text(re.compile(r"frames at 25 fps, 300×446"))
    assert_no_traceback(page)
    assert "Traceback" not in server.log.read_text()[log_start:]  # (a gr.Error, by Gradio's default, logs one)
    saved(page, tmp_path / "text_tab.png")


def test_image_without_a_face_shows_an_error(server, page, tmp_path):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.tile(np.linspace(60, 200, 320, dtype=np.uint8)[None, :, None], (240, 1, 3)))
    open_with_haar(page, server.url)
    upload_face(page, wall)
    expect(page.get_by_text("No face found here")).to_be_visible()  # the preview warns before any generation

    page.locator("#text textarea").fill("Hello there.")
    page.locator("#generate-text").click()
    toast = page.get_by_test_id("toast-text")  # where gr.Error shows
    expect(toast).to_have_class(re.compile(r"\berror\b"))
    expect(toast).to_contain_text("No face was found in the image")
    page.wait_for_function(FADED_IN, arg=toast.element_handle())  # for the screenshot
    assert page.evaluate(RESULT_SRC) is None
    assert_no_traceback(page)
    saved(page, tmp_path / "no_face.png", full_page=False)  # the toast is fixed to the viewport


def test_audio_tab_makes_a_new_video_each_time(server, page, tmp_path):
    speech = cut_speech(tmp_path / "s.wav", 1.5)
    open_with_haar(page, server.url)
    upload_face(page, PORTRAIT)
    expect(page.locator("#face-preview img")).to_be_visible()

    page.get_by_role("tab", name="Audio").click()
    page.locator("#audio input[type=file]").set_input_files(str(speech))
    expect(page.locator("#audio").get_by_label("Clear")).to_be_visible()  # the recording is loaded
    button = page.locator("#generate-audio")
    button.click()
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    first = page.evaluate(RESULT_SRC)
    expect(page.locator("#status")).to_contain_text(re.compile(r"^\s*1\.5 s, 3[78] frames at 25 fps"))

    button.click()  # the same request again: a new result replaces the first
    page.wait_for_function(f"(old) => ({RESULT_SRC})() && ({RESULT_SRC})() !== old", arg=first,
                           timeout=GENERATE_TIMEOUT_MS)
    second = page.evaluate(RESULT_SRC)
    assert second.endswith("-lipsync.mp4") and second != first
    status = page.locator("#status").inner_text()
    assert "voice:" not in status  # a recording: no text-to-speech
    assert_no_traceback(page)
    saved(page, tmp_path / "audio_tab.png")


def test_missing_weights_banner(chromium, tmp_path):
    empty_hub = tmp_path / "hf-home"
    empty_hub.mkdir()
    env = {"LIPSYNC_CHECKPOINT_DIR": "", "HF_HOME": str(empty_hub), "HF_HUB_OFFLINE": "1"}  # "" counts as unset
    with serve_app(tmp_path / "app", env=env) as bare:
        context = chromium.new_context()
        try:
            page = context.new_page()
            banner = page.locator("#weights-banner [data-testid=markdown]")
            page.goto(bare.url)
            # The banner is filled once, on load; the first visit may come before the fetch has failed.
            deadline = time.monotonic() + 30
            while True:
                expect(banner).to_contain_text(re.compile("not available|Fetching"))
                if "not available" in banner.inner_text() or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(500)  # the banner does not update itself: look again
                page.reload()
            expect(banner).to_contain_text("The model weights are not available")
            expect(banner).to_contain_text("LIPSYNC_CHECKPOINT_DIR")
            saved(page, tmp_path / "no_weights.png")
        finally:
            context.close()
