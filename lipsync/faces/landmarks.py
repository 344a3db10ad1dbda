"""68-point face landmarks: face-alignment's FAN (2DFAN4) run on our own face boxes (its weights come through the
checkpoint registry and lipsync.models), the crop and the heatmap decoding written here (sub-pixel kept), and a
quality gate per face.

No package detector, no flipped second pass, no torch.compile: one forward pass of FAN(4) per batch of boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from .boxes import FaceBox

NUM_POINTS = 68
CROP_SIZE = 256  # FAN's input side
HEATMAP_SIZE = 64  # its output maps' side
# The crop around a detector box, as face-alignment makes it for S3FD boxes: the centre raised by 0.12 of the
# box height, a square of 200 * (w + h) / 195 pixels.
CENTRE_RAISE = 0.12
CROP_SCALE = 200.0 / 195.0
FAN_BATCH = 16  # faces per forward pass, which bounds the activations' memory
# The quality gate. FAN was trained to draw each point as a Gaussian spot of height 1 on an empty map, so a face
# it sees well gives peaks near 1 and next to nothing elsewhere (facefusion, on the same network, counts a mean
# peak of 0.45 as a score of 0.5, its default cut). A map that is weak, or busy away from its peak (occlusion, a
# profile, a non-face, untrained weights), fails.
MIN_MEAN_PEAK = 0.45
MAX_MEAN_PEAK = 1.5  # far above the trained height: not the trained network's output
MAX_BACKGROUND = 0.05  # a map's mean |value| over its peak; a Gaussian spot of sigma 2 maps gives 0.006


@dataclass(frozen=True)
class Landmarks:
    """One face's 68 points in frame pixels (OpenCV's: the top-left pixel's centre at 0, 0), each point's heatmap
    peak, and whether the face passed the quality gate."""
    points: np.ndarray  # (68, 2) float64
    peaks: np.ndarray  # (68,) float32
    passed: bool


def new_fan() -> torch.nn.Module:
    """face-alignment's FAN(4), untrained: lipsync.models loads the registry's weights into it."""
    from face_alignment.models.fan import FAN

    return FAN(4)


# ---------------------------------------------------------------- crop and decoding

def _upright(box: FaceBox) -> np.ndarray:
    """3×3 rotation about the box centre that makes the face upright."""
    return np.vstack([cv2.getRotationMatrix2D((box.cx, box.cy), box.angle, 1.0), [0, 0, 1]])


def _crop_square(box: FaceBox) -> tuple[float, float, float]:
    """Centre (x, y) and side of FAN's square around the box, in the upright frame."""
    return box.cx, box.cy - CENTRE_RAISE * box.h, CROP_SCALE * (box.w + box.h)


def crop_matrix(box: FaceBox) -> np.ndarray:
    """2×3 map from frame pixels to FAN's 256×256 crop of the box, turned upright by the box's roll. For an upright
    box it is face-alignment's own crop: the square cut at its integer corners, resized bilinearly."""
    cx, cy, side = _crop_square(box)
    to_crop = np.eye(3)
    for axis, centre in enumerate((cx, cy)):
        # The package cuts the pixels first..end-1 (its crop corners 1 and 256 mapped back, truncated), then resizes.
        first, end = math.trunc(centre - side / 2 + side / CROP_SIZE), math.trunc(centre + side / 2)
        cut = max(1, end - first)
        to_crop[axis, axis] = CROP_SIZE / cut
        to_crop[axis, 2] = (0.5 - first) * CROP_SIZE / cut - 0.5
    return (to_crop @ _upright(box))[:2]


def heatmap_matrix(box: FaceBox) -> np.ndarray:
    """2×3 map from heatmap coordinates (0 at a map's outer edge, 64 at the far one) to frame pixels: the
    package's own mapping, turned back by the box's roll."""
    cx, cy, side = _crop_square(box)
    to_upright = np.array([[side / HEATMAP_SIZE, 0, cx - side / 2], [0, side / HEATMAP_SIZE, cy - side / 2], [0, 0, 1]])
    return (np.linalg.inv(_upright(box)) @ to_upright)[:2]


