"""Where faces are: the detection policy over any detector (a downscaled copy, every stride-th frame of a video,
rotated retries, landmarks, the eye-line roll) and the per-process cache that answers a repeated request for the
same input without detecting again. Entry: `detect_faces`."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import torch

from ..config import ALL_FACES, LipSyncConfig
from ..errors import NoFaceError
from . import alignment, landmarks, track
from .boxes import SAME_FACE_IOU, FaceBox
from .detectors import MAX_FACES, Detector

DETECT_MAX_SIDE = 480  # detection runs on a copy at most this large; boxes are scaled back
VIDEO_DETECT_MAX_SIDE = 360  # smaller for videos, where detection runs on every frame
DETECT_BATCH = 16
VIDEO_DETECT_STRIDE = 2  # videos are searched on every 2nd frame, the frames between interpolated
RETRY_ANGLES = (15.0, -15.0, 30.0, -30.0)  # frames with no upright face are searched again, rotated
MAX_EYE_ROLL = 20.0  # degrees; a steeper "eye line" in a crop is two wrong detections (the eye cascade sees ±15°)
VIDEO_ROLL_EVERY = 4  # a video's eye line is looked for on every 4th searched frame
ROLL_SEARCH = (10.0, -10.0, 20.0, -20.0, 30.0, -30.0)  # stills: crops turned this much more are searched for eyes
HAAR_EYE = "haarcascade_eye.xml"
CACHE_ENTRIES = 16


def fixed_box(config: LipSyncConfig, width: int, height: int) -> FaceBox:
    """The face box given by hand (config.box), in place of detection."""
    top, bottom, left, right = config.box
    bottom, right = min(bottom, height), min(right, width)
    if top >= bottom or left >= right:
        raise NoFaceError(f"The face box {config.box} lies outside the {width}×{height} frame.")
    return FaceBox((left + right) / 2, (top + bottom) / 2, right - left, bottom - top)


# ---------------------------------------------------------------- rotated retries and eye roll

_eyes = threading.local()


def _eye_roll(frame: np.ndarray, box: FaceBox) -> float | None:
    """Roll correction from the eye line inside the upright crop (to be added to box.angle), or None when two eyes
    are not clear."""
    if not hasattr(_eyes, "cascade"):
        _eyes.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_EYE))
    size = 160
    crop = cv2.warpAffine(frame, box.crop_matrix(size), (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    upper = cv2.equalizeHist(cv2.cvtColor(crop[: size * 6 // 10], cv2.COLOR_BGR2GRAY))
    eyes = _eyes.cascade.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=4, minSize=(size // 10, size // 10),
                                          maxSize=(size // 3, size // 3))
    centres = sorted((x + w / 2, y + h / 2) for x, y, w, h in np.asarray(eyes).reshape(-1, 4))
    pairs = [(a, b) for i, a in enumerate(centres) for b in centres[i + 1:]
             if size * 0.2 < b[0] - a[0] < size * 0.7 and abs(b[1] - a[1]) < size * 0.25
             and (a[0] < size / 2) != (b[0] < size / 2)]
    if not pairs:
        return None
    left, right = max(pairs, key=lambda p: p[1][0] - p[0][0])
    # The eye line sloping down to the right (y grows downwards) needs a further counter-clockwise turn.
    roll = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    return roll if abs(roll) <= MAX_EYE_ROLL else None


def _measure_roll(frame: np.ndarray, box: FaceBox, search: bool) -> float | None:
    """The angle that makes the face upright, from its eye line; None when no two eyes are found. The eye cascade
    only finds eyes within about ±15° of level, so with `search` crops turned by ROLL_SEARCH are tried as well and
    their estimates' median wins (the Haar face cascade passes faces tilted by 25° as upright)."""
    roll = _eye_roll(frame, box)
    if roll is not None or not search:
        return None if roll is None else box.angle + roll
    found = []
    for offset in ROLL_SEARCH:
        roll = _eye_roll(frame, FaceBox(box.cx, box.cy, box.w, box.h, box.angle + offset))
        if roll is not None:
            found.append(box.angle + offset + roll)
    return float(np.median(found)) if found else None


