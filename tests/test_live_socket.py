"""The live socket on a server of its own in this process: speech in at the pace it is spoken, every frame back
with its sound, nothing lost; bad messages close only their own socket, with a sentence; a socket closed mid-stream
leaves nothing behind."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soxr
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import HAAR, PORTRAIT, SPEECH, SPEECH_ONSET
from lipsync import LiveSession
from lipsync.errors import LiveSessionError
from lipsync.live import wire
from lipsync.live.client import LiveClient, socket_url
from lipsync.live.server import LiveSockets, local_server
from lipsync.speech import audio

CLIENT_RATE = 44_100  # not the session's 16 kHz: the server resamples it as one stream


@dataclass
class Served:
    sockets: LiveSockets
    url: str

    def session(self) -> str:
        return self.sockets.open(LiveSession(PORTRAIT, HAAR, max_seconds=30))


@pytest.fixture(scope="module")
def served():
    sockets = LiveSockets(max_sessions=3)
    with local_server(sockets) as url:
        yield Served(sockets, url)


def speech_at(rate: int, seconds: float) -> np.ndarray:
    samples = audio.load_speech(SPEECH, Path(tempfile.gettempdir()), None).samples
    start = int(SPEECH_ONSET * audio.SAMPLE_RATE)
    return soxr.resample(samples[start:start + int(seconds * audio.SAMPLE_RATE)], audio.SAMPLE_RATE, rate)


def feeder_threads() -> list[str]:
    return [thread.name for thread in threading.enumerate() if thread.name == "lipsync-live-socket"]


def test_speech_over_the_socket_comes_back_as_every_frame_with_its_sound(served):
    samples = speech_at(CLIENT_RATE, 3.0)
    session = LiveSession(PORTRAIT, HAAR, max_seconds=30)
    client = LiveClient(served.url, served.sockets.open(session))
    frames = list(client.stream(np.array_split(samples, 7), CLIENT_RATE))  # chunks of any size
    summary = client.summary
    assert summary.received_samples == client.sent_samples == len(samples)  # nothing dropped
    expected = audio.frame_count(summary.seconds, 25)
    assert [frame.index for frame in frames] == list(range(expected)) == list(range(summary.frames))
    assert summary.seconds == pytest.approx(3.0, abs=0.01)
    heard = np.concatenate([frame.audio for frame in frames])
    assert abs(len(heard) - summary.seconds * audio.SAMPLE_RATE) <= 1  # each frame's stretch, all of it
    photo = session.photo
    assert all(frame.image.shape == photo.shape for frame in frames)
    changed = [float(np.abs(frame.image.astype(int) - photo).mean()) for frame in frames]
    assert min(changed) > 0.5  # a mouth pasted in every frame: speech throughout (random weights: garbage)
    assert summary.text.startswith("Live session ended: 3.0 s of speech")
    assert served.sockets.counts() == (0, 0)


def refused(url: str, messages: list, expected_code: int, expected: str) -> None:
    with connect(socket_url(url)) as socket:
        for message in messages:
            try:
                socket.send(message)
            except Exception:
                break  # closed under us: its reason says why
        try:
            for _ in socket:
                pass
        except ConnectionClosed:
            pass  # closed with an error code: checked below
    assert socket.close_code == expected_code, (socket.close_code, socket.close_reason)
    assert expected in socket.close_reason, socket.close_reason


def test_bad_messages_close_only_their_socket_with_a_sentence(served, monkeypatch):
    samples = speech_at(16_000, 4.0)
    good = LiveClient(served.url, served.session())
    frames: list = []
    streaming = threading.Thread(target=lambda: frames.extend(good.stream([samples], 16_000)))
    streaming.start()
    hello = lambda token, rate=16_000: json.dumps({"token": token, "rate": rate})  # noqa: E731
    refused(served.url, [b"\x00\x01"], wire.CLOSE_WRONG_TYPE, "The first message must be text")
    refused(served.url, ["{not json"], wire.CLOSE_WRONG_TYPE, "must be JSON")
    refused(served.url, [hello("x", 5)], wire.CLOSE_WRONG_TYPE, "from 8000 to 192000")
    refused(served.url, [hello("no-such-token")], wire.CLOSE_REFUSED, "token is unknown here")
    token = served.session()
    refused(served.url, [hello(token), json.dumps({"type": "end"})], wire.CLOSE_DONE, "")
    refused(served.url, [hello(token)], wire.CLOSE_REFUSED, "has been used already")
    monkeypatch.setattr(served.sockets, "token_seconds", 0.1)
    token = served.session()
    time.sleep(0.3)
    refused(served.url, [hello(token)], wire.CLOSE_REFUSED, "has expired")
    monkeypatch.undo()
    refused(served.url, [hello(served.session()), bytes(2 * 1600)], wire.CLOSE_TOO_BIG, "held 100 ms of speech")
    refused(served.url, [hello(served.session()), bytes(3)], wire.CLOSE_WRONG_TYPE, "length must be even")
    refused(served.url, [hello(served.session()), "hello"], wire.CLOSE_WRONG_TYPE, "the only text is")
    refused(served.url, [hello(served.session()), *[bytes(2 * 640)] * 75], wire.CLOSE_REFUSED,
            "faster than it is spoken")
    streaming.join()
    assert len(frames) == good.summary.frames == 100  # the good session went on to its end
    assert good.summary.received_samples == len(samples)
    time.sleep(0.5)
    assert served.sockets.counts() == (0, 0) and not feeder_threads()


def test_one_session_more_than_the_limit_is_told_the_tab_is_busy(served):
    tokens = [served.session() for _ in range(3)]
    with pytest.raises(LiveSessionError, match=r"^The live tab is busy: 3 live sessions are running"):
        served.session()
    for token in tokens:
        served.sockets.cancel(token)
    assert served.sockets.counts() == (0, 0)


def test_a_socket_closed_mid_stream_leaves_nothing_behind(served):
    token = served.session()
    # (frames queue unread here: without a bound, so that the client's close is not held up behind them)
    with connect(socket_url(served.url), max_queue=None) as socket:
        socket.send(json.dumps({"token": token, "rate": 16_000}))
        for start in range(0, 16_000, 320):  # 1 s of speech at its pace, frames coming back
            socket.send(bytes(640))
            time.sleep(0.02)
        assert served.sockets.counts() == (0, 1) and feeder_threads()
    deadline = time.monotonic() + 10
    while (served.sockets.counts() != (0, 0) or feeder_threads()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.sockets.counts() == (0, 0) and not feeder_threads()


def test_the_client_rate_is_resampled_to_16_khz_as_one_stream(served):
    """48 kHz in 20 ms messages gives, frame by frame, what resampling the whole recording at once gives (to the
    last bit of 16-bit rounding): no seams at the messages' edges."""
    tone = np.round(0.5 * np.sin(2 * np.pi * 440 * np.arange(96_000) / 48_000) * 32767).astype(np.int16)
    client = LiveClient(served.url, served.session())
    heard = np.concatenate([frame.audio for frame in client.stream([tone], 48_000)]).astype(int)
    whole = np.round(soxr.resample(tone.astype(np.float32) / 32768, 48_000, 16_000) * 32767).astype(int)
    assert len(heard) == len(whole) == 32_000
    assert np.abs(heard - whole).max() <= 1


def test_a_session_that_runs_out_of_time_ends_with_its_summary(served):
    """--live-seconds: the speech up to the limit is spoken, then the session ends by itself and leaves nothing."""
    client = LiveClient(served.url, served.sockets.open(LiveSession(PORTRAIT, HAAR, max_seconds=1.0)))
    frames = list(client.stream([speech_at(16_000, 2.5)], 16_000))
    assert len(frames) == client.summary.frames == 25 and client.summary.seconds == pytest.approx(1.0)
    assert client.summary.text.endswith("It reached its limit of 1 s.")
    time.sleep(0.5)
    assert served.sockets.counts() == (0, 0) and not feeder_threads()
