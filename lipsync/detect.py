"""Finding faces: the detectors (S3FD or Haar), rotated retries and the eye-line roll, and the per-process cache
that answers a repeated request for the same input without detecting again. Entry: `detect_faces`."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import cv2
import numpy as np
import torch

from . import checkpoints
from .config import LipSyncConfig
from .errors import NoFaceError
from .geometry import SAME_FACE_IOU, FaceBox
from .inference import cpu_has_native_bf16

DETECT_MAX_SIDE = 480  # detection runs on a copy at most this large; boxes are scaled back
VIDEO_DETECT_MAX_SIDE = 360  # smaller for videos, where detection runs on every frame
DETECT_BATCH = 16
VIDEO_DETECT_STRIDE = 2  # videos are searched on every 2nd frame, the frames between interpolated
RETRY_ANGLES = (15.0, -15.0, 30.0, -30.0)  # frames with no upright face are searched again, rotated
MAX_EYE_ROLL = 20.0  # degrees; a steeper "eye line" in a crop is two wrong detections (the eye cascade sees ±15°)
ROLL_SEARCH = (10.0, -10.0, 20.0, -20.0, 30.0, -30.0)  # stills: crops turned this much more are searched for eyes
S3FD_THRESHOLD = 0.5  # boxes scoring below this are not faces (lower ones never outrank them in suppression)
S3FD_MAX_CANDIDATES = 750  # the most confident boxes kept for suppression: bounds its cost on any image
S3FD_NMS_IOU = 0.3  # a box overlapping a more confident one by more than this is the same face
S3FD_MEAN_BGR = (104.0, 117.0, 123.0)  # subtracted from the input, as in training
S3FD_VARIANCES = (0.1, 0.2)  # scale of the centre and size offsets, as in training
MAX_FACES = 20  # faces kept per frame, most confident (for the cascade: largest) first
HAAR_FACE = "haarcascade_frontalface_default.xml"
HAAR_EYE = "haarcascade_eye.xml"
CACHE_ENTRIES = 16


class Detector(Protocol):
    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Per BGR frame, an (n, 5) float32 array of [x1, y1, x2, y2, score] rows, one per face."""


# ---------------------------------------------------------------- detectors and their registry

class HaarDetector:
    """OpenCV's frontal-face cascade: no download, fine for frontal faces. Within a batch of consecutive frames,
    only the first is searched whole; the next ones are searched near the faces of the frame before (a narrow
    region and scale range, several times cheaper), with a whole-frame search whenever a face goes missing."""

    def __init__(self):
        self._local = threading.local()  # one cascade per thread: OpenCV does not promise it is thread-safe

    def _search(self, gray: np.ndarray, min_side: int, max_side: int = 0) -> np.ndarray:
        if not hasattr(self._local, "cascade"):
            self._local.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_FACE))
        boxes = self._local.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
                                            maxSize=(max_side, max_side))
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

    def _near(self, gray: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
        height, width = gray.shape
        rows = []
        for x1, y1, x2, y2, _ in previous:
            side = x2 - x1
            rx1, ry1 = int(max(0, x1 - side / 2)), int(max(0, y1 - side / 2))
            rx2, ry2 = int(min(width, x2 + side / 2)), int(min(height, y2 + side / 2))
            boxes = self._search(gray[ry1:ry2, rx1:rx2], max(24, int(side * 0.75)), int(side * 1.33) + 1)
            if not len(boxes):
                return None
            x, y, w, h = max(boxes, key=lambda b: b[2])
            rows.append([x + rx1, y + ry1, x + rx1 + w, y + ry1 + h, 1.0])
        return np.array(rows, dtype=np.float32).reshape(-1, 5)

    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        found = []
        previous = None
        for frame in frames:
            gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
            rows = self._near(gray, previous) if previous is not None and len(previous) else None
            if rows is None:
                boxes = self._search(gray, max(24, min(gray.shape) // 8))
                rows = np.hstack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], np.ones((len(boxes), 1), np.float32)])
            found.append(rows)
            previous = rows
        return found


