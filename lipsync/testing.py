"""What only the tests and the benchmark use: random-weight checkpoints of the real architectures (Wav2Lip, S3FD,
GFPGAN), and the seam
score that measures how visible a pasted box's border is."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from . import checkpoints
from .geometry import FaceBox
from .model import FACE_SIZE, Wav2Lip
from .restore import GFPGAN, StyleConv, ToRGB


def write_random_checkpoints(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Random-weight checkpoints of the real architectures, in the released files' format, for tests and benchmarks
    where the real weights cannot be downloaded: same compute, garbage mouths."""
    from face_alignment.detection.sfd.net_s3fd import s3fd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    for name in ("wav2lip_gan", "wav2lip"):
        model = Wav2Lip()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # plausible running statistics, so folding is exercised
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        weights = {f"module.{key}": value for key, value in model.state_dict().items()}
        torch.save({"state_dict": weights, "optimizer": {"state": {}, "param_groups": []},
                    "global_step": 0, "global_epoch": 0}, folder / f"{name}.pth")
    torch.save(s3fd().state_dict(), folder / "s3fd.pth")
    return folder


def write_random_restorer(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A random-weight GFPGAN v1.4 checkpoint in the released format (~345 MB): same compute, a smeared face out.
    The noise strengths are made non-zero so that the stored noise buffers take part, and the RGB projections
    small so that the summed image stays mostly inside [-1, 1] instead of clipping."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GFPGAN()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, StyleConv):
                module.weight.fill_(0.1)
            elif isinstance(module, ToRGB):
                module.modulated_conv.weight.mul_(0.2)
    torch.save({"params_ema": model.state_dict()}, folder / checkpoints.REGISTRY[checkpoints.RESTORER].local_name)
    return folder / checkpoints.REGISTRY[checkpoints.RESTORER].local_name


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
