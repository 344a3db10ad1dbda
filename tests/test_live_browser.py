"""The Live tab as a person uses it, over its WebSocket: Chromium plays a recording as its microphone, the page
sends every sample, the portrait's frames are drawn on the canvas, Stop ends the session with its summary, and a
page that goes away in the middle ends its session on the server. The glass-to-glass latency is printed.

The latency, honestly: in the page, from the moment the microphone's own stream first carries the speech (an
analyser on the very stream the page captures, at the level the silence finder counts as sound) to the moment the
first frame with a moving mouth is drawn (the canvas's mouth region compared, as each frame is drawn, with the
still photo it shows in the silence before). The mouth starts to open fade_frames before the first speaking frame
(the fade into speech), so that lead is added back. It leaves out what no page can see: the sound card's and the
screen's own delays (a few tens of ms on a real machine; none with a fake microphone and a headless screen)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from test_browser import CHROMIUM_ARGS, chromium_path, open_fast, upload_face

from conftest import HAAR, PORTRAIT, SPEECH, run, serve_app
from lipsync import pipeline
from lipsync.speech import audio, silence

pytestmark = pytest.mark.browser

QUIET_SECONDS = 2.0  # digital silence before the speech: the mouth rests, then opens at the first word
SPEECH_SECONDS = 12.0
FPS = 25
SOUND_DBFS = silence.SILENCE_FLOOR_DBFS  # what the live session counts as sound, while the loudest is quiet
WAIT_MS = 60_000  # for each step on 2 busy cores
MOVED_LEVELS = 6.0  # mean grey-level change in the mouth's half of the face box that is a moving mouth, not JPEG
# Watches the microphone (the stream the page captures, tapped as getUserMedia hands it over) and the canvas as
# each frame is drawn: when the sound starts, and when the mouth first moves.
WATCH_LIVE = """([box, soundDbfs, movedLevels]) => {
    const watched = window.watched = {heard: null, moved: null, differences: []};
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
                watched.heard = performance.now();
                clearInterval(listen);
            }
        }, 5);
        return stream;
    };
    const [x, y, w, h] = box;
    let still = null;
    window.lipsyncLive = {onDraw: (index, canvas) => {
        const pixels = canvas.getContext('2d', {willReadFrequently: true}).getImageData(x, y, w, h).data;
        if (still === null) still = pixels.slice();
        let change = 0;
        for (let i = 0; i < pixels.length; i += 4) change += Math.abs(pixels[i + 1] - still[i + 1]);  // green
        change /= pixels.length / 4;
        if (watched.differences.length < 400) watched.differences.push(Math.round(change * 10) / 10);
        if (watched.moved === null && change >= movedLevels) watched.moved = performance.now();
    }};
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


def ended_sessions(server) -> int:
    return server.log.read_text().count("live session ended")


def test_the_portrait_speaks_live_over_the_socket_with_every_sample(tmp_path):
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
            expect(status).to_contain_text("Ready: press Start", timeout=WAIT_MS)
            page.evaluate(WATCH_LIVE, [mouth_region(), SOUND_DBFS, MOVED_LEVELS])

            page.locator("#live-start").click()
            note = page.locator("#live-note")
            expect(note).to_contain_text("Speak now", timeout=WAIT_MS)
            page.wait_for_function("window.watched.moved !== null", timeout=WAIT_MS)
            page.wait_for_timeout(1000 * (QUIET_SECONDS + SPEECH_SECONDS))  # all of it spoken
            page.locator("#live-stop").click()
            expect(note).to_contain_text("Live session ended", timeout=WAIT_MS)
            page.wait_for_function("window.lipsyncLive.stats.closed !== null")
            page.wait_for_timeout(1500)  # the last frames drawn
            watched = page.evaluate("window.watched")
            stats = page.evaluate("window.lipsyncLive.stats")
            summary = stats["summary"]

            assert stats["closed"]["code"] == 1000, stats["closed"]
            assert summary["received_samples"] == stats["sent"], (summary, stats)  # every sample sent arrived
            assert summary["seconds"] >= QUIET_SECONDS + SPEECH_SECONDS - 0.1  # and they are the whole recording
            frames = audio.frame_count(summary["seconds"], FPS)
            assert summary["frames"] == stats["received"] == stats["drawn"] == frames, (summary, stats, frames)
            # Before the speech the canvas shows the still photo (the mouth at rest), then the mouth moves.
            assert max(watched["differences"][:10]) < MOVED_LEVELS <= max(watched["differences"]), watched
            fade = silence.fade_frames(FPS) / FPS
            latency = (watched["moved"] - watched["heard"]) / 1000 + fade
            print(f"\nglass-to-glass latency: {latency:.2f} s (first moving mouth drawn {latency - fade:.2f} s "
                  f"after the first sound at the microphone, + {fade * 1000:.0f} ms of fade into speech); "
                  f"{summary['received_samples']} of {stats['sent']} samples at {stats['rate']} Hz received; "
                  f"{summary['frames']} frames sent, {stats['drawn']} drawn ({stats['late']} late restarts); "
                  f"{summary['summary']}")
            assert latency > 0.2  # no frame is made before its 212 ms of speech has come: a bound, not a target
            assert re.search(r"\d+ ms per 200 ms of speech", summary["summary"])

            # On the narrowest phone the portrait is drawn within the screen (the canvas has the photo's own size).
            page.set_viewport_size({"width": 320, "height": 800})
            page.wait_for_timeout(500)
            shown = page.locator("#live-canvas").bounding_box()
            assert shown["x"] >= 0 and shown["x"] + shown["width"] <= 320, shown
            assert page.evaluate("document.documentElement.scrollWidth") <= 320
            assert shown["height"] == pytest.approx(shown["width"] * 446 / 300, abs=2)  # not stretched
            page.set_viewport_size({"width": 1280, "height": 1000})

            # Again, and then the page goes away in the middle: its session ends on the server.
            before = ended_sessions(server)
            page.locator("#live-start").click()
            expect(note).to_contain_text("Speak now", timeout=WAIT_MS)
            page.wait_for_timeout(1000)
            page.close()
            deadline = time.monotonic() + 30
            while ended_sessions(server) == before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert ended_sessions(server) == before + 1, "a page that goes away ends its session"
        finally:
            browser.close()
