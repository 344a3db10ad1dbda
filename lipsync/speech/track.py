"""The speech a render follows frame by frame: whole (a recording, known at once) or growing (a text spoken
sentence by sentence while the video is made, or a live voice). For each output frame: its speech weight, its mel
window and its stretch of samples, once they are final."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import AudioError
from ..media.encode import PcmSpeech
from . import audio, silence
from .audio import HOP_LENGTH, MEL_WINDOW, N_FFT, N_MELS, SAMPLE_RATE

# The new mel columns are cut from audio.melspectrogram of the speech from this many hops before them: enough that
# neither its first sample (which the pre-emphasis leaves unfiltered) nor its left reflect padding reaches them.
CONTEXT_HOPS = 3
LOOKAHEAD_SPAN = 100  # frames over which the lookahead is measured: more than one period of any frame rate's pattern
# A growing speech's producer makes its next part only when the render is within this much speech of the end of
# what is made: ahead enough that the render never waits, near enough that synthesis does not take the cores the
# first frames need.
MADE_AHEAD_SECONDS = 2.0


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
        self._mel[:, self.columns:target] = new  # columns already given out are never written again
        self.columns = target


@dataclass(frozen=True)
class FrameSpeech:
    """One output frame's part of the speech."""
    index: int
    weight: float  # how much of the generated mouth shows: 1 while speaking, fading to 0 in silences
    window: np.ndarray  # its (N_MELS, MEL_WINDOW) mel window
    samples: np.ndarray | None  # its own stretch of speech (the last frame: to the end); None where not kept


class SpeechFrames:
    """Frames of a speech that arrives in chunks, each given out once it is final: its mel window complete, and
    (with keep_silence) its weight known, by silence.LiveSilence's rule (under the loudest sound heard so far,
    not the loudest of the whole clip). Otherwise the same numbers as a whole clip's. One caller at a time."""

    def __init__(self, fps: float, keep_silence: bool):
        self.fps = fps
        self._hop = SAMPLE_RATE / fps
        self._buffer = SampleBuffer()
        self._mel = MelStream()
        self._silence = silence.LiveSilence(fps) if keep_silence else None
        self._next = 0  # the next frame to give out
        self.ended = False

    @property
    def mel(self) -> np.ndarray:
        """The mel columns made so far (all of audio.melspectrogram's, once ended)."""
        return self._mel.mel

    @property
    def received(self) -> int:
        return self._buffer.end

    @property
    def frames(self) -> int:
        """Frames given out so far: the clip's frame count once it has ended."""
        return self._next

    @property
    def lookahead_ms(self) -> float:
        """How far past a frame's own time the speech must have arrived before the frame is final (the most, over
        the frames): the reach of its mel window's last column, or of keep_silence's look ahead."""
        return max(self._samples_needed(i) - self._frame_start(i) for i in range(LOOKAHEAD_SPAN)) / SAMPLE_RATE * 1000

    def add(self, samples: np.ndarray) -> list[FrameSpeech]:
        """Take the next float32 samples (any length); return the frames they made final, in order."""
        self._buffer.append(samples)
        self._mel.update(self._buffer)
        return self._ready()

    def end(self) -> list[FrameSpeech]:
        """The speech has ended: the remaining frames, the last windows padded as on a whole clip."""
        if self.ended:
            return []
        self.ended = True
        if self._buffer.end == 0:
            return []
        self._mel.update(self._buffer, ended=True)
        return self._ready(last_frame=audio.frame_count(self._buffer.end / SAMPLE_RATE, self.fps) - 1)

    def _frame_start(self, index: int) -> int:
        return int(index * self._hop)

    def _samples_needed(self, index: int) -> int:
        window_end = int(audio.MEL_FRAMES_PER_SECOND * index / self.fps) + MEL_WINDOW - 1
        needed = mel_samples_needed(window_end)
        if self._silence is not None:
            needed = max(needed, self._level_samples_needed(index + self._silence.ahead))
        return needed

    def _level_samples_needed(self, index: int) -> int:
        return self._frame_start(index) + int(self._hop) + 1  # silence.frame_levels reads one sample more

    def _ready(self, last_frame: int | None = None) -> list[FrameSpeech]:
        received = self._buffer.end
        ready = []
        while self._is_final(self._next, received, last_frame):
            ready.append(self._next)
            self._next += 1
        if self._silence is not None:
            self._measure_levels(ready[-1] + self._silence.ahead if ready else -1, last_frame)
        made = [self._frame(index, last_frame) for index in ready]
        self._buffer.keep_from(min(self._mel.keeps_from, self._frame_start(self._next),
                                   self._frame_start(self._silence.measured) if self._silence else received))
        return made

    def _is_final(self, index: int, received: int, last_frame: int | None) -> bool:
        if last_frame is not None:
            return index <= last_frame
        return self._samples_needed(index) <= received and index < audio.frame_count(received / SAMPLE_RATE, self.fps)

    def _measure_levels(self, up_to: int, last_frame: int | None) -> None:
        if last_frame is not None:
            up_to = min(up_to, last_frame)
        first = self._silence.measured
        if up_to >= first:
            frames = np.arange(first, up_to + 1)
            self._silence.add_levels(silence.frame_levels(self._buffer.samples, self.fps, frames, self._buffer.offset))

    def _frame(self, index: int, last_frame: int | None) -> FrameSpeech:
        weight = 1.0 if self._silence is None else self._silence.weight(index, last_frame)
        end = self._frame_start(index + 1)
        if index == last_frame:
            end = max(end, self._buffer.end)
        return FrameSpeech(index, weight, audio.mel_window(self._mel.mel, self.fps, index),
                           self._buffer.between(self._frame_start(index), end))


