"""A face's box in a frame, shared by finding faces (detect.py) and following them (track.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

SAME_FACE_IOU = 0.1  # boxes in neighbouring frames overlapping this much show the same face


@dataclass(frozen=True)
class FaceBox:
    """A face's box in frame pixels; rotating the frame by `angle` degrees (OpenCV's sense: counter-clockwise on
    screen) about its centre makes it upright. `eyes`: the angle was measured on the eye line. `points`: the face's
    68 landmarks in frame pixels where they were found and passed their gate, else None."""
    cx: float
    cy: float
    w: float
    h: float
    angle: float = 0.0
    eyes: bool = False
    points: np.ndarray | None = field(default=None, compare=False, repr=False)

    def box_matrix(self) -> np.ndarray:
        """2×3 affine map from frame pixels to the upright box's own coordinates: (0, 0) at its top-left edge,
        (1, 1) at its bottom-right one. Pixel centres sit at +0.5, as cv2.resize samples them."""
        rotate = np.vstack([cv2.getRotationMatrix2D((self.cx, self.cy), self.angle, 1.0), [0, 0, 1]])
        to_box = np.array([[1 / self.w, 0, (0.5 - (self.cx - self.w / 2)) / self.w],
                           [0, 1 / self.h, (0.5 - (self.cy - self.h / 2)) / self.h],
                           [0, 0, 1]])
        return (to_box @ rotate)[:2]

    def crop_matrix(self, size: int) -> np.ndarray:
        """2×3 affine map from frame pixels to the upright size×size crop of this box, on the sampling grid of
        cv2.resize, the grid the released models' training crops were made on."""
        to_crop = np.array([[size, 0, -0.5], [0, size, -0.5]])
        return to_crop @ np.vstack([self.box_matrix(), [0, 0, 1]])

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
        return FaceBox(cx, cy, max(2.0, x2 - x1), max(2.0, y2 - y1), self.angle, points=self.points)

    def moved(self, x: float, y: float) -> "FaceBox":
        """The same box in an image cut out of the frame at (x, y)."""
        points = None if self.points is None else self.points - [x, y]
        return FaceBox(self.cx - x, self.cy - y, self.w, self.h, self.angle, self.eyes, points)

    def scaled(self, factor: float) -> "FaceBox":
        """The same box in a copy of the frame scaled by `factor` (without its points)."""
        return FaceBox(self.cx * factor, self.cy * factor, self.w * factor, self.h * factor, self.angle, self.eyes)

    def iou(self, other: "FaceBox") -> float:
        """Intersection over union of the two boxes, taken upright."""
        ax1, ay1, ax2, ay2 = self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2
        bx1, by1 = other.cx - other.w / 2, other.cy - other.h / 2
        bx2, by2 = other.cx + other.w / 2, other.cy + other.h / 2
        inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0
