"""The generator at each precision, and a still face encoded once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import PORTRAIT, cut_speech
from lipsync import LipSyncConfig, models, runtime
from lipsync.errors import OptionError
from lipsync.faces import crop
from lipsync.faces.boxes import FaceBox
from lipsync.nets import mouths
from lipsync.speech import audio

PORTRAIT_BOX = (60, 230, 80, 220)
NO_BF16 = "this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 is refused here"


@pytest.fixture(scope="module")
def real_inputs(tmp_path_factory):
    """16 real crops (the portrait's face, shifted a pixel at a time) and 16 real mel windows of speech."""
    folder = tmp_path_factory.mktemp("inputs")
    image = cv2.imread(str(PORTRAIT))
    top, bottom, left, right = PORTRAIT_BOX
    crops = [crop.crop_face(image, FaceBox((left + right) / 2 + shift, (top + bottom) / 2, right - left,
                                           bottom - top)) for shift in range(16)]
    speech = audio.load_speech(cut_speech(folder / "s.wav", 1.0, start=4.0), folder, 120.0)
    mel = audio.melspectrogram(speech.samples)
    return crops, [audio.mel_window(mel, 25.0, index) for index in range(16)]


def generator(precision: str, size: int = 16) -> mouths.MouthRunner:
    return models.load_mouth_runner("wav2lip_gan", runtime.resolve(LipSyncConfig(precision=precision, device="cpu",
                                                                                batch_size=size)))


@pytest.mark.skipif(not runtime.cpu_has_native_bf16(), reason=NO_BF16)
def test_bf16_mouths_stay_within_two_grey_levels_of_fp32(real_inputs):
    crops, mels = real_inputs
    full, half = generator("fp32")(crops, mels), generator("bf16")(crops, mels)
    difference = np.abs(full - half)
    assert difference.max() <= 2.0 and difference.mean() <= 0.5, (difference.max(), difference.mean())
    assert generator("bf16").model.output_block[1].weight.dtype == torch.bfloat16


@pytest.mark.skipif(not runtime.cpu_has_native_bf16(), reason=NO_BF16)
def test_a_still_encoded_once_in_bf16_stays_within_two_grey_levels_of_fp32(real_inputs):
    """The cached path rounds the face's share of each layer to bf16 on its own: one rounding more than the plain
    path, which must not show."""
    crops, mels = real_inputs
    still = [crops[0]] * 16
    cached = generator("bf16").for_still([crops[0]])
    difference = np.abs(generator("fp32")(still, mels) - cached(mels))
    assert difference.max() <= 2.0 and difference.mean() <= 0.5, (difference.max(), difference.mean())


def test_auto_precision_follows_the_hardware():
    expected = "bf16" if runtime.cpu_has_native_bf16() else "fp32"
    assert runtime.resolve(LipSyncConfig(device="cpu")).precision == expected


def test_a_precision_the_hardware_cannot_do_is_refused():
    with pytest.raises(OptionError, match="fp16 needs a CUDA GPU"):
        generator("fp16")
    if not runtime.cpu_has_native_bf16():
        with pytest.raises(OptionError, match="native bf16"):
            generator("bf16")


def test_a_still_face_encoded_once_gives_the_plain_models_output(real_inputs):
    crops, mels = real_inputs
    still = [crops[0]] * 16
    plain = generator("fp32")(still, mels)
    cached = generator("fp32").for_still([crops[0]])
    np.testing.assert_allclose(cached(mels), plain, atol=1e-5 * 255)
    np.testing.assert_allclose(cached(mels[:5]), plain[:5], atol=1e-5 * 255)  # a last, short batch
    wrong = generator("fp32").for_still([crops[9]])  # another face's features: the comparison above can fail
    assert np.abs(wrong(mels) - plain).max() > 1.0


def test_two_faces_of_a_still_encoded_once(real_inputs):
    crops, mels = real_inputs
    pattern = [crops[0], crops[9]] * 8
    plain = generator("fp32")(pattern, mels)
    cached = generator("fp32").for_still([crops[0], crops[9]])
    np.testing.assert_allclose(cached(mels), plain, atol=1e-5 * 255)
