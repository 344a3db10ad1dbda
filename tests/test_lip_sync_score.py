"""The lip-sync score where users see it: `python -m lipsync score` on our own output and on a video the project did
not make, its one sentence for bad inputs, and the score option of a generation (on, auto, a missing SyncNet file).
Random SyncNet weights: the numbers mean nothing, the plumbing does."""

from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import HAAR, PORTRAIT, TALKING_HEAD, cli, cut_speech, probe, run
from lipsync import models, runtime
from lipsync.__main__ import main
from lipsync.errors import CheckpointError
from lipsync.pipeline import generate
from lipsync.scoring import clips
from lipsync.scoring.sync import SyncScore

SCORED = HAAR.replace(device="cpu", score="on")
JSON_KEYS = {"lse_d", "lse_c", "offset", "frames", "distances", "confidence"}


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return cut_speech(tmp_path_factory.mktemp("speech") / "speech.wav", 0.8)


@pytest.fixture(scope="module")
def scored(tmp_path_factory, speech):
    """The portrait speaking 0.8 s, scored by the generation; the scorer must not detect faces again."""
    def no_detection(*args, **kwargs):
        raise AssertionError("the scorer detected faces again")

    out = tmp_path_factory.mktemp("scored") / "portrait.mp4"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clips, "detect_track", no_detection)
        return generate(PORTRAIT, out, audio_path=speech, config=SCORED)


def _samples_16k(path) -> int:
    """How many 16 kHz mono samples the file's sound decodes to, by ffmpeg alone."""
    pcm = run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"]).stdout
    return len(pcm) // 2


def _missing_scorer(folder, checkpoint_dir):
    """A checkpoint folder with the generator and S3FD but no syncnet_v2.model."""
    for name in ("wav2lip_gan.pth", "s3fd.pth"):
        os.symlink(checkpoint_dir / name, folder / name)
    assert not (folder / "syncnet_v2.model").exists()
    return folder


# ---------------------------------------------------------------- generation

def test_a_generation_with_score_on_carries_the_score_of_its_mp4(scored):
    score = scored.score
    assert score is not None and len(score.distances) == 31 and len(score.confidence) == score.frames
    assert score.lse_d == min(score.distances) == score.distances[score.offset + 15]
    frames = int(probe(scored.path)["video"]["nb_read_frames"])
    assert frames == scored.frames == 20  # 0.8 s at the still's 25 fps
    # The evaluation's windows: the shorter of picture and sound, less 5; the sound as the MP4's AAC decodes.
    assert abs(score.frames - (min(frames, _samples_16k(scored.path) // 640) - 5)) <= 1


def test_the_cli_prints_the_score_after_the_result(tmp_path, speech, capsys):
    out = tmp_path / "cli.mp4"
    assert main(["--face", str(PORTRAIT), "--audio", str(speech), "--out", str(out), "--detector", "haar",
                 "--device", "cpu", "--score", "on"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{out}: 0.80 s, 20 frames"), lines
    assert lines[1].startswith("lip sync: LSE-D ") and lines[1].endswith(")"), lines


def test_the_scorer_runs_in_fp32_unless_a_precision_is_named():
    assert runtime.resolve(SCORED).score_dtype == torch.float32  # precision auto
    assert runtime.resolve(SCORED.replace(precision="fp32")).score_dtype == torch.float32
    if runtime.cpu_has_native_bf16():
        assert runtime.resolve(SCORED.replace(precision="bf16")).score_dtype == torch.bfloat16
    assert runtime.resolve(SCORED.replace(score="off")).score is False


def test_auto_does_not_score_on_the_cpu(tmp_path, speech):
    assert runtime.resolve(HAAR.replace(device="cpu")).score is False
    result = generate(PORTRAIT, tmp_path / "auto.mp4", audio_path=speech, config=HAAR.replace(device="cpu"))
    assert result.score is None and result.path.is_file()


def test_score_on_with_the_file_missing_stops_before_any_work(tmp_path, speech, checkpoint_dir):
    folder = _missing_scorer(tmp_path, checkpoint_dir)
    out = tmp_path / "never.mp4"
    with pytest.raises(CheckpointError, match=r"^syncnet_v2\.model is not in the checkpoint folder .*Put it there, "
                                              r"or leave out --checkpoint-dir to download it from the Hub"):
        generate(PORTRAIT, out, audio_path=speech, config=SCORED.replace(checkpoint_dir=str(folder)))
    assert not out.exists()


def test_auto_with_the_file_missing_generates_without_a_score(tmp_path, speech, checkpoint_dir, monkeypatch):
    monkeypatch.setitem(runtime.AUTO_SCORES, "cpu", True)  # as auto is on CUDA
    auto = HAAR.replace(device="cpu")
    assert models.load(auto).scorer is not None  # with the file, auto now scores
    missing = auto.replace(checkpoint_dir=str(_missing_scorer(tmp_path, checkpoint_dir)))
    result = generate(PORTRAIT, tmp_path / "unscored.mp4", audio_path=speech, config=missing)
    assert result.score is None and result.path.is_file()


# ---------------------------------------------------------------- python -m lipsync score

def _scores_printed(lines: list[str]) -> dict:
    """The JSON object on the last of the two lines, checked against the summary line above it."""
    assert len(lines) == 2 and lines[0].startswith("LSE-D "), lines
    scores = json.loads(lines[-1])
    assert set(scores) == JSON_KEYS and len(scores["distances"]) == 31
    assert len(scores["confidence"]) == scores["frames"]
    assert lines[0] == SyncScore(**scores).summary()
    return scores


def test_score_command_on_our_own_output(scored, capsys):
    assert main(["score", str(scored.path), "--detector", "haar", "--device", "cpu", "--json"]) == 0
    scores = _scores_printed(capsys.readouterr().out.splitlines())
    assert scores["frames"] == scored.score.frames  # the same file, picture and sound: the same windows


def test_score_command_on_a_video_we_did_not_make_against_a_recording(tmp_path):
    recording = cut_speech(tmp_path / "speech.wav", 0.8)
    done = cli("score", TALKING_HEAD, "--audio", recording, "--detector", "haar", "--device", "cpu", "--json")
    assert done.returncode == 0, done.stderr
    scores = _scores_printed(done.stdout.splitlines())
    assert scores["frames"] == 20 - 5  # 0.8 s of sound (20 frames) against 10.7 s of picture, less the last 5


def _no_audio(folder):
    out = folder / "silent.mp4"
    run(["ffmpeg", "-v", "error", "-y", "-t", "1", "-i", str(TALKING_HEAD), "-an", "-c:v", "libx264", str(out)])
    return out


def _three_frames(folder):
    out = folder / "three.mp4"
    run(["ffmpeg", "-v", "error", "-y", "-t", "0.12", "-i", str(TALKING_HEAD), "-f", "lavfi", "-i", "sine=d=1",
         "-c:v", "libx264", "-c:a", "aac", str(out)])
    assert int(probe(out)["video"]["nb_read_frames"]) == 3
    return out


@pytest.mark.parametrize(("make", "sentence"), [
    (lambda folder: PORTRAIT, "'monalisa.png' is a still image; lip sync is scored on a video of at least 6 frames."),
    (_no_audio, "'silent.mp4' is a video file with no audio track."),
    (_three_frames, "'three.mp4' has 3 frames at 25 fps; scoring lip sync needs at least 6 (0.24 s)."),
])
def test_score_command_refuses_bad_input_in_one_sentence(tmp_path, make, sentence, capsys):
    assert main(["score", str(make(tmp_path)), "--detector", "haar", "--device", "cpu"]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == f"error: {sentence}\n"
