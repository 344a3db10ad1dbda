"""Find the face to sync in every frame: detect (S3FD or Haar) once per input, track, fill gaps, smooth, align."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from . import checkpoints
from .config import ALL_FACES, LipSyncConfig
from .errors import NoFaceError

DETECT_MAX_SIDE = 480  # detection runs on a copy at most this large; boxes are scaled back
VIDEO_DETECT_MAX_SIDE = 360  # smaller for videos, where detection runs on every frame
DETECT_BATCH = 16
VIDEO_DETECT_STRIDE = 2  # videos are searched on every 2nd frame, the frames between interpolated
MIN_TRACK_IOU = 0.1  # boxes in neighbouring frames overlapping this much are the same face
RETRY_ANGLES = (15.0, -15.0, 30.0, -30.0)  # frames with no upright face are searched again, rotated
MAX_EYE_ROLL = 20.0  # degrees; a steeper "eye line" in a crop is two wrong detections (the eye cascade sees ±15°)
ROLL_SEARCH = (10.0, -10.0, 20.0, -20.0, 30.0, -30.0)  # stills: crops turned this much more are searched for eyes
MIN_EYE_ROLL = 3.0  # degrees; a face whose roll never reaches this stays upright (smaller tilts are noise)
ROLL_MEDIAN = 5  # eye-line measurements in a track are median-filtered over this many, against odd false pairs
MAX_GAP_SECONDS = 0.5  # shorter losses of the face are bridged by interpolation; after longer ones it is searched anew
# One-euro smoothing, on positions and sizes in face widths (so it behaves alike at every resolution) and on the
# roll in radians / 2 (the corner displacement it causes, in face widths).
ONE_EURO_MIN_CUTOFF = 1.0  # Hz: the smoothing of a still face
ONE_EURO_BETA = 2.0  # per (face width per second): how quickly the cutoff opens up for a moving face
ONE_EURO_D_CUTOFF = 1.0  # Hz
S3FD_THRESHOLD = 0.5
HAAR_FACE = "haarcascade_frontalface_default.xml"
HAAR_EYE = "haarcascade_eye.xml"
CACHE_ENTRIES = 16


@dataclass(frozen=True)
class FaceBox:
    """A face's box in frame pixels; rotating the frame by `angle` degrees (OpenCV's sense: counter-clockwise on
    screen) about its centre makes it upright. `eyes`: the angle was measured on the eye line."""
    cx: float
    cy: float
    w: float
    h: float
    angle: float = 0.0
    eyes: bool = False

    def crop_matrix(self, size: int) -> np.ndarray:
        """2×3 affine map from frame pixels to the upright size×size crop of this box, on the sampling grid of
        cv2.resize (pixel centres at +0.5), the grid the released models' training crops were made on."""
        rotate = np.vstack([cv2.getRotationMatrix2D((self.cx, self.cy), self.angle, 1.0), [0, 0, 1]])
        scale_x, scale_y = size / self.w, size / self.h
        to_crop = np.array([[scale_x, 0, (0.5 - (self.cx - self.w / 2)) * scale_x - 0.5],
                            [0, scale_y, (0.5 - (self.cy - self.h / 2)) * scale_y - 0.5],
                            [0, 0, 1]])
        return (to_crop @ rotate)[:2]

    def bounds(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Axis-aligned (x1, y1, x2, y2) covering the (rotated) box, clipped to the frame."""
        theta = math.radians(self.angle)
        half_w = abs(self.w / 2 * math.cos(theta)) + abs(self.h / 2 * math.sin(theta))
        half_h = abs(self.w / 2 * math.sin(theta)) + abs(self.h / 2 * math.cos(theta))
        x1, y1 = math.floor(self.cx - half_w), math.floor(self.cy - half_h)
        x2, y2 = math.ceil(self.cx + half_w), math.ceil(self.cy + half_h)
        return max(0, x1), max(0, y1), min(width, x2), min(height, y2)

    def padded(self, pads: tuple[int, int, int, int], width: int, height: int) -> "FaceBox":
        top, bottom, left, right = pads
        x1, x2 = -self.w / 2 - left, self.w / 2 + right
        y1, y2 = -self.h / 2 - top, self.h / 2 + bottom
        if self.angle == 0.0:  # upright boxes stay inside the frame, as the original crop did
            x1, x2 = max(x1, -self.cx), min(x2, width - self.cx)
            y1, y2 = max(y1, -self.cy), min(y2, height - self.cy)
        theta = math.radians(self.angle)
        shift_x, shift_y = (x1 + x2) / 2, (y1 + y2) / 2
        # Shift the centre along the face's own axes (the inverse of the upright rotation).
        cx = self.cx + shift_x * math.cos(theta) - shift_y * math.sin(theta)
        cy = self.cy + shift_x * math.sin(theta) + shift_y * math.cos(theta)
        return FaceBox(cx, cy, max(2.0, x2 - x1), max(2.0, y2 - y1), self.angle)


# ---------------------------------------------------------------- detectors

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
    """S3FD through face-alignment, with the weights from the checkpoint registry."""

    def __init__(self, device: str, local_dir: str | None):
        from face_alignment.detection.sfd.sfd_detector import SFDDetector

        self.device = device
        self.net = SFDDetector(device, path_to_detector=str(checkpoints.s3fd_path(local_dir)),
                               filter_threshold=S3FD_THRESHOLD)

    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        rgb = np.stack(frames)[..., ::-1].transpose(0, 3, 1, 2)
        batch = torch.from_numpy(np.ascontiguousarray(rgb)).float()
        found = self.net.detect_from_batch(batch)
        return [np.array(boxes, dtype=np.float32).reshape(-1, 5) for boxes in found]


_detectors: dict[tuple, object] = {}
_detectors_lock = threading.Lock()


def get_detector(config: LipSyncConfig, device: str):
    key = (config.detector, device, str(checkpoints.checkpoint_dir(config.checkpoint_dir)))
    with _detectors_lock:
        if key not in _detectors:
            _detectors[key] = HaarDetector() if config.detector == "haar" else S3FDDetector(device, config.checkpoint_dir)
        return _detectors[key]


# ---------------------------------------------------------------- detection with rotation retries and eye roll

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


def detect_frames(detector, frames: list[np.ndarray], scale: float, full_frames: list[np.ndarray] | None,
                  align_roll: bool, search_roll: bool | None = None) -> list[list[FaceBox]]:
    """Faces per frame: upright first, then rotated copies for frames with none; roll measured on the eye line.
    search_roll (default: when given a single frame, as for a still) also looks for the eye line in turned crops:
    thorough, and too slow for every frame of a video, where the roll of other frames fills in."""
    if search_roll is None:
        search_roll = len(frames) == 1
    found = [_to_boxes(rows, scale, 0.0, (0, 0)) for rows in detector.detect(frames)]
    if align_roll:
        for index in [i for i, boxes in enumerate(found) if not boxes]:
            frame = frames[index]
            centre = (frame.shape[1] / 2, frame.shape[0] / 2)
            for angle in RETRY_ANGLES:
                turned = cv2.warpAffine(frame, cv2.getRotationMatrix2D(centre, angle, 1.0), frame.shape[1::-1],
                                        borderMode=cv2.BORDER_REPLICATE)
                rows = detector.detect([turned])[0]
                if len(rows):
                    found[index] = _to_boxes(rows, scale, angle, centre)
                    break
        for index, boxes in enumerate(found):
            source = (full_frames or frames)[index]
            factor = 1.0 if full_frames else scale
            for k, box in enumerate(boxes):
                local = FaceBox(box.cx * factor, box.cy * factor, box.w * factor, box.h * factor, box.angle)
                angle = _measure_roll(source, local, search_roll)
                if angle is not None:
                    boxes[k] = FaceBox(box.cx, box.cy, box.w, box.h, angle, eyes=True)
    return found


# ---------------------------------------------------------------- cache and statistics

@dataclass
class DetectionStats:
    passes: int = 0  # detection passes actually run (cache hits excluded)


STATS = DetectionStats()
_cache: OrderedDict[tuple, tuple[list[list[FaceBox]], bool]] = OrderedDict()
_cache_lock = threading.Lock()


def detect_input(key: tuple, needed: int,
                 run: Callable[[int], tuple[list[list[FaceBox]], bool]]) -> list[list[FaceBox]]:
    """Detections for the first `needed` frames (or all, if fewer) of an input, from the cache when the same bytes
    were seen with the same settings. `run(needed)` returns the detections and whether they reach the input's end."""
    with _cache_lock:
        if key in _cache:
            found, complete = _cache[key]
            if complete or len(found) >= needed:
                _cache.move_to_end(key)
                return found
    found, complete = run(needed)
    with _cache_lock:
        STATS.passes += 1
        _cache[key] = (found, complete)
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
    return found


def detection_scale(width: int, height: int, still: bool) -> float:
    return min(1.0, (DETECT_MAX_SIDE if still else VIDEO_DETECT_MAX_SIDE) / max(width, height))


def detect_in_batches(detector, frames: Iterable[np.ndarray], scale: float, align_roll: bool,
                      on_batch: Callable[[int], None] = lambda done: None, stride: int = 1) -> list[list[FaceBox]]:
    """Faces in every frame of a stream. With stride > 1 only every stride-th frame is searched; the frames
    between get boxes interpolated from the searched frames on both sides."""
    searched: list[list[FaceBox]] = []
    batch: list[np.ndarray] = []
    total = 0
    for frame in frames:
        if total % stride == 0:
            batch.append(frame)
        total += 1
        if len(batch) == DETECT_BATCH:
            searched += detect_frames(detector, batch, scale, None, align_roll, search_roll=False)
            batch = []
            on_batch(total)
    if batch:
        searched += detect_frames(detector, batch, scale, None, align_roll, search_roll=False)
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
        b = max(searched[before + 1], key=lambda candidate: _iou(a, candidate), default=None)
        if b is not None and _iou(a, b) >= MIN_TRACK_IOU:
            boxes.append(FaceBox(*(x + (y - x) * t for x, y in ((a.cx, b.cx), (a.cy, b.cy), (a.w, b.w),
                                                                 (a.h, b.h), (a.angle, b.angle)))))
    return boxes


# ---------------------------------------------------------------- tracking, gaps, smoothing

def _iou(a: FaceBox, b: FaceBox) -> float:
    ax1, ay1, ax2, ay2 = a.cx - a.w / 2, a.cy - a.h / 2, a.cx + a.w / 2, a.cy + a.h / 2
    bx1, by1, bx2, by2 = b.cx - b.w / 2, b.cy - b.h / 2, b.cx + b.w / 2, b.cy + b.h / 2
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def order_faces(boxes: list[FaceBox]) -> list[FaceBox]:
    """The largest face first, then the others from left to right."""
    if not boxes:
        return []
    largest = max(boxes, key=lambda b: b.w * b.h)
    return [largest] + sorted((b for b in boxes if b is not largest), key=lambda b: b.cx)


def build_tracks(found: list[list[FaceBox]], max_gap: int | None = None) -> list[np.ndarray]:
    """One (n, 6) array [cx, cy, w, h, angle, eyes] per face seen in the first frame with faces, NaN where lost.
    A face is followed by overlap from frame to frame. With max_gap, a face lost for longer than that (a cut, or
    someone leaving the picture) takes the largest unclaimed face wherever it shows up, provided that face then
    stays for at least max_gap frames (a passing false detection does not)."""
    start = next((i for i, boxes in enumerate(found) if boxes), None)
    if start is None:
        return []
    first = order_faces(found[start])
    tracks = [np.full((len(found), 6), np.nan) for _ in first]
    last = list(first)
    seen = [start] * len(first)  # the last frame each track was matched in
    restarts: list[tuple[int, int]] = []  # (track, frame) where a lost track took a face anew

    def take(t: int, index: int, box: FaceBox) -> None:
        tracks[t][index] = (box.cx, box.cy, box.w, box.h, box.angle, float(box.eyes))
        last[t], seen[t] = box, index

    for index in range(start, len(found)):
        free = list(found[index])
        lost = [t for t in range(len(last)) if max_gap is not None and index - seen[t] > max_gap + 1]
        for t in [t for t in range(len(last)) if t not in lost] + lost:  # faces still followed choose first
            if not free:
                break
            best = max(free, key=lambda b: _iou(last[t], b))
            if _iou(last[t], best) >= MIN_TRACK_IOU:
                take(t, index, best)
                free.remove(best)
        for t in lost:
            if seen[t] < index and free:
                best = order_faces(free)[0]
                take(t, index, best)
                free.remove(best)
                restarts.append((t, index))
    for t, index in restarts:
        valid = ~np.isnan(tracks[t][index:, 0])
        length = len(valid) if valid.all() else int(np.argmin(valid))
        if length < max_gap:
            tracks[t][index:index + length] = np.nan
    return tracks


def fill_gaps(track: np.ndarray, max_gap: int) -> np.ndarray:
    """Bridge losses of at most max_gap frames: interpolate inside, hold at the ends."""
    track = track.copy()
    valid = ~np.isnan(track[:, 0])
    if not valid.any():
        return track
    index = np.arange(len(track))
    known = index[valid]
    nearest = np.minimum(np.abs(index[:, None] - known[None, :]).min(axis=1), len(track))
    # Size of the gap each frame sits in: distance to the known frames on both sides.
    before = np.array([known[known < i].max(initial=-10**9) for i in index])
    after = np.array([known[known > i].min(initial=10**9) for i in index])
    inside = (before >= 0) & (after < len(track))
    gap = np.where(inside, after - before - 1, nearest)
    bridge = ~valid & (gap <= max_gap)
    for column in range(track.shape[1]):
        track[bridge, column] = np.interp(index[bridge], known, track[valid, column])
    return track


def _runs(track: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each stretch of frames where the track has a box."""
    valid = ~np.isnan(track[:, 0])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def settle_roll(track: np.ndarray) -> np.ndarray:
    """Within each run of a [cx, cy, w, h, angle, eyes] track, the roll of frames where no eye line was measured
    (eyes closed, a small face, a coarse rotated retry) is interpolated from the frames where it was, those
    median-filtered against odd false eye pairs. Runs with no measurement keep the detector's angles."""
    track = track.copy()
    for start, end in _runs(track):
        run = track[start:end]
        measured = run[:, 5] >= 1.0
        if not measured.any():
            continue
        angles = run[measured, 4]
        if len(angles) >= 3:
            padded = np.pad(angles, ROLL_MEDIAN // 2, mode="edge")
            angles = np.array([np.median(padded[i:i + ROLL_MEDIAN]) for i in range(len(angles))])
        frames = np.arange(len(run))
        run[:, 4] = np.interp(frames, frames[measured], angles)
    return track


def one_euro(values: np.ndarray, fps: float, min_cutoff: float | None = None, beta: float | None = None,
             d_cutoff: float | None = None) -> np.ndarray:
    """One-euro filter (Casiez et al. 2012): strong smoothing when still, little lag when moving. The settings
    default to the ONE_EURO_* constants."""
    min_cutoff = ONE_EURO_MIN_CUTOFF if min_cutoff is None else min_cutoff
    beta = ONE_EURO_BETA if beta is None else beta
    d_cutoff = ONE_EURO_D_CUTOFF if d_cutoff is None else d_cutoff

    def alpha(cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    out = np.empty_like(values)
    out[0] = values[0]
    derivative = 0.0
    for i in range(1, len(values)):
        raw_derivative = (values[i] - out[i - 1]) * fps
        derivative += alpha(d_cutoff) * (raw_derivative - derivative)
        cutoff = min_cutoff + beta * abs(derivative)
        out[i] = out[i - 1] + alpha(cutoff) * (values[i] - out[i - 1])
    return out


def smooth_track(track: np.ndarray, method: str, fps: float) -> np.ndarray:
    """Smooth [cx, cy, w, h, angle] of each continuous run of a track; one-euro runs both ways and averages, so it
    adds no lag offline. Positions and sizes are filtered in face widths and the roll as the shift it causes at
    the box's corners, so the same settings suit every resolution."""
    if method == "none":
        return track
    track = track.copy()
    for start, end in _runs(track):
        run = track[start:end]
        units = [float(np.median(run[:, 2]))] * 4 + [2 * 180 / math.pi]  # pixels, degrees per unit
        for column, unit in enumerate(units):
            values = run[:, column] / unit
            if method == "mean":
                smoothed = np.convolve(np.pad(values, 2, mode="edge"), np.ones(5) / 5, mode="valid")
            else:
                smoothed = (one_euro(values, fps) + one_euro(values[::-1], fps)[::-1]) / 2
            run[:, column] = smoothed * unit
    return track


def level_small_rolls(track: np.ndarray) -> np.ndarray:
    """Runs whose roll never reaches MIN_EYE_ROLL are made exactly upright: such small tilts are mostly noise."""
    track = track.copy()
    for start, end in _runs(track):
        if np.all(np.abs(track[start:end, 4]) < MIN_EYE_ROLL):
            track[start:end, 4] = 0.0
    return track


def plan_faces(found: list[list[FaceBox]], config: LipSyncConfig, fps: float, width: int, height: int,
               first_frame_label: Callable[[int], str]) -> list[list[FaceBox]]:
    """Per source frame, the padded, smoothed boxes of the chosen face(s); an empty list passes the frame through."""
    max_gap = max(1, round(MAX_GAP_SECONDS * fps))
    tracks = build_tracks(found, max_gap)
    if not tracks:
        raise NoFaceError(f"No face was found in {first_frame_label(len(found))}. Use a clearer, frontal face, "
                          f"another detector, or give the face box by hand.")
    if config.face_index != ALL_FACES:
        if config.face_index >= len(tracks):
            raise NoFaceError(f"Face number {config.face_index} was asked for, but only {len(tracks)} "
                              f"face{'s were' if len(tracks) > 1 else ' was'} found (numbering starts at 0).")
        tracks = [tracks[config.face_index]]
    tracks = [level_small_rolls(smooth_track(settle_roll(fill_gaps(track, max_gap)), config.smoothing, fps))
              for track in tracks]
    plan = []
    for index in range(len(found)):
        boxes = []
        for track in tracks:
            if not np.isnan(track[index, 0]):
                cx, cy, w, h, angle = track[index, :5]
                boxes.append(FaceBox(cx, cy, w, h, angle).padded(config.pads, width, height))
        plan.append(boxes)
    return plan


def fixed_box(config: LipSyncConfig, width: int, height: int) -> FaceBox:
    top, bottom, left, right = config.box
    bottom, right = min(bottom, height), min(right, width)
    if top >= bottom or left >= right:
        raise NoFaceError(f"The face box {config.box} lies outside the {width}×{height} frame.")
    return FaceBox((left + right) / 2, (top + bottom) / 2, right - left, bottom - top)
