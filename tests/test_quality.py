"""Beyond Wav2Lip, measured on the real media: feathered seams, steady boxes, several faces, silences, tilted heads,
lost faces and A/V sync at the common frame rates. The random weights make every mouth garbage, so what is checked
is where and when pixels change, never what the mouth looks like."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import seams
from conftest import HAAR, PORTRAIT, SPEECH, TALKING_HEAD, probe, read_frames, run, through_encoder
from lipsync import LipSyncConfig, generate
from lipsync.faces import crop, detectors, finding, paste, track
from lipsync.faces.boxes import FaceBox
from lipsync.media import i420, video

SYNC_ALL = HAAR.replace(keep_silence=False)  # every frame gets a mouth, silences included
STILLS = os.environ.get("LIPSYNC_QUALITY_STILLS")  # a folder: the seam tests also save their frames there
VOICED = (4.0, 12.0)  # seconds into speech_en.wav where 1.5 s of unbroken talk starts (it opens with 3 s of silence)


# ---------------------------------------------------------------- helpers

def portrait() -> np.ndarray:
    return cv2.imread(str(PORTRAIT))[:446]  # the pipeline drops the odd last row


def talk(path: Path, seconds: float, start: float = VOICED[0]) -> Path:
    run(["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-t", str(seconds), "-i", str(SPEECH), str(path)])
    return path


def encode(frames: list[np.ndarray], path: Path, fps: str = "25") -> Path:
    """Frames to an H.264 video, nearly losslessly, as a face input."""
    height, width = frames[0].shape[:2]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                    "-r", fps, "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt",
                    "yuv420p", str(path)], input=b"".join(f.tobytes() for f in frames), check=True, timeout=120)
    return path


def codec_tolerance(image: np.ndarray, tmp_path: Path, rate: str = "25"):
    """area -> the most the encoder alone changes `image` there (mean over the area, worst frame), plus 1 level:
    an output frame within it is unchanged "within codec tolerance"."""
    errors = [change(frame, image) for frame in through_encoder(image, tmp_path, rate)]
    return lambda area: max(float(error[area].mean()) for error in errors) + 1.0


def change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mean absolute difference over the color channels."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def region(bounds: tuple[int, int, int, int]) -> tuple[slice, slice]:
    x1, y1, x2, y2 = bounds
    return slice(y1, y2), slice(x1, x2)


def plan_still(image: np.ndarray, config: LipSyncConfig) -> list[FaceBox]:
    """The boxes generate() pastes into a still: the same detection and planning calls."""
    found = finding.detect_faces(detectors.HaarDetector(), [image], 1.0, config.align_roll, still=True)
    return track.plan_faces(found, config, 25.0, image.shape[1], image.shape[0], str)[0]


def detect_video(path: Path, output_size: int, align_roll: bool = True):
    """Raw detections of every frame (generate() searches every VIDEO_DETECT_STRIDE-th), and the opened input."""
    source = video.open_face(path, output_size, 40_000_000, 25.0)
    scale = finding.detection_scale(source.width, source.height, False)
    small = (max(2, round(source.width * scale)), max(2, round(source.height * scale)))
    frames = video.iter_video_frames(source, *small, 120)
    return finding.detect_faces(detectors.HaarDetector(), frames, scale, align_roll), source


def polygon(box: FaceBox) -> np.ndarray:
    """The corners of a (rotated) box in frame pixels: the box's own corners mapped back."""
    inverse = cv2.invertAffineTransform(box.box_matrix())
    corners = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], np.float64)
    return corners @ inverse.T


def inside(poly: np.ndarray, shape: tuple[int, int], grow: int = 0) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(poly).astype(np.int32), 1)
    if grow:
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask.astype(bool)


def rotate(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned `degrees` counter-clockwise about its centre (OpenCV's sense), same canvas."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE), matrix


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64) - a.mean(), b.astype(np.float64) - b.mean()
    return float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))


