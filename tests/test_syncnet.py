"""SyncNet and the lip-sync scores: the network against the facts table, its loader, the MFCC windows on real
speech, the scores against an independent computation, the offset bookkeeping with a delayed recording, and
score_video end to end on the shared talking head (random weights: the numbers mean nothing, the plumbing does)."""

from __future__ import annotations

import json
import math
import statistics
import wave
from contextlib import closing
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import python_speech_features
import torch

from conftest import HAAR, PORTRAIT, SPEECH, SPEECH_ONSET, TALKING_HEAD, run
from lipsync import models
from lipsync.errors import AudioError, CheckpointError, FaceError, NoFaceError
from lipsync.faces.boxes import FaceBox
from lipsync.faces.detectors import HaarDetector
from lipsync.media import video
from lipsync.nets import checkpoints, syncnet
from lipsync.runtime import CheckpointFolder
from lipsync.scoring.clips import boxes_at_25fps, detect_track, embed, score_video
from lipsync.scoring.sync import SyncScore, mfcc_windows, sync_scores, usable_windows

FACTS_TABLE = {}  # name -> shape, written out from the facts file's tables
for tower, convs in {
    "netcnnaud": {0: (64, 1, 3, 3), 4: (192, 64, 3, 3), 8: (384, 192, 3, 3), 11: (256, 384, 3, 3),
                  14: (256, 256, 3, 3), 18: (512, 256, 5, 4)},
    "netcnnlip": {0: (96, 3, 5, 7, 7), 4: (256, 96, 1, 5, 5), 8: (256, 256, 1, 3, 3), 11: (256, 256, 1, 3, 3),
                  14: (256, 256, 1, 3, 3), 18: (512, 256, 1, 6, 6)},
}.items():
    for index, shape in convs.items():
        FACTS_TABLE[f"{tower}.{index}.weight"] = shape
        FACTS_TABLE[f"{tower}.{index}.bias"] = shape[:1]
        for name in ("weight", "bias", "running_mean", "running_var"):  # the BatchNorm right after each conv
            FACTS_TABLE[f"{tower}.{index + 1}.{name}"] = shape[:1]
for head in ("netfcaud", "netfclip"):
    FACTS_TABLE.update({f"{head}.0.weight": (512, 512), f"{head}.0.bias": (512,), f"{head}.3.weight": (1024, 512),
                        f"{head}.3.bias": (1024,)})
    FACTS_TABLE.update({f"{head}.1.{name}": (512,) for name in ("weight", "bias", "running_mean", "running_var")})

FRAME_SAMPLES = 640  # 16 kHz / 25 fps


class NoDetection:
    """A detector that must not be asked."""

    def detect(self, frames):
        raise AssertionError("detection ran")


SPEC = checkpoints.REGISTRY[checkpoints.SCORER]


@pytest.fixture(scope="module")
def weights_dir(checkpoint_dir) -> Path:
    """The session's random checkpoints, syncnet_v2.model among them."""
    return checkpoint_dir


@pytest.fixture(scope="module")
def model(weights_dir) -> syncnet.SyncNet:
    return models.load_syncnet(CheckpointFolder(weights_dir))


def _pcm(seconds: float, start: float = SPEECH_ONSET) -> np.ndarray:
    """int16 samples of the real speech sample, read without the project's audio code."""
    with wave.open(str(SPEECH), "rb") as reader:
        assert reader.getframerate() == 16000 and reader.getnchannels() == 1 and reader.getsampwidth() == 2
        reader.setpos(int(start * 16000))
        return np.frombuffer(reader.readframes(int(seconds * 16000)), np.int16)


