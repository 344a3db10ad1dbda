"""Scoring the lip sync of a video: its frames at 25 fps and its speech (or another recording) at 16 kHz, the face
followed through it, and the crops the SyncNet evaluation cuts. Entries: `score_frames`, `score_video`."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import tempfile
from contextlib import closing, contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from .. import models, runtime
from ..config import LipSyncConfig
from ..errors import AudioError, FaceError, NoFaceError
from ..faces import finding, track
from ..faces.boxes import FaceBox
from ..faces.detectors import Detector
from ..media import video
from ..nets.syncnet import SyncNet
from ..speech import audio
from .sync import (FPS, SAMPLES_PER_FRAME, VIDEO_WINDOW, SyncScore, audio_embeddings, median_filter, mfcc_windows,
                   sync_scores, usable_windows, video_embeddings)

CROP_SCALE = 0.4  # the crop reaches 0.4 half-sides past the box sideways and 0.8 below it
CROP_SIZE = 224
CROP_PAD_GREY = 110  # what the crop shows beyond the frame's edges
TRACK_MEDIAN = 13  # frames the crop's size and centre are median-filtered over
MIN_FRAMES = VIDEO_WINDOW + 1  # the last 5 frames start no window
# A generation's result this long is scored: one frame more than the least, as decoding at 25 fps may drop one.
MIN_SCORED_SECONDS = (MIN_FRAMES + 1) / FPS


def face_track(found: list[list[FaceBox]], fps: float, what: str, face_index: int = 0) -> list[FaceBox]:
    """One face's box in every frame, from per-frame detections: followed by overlap as generation follows it,
    every loss bridged (interpolated inside, held at the ends). face_index: 0 the largest, then left to right;
    with all faces asked for (a negative index), the largest is scored."""
    face_index = max(0, face_index)
    tracks = track.build_tracks(found, track.max_gap_frames(fps))
    if not tracks:
        raise NoFaceError(f"No face was found in any of the {len(found)} frames of {what}; lip sync is scored on "
                          f"a visible, frontal face.")
    if face_index >= len(tracks):
        raise NoFaceError(f"Face number {face_index} was asked for, but {what} shows {len(tracks)}.")
    filled = track.fill_gaps(tracks[face_index], len(found))
    return [FaceBox(cx, cy, w, h) for cx, cy, w, h in filled[:, :4]]


def crop_track(boxes: list[FaceBox]) -> np.ndarray:
    """(N, 3) half-side, centre x, centre y of each frame's crop, each median-filtered over TRACK_MEDIAN frames."""
    raw = np.array([(max(box.w, box.h) / 2, box.cx, box.cy) for box in boxes], np.float64).reshape(-1, 3)
    return np.stack([median_filter(column, TRACK_MEDIAN) for column in raw.T], axis=1)


def face_crop(frame: np.ndarray, half: float, cx: float, cy: float) -> np.ndarray:
    """The evaluation's 224×224 crop: a square of side 2·half·(1 + CROP_SCALE) centred on the box sideways, from
    half above its centre down past the chin, grey beyond the frame. Edges truncate as in the original, which
    sliced the frame padded by int(half·(1 + 2·CROP_SCALE)) on every side."""
    pad = int(half * (1 + 2 * CROP_SCALE))
    top, bottom = int(cy + pad - half) - pad, int(cy + pad + half * (1 + 2 * CROP_SCALE)) - pad
    left, right = int(cx + pad - half * (1 + CROP_SCALE)) - pad, int(cx + pad + half * (1 + CROP_SCALE)) - pad
    height, width = frame.shape[:2]
    face = np.full((max(1, bottom - top), max(1, right - left), 3), CROP_PAD_GREY, np.uint8)
    y1, y2, x1, x2 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    if y1 < y2 and x1 < x2:
        face[y1 - top:y2 - top, x1 - left:x2 - left] = frame[y1:y2, x1:x2]
    return cv2.resize(face, (CROP_SIZE, CROP_SIZE))


def face_crops(frames: Iterable[np.ndarray], boxes: list[FaceBox]) -> Iterator[np.ndarray]:
    """The crop of each BGR frame, from the median-filtered track of its boxes (one per frame)."""
    for frame, (half, cx, cy) in zip(frames, crop_track(boxes)):
        yield face_crop(frame, half, cx, cy)


def _check_frames(frames: int, what: str) -> None:
    if frames < MIN_FRAMES:
        raise FaceError(f"{what} has {frames} frame{'s' if frames != 1 else ''} at {FPS} fps; scoring lip sync "
                        f"needs at least {MIN_FRAMES} ({MIN_FRAMES / FPS:.2f} s).")


def _check_speech(samples: int) -> None:
    if samples // SAMPLES_PER_FRAME < MIN_FRAMES:
        raise AudioError(f"The speech is {samples / audio.SAMPLE_RATE:.2f} s long; scoring lip sync needs at least "
                         f"{MIN_FRAMES / FPS:.2f} s.")


