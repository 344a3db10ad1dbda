"""The mel recipe checked against an independent numpy computation, plus frame chunking and silence finding."""

import io
import os
import sys
import wave

import numpy as np
import pytest
from scipy.signal import get_window

from conftest import ROOT, SPEECH, cut_speech, run
from lipsync.errors import AudioError
from lipsync.speech import audio, silence


def reference_mel(signal: np.ndarray) -> np.ndarray:
    """The facts file's recipe written out by hand: pre-emphasis, reflect-padded Hann STFT, Slaney mel, dB, scale."""
    import librosa

    y = np.append(signal[:1], signal[1:] - 0.97 * signal[:-1])
    padded = np.pad(y, 400, mode="reflect")
    window = get_window("hann", 800, fftbins=True)
    frames = np.stack([padded[i:i + 800] * window for i in range(0, len(padded) - 800 + 1, 200)])
    magnitude = np.abs(np.fft.rfft(frames, axis=1)).T
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ magnitude)) - 20
    return np.clip(8 * ((db + 100) / 100) - 4, -4, 4)


def test_mel_of_a_known_signal_matches_independent_computation():
    t = np.arange(16000) / 16000
    signal = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1800 * t)).astype(np.float32)
    mel = audio.melspectrogram(signal)
    expected = reference_mel(signal.astype(np.float64))
    assert mel.shape == (80, 81)  # 80 frames per second, centred frames
    assert np.abs(mel - expected).max() < 1e-3
    # A pure 440 Hz tone lands in the right bins: the loudest bin's centre frequency is near 440 Hz.
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
    tone = audio.melspectrogram((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert abs(centres[tone[:, 40].argmax()] - 440) < 60


def test_mel_of_real_speech(tmp_path):
    speech = audio.load_speech(SPEECH, tmp_path, max_seconds=120)
    assert abs(speech.duration - 60.0) < 0.05
    mel = audio.melspectrogram(speech.samples[:16000 * 5])
    assert mel.shape[0] == 80 and abs(mel.shape[1] - 401) <= 1
    assert mel.min() >= -4 and mel.max() <= 4 and mel.std() > 0.5


def test_mel_of_long_speech_is_made_in_blocks_that_join_exactly(tmp_path):
    """65 s: three blocks of MEL_BLOCK columns, joined where the independent recipe has no seams."""
    speech = audio.load_speech(SPEECH, tmp_path, max_seconds=None).samples
    long = np.concatenate([speech, speech[:5 * audio.SAMPLE_RATE]])
    mel = audio.melspectrogram(long)
    assert mel.shape == (80, 1 + len(long) // audio.HOP_LENGTH) and mel.shape[1] > 2 * audio.MEL_BLOCK
    assert np.abs(mel - reference_mel(long.astype(np.float64))).max() < 1e-3


def test_mel_windows_follow_the_video_frames():
    mel = np.arange(80 * 200, dtype=np.float32).reshape(80, 200)
    assert np.array_equal(audio.mel_window(mel, 25, 0), mel[:, 0:16])
    assert np.array_equal(audio.mel_window(mel, 25, 10), mel[:, 32:48])  # int(80 * 10 / 25) = 32
    assert np.array_equal(audio.mel_window(mel, 30000 / 1001, 7), mel[:, 18:34])  # int(80 * 7 / 29.97) = 18
    assert np.array_equal(audio.mel_window(mel, 25, 62), mel[:, 184:200])  # near the end: the last 16 columns
    short = audio.mel_window(mel[:, :5], 25, 0)
    assert short.shape == (80, 16)


def test_frame_count_follows_the_audio():
    assert audio.frame_count(10.0, 25) == 250
    assert audio.frame_count(2.0, 30000 / 1001) == 60
    assert audio.frame_count(0.01, 25) == 1


def test_speech_weights_find_silence_and_fade():
    rate = audio.SAMPLE_RATE
    rng = np.random.default_rng(0)
    loud = (0.3 * rng.standard_normal(rate)).astype(np.float32)
    samples = np.concatenate([loud, np.zeros(rate, np.float32), loud])
    weights = silence.speech_weights(samples, 25, 75)
    assert weights[:20].min() == 1.0 and weights[-20:].min() == 1.0
    assert weights[33:42].max() == 0.0  # deep inside the silent second
    assert 0 < weights[26] < 1  # faded, not cut
    short_gap = np.concatenate([loud, np.zeros(rate // 10, np.float32), loud])  # 0.1 s is a pause, not silence
    assert silence.speech_weights(short_gap, 25, 55).min() == 1.0


def test_zero_length_audio_is_refused(tmp_path):
    import wave

    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
    with pytest.raises(AudioError):
        audio.load_speech(empty, tmp_path, max_seconds=120)


def test_a_plain_wav_is_read_as_it_is_with_the_samples_ffmpeg_gives(tmp_path, monkeypatch):
    from lipsync.media import ffmpeg

    wav = cut_speech(tmp_path / "speech.wav", 2.0, extra=["-ac", "2"])  # 16-bit PCM, stereo
    flac = cut_speech(tmp_path / "speech.flac", 2.0, extra=["-ac", "2"])  # the same samples, decoded by ffmpeg
    work = tmp_path / "work"
    work.mkdir()
    through_ffmpeg = audio.load_speech(flac, work, max_seconds=120)
    assert through_ffmpeg.mux_path == work / "speech.wav"

    def no_tools(*args, **kwargs):
        raise AssertionError("a plain WAV needs no ffprobe or ffmpeg")

    monkeypatch.setattr(ffmpeg, "run_tool", no_tools)
    direct = audio.load_speech(wav, work, max_seconds=120)
    assert direct.mux_path == wav
    np.testing.assert_array_equal(direct.samples, through_ffmpeg.samples)
    with pytest.raises(AssertionError, match="no ffprobe"):  # the same stub stops what is not a plain WAV
        audio.load_speech(flac, work, max_seconds=120)


@pytest.mark.parametrize("case", ["24-bit", "header longer than the file", "over the limit"])
def test_a_wav_that_is_not_plain_goes_through_ffmpeg(tmp_path, case):
    wav = cut_speech(tmp_path / "input.wav", 2.0, extra=["-c:a", "pcm_s24le"] if case == "24-bit" else None)
    if case == "header longer than the file":
        wav.write_bytes(wav.read_bytes()[:-16000])  # 0.5 s cut off the end: the header still says 2 s
    work = tmp_path / "work"
    work.mkdir()
    if case == "over the limit":
        with pytest.raises(AudioError, match=r"The speech is 2 s long; the limit is 1\.5 s\."):
            audio.load_speech(wav, work, max_seconds=1.5)
        return
    speech = audio.load_speech(wav, work, max_seconds=120)
    assert speech.mux_path == work / "speech.wav"
    assert abs(speech.duration - (2.0 if case == "24-bit" else 1.5)) < 0.01


@pytest.mark.parametrize("name", ["long.wav", "long.flac"], ids=["plain-wav", "through-ffmpeg"])
def test_speech_of_any_length_is_read_whole_without_a_limit(tmp_path, name):
    """No limit (the command line's and the batch runner's default): 130 s of speech is read to its end by either
    path, while a limit of 120 s refuses the same file."""
    long = tmp_path / name
    run(["ffmpeg", "-v", "error", "-stream_loop", "2", "-i", str(SPEECH), "-t", "130", str(long)])
    work = tmp_path / "work"
    work.mkdir()
    speech = audio.load_speech(long, work, max_seconds=None)
    assert abs(speech.duration - 130.0) < 0.01
    original = audio.load_speech(SPEECH, work, max_seconds=None).samples
    second = audio.SAMPLE_RATE
    np.testing.assert_array_equal(speech.samples[125 * second:126 * second], original[5 * second:6 * second])
    with pytest.raises(AudioError, match=r"The speech is 130 s long; the limit is 120 s\."):
        audio.load_speech(long, work, max_seconds=120)


def test_a_recording_at_another_rate_is_resampled_as_librosa_resamples_it(tmp_path):
    import librosa

    recording = cut_speech(tmp_path / "speech.wav", 2.0, extra=["-ar", "44100"])  # plain WAV, read as it is
    speech = audio.load_speech(recording, tmp_path, max_seconds=None)
    with wave.open(str(recording)) as handle:
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768.0
    np.testing.assert_array_equal(speech.samples, librosa.resample(pcm, orig_sr=44100, target_sr=16000))


MEL_BASIS_CHECK = """
import sys
import numpy as np
from lipsync.speech import audio
basis = audio._mel_basis()
mel = audio.melspectrogram(np.zeros(8000, np.float32))
print(sorted(name for name in ("librosa.filters", "scipy.signal", "numba") if name in sys.modules))
np.save(sys.argv[1], basis)
"""


def test_the_mel_basis_is_librosas_kept_on_disk_so_later_starts_skip_librosa(tmp_path):
    """The first process makes the basis with librosa and keeps it in the cache folder; the next one reads it
    and never imports librosa's filters, scipy.signal or numba (seconds at every start)."""
    import librosa

    expected = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    cache = tmp_path / "cache"

    def start() -> str:
        out = tmp_path / "basis.npy"
        done = run([sys.executable, "-c", MEL_BASIS_CHECK, str(out)], cwd=ROOT,
                   env={**os.environ, "LIPSYNC_CACHE": str(cache), "PYTHONPATH": str(ROOT)})
        np.testing.assert_array_equal(np.load(out), expected)
        return done.stdout.decode().strip().splitlines()[-1]

    assert start() == "['librosa.filters', 'numba', 'scipy.signal']"
    assert len(list(cache.glob("mel_basis_*.npy"))) == 1
    assert start() == "[]"


def test_a_damaged_mel_basis_file_is_made_again_and_a_read_only_cache_only_costs_the_import(tmp_path, monkeypatch):
    import librosa

    expected = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    monkeypatch.setenv("LIPSYNC_CACHE", str(tmp_path / "cache"))
    audio._mel_basis.cache_clear()
    try:
        np.testing.assert_array_equal(audio._mel_basis(), expected)
        [kept] = (tmp_path / "cache").glob("mel_basis_*.npy")
        wrong_shape = io.BytesIO()
        np.save(wrong_shape, np.ones((80, 3), np.float32))
        for damaged in (kept.read_bytes()[:200], b"not an array", wrong_shape.getvalue()):
            kept.write_bytes(damaged)
            audio._mel_basis.cache_clear()
            np.testing.assert_array_equal(audio._mel_basis(), expected)
            np.testing.assert_array_equal(np.load(kept), expected)  # written whole again
        blocked = tmp_path / "not-a-folder"
        blocked.write_text("a file where the cache folder would be")
        monkeypatch.setenv("LIPSYNC_CACHE", str(blocked))
        audio._mel_basis.cache_clear()
        np.testing.assert_array_equal(audio._mel_basis(), expected)
    finally:
        audio._mel_basis.cache_clear()