def _clip(folder: Path, seconds: float, fps: str = "25", speech: float | None = None) -> Path:
    """The first seconds of the talking head (at fps), with that much real speech muxed in when speech is given."""
    out = folder / f"head_{seconds}_{fps}_{speech}.mp4"
    inputs = ["-t", str(seconds), "-i", str(TALKING_HEAD)]
    if speech is not None:
        inputs += ["-ss", str(SPEECH_ONSET), "-t", str(speech), "-i", str(SPEECH)]
    run(["ffmpeg", "-v", "error", "-y", *inputs, "-r", fps, "-map", "0:v",
         *(["-map", "1:a", "-c:a", "aac"] if speech is not None else []), "-c:v", "libx264", "-crf", "18", str(out)])
    return out


# ---------------------------------------------------------------- the network and its file

def test_state_dict_matches_the_facts_table(weights_dir):
    expected = {name: tuple(shape) for name, shape in FACTS_TABLE.items()}
    made = {name: tuple(t.shape) for name, t in syncnet.weights_of(syncnet.SyncNet()).items()}
    assert made == expected
    written = torch.load(weights_dir / "syncnet_v2.model", weights_only=True)
    assert {name: tuple(t.shape) for name, t in written.items()} == expected  # a plain state dict, same names
    # The released file's size leaves room for these tensors and their pickle, no more: 12 kB for 88 entries.
    data = sum(4 * math.prod(shape) for shape in expected.values())
    assert 0 < SPEC.size - data < 16_000
    assert SPEC.local_name == "syncnet_v2.model"


def test_towers_give_1024_vectors_and_the_folded_lip_tower_computes_the_same(weights_dir, model):
    plain = syncnet.SyncNet().eval()
    plain.load_state_dict(torch.load(weights_dir / "syncnet_v2.model", weights_only=True), strict=False)
    crops = torch.rand(2, 3, 5, 224, 224, generator=torch.Generator().manual_seed(1)) * 255
    with torch.inference_mode():
        reference = plain.embed_video(crops)
        folded = model.embed_video(crops)
        sound = model.embed_audio(torch.randn(3, 1, 13, 20))
    assert reference.shape == (2, 1024) and sound.shape == (3, 1024)
    assert torch.allclose(folded, reference, rtol=1e-4, atol=1e-4 * reference.abs().max().item())
    assert not torch.allclose(reference[0], reference[1])


def _save_edited(weights_dir: Path, folder: Path, edit) -> Path:
    weights = torch.load(weights_dir / "syncnet_v2.model", weights_only=True)
    edit(weights)
    torch.save(weights, folder / "syncnet_v2.model")
    return folder / "syncnet_v2.model"


def test_loader_refuses_a_missing_key(weights_dir, tmp_path):
    path = _save_edited(weights_dir, tmp_path, lambda w: w.pop("netcnnlip.18.weight"))
    with pytest.raises(CheckpointError, match=r"syncnet_v2\.model is not a matching checkpoint: "
                                              r"key 'netcnnlip\.18\.weight' is missing"):
        models.load_syncnet(CheckpointFolder(path.parent))


def test_loader_refuses_a_misshapen_key(weights_dir, tmp_path):
    path = _save_edited(weights_dir, tmp_path, lambda w: w.update({"netfcaud.3.weight": torch.zeros(512, 512)}))
    with pytest.raises(CheckpointError, match=r"'netfcaud\.3\.weight' has shape \(512, 512\), expected \(1024, 512\)"):
        models.load_syncnet(CheckpointFolder(path.parent))


def test_loader_takes_a_copy_resaved_with_batch_counters(weights_dir, tmp_path):
    counters = {f"netcnnaud.{i}.num_batches_tracked": torch.tensor(7) for i in (1, 5)}
    path = _save_edited(weights_dir, tmp_path, lambda w: w.update(counters))
    loaded = models.load_syncnet(CheckpointFolder(path.parent))
    reference = torch.load(weights_dir / "syncnet_v2.model", weights_only=True)
    assert torch.equal(loaded.netcnnaud[19].running_var, reference["netcnnaud.19.running_var"])


