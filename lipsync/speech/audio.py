"""Speech in: decode any common format, build the exact mel the model was trained on."""

from __future__ import annotations

import importlib.metadata
import io
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable

import numpy as np
import soxr
import torch
from pydub import AudioSegment
from pydub.exceptions import CouldntDecodeError

from .. import user_cache
from ..errors import AudioError, MediaFileError
from ..media import ffmpeg

SAMPLE_RATE = 16_000  # samples per second, mono
# A decode may take DECODE_TIMEOUT s, or for long speech a second per DECODE_SPEED s of it (ffmpeg is far faster).
DECODE_TIMEOUT = 120.0
DECODE_SPEED = 10.0
# Wav2Lip's mel recipe (hparams.py), in samples at SAMPLE_RATE: an 800-sample (50 ms) window and FFT every
# 200 samples (12.5 ms), so 80 spectrum columns per second.
N_FFT = 800  # samples per FFT
HOP_LENGTH = 200  # samples between successive columns
WIN_LENGTH = 800  # samples in the Hann window
N_MELS = 80  # mel bands per column
FMIN = 55  # Hz, the lowest mel band's edge
FMAX = 7600  # Hz, the highest
PREEMPHASIS = 0.97  # first-order filter coefficient
REF_LEVEL_DB = 20.0  # dB subtracted from the amplitude before normalising
MIN_LEVEL_DB = -100.0  # dB mapped to -MEL_LIMIT
MEL_LIMIT = 4.0  # the normalised mel lies in [-MEL_LIMIT, MEL_LIMIT]
MEL_FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH  # mel columns per second
MEL_WINDOW = 16  # mel columns per video frame's window (0.2 s)
MEL_BLOCK = int(30 * MEL_FRAMES_PER_SECOND)  # mel columns made at once: 30 s of speech
PCM_SCALE = 32767  # float samples in -1..1 -> 16-bit PCM, as speech is written
PCM_FULL_SCALE = 32768  # 16-bit PCM -> float, as speech is read


@dataclass(frozen=True)
class Speech:
    samples: np.ndarray  # float32, mono, SAMPLE_RATE
    mux_path: Path  # the decoded speech at its own rate, for the output's audio track

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load_speech(path: str | Path, work_dir: Path, max_seconds: float | None) -> Speech:
    """Decode a recording (or a video's audio track) with ffmpeg, mix it down with pydub; refuse empty, broken or
    too long input (max_seconds None: no limit). A 16-bit PCM WAV (a Gradio recording, espeak-ng's speech) is read
    as it is."""
    name = Path(path).name
    mux_path = Path(path) if _is_plain_wav(path, max_seconds) else _decode_to_wav(path, work_dir, max_seconds)
    try:
        decoded = AudioSegment.from_file(mux_path, format="wav")  # a plain WAV: read directly, no subprocess
    except (CouldntDecodeError, EOFError, OSError) as exc:
        raise AudioError(f"'{name}' could not be decoded as audio.") from exc
    if decoded.frame_count() < 1:
        raise AudioError(f"'{name}' holds no sound (it is 0 s long).")
    if _over(decoded.duration_seconds, max_seconds):
        raise AudioError(_too_long(decoded.duration_seconds, max_seconds))
    mono = decoded.set_channels(1)
    rate = mono.frame_rate
    samples = np.asarray(mono.get_array_of_samples(), dtype=np.float32)
    samples /= float(1 << (8 * mono.sample_width - 1))  # in place: a long speech is not copied again
    if rate != SAMPLE_RATE:
        # What librosa.resample does by default, without importing librosa (seconds at a start).
        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return Speech(samples.astype(np.float32, copy=False), mux_path)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples as 16-bit little-endian PCM: clipped to -1..1 and rounded."""
    return np.round(np.clip(samples, -1.0, 1.0) * PCM_SCALE).astype("<i2")


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM as float32 samples in -1..1, as load_speech reads a WAV."""
    return np.asarray(pcm).astype(np.float32) / np.float32(PCM_FULL_SCALE)


def write_wav(chunks: Iterable[np.ndarray], path: str | Path) -> float:
    """Float chunks at SAMPLE_RATE into a 16-bit PCM mono WAV (load_speech reads it as it is), as they come; its
    length in seconds. A file left half-written by an error is removed."""
    frames = 0
    try:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            for chunk in chunks:
                out.writeframes(to_pcm16(chunk).tobytes())
                frames += len(chunk)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return frames / SAMPLE_RATE


def _is_plain_wav(path: str | Path, max_seconds: float | None) -> bool:
    """A 16-bit PCM WAV, mono or stereo, within the limit, whose header agrees with its size: it is already the
    output's soundtrack, so the probe and the decode (two processes) are skipped."""
    try:
        with wave.open(str(path), "rb") as reader:
            frames, channels, rate = reader.getnframes(), reader.getnchannels(), reader.getframerate()
            plain = reader.getsampwidth() == 2 and channels in (1, 2) and frames > 0 and rate > 0
    except (wave.Error, EOFError, OSError):
        return False
    return plain and not _over(frames / rate, max_seconds) and frames * channels * 2 < Path(path).stat().st_size