class S3FDDetector:
    """S3FD (face-alignment's network) with the weights from the checkpoint registry. The decoding of its outputs is
    our own and bounded: only the S3FD_MAX_CANDIDATES most confident boxes go to non-maximum suppression, which
    stops at MAX_FACES, so no image (a plain grey one gives random weights thousands of boxes) makes it slow."""

    def __init__(self, device: str, local_dir: str | None, dtype: torch.dtype = torch.float32):
        from face_alignment.detection.sfd.net_s3fd import s3fd

        self.device = device
        self.dtype = dtype
        self.net = s3fd()
        self.net.load_state_dict(torch.load(checkpoints.s3fd_path(local_dir), map_location="cpu", weights_only=True))
        self.net.to(device, dtype).eval()
        self.mean = torch.tensor(S3FD_MEAN_BGR, device=device).view(1, 3, 1, 1)

    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        batch = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2).float() - self.mean
        batch = batch.to(self.dtype)
        with torch.inference_mode():
            outputs = self.net(batch)
        # Outputs alternate per level (stride 4, 8, …, 128): class logits (B, 2, H, W), box offsets (B, 4, H, W).
        scores = [torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy() for logits in outputs[0::2]]
        offsets = [offset.float().cpu().numpy() for offset in outputs[1::2]]
        return [_s3fd_boxes([level[i] for level in scores], [level[i] for level in offsets])
                for i in range(len(frames))]


def _s3fd_boxes(scores: list[np.ndarray], offsets: list[np.ndarray]) -> np.ndarray:
    """One image's [x1, y1, x2, y2, score] rows from S3FD's per-level score maps and box offsets."""
    rows = []
    for level, (score, offset) in enumerate(zip(scores, offsets)):
        ys, xs = np.nonzero(score > S3FD_THRESHOLD)
        if not len(ys):
            continue
        # Each cell's prior box: centred on the cell, four strides wide; offsets are scaled by the variances.
        stride = 2 ** (level + 2)
        prior = np.stack([stride / 2 + xs * stride, stride / 2 + ys * stride], axis=1).astype(np.float64)
        delta = offset[:, ys, xs].T.astype(np.float64)
        centre = prior + delta[:, :2] * S3FD_VARIANCES[0] * stride * 4
        size = stride * 4 * np.exp(delta[:, 2:] * S3FD_VARIANCES[1])
        rows.append(np.hstack([centre - size / 2, centre + size / 2, score[ys, xs][:, None]]))
    if not rows:
        return np.zeros((0, 5), np.float32)
    candidates = np.concatenate(rows)
    if len(candidates) > S3FD_MAX_CANDIDATES:
        candidates = candidates[np.argpartition(-candidates[:, 4], S3FD_MAX_CANDIDATES)[:S3FD_MAX_CANDIDATES]]
    return _suppress_overlaps(candidates).astype(np.float32)


def _suppress_overlaps(rows: np.ndarray) -> np.ndarray:
    """Greedy non-maximum suppression, most confident first, up to MAX_FACES boxes (pixel-inclusive areas, as
    S3FD was tuned with)."""
    rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    x1, y1, x2, y2 = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    left = np.arange(len(rows))
    keep = []
    while len(left) and len(keep) < MAX_FACES:
        best, rest = left[0], left[1:]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = w * h / (areas[best] + areas[rest] - w * h)
        left = rest[overlap <= S3FD_NMS_IOU]
    return rows[keep]


# Detectors are made once per process and reused, like the models in checkpoints.py: S3FD loads 90 MB.
_detectors: dict[tuple, Detector] = {}
_detectors_lock = threading.Lock()


def get_detector(config: LipSyncConfig, device: str) -> Detector:
    """The detector the config asks for, made once per process. S3FD runs in bf16 on a CPU that does bf16
    natively (unless fp32 is asked for): about 1.5x faster there, its boxes within 0.2 % of their size."""
    reduced = config.detector == "s3fd" and device == "cpu" and config.precision in ("auto", "bf16")
    dtype = torch.bfloat16 if reduced and cpu_has_native_bf16() else torch.float32
    key = (config.detector, device, dtype, str(checkpoints.checkpoint_dir(config.checkpoint_dir)))
    with _detectors_lock:
        if key not in _detectors:
            _detectors[key] = (HaarDetector() if config.detector == "haar"
                               else S3FDDetector(device, config.checkpoint_dir, dtype))
        return _detectors[key]


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


