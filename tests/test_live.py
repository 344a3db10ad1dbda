"""Live mode: speech fed in chunks of any size gives the frames a file-based generation gives, on time, with its
audio joined without gaps; the mouth rests in silences; the mel made chunk by chunk is the offline mel."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import cv2
import numpy as np
import pytest

from conftest import HAAR, PORTRAIT, SPEECH, assert_valid_mp4, cut_speech
from lipsync import LipSyncConfig, LiveSession, generate
from lipsync.errors import LiveSessionError, NoFaceError
from lipsync.live.files import speak_file
from lipsync.live.session import feed_in_real_time
from lipsync.media import encode, i420
from lipsync.nets.mouths import StillMouths
from lipsync.speech import audio, silence
from ui import live as live_tab

SECONDS = 4.0  # of the shared speech, from where it starts: 100 frames, 20 turns of the 5-frame mel pattern
RATE = audio.SAMPLE_RATE
FPS = 25


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> np.ndarray:
    folder = tmp_path_factory.mktemp("live-speech")
    return audio.load_speech(cut_speech(folder / "speech.wav", SECONDS), folder, 120).samples


@contextmanager
def recording_windows() -> Iterator[list[np.ndarray]]:
    """The mel windows the generator is given, in order: the random test weights hardly let the speech change the
    mouth, so the frames alone would not show a window given to the wrong frame."""
    windows: list[np.ndarray] = []
    generate_mouths = StillMouths.__call__

    def recorded(self, mels):
        windows.extend(mels)
        return generate_mouths(self, mels)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StillMouths, "__call__", recorded)
        yield windows


@pytest.fixture(scope="module")
def offline(tmp_path_factory) -> dict:
    """lipsync.generate on the same photo and speech: its frames as they go into the encoder (I420; the MP4 is lossy
    H.264, and its decoded frames would compare x264's noise, not the frames), and the generator's mel windows."""
    folder = tmp_path_factory.mktemp("live-offline")
    clip = cut_speech(folder / "speech.wav", SECONDS)
    frames: list[np.ndarray] = []

    class Recording(encode.Encoder):
        def write(self, frame: np.ndarray) -> None:
            frames.append(frame.copy())
            super().write(frame)

    with pytest.MonkeyPatch.context() as patch, recording_windows() as windows:
        patch.setattr(encode, "Encoder", Recording)
        result = generate(PORTRAIT, folder / "out.mp4", audio_path=clip, config=HAAR)
    assert result.frames == len(frames) == len(windows) == audio.frame_count(SECONDS, FPS)
    return {"frames": frames, "windows": np.stack(windows)}


def fed(session: LiveSession, samples: np.ndarray, sizes) -> list:
    """Every frame of the session fed `samples` in chunks of the given sizes (cycled), then finished."""
    frames, start, sizes = [], 0, list(sizes)
    for chunk in range(len(samples)):
        if start >= len(samples):
            break
        size = sizes[chunk % len(sizes)]
        frames += session.feed(samples[start:start + size])
        start += size
    return frames + session.finish()


@pytest.mark.parametrize("chunk_ms", [20, 100, 480])
def test_chunked_speech_gives_the_file_based_frames(speech, offline, chunk_ms):
    """Every frame, the padded last ones included (finish pads as the whole clip is padded)."""
    session = LiveSession(PORTRAIT, HAAR)
    with recording_windows() as windows:
        frames = fed(session, speech, [chunk_ms * RATE // 1000])
    offline_mel = audio.melspectrogram(speech)
    assert session.mel.shape == offline_mel.shape
    assert np.abs(session.mel - offline_mel).max() < 1e-5
    assert np.abs(np.stack(windows) - offline["windows"]).max() < 1e-5  # each frame got its own window
    assert [frame.index for frame in frames] == list(range(len(offline["frames"])))
    differences = [int(np.abs(frame.picture.astype(int) - expected).max())
                   for frame, expected in zip(frames, offline["frames"])]
    assert max(differences) <= 1, differences  # bf16 (where native) in other batch sizes rounds a little apart
    still = i420.to_i420(session.photo)
    assert all(not np.array_equal(frame.picture, still) for frame in frames)  # a mouth was pasted in each


def test_frames_keep_time_with_the_speech_and_give_it_back_whole(monkeypatch, tmp_path):
    """30 s fed in chunks the size a microphone gives (20-250 ms, irregular). The generator is replaced by a grey
    mouth here: which frames come out when, and their audio, do not depend on it (the test above checks mouths)."""
    monkeypatch.setattr(StillMouths, "__call__", lambda self, mels: np.full((len(mels), 96, 96, 3), 128.0, np.float32))
    speech = audio.load_speech(SPEECH, tmp_path, 120).samples[:30 * RATE + 123]  # not a whole number of frames
    session = LiveSession(PORTRAIT, HAAR)
    sizes = np.random.default_rng(0).integers(20, 250, size=len(speech) // 320) * RATE // 1000
    frames, start = [], 0
    for size in sizes:
        if start >= len(speech):
            break
        frames += session.feed(speech[start:start + size])
        start += size
        # Every frame whose speech has arrived (but for the lookahead) is out, and none ahead of its speech.
        behind_ms = session.seconds * 1000 - len(frames) * 1000 / FPS
        assert 0 <= behind_ms <= session.lookahead_ms + 1000 / FPS, (session.seconds, len(frames))
    frames += session.finish()
    assert [frame.index for frame in frames] == list(range(audio.frame_count(len(speech) / RATE, FPS)))
    assert all(len(frame.audio) == RATE // FPS for frame in frames[:-1])
    joined = np.concatenate([frame.audio for frame in frames])
    assert np.array_equal(joined[:len(speech)], speech) and not joined[len(speech):].any()
    assert session.stats.frames == len(frames) and session.stats.chunks > 100
    assert 0 < session.stats.mean_ms <= session.stats.max_ms


def test_speech_fed_at_the_pace_it_was_spoken(monkeypatch, speech):
    """The bench's live rows: 2 s of speech fed a 200 ms chunk at a time, each once it has been spoken."""
    monkeypatch.setattr(StillMouths, "__call__", lambda self, mels: np.full((len(mels), 96, 96, 3), 128.0, np.float32))
    session = LiveSession(PORTRAIT, HAAR)
    started = time.monotonic()
    run = feed_in_real_time(session, speech[:2 * RATE], chunk_seconds=0.2)
    assert time.monotonic() - started >= run.wall_seconds >= 2.0  # no chunk is taken before it has been spoken
    assert run.frames == 2 * FPS and run.speech_seconds == 2.0 and len(run.chunk_ms) == 10
    assert run.sustained_frames_per_second <= FPS + 1  # (the finish's last frames come at once)
    assert 0 < run.mean_chunk_ms <= run.p95_chunk_ms <= run.max_chunk_ms and run.most_behind_ms >= 0
    assert run.busy_frames_per_second == session.stats.frames_per_second > 0


def test_the_mouth_rests_in_a_silence(speech):
    speaking = speech[:RATE]
    samples = np.concatenate([speaking, np.zeros(3 * RATE // 2, np.float32), speaking])
    session = LiveSession(PORTRAIT, HAAR)
    frames = fed(session, samples, [3200])
    weights = np.array([frame.speech_weight for frame in frames])
    resting = [frame for frame in frames if 30 <= frame.index < 58]  # well inside the silence, past the fade
    assert weights[:20].min() == 1.0 and weights[-10:].min() == 1.0
    assert all(frame.speech_weight == 0 for frame in resting)
    for frame in resting:
        assert np.array_equal(frame.image, session.photo)
        assert np.array_equal(frame.picture, i420.to_i420(session.photo))
    talking = frames[10]
    assert not np.array_equal(talking.image, session.photo)
    # Outside the pasted face's box the frame is the photo itself.
    size = session.width, session.height
    x1, y1, x2, y2 = i420.even_bounds(session.boxes[0].bounds(*size), *size)
    outside = np.ones(session.photo.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(talking.image[outside], session.photo[outside])
    assert 0 < weights[25:30].max() and weights[25:30].min() < 1  # faded into the silence, not cut
    assert session.lookahead_ms == pytest.approx((15 * audio.HOP_LENGTH + audio.N_FFT / 2) / RATE * 1000)


def test_live_silence_is_the_offline_silence_once_the_loudest_is_heard():
    """With the loudest sound at the start, the causal threshold is the offline one: the weights, made frame by
    frame from a bounded window of levels, must then equal silence.speech_weights (the whole clip's) exactly."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        count = int(rng.integers(2, 90))
        loudness = np.where(rng.random(count) < 0.5, 1e-4, 0.2)
        loudness[0] = 0.5
        samples = (np.repeat(loudness, RATE // FPS) * rng.standard_normal(count * RATE // FPS)).astype(np.float32)
        samples = samples[:len(samples) - int(rng.integers(0, 600))]
        n_frames = audio.frame_count(len(samples) / RATE, FPS)
        expected = silence.speech_weights(samples, FPS, n_frames)
        live = silence.LiveSilence(FPS)
        levels = silence.frame_levels(samples, FPS, np.arange(n_frames))
        weights = []
        for index in range(n_frames):
            needed = min(index + live.ahead, n_frames - 1) + 1
            live.add_levels(levels[live.measured:needed + int(rng.integers(0, 3))])
            weights.append(live.weight(index, n_frames - 1))
        assert np.array_equal(np.array(weights, np.float32), expected)


def test_a_photo_without_a_face_is_refused(tmp_path):
    sky = tmp_path / "sky.png"
    gradient = np.linspace(90, 230, 400, dtype=np.uint8)[:, None, None].repeat(300, 1).repeat(3, 2)
    cv2.imwrite(str(sky), gradient)
    with pytest.raises(NoFaceError, match="No face was found in the image"):
        LiveSession(sky, HAAR)


def test_a_session_past_its_time_limit_is_refused():
    session = LiveSession(PORTRAIT, HAAR, max_seconds=1.0)
    quiet = np.zeros(RATE // 2, np.float32)  # the limit is on time, whatever is said
    session.feed(quiet)
    with pytest.raises(LiveSessionError, match=r"reached its limit of 1 s of speech; start a new one\."):
        session.feed(np.zeros(RATE // 2 + 1, np.float32))
    assert len(session.feed(quiet)) > 0 and session.seconds == 1.0  # up to the limit is fine
    session.finish()
    with pytest.raises(LiveSessionError, match="has ended"):
        session.feed(quiet)
    with pytest.raises(LiveSessionError, match="mono"):
        LiveSession(PORTRAIT, HAAR).feed(np.zeros((2, 100), np.float32))


def test_a_recording_spoken_through_a_live_session_to_an_mp4(tmp_path):
    clip = cut_speech(tmp_path / "speech.wav", 2.0)
    stats = speak_file(PORTRAIT, clip, tmp_path / "live.mp4", HAAR, chunk_seconds=0.2)
    assert stats.frames == audio.frame_count(2.0, FPS)
    assert_valid_mp4(tmp_path / "live.mp4", 2.0, size=(300, 446), fps=FPS)


# ---------------------------------------------------------------- the page's side of a live session

def test_on_zerogpu_a_live_session_runs_on_the_cpu(monkeypatch):
    """A GPU slot held for a whole live session would mostly wait for speech: on ZeroGPU the Space's CPU speaks."""
    defaults = LipSyncConfig(device="auto", enhance="gfpgan")
    monkeypatch.setattr(live_tab.SpacesConfig, "zero_gpu", False)
    assert live_tab.live_config({"detector": "haar"}, defaults) == defaults.replace(detector="haar", enhance="none")
    monkeypatch.setattr(live_tab.SpacesConfig, "zero_gpu", True)
    assert live_tab.live_config({"detector": "haar"}, defaults).device == "cpu"
