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
from ..speech import audio, silence
from ..speech.audio import HOP_LENGTH, MEL_WINDOW, N_FFT, N_MELS, SAMPLE_RATE

# The new mel columns are cut from audio.melspectrogram of the speech from this many hops before them: enough that
# neither its first sample (which the pre-emphasis leaves unfiltered) nor its left reflect padding reaches them.
CONTEXT_HOPS = 3
LOOKAHEAD_SPAN = 100  # frames over which the lookahead is measured: more than one period of any frame rate's pattern


class SampleBuffer:
    """The recent stretch of a stream of samples, addressed by position in the whole stream."""

    def __init__(self):
        self.samples = np.zeros(0, np.float32)
        self.offset = 0  # the position of samples[0]

    @property
    def end(self) -> int:
        """Samples received so far."""
        return self.offset + len(self.samples)

    def append(self, samples: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, samples])

    def since(self, start: int) -> np.ndarray:
        return self.samples[start - self.offset:]

    def between(self, start: int, end: int) -> np.ndarray:
        """Samples start..end-1, zeros past the end of the stream."""
        part = self.samples[start - self.offset:end - self.offset]
        return np.pad(part, (0, end - start - len(part)))

    def keep_from(self, start: int) -> None:
        """Forget the samples before `start`."""
        drop = min(max(0, start - self.offset), len(self.samples))
        self.samples, self.offset = self.samples[drop:], self.offset + drop


