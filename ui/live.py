"""The page's Live tab: the chosen photo speaks with the microphone's voice as you talk.

Two of Gradio's own streams per session. The microphone's (`.stream`, a chunk every ~0.1 s) only queues what it
hears: Gradio keeps just the newest chunk of a stream while its function runs, so that function must return at
once or speech is lost. The page's watch (a generator, started by the record button) takes whatever speech has
queued since its last turn, makes its frames with a live session (lipsync.LiveSession) and hands them to a
streaming video as one short H.264 + ALAC MP4 chunk, which plays them with that speech: the slower the server, the
longer the chunks (up to MAX_BEHIND_SECONDS; older speech is skipped). At most `sessions` pages speak live at once,
each for at most `seconds`; a session's files are removed when it ends or its page goes away.
"""

from __future__ import annotations

import io
import queue
import shutil
import tempfile
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr
import numpy as np
import soxr
from spaces.config import Config as SpacesConfig

from lipsync import LipSyncConfig, LipSyncError, LiveSession, options
from lipsync.live.files import CHUNK_PREFIX, encode_chunk
from lipsync.live.session import LiveFrame
from lipsync.speech import audio

LIVE_SECONDS = 120
LIVE_SESSIONS = 2
MIC_EVERY = 0.1  # seconds between the microphone's chunks (what Gradio 6's page sends, whatever is asked)
WATCH_POLL = 0.05  # how long the watch waits for more speech when none has queued
# A server slower than speech would fall further behind with every chunk: speech queued longer than this is skipped
# (the oldest part), so the portrait stays about this far behind the voice at worst, and the mouth skips instead.
MAX_BEHIND_SECONDS = 1.0
# Frames held back until a chunk has this many: Gradio encodes the stream's AAC itself, and its encoder gives its
# first frame only after three frames' worth of sound (at 16 kHz); a first chunk with less made it wait 2 s.
MIN_CHUNK_FRAMES = 6
CONCURRENCY_ID = "live"  # its own queue: the other tabs' requests never wait behind a live session
ELEMENT_IDS = {"mic": "live-mic", "video": "live-video", "status": "live-status"}


@dataclass(frozen=True)
class Limits:
    """The launch options: how long one session may last, and how many may run at once."""
    seconds: float = LIVE_SECONDS
    sessions: int = LIVE_SESSIONS


def live_config(chosen: dict[str, Any], defaults: LipSyncConfig) -> LipSyncConfig:
    """The page's options for a live session. Never face restoration (it takes far longer than a frame), and on
    ZeroGPU the Space's CPU: a GPU slot held for a whole session would be held mostly waiting for speech."""
    config = options.to_config(chosen, defaults).replace(enhance="none")
    return config.replace(device="cpu") if SpacesConfig.zero_gpu else config


