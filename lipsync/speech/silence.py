"""Where nobody speaks, per output frame: each frame's level, the threshold under the loudest part, quiet runs long
enough to count as silence, and the fade between; over a whole clip, or frame by frame as speech arrives."""

from __future__ import annotations

from collections import deque

import numpy as np

from .audio import SAMPLE_RATE

# A span quieter than this, relative to the loudest frame of the clip, for at least MIN_SILENCE_SECONDS is silence.
SILENCE_BELOW_PEAK_DB = 35.0
SILENCE_FLOOR_DBFS = -55.0
MIN_SILENCE_SECONDS = 0.2
SILENCE_FADE_SECONDS = 0.12
NO_LEVEL_DB = -160.0  # the level of a frame past the end of the speech


def frame_levels(samples: np.ndarray, fps: float, frames: np.ndarray, offset: int = 0) -> np.ndarray:
    """dB (of full scale) of output frames `frames`: the RMS of the frame's samples and one more; `samples` starts
    at sample `offset` of the speech. A frame that starts past the end of `samples` has NO_LEVEL_DB."""
    hop = SAMPLE_RATE / fps
    starts = (np.asarray(frames) * hop).astype(int) - offset
    rms = np.array([np.sqrt(np.mean(np.square(samples[s:s + int(hop) + 1]))) if s < len(samples) else 0.0
                    for s in starts])
    return 20 * np.log10(np.maximum(rms, 1e-8))


def silence_threshold(peak_db: float) -> float:
    """Frames below this level are quiet: SILENCE_BELOW_PEAK_DB under the loudest, never above the floor."""
    return max(SILENCE_FLOOR_DBFS, peak_db - SILENCE_BELOW_PEAK_DB)


def min_run(fps: float) -> int:
    """Quiet frames in a row that make a silence."""
    return max(1, round(MIN_SILENCE_SECONDS * fps))


def fade_frames(fps: float) -> int:
    return max(1, round(SILENCE_FADE_SECONDS * fps))


def faded_weights(quiet: np.ndarray, fps: float) -> np.ndarray:
    """1 where someone speaks, 0 inside quiet runs of at least min_run frames, fading linearly over fade_frames
    from the nearest speaking frame."""
    talking = np.ones(len(quiet), dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(quiet, int), [0]])))
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start >= min_run(fps):
            talking[start:end] = False
    spoken = np.flatnonzero(talking)
    if not len(spoken):
        return np.zeros(len(quiet), np.float32)
    index = np.arange(len(quiet))
    after = np.searchsorted(spoken, index)  # the first speaking frame at or after each frame
    distance = np.minimum(np.abs(spoken[np.minimum(after, len(spoken) - 1)] - index),
                          np.abs(index - spoken[np.maximum(after - 1, 0)]))
    return np.clip(1.0 - distance / (fade_frames(fps) + 1), 0.0, 1.0).astype(np.float32)


def speech_weights(samples: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Per output frame of a whole clip: 1 while speaking, 0 in its silences, faded between; the threshold is
    under the loudest frame of the clip."""
    levels = frame_levels(samples, fps, np.arange(n_frames))
    return faded_weights(levels < silence_threshold(levels.max(initial=NO_LEVEL_DB)), fps)


class LiveSilence:
    """speech_weights frame by frame as speech arrives, with bounded work and memory.

    Causal in its threshold: frame i's is under the loudest frame up to the end of its window, not under the
    loudest of the whole clip (so until the loudest part has been heard, fewer frames count as quiet than offline).
    Bounded in its look: a frame's weight depends only on the quiet runs within fade_frames of it, and a run's
    length matters only up to min_run, so the weight of frame i is found exactly from the levels of frames
    i - (fade_frames + min_run - 1) .. i + (min_run - 1): min_run - 1 frames of lookahead."""

    def __init__(self, fps: float):
        self.fps = fps
        self.ahead = min_run(fps) - 1
        self.behind = fade_frames(fps) + min_run(fps) - 1
        self._levels: deque[float] = deque()  # of frames first_held .. measured - 1
        self._peaks: deque[float] = deque()  # the loudest level up to each of those frames
        self._first_held = 0

    @property
    def measured(self) -> int:
        """Frames whose level is known."""
        return self._first_held + len(self._levels)

    def add_levels(self, levels: np.ndarray) -> None:
        """The levels of the next frames, in order."""
        for level in levels:
            self._peaks.append(max(float(level), self._peaks[-1] if self._peaks else NO_LEVEL_DB))
            self._levels.append(float(level))

    def weight(self, index: int, last_frame: int | None = None) -> float:
        """The weight of frame `index`, once the levels up to index + ahead are known, or up to `last_frame` (the
        clip's last frame, once the speech has ended) if that comes first. Frames are asked for in order."""
        end = index + self.ahead if last_frame is None else min(index + self.ahead, last_frame)
        first = max(0, index - self.behind)
        while self._first_held < first:  # no later frame looks this far back
            self._levels.popleft()
            self._peaks.popleft()
            self._first_held += 1
        if end >= self.measured or first < self._first_held:
            raise ValueError(f"frame {index}'s levels are not held: frames {self._first_held}..{self.measured - 1}")
        window = np.array([self._levels[i] for i in range(first - self._first_held, end - self._first_held + 1)])
        threshold = silence_threshold(self._peaks[end - self._first_held])
        return float(faded_weights(window < threshold, self.fps)[index - first])