def lag(signal: np.ndarray, reference: np.ndarray, most: int = 8) -> float:
    """The delay s (frames, in quarters) that best explains signal(t) as reference(t - s)."""
    t = np.arange(len(signal), dtype=np.float64)
    inner = slice(most, len(signal) - most)

    def error(s: float) -> float:
        return float(np.abs((signal - np.interp(t - s, t, reference))[inner]).mean())

    return float(min(np.arange(-most, most + 0.01, 0.25), key=error))


def jitter(centres: np.ndarray) -> float:
    """Mean frame-to-frame movement of the box centre, pixels."""
    return float(np.linalg.norm(np.diff(centres, axis=0), axis=1).mean())


@pytest.fixture(scope="module")
def speech_1s(tmp_path_factory) -> Path:
    return talk(tmp_path_factory.mktemp("speech") / "talk 1s.wav", 1.0)


# ---------------------------------------------------------------- feathered blend

def seam_ratio(name: str, face_path: Path, config: LipSyncConfig, speech: Path, tmp_path: Path,
               inputs: list[np.ndarray], plan: list[list[FaceBox]]) -> tuple[float, float]:
    """Mean seam score of a hard paste and of the feathered blend, same weights, same boxes."""
    scores, middle = {}, {}
    for mode in ("hard", "feather"):
        out = generate(face_path, tmp_path / f"{mode}.mp4", audio_path=speech, config=config.replace(blend=mode))
        frames = read_frames(out.path)
        assert len(frames) == out.frames
        scores[mode] = float(np.mean([
            seams.seam_score(inputs[min(i, len(inputs) - 1)], frame, box)
            for i, frame in enumerate(frames) for box in plan[min(i, len(plan) - 1)]]))
        middle[mode] = frames[len(frames) // 2]
    if STILLS:
        save_still(Path(STILLS) / f"quality_{name}.png", middle, plan[min(len(middle) // 2, len(plan) - 1)][0])
    return scores["hard"], scores["feather"]


def save_still(path: Path, frames: dict[str, np.ndarray], box: FaceBox, height: int = 260) -> None:
    """The README's picture: the same frame, hard paste beside feathered blend, cropped around the face."""
    frame = frames["hard"]
    x1, y1, x2, y2 = box.bounds(frame.shape[1], frame.shape[0])
    grow = (x2 - x1) // 3
    x1, y1 = max(0, x1 - grow), max(0, y1 - grow)
    x2, y2 = min(frame.shape[1], x2 + grow), min(frame.shape[0], y2 + grow)
    tiles = []
    for mode, label in (("hard", "hard paste"), ("feather", "feathered")):
        tile = frames[mode][y1:y2, x1:x2]
        tile = cv2.resize(tile, (round(tile.shape[1] * height / tile.shape[0]), height), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, label, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.hstack([tiles[0], np.full((height, 4, 3), 255, np.uint8), tiles[1]]),
                [cv2.IMWRITE_PNG_COMPRESSION, 9])


def test_feathered_blend_halves_the_seam_on_the_portrait(tmp_path, speech_1s):
    image = portrait()
    box, = plan_still(image, SYNC_ALL)
    hard, feather = seam_ratio("portrait", PORTRAIT, SYNC_ALL, speech_1s, tmp_path, [image], [[box]])
    assert hard > 10.0, "the hard paste leaves a visible edge (random weights paint a flat patch)"
    assert feather <= 0.5 * hard, (hard, feather)


def test_feathered_blend_halves_the_seam_on_the_video(tmp_path, speech_1s):
    config = SYNC_ALL.replace(output_size=352)
    found, source = detect_video(TALKING_HEAD, config.output_size)
    plan = track.plan_faces(found, config, float(source.fps), source.width, source.height, str)
    inputs = list(itertools.islice(video.iter_video_frames(source, source.width, source.height, 120), 30))
    hard, feather = seam_ratio("video", TALKING_HEAD, config, speech_1s, tmp_path, inputs, plan)
    assert hard > 10.0
    assert feather <= 0.5 * hard, (hard, feather)


# ---------------------------------------------------------------- steady boxes

def test_smoothing_steadies_the_box_without_lag_on_the_talking_head():
    found, source = detect_video(TALKING_HEAD, 1216)
    config = HAAR.replace(pads=(0, 0, 0, 0))
    fps = float(source.fps)
    raw = track.build_tracks(found)[0]
    assert not np.isnan(raw[:, 0]).any(), "Haar finds the head in every frame"
    plan = track.plan_faces(found, config, fps, source.width, source.height, str)
    smooth = np.array([[boxes[0].cx, boxes[0].cy] for boxes in plan])
    assert jitter(smooth) <= 0.5 * jitter(raw[:, :2]), (jitter(smooth), jitter(raw[:, :2]))
    for axis in (0, 1):
        assert abs(lag(smooth[:, axis], raw[:, axis])) <= 2
    # The box still sits on the head: within a tenth of its width of the raw detections, everywhere.
    assert np.abs(smooth - raw[:, :2]).max() <= 0.1 * np.median(raw[:, 2])


def test_smoothing_follows_a_moving_head_without_lag():
    """The talking head panned left and right (±45 px in a 208 px frame, one cycle per 2 s): a known motion."""
    source = video.open_face(TALKING_HEAD, 1216, 40_000_000, 25.0)
    frames = list(itertools.islice(video.iter_video_frames(source, 208, 360, 120), 150))
    pan = 45 * np.sin(2 * np.pi * np.arange(len(frames)) / 50)
    moved = [cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, 0]]), (208, 360), borderMode=cv2.BORDER_REPLICATE)
             for frame, dx in zip(frames, pan)]
    found = finding.detect_faces(detectors.HaarDetector(), moved, 1.0, True)
    raw = track.fill_gaps(track.build_tracks(found)[0], 12)
    plan = track.plan_faces(found, HAAR.replace(pads=(0, 0, 0, 0)), 25.0, 208, 360, str)
    smooth = np.array([boxes[0].cx for boxes in plan])
    assert abs(lag(smooth, raw[:, 0])) <= 2 and abs(lag(smooth - smooth.mean(), pan)) <= 2
    width = np.median(raw[:, 2])
    assert np.abs(smooth - raw[:, 0]).mean() <= 0.05 * width
    # The measure does see lag: a causal low-pass of the same raw track (1 Hz) trails by more than 2 frames.
    alpha = 1 / (1 + 25 / (2 * np.pi))
    causal = np.copy(raw[:, 0])
    for i in range(1, len(causal)):
        causal[i] = causal[i - 1] + alpha * (raw[i, 0] - causal[i - 1])
    assert lag(causal, raw[:, 0]) > 2


