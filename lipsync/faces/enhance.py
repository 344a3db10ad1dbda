"""Face enhancement (GFPGAN v1.4): aligning a face to the network's 512 template (by its landmarks, or placed from
its box), running the network, and the matrix that pastes the enhanced face back."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..errors import OptionError
from ..media.i420 import even_bounds, frame_size, region_bgr, shifted_matrix
from ..nets.gfpgan import GFPGAN, ENHANCE_SIZE
from .alignment import FFHQ_TEMPLATE_512, five_points, template_similarity
from .boxes import FaceBox

ENHANCE_BATCH = 8  # faces per forward pass, which bounds the memory the activations take
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16)
# The template's five points (face_geometry.FFHQ_TEMPLATE_512) as fractions (x of the box width, y of its height)
# of an upright Wav2Lip face box (S3FD or Haar: forehead to chin, plus the default 10 px at the bottom), measured on
# frontal faces of the shared media: where a face without landmarks is placed.
BOX_POINTS = np.array([[0.31, 0.37], [0.69, 0.37], [0.50, 0.59], [0.34, 0.77], [0.66, 0.77]], np.float32)
BORDER_BGR = (135, 133, 132)  # the grey the template's outside is filled with, as in the crops GFPGAN was trained on


class FaceEnhancer:
    """GFPGAN loaded at one device and dtype (bf16 or fp32): aligned faces in, enhanced faces out."""

    def __init__(self, net: GFPGAN):
        self.net = net
        self.check_dtype(self.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.net.conv_body_first.weight.dtype

    @staticmethod
    def check_dtype(dtype: torch.dtype) -> None:
        if dtype not in SUPPORTED_DTYPES:
            raise OptionError(f"GFPGAN runs in bf16 or fp32, not {str(dtype).removeprefix('torch.')} (its StyleGAN "
                              f"decoder is not reliable in fp16). Choose precision bf16 or fp32 to enhance faces.")

    @torch.inference_mode()
    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """(N, 512, 512, 3) uint8 BGR aligned faces -> (N, 512, 512, 3) float32 BGR in 0..255, enhanced."""
        if faces.ndim != 4 or faces.shape[1:] != (ENHANCE_SIZE, ENHANCE_SIZE, 3):
            raise ValueError(f"the enhancer takes (N, {ENHANCE_SIZE}, {ENHANCE_SIZE}, 3) aligned faces, "
                             f"not {faces.shape}")
        weight = self.net.conv_body_first.weight
        out = np.empty(faces.shape, np.float32)
        for start in range(0, len(faces), ENHANCE_BATCH):
            rgb = torch.from_numpy(np.ascontiguousarray(faces[start:start + ENHANCE_BATCH, ..., ::-1]))
            x = rgb.to(weight.device).permute(0, 3, 1, 2).to(weight.dtype) / 127.5 - 1.0  # channels-last already
            y = self.net(x).float().clamp_(-1, 1).add_(1).mul_(127.5)
            out[start:start + ENHANCE_BATCH] = y.permute(0, 2, 3, 1).flip(-1).cpu().numpy()
        return out


# ---------------------------------------------------------------- alignment to the template

def alignment_matrix(box: FaceBox) -> np.ndarray:
    """2×3 similarity from frame pixels to the 512 FFHQ template: fitted to the face's five landmark points as
    GFPGAN's own helper fits them, or, for a face without landmarks, the box + roll approximation (the five points
    placed at typical fractions of the upright face box, turned with the box's roll)."""
    if box.points is not None:
        return template_similarity(five_points(box.points))
    to_frame = cv2.invertAffineTransform(box.box_matrix())  # box fractions (0..1) -> frame pixels
    points = BOX_POINTS @ to_frame[:, :2].T + to_frame[:, 2]
    # A threshold as large as the face makes every point an inlier, so the fit is the least-squares one over all
    # five (smooth in the box) rather than a random subset's.
    matrix, _ = cv2.estimateAffinePartial2D(points, FFHQ_TEMPLATE_512, method=cv2.RANSAC,
                                            ransacReprojThreshold=float(ENHANCE_SIZE))
    return matrix


def _aligned_square(matrix: np.ndarray) -> FaceBox:
    """The frame-side square that a similarity maps onto the 512 template, as a box (for its bounds)."""
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    cx, cy = cv2.invertAffineTransform(matrix) @ np.array([ENHANCE_SIZE / 2, ENHANCE_SIZE / 2, 1.0])
    angle = math.degrees(math.atan2(-matrix[1, 0], matrix[0, 0]))
    side = ENHANCE_SIZE / scale
    return FaceBox(float(cx), float(cy), side, side, angle)


def aligned_face(frame_i420: np.ndarray, box: FaceBox, matrix: np.ndarray | None = None) -> np.ndarray:
    """The (512, 512, 3) uint8 BGR face aligned to the template, from an I420 frame; only the pixels the template
    covers are converted. Outside the frame the template is filled with the training crops' grey."""
    matrix = alignment_matrix(box) if matrix is None else matrix
    width, height = frame_size(frame_i420)
    square = _aligned_square(matrix)
    x1, y1, x2, y2 = bounds = even_bounds(square.bounds(width, height), width, height, margin=2)
    if x2 <= x1 or y2 <= y1:
        return np.full((ENHANCE_SIZE, ENHANCE_SIZE, 3), BORDER_BGR, np.uint8)
    return cv2.warpAffine(region_bgr(frame_i420, bounds), shifted_matrix(matrix, x1, y1), (ENHANCE_SIZE, ENHANCE_SIZE),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_BGR)


def align_faces(frame_i420: np.ndarray, boxes: list[FaceBox]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every box's aligned face, stacked for the enhancer, with the matrices to paste them back with."""
    matrices = [alignment_matrix(box) for box in boxes]
    faces = [aligned_face(frame_i420, box, matrix) for box, matrix in zip(boxes, matrices)]
    return np.stack(faces) if faces else np.empty((0, ENHANCE_SIZE, ENHANCE_SIZE, 3), np.uint8), matrices
