"""The page as a person uses it: `python app.py` driven in headless Chromium through Playwright. One server for the
module; the quick face finder (random S3FD weights find faces everywhere, slowly); speech of a few seconds."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import PORTRAIT, TALKING_HEAD, assert_valid_mp4, cut_speech, serve_app
from lipsync import pipeline
from ui import words

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)  # a shared 2-core machine answers slowly at times

# The README shows the page as these tests see it: LIPSYNC_SCREENSHOTS=docs saves the pictures there.
SCREENSHOTS = os.environ.get("LIPSYNC_SCREENSHOTS")
# Without these, Chromium on a closed network stalls on its own background fetches.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GENERATE_TIMEOUT_MS = 180_000
RESULT_SRC = "() => document.querySelector('#result video')?.getAttribute('src') || null"
PROGRESS = re.compile(r" · (\d+) s")  # the progress line: the stage and the seconds since the click
STAGES = [words.STAGE_LABELS[stage] for stage in pipeline.STAGES]  # the progress text, in the pipeline's order
# Records, from before the click on: every progress stage shown, every text the status shows (the progress counter
# among them), any traceback that flashes by; when the preview first plays, how far, whether it offered a
# download meanwhile; and when the status first reports the end ("made in ... s").
WATCH = """(stages) => {
    window.seen = {stages: [], statuses: [], traceback: false, playing: null, played: 0, preview_download: false,
                   done: null};
    const look = () => {
        const text = document.body.innerText;
        for (const stage of stages)
            if (text.includes(stage) && !window.seen.stages.includes(stage)) window.seen.stages.push(stage);
        if (text.includes("Traceback")) window.seen.traceback = true;
        const status = document.querySelector('#status')?.innerText || '';
        if (window.seen.statuses.at(-1) !== status) window.seen.statuses.push(status);
        const video = document.querySelector('#live-preview video');
        if (video && video.currentTime > 0) {
            if (window.seen.playing === null) window.seen.playing = performance.now();
            window.seen.played = Math.max(window.seen.played, video.currentTime);
            if (document.querySelector('#live-preview [aria-label=Download], #live-preview a[download]'))
                window.seen.preview_download = true;
        }
        if (status.includes('made in') && window.seen.done === null) window.seen.done = performance.now();
    };
    new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
    setInterval(look, 50);
}"""
# The visible <video> elements of the output column: one player in one place.
PLAYERS = "() => [...document.querySelectorAll('#outputs video')].filter(v => v.offsetParent !== null).length"
# Every <video> in the page that has a size and a source, wherever it sits: after a request, the result's only.
SIZED_VIDEOS = """() => [...document.querySelectorAll('video')].filter(video => {
    const box = video.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && (video.currentSrc || video.getAttribute('src'));
}).map(video => (video.closest('[id]') || {}).id || '?')"""


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


def new_tab(chromium, width: int = 1280, height: int = 900):
    """A tab at this size, failing the test on any uncaught script error in the page; its context to close."""
    context = chromium.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.script_errors = []
    tab.on("pageerror", lambda error: tab.script_errors.append(str(error)))
    return context, tab


@pytest.fixture
def page(chromium):
    context, tab = new_tab(chromium)
    yield tab
    context.close()
    assert not tab.script_errors, f"script errors in the page: {tab.script_errors}"


@pytest.fixture
def phone(chromium):
    context, tab = new_tab(chromium, 390, 844)
    yield tab
    context.close()
    assert not tab.script_errors, f"script errors in the page: {tab.script_errors}"


def open_fast(page: Page, url: str) -> None:
    """Load the app and choose the Fast preset (the quick face finder) before any face is uploaded."""
    page.goto(url)
    fast = page.locator("#preset").get_by_label("Fast")
    fast.check()
    expect(fast).to_be_checked()


def upload_face(page: Page, path: Path) -> None:
    loaded = page.locator("#face").get_by_label("Clear")
    if loaded.count():  # a face is there already: take it away first, as a person would
        loaded.click()
    page.locator("#face input[type=file]").set_input_files(str(path))
    # Its name, stem and suffix (which Gradio sets apart, at times with a space between).
    expect(page.locator("#face")).to_contain_text(re.compile(rf"{re.escape(path.stem)}\s*{re.escape(path.suffix)}"))


def load_speech(page: Page, speech: Path) -> None:
    page.get_by_role("tab", name="Audio").click()
    page.locator("#audio input[type=file]").set_input_files(str(speech))
    expect(page.locator("#audio").get_by_label("Clear")).to_be_visible()  # the recording is loaded


def assert_no_traceback(page: Page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "Something went wrong" not in body, body[-2000:]


def assert_in_view(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    assert box and 0 <= box["y"] and box["y"] + min(box["height"], 60) <= height, (selector, box, height)


def wait_for_progress(page: Page) -> None:
    page.wait_for_function(f"() => /{PROGRESS.pattern}/.test(document.querySelector('#status').innerText)",
                           timeout=GENERATE_TIMEOUT_MS)


def close_the_toast_and_see_no_badge(page: Page, message: str) -> None:
    toast = page.get_by_test_id("toast-text")
    expect(toast).to_contain_text(message)
    page.get_by_test_id("toast-close").click()
    expect(toast).to_have_count(0)
    page.wait_for_timeout(500)
    badges = [badge.inner_text() for badge in page.locator("[data-testid=status-tracker] .error").all()
              if badge.is_visible()]
    assert not badges, badges  # no red "Error" left on the player or the status


def saved(page: Page, path: Path) -> Path:
    page.screenshot(path=path, full_page=True)
    assert path.is_file() and path.stat().st_size > 0
    return path


def wall(folder: Path) -> Path:
    path = folder / "wall.png"
    cv2.imwrite(str(path), np.tile(np.linspace(60, 200, 320, dtype=np.uint8)[None, :, None], (240, 1, 3)))
    return path


def test_a_photo_with_text_from_a_failed_try_to_the_finished_video_at_both_widths(server, page, tmp_path):
    """The first visit: nothing looks like a second drop zone; a photo without a face shows as uploaded and fails
    with a toast that leaves no badge behind; the next try is not said to be queued, shows its progress in view,
    counting up from the click, plays in one player and ends in one MP4; the estimate then keeps the speed per
    kind of input; the page at desktop and phone widths (the screenshots in docs/)."""
    open_fast(page, server.url)
    expect(page.locator("#face-preview")).to_be_hidden()  # no empty picture box before there is a face
    expect(page.locator("#which-face")).to_be_hidden()

    upload_face(page, wall(tmp_path))
    expect(page.locator("#face-preview img")).to_be_visible()  # the photo itself, though no face is in it
    expect(page.get_by_text("No face found here")).to_be_visible()
    page.locator("#text textarea").fill("Good morning, how are you?")
    page.locator("#generate-text").click()
    toast = page.get_by_test_id("toast-text")  # where gr.Error shows
    expect(toast).to_have_class(re.compile(r"\berror\b"))
    page.wait_for_timeout(12_000)  # longer than Gradio's default toast: this one stays until closed
    expect(toast).to_be_visible()
    close_the_toast_and_see_no_badge(page, "No face was found in the image")

    upload_face(page, PORTRAIT)
    expect(page.locator("#faces-note")).to_have_text("1 face found.")
    expect(page.locator("#which-face")).to_be_visible()
    estimate = page.locator("#estimate")
    expect(estimate).to_contain_text(re.compile(r"Estimate: about \d+ s on this computer's CPU .*a first guess"))
    page.evaluate(WATCH, STAGES)
    log_start = len(server.log.read_text())
    page.locator("#generate-text").click()
    wait_for_progress(page)
    assert_in_view(page, "#status")  # the progress, without scrolling
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    seen = page.evaluate("window.seen")
    assert not seen["traceback"]
    assert seen["stages"] and seen["stages"] == sorted(seen["stages"], key=STAGES.index), seen  # shown, in order
    assert not any(words.BUSY in status for status in seen["statuses"]), seen["statuses"]  # nothing else ran
    counted = [int(found.group(1)) for status in seen["statuses"] if (found := PROGRESS.search(status))]
    assert counted and counted == sorted(counted), counted  # from the click on, never back to 0
    assert page.evaluate(PLAYERS) == 1 and page.locator("#live-preview").is_hidden()
    assert page.evaluate(SIZED_VIDEOS) == ["result"]
    src = page.evaluate(RESULT_SRC)
    assert src.startswith(server.url) and src.endswith("-lipsync.mp4")

    status = page.locator("#status")
    expect(status).to_contain_text("gTTS could not be reached, so the natural offline voice (Piper) was used")
    expect(status).to_contain_text(re.compile(r"frames at 25 fps, 300×446"))
    expect(status).to_contain_text(re.compile(r"made in \d+\.\d s, estimated \d+ s"))  # how long it took
    assert "lips moved" not in status.inner_text()
    expect(estimate).to_contain_text("at the speed of the last requests like this one")  # measured, this kind
    assert_no_traceback(page)
    assert "Traceback" not in server.log.read_text()[log_start:]  # (a gr.Error, by Gradio's default, logs one)

    for width, name in ((1280, "app.png"), (390, "app_phone.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(500)  # the layout settles
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        # the language's words whole ("English (en), natural voice"), not cut short
        assert page.locator("#language input").evaluate("(shown) => shown.scrollWidth <= shown.clientWidth")
        button = page.locator("#generate-text").bounding_box()
        player = page.locator("#result").bounding_box()
        assert 0 <= button["x"] and button["x"] + button["width"] <= width
        if width == 390:  # one column: the inputs, then the status and the player
            assert player["y"] > button["y"] + button["height"], (button, player)
        else:  # two columns: the player beside the inputs
            assert player["x"] > button["x"] + button["width"] and player["y"] < button["y"]
        saved(page, Path(SCREENSHOTS or tmp_path) / name)
    page.set_viewport_size({"width": 1280, "height": 900})

    upload_face(page, TALKING_HEAD)  # a video: it plays as uploaded, and its estimate is not the photo's speed
    face_video = page.locator("#face-video video")
    expect(face_video).to_be_visible()
    page.wait_for_function("(video) => video.readyState >= 1 && video.duration > 1", arg=face_video.element_handle())
    expect(page.locator("#faces-note")).to_have_text("1 face found.")
    expect(estimate).to_contain_text("a first guess")

    upload_face(page, wall(tmp_path))  # and a failure after a success: its error does not sit beside it
    expect(page.get_by_text("No face found here")).to_be_visible()
    page.locator("#generate-text").click()
    close_the_toast_and_see_no_badge(page, "No face was found in the image")
    expect(status).to_have_text(re.compile(r"^\s*$"))


def test_stop_on_a_phone_then_the_next_request_runs(server, phone, tmp_path):
    """On a phone the progress comes into view after the tap; a second tap is refused in words; Stop ends the
    request at once, removes its files, says so, and nothing comes back later; the next request then runs."""
    open_fast(phone, server.url)
    upload_face(phone, PORTRAIT)
    expect(phone.locator("#faces-note")).to_have_text("1 face found.")
    load_speech(phone, cut_speech(tmp_path / "s.wav", 2.5, start=2.0))  # its first second is near-silent
    work = list(server.temp_root.glob("lipsync-*"))
    results = set((server.gradio_dir / "lipsync").glob("*"))
    button = phone.locator("#generate-audio")
    button.click()
    wait_for_progress(phone)
    assert_in_view(phone, "#status")
    button.click()  # while the first runs
    expect(phone.locator("#status")).to_contain_text(words.BUSY)
    expect(phone.locator("#status")).to_contain_text(re.compile("Finding the face|Moving the lips"))
    assert list(server.temp_root.glob("lipsync-*")) != work  # it is at work
    phone.locator("#stop").click()
    expect(phone.locator("#status")).to_have_text(words.STOPPED)
    deadline = time.monotonic() + 60
    while (list(server.temp_root.glob("lipsync-*")) != work or set((server.gradio_dir / "lipsync").glob("*"))
           != results) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(server.temp_root.glob("lipsync-*")) == work  # its work folder went
    assert set((server.gradio_dir / "lipsync").glob("*")) == results  # and its upload/result folder
    phone.wait_for_timeout(3000)
    expect(phone.locator("#status")).to_have_text(words.STOPPED)  # the second tap did not come back
    expect(phone.locator("#stop")).to_be_hidden()
    assert phone.evaluate(RESULT_SRC) is None

    button.click()
    phone.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    status = phone.locator("#status")
    expect(status).to_contain_text(re.compile(r"^\s*2\.5 s, 6[23] frames at 25 fps"))
    expect(status).to_contain_text(re.compile(r"the mouth rested during the silences \(\d+ frames\)"))
    assert "voice:" not in status.inner_text()  # a recording: no text-to-speech
    assert_no_traceback(phone)


def test_the_preview_plays_while_the_video_is_made(server, page, tmp_path):
    """Four seconds of speech: long enough on 2 CPU cores that the first segments play before the last frame is
    made, in the player's place and without a download; then the complete MP4 takes that place, the preview
    gone, and it is a valid download."""
    open_fast(page, server.url)
    upload_face(page, PORTRAIT)
    expect(page.locator("#faces-note")).to_have_text("1 face found.")
    load_speech(page, cut_speech(tmp_path / "s.wav", 4.0))

    page.evaluate(WATCH, STAGES)
    page.locator("#generate-audio").click()  # the click is the user's gesture that lets the preview play with sound
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text(re.compile(r"made in \d+\.\d s"))
    page.wait_for_function("window.seen.done !== null")
    seen = page.evaluate("window.seen")
    assert seen["playing"] is not None and seen["playing"] < seen["done"], seen  # before the end
    assert not seen["preview_download"]  # the half-made video offers no download
    assert page.evaluate(PLAYERS) == 1 and page.locator("#live-preview").is_hidden()
    expect(page.locator("#result").get_by_label("Download")).to_have_count(1)
    assert_no_traceback(page)

    src = page.evaluate(RESULT_SRC)
    download = page.request.get(src)
    assert download.ok, download.status
    mp4 = tmp_path / "download.mp4"
    mp4.write_bytes(download.body())
    assert_valid_mp4(mp4, 4.0, (300, 446), 25)


def test_the_natural_voice_chosen_speaks_and_its_preview_plays_before_the_end(server, page):
    """Natural (on this machine) chosen on the Text tab: gTTS is not tried, the status names the voice, and the
    preview plays before the video is done (the render starts on the first sentence, while the rest are made)."""
    open_fast(page, server.url)
    upload_face(page, PORTRAIT)
    expect(page.locator("#faces-note")).to_have_text("1 face found.")
    page.locator("#text textarea").fill("The lamp was burning again. Nobody had touched it since the morning. "
                                        "We sat by the window and waited for the rain.")
    page.locator("#voice").get_by_label("Natural (on this machine)").check()
    page.evaluate(WATCH, STAGES)
    page.locator("#generate-text").click()
    page.wait_for_function(RESULT_SRC, timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function("window.seen.done !== null")
    seen = page.evaluate("window.seen")
    assert seen["playing"] is not None and seen["playing"] < seen["done"], seen
    status = page.locator("#status")
    expect(status).to_contain_text("voice: the natural offline voice (Piper)")
    assert "could not be reached" not in status.inner_text()
    assert_no_traceback(page)


def two_faces(folder: Path) -> Path:
    """The portrait's head twice, side by side, the right one larger: face 0 is on the right, face 1 on the left."""
    frame, (face,) = pipeline.find_faces(PORTRAIT, pipeline.LipSyncConfig(detector="haar"))
    x1, y1, x2, y2 = face.bounds(frame.shape[1], frame.shape[0])
    margin = (x2 - x1) * 6 // 10
    head = frame[max(0, y1 - margin):y2 + margin, max(0, x1 - margin):x2 + margin]
    large = cv2.resize(head, None, fx=1.3, fy=1.3)
    small = np.full_like(large, 255)
    small[:head.shape[0], :head.shape[1]] = head
    path = folder / "two.png"
    cv2.imwrite(str(path), np.hstack([small, large]))
    return path


