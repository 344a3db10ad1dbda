"""End to end on real media: the CLI and the Python entry make valid, synced MP4s and leave nothing behind."""

import numpy as np
import pytest

from conftest import (HAAR, PORTRAIT, TALKING_HEAD, assert_valid_mp4, cli, cut_speech, probe, read_frames,
                      through_encoder)
from lipsync import generate, pipeline
from lipsync.errors import NoFaceError


@pytest.fixture(scope="module")
def speech_3s(tmp_path_factory):
    return cut_speech(tmp_path_factory.mktemp("speech") / "speech 3s.wav", 3.0, start=2.0)


def test_cli_portrait_with_speech(tmp_path, speech_3s):
    """The real command, in its own process (the other CLI tests call its entry point in this one)."""
    out = tmp_path / "out.mp4"
    done = cli("--face", PORTRAIT, "--audio", speech_3s, "--out", out, "--detector", "haar",
               env={"TMPDIR": str(tmp_path)}, process=True)
    assert done.returncode == 0, done.stderr
    assert_valid_mp4(out, 3.0, (300, 446), 25)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lipsync-")]


def test_cli_with_s3fd_detector_from_the_checkpoint_folder(tmp_path, speech_3s):
    out = tmp_path / "out.mp4"
    done = cli("--face", PORTRAIT, "--audio", speech_3s, "--out", out)
    assert done.returncode == 0, done.stderr
    assert_valid_mp4(out, 3.0, (300, 446), 25)