def _to_boxes(rows: np.ndarray, scale: float, angle: float, centre: tuple[float, float]) -> list[FaceBox]:
    """Detector rows in a (possibly rotated) downscaled copy to FaceBoxes in full-frame pixels."""
    boxes = []
    back = cv2.getRotationMatrix2D(centre, -angle, 1.0)
    for x1, y1, x2, y2, _ in rows:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ox, oy = back @ [cx, cy, 1.0]
        boxes.append(FaceBox(ox / scale, oy / scale, (x2 - x1) / scale, (y2 - y1) / scale, angle))
    return boxes


def _strongest(rows: np.ndarray) -> np.ndarray:
    """At most MAX_FACES detector rows: the most confident, the largest among equals, in their own order."""
    if len(rows) <= MAX_FACES:
        return rows
    areas = (rows[:, 2] - rows[:, 0]) * (rows[:, 3] - rows[:, 1])
    return rows[np.sort(np.lexsort((-areas, -rows[:, 4]))[:MAX_FACES])]


def _retry_turned(detector: Detector, frames: list[np.ndarray], found: list[list[FaceBox]], scale: float) -> None:
    """Frames with no upright face searched again in rotated copies; the first angle that finds one wins."""
    for index in [i for i, boxes in enumerate(found) if not boxes]:
        frame = frames[index]
        centre = (frame.shape[1] / 2, frame.shape[0] / 2)
        for angle in RETRY_ANGLES:
            turned = cv2.warpAffine(frame, cv2.getRotationMatrix2D(centre, angle, 1.0), frame.shape[1::-1],
                                    borderMode=cv2.BORDER_REPLICATE)
            rows = detector.detect([turned])[0]
            if len(rows):
                found[index] = _to_boxes(_strongest(rows), scale, angle, centre)
                break


def _find_batch(detector: Detector, frames: list[np.ndarray], scale: float, align_roll: bool) -> list[list[FaceBox]]:
    """Faces per frame: upright first, then rotated copies for frames with none."""
    found = [_to_boxes(_strongest(rows), scale, 0.0, (0, 0)) for rows in detector.detect(frames)]
    if align_roll:
        _retry_turned(detector, frames, found, scale)
    return found


def _place_batch(frames: list[np.ndarray], found: list[list[FaceBox]], chosen: list[list[bool]], scale: float,
                 align_roll: bool, search_roll: bool, landmarker: torch.nn.Module | None) -> None:
    """Each chosen face's landmarks (on the face turned upright as found) and its roll from their eye centres, or,
    where they fail their gate, are not asked for or the face is not chosen, from the Haar eye cascade. search_roll
    (a still) also looks for the cascade's eye line in turned crops: thorough, and too slow for a video, whose eye
    line is looked for on every VIDEO_ROLL_EVERY-th searched frame only; the track interpolates the roll between
    the frames where it was measured."""
    marks = [[None] * len(boxes) for boxes in found]
    if landmarker is not None:
        wanted = [[box for box, keep in zip(boxes, keeps) if keep] for boxes, keeps in zip(found, chosen)]
        located = landmarks.locate(landmarker, frames, wanted, scale)
        for faces, keeps, got in zip(marks, chosen, located):
            places = [k for k, keep in enumerate(keeps) if keep]
            for k, face in zip(places, got):
                faces[k] = face
    for position, (frame, boxes, faces) in enumerate(zip(frames, found, marks)):
        eye_line = search_roll or position % VIDEO_ROLL_EVERY == 0
        for k, (box, face) in enumerate(zip(boxes, faces)):
            if face is not None and face.passed:
                angle = alignment.roll_degrees(face.points) if align_roll else box.angle
                boxes[k] = FaceBox(box.cx, box.cy, box.w, box.h, angle, eyes=align_roll, points=face.points)
            elif align_roll and eye_line:
                angle = _measure_roll(frame, box.scaled(scale), search_roll)
                if angle is not None:
                    boxes[k] = FaceBox(box.cx, box.cy, box.w, box.h, angle, eyes=True)


# ---------------------------------------------------------------- the entry

def detection_scale(width: int, height: int, still: bool) -> float:
    """The factor from full-frame size to the copy that detection runs on."""
    return min(1.0, (DETECT_MAX_SIDE if still else VIDEO_DETECT_MAX_SIDE) / max(width, height))