def test_the_face_preview_lands_only_for_the_current_finder_and_a_click_picks_a_face(server, page, tmp_path):
    """A slow answer (S3FD, asked first) arriving after the quick one (Haar, asked since) does not replace it;
    the preview's faces can be chosen by a click, and their numbers are not covered by a label."""
    page.goto(server.url)  # Balanced: the accurate finder, S3FD, with random weights here: many faces
    large = tmp_path / "large.png"  # bytes no detection has seen yet, large enough that S3FD takes seconds
    cv2.imwrite(str(large), cv2.resize(cv2.imread(str(PORTRAIT)), None, fx=3, fy=3))
    upload_face(page, large)
    expect(page.locator("#face-preview")).to_contain_text("processing")  # S3FD is looking
    page.locator("#preset").get_by_label("Fast").check()
    note = page.locator("#faces-note")
    expect(note).to_have_text("1 face found.")
    tracker = page.locator("#face-preview [data-testid=status-tracker]")
    expect(tracker).to_have_class(re.compile(r"\bhide\b"), timeout=120_000)  # both answers are in
    page.wait_for_timeout(1500)
    expect(note).to_have_text("1 face found.")  # Haar's, not the 20 S3FD finds here
    page.locator("#which-face input").click()
    expect(page.get_by_role("option", name="All faces")).to_have_count(0)  # one face to choose from
    page.keyboard.press("Escape")

    upload_face(page, two_faces(tmp_path))
    expect(note).to_contain_text("2 faces found. Click a face to choose it.")
    expect(page.locator("#face-preview [data-testid=block-label]")).to_be_hidden()  # nothing over the tags
    picture = page.locator("#face-preview img")
    size = picture.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
    box = picture.bounding_box()
    scale = min(box["width"] / size[0], box["height"] / size[1])  # the picture as drawn inside the img box
    left = box["x"] + (box["width"] - size[0] * scale) / 2
    top = box["y"] + (box["height"] - size[1] * scale) / 2
    page.mouse.click(left + size[0] * 0.23 * scale, top + size[1] * 0.35 * scale)  # the small head, on the left
    expect(page.locator("#which-face input")).to_have_value("1")


