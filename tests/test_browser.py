"""The page as a person uses it: `python app.py` driven in headless Chromium through Playwright."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import PORTRAIT, TALKING_HEAD, assert_valid_mp4, cut_speech, serve_app
from lipsync import pipeline
import app

pytestmark = pytest.mark.browser

# The README shows the page as these tests see it: LIPSYNC_SCREENSHOTS=docs saves the pictures there.
SCREENSHOTS = os.environ.get("LIPSYNC_SCREENSHOTS")
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
STAGES = [app.STAGE_LABELS[stage] for stage in pipeline.STAGES]  # the progress text, in the pipeline's order
# An examples table shows all its columns and every header and cell whole (no sideways scroll, no cut words).
NOT_CUT = """(element) => [...element.querySelectorAll('.table-wrap, th, td')]
    .every(box => box.scrollWidth <= box.clientWidth + 1)"""
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
# Records, from before the click on, when the live preview first plays (its currentTime past 0), how far it played,
# and when the status line first reports the end ("made in ... s").
WATCH_PREVIEW = """() => {
    window.preview = {playing: null, played: 0, done: null};
    const look = () => {
        const video = document.querySelector('#live-preview video');
        const now = performance.now();
        if (video && video.currentTime > 0) {
            if (window.preview.playing === null) window.preview.playing = now;
            window.preview.played = Math.max(window.preview.played, video.currentTime);
        }
        const status = document.querySelector('#status')?.innerText || '';
        if (status.includes('made in') && window.preview.done === null) window.preview.done = now;
    };
    setInterval(look, 20);
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_app(tmp_path_factory.mktemp("browser-app")) as running:
        yield running


def chromium_path() -> str | None:
    """$LIPSYNC_CHROMIUM or $CHROMIUM_PATH, else Debian's chromium, else None: Playwright's own browser
    (`python -m playwright install chromium`)."""
    for candidate in (os.environ.get("LIPSYNC_CHROMIUM"), os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium",
                      shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        except Exception as exc:  # Playwright's own browser is not installed either
            pytest.skip(f"no Chromium to drive ({str(exc).splitlines()[0]}): set LIPSYNC_CHROMIUM, install "
                        f"Debian's chromium, or run `python -m playwright install chromium`")
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
    loaded = page.locator("#face").get_by_label("Clear")
    if loaded.count():  # a face is there already: take it away first, as a person would
        loaded.click()
    page.locator("#face input[type=file]").set_input_files(str(path))
    # Its name, stem and suffix (which Gradio sets apart, at times with a space between).
    expect(page.locator("#face")).to_contain_text(re.compile(rf"{re.escape(path.stem)}\s*{re.escape(path.suffix)}"))


def assert_no_traceback(page: Page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "Something went wrong" not in body, body[-2000:]


def saved(page: Page, path: Path, full_page: bool = True) -> Path:
    page.screenshot(path=path, full_page=full_page)
    assert path.is_file() and path.stat().st_size > 0
    return path


def wall(folder: Path) -> Path:
    path = folder / "wall.png"
    cv2.imwrite(str(path), np.tile(np.linspace(60, 200, 320, dtype=np.uint8)[None, :, None], (240, 1, 3)))
    return path


def test_text_tab_makes_a_video_and_an_error_clears_the_status(server, page, tmp_path):
    open_with_haar(page, server.url)
    upload_face(page, PORTRAIT)
    expect(page.locator("#face-preview img")).to_be_visible()  # the picture, with the face numbered
    expect(page.get_by_text("1 face found.")).to_be_visible()

    page.locator("#text textarea").fill("Good morning, how are you?")
    expect(page.locator("#estimate")).to_contain_text(re.compile(r"Estimate: about \d+ s on this computer's CPU"))
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
    expect(status).to_contain_text("gTTS could not be reached, so the offline voice (espeak-ng) was used")
    expect(status).to_contain_text(re.compile(r"frames at 25 fps, 300×446"))
    expect(status).to_contain_text(re.compile(r"made in \d+\.\d s, estimated \d+ s"))  # how long it took
    assert_no_traceback(page)
    saved(page, tmp_path / "text_tab.png")

    upload_face(page, wall(tmp_path))  # now a request that fails: its error must not sit beside the last success
    expect(page.get_by_text("No face found here")).to_be_visible()
    page.locator("#generate-text").click()
    expect(page.get_by_test_id("toast-text")).to_contain_text("No face was found in the image")
    expect(status).to_have_text(re.compile(r"^\s*$"))
    assert_no_traceback(page)
    assert "Traceback" not in server.log.read_text()[log_start:]  # (a gr.Error, by Gradio's default, logs one)


def test_image_without_a_face_shows_an_error(server, page, tmp_path):
    open_with_haar(page, server.url)
    upload_face(page, wall(tmp_path))
    expect(page.get_by_text("No face found here")).to_be_visible()  # the preview warns before any generation

    page.locator("#text textarea").fill("Hello there.")
    page.locator("#generate-text").click()
    toast = page.get_by_test_id("toast-text")  # where gr.Error shows
    expect(toast).to_have_class(re.compile(r"\berror\b"))
    expect(toast).to_contain_text("No face was found in the image")
    page.wait_for_function(FADED_IN, arg=toast.element_handle())  # for the screenshot
    page.wait_for_timeout(12_000)  # longer than Gradio's default toast: this one stays until closed
    expect(toast).to_be_visible()
    assert page.evaluate(RESULT_SRC) is None
    assert_no_traceback(page)
    saved(page, tmp_path / "no_face.png", full_page=False)  # the toast is fixed to the viewport


def test_a_video_face_plays_in_the_page(server, page):
    open_with_haar(page, server.url)
    upload_face(page, TALKING_HEAD)
    face_video = page.locator("#face-video video")
    expect(face_video).to_be_visible()
    page.wait_for_function("(video) => video.readyState >= 1 && video.duration > 1", arg=face_video.element_handle())
    expect(page.locator("#face-preview img")).to_be_visible()  # its first frame, with the face numbered
    expect(page.get_by_text("1 face found.")).to_be_visible()


def portrait_with_speech(page: Page, url: str, speech: Path) -> None:
    """The portrait as the face (its preview shown), and a recording loaded on the Audio tab."""
    open_with_haar(page, url)
    upload_face(page, PORTRAIT)
    expect(page.locator("#face-preview img")).to_be_visible()
    page.get_by_role("tab", name="Audio").click()
    page.locator("#audio input[type=file]").set_input_files(str(speech))
    expect(page.locator("#audio").get_by_label("Clear")).to_be_visible()  # the recording is loaded


def test_a_second_click_is_queued_and_says_so(server, page, tmp_path):
    portrait_with_speech(page, server.url, cut_speech(tmp_path / "s.wav", 1.5))
    expect(page.locator("#estimate")).to_contain_text(re.compile(r"for 3[78] frames"))  # 1.5 s at 25 fps
    button = page.locator("#generate-audio")
    button.click()
    button.click()  # while the first runs
    expect(page.locator("#status")).to_contain_text("Queued: this request starts when the one running now is done.")
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    first = page.evaluate(RESULT_SRC)
    page.wait_for_function(f"(old) => ({RESULT_SRC})() && ({RESULT_SRC})() !== old", arg=first,
                           timeout=GENERATE_TIMEOUT_MS)  # the queued one ran after it, and replaced it
    second = page.evaluate(RESULT_SRC)
    assert second.endswith("-lipsync.mp4") and second != first
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile(r"^\s*1\.5 s, 3[78] frames at 25 fps"))
    assert "voice:" not in status.inner_text()  # a recording: no text-to-speech
    assert_no_traceback(page)
    saved(page, tmp_path / "audio_tab.png")


def test_the_preview_plays_while_the_video_is_made(server, page, tmp_path):
    """Seven seconds of speech: long enough on 2 CPU cores that the first segments play before the last frame is
    made; then the complete MP4 beside the preview is a valid download."""
    portrait_with_speech(page, server.url, cut_speech(tmp_path / "s.wav", 7.0))

    page.evaluate(WATCH_PREVIEW)
    page.locator("#generate-audio").click()  # the click is the user's gesture that lets the preview play with sound
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text(re.compile(r"made in \d+\.\d s"))
    page.wait_for_function("window.preview.done !== null")
    watched = page.evaluate("window.preview")
    assert watched["playing"] is not None and watched["playing"] < watched["done"], watched  # before the end
    assert_no_traceback(page)

    src = page.evaluate(RESULT_SRC)
    assert src.startswith(server.url) and src.endswith("-lipsync.mp4")
    download = page.request.get(src)
    assert download.ok, download.status
    mp4 = tmp_path / "download.mp4"
    mp4.write_bytes(download.body())
    assert_valid_mp4(mp4, 7.0, (300, 446), 25)


def test_the_page_at_desktop_and_phone_widths(server, page, tmp_path):
    """The screenshots in docs/ come from here: 1280 px, then the same page on a 390 px phone."""
    open_with_haar(page, server.url)
    page.get_by_text("Options", exact=True).click()  # closed again, as a visitor first sees it
    upload_face(page, PORTRAIT)
    expect(page.get_by_text("1 face found.")).to_be_visible()
    page.locator("#text textarea").fill("Hello! I have kept this smile for five hundred years.")
    page.locator("#generate-text").click()
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("made in")

    for width, name in ((1280, "app.png"), (390, "app_phone.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(500)  # the layout settles
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        button = page.locator("#generate-text").bounding_box()
        live = page.locator("#live-preview").bounding_box()
        result = page.locator("#result").bounding_box()
        assert 0 <= button["x"] and button["x"] + button["width"] <= width
        for table in ("#example-text", "#example-audio"):
            assert page.locator(table).evaluate(NOT_CUT), f"{table} is cut off at {width} px"
        if width == 390:  # one column: the preview right after the button, not under the options; the result next
            assert 0 < live["y"] - (button["y"] + button["height"]) < 150, (button, live)
            assert 0 < result["y"] - (live["y"] + live["height"]) < 50, (live, result)
        else:  # two columns: the preview and the result side by side, beside the inputs
            assert live["x"] > button["x"] + button["width"] and live["y"] < button["y"]
            assert result["x"] > live["x"] + live["width"] and result["y"] == live["y"]
        saved(page, Path(SCREENSHOTS or tmp_path) / name)


def test_missing_weights_banner_clears_when_the_weights_arrive(chromium, tmp_path, checkpoint_dir):
    """The page polls the weights while any is missing: files put in place after start-up are taken up without a
    reload, and the banner and the disabled buttons clear."""
    folder = tmp_path / "weights"
    folder.mkdir()
    with serve_app(tmp_path / "app", env={"LIPSYNC_CHECKPOINT_DIR": str(folder)}) as bare:
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.goto(bare.url)
            banner = page.locator("#weights-banner [data-testid=markdown]")
            expect(banner).to_contain_text("The model weights are not available")
            expect(banner).to_contain_text(f"Missing: wav2lip_gan.pth and s3fd.pth (not in {folder})")
            expect(banner).to_contain_text("--checkpoint-dir")
            button = page.locator("#generate-text")
            expect(button).to_be_disabled()
            expect(button).to_contain_text("waiting for the model weights")
            upload_face(page, PORTRAIT)  # the default detector, S3FD, needs its file: the preview says what will do
            expect(page.locator("#faces-note")).to_contain_text("Quick, no download (Haar)")
            saved(page, tmp_path / "no_weights.png")

            for name in ("wav2lip_gan.pth", "s3fd.pth"):
                shutil.copy(checkpoint_dir / name, folder / name)
            expect(banner).to_have_text(re.compile(r"^\s*$"), timeout=30_000)  # no reload: the page polls
            expect(button).to_be_enabled()
            expect(button).to_have_text("Generate from text")
        finally:
            context.close()
