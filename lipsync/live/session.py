"""Live mode: a photo that speaks as the speech arrives. 16 kHz mono samples go in, in chunks of any size; each
25 fps frame comes out, with its stretch of the speech, as soon as its mel window is complete.

    session = LiveSession("portrait.png", LipSyncConfig())
    for chunk in microphone_chunks:          # float32 in -1..1, any length
        for frame in session.feed(chunk):    # LiveFrame: .image (BGR), .picture (I420), .audio
            show(frame.image)
    for frame in session.finish():           # the last frames, padded as a file-based generation pads them
        show(frame.image)

Frame for frame, the output equals lipsync.generate's on the same photo and speech, but for the silence threshold
(see silence.LiveSilence: under the loudest sound heard so far, not the loudest of the whole clip)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .. import models, pipeline, render, runtime
from ..config import LipSyncConfig
from ..errors import FaceError, LiveSessionError, OptionError
from ..faces import crop, track
from ..faces.boxes import FaceBox
from ..media import i420, video
from ..speech import audio
from ..speech.audio import MEL_WINDOW, N_FFT, N_MELS, SAMPLE_RATE
from ..speech.track import FrameSpeech, SpeechFrames

@dataclass
class LiveFrame:
    """One output frame and the speech that plays with it."""
    index: int
    picture: np.ndarray  # I420 (height * 3 / 2, width), as the encoder takes it; read-only where nothing was pasted
    audio: np.ndarray  # float32 samples at SAMPLE_RATE: the frame's own stretch (the last frame: to the end)
    speech_weight: float  # 1 while speaking, 0 where the mouth rests
    photo: np.ndarray = field(repr=False)  # the BGR photo, shared by every frame
    boxes: list[FaceBox] = field(repr=False)  # where mouths were pasted

    @cached_property
    def image(self) -> np.ndarray:
        """The frame as BGR: the photo itself, with the pasted faces' boxes taken from the picture."""
        image = self.photo.copy()
        height, width = image.shape[:2]
        for box in self.boxes:
            x1, y1, x2, y2 = bounds = i420.even_bounds(box.bounds(width, height), width, height)
            if x2 > x1 and y2 > y1:
                image[y1:y2, x1:x2] = i420.region_bgr(self.picture, bounds)
        return image


@dataclass
class LiveStats:
    """How long each feed() and finish() took."""
    chunks: int = 0
    frames: int = 0
    busy_seconds: float = 0.0
    max_ms: float = 0.0

    def record(self, seconds: float, frames: int) -> None:
        self.chunks += 1
        self.frames += frames
        self.busy_seconds += seconds
        self.max_ms = max(self.max_ms, 1000 * seconds)

    @property
    def mean_ms(self) -> float:
        return 1000 * self.busy_seconds / self.chunks if self.chunks else 0.0

    @property
    def frames_per_second(self) -> float:
        """Frames made per second of processing: the most this session could keep up with."""
        return self.frames / self.busy_seconds if self.busy_seconds else 0.0


@dataclass(frozen=True)
class RealTimeRun:
    """A recording fed to a live session at the pace it was spoken (see feed_in_real_time)."""
    frames: int
    speech_seconds: float
    wall_seconds: float  # from the first chunk fed to the last frame out
    busy_frames_per_second: float  # frames per second of processing: the most the session could sustain
    chunk_ms: tuple[float, ...]  # the processing time of each chunk fed
    most_behind_ms: float  # how late a chunk was taken at worst, the work before it not done in time (0: kept up)

    @property
    def sustained_frames_per_second(self) -> float:
        """Frames out per second of wall time: the speech's own 25 while the session keeps up, less when not."""
        return self.frames / self.wall_seconds

    @property
    def mean_chunk_ms(self) -> float:
        return float(np.mean(self.chunk_ms))

    @property
    def p95_chunk_ms(self) -> float:
        return float(np.percentile(self.chunk_ms, 95))

    @property
    def max_chunk_ms(self) -> float:
        return max(self.chunk_ms)


def feed_in_real_time(session: "LiveSession", samples: np.ndarray, chunk_seconds: float = 0.2) -> RealTimeRun:
    """Feed `samples` as a microphone would: each chunk of chunk_seconds once it has been spoken (at once, when the
    work on the chunks before it took longer than their speech), then finish. For the bench and the README."""
    step = max(1, round(chunk_seconds * SAMPLE_RATE))
    started = time.perf_counter()
    frames, behind, chunk_ms = 0, 0.0, []
    for start in range(0, len(samples), step):
        wait = started + min(start + step, len(samples)) / SAMPLE_RATE - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        behind = max(behind, -wait)
        fed = time.perf_counter()
        frames += len(session.feed(samples[start:start + step]))
        chunk_ms.append(1000 * (time.perf_counter() - fed))
    frames += len(session.finish())
    return RealTimeRun(frames, session.seconds, time.perf_counter() - started, session.stats.frames_per_second,
                       tuple(chunk_ms), 1000 * behind)


