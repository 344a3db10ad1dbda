"""A running app's live socket from Python: a photo and speech in (a recording, or any iterator of sample chunks,
such as a TTS engine's output), frames out as soon as they are made. The messages: lipsync.live.wire.

    from lipsync.live.client import speak

    for frame in speak("http://127.0.0.1:7860", "portrait.png", "speech.wav"):
        cv2.imshow("live", frame.image)  # BGR; frame.audio: its 16 kHz samples
        cv2.waitKey(1)
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from ..errors import LiveSessionError
from ..pipeline import work_dir
from ..speech import audio
from . import wire

SEND_AHEAD_SECONDS = 0.3  # how far ahead of the clock the speech is sent (within the server's slack)
OPEN_SECONDS = 30.0


@dataclass(frozen=True)
class ReceivedFrame:
    index: int
    image: np.ndarray  # BGR, the whole frame
    audio: np.ndarray  # int16 at the summary's sample rate (16 kHz): the frame's own stretch of speech


@dataclass(frozen=True)
class Summary:
    """The server's last message."""
    received_samples: int  # at the rate the client sent
    frames: int
    seconds: float
    busy_ms_per_200ms: float  # the server's processing time per 200 ms of speech
    text: str


def socket_url(app_url: str) -> str:
    """The app's live socket: ws(s):// on the app's own host, port and root."""
    parts = urlsplit(app_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise LiveSessionError(f"'{app_url}' is not the address of an app (http://host:port).")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + wire.SOCKET_PATH, "", ""))


def start(app_url: str, photo: str | os.PathLike, **settings: Any) -> str:
    """A session on the app for the photo (and its options, by the API's names): its single-use token."""
    from gradio_client import Client, handle_file

    token, _status = Client(app_url, verbose=False).predict(handle_file(os.fspath(photo)), **settings,
                                                            api_name="/start_live")
    return token


class LiveClient:
    """One session's socket: speech sent at the pace it is spoken, frames received as they come."""

    def __init__(self, app_url: str, token: str, ahead_seconds: float = SEND_AHEAD_SECONDS):
        self.url = socket_url(app_url)
        self.token = token
        self.ahead_seconds = ahead_seconds  # 0: exactly as a microphone gives it
        self.summary: Summary | None = None
        self.sent_samples = 0
        self.sent: list[tuple[float, int]] = []  # (time.monotonic(), samples sent so far) after each message

    def stream(self, chunks: Iterable[np.ndarray], rate: int) -> Iterator[ReceivedFrame]:
        """Send the chunks (int16, or float in -1..1, mono at `rate`) as they come, never faster than real time,
        then the end; yield each frame as it arrives. LiveSessionError with the server's reason if it refuses."""
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=OPEN_SECONDS, max_size=None) as socket:
            socket.send(json.dumps({"token": self.token, "rate": rate}))
            sender = threading.Thread(target=self._send, args=(socket, chunks, rate), daemon=True)
            sender.start()
            shown = None  # the picture as the frames so far have drawn it
            try:
                for message in socket:
                    if isinstance(message, str):
                        parsed = json.loads(message)
                        if parsed["type"] == "end":
                            self.summary = Summary(parsed["received_samples"], parsed["frames"], parsed["seconds"],
                                                   parsed["busy_ms_per_200ms"], parsed["summary"])
                    elif message[:1] == wire.PHOTO:
                        shown = cv2.imdecode(np.frombuffer(message, np.uint8, offset=1), cv2.IMREAD_COLOR)
                    else:
                        frame = wire.unpack_frame(message)
                        shown = _drawn(shown, frame)
                        yield ReceivedFrame(frame.index, shown, frame.samples)
            except ConnectionClosed:
                pass
            finally:
                sender.join(timeout=5)
            closed = socket.close_code
            if closed not in (None, wire.CLOSE_DONE):
                raise LiveSessionError(socket.close_reason or f"The live socket closed ({closed}).")

    def _send(self, socket, chunks: Iterable[np.ndarray], rate: int) -> None:
        from websockets.exceptions import ConnectionClosed

        step = max(1, round(wire.MESSAGE_SECONDS * rate))
        started = time.monotonic()
        try:
            for chunk in chunks:
                pcm = _pcm(chunk)
                for start in range(0, len(pcm), step):
                    part = pcm[start:start + step]
                    due = (self.sent_samples + len(part)) / rate - (time.monotonic() - started) - self.ahead_seconds
                    if due > 0:  # not before it has been spoken
                        time.sleep(due)
                    socket.send(part.tobytes())
                    self.sent_samples += len(part)
                    self.sent.append((time.monotonic(), self.sent_samples))
            socket.send(json.dumps({"type": "end"}))
        except ConnectionClosed:
            pass  # the server closed it: the receiving side says why


def speak(app_url: str, photo: str | os.PathLike, speech: str | os.PathLike | Iterable[np.ndarray],
          rate: int = audio.SAMPLE_RATE, **settings: Any) -> Iterator[ReceivedFrame]:
    """The photo speaking `speech` (a recording in any format the app takes, or chunks at `rate`) on the app at
    app_url, live: each frame as it arrives."""
    token = start(app_url, photo, **settings)
    if isinstance(speech, (str, os.PathLike)):
        with work_dir() as work:
            samples = audio.load_speech(speech, work, None).samples
        speech, rate = [samples], audio.SAMPLE_RATE
    yield from LiveClient(app_url, token).stream(speech, rate)


def _pcm(chunk: np.ndarray) -> np.ndarray:
    chunk = np.asarray(chunk)
    return chunk.astype("<i2", copy=False) if chunk.dtype == np.int16 else audio.to_pcm16(chunk)


def _drawn(shown: np.ndarray | None, frame: wire.FrameMessage) -> np.ndarray:
    """The picture so far with the frame's regions drawn over it (a new image: the last one stays as it was)."""
    if shown is None:
        raise LiveSessionError("A frame came before the photo.")
    if not frame.regions:
        return shown
    image = shown.copy()
    for region in frame.regions:
        pixels = cv2.imdecode(np.frombuffer(region.jpeg, np.uint8), cv2.IMREAD_COLOR)
        image[region.y:region.y + region.height, region.x:region.x + region.width] = pixels
    return image