def _decode_to_wav(path: str | Path, work_dir: Path, max_seconds: float | None) -> Path:
    """The first audio track as 16-bit PCM at its own rate, surround mixed down to stereo: the output's
    soundtrack. Refuses what has no audio or is too long, from the header, before decoding."""
    name = Path(path).name
    info = ffmpeg.probe(path, "audio")
    if info is None:
        raise AudioError(f"'{name}' is not a readable audio file.")
    if not info.has_audio:
        if info.video is not None and info.video.codec in ffmpeg.IMAGE_CODECS:
            raise AudioError(f"'{name}' is an image; the speech must be a sound recording (or a video with sound).")
        kind = "video file" if info.video is not None else "file"
        raise AudioError(f"'{name}' is a {kind} with no audio track.")
    if _over(info.audio_duration, max_seconds):
        raise AudioError(_too_long(info.audio_duration, max_seconds))
    # Decoding stops a little past the limit, so a header that lies about the length costs no more than that.
    cut = [] if max_seconds is None else ["-t", f"{max_seconds + 1:.3f}"]
    # (ffmpeg run here rather than by pydub, which gives its own ffprobe and ffmpeg calls no timeout.)
    mux_path = work_dir / "speech.wav"
    try:
        ffmpeg.run_tool([ffmpeg.FFMPEG, "-v", "error", "-nostdin", "-y", "-i", ffmpeg.tool_path(path), "-map", "0:a:0",
                        "-vn", "-sn", "-dn", *cut, "-af", "aformat=channel_layouts=mono|stereo",
                        "-c:a", "pcm_s16le", "-f", "wav", ffmpeg.tool_path(mux_path)],
                       max(DECODE_TIMEOUT, info.audio_duration / DECODE_SPEED), f"Decoding '{name}'")
    except MediaFileError as exc:
        raise AudioError(f"'{name}' could not be decoded as audio: {exc.detail}") from exc
    return mux_path


def _over(seconds: float, max_seconds: float | None) -> bool:
    return max_seconds is not None and seconds > max_seconds


def _too_long(seconds: float, max_seconds: float) -> str:
    shown = f"{seconds:.0f}" if round(seconds) > max_seconds else f"{seconds:.1f}"  # never "120 s; the limit is 120 s"
    return f"The speech is {shown} s long; the limit is {max_seconds:g} s. Trim it and try again."


def melspectrogram(samples: np.ndarray) -> np.ndarray:
    """(80, T) normalised log-mel, 80 frames per second, as the released Wav2Lip models expect. Made MEL_BLOCK
    columns at a time, so a long speech's spectrum (several times the size of its samples) is never held whole."""
    emphasised = np.append(samples[:1], samples[1:] - PREEMPHASIS * samples[:-1])
    padded = np.pad(emphasised, N_FFT // 2, mode="reflect")  # frames centred on each hop, as librosa centres them
    columns = 1 + len(emphasised) // HOP_LENGTH
    mel = np.empty((N_MELS, columns), np.float32)
    for first in range(0, columns, MEL_BLOCK):
        last = min(first + MEL_BLOCK, columns)
        block = torch.from_numpy(np.ascontiguousarray(padded[first * HOP_LENGTH:(last - 1) * HOP_LENGTH + N_FFT]))
        spectrum = torch.stft(block, N_FFT, HOP_LENGTH, WIN_LENGTH, _window(), center=False,
                              return_complex=True).abs()
        # The product in torch, not numpy: numpy's BLAS threads spin on after it, and the model on the same cores
        # then ran at half speed (live mode makes a mel between every few frames).
        banded = (torch.from_numpy(_mel_basis()) @ spectrum).numpy()
        db = 20.0 * np.log10(np.maximum(1e-5, banded)) - REF_LEVEL_DB
        mel[:, first:last] = np.clip(2 * MEL_LIMIT * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MEL_LIMIT,
                                     -MEL_LIMIT, MEL_LIMIT)
    return mel


@cache
def _window() -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, periodic=True, dtype=torch.float32)  # scipy's "hann", as librosa takes it


@cache
def _mel_basis() -> np.ndarray:
    """librosa's Slaney mel filters for the recipe, kept on disk after the first process made them: importing
    librosa's filters (scipy.signal, numba) costs seconds at every start, the file a millisecond."""
    name = (f"mel_basis_{SAMPLE_RATE}_{N_FFT}_{N_MELS}_{FMIN}_{FMAX}_"
            f"librosa-{importlib.metadata.version('librosa')}.npy")
    path = user_cache.folder() / name
    try:
        basis = np.load(path, allow_pickle=False)
        if basis.shape == (N_MELS, N_FFT // 2 + 1) and basis.dtype == np.float32 and np.isfinite(basis).all():
            return basis
    except (OSError, ValueError):
        pass  # absent, or unreadable: made again
    import librosa

    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    saved = io.BytesIO()
    np.save(saved, basis, allow_pickle=False)
    try:
        user_cache.write_atomically(path, saved.getvalue())
    except OSError:
        pass  # a read-only home only costs the import in the next process
    return basis


def frame_count(duration: float, fps: float) -> int:
    return max(1, round(duration * fps))


def mel_window(mel: np.ndarray, fps: float, index: int) -> np.ndarray:
    """The 16-column window for output frame `index`; the last 16 columns near the end."""
    if mel.shape[1] < MEL_WINDOW:
        mel = np.pad(mel, ((0, 0), (0, MEL_WINDOW - mel.shape[1])), constant_values=-MEL_LIMIT)
    start = int(MEL_FRAMES_PER_SECOND * index / fps)
    if start + MEL_WINDOW > mel.shape[1]:
        start = mel.shape[1] - MEL_WINDOW
    return mel[:, start:start + MEL_WINDOW]

