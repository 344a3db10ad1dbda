"""The face detectors: OpenCV's Haar cascade (no download) and S3FD (face-alignment's network, our own bounded
decoding of its outputs). Each takes BGR frames and gives [x1, y1, x2, y2, score] rows per frame."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

S3FD_THRESHOLD = 0.5  # boxes scoring below this are not faces (lower ones never outrank them in suppression)
S3FD_MAX_CANDIDATES = 750  # the most confident boxes kept for suppression: bounds its cost on any image
S3FD_NMS_IOU = 0.3  # a box overlapping a more confident one by more than this is the same face
S3FD_MEAN_BGR = (104.0, 117.0, 123.0)  # subtracted from the input, as in training
S3FD_VARIANCES = (0.1, 0.2)  # scale of the centre and size offsets, as in training
MAX_FACES = 20  # faces kept per frame, most confident (for the cascade: largest) first
HAAR_FACE = "haarcascade_frontalface_default.xml"


class Detector(Protocol):
    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Per BGR frame, an (n, 5) float32 array of [x1, y1, x2, y2, score] rows, one per face."""


class HaarDetector:
    """OpenCV's frontal-face cascade: no download, fine for frontal faces. Within a batch of consecutive frames,
    only the first is searched whole; the next ones are searched near the faces of the frame before (a narrow
    region and scale range, several times cheaper), a face missed there in the whole frame at the same sizes, and
    the whole frame at every size only when that misses too."""

    def __init__(self):
        self._local = threading.local()  # one cascade per thread: OpenCV does not promise it is thread-safe

    def _search(self, gray: np.ndarray, min_side: int, max_side: int = 0) -> np.ndarray:
        if not hasattr(self._local, "cascade"):
            self._local.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / HAAR_FACE))
        boxes = self._local.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                                     minSize=(min_side, min_side), maxSize=(max_side, max_side))
        return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)

    def _near(self, gray: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
        height, width = gray.shape
        rows = []
        for x1, y1, x2, y2, _ in previous:
            side = x2 - x1
            rx1, ry1 = int(max(0, x1 - side / 2)), int(max(0, y1 - side / 2))
            rx2, ry2 = int(min(width, x2 + side / 2)), int(min(height, y2 + side / 2))
            sides = max(24, int(side * 0.75)), int(side * 1.33) + 1
            boxes = self._search(gray[ry1:ry2, rx1:rx2], *sides) + [rx1, ry1, 0, 0]
            if not len(boxes):
                # The cascade's windows sit on another grid in the cut-out region, and a face it misses there it
                # mostly finds in the whole frame at the same sizes, for less than the search at every size that
                # would follow (README, Performance).
                boxes = self._search(gray, *sides)
                centres = boxes[:, :2] + boxes[:, 2:] / 2
                boxes = boxes[(centres >= [rx1, ry1]).all(axis=1) & (centres < [rx2, ry2]).all(axis=1)]
            if not len(boxes):
                return None
            x, y, w, h = max(boxes, key=lambda b: b[2])
            rows.append([x, y, x + w, y + h, 1.0])
        return np.array(rows, dtype=np.float32).reshape(-1, 5)

    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        found = []
        previous = None
        for frame in frames:
            gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
            rows = self._near(gray, previous) if previous is not None and len(previous) else None
            if rows is None:
                boxes = self._search(gray, max(24, min(gray.shape) // 8))
                rows = np.hstack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], np.ones((len(boxes), 1), np.float32)])
            found.append(rows)
            previous = rows
        return found


class S3FDDetector:
    """S3FD (face-alignment's network) with the weights from the checkpoint registry. The decoding of its outputs is
    our own and bounded: only the S3FD_MAX_CANDIDATES most confident boxes go to non-maximum suppression, which
    stops at MAX_FACES, so no image (a plain grey one gives random weights thousands of boxes) makes it slow."""

    def __init__(self, weights: dict[str, torch.Tensor], device: str, dtype: torch.dtype = torch.float32):
        from face_alignment.detection.sfd.net_s3fd import s3fd

        self.device = device
        self.dtype = dtype
        self.net = s3fd()
        self.net.load_state_dict(weights)
        self.net.to(device, dtype).eval()
        self.mean = torch.tensor(S3FD_MEAN_BGR, device=device).view(1, 3, 1, 1)

    def detect(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        batch = torch.from_numpy(np.stack(frames)).to(self.device).permute(0, 3, 1, 2).float() - self.mean
        batch = batch.to(self.dtype)
        with torch.inference_mode():
            outputs = self.net(batch)
        # Outputs alternate per level (stride 4, 8, …, 128): class logits (B, 2, H, W), box offsets (B, 4, H, W).
        scores = [torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy() for logits in outputs[0::2]]
        offsets = [offset.float().cpu().numpy() for offset in outputs[1::2]]
        return [_s3fd_boxes([level[i] for level in scores], [level[i] for level in offsets])
                for i in range(len(frames))]


def _s3fd_boxes(scores: list[np.ndarray], offsets: list[np.ndarray]) -> np.ndarray:
    """One image's [x1, y1, x2, y2, score] rows from S3FD's per-level score maps and box offsets."""
    rows = []
    for level, (score, offset) in enumerate(zip(scores, offsets)):
        ys, xs = np.nonzero(score > S3FD_THRESHOLD)
        if not len(ys):
            continue
        # Each cell's prior box: centred on the cell, four strides wide; offsets are scaled by the variances.
        stride = 2 ** (level + 2)
        prior = np.stack([stride / 2 + xs * stride, stride / 2 + ys * stride], axis=1).astype(np.float64)
        delta = offset[:, ys, xs].T.astype(np.float64)
        centre = prior + delta[:, :2] * S3FD_VARIANCES[0] * stride * 4
        size = stride * 4 * np.exp(delta[:, 2:] * S3FD_VARIANCES[1])
        rows.append(np.hstack([centre - size / 2, centre + size / 2, score[ys, xs][:, None]]))
    if not rows:
        return np.zeros((0, 5), np.float32)
    candidates = np.concatenate(rows)
    if len(candidates) > S3FD_MAX_CANDIDATES:
        candidates = candidates[np.argpartition(-candidates[:, 4], S3FD_MAX_CANDIDATES)[:S3FD_MAX_CANDIDATES]]
    return _suppress_overlaps(candidates).astype(np.float32)


def _suppress_overlaps(rows: np.ndarray) -> np.ndarray:
    """Greedy non-maximum suppression, most confident first, up to MAX_FACES boxes (pixel-inclusive areas, as
    S3FD was tuned with)."""
    rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    x1, y1, x2, y2 = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    left = np.arange(len(rows))
    keep = []
    while len(left) and len(keep) < MAX_FACES:
        best, rest = left[0], left[1:]
        keep.append(best)
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = w * h / (areas[best] + areas[rest] - w * h)
        left = rest[overlap <= S3FD_NMS_IOU]
    return rows[keep]