class WholeSpeech:
    """A recording's speech, known whole before the render starts."""

    def __init__(self, samples: np.ndarray, path: Path, fps: float, keep_silence: bool):
        self.audio = path  # for the encoder: the recording as decoded, at its own rate
        self.fps = fps
        self.frames = audio.frame_count(len(samples) / SAMPLE_RATE, fps)
        self.expected_frames = self.frames
        self.seconds = len(samples) / SAMPLE_RATE
        self._mel = audio.melspectrogram(samples)
        self._weights = (silence.speech_weights(samples, fps, self.frames) if keep_silence
                         else np.ones(self.frames, np.float32))

    def frame(self, index: int) -> FrameSpeech | None:
        if index >= self.frames:
            return None
        return FrameSpeech(index, float(self._weights[index]), audio.mel_window(self._mel, self.fps, index), None)


class SpeechStopped(Exception):
    """Raised to the producer of a growing speech whose render has stopped."""


class GrowingSpeech:
    """Speech made while the video is: a producer thread adds samples (a sentence at a time) and ends it; the
    render's threads wait for each frame's speech, and the encoder for the samples as 16-bit PCM. Thread-safe.
    Samples go through 16-bit PCM first, so the video equals one made from a WAV of the same speech."""

    def __init__(self, fps: float, keep_silence: bool, max_seconds: float | None, expected_seconds: float):
        self.fps = fps
        self.max_seconds = max_seconds
        self._expected_seconds = expected_seconds
        self._frames = SpeechFrames(fps, keep_silence)
        self._ready: deque[FrameSpeech] = deque()
        self._pcm: deque[bytes] = deque()
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._stopped = False
        self._asked = 0  # frames the render has asked for
        self.audio = PcmSpeech(SAMPLE_RATE, self.pcm_chunks)  # for the encoder

    @property
    def seconds(self) -> float:
        return self._frames.received / SAMPLE_RATE

    @property
    def frames(self) -> int:
        """The clip's frame count, once the speech has ended (before: the frames final so far)."""
        return self._frames.frames

    @property
    def expected_frames(self) -> int:
        """About how many frames the clip will have (for progress): exact once ended."""
        if self._frames.ended:
            return self._frames.frames
        return max(self._frames.frames + 1, audio.frame_count(max(self.seconds, self._expected_seconds), self.fps))

    def add(self, samples: np.ndarray) -> None:
        pcm = audio.to_pcm16(samples)
        with self._changed:
            if self._stopped:
                raise SpeechStopped()
            if self.max_seconds is not None and self.seconds + len(pcm) / SAMPLE_RATE > self.max_seconds:
                raise AudioError(f"The speech is longer than the limit of {self.max_seconds:g} s. Shorten the text "
                                 f"and try again.")
            self._ready.extend(self._frames.add(audio.from_pcm16(pcm)))
            self._pcm.append(pcm.tobytes())
            self._changed.notify_all()

    def wait_until_needed(self) -> None:
        """For the producer, before it makes the next part: wait until the render is within MADE_AHEAD_SECONDS of
        the end of the speech made so far. SpeechStopped if the render has stopped."""
        with self._changed:
            self._changed.wait_for(lambda: self._stopped or
                                   self.seconds - self._asked / self.fps < MADE_AHEAD_SECONDS)
            if self._stopped:
                raise SpeechStopped()

    def end(self, error: BaseException | None = None) -> None:
        """No more speech; with an error, the render raises it where it waits for speech."""
        with self._changed:
            if error is None and self._frames.received == 0:
                error = AudioError("The speech came out empty: nothing was spoken.")
            self._error = error
            if error is None:
                self._ready.extend(self._frames.end())
            self._frames.ended = True
            self._changed.notify_all()

    def stop(self) -> None:
        """The render has stopped: the producer's next add raises SpeechStopped, waiting readers return."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def frame(self, index: int) -> FrameSpeech | None:
        """Frame `index`'s speech once final, asked for in order; None past the end of the speech."""
        with self._changed:
            self._changed.wait_for(lambda: self._ready or self._frames.ended or self._stopped)
            self._raise_error()
            if not self._ready:
                return None
            spoken = self._ready.popleft()
            assert spoken.index == index, (spoken.index, index)
            self._asked = index + 1
            self._changed.notify_all()
            return spoken

    def pcm_chunks(self) -> Iterator[bytes]:
        """The speech as 16-bit mono PCM at SAMPLE_RATE, as it is made, to its end."""
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pcm or self._frames.ended or self._stopped)
                if not self._pcm:
                    return
                chunk = self._pcm.popleft()
            yield chunk

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