def test_pixels_far_from_the_face_are_unchanged(tmp_path, speech_3s):
    import cv2

    result = generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech_3s, config=HAAR)
    source = cv2.imread(str(PORTRAIT))[:446]
    frames = read_frames(result.path)
    gray = cv2.cvtColor(source, cv2.COLOR_BGR2GRAY)
    (x, y, w, h), = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml") \
        .detectMultiScale(gray, 1.1, 5, minSize=(30, 30))
    far = np.ones(gray.shape, bool)
    far[max(0, y - 40):y + h + 60, max(0, x - 40):x + w + 40] = False
    # Codec tolerance: the same still through the same encoder settings, with no sync at all.
    encoded = through_encoder(source, tmp_path)[0]
    codec_noise = np.abs(encoded.astype(int) - source.astype(int)).mean(axis=2)[far].mean()
    changed_near = []
    for frame in frames[::10]:
        diff = np.abs(frame.astype(int) - source.astype(int)).mean(axis=2)
        assert diff[far].mean() < codec_noise + 0.5
        changed_near.append(diff[y + h // 2:y + h, x:x + w].mean())
    assert max(changed_near) > 5.0  # while the mouth region did change


def test_video_face_trimmed_to_shorter_speech(tmp_path, short_head):
    speech = cut_speech(tmp_path / "s.wav", 1.0)  # half the video's 2 s
    out = tmp_path / "out.mp4"
    done = cli("--face", short_head, "--audio", speech, "--out", out, "--detector", "haar")  # 704x1216 is within 1080p: its own size
    assert done.returncode == 0, done.stderr
    assert_valid_mp4(out, 1.0, (704, 1216), 25)


@pytest.mark.parametrize("box", [None, (125, 260, 95, 220)], ids=["detected", "box given"])
def test_video_face_looped_back_and_forth_for_longer_speech(tmp_path, box, short_head):
    """With a box given, nothing counts the video's frames first: it is found shorter than the speech while it is
    decoded, and decoded again to play backwards. The 2 s video, 3 s of speech."""
    speech = cut_speech(tmp_path / "s.mp3", 3.0, extra=["-c:a", "libmp3lame"])
    out = tmp_path / "out.mp4"
    result = generate(short_head, out, audio_path=speech, config=HAAR.replace(output_size=352, box=box))
    assert_valid_mp4(out, 3.0, (352, 608), 25)
    assert result.frames == 75
    source = read_frames(short_head)
    n_src = len(source)
    frames = read_frames(out)
    import cv2

    def top(frame):  # the upper part of the frame, above the face: untouched by the sync
        return cv2.resize(frame, (352, 608))[:100].astype(int)

    # After the last source frame the video plays backwards: output n_src + k shows source n_src - 2 - k.
    for k in (0, 5, 20):
        expected = top(source[n_src - 2 - k])
        got = top(frames[n_src + k])
        wrong = top(source[(k + 1) % n_src])
        assert np.abs(got - expected).mean() < np.abs(got - wrong).mean()
        assert np.abs(got - expected).mean() < 4.0


def test_progress_reports_real_stages_in_order(tmp_path, speech_3s):
    seen = []
    generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech_3s, config=HAAR,
             progress=lambda fraction, stage: seen.append((fraction, stage)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stages = list(dict.fromkeys(stage for _, stage in seen))
    assert stages == ["speech", "detect", "generate", "encode"]
    assert len([s for _, s in seen if s == "generate"]) >= 4  # moves during generation, batch by batch


def test_text_falls_back_to_the_natural_voice_offline(tmp_path):
    out = tmp_path / "out.mp4"
    done = cli("--face", PORTRAIT, "--text", "Hello there, this is a test.", "--out", out, "--detector", "haar")
    assert done.returncode == 0, done.stderr
    assert "voice: Piper (gTTS: " in done.stderr  # which voice spoke, and why not gTTS
    info = probe(out)
    assert info["video"]["codec_name"] == "h264" and float(info["audio"]["duration"]) > 1.0


def test_no_face_is_a_one_line_error(tmp_path, speech_3s):
    import cv2

    blank = tmp_path / "sky.png"
    gradient = np.tile(np.linspace(60, 220, 320, dtype=np.uint8)[:, None, None], (1, 240, 3))
    cv2.imwrite(str(blank), gradient)
    out = tmp_path / "out.mp4"
    done = cli("--face", blank, "--audio", speech_3s, "--out", out, "--detector", "haar",
               env={"TMPDIR": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[-1]]
    assert "No face was found in the image" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("lipsync-")]
    with pytest.raises(NoFaceError):
        generate(blank, out, audio_path=speech_3s, config=HAAR)


def test_cli_progress_bar_draws_stages_on_a_terminal():
    import io

    from lipsync.__main__ import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = ProgressBar(screen)
    for fraction, stage in [(0.0, "speech"), (0.3, "generate"), (0.3, "generate"), (1.0, "encode")]:
        bar(fraction, stage)
    bar.close()
    drawn = screen.getvalue().split("\r")[1:]
    assert len(drawn) == 3  # the repeated update is not redrawn
    assert "30% generate" in drawn[1] and "#" * 30 in drawn[2] and drawn[2].endswith("\n")
    quiet = io.StringIO()
    ProgressBar(quiet)(0.5, "generate")
    assert quiet.getvalue() == ""


def test_find_faces_numbers_them_as_face_index_counts(tmp_path):
    import cv2

    portrait = cv2.imread(str(PORTRAIT))
    small = cv2.resize(portrait, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    left = np.full_like(portrait, 255)
    left[:small.shape[0], :small.shape[1]] = small
    pair = tmp_path / "pair.png"
    cv2.imwrite(str(pair), np.hstack([left, portrait]))  # the larger face on the right
    frame, boxes = pipeline.find_faces(pair, HAAR)
    assert frame.shape == (446, 600, 3)
    assert len(boxes) == 2
    assert boxes[0].cx > 300 > boxes[1].cx  # 0 is the largest face, wherever it is
    assert boxes[0].w > boxes[1].w


def test_find_faces_reads_the_first_frame_of_a_video():
    frame, boxes = pipeline.find_faces(TALKING_HEAD, HAAR.replace(output_size=352))
    assert frame.shape == (608, 352, 3) and len(boxes) == 1


def test_estimate_frames_from_the_headers(tmp_path):
    speech = cut_speech(tmp_path / "s.wav", 2.0)
    assert pipeline.estimate_frames(TALKING_HEAD, audio_path=speech) == 50  # the video's 25 fps
    assert pipeline.estimate_frames(PORTRAIT, audio_path=speech, config=HAAR.replace(still_fps=30)) == 60
    text = "x" * round(2 * pipeline.SPOKEN_CHARS_PER_SECOND[False])
    assert pipeline.estimate_frames(PORTRAIT, text=text) == 50