def test_a_missing_file_is_explained(tmp_path):
    with pytest.raises(CheckpointError, match=r"syncnet_v2\.model is not in the checkpoint folder .* Put it there, "
                                              r"or leave out --checkpoint-dir to download it from the Hub "
                                              r"\(ByteDance/LatentSync-1\.5\)"):
        checkpoints.checkpoint_file(checkpoints.SCORER, CheckpointFolder.of(tmp_path))


# ---------------------------------------------------------------- the MFCC windows

def test_mfcc_windows_are_the_evaluations_columns_on_real_speech():
    pcm = _pcm(4.0)
    reference = python_speech_features.mfcc(pcm.astype(np.float64), 16000)  # (steps, 13), from integers
    assert usable_windows(80, len(pcm)) == 80 - 5  # the video is the shorter
    assert usable_windows(200, len(pcm)) == len(pcm) // FRAME_SAMPLES - 5 == 95  # the speech is the shorter
    count = usable_windows(200, len(pcm))
    windows = mfcc_windows(pcm / 32768.0, count)
    assert windows.shape == (count, 13, 20)
    for i in (0, 1, count // 2, count - 1):
        np.testing.assert_allclose(windows[i], reference[4 * i:4 * i + 20].T, rtol=1e-5, atol=1e-4)
    assert not np.allclose(windows[0], windows[1])


# ---------------------------------------------------------------- the scores

def _independent_scores(video: np.ndarray, audio: np.ndarray, vshift: int) -> dict:
    """The evaluation's numbers computed the slow, obvious way."""
    n = len(video)

    def distance(i: int, shift: int) -> float:
        other = audio[i + shift] if 0 <= i + shift < n else np.zeros(video.shape[1])
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(video[i], other)))

    # curve[offset]: frame i against audio i - offset (a positive offset: the sound came early).
    curve = {offset: sum(distance(i, -offset) for i in range(n)) / n for offset in range(-vshift, vshift + 1)}
    best = min(curve, key=curve.get)
    median = statistics.median(curve.values())
    raw = [median - distance(i, -best) for i in range(n)]
    confidence = [statistics.median(raw[min(max(j, 0), n - 1)] for j in range(i - 4, i + 5)) for i in range(n)]
    return {"lse_d": curve[best], "lse_c": median - curve[best], "offset": best, "frames": n,
            "distances": [curve[offset] for offset in range(-vshift, vshift + 1)], "confidence": confidence}


@pytest.mark.parametrize("delay", [3, -2, 0])
def test_scores_equal_an_independent_computation(delay):
    rng = np.random.default_rng(7)
    video = rng.normal(size=(14, 4))
    audio = rng.normal(size=(14, 4))
    for j in range(14):  # the sound delayed by `delay` frames (negative: early), plus a little noise
        if 0 <= j - delay < 14:
            audio[j] = video[j - delay] + rng.normal(scale=0.05, size=4)
    for vshift in (15, 4):
        expected = _independent_scores(video, audio, vshift)
        score = sync_scores(video, audio, vshift)
        assert score.offset == expected["offset"] == -delay
        assert score.frames == 14
        assert score.lse_d == pytest.approx(expected["lse_d"], rel=1e-9)
        assert score.lse_c == pytest.approx(expected["lse_c"], rel=1e-9)
        assert score.distances == pytest.approx(expected["distances"], rel=1e-9)
        assert score.confidence == pytest.approx(expected["confidence"], rel=1e-9, abs=1e-12)
    assert json.loads(score.to_json())["offset"] == -delay


def test_summary_reads_the_offset():
    common = dict(lse_d=6.42, lse_c=7.81, frames=10, distances=(), confidence=())
    assert SyncScore(offset=0, **common).summary() == "LSE-D 6.42 · LSE-C 7.81 · offset 0 frames (in sync)"
    assert SyncScore(offset=-3, **common).summary().endswith("offset -3 frames (sound 120 ms late)")
    assert SyncScore(offset=1, **common).summary().endswith("offset 1 frame (sound 40 ms early)")