# ---------------------------------------------------------------- several faces

@pytest.fixture(scope="module")
def two_portraits(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """Mona Lisa, and beside her a mirrored copy at 3/4 size: the largest face is the left one."""
    left = cv2.imread(str(PORTRAIT))[:260]
    right = cv2.resize(cv2.flip(left, 1), None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    right = cv2.copyMakeBorder(right, 0, left.shape[0] - right.shape[0], 0, 0, cv2.BORDER_REPLICATE)
    image = np.hstack([left, right])[:, :524]
    path = tmp_path_factory.mktemp("faces") / "two.png"
    cv2.imwrite(str(path), image)
    return path, image


@pytest.mark.parametrize("index", [0, 1, -1])
def test_face_index_syncs_only_the_chosen_face(tmp_path, speech_1s, two_portraits, index):
    path, image = two_portraits
    boxes = plan_still(image, SYNC_ALL.replace(face_index=-1))
    assert len(boxes) == 2 and boxes[0].cx < 300 < boxes[1].cx, "both faces found, the largest (left) first"
    chosen = {0: [0], 1: [1], -1: [0, 1]}[index]
    result = generate(path, tmp_path / "out.mp4", audio_path=speech_1s, config=SYNC_ALL.replace(face_index=index))
    assert result.synced_frames == result.frames
    tolerance = codec_tolerance(image, tmp_path)
    height, width = image.shape[:2]
    outside = np.ones((height, width), bool)
    for box in boxes:
        outside[region(box.bounds(width, height))] = False
    for frame in read_frames(result.path)[::6]:
        diff = change(frame, image)
        for k, box in enumerate(boxes):
            area = region(box.bounds(width, height))
            if k in chosen:
                assert diff[area].mean() > tolerance(area) + 4.0
            else:
                assert diff[area].mean() <= tolerance(area), f"face {k} was touched"
        assert diff[outside].mean() <= tolerance(outside)


# ---------------------------------------------------------------- silences

@pytest.fixture(scope="module")
def talk_pause_talk(tmp_path_factory) -> Path:
    """1.5 s of speech, 1.5 s of digital silence, 1.5 s of speech."""
    folder = tmp_path_factory.mktemp("pause")
    out = folder / "talk pause talk.wav"
    run(["ffmpeg", "-v", "error", "-y", "-ss", str(VOICED[0]), "-t", "1.5", "-i", str(SPEECH),
         "-f", "lavfi", "-t", "1.5", "-i", "anullsrc=r=16000:cl=mono",
         "-ss", str(VOICED[1]), "-t", "1.5", "-i", str(SPEECH),
         "-filter_complex", "[0:a][1:a][2:a]concat=n=3:v=0:a=1", "-ar", "16000", "-ac", "1", str(out)])
    return out


@pytest.mark.parametrize("keep_silence", [True, False])
def test_mouth_rests_during_silence(tmp_path, talk_pause_talk, keep_silence):
    image = portrait()
    box, = plan_still(image, HAAR)
    result = generate(PORTRAIT, tmp_path / "out.mp4", audio_path=talk_pause_talk,
                      config=HAAR.replace(keep_silence=keep_silence))
    frames = read_frames(result.path)
    assert len(frames) == result.frames == round(4.5 * 25)
    area = region(box.bounds(image.shape[1], image.shape[0]))
    tolerance = codec_tolerance(image, tmp_path)(area)
    changed = np.array([change(frame, image)[area].mean() for frame in frames])
    speaking = np.r_[2:35, 78:110]  # well inside the speech, clear of the fades
    silent = np.r_[45:68]  # 1.8 s to 2.7 s: well inside the 1.5 s to 3.0 s silence
    assert (changed[speaking] > tolerance + 4.0).all()
    if keep_silence:
        assert (changed[silent] <= tolerance).all(), changed[silent]
    else:
        assert (changed[silent] > tolerance + 4.0).all()


# ---------------------------------------------------------------- tilted heads

@pytest.mark.parametrize("degrees", [-30, -20, 20, 30])
def test_tilted_portrait_is_found_and_cropped_upright(degrees):
    image = portrait()
    upright, = plan_still(image, HAAR)
    turned, matrix = rotate(image, degrees)
    boxes = plan_still(turned, HAAR)
    assert len(boxes) == 1
    box = boxes[0]
    # Turning the frame by box.angle makes the face upright: the opposite of the turn we gave it.
    assert abs(box.angle + degrees) <= 4.0, box.angle
    expected = matrix @ [upright.cx, upright.cy, 1.0]
    assert math.dist((box.cx, box.cy), expected) <= 0.05 * upright.w
    # The model's crop of the turned portrait shows the face as the crop of the original does; the opposite
    # angle (a sign error anywhere in crop_matrix, _to_boxes or the eye roll) turns it twice as far instead.
    reference = crop.crop_face(image, upright)
    good = correlation(crop.crop_face(turned, box), reference)
    wrong = correlation(crop.crop_face(turned, FaceBox(box.cx, box.cy, box.w, box.h, -box.angle)), reference)
    assert good >= 0.9 and wrong <= good - 0.15, (good, wrong)
    # bounds() covers the turned box, padded() grew it at the chin only (pads 0 10 0 0), along the face's own axes.
    x1, y1, x2, y2 = box.bounds(turned.shape[1], turned.shape[0])
    corners = polygon(box)
    assert (corners[:, 0] >= x1 - 1).all() and (corners[:, 0] <= x2 + 1).all()
    assert (corners[:, 1] >= y1 - 1).all() and (corners[:, 1] <= y2 + 1).all()
    bare = FaceBox(box.cx, box.cy, box.w, box.h, box.angle)
    grown = polygon(bare.padded((0, 10, 0, 0), 10**4, 10**4))
    bare = polygon(bare)
    theta = math.radians(box.angle)
    down = np.array([-math.sin(theta), math.cos(theta)])  # the face's "down" (the crop's +y) in frame pixels
    assert np.allclose(grown[:2], bare[:2], atol=1e-6)  # forehead corners stay
    assert np.allclose(grown[2:] - bare[2:], 10 * down, atol=1e-6)  # chin corners move 10 px down the face


def test_tilted_portrait_changes_pixels_only_inside_the_turned_box(tmp_path, speech_1s):
    image = portrait()
    upright, = plan_still(image, SYNC_ALL)
    turned, matrix = rotate(image, 20)
    path = tmp_path / "turned.png"
    cv2.imwrite(str(path), turned)
    reference = through_encoder(turned, tmp_path)[0]
    # Where the face really is: the upright portrait's padded box, turned with the picture.
    corners = np.hstack([polygon(upright), np.ones((4, 1))]) @ matrix.T
    expected = inside(corners, turned.shape[:2])
    hard = SYNC_ALL.replace(blend="hard")  # the whole box is pasted: its outline is in the changed pixels

    def changed(config: LipSyncConfig) -> np.ndarray:
        result = generate(path, tmp_path / "out.mp4", audio_path=speech_1s, config=config)
        assert result.synced_frames == result.frames
        return change(read_frames(result.path)[10], reference) > 20

    def iou(mask: np.ndarray) -> float:
        return (mask & expected).sum() / (mask | expected).sum()

    aligned = changed(hard)
    assert iou(aligned) >= 0.9
    assert (aligned & ~inside(corners, turned.shape[:2], grow=3)).sum() <= 0.01 * aligned.sum()
    # The check has teeth: without roll alignment the box is pasted upright and misses the turned outline.
    assert iou(changed(hard.replace(align_roll=False))) < 0.85


@pytest.mark.parametrize("degrees", [0.0, 12.0, -25.0])
@pytest.mark.parametrize("kind", ["feather", "hard"])
def test_a_paste_changes_only_where_its_mask_reaches(kind, degrees, monkeypatch):
    """The paste works on the part of the box its mask can change; pasted over the whole box instead, the frame
    comes out the same within a level of rounding. On the portrait's own face, turned; the mouth a smooth change
    of the crop."""
    image = portrait()
    box, = plan_still(image, SYNC_ALL)
    box = FaceBox(box.cx, box.cy, box.w, box.h, degrees)
    height, width = image.shape[:2]
    frame = i420.to_i420(image[:height - height % 2, :width - width % 2])
    face = crop.crop_face(image, box)
    mouth = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 4) * 0.7 + 60

    def pasted() -> np.ndarray:
        out = frame.copy()
        paste.paste(out, box, mouth, face, kind, "auto", True, 0.9)
        return out

    cut = pasted()
    reach = paste._mask_bounds(frame, box, paste.blend_mask(box, kind, "auto"))
    whole = i420.even_bounds(box.bounds(*i420.frame_size(frame)), *i420.frame_size(frame))
    monkeypatch.setattr(paste, "_mask_bounds", lambda frame, box, in_crop: whole)
    reference = pasted()
    area = lambda bounds: (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])  # noqa: E731
    assert np.abs(cut.astype(int) - reference).max() <= 1
    assert (reference != frame).sum() > 0.25 * area(reach)  # the paste changed the face
    if kind == "feather":  # the oval's reach is a part of the box
        assert area(reach) < 0.85 * area(whole)
    else:
        assert reach == whole