def test_presets_first_the_rest_folded_and_every_choice_in_words(server, page):
    """Presets set the settings they are made of, and the settings show the preset they make; opening the
    options does not push Generate away; the examples have thumbnails by the upload, one of them a video's frame; the
    languages without an offline voice say so; the face finder mentions no download when its file is here; the
    precision speaks in words."""
    page.goto(server.url)
    generate = page.locator("#generate-text")
    examples = page.locator("#examples")
    expect(examples.locator("img")).to_have_count(3)  # the photo examples' thumbnails, and a frame of the video's
    expect(examples.locator("video")).to_have_count(0)  # no second player
    assert examples.bounding_box()["y"] < generate.bounding_box()["y"]  # near the inputs, before the button
    on_the_page = "(element) => element.getBoundingClientRect().top + window.scrollY"
    before = generate.evaluate(on_the_page)
    page.get_by_text("More options", exact=True).click()
    page.get_by_text("Advanced", exact=True).click()
    expect(page.locator("#detector")).to_be_visible()
    assert generate.evaluate(on_the_page) == before  # the options open below Generate

    page.locator("#preset").get_by_label("Fast").check()
    expect(page.locator("#detector").get_by_label("Quick (Haar)")).to_be_checked()
    expect(page.locator("#enhance").get_by_label("Off", exact=True)).to_be_checked()
    expect(page.locator("#output-size input")).to_have_value("720p")
    page.locator("#enhance").get_by_label("On", exact=True).check()  # by hand: no preset is that
    for name in ("Fast", "Balanced", "Enhanced face"):
        expect(page.locator("#preset").get_by_label(name)).not_to_be_checked()
    page.locator("#preset").get_by_label("Enhanced face").check()
    expect(page.locator("#detector").get_by_label("Accurate (S3FD)")).to_be_checked()
    expect(page.locator("#enhance").get_by_label("On", exact=True)).to_be_checked()

    detector = page.locator("#detector").inner_text()
    assert "S3FD" in detector and "download" not in detector.lower()  # its file is here
    precision = page.locator("#precision").get_by_label("Automatic", exact=True)
    expect(precision).to_be_visible()
    expect(page.get_by_text("Exact is fp32; Fast is bf16, or fp16 on a GPU")).to_be_visible()  # the names, in the hint
    for words_ in ("Exact (fp32)", "Fast (bf16)", "Fast on a GPU (fp16)"):
        expect(page.get_by_label(words_)).to_be_visible()

    page.locator("#language input").fill("Khmer")
    expect(page.get_by_role("option", name="Khmer (km), online only")).to_be_visible()
    page.locator("#language input").fill("French")
    expect(page.get_by_role("option", name="French (fr), natural voice", exact=True)).to_be_visible()
    page.keyboard.press("Escape")

    examples.get_by_text("Video, a recording").click()  # the video example: its face, a recording, on the Audio tab
    expect(page.locator("#face")).to_contain_text("talking_head")
    expect(page.locator("#audio").get_by_label("Clear")).to_be_visible()
    expect(page.locator("#generate-audio")).to_be_visible()
    expect(page.locator("#face-video video")).to_be_visible()


