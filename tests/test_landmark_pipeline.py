"""Landmarks in the pipeline: when `auto` finds them, the gate's fall-back to the box path with random weights, the
roll from the eye centres, the points followed over time, the face and mouth masks' seams on the portrait with its
hand-measured points, and the command line end to end."""

from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest

import seams
from conftest import (HAAR, HAND_LANDMARKS, PORTRAIT, TALKING_HEAD, assert_valid_mp4, cli, cut_speech, read_frames,
                      through_encoder)
from lipsync import LipSyncConfig, generate, runtime
from lipsync.errors import CheckpointError, OptionError
from lipsync.config import ALL_FACES
from lipsync.faces import alignment, detectors, finding, landmarks, paste, track
from lipsync.media import video
from lipsync.nets.wav2lip import FACE_SIZE

SYNC_ALL = HAAR.replace(keep_silence=False)  # every frame gets a mouth
PORTRAIT_BOX = (60, 230, 80, 220)  # top, bottom, left, right


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return cut_speech(tmp_path_factory.mktemp("speech") / "s.wav", 1.0, start=4.0)


def portrait() -> np.ndarray:
    return cv2.imread(str(PORTRAIT))[:446]  # the pipeline drops the odd last row


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


# ---------------------------------------------------------------- when landmarks are found

def test_auto_finds_landmarks_with_s3fd_where_the_file_is_at_hand_and_they_are_cheap(landmark_dir, checkpoint_dir,
                                                                                     monkeypatch):
    def finds(still: bool = True, folder=landmark_dir, **options) -> bool:
        return runtime.resolve(LipSyncConfig(checkpoint_dir=str(folder), **options), still=still).landmarks

    assert finds()  # S3FD, the file in the folder, a still
    assert not finds(still=False)  # a video on the CPU: about a second a face on every other frame
    assert not finds(folder=checkpoint_dir)  # auto never downloads it
    assert not finds(detector="haar")  # the no-download finder
    assert not finds(landmarks="none") and not finds(box=PORTRAIT_BOX)
    assert finds(detector="haar", mask="face", folder=checkpoint_dir)  # a mask drawn from them needs them
    assert finds(detector="haar", landmarks="fan", still=False)
    monkeypatch.setattr(runtime, "cuda_available", lambda: True)
    assert finds(still=False, device="cuda", precision="fp32", batch_size=8)


@pytest.mark.parametrize("options, words", [
    ({"landmarks": "none", "mask": "mouth"}, "The mouth mask follows the face's landmarks"),
    ({"landmarks": "fan", "box": PORTRAIT_BOX}, "a fixed face box skips finding"),
    ({"mask": "face", "box": PORTRAIT_BOX}, "a fixed face box skips finding"),
])
def test_settings_that_need_landmarks_where_none_are_found_are_refused(options, words):
    with pytest.raises(OptionError, match=words):
        LipSyncConfig(**options)


def test_fan_asked_for_without_its_file_says_where_to_put_it(tmp_path, speech):
    with pytest.raises(CheckpointError, match=r"^2DFAN4-cd938726ad\.zip is not in the checkpoint folder"):
        generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech, config=HAAR.replace(landmarks="fan"))
    assert not (tmp_path / "out.mp4").exists()


# ---------------------------------------------------------------- the gate and the roll

def test_random_weights_fail_the_gate_and_the_box_path_makes_the_same_video(tmp_path, speech, landmark_dir):
    config = SYNC_ALL.replace(checkpoint_dir=str(landmark_dir))
    with_fan = generate(PORTRAIT, tmp_path / "fan.mp4", audio_path=speech,
                        config=config.replace(landmarks="fan", mask="face"))
    without = generate(PORTRAIT, tmp_path / "none.mp4", audio_path=speech, config=config.replace(landmarks="none"))
    assert_valid_mp4(with_fan.path, without.duration, (300, 446), 25)
    assert with_fan.synced_frames == with_fan.frames and with_fan.landmark_frames == 0
    fan_frames, plain_frames = read_frames(with_fan.path), read_frames(without.path)
    assert len(fan_frames) == len(plain_frames)
    assert all(np.array_equal(a, b) for a, b in zip(fan_frames, plain_frames))  # the box path's video exactly


def test_the_roll_comes_from_the_eye_centres_where_landmarks_pass(hand_landmarks, monkeypatch):
    """The portrait turned by 20°, its hand points turned with it: the box's angle is the eye line's, and the
    Haar eye cascade is not asked."""
    image = portrait()
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 20.0, 1.0)
    turned = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    hand_landmarks.points = apply(turn, hand_landmarks.points)

    def no_cascade(*args):
        raise AssertionError("the Haar eye cascade was asked for the roll")

    monkeypatch.setattr(finding, "_measure_roll", no_cascade)
    (box,), = finding.detect_faces(detectors.HaarDetector(), [turned], 1.0, True, still=True, landmarker=object())
    assert box.eyes and box.angle == alignment.roll_degrees(hand_landmarks.points)
    upright_roll = alignment.roll_degrees(np.array(HAND_LANDMARKS["monalisa"]["points"]))
    assert abs(box.angle - (upright_roll - 20.0)) <= 1.0
    np.testing.assert_array_equal(box.points, hand_landmarks.points)