def embed(frames: Iterable[np.ndarray], boxes: list[FaceBox], samples: np.ndarray,
          model: SyncNet) -> tuple[np.ndarray, np.ndarray]:
    """Video and audio embeddings, window i of each for frame i: (N, 1024) float32 both. `frames` are BGR at
    25 fps (a stream is fine: it is read once), `boxes` the face in each, `samples` 16 kHz mono in [-1, 1]."""
    _check_frames(len(boxes), "The video")
    _check_speech(len(samples))
    windows = usable_windows(len(boxes), len(samples))
    video_emb = video_embeddings(model, face_crops(frames, boxes), windows)
    if len(video_emb) < 1:
        raise FaceError(f"The video gave fewer than {MIN_FRAMES} frames to score.")
    return video_emb, audio_embeddings(model, mfcc_windows(samples, len(video_emb)))


def score_frames(frames: Iterable[np.ndarray], boxes: list[FaceBox], samples: np.ndarray,
                 model: SyncNet) -> SyncScore:
    """LSE-D, LSE-C and the offset of BGR frames at 25 fps with a face box in each, against 16 kHz speech."""
    return sync_scores(*embed(frames, boxes, samples, model))


@contextmanager
def _work_folder(work: str | os.PathLike | None) -> Iterator[Path]:
    if work is not None:
        yield Path(work)
        return
    with tempfile.TemporaryDirectory(prefix="lipsync-score-") as folder:
        yield Path(folder)


def boxes_at_25fps(boxes: list[FaceBox], fps: float) -> list[FaceBox]:
    """Per-frame boxes of a video at `fps` as per-frame boxes of the same video resampled to 25 fps (each 25 fps
    frame takes the box of the source frame nearest in time, as ffmpeg's fps filter takes the frame)."""
    count = math.ceil(len(boxes) * FPS / fps)
    return [boxes[min(len(boxes) - 1, round(index * fps / FPS))] for index in range(count)]


def score_video(video_path: str | os.PathLike, audio_path: str | os.PathLike | None = None, *,
                config: LipSyncConfig = LipSyncConfig(), model: SyncNet | None = None,
                detector: Detector | None = None, boxes: list[FaceBox] | None = None,
                boxes_fps: float | None = None, work: str | os.PathLike | None = None) -> SyncScore:
    """The lip-sync scores of a video file against its own sound, or against the recording at audio_path.
    The video is decoded at 25 fps (other rates resampled by ffmpeg), the sound at 16 kHz mono. The face is
    detected with config.detector, unless `boxes` gives it in each frame of the video at its own rate boxes_fps
    (a generation's face track). `model` defaults to syncnet_v2.model from the checkpoint registry."""
    path = Path(video_path)
    if not path.is_file():
        raise FaceError(f"The video '{path.name}' does not exist.")
    if model is None or (boxes is None and detector is None):  # before any slow work: a missing file fails at once
        resolved = runtime.resolve(config)
        if model is None:
            model = models.load_syncnet(resolved.checkpoints, resolved.device, resolved.score_dtype)
        if boxes is None and detector is None:
            detector = models.load_detector(config.detector, resolved.checkpoints, resolved.device,
                                            resolved.detector_dtype)
    source = video.open_face(path, config.output_size, config.max_image_pixels, config.still_fps)
    if source.is_still:
        raise FaceError(f"'{path.name}' is a still image; lip sync is scored on a video of at least "
                        f"{MIN_FRAMES} frames.")
    at_25fps = dataclasses.replace(source, fps=Fraction(FPS))
    with _work_folder(work) as folder:
        samples = audio.load_speech(audio_path or path, folder, config.max_audio_seconds).samples
    _check_speech(len(samples))
    if boxes is None:  # faces only where there is speech to score them against
        boxes = detect_track(at_25fps, detector, config, len(samples) // SAMPLES_PER_FRAME)
    else:
        boxes = boxes_at_25fps(boxes, boxes_fps or float(source.fps))
    _check_frames(len(boxes), f"'{path.name}'")
    frames = video.iter_video_frames(at_25fps, source.width, source.height, config.subprocess_timeout)
    with closing(frames):
        return score_frames(frames, boxes, samples, model)


def detect_track(source: video.FaceInput, detector: Detector, config: LipSyncConfig,
                 max_frames: int | None = None) -> list[FaceBox]:
    """The largest face's box in every frame (the first max_frames, if given), detected on small copies of the
    frames."""
    scale, small = finding.detection_size(source.width, source.height, False)
    frames = video.iter_video_frames(source, *small, config.subprocess_timeout)
    with closing(frames):
        found = finding.detect_faces(detector, itertools.islice(frames, max_frames), scale, align_roll=False,
                                    stride=finding.VIDEO_DETECT_STRIDE)
    _check_frames(len(found), f"'{source.path.name}'")
    return face_track(found, FPS, f"'{source.path.name}'")