def test_status_words_name_the_band_of_the_shown_confidence_and_flag_an_offset():
    def score(lse_c: float, offset: int) -> SyncScore:
        return SyncScore(lse_d=6.0, lse_c=lse_c, offset=offset, frames=10, distances=(), confidence=())

    assert score(7.838, 0).in_words() == "lip sync: confidence 7.8 (good) · offset 0 frames"
    assert score(6.96, 0).in_words() == "lip sync: confidence 7.0 (good) · offset 0 frames"
    assert score(6.94, -3).in_words() == "lip sync: confidence 6.9 (fair) · offset -3 frames (sound 120 ms late)"
    assert score(5.0, 1).band == "fair" and score(4.94, 1).band == "poor" and score(-0.5, 0).band == "poor"


def test_boxes_at_25fps_take_the_nearest_frame_in_time():
    boxes = [FaceBox(float(i), 0.0, 10.0, 10.0) for i in range(30)]  # 1 s at 30 fps
    resampled = boxes_at_25fps(boxes, 30.0)
    assert [b.cx for b in resampled] == [float(min(29, round(k * 30 / 25))) for k in range(25)]
    assert [b.cx for b in boxes_at_25fps(boxes[:10], 50.0)] == [0.0, 2.0, 4.0, 6.0, 8.0]


# ---------------------------------------------------------------- real media, random weights

@pytest.fixture(scope="module")
def head_track(tmp_path_factory):
    """1.2 s of the talking head at 25 fps (BGR frames) and its Haar face track."""
    clip = _clip(tmp_path_factory.mktemp("head"), 1.2)
    source = video.open_face(clip, 1080, HAAR.max_image_pixels, 25.0)
    source = replace(source, fps=Fraction(25))
    with closing(video.iter_video_frames(source, source.width, source.height, 60)) as frames:
        frames = list(frames)
    return frames, detect_track(source, HaarDetector(), HAAR)


def test_delayed_audio_moves_the_audio_embeddings_and_the_distance_matrix(head_track, model):
    frames, boxes = head_track
    assert len(frames) == len(boxes) == 30
    pcm = _pcm(2.0).astype(np.float32) / 32768.0
    delayed = np.concatenate([np.zeros(3 * FRAME_SAMPLES, np.float32), pcm])  # 120 ms late: 12 MFCC steps
    video, audio = embed(frames, boxes, pcm, model)
    video_again, audio_late = embed(frames, boxes, delayed, model)
    assert len(video) == len(audio_late) == 25
    np.testing.assert_array_equal(video, video_again)
    scale = np.abs(audio).max()
    np.testing.assert_allclose(audio_late[3:], audio[:-3], atol=1e-4 * max(1.0, scale))
    assert not np.allclose(audio[3:], audio[:-3], atol=1e-4 * scale)  # the shift is visible
    matrix = np.linalg.norm(video[:, None] - audio[None], axis=2)  # video window i against audio window j
    matrix_late = np.linalg.norm(video[:, None] - audio_late[None], axis=2)
    np.testing.assert_allclose(matrix_late[:, 3:], matrix[:, :-3], rtol=1e-4)
    assert not np.allclose(matrix[:, 3:], matrix[:, :-3], rtol=1e-4)
    for name, (v, a) in {"original": (video, audio), "delayed": (video, audio_late)}.items():
        print(name, np.round(sync_scores(v, a).distances, 3).tolist())  # the curves (meaningless here)


