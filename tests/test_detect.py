"""S3FD's decoding is bounded: no image makes it slow, and it keeps face-alignment's own best boxes. The Haar
cascade on a video searches the whole frame rarely and finds what a whole-frame search finds."""

import cv2
import numpy as np
import pytest
import torch

from conftest import PORTRAIT, TALKING_HEAD
from lipsync import LipSyncConfig, pipeline
from lipsync.faces import detectors, finding
from lipsync.media import video
from lipsync.nets import checkpoints
from lipsync.runtime import cpu_has_native_bf16


def test_a_plain_grey_image_gives_s3fd_at_most_the_cap(tmp_path, checkpoint_dir):
    """Random weights see thousands of "faces" in a flat grey image (1852 before the bound); the preview now
    gets at most MAX_FACES of them."""
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((400, 400, 3), 128, np.uint8))
    raw = detectors.S3FDDetector(checkpoints.s3fd_state_dict(checkpoint_dir / "s3fd.pth"), "cpu").detect([cv2.imread(str(grey))])[0]
    assert len(raw) == detectors.MAX_FACES  # far more candidates pass the threshold: the cap is what stops them
    _, boxes = pipeline.find_faces(grey, LipSyncConfig(detector="s3fd", precision="fp32"))
    assert 0 < len(boxes) <= detectors.MAX_FACES


def test_bounded_decoding_keeps_face_alignments_most_confident_boxes(checkpoint_dir):
    from face_alignment.detection.sfd.sfd_detector import SFDDetector

    image = cv2.resize(cv2.imread(str(PORTRAIT)), (160, 238), interpolation=cv2.INTER_AREA)
    theirs = SFDDetector("cpu", path_to_detector=str(checkpoint_dir / "s3fd.pth"),
                         filter_threshold=detectors.S3FD_THRESHOLD)
    rgb = torch.from_numpy(np.ascontiguousarray(image[None, ..., ::-1].transpose(0, 3, 1, 2))).float()
    reference = np.array(theirs.detect_from_batch(rgb)[0], np.float32).reshape(-1, 5)
    ours = detectors.S3FDDetector(checkpoints.s3fd_state_dict(checkpoint_dir / "s3fd.pth"), "cpu").detect([image])[0]
    assert len(reference) > detectors.MAX_FACES  # random weights: the unbounded path returns many more
    np.testing.assert_allclose(ours, reference[:detectors.MAX_FACES], atol=1e-3)


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16: S3FD stays in fp32 here")
def test_s3fd_in_bf16_scores_and_places_boxes_as_fp32_does(checkpoint_dir):
    image = cv2.resize(cv2.imread(str(PORTRAIT)), (160, 238), interpolation=cv2.INTER_AREA)
    outputs = {}
    for dtype in (torch.float32, torch.bfloat16):
        detector = detectors.S3FDDetector(checkpoints.s3fd_state_dict(checkpoint_dir / "s3fd.pth"), "cpu", dtype)
        batch = (torch.from_numpy(image[None]).permute(0, 3, 1, 2).float() - detector.mean).to(dtype)
        with torch.inference_mode():
            outputs[dtype] = [output.float() for output in detector.net(batch)]
    full, half = outputs[torch.float32], outputs[torch.bfloat16]
    for level in range(len(full) // 2):
        score_full, score_half = (torch.softmax(out[2 * level], dim=1)[0, 1] for out in (full, half))
        assert (score_full - score_half).abs().max() <= 0.01, level
        candidates = (score_full > detectors.S3FD_THRESHOLD) | (score_half > detectors.S3FD_THRESHOLD)
        # Offsets move a box by 0.1 (centre) and exp(0.2 x) (size) of its prior: compared on that scale.
        shift = (full[2 * level + 1] - half[2 * level + 1])[0][:, candidates].abs()
        assert shift.max() * 0.2 <= 0.01, level  # within 1 % of the box's size


def test_haar_on_a_video_searches_the_whole_frame_rarely_and_finds_the_same_faces(monkeypatch):
    source = video.open_face(TALKING_HEAD, 720, 10**8, 25)
    scale = finding.detection_scale(source.width, source.height, False)
    small = (round(source.width * scale), round(source.height * scale))
    frames = list(video.iter_video_frames(source, *small, 60, searched_only=True))[::finding.VIDEO_DETECT_STRIDE]
    haar = detectors.HaarDetector()
    whole = [haar.detect([frame])[0] for frame in frames]  # one frame a call: each searched whole
    searches = []
    search = haar._search
    monkeypatch.setattr(haar, "_search", lambda gray, *sides, **options: searches.append(sides)
                        or search(gray, *sides, **options))
    batches = range(0, len(frames), finding.DETECT_BATCH)
    tracked = [rows for first in batches for rows in haar.detect(frames[first:first + finding.DETECT_BATCH])]
    whole_searches = sum(len(sides) == 1 for sides in searches)
    # A whole search starts each batch and follows each miss near the face before: a tenth of the frames or fewer
    # (30 of 134 before a miss near the face was looked for in the whole frame at its sizes, 16 since).
    assert whole_searches <= len(batches) + len(frames) // 10, (whole_searches, len(frames))
    assert sum(len(rows) > 0 for rows in tracked) >= sum(len(rows) > 0 for rows in whole)
    boxes = [[finding._to_boxes(rows[:1], 1.0, 0.0, (0, 0)) for rows in found] for found in (tracked, whole)]
    overlaps = [near[0].iou(reference[0]) for near, reference in zip(*boxes) if near and reference]
    # The cascade's own boxes jump by a step of its 10 % scale pyramid between searches of one face.
    assert min(overlaps) >= 0.45 and np.mean(overlaps) >= 0.8
