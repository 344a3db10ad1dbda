"""LSE-D, LSE-C and the audio offset from SyncNet embeddings, with the windows the evaluation feeds it: 5 face
crops and 20 MFCC steps per 25 fps frame. Pure functions on arrays; faces and media are found in sync_media.py."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from ..nets.syncnet import SyncNet
from ..speech.audio import SAMPLE_RATE

FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MFCC_PER_FRAME = 4  # python_speech_features steps 10 ms: 4 steps a frame
MFCC_WINDOW = 20  # 0.2 s of speech per frame
VIDEO_WINDOW = 5  # frames i … i+4
VSHIFT = 15  # offsets -15 … +15 frames, as the lip-sync papers evaluate
CONFIDENCE_MEDIAN = 9  # frames the per-frame confidence is median-filtered over
PCM_SCALE = 32768.0  # the evaluation reads 16-bit PCM as integers; the log-energy coefficient depends on the scale
VIDEO_BATCH = 16  # windows per forward pass
AUDIO_BATCH = 128  # the audio tower's layers are small: larger batches run it twice as fast on a CPU
# Words for LSE-C, from the Wav2Lip paper's LRS2 figures (real videos 7.838, Wav2Lip 7.789): "good" is within about
# one of real footage, "poor" is well short of it. (lowest LSE-C, word), best first.
CONFIDENCE_BANDS = ((7.0, "good"), (5.0, "fair"), (-math.inf, "poor"))


@dataclass(frozen=True)
class SyncScore:
    lse_d: float  # the mean audio-visual distance at the best offset: lower is better
    lse_c: float  # the median distance over the offsets minus that minimum: higher is better
    offset: int  # frames at 25 fps: 0 in sync, negative when the sound comes late, positive when early
    frames: int  # windows scored
    distances: tuple[float, ...]  # the mean distance at offsets -VSHIFT … +VSHIFT, in the sense of `offset`
    confidence: tuple[float, ...]  # per scored frame, median-filtered: where sync holds (high) or fails (low)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @property
    def band(self) -> str:
        """The confidence in a word: good, fair or poor (CONFIDENCE_BANDS), of the value as shown (one decimal)."""
        return next(word for lowest, word in CONFIDENCE_BANDS if round(self.lse_c, 1) >= lowest)

    def summary(self) -> str:
        """One line for a user, e.g. 'LSE-D 6.42 · LSE-C 7.81 · offset 0 frames (in sync)'."""
        return f"LSE-D {self.lse_d:.2f} · LSE-C {self.lse_c:.2f} · {self._offset_words()} ({self._timing()})"

    def in_words(self) -> str:
        """For a status line, e.g. 'lip sync: confidence 7.8 (good) · offset 0 frames'; an offset says which way
        the sound is off, e.g. '… · offset -3 frames (sound 120 ms late)'."""
        timing = f" ({self._timing()})" if self.offset else ""
        return f"lip sync: confidence {self.lse_c:.1f} ({self.band}) · {self._offset_words()}{timing}"

    def _offset_words(self) -> str:
        return f"offset {self.offset} {'frame' if abs(self.offset) == 1 else 'frames'}"

    def _timing(self) -> str:
        if self.offset == 0:
            return "in sync"
        return f"sound {abs(self.offset) * 1000 // FPS} ms {'late' if self.offset < 0 else 'early'}"


def usable_windows(video_frames: int, audio_samples: int) -> int:
    """Frames that start a scored window: the shorter of video and audio (in frames), less the last 5."""
    return min(video_frames, audio_samples // SAMPLES_PER_FRAME) - VIDEO_WINDOW


def mfcc_windows(samples: np.ndarray, count: int) -> np.ndarray:
    """(count, 13, 20) float32: for frame i, columns 4i … 4i+19 of python_speech_features' MFCC (its defaults)
    of 16 kHz mono samples in [-1, 1]."""
    import python_speech_features  # here: it imports scipy.fftpack, half a second at every start otherwise

    features = python_speech_features.mfcc(np.asarray(samples, np.float64) * PCM_SCALE, SAMPLE_RATE).T
    windows = np.lib.stride_tricks.sliding_window_view(features, MFCC_WINDOW, axis=1)[:, ::MFCC_PER_FRAME]
    if windows.shape[1] < count:
        raise ValueError(f"{len(samples)} samples hold {windows.shape[1]} MFCC windows, not {count}")
    return np.ascontiguousarray(windows[:, :count].transpose(1, 0, 2), dtype=np.float32)


def median_filter(values: np.ndarray, size: int) -> np.ndarray:
    """Running median over `size` values (odd), the ends padded with their own first and last values."""
    padded = np.pad(np.asarray(values, np.float64), size // 2, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, size), axis=1)


def _weight(model: SyncNet) -> torch.Tensor:
    return model.netfcaud[0].weight


@torch.inference_mode()
def audio_embeddings(model: SyncNet, windows: np.ndarray, batch: int = AUDIO_BATCH) -> np.ndarray:
    """(N, 13, 20) MFCC windows -> (N, 1024) float32."""
    weight = _weight(model)
    out = [model.embed_audio(torch.from_numpy(windows[start:start + batch, None]).to(weight.device, weight.dtype))
           .float().cpu().numpy() for start in range(0, len(windows), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.netfcaud[-1].out_features), np.float32)


@torch.inference_mode()
def _embed_video_batch(model: SyncNet, crops: list[np.ndarray]) -> np.ndarray:
    """len(crops) - 4 windows of 5 consecutive (224, 224, 3) uint8 BGR crops -> (N, 1024) float32."""
    weight = _weight(model)
    frames = torch.from_numpy(np.stack(crops)).to(weight.device, weight.dtype)  # (T, 224, 224, 3)
    windows = frames.unfold(0, VIDEO_WINDOW, 1).permute(0, 3, 4, 1, 2)  # (N, 3, 5, 224, 224), a view
    return model.embed_video(windows).float().cpu().numpy()


def video_embeddings(model: SyncNet, crops: Iterable[np.ndarray], max_windows: int,
                     batch: int = VIDEO_BATCH) -> np.ndarray:
    """Embeddings of the 5-frame windows of a stream of face crops, at most max_windows. Window i is scored once
    frame i + 5 exists (the evaluation's rule: the last 5 frames start none), so the stream needs no length."""
    out, buffer = [], []
    done = 0
    for crop in crops:
        if done + max(0, len(buffer) - VIDEO_WINDOW) >= max_windows:
            break  # the rest of the stream is not needed
        buffer.append(crop)
        if len(buffer) - VIDEO_WINDOW == batch:
            out.append(_embed_video_batch(model, buffer[:batch + VIDEO_WINDOW - 1]))
            done += batch
            buffer = buffer[batch:]
    ready = min(len(buffer) - VIDEO_WINDOW, max_windows - done)
    if ready > 0:
        out.append(_embed_video_batch(model, buffer[:ready + VIDEO_WINDOW - 1]))
    return np.concatenate(out) if out else np.zeros((0, model.netfclip[-1].out_features), np.float32)


def offset_distances(video: np.ndarray, audio: np.ndarray, vshift: int = VSHIFT) -> np.ndarray:
    """(N, 2·vshift + 1): column k holds ‖v_i − a_(i+k−vshift)‖, with zero vectors for audio outside its range."""
    if len(video) != len(audio):
        raise ValueError(f"{len(video)} video windows against {len(audio)} audio windows")
    zeros = np.zeros((vshift, audio.shape[1]), audio.dtype)
    padded = np.concatenate([zeros, audio, zeros])
    return np.stack([np.linalg.norm(video - padded[k:k + len(video)], axis=1) for k in range(2 * vshift + 1)],
                    axis=1)


def sync_scores(video: np.ndarray, audio: np.ndarray, vshift: int = VSHIFT) -> SyncScore:
    """The scores of equally many video and audio embeddings (window i of each belonging to frame i)."""
    if len(video) < 1:
        raise ValueError("no windows to score")
    per_frame = offset_distances(np.asarray(video, np.float64), np.asarray(audio, np.float64), vshift)
    mean = per_frame.mean(axis=0)
    best = int(np.argmin(mean))
    median = float(np.median(mean))
    confidence = median_filter(median - per_frame[:, best], CONFIDENCE_MEDIAN)
    # Column k compares frame i with audio i + k - vshift, which is offset vshift - k: reversed, -vshift comes first.
    return SyncScore(lse_d=float(mean[best]), lse_c=median - float(mean[best]), offset=vshift - best,
                     frames=len(video), distances=tuple(float(d) for d in mean[::-1]),
                     confidence=tuple(float(c) for c in confidence))
