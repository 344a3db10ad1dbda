"""What the user gets back: the input's own resolution, and model inputs made exactly as in training."""

from __future__ import annotations

import wave

import cv2
import librosa
import numpy as np
import pytest

from conftest import PORTRAIT, TALKING_HEAD, assert_valid_mp4, cut_speech, run
from lipsync import LipSyncConfig, generate
from lipsync.faces import crop, finding
from lipsync.media import video
from lipsync.nets import mouths
from lipsync.speech import audio

PORTRAIT_BOX = (60, 230, 80, 220)  # top, bottom, left, right: the Mona Lisa's face
VIDEO_BOX = (250, 520, 190, 440)  # the talking head's face at 704x1216
FIXED = LipSyncConfig(box=VIDEO_BOX, keep_silence=False)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return cut_speech(tmp_path_factory.mktemp("speech") / "s.wav", 0.4, start=4.0)


def scaled_sample(path, size: str):
    run(["ffmpeg", "-v", "error", "-y", "-i", str(TALKING_HEAD), "-t", "0.5", "-vf", f"scale={size}", "-an",
         "-c:v", "libx264", "-preset", "ultrafast", str(path)])
    return path


def test_the_704x1216_sample_keeps_its_size_by_default(tmp_path, speech):
    result = generate(TALKING_HEAD, tmp_path / "out.mp4", audio_path=speech, config=FIXED)
    assert (result.width, result.height) == (704, 1216)
    assert_valid_mp4(result.path, result.duration, (704, 1216), 25)


def test_a_vertical_1080p_clip_keeps_its_size_by_default_and_720p_is_its_short_side(tmp_path, speech):
    clip = scaled_sample(tmp_path / "phone.mp4", "1080:1920")
    box = tuple(round(v * 1920 / 1216) for v in VIDEO_BOX)
    result = generate(clip, tmp_path / "full.mp4", audio_path=speech, config=FIXED.replace(box=box))
    assert_valid_mp4(result.path, result.duration, (1080, 1920), 25)
    smaller = generate(clip, tmp_path / "720.mp4", audio_path=speech,
                       config=FIXED.replace(box=tuple(v * 2 // 3 for v in box), output_size=720))
    assert_valid_mp4(smaller.path, smaller.duration, (720, 1280), 25)


def test_output_dimensions_limit_the_short_side():
    assert video.output_dimensions(3840, 2160, 1080) == (1920, 1080)
    assert video.output_dimensions(1080, 1920, 1080) == (1080, 1920)
    assert video.output_dimensions(1080, 1920, 720) == (720, 1280)
    assert video.output_dimensions(705, 1217, 1080) == (704, 1216)  # odd sizes are cropped, not scaled


def recipe_crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The original recipe: slice the box out of the BGR frame, resize it to 96×96 with OpenCV's default."""
    top, bottom, left, right = box
    return cv2.resize(image[top:bottom, left:right], (96, 96))


def test_the_still_crop_the_model_sees_is_the_training_recipe(tmp_path, speech, monkeypatch):
    seen = []
    original = mouths.MouthRunner.for_still
    monkeypatch.setattr(mouths.MouthRunner, "for_still",
                        lambda self, crops: (seen.extend(crops), original(self, crops))[1])
    generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech,
             config=LipSyncConfig(box=PORTRAIT_BOX, keep_silence=False))
    reference = recipe_crop(cv2.imread(str(PORTRAIT)), PORTRAIT_BOX)
    assert len(seen) == 1
    difference = np.abs(seen[0].astype(float) - reference).mean()
    assert difference < 1.0, difference


def test_a_video_crop_is_the_recipe_on_the_same_decoded_pixels():
    source = video.open_face(TALKING_HEAD, 1080, 40_000_000, 25.0)
    frames = video.iter_video_frames(source, source.width, source.height, 60, "yuv420p")
    i420 = next(frames)
    frames.close()
    box = finding.fixed_box(LipSyncConfig(box=VIDEO_BOX), source.width, source.height)
    ours = crop.crop_face_i420(i420, box)
    reference = recipe_crop(cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420), VIDEO_BOX)
    difference = np.abs(ours.astype(float) - reference).mean()
    assert difference < 1.0, difference


def recipe_mel_windows(path, fps: float) -> list[np.ndarray]:
    """The original audio recipe, computed again from the file: 16 kHz PCM, pre-emphasis 0.97, STFT 800/200/800
    (centred, reflect padding as librosa did then), Slaney mel 80 bins 55-7600 Hz, dB - 20, scaled to [-4, 4],
    one 16-column window per frame from int(80 * i / fps), the last 16 columns near the end."""
    with wave.open(str(path)) as handle:
        assert handle.getframerate() == 16000 and handle.getnchannels() == 1
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), np.int16)
    samples = pcm.astype(np.float64) / 32768.0
    emphasised = np.concatenate([samples[:1], samples[1:] - 0.97 * samples[:-1]])
    magnitude = np.abs(librosa.stft(emphasised, n_fft=800, hop_length=200, win_length=800, pad_mode="reflect"))
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    decibels = 20 * np.log10(np.maximum(1e-5, basis @ magnitude)) - 20
    mel = np.clip(8 * ((decibels + 100) / 100) - 4, -4, 4)
    n_frames = max(1, round(len(samples) / 16000 * fps))
    windows = []
    for index in range(n_frames):
        start = int(80 * index / fps)
        windows.append(mel[:, start:start + 16] if start + 16 <= mel.shape[1] else mel[:, -16:])
    return windows


def test_mel_windows_match_the_training_recipe_frame_by_frame(tmp_path):
    clip = cut_speech(tmp_path / "s.wav", 7.3, start=2.0)  # silence into speech, a length that ends mid-window
    expected = recipe_mel_windows(clip, 25.0)
    speech = audio.load_speech(clip, tmp_path, 120.0)
    mel = audio.melspectrogram(speech.samples)
    assert audio.frame_count(speech.duration, 25.0) == len(expected)
    for index, window in enumerate(expected):
        ours = audio.mel_window(mel, 25.0, index)
        assert ours.shape == (80, 16)
        np.testing.assert_allclose(ours, window, atol=1e-4, err_msg=f"frame {index}")
    assert not np.allclose(expected[0], expected[-1])  # first and last frames are really different windows
