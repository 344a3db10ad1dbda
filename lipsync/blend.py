"""Put the generated mouth back: a feathered lower-face mask (or the original hard paste), in float."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from .geometry import FaceBox
from .model import FACE_SIZE

# Mask geometry in the 96×96 crop: an ellipse over mouth and jaw, feathered by a fixed share of the crop,
# so the feather scales with the face.
MASK_CENTRE = (48, 63)
MASK_AXES = (33, 24)
FEATHER_SIGMA = 5.0
EDGE_TAPER = 6  # pixels at the crop's edge forced down to zero, so nothing shows at the box border


@cache  # one per blend mode
def crop_mask(blend: str) -> np.ndarray:
    if blend == "hard":
        return np.ones((FACE_SIZE, FACE_SIZE), np.float32)
    mask = np.zeros((FACE_SIZE, FACE_SIZE), np.float32)
    cv2.ellipse(mask, MASK_CENTRE, MASK_AXES, 0, 0, 360, 1.0, thickness=-1)
    mask = cv2.GaussianBlur(mask, (0, 0), FEATHER_SIGMA)
    ramp = np.clip(np.minimum(np.arange(FACE_SIZE), np.arange(FACE_SIZE)[::-1]) / EDGE_TAPER, 0, 1)
    return (mask * np.minimum.outer(ramp, ramp)).astype(np.float32)


def crop_face(frame: np.ndarray, box: FaceBox) -> np.ndarray:
    """The upright 96×96 crop that the model sees: for an upright box, what the released models were trained on
    (the box's pixels resized bilinearly, cv2.resize's default)."""
    return cv2.warpAffine(frame, box.crop_matrix(FACE_SIZE), (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def match_color(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the generated colors so they agree with the original on the mask's feathered band."""
    band = (mask * (1.0 - mask))[..., None]
    band_total = band.sum()
    if band_total < 1e-3:
        return generated
    shift = ((original.astype(np.float32) - generated) * band).sum(axis=(0, 1)) / band_total
    return generated + shift


def planes(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 frame held as a (height * 3 / 2, width) array."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    flat = frame.reshape(-1)
    luma, chroma = height * width, height * width // 4
    return (flat[:luma].reshape(height, width), flat[luma:luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma:].reshape(height // 2, width // 2))


def to_i420(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)


def _even_bounds(box: FaceBox, width: int, height: int, margin: int = 0) -> tuple[int, int, int, int]:
    """The box's bounds grown by margin and out to even coordinates, so they cover whole chroma samples."""
    x1, y1, x2, y2 = box.bounds(width, height)
    x1, y1 = max(0, x1 - margin) & ~1, max(0, y1 - margin) & ~1
    x2, y2 = min(width, x2 + margin + 1) & ~1, min(height, y2 + margin + 1) & ~1
    return x1, y1, x2, y2


def _region_bgr(frame: np.ndarray, bounds: tuple[int, int, int, int]) -> np.ndarray:
    luma, u, v = planes(frame)
    x1, y1, x2, y2 = bounds
    packed = np.concatenate([luma[y1:y2, x1:x2].ravel(), u[y1 // 2:y2 // 2, x1 // 2:x2 // 2].ravel(),
                             v[y1 // 2:y2 // 2, x1 // 2:x2 // 2].ravel()])
    return cv2.cvtColor(packed.reshape((y2 - y1) * 3 // 2, x2 - x1), cv2.COLOR_YUV2BGR_I420)


def _shifted(box: FaceBox, x: int, y: int) -> FaceBox:
    return FaceBox(box.cx - x, box.cy - y, box.w, box.h, box.angle, box.eyes)


def crop_face_i420(frame: np.ndarray, box: FaceBox) -> np.ndarray:
    """crop_face for an I420 frame: only the pixels around the face are turned into BGR."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    x1, y1, x2, y2 = bounds = _even_bounds(box, width, height, margin=2)  # the margin feeds the interpolation
    if x2 <= x1 or y2 <= y1:
        return np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)
    return crop_face(_region_bgr(frame, bounds), _shifted(box, x1, y1))


def paste(frame: np.ndarray, box: FaceBox, generated: np.ndarray, original_crop: np.ndarray, blend: str,
          color_match: bool, speech_weight: float) -> None:
    """Blend a generated 96×96 BGR crop (float, 0..255) into an I420 frame in place, as much as `speech_weight`
    (1 while speaking, down to 0 in silences).
    The blend is done on the Y, U and V planes, so pixels outside the mask keep their decoded values exactly."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    x1, y1, x2, y2 = _even_bounds(box, width, height)
    if x2 <= x1 or y2 <= y1 or speech_weight <= 0:
        return
    mask = crop_mask(blend)
    if color_match and blend != "hard":
        generated = match_color(generated, original_crop, mask)
    # Map region pixels to crop pixels: the crop matrix of the box moved to the region's origin.
    matrix = _shifted(box, x1, y1).crop_matrix(FACE_SIZE)
    size = (x2 - x1, y2 - y1)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    face = cv2.warpAffine(generated.astype(np.float32), matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha *= speech_weight
    chroma_alpha = cv2.resize(alpha, (size[0] // 2, size[1] // 2), interpolation=cv2.INTER_AREA)
    new_planes = planes(to_i420(np.clip(face + 0.5, 0, 255).astype(np.uint8)))
    for plane, new, plane_alpha, step in zip(planes(frame), new_planes, (alpha, chroma_alpha, chroma_alpha), (1, 2, 2)):
        old = plane[y1 // step:y2 // step, x1 // step:x2 // step]
        blended = old + (new.astype(np.float32) - old) * plane_alpha
        plane[y1 // step:y2 // step, x1 // step:x2 // step] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
