"""Put the generated mouth back through a feathered mask (an oval of the lower face box, or the lower face or the
mouth drawn from the face's landmarks), or the original hard paste of the whole box; in float."""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np

from ..media.i420 import even_bounds, frame_size, planes, shifted_matrix, to_i420
from ..nets.wav2lip import FACE_SIZE
from . import alignment
from .boxes import FaceBox

# Mask geometry in the 96×96 crop: an ellipse over mouth and jaw, feathered by a fixed share of the crop,
# so the feather scales with the face.
MASK_CENTRE = (48, 63)
MASK_AXES = (33, 24)
FEATHER_SIGMA = 5.0
EDGE_TAPER = 6  # pixels at the crop's edge forced down to zero, so nothing shows at the box border
# The landmark masks' feather, in crop pixels, a quarter of the crop: its smoothstep is 4/5 as steep at its middle
# as the oval's blur, so their edges are softer than the oval's.
SOFT_EDGE = 24.0
UNSEEN_ALPHA = 1 / 512  # below this a mask cannot move a pixel by half a level, even from 0 to 255


@cache  # one per width
def _edge_window(width: float, smooth: bool) -> np.ndarray:
    """1 inside the crop, down to 0 at its outer pixels over `width` pixels: linearly, or along a smoothstep."""
    ramp = np.clip(np.minimum(np.arange(FACE_SIZE), np.arange(FACE_SIZE)[::-1]) / width, 0, 1)
    ramp = alignment.smoothstep(ramp) if smooth else ramp
    return np.minimum.outer(ramp, ramp).astype(np.float32)


@cache  # one per blend mode
def crop_mask(blend: str) -> np.ndarray:
    """The box's own mask in the 96×96 crop: the feathered oval, or all ones for the hard paste."""
    if blend == "hard":
        return np.ones((FACE_SIZE, FACE_SIZE), np.float32)
    mask = np.zeros((FACE_SIZE, FACE_SIZE), np.float32)
    cv2.ellipse(mask, MASK_CENTRE, MASK_AXES, 0, 0, 360, 1.0, thickness=-1)
    return cv2.GaussianBlur(mask, (0, 0), FEATHER_SIGMA) * _edge_window(EDGE_TAPER, smooth=False)


def mask_kind(box: FaceBox, blend: str, mask: str) -> str:
    """Which mask a face is blended through: 'hard' for the hard paste; the face and mouth masks (auto: face)
    where the face has landmarks; else the box's oval."""
    if blend == "hard":
        return "hard"
    if box.points is None:
        return "box"
    return "face" if mask == "auto" else mask


def blend_mask(box: FaceBox, blend: str, mask: str) -> np.ndarray:
    """The face's mask in its 96×96 crop (see mask_kind). One drawn from landmarks is placed through the box's
    crop matrix, feathered by SOFT_EDGE, and where it meets the crop's edge eased to 0 there over SOFT_EDGE too,
    so no part of its outline is harder than the oval's."""
    kind = mask_kind(box, blend, mask)
    if kind in ("hard", "box"):
        return crop_mask(blend)
    to_crop = box.crop_matrix(FACE_SIZE)
    points = box.points @ to_crop[:, :2].T + to_crop[:, 2]
    draw = alignment.face_mask if kind == "face" else alignment.mouth_mask
    # The lower of the two, not their product, which would be steeper where both fall.
    return np.minimum(draw(points, (0, 0, FACE_SIZE, FACE_SIZE), SOFT_EDGE), _edge_window(SOFT_EDGE, smooth=True))


