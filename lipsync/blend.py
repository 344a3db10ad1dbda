"""Put the generated mouth back: a feathered lower-face mask (or the original hard paste), in float."""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=2)
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


def match_colour(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the generated colours so they agree with the original on the mask's feathered band."""
    band = (mask * (1.0 - mask))[..., None]
    weight = band.sum()
    if weight < 1e-3:
        return generated
    shift = ((original.astype(np.float32) - generated) * band).sum(axis=(0, 1)) / weight
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
          colour_match: bool, strength: float) -> None:
    """Blend a generated 96×96 BGR crop (float, 0..255) into an I420 frame in place, `strength` in [0, 1].
    The blend is done on the Y, U and V planes, so pixels outside the mask keep their decoded values exactly."""
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    x1, y1, x2, y2 = _even_bounds(box, width, height)
    if x2 <= x1 or y2 <= y1 or strength <= 0:
        return
    mask = crop_mask(blend)
    if colour_match and blend != "hard":
        generated = match_colour(generated, original_crop, mask)
    # Map region pixels to crop pixels: the crop matrix of the box moved to the region's origin.
    matrix = _shifted(box, x1, y1).crop_matrix(FACE_SIZE)
    size = (x2 - x1, y2 - y1)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    face = cv2.warpAffine(generated.astype(np.float32), matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, matrix, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0) * strength
    chroma_alpha = cv2.resize(alpha, (size[0] // 2, size[1] // 2), interpolation=cv2.INTER_AREA)
    new_planes = planes(to_i420(np.clip(face + 0.5, 0, 255).astype(np.uint8)))
    for plane, new, weight, step in zip(planes(frame), new_planes, (alpha, chroma_alpha, chroma_alpha), (1, 2, 2)):
        old = plane[y1 // step:y2 // step, x1 // step:x2 // step]
        blended = old + (new.astype(np.float32) - old) * weight
        plane[y1 // step:y2 // step, x1 // step:x2 // step] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)


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