def read_chunk(path: str) -> tuple[int, np.ndarray]:
    """A microphone chunk as the page uploads it, a WAV: (its rate, its samples as mono float in -1..1). Read to
    the end of the file, whatever its header says: the page puts the recording's first header on every chunk it
    sends, so the sizes there are the first chunk's, not this one's."""
    data = Path(path).read_bytes()
    try:
        with wave.open(io.BytesIO(data)) as reader:
            rate, channels, width = reader.getframerate(), reader.getnchannels(), reader.getsampwidth()
    except (wave.Error, EOFError) as exc:
        raise LipSyncError("The microphone's sound could not be read; start again.") from exc
    if width not in (2, 4):
        raise LipSyncError(f"The microphone gave {8 * width}-bit sound; live mode takes 16 or 32 bits.")
    start = data.find(b"data", 12) + 8  # the samples, past their chunk's id and size
    samples = np.frombuffer(data, f"<i{width}", (len(data) - start) // (channels * width) * channels, start)
    mono = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return rate, mono / np.float32(2 ** (8 * width - 1))


class Speaker:
    """One page's live session: the microphone's speech queued as it comes, and turned into video chunks, each
    from all the speech queued since the last, in a folder of its own (only the latest chunk is kept: the player's
    stream has read the one before by the time the next is asked for)."""

    def __init__(self):
        self.session: LiveSession | None = None  # made once the page's watch runs
        self.folder: Path | None = None  # made with the first chunk
        self.closed = threading.Event()
        self._heard: queue.SimpleQueue = queue.SimpleQueue()
        self._rate: int | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._chunks = 0
        self._frames: list[LiveFrame] = []  # made, not yet in a chunk
        self.skipped_seconds = 0.0
        self._lock = threading.Lock()  # the page's Stop may come while a chunk is being made

    def hear(self, rate: int, samples: np.ndarray) -> None:
        """From the microphone's stream: queued, nothing more (it must return at once)."""
        if self.session is not None and not self.closed.is_set():
            self._heard.put((rate, samples))

    def next_chunk(self) -> Path | None:
        """The video of the frames completed by the speech queued since the last call (None until there are
        MIN_CHUNK_FRAMES; it waits a moment for speech when none has queued)."""
        with self._lock:
            if self.closed.is_set():
                return None
            samples = self._take_heard()
            if samples is None:
                return None
            self._frames += self.session.feed(samples)
            if len(self._frames) < MIN_CHUNK_FRAMES:
                return None
            frames, self._frames = self._frames, []
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix=CHUNK_PREFIX))
            for old in self.folder.iterdir():
                old.unlink()
            self._chunks += 1
            return encode_chunk(frames, self.folder / f"chunk{self._chunks:05d}.mp4", self.session.fps)

    def _take_heard(self) -> np.ndarray | None:
        """All the speech queued, at 16 kHz: resampled as one stream, so the chunks join without seams."""
        try:
            parts = [self._heard.get(timeout=WATCH_POLL)]
        except queue.Empty:
            return None
        while not self._heard.empty():
            parts.append(self._heard.get())
        if self._rate is None:
            self._rate = parts[0][0]
            if self._rate != audio.SAMPLE_RATE:
                self._resampler = soxr.ResampleStream(self._rate, audio.SAMPLE_RATE, 1, dtype="float32")
        if any(rate != self._rate for rate, _ in parts):
            raise LipSyncError("The microphone changed its sample rate during the session; start again.")
        samples = np.concatenate([samples for _, samples in parts])
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        keep = round(MAX_BEHIND_SECONDS * audio.SAMPLE_RATE)
        self.skipped_seconds += max(0, len(samples) - keep) / audio.SAMPLE_RATE
        return samples[-keep:]

    def remove_files(self) -> None:
        """Once the player's stream is done with the last chunk (or its page is gone)."""
        self.closed.set()
        with self._lock:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)

    def summary(self) -> str:
        if self.session is None:
            return ""
        stats = self.session.stats
        skipped = f" ({self.skipped_seconds:.1f} s more skipped to keep up)" if self.skipped_seconds else ""
        return (f"Live session ended: {self.session.seconds:.1f} s of speech{skipped}, {stats.frames} frames, in "
                f"{stats.chunks} chunks; making a chunk's frames took {stats.mean_ms:.0f} ms on average (at most "
                f"{stats.max_ms:.0f} ms), and a frame waits for {self.session.lookahead_ms:.0f} ms of speech "
                f"after it.")


class LiveSessions:
    """Per page (Gradio session): the live session it speaks to, and one made ahead for its next recording."""

    def __init__(self):
        self._speakers: dict[str, Speaker] = {}
        self._ready: dict[str, tuple[tuple, LiveSession]] = {}  # made for (photo, config)
        self._lock = threading.Lock()

    def running(self) -> int:
        return sum(speaker.session is not None for speaker in list(self._speakers.values()))

    def speaker(self, key: str) -> Speaker | None:
        return self._speakers.get(key)

    def start(self, key: str) -> Speaker:
        """A new speaker for the page, in place of any it had."""
        speaker = Speaker()
        with self._lock:
            stale = self._speakers.pop(key, None)
            self._speakers[key] = speaker
        if stale is not None:
            stale.closed.set()
        return speaker

    def keep_ready(self, key: str, made_for: tuple, session: LiveSession) -> None:
        with self._lock:
            self._ready[key] = (made_for, session)

    def take_ready(self, key: str, made_for: tuple) -> LiveSession | None:
        """The session made ahead for this page, if it was made for this photo and these options."""
        with self._lock:
            ready = self._ready.pop(key, None)
        return ready[1] if ready is not None and ready[0] == made_for else None

    def end(self, key: str, speaker: Speaker | None = None, forget: bool = False) -> None:
        """Close the page's speaker (only if it is still `speaker`, when given): its watch ends, and removes its
        files. With forget (the page is gone) they are removed now, and the session made ahead goes too."""
        with self._lock:
            if speaker is None or self._speakers.get(key) is speaker:
                speaker = self._speakers.pop(key, None)
            if forget:
                self._ready.pop(key, None)
        if speaker is not None:
            speaker.closed.set()
            if forget:
                speaker.remove_files()


