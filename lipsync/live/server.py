"""Live sessions over a WebSocket (the messages: lipsync.live.wire): single-use tokens for sessions made by the
app, and for each socket a thread that feeds its speech, all of it, to the session and sends each frame back as
soon as it is made. `LiveSockets.serve` is a Starlette WebSocket endpoint; the app mounts it on its own port."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import queue
import secrets
import socket
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Iterator

import cv2
import numpy as np
import soxr
from starlette.websockets import WebSocketDisconnect

from ..errors import LiveSessionError
from ..media import i420
from ..speech import audio
from ..speech.audio import SAMPLE_RATE
from . import wire
from .session import LiveFrame, LiveSession

log = logging.getLogger(__name__)
TOKEN_SECONDS = 60.0  # a token not used by then has expired
HELLO_SECONDS = 10.0  # for the first message after the socket opens
SEND_SECONDS = 10.0  # for a message to leave
SEND_POLL_SECONDS = 0.05
REMEMBERED_TOKENS = 1000  # used and expired tokens kept, to tell them from unknown ones
# Speech is fed to the session once it holds this many frames' worth (or more, when the server fell behind): the
# model takes about 21 ms a frame one at a time on 2 cores, 11 ms in fours; it costs at most 3 frames' wait.
FEED_FRAMES = 4
_END, _STOP = object(), object()


class LiveSockets:
    """The live sessions of one server: at most `max_sessions` waiting for their socket or running."""

    def __init__(self, max_sessions: int, token_seconds: float = TOKEN_SECONDS):
        self.max_sessions = max_sessions
        self.token_seconds = token_seconds
        self._waiting: dict[str, tuple[LiveSession, float]] = {}  # token -> (session, when it expires)
        self._spent: OrderedDict[str, str] = OrderedDict()  # token -> "used" or "expired"
        self._running: set[_Feeder] = set()
        self._lock = threading.Lock()

    def counts(self) -> tuple[int, int]:
        """Sessions waiting for their socket, and running."""
        with self._lock:
            self._expire()
            return len(self._waiting), len(self._running)

    def busy_message(self) -> str | None:
        """Why one more session cannot start now, or None."""
        waiting, running = self.counts()
        return self._busy() if waiting + running >= self.max_sessions else None

    def open(self, session: LiveSession) -> str:
        """A single-use token for the session, valid for token_seconds."""
        with self._lock:
            self._expire()
            if len(self._waiting) + len(self._running) >= self.max_sessions:
                raise LiveSessionError(self._busy())
            token = secrets.token_urlsafe(24)
            self._waiting[token] = (session, time.monotonic() + self.token_seconds)
            return token

    def _busy(self) -> str:
        sessions = f"{self.max_sessions} live session{'s are' if self.max_sessions != 1 else ' is'}"
        return f"The live tab is busy: {sessions} running, the most this server takes at once. Try again soon."

    def cancel(self, token: str) -> None:
        """A token its page will not use (the page has gone)."""
        with self._lock:
            if self._waiting.pop(token, None) is not None:
                self._remember(token, "expired")

    def _take(self, token: str) -> LiveSession:
        with self._lock:
            self._expire()
            waiting = self._waiting.pop(token, None)
            if waiting is not None:
                self._remember(token, "used")
                return waiting[0]
            spent = self._spent.get(token)
        if spent == "used":
            raise LiveSessionError("This live session's token has been used already: press Start again.")
        if spent == "expired":
            raise LiveSessionError(f"This live session's token has expired (it is good for {self.token_seconds:g} s): "
                                   f"press Start again.")
        raise LiveSessionError("This live session's token is unknown here: start the session from the app.")

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [token for token, (_, ends) in self._waiting.items() if ends < now]:
            del self._waiting[token]
            self._remember(token, "expired")

    def _remember(self, token: str, how: str) -> None:
        self._spent[token] = how
        while len(self._spent) > REMEMBERED_TOKENS:
            self._spent.popitem(last=False)

    async def serve(self, websocket) -> None:
        """One socket, from its first message to its close (a Starlette WebSocket endpoint)."""
        await websocket.accept()
        loop = asyncio.get_running_loop()
        try:
            hello = await asyncio.wait_for(websocket.receive(), HELLO_SECONDS)
        except asyncio.TimeoutError:
            return await _close(websocket, wire.CLOSE_REFUSED, "No token came: send {\"token\", \"rate\"} first.")
        if hello["type"] == "websocket.disconnect":
            return
        try:
            token, rate = _hello(hello)
            session = self._take(token)
        except _Refused as exc:
            return await _close(websocket, exc.code, str(exc))
        except LiveSessionError as exc:
            return await _close(websocket, wire.CLOSE_REFUSED, str(exc))

        closing = threading.Event()

        def send(data: bytes | str) -> None:
            """From the feeder's thread: wait until the message has left, unless the socket is closing or a client
            has stopped reading."""
            sent = asyncio.run_coroutine_threadsafe(
                websocket.send_bytes(data) if isinstance(data, bytes) else websocket.send_text(data), loop)
            deadline = time.monotonic() + SEND_SECONDS
            while True:
                try:
                    return sent.result(SEND_POLL_SECONDS)
                except concurrent.futures.TimeoutError:
                    if closing.is_set() or time.monotonic() > deadline:
                        sent.cancel()
                        raise LiveSessionError("The live socket stopped taking frames.") from None

        feeder = _Feeder(session, rate, send)
        with self._lock:
            self._running.add(feeder)
        try:
            feeder.start()
            refused = await _receive_speech(websocket, feeder, rate)
            if refused is None:  # ended by the client: the last frames and the summary first
                await loop.run_in_executor(None, feeder.join)
                refused = (wire.CLOSE_FAILED, f"The live session failed: {feeder.error}") if feeder.error else None
        finally:
            closing.set()
            feeder.stop()
            await loop.run_in_executor(None, feeder.join)
            with self._lock:
                self._running.discard(feeder)
            log.info("live session ended: %d samples received at %d Hz, %d frames sent", feeder.received, rate,
                     feeder.frames_sent)
        if refused is not None:
            await _close(websocket, *refused)
        else:
            await _close(websocket, wire.CLOSE_DONE, "")


@contextmanager
def local_server(sockets: LiveSockets) -> Iterator[str]:
    """The socket alone, served on a free local port from a thread until the block ends: its app's address (for
    the bench and the tests; the app mounts it on its own server)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[WebSocketRoute(wire.SOCKET_PATH, sockets.serve)]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="lipsync-live-server", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise LiveSessionError("The local live server did not start.")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _Refused(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code


def _hello(message: dict) -> tuple[str, int]:
    text = message.get("text")
    if text is None:
        raise _Refused(wire.CLOSE_WRONG_TYPE, "The first message must be text: {\"token\": ..., \"rate\": ...}.")
    try:
        hello = json.loads(text)
        token, rate = hello["token"], hello["rate"]
    except (ValueError, KeyError, TypeError):
        raise _Refused(wire.CLOSE_WRONG_TYPE, "The first message must be JSON: {\"token\": ..., \"rate\": ...}.")
    if not isinstance(token, str) or not isinstance(rate, int) or not wire.MIN_RATE <= rate <= wire.MAX_RATE:
        raise _Refused(wire.CLOSE_WRONG_TYPE, f"The token must be text and the rate a whole number of samples a "
                                              f"second from {wire.MIN_RATE} to {wire.MAX_RATE}.")
    return token, rate


async def _receive_speech(websocket, feeder: "_Feeder", rate: int) -> tuple[int, str] | None:
    """Speech messages to the feeder until the client's end (None), or why the socket is to close (code, reason;
    a client gone has nothing to be told, and gets (CLOSE_DONE, ""))."""
    most = 2 * -(-rate * wire.MAX_MESSAGE_MS // 1000)
    started = None
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return wire.CLOSE_DONE, ""
        if feeder.finished.is_set():  # its time limit: what it sent is spoken, the rest is not taken
            return None
        data, text = message.get("bytes"), message.get("text")
        if text is not None:
            try:
                ended = json.loads(text) == {"type": "end"}
            except ValueError:
                ended = False
            if not ended:
                return wire.CLOSE_WRONG_TYPE, "Speech comes as binary messages; the only text is {\"type\": \"end\"}."
            feeder.put(_END)
            return None
        if len(data) > most:
            return wire.CLOSE_TOO_BIG, (f"A message held {len(data) / 2 / rate * 1000:.0f} ms of speech; the most is "
                                        f"{wire.MAX_MESSAGE_MS} ms.")
        if len(data) % 2:
            return wire.CLOSE_WRONG_TYPE, "Speech is 16-bit PCM: a message's length must be even."
        now = time.monotonic()
        started = now if started is None else started
        ahead = (feeder.received + len(data) // 2) / rate - (now - started)
        if ahead > wire.REALTIME_SLACK_SECONDS:
            return wire.CLOSE_REFUSED, (f"The speech came faster than it is spoken ({ahead:.1f} s ahead of the "
                                        f"clock): send it as it is captured.")
        feeder.received += len(data) // 2
        feeder.put(data)


async def _close(websocket, code: int, text: str) -> None:
    try:
        await websocket.close(code, wire.reason(text))
    except (RuntimeError, WebSocketDisconnect):
        pass  # closed already: the client went


class _Feeder(threading.Thread):
    """One socket's session: all its speech, resampled as one stream, fed as it comes; each frame sent as soon as
    it is made. When it is busy, the speech that queued meanwhile goes in at once (bigger batches, no loss)."""

    def __init__(self, session: LiveSession, rate: int, send: Callable[[bytes | str], None]):
        super().__init__(name="lipsync-live-socket", daemon=True)
        self.session = session
        self.send = send
        self.received = 0  # samples taken, at the client's rate
        self.frames_sent = 0
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._speech: queue.SimpleQueue = queue.SimpleQueue()
        self._resampler = (soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32") if rate != SAMPLE_RATE
                           else None)
        self._regions_shown = False  # whether the last frame sent had pasted regions
        self._unfed = np.zeros(0, np.float32)  # resampled, waiting for FEED_FRAMES frames' worth
        self.busy_seconds = 0.0  # making frames and their messages, not waiting to send them

    def put(self, item) -> None:
        self._speech.put(item)

    def stop(self) -> None:
        self._speech.put(_STOP)

    def run(self) -> None:
        try:
            self._send_start()
            while not self.finished.is_set():
                items = [self._speech.get()]
                while not self._speech.empty():
                    items.append(self._speech.get())
                if _STOP in items:
                    return
                self._feed(b"".join(item for item in items if isinstance(item, bytes)), ended=_END in items)
        except Exception as exc:  # the socket gone while sending, or the session failed: the handler says it
            self.error = exc
            log.warning("live session stopped: %s", exc)
        finally:
            self.finished.set()

    def _send_start(self) -> None:
        session = self.session
        self.send(json.dumps({"type": "ready", "fps": session.fps, "width": session.width, "height": session.height,
                              "sample_rate": SAMPLE_RATE, "lookahead_ms": session.lookahead_ms, "image": "jpeg",
                              "quality": wire.JPEG_QUALITY}))
        self.send(wire.PHOTO + _jpeg(session.photo))

    def _feed(self, pcm: bytes, ended: bool) -> None:
        started = time.perf_counter()
        session = self.session
        samples = audio.from_pcm16(np.frombuffer(pcm, "<i2"))
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=ended)
        samples = np.concatenate([self._unfed, samples])
        if not ended and len(samples) < FEED_FRAMES * SAMPLE_RATE / session.fps:
            self._unfed = samples
            return
        self._unfed = samples[:0]
        room = None if session.max_seconds is None else round(session.max_seconds * SAMPLE_RATE) - round(
            session.seconds * SAMPLE_RATE)
        limited = room is not None and len(samples) >= room
        frames = session.feed(samples[:room] if limited else samples)
        if ended or limited:
            frames += session.finish()
        messages = [self._frame_message(frame) for frame in frames]
        self.busy_seconds += time.perf_counter() - started
        for message in messages:
            self.send(message)
            self.frames_sent += 1
        if ended or limited:
            self._send_end(limited)
            self.finished.set()

    def _frame_message(self, frame: LiveFrame) -> bytes:
        pasted = bool(frame.boxes)
        regions = []
        if pasted or self._regions_shown:  # a mouth, or the photo back where the last one was
            height, width = self.session.height, self.session.width
            for box in self.session.boxes:
                x1, y1, x2, y2 = bounds = i420.even_bounds(box.bounds(width, height), width, height)
                if x2 > x1 and y2 > y1:
                    regions.append(wire.Region(x1, y1, x2 - x1, y2 - y1, _jpeg(i420.region_bgr(frame.picture,
                                                                                                 bounds))))
        self._regions_shown = pasted
        return wire.pack_frame(frame.index, regions, audio.to_pcm16(frame.audio))

    def _send_end(self, limited: bool) -> None:
        session = self.session
        stats = session.stats
        per_chunk = 200 * self.busy_seconds / session.seconds if session.seconds else 0.0
        limit = f" It reached its limit of {session.max_seconds:g} s." if limited else ""
        summary = (f"Live session ended: {session.seconds:.1f} s of speech, {stats.frames} frames; making them took "
                   f"{per_chunk:.0f} ms per 200 ms of speech, and a frame waits for {session.lookahead_ms:.0f} ms of "
                   f"speech after it.{limit}")
        self.send(json.dumps({"type": "end", "received_samples": self.received, "frames": self.frames_sent,
                              "seconds": session.seconds, "busy_ms_per_200ms": per_chunk, "summary": summary}))


def _jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, wire.JPEG_QUALITY])
    if not ok:
        raise LiveSessionError("A live frame could not be encoded as JPEG.")
    return encoded.tobytes()
