"""The 96×96 face crop that the model sees, from a BGR or an I420 frame."""

from __future__ import annotations

import cv2
import numpy as np

from ..media.i420 import even_bounds, frame_size, region_bgr
from ..nets.wav2lip import FACE_SIZE
from .boxes import FaceBox


def crop_face(frame: np.ndarray, box: FaceBox) -> np.ndarray:
    """The upright 96×96 crop that the model sees: for an upright box, what the released models were trained on
    (the box's pixels resized bilinearly, cv2.resize's default)."""
    return cv2.warpAffine(frame, box.crop_matrix(FACE_SIZE), (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def crop_face_i420(frame: np.ndarray, box: FaceBox) -> np.ndarray:
    """crop_face for an I420 frame: only the pixels around the face are turned into BGR."""
    width, height = frame_size(frame)
    # The margin feeds the interpolation.
    x1, y1, x2, y2 = bounds = even_bounds(box.bounds(width, height), width, height, margin=2)
    if x2 <= x1 or y2 <= y1:
        return np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)
    return crop_face(region_bgr(frame, bounds), box.moved(x1, y1))