def fan_crops(frame: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
    """(n, 256, 256, 3) uint8 RGB crops of a BGR frame, zero outside the frame."""
    crops = np.zeros((len(boxes), CROP_SIZE, CROP_SIZE, 3), np.uint8)
    for crop, box in zip(crops, boxes):
        cv2.warpAffine(frame, crop_matrix(box), (CROP_SIZE, CROP_SIZE), dst=crop, flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return crops[..., ::-1]


def decode(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 68, H, W) heatmaps -> points (n, 68, 2) in heatmap coordinates and peaks (n, 68). Each point is its map's
    argmax cell centre, moved a quarter cell towards the larger neighbour in x and in y where it is off the
    border: the package's decoding, without its rounding."""
    n, k, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, k, height * width)
    index = flat.argmax(axis=-1)
    peaks = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    row, col = np.divmod(index, width)
    inside = (col > 0) & (col < width - 1) & (row > 0) & (row < height - 1)
    face, point = np.indices((n, k))
    r, c = np.clip(row, 1, height - 2), np.clip(col, 1, width - 2)
    step_x = np.sign(heatmaps[face, point, r, c + 1] - heatmaps[face, point, r, c - 1])
    step_y = np.sign(heatmaps[face, point, r + 1, c] - heatmaps[face, point, r - 1, c])
    x = col + 0.5 + np.where(inside, 0.25 * step_x, 0.0)
    y = row + 0.5 + np.where(inside, 0.25 * step_y, 0.0)
    return np.stack([x, y], axis=-1), peaks


def passes_gate(heatmaps: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Per face, whether its heatmaps look like a trained FAN's on a face it sees well (see MIN_MEAN_PEAK)."""
    mean_peak = peaks.mean(axis=1)
    background = (np.abs(heatmaps).mean(axis=(2, 3)) / np.maximum(np.abs(peaks), 1e-6)).mean(axis=1)
    return (mean_peak >= MIN_MEAN_PEAK) & (mean_peak <= MAX_MEAN_PEAK) & (background <= MAX_BACKGROUND)


@torch.inference_mode()
def heatmaps_of(model: torch.nn.Module, crops: np.ndarray) -> np.ndarray:
    """(n, 256, 256, 3) uint8 RGB crops -> FAN's last (n, 68, 64, 64) float32 heatmaps."""
    weight = model.conv1.weight
    out = np.empty((len(crops), NUM_POINTS, HEATMAP_SIZE, HEATMAP_SIZE), np.float32)
    for start in range(0, len(crops), FAN_BATCH):
        x = torch.from_numpy(np.ascontiguousarray(crops[start:start + FAN_BATCH])).to(weight.device)
        x = x.permute(0, 3, 1, 2).to(weight.dtype) / 255.0  # channels-last already, as the weights are stored
        out[start:start + FAN_BATCH] = model(x)[-1].float().cpu().numpy()
    return out


def locate(model: torch.nn.Module, frames: Sequence[np.ndarray], boxes: Sequence[Sequence[FaceBox]],
           scale: float = 1.0) -> list[list[Landmarks]]:
    """The landmarks of every box in every frame, all faces in batched forward passes. `frames` are BGR copies
    scaled by `scale` (as detection sees them); boxes and points are in full-frame pixels."""
    crops, matrices = [], []
    for frame, frame_boxes in zip(frames, boxes):
        local = [box.scaled(scale) for box in frame_boxes]
        crops.append(fan_crops(frame, local))
        matrices += [heatmap_matrix(box) for box in local]
    if not matrices:
        return [[] for _ in frames]
    heatmaps = heatmaps_of(model, np.concatenate(crops))
    points, peaks = decode(heatmaps)
    passed = passes_gate(heatmaps, peaks)
    found = iter(Landmarks((p.astype(np.float64) @ m[:, :2].T + m[:, 2]) / scale, s, bool(ok))
                 for p, m, s, ok in zip(points, matrices, peaks, passed))
    return [[next(found) for _ in frame_boxes] for frame_boxes in boxes]