def test_missing_weights_are_named_once_and_clear_when_they_arrive(chromium, tmp_path, checkpoint_dir):
    """Without weights: a short banner for a visitor, the files named once each in the details for whoever runs
    the server; the options needing them say so before any click; the page polls, so files put in place after
    start-up are taken up without a reload; the one still missing (the enhancer's) is named by its setting when a
    request chooses it."""
    folder = tmp_path / "weights"
    folder.mkdir()
    with serve_app(tmp_path / "app", env={"LIPSYNC_CHECKPOINT_DIR": str(folder)}) as bare:
        context, page = new_tab(chromium)
        try:
            page.goto(bare.url)
            banner = page.locator("#weights-banner .banner")
            expect(banner).to_contain_text("Nothing can be made yet")
            assert banner.evaluate("(b) => getComputedStyle(b).backgroundColor") not in ("rgba(0, 0, 0, 0)", "")
            details = banner.locator("details")
            assert not details.evaluate("(d) => d.open")  # folded away
            short = banner.evaluate("(b) => [...b.childNodes].filter(n => n.nodeName !== 'DETAILS')"
                                    ".map(n => n.textContent).join('')")
            assert len(short) < 120 and ".pth" not in short and "/" not in short, short
            listed = [item.split()[0] for item in details.locator("li").all_text_contents()]
            assert sorted(listed) == ["gfpgan_v1.4.pth", "s3fd.pth", "wav2lip.pth", "wav2lip_gan.pth"], listed
            listing = details.text_content()
            assert "--checkpoint-dir" in listing and str(folder) in listing and "LIPSYNC" not in listing
            button = page.locator("#generate-text")
            expect(button).to_be_disabled()
            expect(button).to_contain_text("waiting for the model weights")
            expect(page.locator("#preset")).to_contain_text("Enhanced face is not available here")
            page.get_by_text("More options", exact=True).click()
            detector = page.locator("#detector")
            expect(detector).to_contain_text("Face finder: Accurate (S3FD) is not available here")
            upload_face(page, PORTRAIT)  # the default finder, S3FD, needs its file: the preview says what will do
            expect(page.locator("#faces-note")).to_have_text(
                "⚠️ “Face finder: Accurate (S3FD)” cannot be used yet: its weights are not here. Choose Fast, or the "
                "face finder Quick (Haar).")
            saved(page, tmp_path / "no_weights.png")

            for name in ("wav2lip_gan.pth", "s3fd.pth"):
                shutil.copy(checkpoint_dir / name, folder / name)
            expect(page.locator("#weights-banner")).to_be_hidden()  # no reload: the page polls
            expect(button).to_be_enabled()
            expect(button).to_have_text("Generate from text")
            expect(detector).not_to_contain_text("not available")  # S3FD's file is here now
            expect(page.locator("#enhance")).to_contain_text("Enhance the face (GFPGAN): On is not available here")

            page.locator("#preset").get_by_label("Enhanced face").check()
            page.locator("#text textarea").fill("Hello.")
            button.click()
            message = "“Enhance the face (GFPGAN): On” cannot be used: this server does not have its weights."
            close_the_toast_and_see_no_badge(page, message)
        finally:
            context.close()
        assert not page.script_errors, page.script_errors
