"""A face file is detected once: a still once (not per frame), and the same bytes again not at all."""

import shutil

import cv2

from conftest import PORTRAIT, TALKING_HEAD, cut_speech
from lipsync import LipSyncConfig, face, generate


def test_same_bytes_are_not_detected_again(tmp_path):
    config = LipSyncConfig(detector="haar", pads=(0, 12, 0, 0))
    speech_a, speech_b = cut_speech(tmp_path / "a.wav", 1.0), cut_speech(tmp_path / "b.wav", 2.0, start=5.0)
    # Same pixels as the portrait, new bytes: no earlier test can have filled the cache for this file.
    fresh = tmp_path / "fresh.png"
    cv2.imwrite(str(fresh), cv2.imread(str(PORTRAIT)), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    copy = tmp_path / "renamed copy.png"
    shutil.copy(fresh, copy)
    start = face.STATS.passes
    generate(fresh, tmp_path / "1.mp4", audio_path=speech_a, config=config)
    assert face.STATS.passes == start + 1  # 25 frames, one detection
    generate(copy, tmp_path / "2.mp4", audio_path=speech_b, config=config)  # other name and speech, same bytes
    assert face.STATS.passes == start + 1
    generate(fresh, tmp_path / "3.mp4", audio_path=speech_a, config=config.replace(align_roll=False))
    assert face.STATS.passes == start + 2  # other detection settings: detected again


def test_video_detection_reuses_a_longer_earlier_pass(tmp_path):
    config = LipSyncConfig(detector="haar", max_height=480)
    start = face.STATS.passes
    generate(TALKING_HEAD, tmp_path / "1.mp4", audio_path=cut_speech(tmp_path / "a.wav", 2.0), config=config)
    generate(TALKING_HEAD, tmp_path / "2.mp4", audio_path=cut_speech(tmp_path / "b.wav", 1.0), config=config)
    assert face.STATS.passes == start + 1  # the 1 s request needs a subset of the 2 s request's frames
    generate(TALKING_HEAD, tmp_path / "3.mp4", audio_path=cut_speech(tmp_path / "c.wav", 3.0), config=config)
    assert face.STATS.passes == start + 2  # needs frames never detected