# ---------------------------------------------------------------- lost faces

def test_frames_without_a_face_pass_through_and_the_face_is_found_again(tmp_path):
    """1 s of the portrait, 1 s with no face (longer than MAX_GAP_SECONDS), 1 s of the portrait 100 px further
    right: after the loss the face is searched for anew, not only where it was."""
    image = portrait()
    canvas = np.full((446, 400, 3), 90, np.uint8)
    first, last = canvas.copy(), canvas.copy()
    first[:, :300], last[:, 100:] = image, image
    sky = np.tile(np.linspace(60, 220, 446, dtype=np.uint8)[:, None, None], (1, 400, 3))
    frames = [first] * 25 + [sky] * 25 + [last] * 25
    assert track.MAX_GAP_SECONDS < 1.0, "the loss outlasts what is bridged by interpolation"
    path = encode(frames, tmp_path / "lost.mp4")
    inputs = read_frames(path)
    speech = talk(tmp_path / "talk.wav", 3.0)
    result = generate(path, tmp_path / "out.mp4", audio_path=speech, config=SYNC_ALL)
    outputs = read_frames(result.path)
    assert len(outputs) == 75 and result.synced_frames == 50
    box_first, = plan_still(first, SYNC_ALL)
    box_last, = plan_still(last, SYNC_ALL)
    for i, (before, after) in enumerate(zip(inputs, outputs)):
        diff = change(after, before)
        if 25 <= i < 50:
            assert diff.mean() <= 0.5 and diff.max() <= 12, f"frame {i} has no face and must pass through"
        else:
            box = box_first if i < 25 else box_last
            assert diff[region(box.bounds(400, 446))].mean() > 5.0, f"frame {i} shows a face and is synced"


