"""Frames as the decoder gives them and the encoder takes them: I420 held as one (height * 3 / 2, width) uint8
array, a full-size Y plane then quarter-size U and V planes. Its sizes and planes are worked out here only."""

from __future__ import annotations

import cv2
import numpy as np


def frame_shape(width: int, height: int) -> tuple[int, int]:
    """The array shape of a width×height I420 frame."""
    return height * 3 // 2, width


def frame_size(frame: np.ndarray) -> tuple[int, int]:
    """(width, height) of the picture an I420 frame holds."""
    return frame.shape[1], frame.shape[0] * 2 // 3


def planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 frame held as a (height * 3 / 2, width) array."""
    width, height = frame_size(frame)
    flat = frame.reshape(-1)
    luma, chroma = height * width, height * width // 4
    return (flat[:luma].reshape(height, width), flat[luma:luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma:].reshape(height // 2, width // 2))


def to_i420(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)


def even_bounds(bounds: tuple[int, int, int, int], width: int, height: int,
                margin: int = 0) -> tuple[int, int, int, int]:
    """Pixel bounds (x1, y1, x2, y2) grown by margin and out to even coordinates within the frame, so they cover
    whole chroma samples."""
    x1, y1, x2, y2 = bounds
    x1, y1 = max(0, x1 - margin) & ~1, max(0, y1 - margin) & ~1
    x2, y2 = min(width, x2 + margin + 1) & ~1, min(height, y2 + margin + 1) & ~1
    return x1, y1, x2, y2


def region_bgr(frame: np.ndarray, bounds: tuple[int, int, int, int]) -> np.ndarray:
    luma, u, v = planes(frame)
    x1, y1, x2, y2 = bounds
    packed = np.concatenate([luma[y1:y2, x1:x2].ravel(), u[y1 // 2:y2 // 2, x1 // 2:x2 // 2].ravel(),
                             v[y1 // 2:y2 // 2, x1 // 2:x2 // 2].ravel()])
    return cv2.cvtColor(packed.reshape(frame_shape(x2 - x1, y2 - y1)), cv2.COLOR_YUV2BGR_I420)


def shifted_matrix(matrix: np.ndarray, x: int, y: int) -> np.ndarray:
    """A 2×3 map from frame pixels, for an image cut out of the frame at (x, y)."""
    shifted = matrix.astype(np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x, y], np.float64)
    return shifted