def mel_samples_needed(column: int) -> int:
    """Samples needed before mel column `column` is final: its window ends N_FFT / 2 past its centre, and
    column 0's left padding reflects samples 1..N_FFT / 2."""
    return max(column * HOP_LENGTH + N_FFT // 2, N_FFT // 2 + 1)


class MelStream:
    """audio.melspectrogram of the speech so far, extended by the columns each new chunk makes final: the same
    numbers (to float rounding), with work bounded by the chunk plus CONTEXT_HOPS hops."""

    def __init__(self):
        self._mel = np.zeros((N_MELS, 0), np.float32)  # grown by doubling; the first `columns` are filled
        self.columns = 0

    @property
    def mel(self) -> np.ndarray:
        return self._mel[:, :self.columns]

    @property
    def keeps_from(self) -> int:
        """The first sample the next update reads."""
        return max(0, self.columns - CONTEXT_HOPS) * HOP_LENGTH

    def update(self, buffer: SampleBuffer, ended: bool = False) -> None:
        """Add the columns that are final now; once the speech has ended, the rest, whose windows reach past its
        end into the reflect padding, exactly as on the whole clip."""
        received = buffer.end
        if ended:
            target = 1 + received // HOP_LENGTH  # the column count of a centred STFT
        else:
            target = 0 if received < mel_samples_needed(0) else (received - N_FFT // 2) // HOP_LENGTH + 1
        first = max(0, self.columns - CONTEXT_HOPS)
        if target <= self.columns or (not ended and received - first * HOP_LENGTH < N_FFT):
            return  # (the very first columns wait for a whole STFT window: librosa warns on less)
        new = audio.melspectrogram(buffer.since(first * HOP_LENGTH))[:, self.columns - first:target - first]
        if target > self._mel.shape[1]:
            grown = np.zeros((N_MELS, max(target, 2 * self._mel.shape[1])), np.float32)
            grown[:, :self.columns] = self.mel
            self._mel = grown
        self._mel[:, self.columns:target] = new
        self.columns = target


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
        self._hop = SAMPLE_RATE / self.fps
        self._buffer = SampleBuffer()
        self._mel = MelStream()
        self._silence = silence.LiveSilence(self.fps) if config.keep_silence else None
        self._next = 0  # the next frame to hand out
        self._ended = False
        self.stats = LiveStats()

    @property
    def mel(self) -> np.ndarray:
        """The mel columns made so far (all of audio.melspectrogram's, once finished)."""
        return self._mel.mel

    @property
    def seconds(self) -> float:
        """Speech received so far."""
        return self._buffer.end / SAMPLE_RATE

    @property
    def lookahead_ms(self) -> float:
        """How far past a frame's own time the speech must have arrived before the frame can be made (the most,
        over the frames): the reach of its mel window's last column, or of keep_silence's look ahead."""
        return max(self._samples_needed(i) - self._frame_start(i) for i in range(LOOKAHEAD_SPAN)) / SAMPLE_RATE * 1000

    def feed(self, samples: np.ndarray) -> list[LiveFrame]:
        """Take the next chunk of speech (16 kHz mono, float in -1..1 or int16; any length, even empty); return the
        frames it completed, in order."""
        started = time.perf_counter()
        chunk = self._checked(samples)
        self._buffer.append(chunk)
        self._mel.update(self._buffer)
        frames = self._frames_ready()
        self.stats.record(time.perf_counter() - started, len(frames))
        return frames

    def finish(self) -> list[LiveFrame]:
        """The speech has ended: return the remaining frames, the last windows padded as on a whole clip."""
        started = time.perf_counter()
        if self._ended:
            return []
        self._ended = True
        if self._buffer.end == 0:
            return []
        self._mel.update(self._buffer, ended=True)
        frames = self._frames_ready(last_frame=audio.frame_count(self.seconds, self.fps) - 1)
        self.stats.record(time.perf_counter() - started, len(frames))
        return frames

    def _checked(self, samples: np.ndarray) -> np.ndarray:
        if self._ended:
            raise LiveSessionError("This live session has ended; start a new one.")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise LiveSessionError("Live speech must be mono: one channel, as a one-dimensional array of samples.")
        if samples.dtype == np.int16:
            samples = samples / np.float32(32768)
        elif not np.issubdtype(samples.dtype, np.floating):
            raise LiveSessionError(f"Live speech must be float samples in -1..1 or 16-bit integers, "
                                   f"not {samples.dtype}.")
        if not np.isfinite(samples).all():
            raise LiveSessionError("The live speech holds samples that are not numbers (NaN or infinite).")
        if self.max_seconds is not None and (self._buffer.end + len(samples)) / SAMPLE_RATE > self.max_seconds:
            raise LiveSessionError(f"The live session has reached its limit of {self.max_seconds:g} s of speech; "
                             f"start a new one.")
        return samples.astype(np.float32)

    def _frame_start(self, index: int) -> int:
        return int(index * self._hop)

    def _samples_needed(self, index: int) -> int:
        """Samples needed before frame `index` is final while the speech goes on."""
        window_end = int(audio.MEL_FRAMES_PER_SECOND * index / self.fps) + MEL_WINDOW - 1
        needed = mel_samples_needed(window_end)
        if self._silence is not None:
            needed = max(needed, self._level_samples_needed(index + self._silence.ahead))
        return needed

    def _level_samples_needed(self, index: int) -> int:
        return self._frame_start(index) + int(self._hop) + 1  # silence.frame_levels reads one sample more

    def _frames_ready(self, last_frame: int | None = None) -> list[LiveFrame]:
        """The frames that are final now: while the speech goes on, those whose speech has all arrived (and which
        the clip will have, however it ends); once it has ended, all up to last_frame."""
        received = self._buffer.end
        ready = []
        while self._is_final(self._next, received, last_frame):
            ready.append(self._next)
            self._next += 1
        if self._silence is not None:
            self._measure_levels(ready[-1] + self._silence.ahead if ready else -1, last_frame)
        frames = [self._frame(index, last_frame) for index in ready]
        self._add_mouths(frames)
        self._buffer.keep_from(min(self._mel.keeps_from, self._frame_start(self._next),
                                   self._frame_start(self._silence.measured) if self._silence else received))
        return [live for live, _ in frames]

    def _is_final(self, index: int, received: int, last_frame: int | None) -> bool:
        if last_frame is not None:
            return index <= last_frame
        return self._samples_needed(index) <= received and index < audio.frame_count(received / SAMPLE_RATE, self.fps)

    def _measure_levels(self, up_to: int, last_frame: int | None) -> None:
        """Levels of the frames up to `up_to` (not past the clip's last frame, once it has ended)."""
        if last_frame is not None:
            up_to = min(up_to, last_frame)
        first = self._silence.measured
        if up_to >= first:
            frames = np.arange(first, up_to + 1)
            self._silence.add_levels(silence.frame_levels(self._buffer.samples, self.fps, frames, self._buffer.offset))

    def _frame(self, index: int, last_frame: int | None) -> tuple[LiveFrame, render.Frame]:
        weight = 1.0 if self._silence is None else self._silence.weight(index, last_frame)
        end = self._frame_start(index + 1)
        if index == last_frame:
            end = max(end, self._buffer.end)
        sound = self._buffer.between(self._frame_start(index), end)
        boxes, crops = (self.boxes, self._crops) if weight > 0 else ([], [])
        live = LiveFrame(index, self._still, sound, weight, self.photo, boxes)
        return live, render.Frame(self._still, boxes, crops, weight)

    def _add_mouths(self, frames: list[tuple[LiveFrame, render.Frame]]) -> None:
        """Mouths for the frames with faces, pasted as lipsync.generate pastes them."""
        windows = [audio.mel_window(self._mel.mel, self.fps, live.index)
                   for live, frame in frames for _ in frame.boxes]
        render.add_mouths([frame for _, frame in frames], windows, lambda _, windows: self._mouths(windows))
        for live, frame in frames:
            render.paste_mouths(frame, self.config)
            live.picture = frame.picture