def detection_size(width: int, height: int, still: bool) -> tuple[float, tuple[int, int]]:
    """The scale of detection's copy and that copy's (width, height)."""
    scale = detection_scale(width, height, still)
    return scale, (max(2, round(width * scale)), max(2, round(height * scale)))


def detect_faces(detector: Detector, frames: Iterable[np.ndarray], scale: float, align_roll: bool, *,
                 still: bool = False, stride: int = 1, landmarker: torch.nn.Module | None = None,
                 face_index: int = ALL_FACES, max_gap: int | None = None,
                 on_batch: Callable[[int], None] = lambda done: None) -> list[list[FaceBox]]:
    """Faces in every frame, in full-frame pixels (`frames` are copies scaled by `scale`), with landmarks where a
    landmark model is given and they pass its gate: on the face that will be synced only (face_index, followed
    through the frames as track.plan_faces follows it with max_gap), or on every followed face for ALL_FACES. A
    still's roll is also searched in turned crops. With stride > 1 only every stride-th frame is searched; the
    frames between get boxes interpolated from the searched frames on both sides. on_batch(frames done) follows
    the progress."""
    searched: list[list[FaceBox]] = []
    follower = track.FaceFollower(max_gap)
    batch: list[np.ndarray] = []
    total = 0

    def search() -> None:
        found = _find_batch(detector, batch, scale, align_roll)
        first = len(searched)
        searched.extend(found)
        chosen = []
        # The frames up to this batch's last, interpolated ones included, in order: the plan follows them all.
        for index in range(follower.frames, (len(searched) - 1) * stride + 1):
            joined = follower.add(_between(searched, index, stride))
            if index % stride == 0:
                chosen.append([t is not None and face_index in (ALL_FACES, t) for t in joined])
        _place_batch(batch, searched[first:], chosen, scale, align_roll, still, landmarker)

    for frame in frames:
        if total % stride == 0:
            batch.append(frame)
        total += 1
        if len(batch) == DETECT_BATCH:
            search()
            batch = []
            on_batch(total)
    if batch:
        search()
        on_batch(total)
    return [_between(searched, index, stride) for index in range(total)]


def _between(searched: list[list[FaceBox]], index: int, stride: int) -> list[FaceBox]:
    """The faces of frame `index` from the frames searched at every stride-th index: a face seen on both sides
    is interpolated, its landmarks too where both sides have them; one seen on one side only counts as lost,
    except after the last searched frame, where it stays as it was."""
    before, offset = divmod(index, stride)
    if offset == 0:
        return searched[before]
    if before + 1 >= len(searched):
        return [FaceBox(b.cx, b.cy, b.w, b.h, b.angle, points=b.points) for b in searched[before]]
    t = offset / stride
    boxes = []
    for a in searched[before]:
        b = max(searched[before + 1], key=a.iou, default=None)
        if b is not None and a.iou(b) >= SAME_FACE_IOU:
            points = None if a.points is None or b.points is None else a.points + (b.points - a.points) * t
            boxes.append(FaceBox(*(x + (y - x) * t for x, y in ((a.cx, b.cx), (a.cy, b.cy), (a.w, b.w),
                                                                 (a.h, b.h), (a.angle, b.angle))), points=points))
    return boxes


# ---------------------------------------------------------------- the detection cache (per process)

class DetectionCache:
    """Detections per input and settings. Not functools.lru_cache: a cached video answers any request for no more
    frames than were detected."""

    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self.misses = 0  # lookups that ran detection
        self._found: OrderedDict[tuple, tuple[list[list[FaceBox]], bool]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, needed: int,
            run: Callable[[int], tuple[list[list[FaceBox]], bool]]) -> list[list[FaceBox]]:
        """Detections for the first `needed` frames (or all, if fewer) of an input. `run(needed)` detects them and
        says whether they reach the input's end."""
        with self._lock:
            if key in self._found:
                found, complete = self._found[key]
                if complete or len(found) >= needed:
                    self._found.move_to_end(key)
                    return found
        found, complete = run(needed)
        with self._lock:
            self.misses += 1
            self._found[key] = (found, complete)
            while len(self._found) > self.entries:
                self._found.popitem(last=False)
        return found

    def clear(self) -> None:
        """Forget every detection (the bench times first requests with it)."""
        with self._lock:
            self._found.clear()

    def __len__(self) -> int:
        return len(self._found)


CACHE = DetectionCache()
