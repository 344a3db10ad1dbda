"""Following faces over time: tracks from frame to frame, gap filling, roll settling, smoothing (of boxes and
landmarks), and the plan of boxes to sync per frame. Entry: `plan_faces`."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..config import ALL_FACES, LipSyncConfig
from ..errors import NoFaceError
from .boxes import SAME_FACE_IOU, FaceBox
from .landmarks import NUM_POINTS

MIN_EYE_ROLL = 3.0  # degrees; a face whose roll never reaches this stays upright (smaller tilts are noise)
ROLL_MEDIAN = 5  # eye-line measurements in a track are median-filtered over this many, against odd false pairs
MAX_GAP_SECONDS = 0.5  # shorter losses of the face are bridged by interpolation; after longer ones it is searched anew
# One-euro smoothing, on positions and sizes in face widths (so it behaves alike at every resolution) and on the
# roll in radians / 2 (the corner displacement it causes, in face widths).
ONE_EURO_MIN_CUTOFF = 1.0  # Hz: the smoothing of a still face
ONE_EURO_BETA = 2.0  # per (face width per second): how quickly the cutoff opens up for a moving face
ONE_EURO_D_CUTOFF = 1.0  # Hz
# A track's columns: the box [cx, cy, w, h, angle], whether the angle was measured on the eyes, then the 68
# landmarks as x0, y0, x1, y1, … (NaN where the face has none).
POINTS = slice(6, 6 + 2 * NUM_POINTS)


def order_faces(boxes: list[FaceBox]) -> list[FaceBox]:
    """The largest face first, then the others from left to right."""
    if not boxes:
        return []
    largest = max(boxes, key=lambda b: b.w * b.h)
    return [largest] + sorted((b for b in boxes if b is not largest), key=lambda b: b.cx)


class FaceFollower:
    """Faces followed frame by frame, as they are found: the faces of the first frame with faces become the tracks,
    in order_faces order. A face is followed by overlap from frame to frame. With max_gap, a face lost for longer
    than that (a cut, or someone leaving the picture) takes the largest unclaimed face wherever it shows up,
    provided that face then stays for at least max_gap frames (a passing false detection does not: `tracks`
    drops it, since only the frames after it can tell)."""

    def __init__(self, max_gap: int | None = None):
        self.max_gap = max_gap
        self.frames = 0
        self.rows: list[dict[int, FaceBox]] = []  # per track: frame index -> its box
        self.last: list[FaceBox] = []
        self.seen: list[int] = []  # the last frame each track was matched in
        self.restarts: list[tuple[int, int]] = []  # (track, frame) where a lost track took a face anew

    def add(self, boxes: list[FaceBox]) -> list[int | None]:
        """Follow the next frame's faces; returns, for each of its boxes, the track it joined (None: none)."""
        index, joined = self.frames, [None] * len(boxes)
        self.frames += 1
        if not self.rows:
            for box in order_faces(boxes):
                self.rows.append({})
                self.last.append(box)
                self.seen.append(index)
        free = list(range(len(boxes)))

        def take(t: int, k: int) -> None:
            self.rows[t][index], self.last[t], self.seen[t], joined[k] = boxes[k], boxes[k], index, t
            free.remove(k)

        tracks = range(len(self.rows))
        lost = [t for t in tracks if self.max_gap is not None and index - self.seen[t] > self.max_gap + 1]
        for t in [t for t in tracks if t not in lost] + lost:  # faces still followed choose first
            if not free:
                break
            best = max(free, key=lambda k: self.last[t].iou(boxes[k]))
            if self.last[t].iou(boxes[best]) >= SAME_FACE_IOU:
                take(t, best)
        for t in lost:
            if self.seen[t] < index and free:
                largest = order_faces([boxes[k] for k in free])[0]
                take(t, next(k for k in free if boxes[k] is largest))
                self.restarts.append((t, index))
        return joined

    def tracks(self) -> list[np.ndarray]:
        """One (frames, 142) array [cx, cy, w, h, angle, eyes, points…] per track, NaN where lost (the points also
        where the face had none)."""
        arrays = []
        for rows in self.rows:
            track = np.full((self.frames, POINTS.stop), np.nan)
            for index, box in rows.items():
                track[index, :POINTS.start] = (box.cx, box.cy, box.w, box.h, box.angle, float(box.eyes))
                if box.points is not None:
                    track[index, POINTS] = box.points.ravel()
            arrays.append(track)
        for t, index in self.restarts:
            valid = ~np.isnan(arrays[t][index:, 0])
            length = len(valid) if valid.all() else int(np.argmin(valid))
            if length < self.max_gap:
                arrays[t][index:index + length] = np.nan
        return arrays


def max_gap_frames(fps: float) -> int:
    """The longest loss of a face, in frames, that is bridged rather than searched anew."""
    return max(1, round(MAX_GAP_SECONDS * fps))


