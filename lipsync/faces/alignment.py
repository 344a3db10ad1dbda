"""What a face's 68 landmarks give: the five alignment points, the similarity onto GFPGAN's 512 template, the head's
roll, and feathered masks of the lower face and of the mouth.

Points are (x, y) in frame pixels, OpenCV's convention (the top-left pixel's centre at 0, 0), in the 68-point
layout: jaw 0-16, brows 17-26, nose 27-35, eyes 36-41 and 42-47 (image left first), lips 48-67."""

from __future__ import annotations

import math

import cv2
import numpy as np

LEFT_EYE = slice(36, 42)  # the eye on the image's left
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_CORNERS = (48, 54)
LOWER_JAW = slice(3, 14)
NOSTRILS = slice(31, 36)
LIPS = slice(48, 68)
# The five points of the FFHQ-aligned 512×512 faces GFPGAN was trained on: eye centres (image left, right), nose
# tip, mouth corners (image left, right).
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]])
# The mouth mask's margin around the lips, a share of the mouth's width so that it behaves alike at every
# resolution: the lips move, and the mask covers where a speaking mouth may reach.
MOUTH_GROW = 0.3

Bounds = tuple[int, int, int, int]  # (x1, y1, x2, y2) of a region of the frame, x2 and y2 excluded


def five_points(points: np.ndarray) -> np.ndarray:
    """(5, 2): the eye centres (means of 36-41 and 42-47), the nose tip (30) and the mouth corners (48, 54)."""
    points = np.asarray(points, np.float64)
    return np.array([points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0), points[NOSE_TIP],
                     points[MOUTH_CORNERS[0]], points[MOUTH_CORNERS[1]]])


def template_similarity(five: np.ndarray, template: np.ndarray = FFHQ_TEMPLATE_512) -> np.ndarray:
    """2×3 similarity (rotation, uniform scale, shift) from frame pixels onto the template, fitted as GFPGAN's own
    face helper fits it: OpenCV's least-median-of-squares estimate, refined on its inliers. Warp back with
    cv2.invertAffineTransform of it."""
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(five, np.float32), np.asarray(template, np.float32),
                                            method=cv2.LMEDS)
    if matrix is None:
        raise ValueError("the five points are degenerate (they coincide): no similarity fits them")
    return matrix


def roll_degrees(points: np.ndarray) -> float:
    """The angle, in FaceBox.angle's sense (rotating the frame by it, OpenCV's way, makes the face upright), from
    the line between the two eye centres."""
    points = np.asarray(points, np.float64)
    left, right = points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)
    # An eye line sloping down to the right (y grows downwards) needs a counter-clockwise turn: a positive angle.
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def face_mask(points: np.ndarray, bounds: Bounds, feather: float) -> np.ndarray:
    """Float mask over the region: 1 inside the hull of the lower jaw (3-13) and the nostrils (31-35), falling
    smoothly to 0 `feather` pixels outside it."""
    points = np.asarray(points, np.float64)
    return hull_mask(np.concatenate([points[LOWER_JAW], points[NOSTRILS]]), bounds, 0.0, feather)


def mouth_mask(points: np.ndarray, bounds: Bounds, feather: float) -> np.ndarray:
    """Float mask over the region: 1 inside the hull of the lips (48-67) grown by MOUTH_GROW of the mouth's width,
    falling smoothly to 0 `feather` pixels further out."""
    points = np.asarray(points, np.float64)
    width = float(np.linalg.norm(points[MOUTH_CORNERS[1]] - points[MOUTH_CORNERS[0]]))
    return hull_mask(points[LIPS], bounds, MOUTH_GROW * width, feather)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """0 to 1 as t goes from 0 to 1, with level ends (3t² - 2t³); its steepest slope, 1.5, is at t = 0.5."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def hull_mask(points: np.ndarray, bounds: Bounds, grow: float, feather: float) -> np.ndarray:
    """(y2 - y1, x2 - x1) float32 mask, row i and column j being frame pixel (x1 + j, y1 + i): 1 within `grow`
    pixels of the points' convex hull, easing (smoothstep) to 0 at `grow + feather`. The region should hold the
    hull and its margin: distances are measured to the part of the hull inside it."""
    x1, y1, x2, y2 = bounds
    hull = cv2.convexHull((np.asarray(points, np.float64) - [x1, y1]).astype(np.float32))
    inside = np.zeros((y2 - y1, x2 - x1), np.uint8)
    sub_pixel = 4  # hull corners placed to 1/16 px
    cv2.fillConvexPoly(inside, np.round(hull * (1 << sub_pixel)).astype(np.int32), 1, lineType=cv2.LINE_8,
                       shift=sub_pixel)
    if not inside.any():
        return np.zeros(inside.shape, np.float32)
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (1.0 - smoothstep((distance - grow) / max(feather, 1e-6))).astype(np.float32)