class LiveTab:
    def __init__(self, defaults: LipSyncConfig, limits: Limits):
        self.defaults, self.limits = defaults, limits
        self.sessions = LiveSessions()

    def _new_session(self, face: str | None, config: LipSyncConfig) -> LiveSession:
        if not face:
            raise LipSyncError("Upload a photo first (at the top), then press Record.")
        return LiveSession(face, config, max_seconds=self.limits.seconds)

    def prepare(self, face: str | None, request: gr.Request, **chosen) -> str:
        """On opening the tab: the photo's face found and encoded and the model loaded, before anyone speaks."""
        if not face:
            return "Upload a photo first (at the top), then press Record and speak."
        config = live_config(chosen, self.defaults)
        try:
            session = self._new_session(face, config)
        except LipSyncError as exc:
            return f"⚠️ {exc}"
        self.sessions.keep_ready(request.session_hash, (face, config), session)
        return "Ready: press Record and speak."

    def begin(self, face: str | None, request: gr.Request) -> str:
        """On the record button, at once: the page's speaker, and what happens next or why it waits."""
        busy = self.sessions.running() >= self.limits.sessions
        self.sessions.start(request.session_hash)
        if not face:
            return "⚠️ Upload a photo first (at the top), then press Record."
        if busy:
            return (f"⏳ Busy: {self.limits.sessions} live sessions are running, the most this server takes at once. "
                    f"Yours starts as soon as one ends (each lasts at most {self.limits.seconds:g} s).")
        return "⏳ Starting…"

    def hear(self, chunk: str | None, request: gr.Request) -> None:
        """The microphone's stream: each chunk queued for the page's watch."""
        speaker = self.sessions.speaker(request.session_hash)
        if chunk is not None and speaker is not None:  # (none after Stop: its last chunk comes late)
            speaker.hear(*read_chunk(chunk))

    def watch(self, face: str | None, request: gr.Request, **chosen) -> Iterator[tuple]:
        """The session itself, from the record button to Stop, the time limit or the page's end: yields updates
        of [video, status], a chunk of video whenever frames are made."""
        key = request.session_hash
        speaker = self.sessions.speaker(key)
        if speaker is None or speaker.closed.is_set():  # stopped while it waited for its turn
            return
        try:
            config = live_config(chosen, self.defaults)
            speaker.session = self.sessions.take_ready(key, (face, config)) or self._new_session(face, config)
            yield gr.skip(), (f"🎙️ Speak now: the photo follows your voice, for at most "
                              f"{self.limits.seconds:g} s. Press Stop to end.")
            ends = time.monotonic() + self.limits.seconds
            while not speaker.closed.is_set() and time.monotonic() < ends:
                made = speaker.next_chunk()
                if made is not None:
                    yield str(made), gr.skip()
        except LipSyncError as exc:
            raise gr.Error(str(exc), duration=None, print_exception=False) from None
        finally:
            self.sessions.end(key, speaker)
            speaker.remove_files()
        yield gr.skip(), speaker.summary()

    def stop(self, request: gr.Request) -> None:
        """The Stop button: the watch sees its speaker closed and ends with the session's summary."""
        self.sessions.end(request.session_hash)

    def forget(self, request: gr.Request) -> None:
        """The page has gone: whatever it had, removed."""
        self.sessions.end(request.session_hash, forget=True)


def build(defaults: LipSyncConfig, limits: Limits = Limits()) -> Callable[..., LiveTab]:
    """The Live tab, inside the page's Tabs; returns what wires its events once the page's options exist: the
    photo is the page's face, the options its options panel's."""
    tab = LiveTab(defaults, limits)
    with gr.Tab("Live", id="live") as live:
        gr.Markdown(f"Press **Record** and speak: the photo above speaks with your voice as you talk, a second or so "
                    f"behind (at most {limits.seconds:g} s a session). You hear yourself with it; mute the player, "
                    f"or use headphones, to talk undisturbed.")
        mic = gr.Audio(sources=["microphone"], streaming=True, type="filepath", label="Your voice",
                       elem_id=ELEMENT_IDS["mic"])
        portrait = gr.Video(label="Speaking live", streaming=True, autoplay=True, interactive=False, height=480,
                            elem_id=ELEMENT_IDS["video"])
        status = gr.Markdown(elem_id=ELEMENT_IDS["status"])

    def wire(demo: gr.Blocks, face: gr.File, controls: dict[str, gr.components.Component]) -> LiveTab:
        live.select(tab.prepare, face, status, inputs_kwargs=controls, api_name=False, concurrency_limit=1,
                    concurrency_id="live-prepare", show_progress="minimal")
        mic.start_recording(tab.begin, face, status, queue=False, api_name=False, show_progress="hidden").then(
            tab.watch, face, [portrait, status], inputs_kwargs=controls, concurrency_limit=limits.sessions,
            concurrency_id=CONCURRENCY_ID, api_name=False, show_progress="hidden")
        # Bounded, as the sessions are; each of these only queues speech, so it needs next to nothing.
        mic.stream(tab.hear, mic, None, stream_every=MIC_EVERY, time_limit=limits.seconds,
                   concurrency_limit=2 * limits.sessions, concurrency_id="live-mic", api_name=False,
                   show_progress="hidden")
        mic.stop_recording(tab.stop, None, None, queue=False, api_name=False, show_progress="hidden")
        demo.unload(tab.forget)
        return tab

    return wire