class LiveSession:
    """A photo's face found, cropped and encoded once; then speech in, frames out, as it arrives.

    Not thread-safe: one caller feeds a session. Face restoration is not done live (on the CPU it costs far more
    than a frame's time)."""

    def __init__(self, photo: str | os.PathLike, config: LipSyncConfig = LipSyncConfig(),
                 max_seconds: float | None = None):
        if config.enhance == "gfpgan":
            raise OptionError("Live mode does not restore faces; choose the enhance setting none or auto.")
        self.config = config
        self.max_seconds = config.max_audio_seconds if max_seconds is None else max_seconds  # None: no limit
        # The photo decoded once, as lipsync.generate decodes it (find_faces refuses what it cannot read); its faces
        # through the detection cache.
        still, faces = pipeline.find_faces(photo, config)
        if not video.is_still(photo):
            raise FaceError(f"'{Path(photo).name}' is a video; live mode needs a photo.")
        self.fps = float(video.still_rate(config.still_fps))
        self.height, self.width = still.shape[:2]
        # As lipsync.generate plans a still: a fixed box is used as given, detections are padded and chosen.
        self.boxes = faces if config.box is not None else track.plan_faces(
            [faces], config, self.fps, self.width, self.height, lambda _: "the image")[0]
        self.photo = still
        self.photo.flags.writeable = False  # shared by every frame
        self._still = i420.to_i420(still)
        self._still.flags.writeable = False
        self._crops = [crop.crop_face(still, box) for box in self.boxes]
        runner = models.load_mouth_runner(config.checkpoint, runtime.resolve(config))
        self._mouths = runner.for_still(self._crops)  # the faces' part of the network, computed once
        # Paid here, not by the first chunk: the mel basis (librosa's import, in a first process) and the
        # generator's first run.
        audio.melspectrogram(np.zeros(N_FFT, np.float32))
        self._mouths([np.full((N_MELS, MEL_WINDOW), -audio.MEL_LIMIT, np.float32)] * len(self._crops))
        self._speech = SpeechFrames(self.fps, config.keep_silence)
        self._ended = False
        self.stats = LiveStats()

    @property
    def mel(self) -> np.ndarray:
        """The mel columns made so far (all of audio.melspectrogram's, once finished)."""
        return self._speech.mel

    @property
    def seconds(self) -> float:
        """Speech received so far."""
        return self._speech.received / SAMPLE_RATE

    @property
    def lookahead_ms(self) -> float:
        """How far past a frame's own time the speech must have arrived before the frame can be made (the most,
        over the frames): the reach of its mel window's last column, or of keep_silence's look ahead."""
        return self._speech.lookahead_ms

    def feed(self, samples: np.ndarray) -> list[LiveFrame]:
        """Take the next chunk of speech (16 kHz mono, float in -1..1 or int16; any length, even empty); return the
        frames it completed, in order."""
        started = time.perf_counter()
        frames = self._frames(self._speech.add(self._checked(samples)))
        self.stats.record(time.perf_counter() - started, len(frames))
        return frames

    def finish(self) -> list[LiveFrame]:
        """The speech has ended: return the remaining frames, the last windows padded as on a whole clip."""
        started = time.perf_counter()
        if self._ended:
            return []
        self._ended = True
        frames = self._frames(self._speech.end())
        if frames:
            self.stats.record(time.perf_counter() - started, len(frames))
        return frames

    def _checked(self, samples: np.ndarray) -> np.ndarray:
        if self._ended:
            raise LiveSessionError("This live session has ended; start a new one.")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise LiveSessionError("Live speech must be mono: one channel, as a one-dimensional array of samples.")
        if samples.dtype == np.int16:
            samples = audio.from_pcm16(samples)
        elif not np.issubdtype(samples.dtype, np.floating):
            raise LiveSessionError(f"Live speech must be float samples in -1..1 or 16-bit integers, "
                                   f"not {samples.dtype}.")
        if not np.isfinite(samples).all():
            raise LiveSessionError("The live speech holds samples that are not numbers (NaN or infinite).")
        if self.max_seconds is not None and (self._speech.received + len(samples)) / SAMPLE_RATE > self.max_seconds:
            raise LiveSessionError(f"The live session has reached its limit of {self.max_seconds:g} s of speech; "
                             f"start a new one.")
        return samples.astype(np.float32)

    def _frames(self, spoken: list[FrameSpeech]) -> list[LiveFrame]:
        """The frames for these final stretches of speech, with mouths pasted as lipsync.generate pastes them."""
        lives, frames = [], []
        for part in spoken:
            boxes, crops = (self.boxes, self._crops) if part.weight > 0 else ([], [])
            lives.append(LiveFrame(part.index, self._still, part.samples, part.weight, self.photo, boxes))
            frames.append(render.Frame(self._still, boxes, crops, part.weight, part.window))
        windows = [frame.window for frame in frames for _ in frame.boxes]
        render.add_mouths(frames, windows, lambda _, windows: self._mouths(windows))
        for live, frame in zip(lives, frames):
            render.paste_mouths(frame, self.config)
            live.picture = frame.picture
        return lives
