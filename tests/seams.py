"""The seam scores the quality tests measure blends with: how visible a pasted box's border is, and how visible a
mask's own edge is."""

from __future__ import annotations

import cv2
import numpy as np

from lipsync.faces.boxes import FaceBox
from lipsync.nets.wav2lip import FACE_SIZE


def seam_score(original: np.ndarray, output: np.ndarray, where: FaceBox | tuple[int, int, int, int],
               margin: float = 2.0) -> float:
    """Mean absolute jump of |output - original| across the border of the pasted box: a FaceBox (its outline,
    turned with it, sampled `margin` pixels inside and outside), or axis-aligned bounds (x1, y1, x2, y2)."""
    diff = np.abs(output.astype(np.float32) - original.astype(np.float32)).mean(axis=2)
    if isinstance(where, FaceBox):
        return _outline_jump(diff, where, margin)
    x1, y1, x2, y2 = where
    height, width = diff.shape
    jumps = []
    if y1 > 0:
        jumps.append(diff[y1, x1:x2] - diff[y1 - 1, x1:x2])
    if y2 < height:
        jumps.append(diff[y2 - 1, x1:x2] - diff[y2, x1:x2])
    if x1 > 0:
        jumps.append(diff[y1:y2, x1] - diff[y1:y2, x1 - 1])
    if x2 < width:
        jumps.append(diff[y1:y2, x2 - 1] - diff[y1:y2, x2])
    return float(np.mean(np.abs(np.concatenate(jumps)))) if jumps else 0.0


def _outline_jump(diff: np.ndarray, box: FaceBox, margin: float) -> float:
    """Mean |diff inside - diff outside| at points one pixel apart along the pasted crop's outline in the frame."""
    to_frame = cv2.invertAffineTransform(box.crop_matrix(FACE_SIZE))
    lo, hi = -0.5, FACE_SIZE - 0.5  # the edges of the crop's outer pixels, where the pasted mask ends
    corners = np.array([[lo, lo, 1], [hi, lo, 1], [hi, hi, 1], [lo, hi, 1]]) @ to_frame.T
    centre = corners.mean(axis=0)
    height, width = diff.shape
    inner, outer = [], []
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        length = float(np.hypot(*(b - a)))
        steps = max(1, int(length))
        points = a + ((np.arange(steps) + 0.5) / steps)[:, None] * (b - a)
        normal = np.array([(b - a)[1], -(b - a)[0]]) / length
        if normal @ ((a + b) / 2 - centre) < 0:
            normal = -normal
        inner.append(points - margin * normal)
        outer.append(points + margin * normal)
    inner, outer = np.concatenate(inner), np.concatenate(outer)
    keep = np.all((inner >= 0) & (outer >= 0) & (inner <= [width - 1, height - 1]) & (outer <= [width - 1, height - 1]),
                  axis=1)
    if not keep.any():
        return 0.0

    def sample(points: np.ndarray) -> np.ndarray:
        xy = points[keep].astype(np.float32).reshape(-1, 1, 2)
        return cv2.remap(diff, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR).ravel()

    return float(np.mean(np.abs(sample(inner) - sample(outer))))


def mask_edge_score(original: np.ndarray, output: np.ndarray, alpha: np.ndarray, margin: float = 2.0) -> float:
    """Mean |diff inside - diff outside| of |output - original| across the mask's own edge: at every pixel of the
    outline of alpha >= 0.5 (alpha: the mask in frame pixels), sampled `margin` pixels to either side along the
    mask's gradient. A soft edge changes little over that distance, a hard one the whole difference."""
    diff = np.abs(output.astype(np.float32) - original.astype(np.float32)).mean(axis=2)
    contours, _ = cv2.findContours((alpha >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0.0
    points = np.concatenate([contour.reshape(-1, 2) for contour in contours])
    rise_y, rise_x = np.gradient(cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), 1.0))
    inward = np.stack([rise_x[points[:, 1], points[:, 0]], rise_y[points[:, 1], points[:, 0]]], axis=1)
    inward /= np.maximum(np.linalg.norm(inward, axis=1, keepdims=True), 1e-9)

    def sample(where: np.ndarray) -> np.ndarray:
        xy = where.astype(np.float32).reshape(-1, 1, 2)
        return cv2.remap(diff, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()

    return float(np.mean(np.abs(sample(points + margin * inward) - sample(points - margin * inward))))
