"""A face file is detected once: a still once (not per frame), the same bytes again not at all, and a video on
every second frame."""

import itertools
import shutil

import cv2

from conftest import PORTRAIT, TALKING_HEAD, cut_speech
from lipsync import LipSyncConfig, generate, pipeline
from lipsync.faces import detectors, finding
from lipsync.media import video


def test_same_bytes_are_not_detected_again(tmp_path):
    config = LipSyncConfig(detector="haar", pads=(0, 12, 0, 0))
    speech_a, speech_b = cut_speech(tmp_path / "a.wav", 1.0), cut_speech(tmp_path / "b.wav", 2.0, start=5.0)
    # Same pixels as the portrait, new bytes: no earlier test can have filled the cache for this file.
    fresh = tmp_path / "fresh.png"
    cv2.imwrite(str(fresh), cv2.imread(str(PORTRAIT)), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    copy = tmp_path / "renamed copy.png"
    shutil.copy(fresh, copy)
    start = finding.CACHE.misses
    generate(fresh, tmp_path / "1.mp4", audio_path=speech_a, config=config)
    assert finding.CACHE.misses == start + 1  # 25 frames, one detection
    generate(copy, tmp_path / "2.mp4", audio_path=speech_b, config=config)  # other name and speech, same bytes
    assert finding.CACHE.misses == start + 1
    generate(fresh, tmp_path / "3.mp4", audio_path=speech_a, config=config.replace(align_roll=False))
    assert finding.CACHE.misses == start + 2  # other detection settings: detected again


def test_video_detection_reuses_a_longer_earlier_pass(tmp_path):
    config = LipSyncConfig(detector="haar", output_size=278)
    start = finding.CACHE.misses
    generate(TALKING_HEAD, tmp_path / "1.mp4", audio_path=cut_speech(tmp_path / "a.wav", 2.0), config=config)
    generate(TALKING_HEAD, tmp_path / "2.mp4", audio_path=cut_speech(tmp_path / "b.wav", 1.0), config=config)
    assert finding.CACHE.misses == start + 1  # the 1 s request needs a subset of the 2 s request's frames
    generate(TALKING_HEAD, tmp_path / "3.mp4", audio_path=cut_speech(tmp_path / "c.wav", 3.0), config=config)
    assert finding.CACHE.misses == start + 2  # needs frames never detected


def test_video_search_on_every_second_frame_interpolates_the_frames_between():
    source = video.open_face(TALKING_HEAD, 608, 40_000_000, 25.0)
    scale = finding.detection_scale(source.width, source.height, False)
    small = (round(source.width * scale), round(source.height * scale))
    frames = [frame.copy() for frame in itertools.islice(video.iter_video_frames(source, *small, 120), 40)]
    for frame in frames[20:30]:
        frame[:] = 128  # the face leaves the picture for frames 20-29
    every = finding.detect_faces(detectors.HaarDetector(), frames, scale, False)
    strided = finding.detect_faces(detectors.HaarDetector(), frames, scale, False, stride=2)
    assert len(strided) == len(every) == 40
    for index, (boxes, reference) in enumerate(zip(strided, every)):
        if 19 <= index < 30:  # 19 lies between a face (18) and none (20): counted as lost, not guessed
            assert boxes == [], index
            continue
        assert len(boxes) == len(reference) == 1, index
        # The cascade's own sizes step by 10 % and jump by up to 23 % between neighbouring frames of this clip.
        width = reference[0].w
        assert abs(boxes[0].cx - reference[0].cx) <= 0.05 * width and abs(boxes[0].w - width) <= 0.25 * width


def test_the_face_preview_fills_the_cache_for_the_generation(tmp_path):
    config = LipSyncConfig(detector="haar", pads=(0, 14, 0, 0))
    fresh = tmp_path / "preview.png"
    cv2.imwrite(str(fresh), cv2.imread(str(PORTRAIT)), [cv2.IMWRITE_PNG_COMPRESSION, 2])
    start = finding.CACHE.misses
    _, boxes = pipeline.find_faces(fresh, config)
    assert len(boxes) == 1 and finding.CACHE.misses == start + 1
    generate(fresh, tmp_path / "out.mp4", audio_path=cut_speech(tmp_path / "s.wav", 1.0), config=config)
    assert finding.CACHE.misses == start + 1  # the app's preview and the generation after it: one detection
