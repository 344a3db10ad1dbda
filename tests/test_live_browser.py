"""The Live tab as a person uses it: Chromium plays a recording as its microphone, the portrait speaks it in the
page, Stop ends the session and its files go (and so does a page that goes away); the glass-to-glass latency is
measured and printed.

The latency, honestly: in the page, from the moment the microphone's own stream first carries the speech (an
analyser on the very stream Gradio records, at the level the silence finder counts as sound) to the moment the
first frame with a moving mouth is presented (the video's frames compared, as they are shown, with the still photo
it shows in the silence before). The mouth starts to open fade_frames before the first speaking frame (the fade
into speech), so that lead is added back. It leaves out what no page can see: the sound card's and the screen's own
delays (a few tens of ms on a real machine; none with a fake microphone and a headless screen)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM_ARGS, chromium_path, open_fast, upload_face

from conftest import HAAR, PORTRAIT, SPEECH, run, serve_app
from lipsync import pipeline
from lipsync.live.files import CHUNK_PREFIX
from lipsync.speech import silence

pytestmark = pytest.mark.browser

QUIET_SECONDS = 2.5  # digital silence before the speech: the mouth rests, then opens at the first word
SPEECH_SECONDS = 12.0
FPS = 25
SOUND_DBFS = silence.SILENCE_FLOOR_DBFS  # what the live session counts as sound, while the loudest is quiet
WAIT_MS = 60_000  # for each step on 2 busy cores
MOVED_LEVELS = 6.0  # mean grey-level change in the mouth's half of the face box that is a moving mouth, not x264
# Watches the microphone (the stream Gradio gets, tapped as getUserMedia hands it over) and the video's frames as
# they are presented: when the sound starts, when the mouth first moves, and how far the video has played.
WATCH_LIVE = """([box, soundDbfs, movedLevels]) => {
    const live = window.live = {heard: null, moved: null, played: 0, differences: []};
    const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
        const stream = await ask(constraints);
        const context = new AudioContext();
        const analyser = context.createAnalyser();
        analyser.fftSize = 2048;  // ~43 ms at 48 kHz: about one 25 fps frame's samples, as the silence finder reads
        context.createMediaStreamSource(stream).connect(analyser);
        const samples = new Float32Array(analyser.fftSize);
        const listen = setInterval(() => {
            analyser.getFloatTimeDomainData(samples);
            const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
            if (20 * Math.log10(Math.max(rms, 1e-8)) >= soundDbfs) {
                live.heard = performance.now();
                clearInterval(listen);
            }
        }, 5);
        return stream;
    };
    const canvas = document.createElement('canvas');
    const [x, y, w, h] = box;
    canvas.width = w; canvas.height = h;
    const draw = canvas.getContext('2d', {willReadFrequently: true});
    let still = null;
    const watch = (video) => {
        const onFrame = (now) => {
            live.played = Math.max(live.played, video.currentTime);
            draw.drawImage(video, x, y, w, h, 0, 0, w, h);
            const pixels = draw.getImageData(0, 0, w, h).data;
            if (still === null) still = pixels.slice();
            let change = 0;
            for (let i = 0; i < pixels.length; i += 4) change += Math.abs(pixels[i + 1] - still[i + 1]);  // green
            change /= pixels.length / 4;
            if (live.differences.length < 400) live.differences.push(Math.round(change * 10) / 10);
            if (live.moved === null && change >= movedLevels) live.moved = now;
            video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
    };
    const find = setInterval(() => {
        const video = document.querySelector('#live-video video');
        if (video) { clearInterval(find); watch(video); }
    }, 20);
}"""


def microphone_file(folder: Path) -> Path:
    """What Chromium plays as its microphone: a 16-bit PCM WAV (its fake capture reads that and resamples it), the
    quiet, then the shared speech from where it starts."""
    out = folder / "microphone.wav"
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-t", str(QUIET_SECONDS), "-i", "anullsrc=r=16000:cl=mono",
         "-ss", "3", "-t", str(SPEECH_SECONDS), "-i", str(SPEECH), "-filter_complex", "[0:a][1:a]concat=n=2:v=0:a=1",
         "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)])
    return out


def mouth_region() -> list[int]:
    """x, y, width, height of the lower half of the portrait's face box, where the mouth is pasted."""
    photo, boxes = pipeline.find_faces(PORTRAIT, HAAR)
    x1, y1, x2, y2 = boxes[0].bounds(photo.shape[1], photo.shape[0])
    return [x1, (y1 + y2) // 2, x2 - x1, y2 - (y1 + y2) // 2]


def session_files(server) -> list[str]:
    return sorted(path.name for path in server.temp_root.glob(f"{CHUNK_PREFIX}*"))


def gone(server, seconds: float = 30) -> bool:
    """Whether every live session's folder is gone within `seconds`."""
    deadline = time.monotonic() + seconds
    while session_files(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not session_files(server)


def test_the_portrait_speaks_live_with_the_microphone(tmp_path):
    mic = microphone_file(tmp_path)
    with serve_app(tmp_path / "app") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True,
            args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-audio-capture={mic}%noloop", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            page.set_default_timeout(WAIT_MS)
            open_fast(page, server.url)
            upload_face(page, PORTRAIT)
            expect(page.get_by_text("1 face found.")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("tab", name="Live").click()
            status = page.locator("#live-status")
            # The face found and encoded and the model loaded, as the tab opens.
            expect(status).to_contain_text("Ready: press Record", timeout=WAIT_MS)
            page.evaluate(WATCH_LIVE, [mouth_region(), SOUND_DBFS, MOVED_LEVELS])

            page.locator("#live-mic").get_by_role("button", name="Record").click()
            recording = time.monotonic()
            expect(status).to_contain_text("Speak now", timeout=WAIT_MS)
            page.wait_for_function("window.live.moved !== null && window.live.played > 1", timeout=70_000)
            assert session_files(server), "a running session keeps its latest chunk in a folder of its own"
            page.wait_for_timeout(2_000)  # more of it plays
            watched = page.evaluate("window.live")
            recorded = time.monotonic() - recording
            page.locator("#live-mic").get_by_role("button", name="Stop").click()
            expect(status).to_contain_text("Live session ended", timeout=WAIT_MS)
            summary = status.inner_text()

            assert watched["heard"] is not None, watched
            assert watched["played"] > 1, watched  # frames arrive and play (a busy player may skip some)
            # Before the speech the video shows the still photo (the mouth at rest), then the mouth moves.
            assert max(watched["differences"][:10]) < MOVED_LEVELS <= max(watched["differences"]), watched
            fade = silence.fade_frames(FPS) / FPS
            latency = (watched["moved"] - watched["heard"]) / 1000 + fade
            spoken = float(re.search(r"([\d.]+) s of speech", summary).group(1))
            skipped = re.search(r"([\d.]+) s more skipped", summary)
            arrived = spoken + (float(skipped.group(1)) if skipped else 0.0)
            print(f"\nglass-to-glass latency: {latency:.2f} s (first moving mouth on screen {latency - fade:.2f} s "
                  f"after the first sound at the microphone, + {fade * 1000:.0f} ms of fade into speech); "
                  f"{arrived:.1f} s of speech reached the server in {recorded:.1f} s of recording; {summary}")
            assert latency > 0.2  # no frame is made before its 212 ms of speech has come: a bound, not a target

            assert gone(server), "Stop removes the session's files (once the player's stream has read the last)"

            # Again, and then the page goes away in the middle: that removes them too.
            page.locator("#live-mic").get_by_role("button", name="Record").click()
            expect(status).to_contain_text("Speak now", timeout=WAIT_MS)
            deadline = time.monotonic() + 60
            while not session_files(server) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert session_files(server)
            page.close()
            assert gone(server), "a page that goes away takes its session's files with it"
        finally:
            browser.close()