def build_tracks(found: list[list[FaceBox]], max_gap: int | None = None) -> list[np.ndarray]:
    """The tracks of FaceFollower over every frame's faces; none when no frame has a face."""
    follower = FaceFollower(max_gap)
    for boxes in found:
        follower.add(boxes)
    return follower.tracks()


def fill_gaps(track: np.ndarray, max_gap: int) -> np.ndarray:
    """Bridge losses of at most max_gap frames: interpolate inside, hold at the ends. Landmarks are bridged only
    where the frames they come from have them (interpolating NaN gives NaN)."""
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


def _settle_roll(track: np.ndarray) -> np.ndarray:
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


def _one_euro(values: np.ndarray, fps: float) -> np.ndarray:
    """One-euro filter (Casiez et al. 2012) with the ONE_EURO_* settings: strong smoothing when still, little lag
    when moving. Along the first axis; each column of a 2-D array on its own."""

    def alpha(cutoff: float) -> float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau * fps)

    out = np.empty_like(values)
    out[0] = values[0]
    derivative = 0.0
    for i in range(1, len(values)):
        raw_derivative = (values[i] - out[i - 1]) * fps
        derivative += alpha(ONE_EURO_D_CUTOFF) * (raw_derivative - derivative)
        cutoff = ONE_EURO_MIN_CUTOFF + ONE_EURO_BETA * abs(derivative)
        out[i] = out[i - 1] + alpha(cutoff) * (values[i] - out[i - 1])
    return out


def _smoothed(values: np.ndarray, method: str, fps: float) -> np.ndarray:
    """`values` (frames first) smoothed over time: a 5-frame mean, or one-euro run both ways and averaged, so it
    adds no lag offline."""
    if method == "mean":
        padded = np.pad(values, [(2, 2)] + [(0, 0)] * (values.ndim - 1), mode="edge")
        return sum(padded[i:i + len(values)] for i in range(5)) / 5
    return (_one_euro(values, fps) + _one_euro(values[::-1], fps)[::-1]) / 2


def _smooth_track(track: np.ndarray, method: str, fps: float) -> np.ndarray:
    """Smooth [cx, cy, w, h, angle] of each continuous run of a track, and the landmarks of each run of frames
    that have them. Positions and sizes are filtered in face widths and the roll as the shift it causes at the
    box's corners, so the same settings suit every resolution."""
    if method == "none":
        return track
    track = track.copy()
    for start, end in _runs(track):
        run = track[start:end]
        width = float(np.median(run[:, 2]))
        units = [width] * 4 + [2 * 180 / math.pi]  # pixels, degrees per unit
        for column, unit in enumerate(units):
            run[:, column] = _smoothed(run[:, column] / unit, method, fps) * unit
        points = run[:, POINTS]
        for first, last in _runs(points):
            points[first:last] = _smoothed(points[first:last] / width, method, fps) * width
    return track


def _level_small_rolls(track: np.ndarray) -> np.ndarray:
    """Runs whose roll never reaches MIN_EYE_ROLL are made exactly upright: such small tilts are mostly noise."""
    track = track.copy()
    for start, end in _runs(track):
        if np.all(np.abs(track[start:end, 4]) < MIN_EYE_ROLL):
            track[start:end, 4] = 0.0
    return track


def plan_faces(found: list[list[FaceBox]], config: LipSyncConfig, fps: float, width: int, height: int,
               first_frame_label: Callable[[int], str]) -> list[list[FaceBox]]:
    """Per source frame, the padded, smoothed boxes of the chosen face(s); an empty list passes the frame through."""
    max_gap = max_gap_frames(fps)
    tracks = build_tracks(found, max_gap)
    if not tracks:
        raise NoFaceError(f"No face was found in {first_frame_label(len(found))}. Use a clearer, frontal face, "
                          f"another detector, or give the face box by hand.")
    if config.face_index != ALL_FACES:
        if config.face_index >= len(tracks):
            raise NoFaceError(f"Face number {config.face_index} was asked for, but only {len(tracks)} "
                              f"face{'s were' if len(tracks) > 1 else ' was'} found (numbering starts at 0).")
        tracks = [tracks[config.face_index]]
    tracks = [_level_small_rolls(_smooth_track(_settle_roll(fill_gaps(track, max_gap)), config.smoothing, fps))
              for track in tracks]
    plan = []
    for index in range(len(found)):
        boxes = []
        for track in tracks:
            if not np.isnan(track[index, 0]):
                cx, cy, w, h, angle = track[index, :5]
                points = track[index, POINTS].reshape(NUM_POINTS, 2)
                face = FaceBox(cx, cy, w, h, angle, points=None if np.isnan(points[0, 0]) else points)
                boxes.append(face.padded(config.pads, width, height))
        plan.append(boxes)
    return plan