def test_points_follow_the_face_and_are_interpolated_only_between_frames_that_have_them(monkeypatch):
    """Thirteen frames of the portrait, searched at stride 2; the points move 2 px a frame with a ±1 px jitter on
    the searched frames, and the gate fails on frame 6. Frames next to it get no points; the others get them,
    interpolated halfway between searched frames, carried into the plan as they are without smoothing, and
    steadier with it (less bend from frame to frame: the line they move along has none)."""
    image = portrait()
    base = np.array(HAND_LANDMARKS["monalisa"]["points"], np.float64)
    searched = iter(range(0, 13, 2))

    def line(index: int) -> np.ndarray:
        return base + [2.0 * index, 0.0]

    def locate(model, batch, boxes, scale=1.0):
        found = []
        for frame_boxes in boxes:
            index = next(searched)
            jitter = [(-1.0) ** (index // 2), 0.0]
            found.append([landmarks.Landmarks(line(index) + jitter, np.ones(68, np.float32), index != 6)
                          for _ in frame_boxes])
        return found

    monkeypatch.setattr(landmarks, "locate", locate)
    found = finding.detect_faces(detectors.HaarDetector(), [image] * 13, 1.0, False, stride=2, landmarker=object())
    has_points = [boxes[0].points is not None for boxes in found]
    assert has_points == [True] * 5 + [False] * 3 + [True] * 5
    np.testing.assert_allclose(found[1][0].points, line(1))  # halfway: the jitters of frames 0 and 2 cancel
    width, height = image.shape[1], image.shape[0]
    unsmoothed = track.plan_faces(found, HAAR.replace(smoothing="none"), 25.0, width, height, str)
    for boxes, frame_boxes in zip(unsmoothed, found):
        assert (boxes[0].points is None) == (frame_boxes[0].points is None)
        if boxes[0].points is not None:
            np.testing.assert_array_equal(boxes[0].points, frame_boxes[0].points)
    smoothed = track.plan_faces(found, HAAR, 25.0, width, height, str)
    assert [boxes[0].points is not None for boxes in smoothed] == has_points

    def bend(plan: list, run: range) -> float:
        points = np.array([plan[i][0].points for i in run])
        return float(np.abs(points[2:] - 2 * points[1:-1] + points[:-2]).mean())

    for run in (range(0, 5), range(8, 13)):
        assert bend(smoothed, run) < 0.5 * bend(found, run), (bend(smoothed, run), bend(found, run))


# ---------------------------------------------------------------- the masks' seams

def test_face_and_mouth_masks_leave_no_harder_seam_than_the_oval(tmp_path, speech, landmark_dir, hand_landmarks):
    """With the portrait's hand landmarks: at the box's border (the seam score the quality tests use) every soft
    mask is at the encoder's own noise, the masks being 0 there; along each mask's own edge the face and mouth
    masks' jump is no larger than the oval's."""
    image = portrait()
    config = SYNC_ALL.replace(checkpoint_dir=str(landmark_dir), landmarks="fan")
    found = finding.detect_faces(detectors.HaarDetector(), [image], 1.0, True, still=True, landmarker=object())
    (box,), = track.plan_faces(found, config, 25.0, image.shape[1], image.shape[0], str)
    assert box.points is not None
    floor = float(np.mean([seams.seam_score(image, frame, box) for frame in through_encoder(image, tmp_path)]))
    outline, edge = {}, {}
    for mask in ("box", "face", "mouth"):
        result = generate(PORTRAIT, tmp_path / f"{mask}.mp4", audio_path=speech, config=config.replace(mask=mask))
        assert result.landmark_frames == result.synced_frames == result.frames
        alpha = cv2.warpAffine(paste.blend_mask(box, "feather", mask), box.crop_matrix(FACE_SIZE), image.shape[1::-1],
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
        frames = read_frames(result.path)
        outline[mask] = float(np.mean([seams.seam_score(image, frame, box) for frame in frames]))
        edge[mask] = float(np.mean([seams.mask_edge_score(image, frame, alpha) for frame in frames]))
    print(f"seam at the box border (encoder alone {floor:.2f}) / along the mask's own edge: "
          + ", ".join(f"{mask} {outline[mask]:.2f} / {edge[mask]:.2f}" for mask in outline))
    for mask in ("box", "face", "mouth"):
        assert outline[mask] <= 1.1 * floor, outline
    for mask in ("face", "mouth"):
        assert edge[mask] <= edge["box"], edge


def test_masks_follow_the_landmarks_inside_the_crop(hand_landmarks):
    """Both masks hold the lips and are 0 at the crop's outer pixels; the mouth mask is the smaller, and both move
    with the points (the face mask less: the crop's edge holds it). Without landmarks (or with the box mask) the
    oval is used."""
    image = portrait()
    found = finding.detect_faces(detectors.HaarDetector(), [image], 1.0, True, still=True, landmarker=object())
    (box,), = track.plan_faces(found, HAAR, 25.0, image.shape[1], image.shape[0], str)
    to_crop = box.crop_matrix(FACE_SIZE)
    points = apply(to_crop, box.points)
    face, mouth = paste.blend_mask(box, "feather", "face"), paste.blend_mask(box, "feather", "mouth")
    for mask in (face, mouth):
        assert mask.shape == (FACE_SIZE, FACE_SIZE) and mask.dtype == np.float32
        edges = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert (edges == 0).all()
    oval = paste.crop_mask("feather")
    lips = np.round(points[48:68]).astype(int)
    assert (mouth[lips[:, 1], lips[:, 0]] > 0.9).all() and (face[lips[:, 1], lips[:, 0]] > 0.9).all()
    assert mouth.sum() < face.sum()
    moved = dataclasses.replace(box, points=box.points + [6.0, 0.0])  # 6 px to the right
    columns = np.arange(FACE_SIZE)
    for kind, mask, least in (("face", face, 0.2), ("mouth", mouth, 0.5)):
        after = paste.blend_mask(moved, "feather", kind)
        shift = (after.sum(axis=0) @ columns) / after.sum() - (mask.sum(axis=0) @ columns) / mask.sum()
        assert least * 6 * FACE_SIZE / box.w < shift <= 6 * FACE_SIZE / box.w, (kind, shift)
    assert paste.blend_mask(box, "feather", "box") is oval
    assert paste.blend_mask(dataclasses.replace(box, points=None), "feather", "face") is oval  # none: the oval
    assert (paste.blend_mask(box, "hard", "face") == 1).all()


# ---------------------------------------------------------------- end to end

def test_cli_runs_landmarks_fan_with_the_face_mask_on_the_video(tmp_path, landmark_dir):
    speech = cut_speech(tmp_path / "s.wav", 0.4, start=4.0)
    out = tmp_path / "out.mp4"
    done = cli("--face", TALKING_HEAD, "--audio", speech, "--out", out, "--detector", "haar", "--landmarks", "fan",
               "--mask", "face", "--no-keep-silence", "--checkpoint-dir", landmark_dir)
    assert done.returncode == 0, done.stderr
    assert_valid_mp4(out, 0.4, (704, 1216), 25)
    assert "(faces placed by landmarks in 0)" in done.stdout  # random weights fail the gate


class WithBystanders(detectors.HaarDetector):
    """The cascade's faces plus two smaller boxes in the frame's top corners, as a finder that reports many
    faces (random S3FD weights, a group photo) does."""

    def detect(self, frames):
        found = super().detect(frames)
        rows = []
        for frame, faces in zip(frames, found):
            side = frame.shape[1] // 6
            bystanders = np.array([[2, 2, 2 + side, 2 + side, 0.5],
                                   [frame.shape[1] - 2 - side, 2, frame.shape[1] - 2, 2 + side, 0.5]], np.float32)
            rows.append(np.concatenate([np.asarray(faces, np.float32).reshape(-1, 5), bystanders]))
        return rows


@pytest.mark.parametrize("face_index", [0, 2, ALL_FACES])
def test_landmarks_are_found_on_the_chosen_face_only(monkeypatch, face_index):
    """Sixty frames of the talking head, with two bystanders in every frame and searched at stride 2: FAN runs once
    per searched frame, on the box that the plan syncs in that frame (the speaker, or the right-hand bystander),
    and on all three faces only when every face is chosen. Without the choice it ran on all three every time."""
    source = video.open_face(TALKING_HEAD, HAAR.output_size, HAAR.max_image_pixels, HAAR.still_fps)
    scale = finding.detection_scale(source.width, source.height, False)
    size = round(source.width * scale), round(source.height * scale)
    frames = list(itertools.islice(video.iter_video_frames(source, *size, 60, searched_only=True), 60))
    located = []

    def locate(model, batch, boxes, scale=1.0):
        located.extend([list(frame_boxes) for frame_boxes in boxes])
        return [[landmarks.Landmarks(np.tile([[box.cx, box.cy]], (68, 1)), np.ones(68, np.float32), True)
                 for box in frame_boxes] for frame_boxes in boxes]

    monkeypatch.setattr(landmarks, "locate", locate)
    found = finding.detect_faces(WithBystanders(), frames, scale, False, stride=2, landmarker=object(),
                                 face_index=face_index, max_gap=track.max_gap_frames(25.0))
    searched = found[::2]
    assert len(located) == len(searched) == 30
    assert [len(boxes) for boxes in located] == [3 if face_index == ALL_FACES else 1] * 30
    assert all(len(boxes) == 3 for boxes in found)  # every face is still found and followed
    if face_index == ALL_FACES:
        return
    plan = track.plan_faces(found, HAAR.replace(face_index=face_index, smoothing="none", pads=(0, 0, 0, 0)),
                            25.0, source.width, source.height, str)
    for index, (frame_boxes, synced) in enumerate(zip(located, plan[::2])):
        (box,), (planned,) = frame_boxes, synced
        assert box.iou(planned) > 0.99, index  # the located face is the one synced
        assert planned.points is not None
    unchosen = [box for boxes in searched for box in boxes if box.points is None]
    assert len(unchosen) == 2 * 30  # the faces not synced have no landmarks