def match_color(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the generated colors so they agree with the original on the mask's feathered band."""
    band = (mask * (1.0 - mask))[..., None]
    band_total = band.sum()
    if band_total < 1e-3:
        return generated
    shift = ((original.astype(np.float32) - generated) * band).sum(axis=(0, 1)) / band_total
    return generated + shift


def paste(frame: np.ndarray, box: FaceBox, generated: np.ndarray, original_crop: np.ndarray, blend: str, mask: str,
          color_match: bool, speech_weight: float) -> None:
    """Blend a generated 96×96 BGR crop (float, 0..255) into an I420 frame in place through the face's mask (see
    blend_mask), as much as `speech_weight` (1 while speaking, down to 0 in silences).
    The blend is done on the Y, U and V planes, so pixels outside the mask keep their decoded values exactly."""
    in_crop = blend_mask(box, blend, mask)
    bounds = _mask_bounds(frame, box, in_crop)
    if bounds is None or speech_weight <= 0:
        return
    if color_match and blend != "hard":
        generated = match_color(generated, original_crop, in_crop)
    # Map region pixels to crop pixels: the crop matrix of the box moved to the region's origin.
    matrix = box.moved(bounds[0], bounds[1]).crop_matrix(FACE_SIZE)
    face = _warp_bytes(generated, matrix, bounds)
    _blend_region(frame, bounds, face, _mask_alpha(box, bounds, in_crop, speech_weight))


def paste_enhanced(frame: np.ndarray, box: FaceBox, enhanced: np.ndarray, matrix: np.ndarray, blend: str, mask: str,
                   speech_weight: float) -> None:
    """Blend an enhanced 512×512 BGR face (float, 0..255), aligned with `matrix` (frame -> face), into an I420
    frame in place, only through the mouth's own mask, so it changes exactly what the mouth changed."""
    in_crop = blend_mask(box, blend, mask)
    bounds = _mask_bounds(frame, box, in_crop)
    if bounds is None or speech_weight <= 0:
        return
    face = _warp_bytes(enhanced, shifted_matrix(matrix, bounds[0], bounds[1]), bounds)
    _blend_region(frame, bounds, face, _mask_alpha(box, bounds, in_crop, speech_weight))


def _mask_bounds(frame: np.ndarray, box: FaceBox, in_crop: np.ndarray) -> tuple[int, int, int, int] | None:
    """The part of the frame the blend can change, on even coordinates: the box's bounds cut down to the crop rows
    and columns where its mask reaches UNSEEN_ALPHA, grown by a pixel for the interpolation; None when empty."""
    rows = np.flatnonzero(in_crop.max(axis=1) >= UNSEEN_ALPHA)
    columns = np.flatnonzero(in_crop.max(axis=0) >= UNSEEN_ALPHA)
    if not len(rows):
        return None
    left, right, top, bottom = columns[0] - 1, columns[-1] + 1, rows[0] - 1, rows[-1] + 1
    corners = np.array([[left, top], [right, top], [left, bottom], [right, bottom]], np.float64)
    from_crop = cv2.invertAffineTransform(box.crop_matrix(FACE_SIZE))
    in_frame = corners @ from_crop[:, :2].T + from_crop[:, 2]
    width, height = frame_size(frame)
    x1, y1, x2, y2 = even_bounds(box.bounds(width, height), width, height)
    x1, y1 = max(x1, math.floor(in_frame[:, 0].min()) & ~1), max(y1, math.floor(in_frame[:, 1].min()) & ~1)
    x2, y2 = min(x2, (math.ceil(in_frame[:, 0].max()) + 2) & ~1), min(y2, (math.ceil(in_frame[:, 1].max()) + 2) & ~1)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _warp_bytes(image: np.ndarray, matrix: np.ndarray, bounds: tuple[int, int, int, int]) -> np.ndarray:
    """A float BGR image warped into the region (matrix: region -> image) and rounded to bytes. Clipped to 0..255
    before the warp, whose bilinear weights keep it there, so the rounding needs no clip of the larger region."""
    x1, y1, x2, y2 = bounds
    clipped = np.clip(image, 0, 255, dtype=np.float32)
    warped = cv2.warpAffine(clipped, matrix, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    return cv2.convertScaleAbs(warped)


def _mask_alpha(box: FaceBox, bounds: tuple[int, int, int, int], in_crop: np.ndarray,
                speech_weight: float) -> np.ndarray:
    """A mask in the box's crop, warped into the region's pixels and scaled by the speech weight."""
    x1, y1, x2, y2 = bounds
    matrix = box.moved(x1, y1).crop_matrix(FACE_SIZE)
    return cv2.warpAffine(in_crop, matrix, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) * speech_weight


def _blend_region(frame: np.ndarray, bounds: tuple[int, int, int, int], face: np.ndarray, alpha: np.ndarray) -> None:
    """Blend a BGR image (bytes) of the region into an I420 frame in place with per-pixel alpha, on the Y, U and V
    planes (by cv2.blendLinear, rounded to the nearest level); where alpha is 0 the frame keeps its values
    exactly."""
    x1, y1, x2, y2 = bounds
    chroma_alpha = cv2.resize(alpha, ((x2 - x1) // 2, (y2 - y1) // 2), interpolation=cv2.INTER_AREA)
    new_planes = planes(to_i420(face))
    for plane, new, plane_alpha, step in zip(planes(frame), new_planes, (alpha, chroma_alpha, chroma_alpha), (1, 2, 2)):
        old = plane[y1 // step:y2 // step, x1 // step:x2 // step]
        old[...] = cv2.blendLinear(new, old, plane_alpha, 1.0 - plane_alpha)