def test_score_video_end_to_end_with_its_own_sound_at_30fps(tmp_path, weights_dir):
    clip = _clip(tmp_path, 1.2, fps="30", speech=2.0)
    score = score_video(clip, config=HAAR.replace(checkpoint_dir=str(weights_dir)))
    assert score.frames == 30 - 5  # decoded at 25 fps
    assert len(score.distances) == 31 and len(score.confidence) == score.frames
    assert score.lse_d == pytest.approx(min(score.distances))
    assert score.lse_c == pytest.approx(statistics.median(score.distances) - min(score.distances))
    assert score.offset == int(np.argmin(score.distances)) - 15
    assert set(json.loads(score.to_json())) == {"lse_d", "lse_c", "offset", "frames", "distances", "confidence"}


def test_score_video_against_another_recording(tmp_path, weights_dir):
    clip = _clip(tmp_path, 0.8)  # the talking head has no sound of its own
    speech = tmp_path / "speech.m4a"
    run(["ffmpeg", "-v", "error", "-y", "-ss", str(SPEECH_ONSET), "-t", "3", "-i", str(SPEECH), str(speech)])
    config = HAAR.replace(checkpoint_dir=str(weights_dir))
    score = score_video(clip, speech, config=config)
    assert score.frames == 20 - 5
    # A generation passes the face track it has (here: the same Haar track, at the clip's 25 fps).
    source = replace(video.open_face(clip, 1080, config.max_image_pixels, 25.0), fps=Fraction(25))
    boxes = detect_track(source, HaarDetector(), config)
    assert score_video(clip, speech, config=config, boxes=boxes, boxes_fps=25.0, detector=NoDetection()) == score


# ---------------------------------------------------------------- bad inputs

def test_a_video_without_sound_gets_its_sentence(weights_dir):
    with pytest.raises(AudioError, match=r"'talking_head\.mp4' is a video file with no audio track"):
        score_video(TALKING_HEAD, config=HAAR.replace(checkpoint_dir=str(weights_dir)))


def test_a_video_without_a_face_gets_its_sentence(tmp_path, weights_dir):
    clip = tmp_path / "wall.mp4"
    run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=320x240:d=1:r=25",
         "-ss", str(SPEECH_ONSET), "-t", "1", "-i", str(SPEECH), "-c:v", "libx264", "-c:a", "aac", str(clip)])
    with pytest.raises(NoFaceError, match=r"No face was found in any of the 25 frames of 'wall\.mp4'"):
        score_video(clip, config=HAAR.replace(checkpoint_dir=str(weights_dir)))


def test_an_image_gets_its_sentence(weights_dir):
    with pytest.raises(FaceError, match=r"'monalisa\.png' is a still image; lip sync is scored on a video"):
        score_video(PORTRAIT, SPEECH, config=HAAR.replace(checkpoint_dir=str(weights_dir)))


def test_too_few_frames_get_their_sentence(tmp_path, weights_dir):
    clip = _clip(tmp_path, 0.12, speech=1.0)  # 3 frames
    with pytest.raises(FaceError, match=r"'head_0\.12_25_1\.0\.mp4' has 3 frames at 25 fps; scoring lip sync "
                                        r"needs at least 6 \(0\.24 s\)"):
        score_video(clip, config=HAAR.replace(checkpoint_dir=str(weights_dir)))


def test_too_little_speech_gets_its_sentence_before_detection(tmp_path, weights_dir):
    speech = tmp_path / "short.wav"
    run(["ffmpeg", "-v", "error", "-y", "-ss", str(SPEECH_ONSET), "-t", "0.1", "-i", str(SPEECH), str(speech)])

    with pytest.raises(AudioError, match=r"The speech is 0\.10 s long; scoring lip sync needs at least 0\.24 s"):
        score_video(TALKING_HEAD, speech, config=HAAR.replace(checkpoint_dir=str(weights_dir)), detector=NoDetection())


def test_a_missing_checkpoint_fails_before_any_decoding(tmp_path):
    with pytest.raises(CheckpointError, match=r"syncnet_v2\.model is not in the checkpoint folder"):
        score_video(TALKING_HEAD, config=HAAR.replace(checkpoint_dir=str(tmp_path)))