def _detect_batch(detector: Detector, frames: list[np.ndarray], scale: float, align_roll: bool,
                  search_roll: bool) -> list[list[FaceBox]]:
    """Faces per frame: upright first, then rotated copies for frames with none; roll measured on the eye line.
    search_roll also looks for the eye line in turned crops: thorough, and too slow for every frame of a video,
    where the roll of other frames fills in."""
    found = [_to_boxes(_strongest(rows), scale, 0.0, (0, 0)) for rows in detector.detect(frames)]
    if align_roll:
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
        for index, boxes in enumerate(found):
            for k, box in enumerate(boxes):
                local = FaceBox(box.cx * scale, box.cy * scale, box.w * scale, box.h * scale, box.angle)
                angle = _measure_roll(frames[index], local, search_roll)
                if angle is not None:
                    boxes[k] = FaceBox(box.cx, box.cy, box.w, box.h, angle, eyes=True)
    return found


# ---------------------------------------------------------------- the entry

def detection_scale(width: int, height: int, still: bool) -> float:
    """The factor from full-frame size to the copy that detection runs on."""
    return min(1.0, (DETECT_MAX_SIDE if still else VIDEO_DETECT_MAX_SIDE) / max(width, height))


def detect_faces(detector: Detector, frames: Iterable[np.ndarray], scale: float, align_roll: bool, *,
                 still: bool = False, stride: int = 1,
                 on_batch: Callable[[int], None] = lambda done: None) -> list[list[FaceBox]]:
    """Faces in every frame, in full-frame pixels (`frames` are copies scaled by `scale`). A still's roll is also
    searched in turned crops. With stride > 1 only every stride-th frame is searched; the frames between get
    boxes interpolated from the searched frames on both sides. on_batch(frames done) follows the progress."""
    searched: list[list[FaceBox]] = []
    batch: list[np.ndarray] = []
    total = 0
    for frame in frames:
        if total % stride == 0:
            batch.append(frame)
        total += 1
        if len(batch) == DETECT_BATCH:
            searched += _detect_batch(detector, batch, scale, align_roll, search_roll=still)
            batch = []
            on_batch(total)
    if batch:
        searched += _detect_batch(detector, batch, scale, align_roll, search_roll=still)
        on_batch(total)
    return [_between(searched, index, stride) for index in range(total)]


def _between(searched: list[list[FaceBox]], index: int, stride: int) -> list[FaceBox]:
    """The faces of frame `index` from the frames searched at every stride-th index: a face seen on both sides
    is interpolated; one seen on one side only counts as lost, except after the last searched frame."""
    before, offset = divmod(index, stride)
    if offset == 0:
        return searched[before]
    if before + 1 >= len(searched):
        return [FaceBox(b.cx, b.cy, b.w, b.h, b.angle) for b in searched[before]]
    t = offset / stride
    boxes = []
    for a in searched[before]:
        b = max(searched[before + 1], key=a.iou, default=None)
        if b is not None and a.iou(b) >= SAME_FACE_IOU:
            boxes.append(FaceBox(*(x + (y - x) * t for x, y in ((a.cx, b.cx), (a.cy, b.cy), (a.w, b.w),
                                                                 (a.h, b.h), (a.angle, b.angle)))))
    return boxes


# ---------------------------------------------------------------- the detection cache (per process)

@dataclass(frozen=True)
class CacheInfo:
    hits: int  # lookups answered from the cache
    misses: int  # lookups that ran detection
    entries: int


# Not functools.lru_cache: a cached video answers any request for no more frames than were detected.
_cache: OrderedDict[tuple, tuple[list[list[FaceBox]], bool]] = OrderedDict()
_cache_lock = threading.Lock()
_hits = _misses = 0


def cached_detections(key: tuple, needed: int,
                      run: Callable[[int], tuple[list[list[FaceBox]], bool]]) -> list[list[FaceBox]]:
    """Detections for the first `needed` frames (or all, if fewer) of an input, from the cache when the same bytes
    were seen with the same settings. `run(needed)` returns the detections and whether they reach the input's end."""
    global _hits, _misses
    with _cache_lock:
        if key in _cache:
            found, complete = _cache[key]
            if complete or len(found) >= needed:
                _cache.move_to_end(key)
                _hits += 1
                return found
    found, complete = run(needed)
    with _cache_lock:
        _misses += 1
        _cache[key] = (found, complete)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return found


def clear_cache() -> None:
    """Forget every cached detection (the bench times first requests with it)."""
    with _cache_lock:
        _cache.clear()


def cache_info() -> CacheInfo:
    with _cache_lock:
        return CacheInfo(_hits, _misses, len(_cache))