# ---------------------------------------------------------------- A/V sync

@pytest.mark.parametrize("rate", ["24", "25", "30000/1001", "30", "50", "60"])
def test_video_and_audio_agree_at_common_frame_rates(tmp_path, rate):
    clip = tmp_path / "portrait.mp4"
    run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", rate, "-t", "2", "-i", str(PORTRAIT),
         "-vf", "crop=300:446:0:0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)])
    # 1 s of talk then 1.03 s of digital silence: a length that is no whole number of frames at any of the rates.
    speech = tmp_path / "speech.wav"
    run(["ffmpeg", "-v", "error", "-y", "-ss", str(VOICED[0]), "-t", "1", "-i", str(SPEECH), "-af", "apad",
         "-t", "2.03", "-ar", "16000", "-ac", "1", str(speech)])
    result = generate(clip, tmp_path / "out.mp4", audio_path=speech, config=HAAR)
    info = probe(result.path)
    fps = Fraction(info["video"]["avg_frame_rate"])
    assert fps == Fraction(rate) and Fraction(info["video"]["r_frame_rate"]) == Fraction(rate)
    frame = 1 / float(fps)
    frames = int(info["video"]["nb_read_frames"])
    video_seconds, audio_seconds = frames * frame, float(info["audio"]["duration"])
    assert abs(audio_seconds - 2.03) <= 0.03
    assert abs(video_seconds - audio_seconds) <= frame, (video_seconds, audio_seconds)
    assert abs(float(info["video"].get("start_time", 0)) - float(info["audio"].get("start_time", 0))) < frame
    # And the picture follows the sound frame by frame: the mouth moves in the talk, rests in the silence.
    image = read_frames(clip)[0]
    box, = plan_still(portrait(), HAAR)
    area = region(box.bounds(300, 446))
    tolerance = codec_tolerance(image, tmp_path, rate)(area)
    changed = np.array([change(f, image)[area].mean() for f in read_frames(result.path)])
    second = float(fps)
    assert (changed[: int(0.8 * second)] > tolerance + 4.0).all()
    assert (changed[int(1.3 * second):] <= tolerance).all(), changed
    resting = int(np.argmax(changed < tolerance + 0.8 * (changed[0] - tolerance)))  # the first frame fading out
    assert abs(resting - second) <= 2, (resting, second)  # the silence starts at 1.0 s
