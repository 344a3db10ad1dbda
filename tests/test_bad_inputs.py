"""A corpus of bad (and awkward but valid) inputs, each through the real CLI or `lipsync.generate`.

A refused input must give a non-zero exit and exactly one plain `error: …` line that names the problem, no
traceback, within a timeout; the same input through `generate` raises the matching LipSyncError subclass with the
same message. An awkward input that must work gives a valid H.264 + AAC MP4 as long as the speech. After every
case no `lipsync-*` work folder is left in the temporary root, and a failed run leaves no output file.
"""

from __future__ import annotations

import bisect
import re
import struct
import subprocess
import tempfile
import time
import zlib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import (HAAR, PORTRAIT, ROOT, TALKING_HEAD, assert_valid_mp4, cli, cut_speech, probe, read_frames,
                      through_encoder)
from lipsync import generate, pipeline
from lipsync.errors import AudioError, FaceError, LipSyncError, MediaToolError, NoFaceError, OutputError, TextError
from lipsync.media import encode, ffmpeg, video
from lipsync.speech import audio, silence, tts

CLI_TIMEOUT = 120  # seconds for one run; a hang fails the test instead of the suite
SPEECH_SECONDS = 1.5
SPEECH_START = 2.0  # the real speech sample talks here


# ---------------------------------------------------------------- helpers

def run_ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)], check=True, capture_output=True,
                   timeout=120)


class Run:
    def __init__(self, done: subprocess.CompletedProcess, seconds: float, out: Path):
        self.returncode, self.stdout, self.stderr = done.returncode, done.stdout, done.stderr
        self.seconds, self.out = seconds, out


def run_cli(tmp_path: Path, face, out: Path, *args, cwd: Path | None = None, detector: str = "haar",
            env: dict | None = None) -> Run:
    """`python -m lipsync` with its own empty TMPDIR, which must hold no lipsync-* folder afterwards."""
    temp_root = tmp_path / "temp-root"
    temp_root.mkdir(exist_ok=True)
    face_args = [] if face is None else [f"--face={face}"]
    out_args = [] if out is None else [f"--out={out}"]
    started = time.perf_counter()
    done = cli(*face_args, *args, "--detector", detector, *out_args, cwd=cwd or ROOT,
               env={**(env or {}), "TMPDIR": str(temp_root)}, timeout=CLI_TIMEOUT)
    run = Run(done, time.perf_counter() - started, (cwd or ROOT) / out if out is not None else None)
    left = [p.name for p in temp_root.iterdir() if p.name.startswith("lipsync-")]
    assert not left, f"work folders left behind: {left}"
    return run


def assert_refused(run: Run, *phrases: str) -> str:
    """One plain error line naming the problem; returns the message without its 'error: ' prefix."""
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), lines
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert not run.out.exists(), "a failed run must leave no output file"
    return lines[0][len("error: "):]


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """In-process runs: the temporary root is an empty folder, checked for leftovers afterwards."""
    root = tmp_path / "inproc-temp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root
    assert not [p.name for p in root.iterdir() if p.name.startswith("lipsync-")]


def refused_in_process(error: type[LipSyncError], message: str, face, out: Path, **kwargs) -> None:
    """generate() raises exactly this subclass with the message the CLI printed."""
    with pytest.raises(LipSyncError) as caught:
        generate(face, out, config=kwargs.pop("config", HAAR), **kwargs)
    assert type(caught.value) is error, repr(caught.value)
    assert str(caught.value) == message
    assert not Path(out).exists()


def assert_works(run: Run, duration: float, size: tuple[int, int] | None = None, fps: float | None = None) -> dict:
    assert run.returncode == 0, run.stderr
    stray = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith(("note: ", "voice: "))]
    assert not stray, run.stderr  # no warnings or tracebacks leak out of a working run either
    return assert_valid_mp4(run.out, duration, size, fps)


def one_color_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit PNG of one color, written row by row: huge in pixels, tiny on disk and in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    packer = zlib.compressobj(9)
    block = row * 256
    data = []
    for _ in range(height // 256):
        data.append(packer.compress(block))
    data.append(packer.compress(row * (height % 256)))
    data.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(data))
                     + chunk(b"IEND", b""))
    return path


def blank_gradient(path: Path, width: int = 240, height: int = 320) -> Path:
    gradient = np.tile(np.linspace(60, 220, height, dtype=np.uint8)[:, None, None], (1, width, 3))
    cv2.imwrite(str(path), gradient)
    return path


def portrait_video(path: Path, seconds: float, extra: list[str] | None = None, vf: str = "crop=300:446:0:0") -> Path:
    run_ffmpeg("-loop", "1", "-framerate", 25, "-i", PORTRAIT, "-t", seconds, "-vf", vf, "-c:v", "libx264",
           "-preset", "ultrafast", "-crf", 12, "-pix_fmt", "yuv420p", *(extra or []), path)
    return path


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def mouth_region(frame: np.ndarray) -> np.ndarray:
    """The portrait's mouth area (the face sits near x 95–205, y 60–200 in the 300×446 frame)."""
    return frame[130:200, 110:190]


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad-inputs-media")


@pytest.fixture(scope="module")
def speech(media_dir) -> Path:
    return cut_speech(media_dir / "speech.wav", SPEECH_SECONDS, start=SPEECH_START)


# ---------------------------------------------------------------- images

def test_image_without_a_face(tmp_path, speech, temp_root):
    sky = blank_gradient(tmp_path / "landscape.png")
    run = run_cli(tmp_path, sky, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "No face was found in the image")
    refused_in_process(NoFaceError, message, sky, tmp_path / "out.mp4", audio_path=speech)


def test_truncated_png(tmp_path, speech, temp_root):
    data = PORTRAIT.read_bytes()
    cut = tmp_path / "half.png"
    cut.write_bytes(data[: len(data) // 2])
    run = run_cli(tmp_path, cut, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'half.png' is a damaged or truncated image.")
    refused_in_process(FaceError, message, cut, tmp_path / "out.mp4", audio_path=speech)


def test_text_file_named_png(tmp_path, speech, temp_root):
    fake = tmp_path / "notes.png"
    fake.write_text("Remember to buy milk.\nThis is not a picture.\n")
    run = run_cli(tmp_path, fake, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'notes.png'", "neither an image nor a video")
    refused_in_process(FaceError, message, fake, tmp_path / "out.mp4", audio_path=speech)


def test_one_pixel_image(tmp_path, speech, temp_root):
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 150, 120)).save(dot)
    run = run_cli(tmp_path, dot, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'dot.png' is only 1×1 pixels", "too small")
    refused_in_process(FaceError, message, dot, tmp_path / "out.mp4", audio_path=speech)


def test_huge_image_is_refused_from_its_header(tmp_path, speech, temp_root, monkeypatch):
    huge = one_color_png(tmp_path / "huge.png", 10_000, 10_000)
    assert huge.stat().st_size < 1_000_000
    run = run_cli(tmp_path, huge, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'huge.png' is 10000×10000", "the limit is 40,000,000 pixels")
    assert run.seconds < 30
    # In process: refused without decoding a single pixel row, and quickly.
    from PIL import ImageFile

    def no_decode(self):
        raise AssertionError("the pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    started = time.perf_counter()
    with pytest.raises(FaceError, match="10000×10000"):
        video.open_face(huge, 1080, HAAR.max_image_pixels, 25.0)
    assert time.perf_counter() - started < 1.0
    refused_in_process(FaceError, message, huge, tmp_path / "out.mp4", audio_path=speech)


def test_image_beyond_pillows_own_bomb_limit(tmp_path, speech, temp_root):
    """Pillow itself raises (not warns) past 2× its limit; that must still be one clear line."""
    giant = one_color_png(tmp_path / "giant.png", 20_000, 20_000)
    run = run_cli(tmp_path, giant, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'giant.png' has 400,000,000 pixels; the limit is 40,000,000 pixels.")
    refused_in_process(FaceError, message, giant, tmp_path / "out.mp4", audio_path=speech)


def _cmyk_jpeg(path: Path) -> Path:
    Image.open(PORTRAIT).convert("RGB").convert("CMYK").save(path, quality=95)
    return path


def _rgb48_png(path: Path) -> Path:
    run_ffmpeg("-i", PORTRAIT, "-pix_fmt", "rgb48be", path)
    return path


def _gray16_png(path: Path) -> Path:
    gray = np.asarray(Image.open(PORTRAIT).convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray).save(path)  # mode I;16
    return path


def on_white(image: Image.Image) -> Image.Image:
    return Image.alpha_composite(Image.new("RGBA", image.size, video.STILL_BACKGROUND + (255,)), image.convert("RGBA"))


def _rgba_png(path: Path) -> Path:
    image = Image.open(PORTRAIT).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize(image.size).point(lambda v: 128 + v // 2))
    image.save(path)
    return path


def _gray_png(path: Path) -> Path:
    Image.open(PORTRAIT).convert("L").save(path)
    return path


@pytest.mark.parametrize("make, name, mode", [
    (_cmyk_jpeg, "cmyk.jpg", "CMYK"),
    (_rgb48_png, "rgb48.png", None),
    (_gray16_png, "gray16.png", "I;16"),
    (_rgba_png, "rgba.png", "RGBA"),
    (_gray_png, "gray.png", "L"),
], ids=["cmyk-jpeg", "16-bit-rgb-png", "16-bit-gray-png", "rgba-png", "grayscale-png"])
def test_unusual_image_modes_work(tmp_path, speech, make, name, mode):
    face = make(tmp_path / name)
    if mode is not None:
        assert Image.open(face).mode == mode  # the input really is what the test says
    run = run_cli(tmp_path, face, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)
    # The picture is the portrait, not garbage from a wrong channel order or bit depth (a translucent one: the
    # portrait over the white background).
    picture = Image.open(PORTRAIT) if mode != "RGBA" else on_white(Image.open(face))
    source = cv2.cvtColor(np.asarray(picture.convert("RGB"))[:446, :, ::-1], cv2.COLOR_BGR2GRAY)
    first = cv2.cvtColor(read_frames(run.out)[0], cv2.COLOR_BGR2GRAY)
    assert mean_diff(first[:120], source[:120]) < 8  # above the mouth: untouched apart from codec noise


@pytest.mark.parametrize("name", ["clear-top.png", "clear-top.webp"])
def test_transparent_parts_of_an_image_come_out_white(tmp_path, speech, name):
    """Black under a fully transparent band: a reader that ignores the alpha shows black, ours the background."""
    rgb = np.asarray(Image.open(PORTRAIT).convert("RGB"))[:446]  # 300x446: even, as the output keeps it
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:50] = (0, 0, 0, 0)
    face = tmp_path / name
    Image.fromarray(rgba, "RGBA").save(face, lossless=True)  # PNG ignores `lossless`
    assert Image.open(face).mode == "RGBA"
    result = generate(face, tmp_path / "out.mp4", audio_path=speech, config=HAAR)
    first = read_frames(result.path)[0]
    assert first[:45].min() >= 245, first[:45].min()  # white, within codec noise
    assert first[60:120].mean() < 200  # the portrait below the band is there


def test_animated_gif_is_read_as_a_video(tmp_path, speech):
    portrait = Image.open(PORTRAIT).convert("RGB")
    frames = [portrait.point(lambda v, k=k: min(255, v + 4 * k)) for k in range(8)]  # distinct frames
    gif = tmp_path / "portrait.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(gif).n_frames == 8
    run = run_cli(tmp_path, gif, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, SPEECH_SECONDS, (300, 446), 10)  # 100 ms per frame: 10 fps
    frames_out = read_frames(run.out)
    # The animation plays: consecutive output frames follow the GIF's brightness steps.
    assert np.mean(frames_out[3][:100]) > np.mean(frames_out[0][:100]) + 6


# ---------------------------------------------------------------- videos

def test_corrupt_video(tmp_path, speech, temp_root):
    data = bytearray(TALKING_HEAD.read_bytes())
    rng = np.random.default_rng(1)
    data[4096:] = rng.integers(0, 256, len(data) - 4096, dtype=np.uint8).tobytes()  # the header survives
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    run = run_cli(tmp_path, broken, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'broken.mp4'")
    assert "neither an image nor a video" in message or "could not be decoded" in message
    refused_in_process(FaceError, message, broken, tmp_path / "out.mp4", audio_path=speech)


def test_truncated_video_whose_frames_are_missing(tmp_path, speech, temp_root):
    """The index (moov) is intact and promises frames; the media data is cut off."""
    whole = portrait_video(tmp_path / "whole.mp4", 1.0, ["-movflags", "+faststart"])
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.find(b"mdat") + 64])
    run = run_cli(tmp_path, cut, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'cut.mp4'")
    assert "could not be decoded" in message or "has no frames" in message
    refused_in_process(FaceError, message, cut, tmp_path / "out.mp4", audio_path=speech)


@pytest.mark.parametrize("box", [[], ["--box", "10", "200", "10", "200"]], ids=["detected", "box given"])
def test_video_with_zero_frames(tmp_path, speech, temp_root, box):
    """With a box given nothing is decoded before the render: the render finds the video empty."""
    empty = tmp_path / "empty.y4m"
    empty.write_bytes(b"YUV4MPEG2 W320 H240 F25:1 Ip A1:1 C420jpeg\n")  # a video stream, no frame
    run = run_cli(tmp_path, empty, tmp_path / "out.mp4", "--audio", speech, *box)
    message = assert_refused(run, "'empty.y4m' has no frames.")
    config = HAAR.replace(box=(10, 200, 10, 200)) if box else HAAR
    refused_in_process(FaceError, message, empty, tmp_path / "out.mp4", audio_path=speech, config=config)


def test_video_without_a_face_in_any_frame(tmp_path, speech, temp_root):
    clip = tmp_path / "sunset.mp4"
    # A fixed seed: random gradients can, rarely, hold a pattern the Haar cascade takes for a face.
    run_ffmpeg("-f", "lavfi", "-i", "gradients=s=320x240:r=25:d=1:seed=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", clip)
    run = run_cli(tmp_path, clip, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "No face was found in any of the 25 frames")
    refused_in_process(NoFaceError, message, clip, tmp_path / "out.mp4", audio_path=speech)


def test_face_in_only_some_frames(tmp_path, media_dir):
    """First second the portrait, second second a blank wall: the blank frames pass through untouched."""
    speech = cut_speech(tmp_path / "speech2.wav", 2.0, start=SPEECH_START)
    clip = tmp_path / "cut-to-wall.mp4"
    run_ffmpeg("-loop", "1", "-framerate", 25, "-t", 1, "-i", PORTRAIT,
           "-f", "lavfi", "-i", "color=c=0x8a7f70:s=300x446:r=25:d=1",
           "-filter_complex", "[0:v]crop=300:446:0:0,setsar=1[a];[1:v]setsar=1[b];[a][b]concat=n=2:v=1[v]",
           "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-crf", 10, "-pix_fmt", "yuv420p", clip)
    run = run_cli(tmp_path, clip, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, 2.0, (300, 446), 25)
    source, result = read_frames(clip), read_frames(run.out)
    assert len(source) == len(result) == 50
    for index in range(25, 50):  # every no-face frame equals the input within codec tolerance
        assert mean_diff(result[index], source[index]) < 0.5, index
        assert np.abs(result[index].astype(int) - source[index].astype(int)).max() <= 8, index
    changed = [mean_diff(mouth_region(result[i]), mouth_region(source[i])) for i in range(0, 25)]
    assert max(changed) > 5.0  # the face frames were synced


def test_variable_frame_rate_video(tmp_path, speech):
    """One second at 25 fps, then one at 10 fps, timestamps kept as they are."""
    fast = portrait_video(tmp_path / "fast.mp4", 1.0)
    slow = portrait_video(tmp_path / "slow.mp4", 1.0, ["-r", 10])
    vfr = tmp_path / "vfr.mkv"
    run_ffmpeg("-i", fast, "-i", slow, "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
           "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", vfr)
    stream = probe(vfr)["video"]
    assert int(stream["nb_read_frames"]) == 35  # really variable: 25 + 10 frames in two seconds
    run = run_cli(tmp_path, vfr, tmp_path / "out.mp4", "--audio", speech)
    info = assert_works(run, SPEECH_SECONDS, (300, 446))
    assert info["video"]["avg_frame_rate"] == info["video"]["r_frame_rate"]  # constant rate out


def test_variable_frame_rate_video_is_read_at_its_nominal_rate_by_timestamp(tmp_path):
    """Every third frame dropped from 1 s to 8 s of the talking head (a frame counter in its corner, outside the
    face, tells the frames apart), timestamps kept: nominally 25 fps, 17.75 on average. It comes back at 25 fps,
    as long as the speech, and each untouched output frame (the mouth still in the first, silent seconds) is the
    source frame shown at its time: the frame before a dropped one is shown twice."""
    vfr = tmp_path / "vfr.mp4"
    run_ffmpeg("-i", TALKING_HEAD, "-f", "lavfi", "-i", "testsrc2=size=96x54:rate=25", "-filter_complex",
           "[0:v]scale=352:608[face];[face][1:v]overlay=0:0:shortest=1,"
           "select='not(between(n,25,199)*eq(mod(n,3),2))'", "-fps_mode", "passthrough", "-an", "-t", 8,
           "-c:v", "libx264", "-preset", "ultrafast", "-crf", 12, vfr)
    stream = probe(vfr)["video"]
    assert stream["r_frame_rate"] == "25/1" and Fraction(stream["avg_frame_rate"]) == Fraction(71, 4)
    times = [float(line.split(",")[0]) for line in subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=pts_time", "-of", "csv=p=0",
         str(vfr)], check=True, capture_output=True, text=True).stdout.split()]
    source = read_frames(vfr)
    assert len(source) == len(times) == 142
    speech = cut_speech(tmp_path / "speech.wav", 4.0, start=0.0)  # near-silent for 2 s, then speaking

    run = run_cli(tmp_path, vfr, tmp_path / "out.mp4", "--audio", speech, "--box", "125", "260", "95", "220")
    assert_works(run, 4.0, (352, 608), 25)
    assert pipeline.estimate_frames(vfr, audio_path=speech) == 100
    out = read_frames(run.out)
    weights = silence.speech_weights(audio.load_speech(speech, tmp_path, None).samples, 25.0, len(out))
    untouched = [index for index in range(len(out)) if weights[index] == 0]
    assert len(untouched) > 40 and untouched[:50] == list(range(50))  # 0-2 s: 25 frames with 8 repeats
    counter = (slice(0, 54), slice(0, 96))
    for index in untouched:
        shown = bisect.bisect_right(times, index / 25 + 1e-3) - 1
        differences = [mean_diff(out[index][counter], frame[counter]) for frame in source]
        assert int(np.argmin(differences)) == shown, (index, shown, int(np.argmin(differences)))
        assert mean_diff(out[index], source[shown]) < 3, index  # the whole frame, within codec noise


def test_gif_with_mixed_delays_is_read_at_its_average_rate(tmp_path):
    """A GIF whose frames last 30-100 ms has a nominal rate of 100 fps (its time base), not a rate it was made
    at: its average rate is used instead."""
    gif = tmp_path / "mixed.gif"
    portrait = Image.open(PORTRAIT).convert("RGB")
    frames = [portrait.point(lambda v, k=k: min(255, v + 4 * k)) for k in range(8)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=[100, 50, 30, 100, 70, 100, 40, 100])
    assert probe(gif)["video"]["r_frame_rate"] == "100/1"
    assert ffmpeg.probe(gif, "face video").video.fps == Fraction(41, 3)  # 8 frames in 0.59 s


def test_rotated_phone_video_comes_out_upright(tmp_path, speech):
    """Stored 446×300 sideways with rotate=90 metadata (as phones do); shown as 300×446 upright."""
    sideways = portrait_video(tmp_path / "sideways-raw.mp4", 1.0, vf="crop=300:446:0:0,transpose=clock")
    phone = tmp_path / "phone.mp4"
    run_ffmpeg("-i", sideways, "-c", "copy", "-metadata:s:v", "rotate=90", phone)
    stored = probe(phone)["video"]
    assert (stored["width"], stored["height"]) == (446, 300)
    run = run_cli(tmp_path, phone, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)
    upright = cv2.imread(str(PORTRAIT))[:446]
    first = read_frames(run.out)[0]
    assert mean_diff(first[:120], upright[:120]) < 8
    assert mean_diff(first[:120], cv2.rotate(upright, cv2.ROTATE_180)[:120]) > 20


def test_4k_video_is_scaled_to_1080p(tmp_path, speech):
    clip = portrait_video(tmp_path / "uhd.mp4", 0.4,
                          vf="scale=-2:2160,pad=3840:2160:(ow-iw)/2:0:color=0x404040")
    assert probe(clip)["video"]["height"] == 2160
    run = run_cli(tmp_path, clip, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, SPEECH_SECONDS, (1920, 1080), 25)


# ---------------------------------------------------------------- speech

def test_zero_byte_audio_file(tmp_path, temp_root):
    empty = tmp_path / "nothing.wav"
    empty.write_bytes(b"")
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", empty)
    message = assert_refused(run, "'nothing.wav' is empty (0 bytes)")
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=empty)


def test_zero_length_audio(tmp_path, temp_root):
    import wave

    empty = tmp_path / "silent-header.wav"
    with wave.open(str(empty), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", empty)
    message = assert_refused(run, "'silent-header.wav'", "0 s long")
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=empty)


def test_pure_silence_keeps_the_mouth_still(tmp_path):
    hush = tmp_path / "hush.wav"
    run_ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", SPEECH_SECONDS, hush)
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", hush)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)
    source = cv2.imread(str(PORTRAIT))[:446]
    # Codec tolerance: the same still through the same encoder settings, with no sync at all.
    codec_noise = mean_diff(mouth_region(through_encoder(source, tmp_path)[0]), mouth_region(source))
    for frame in read_frames(run.out):  # a generated mouth (random weights) differs by 7 or more
        assert mean_diff(mouth_region(frame), mouth_region(source)) < codec_noise + 1.0


def test_corrupt_audio(tmp_path, temp_root):
    noise = tmp_path / "speech.wav"
    noise.write_bytes(np.random.default_rng(2).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", noise)
    message = assert_refused(run, "'speech.wav' is not a readable audio file.")
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=noise)


def test_truncated_m4a(tmp_path, temp_root):
    whole = cut_speech(tmp_path / "whole.m4a", 2.0, extra=["-c:a", "aac"])
    data = whole.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # the index is at the end: cut it off
    cut = tmp_path / "cut.m4a"
    cut.write_bytes(data[: len(data) // 2])
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", cut)
    message = assert_refused(run, "'cut.m4a' is not a readable audio file.")
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=cut)


def test_video_without_audio_track_given_as_speech(tmp_path, temp_root):
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", TALKING_HEAD)
    message = assert_refused(run, "'talking_head.mp4' is a video file with no audio track.")
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=TALKING_HEAD)


def test_speech_longer_than_a_limit_that_was_set(tmp_path, temp_root):
    six = cut_speech(tmp_path / "six.wav", 6.0)
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", six, "--max-seconds", "5")
    message = assert_refused(run, "The speech is 6 s long; the limit is 5 s. Trim it and try again.")
    assert run.seconds < 60
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=six,
                       config=HAAR.replace(max_audio_seconds=5))


def test_speech_longer_than_two_minutes_needs_no_flag(tmp_path):
    """No limit by default: 130 s of silence (in silence no mouth is generated, so it is quick) makes a 130 s
    video."""
    long = tmp_path / "long.wav"
    run_ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", 130, "-c:a", "pcm_u8", long)
    small = tmp_path / "small.png"
    Image.open(PORTRAIT).resize((100, 150)).save(small)
    run = run_cli(tmp_path, small, tmp_path / "out.mp4", "--audio", long, "--box", "20", "70", "30", "70")
    assert_works(run, 130.0, (100, 150), 25)
    assert "3250 frames at 25.00 fps" in run.stdout
    assert pipeline.estimate_frames(small, audio_path=long) == 3250  # the estimate follows the whole speech
    assert pipeline.estimate_frames(small, audio_path=long, config=HAAR.replace(max_audio_seconds=120)) == 3000


def test_speech_just_over_the_limit_is_not_shown_as_equal_to_it(tmp_path, temp_root):
    barely = tmp_path / "barely.wav"
    run_ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", 120.3, "-c:a", "pcm_u8", barely)
    with pytest.raises(AudioError, match=r"The speech is 120\.3 s long; the limit is 120 s\."):
        generate(PORTRAIT, tmp_path / "out.mp4", audio_path=barely, config=HAAR.replace(max_audio_seconds=120))


def test_image_given_as_speech(tmp_path, temp_root):
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", PORTRAIT)
    message = assert_refused(run, "'monalisa.png' is an image; the speech must be a sound recording")
    refused_in_process(AudioError, message, PORTRAIT, tmp_path / "out.mp4", audio_path=PORTRAIT)


def test_speech_given_as_face(tmp_path, speech, temp_root):
    run = run_cli(tmp_path, speech, tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'speech.wav' is a sound recording; the face must be an image or a video.")
    refused_in_process(FaceError, message, speech, tmp_path / "out.mp4", audio_path=speech)


@pytest.mark.parametrize("rate, channels, name", [(8000, 1, "phone 8k.wav"), (48000, 2, "studio 48k stereo.wav")],
                         ids=["8kHz-mono", "48kHz-stereo"])
def test_other_sample_rates_work(tmp_path, rate, channels, name):
    speech = cut_speech(tmp_path / name, SPEECH_SECONDS, start=SPEECH_START,
                        extra=["-ar", str(rate), "-ac", str(channels)])
    assert probe(speech)["audio"]["sample_rate"] == str(rate)
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)


# ---------------------------------------------------------------- text

@pytest.mark.parametrize("text", ["", "   \n\t "], ids=["empty", "spaces-only"])
def test_no_text(tmp_path, temp_root, text):
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", f"--text={text}")
    message = assert_refused(run, "There is no text to speak")
    refused_in_process(TextError, message, PORTRAIT, tmp_path / "out.mp4", text=text)


@pytest.mark.parametrize("text", ["!!! ... ???", "😀 🎉 👍", "« — » … ¿¡"], ids=["punctuation", "emoji", "symbols"])
def test_text_with_nothing_to_speak_is_refused_before_any_synthesis(tmp_path, temp_root, monkeypatch, text):
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", f"--text={text}")
    message = assert_refused(run, "The text has no words to speak, only punctuation or symbols: type a sentence")

    def no_synthesis(*args, **kwargs):
        raise AssertionError("nothing may be synthesized")

    monkeypatch.setattr(tts, "gTTS", no_synthesis)
    monkeypatch.setattr(tts, "_espeak", no_synthesis)
    monkeypatch.setattr(tts.piper, "speak", no_synthesis)
    refused_in_process(TextError, message, PORTRAIT, tmp_path / "out.mp4", text=text)


def test_text_longer_than_the_limit(tmp_path, temp_root):
    text = "a" * 2001
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--text", text)
    message = assert_refused(run, "The text has 2001 characters; the limit is 2000.")
    refused_in_process(TextError, message, PORTRAIT, tmp_path / "out.mp4", text=text)


def test_unsupported_language(tmp_path, temp_root):
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--text", "Hello there.", "--lang", "xx")
    message = assert_refused(run, "Language 'xx' is not supported")
    refused_in_process(TextError, message, PORTRAIT, tmp_path / "out.mp4", text="Hello there.", lang="xx")


@pytest.mark.parametrize("lang, text", [("hi", "नमस्ते, आप कैसे हैं?"), ("ru", "Привет, как дела?")],
                         ids=["hindi", "russian"])
def test_non_latin_text_works_offline(tmp_path, lang, text):
    # gTTS's service made unreachable at once (as on CI), so the offline voice is what is tested.
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"}
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--text", text, "--lang", lang, env=offline)
    assert run.returncode == 0, run.stderr
    # No natural voice here: Hindi has none, Russian's comes from the Hub, out of reach offline.
    assert "voice: espeak-ng (gTTS: " in run.stderr
    spoken = float(re.search(r": (\d+\.\d+) s, ", run.stdout).group(1))  # the speech's length, as reported
    assert spoken > 0.8  # it said something
    assert_works(run, spoken, (300, 446), 25)


# ---------------------------------------------------------------- names and paths

def test_spaces_and_non_ascii_in_file_names(tmp_path, speech):
    folder = tmp_path / "my files ü"
    folder.mkdir()
    face = folder / "Mona Lisa – портрет 顔.png"
    face.write_bytes(PORTRAIT.read_bytes())
    voice = folder / "concat:voix d'été.wav"  # a protocol-like prefix too: it must stay a file name
    voice.write_bytes(speech.read_bytes())
    out = folder / "résultat final.mp4"
    run = run_cli(tmp_path, face, out, "--audio", voice)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)


def test_file_names_starting_with_a_dash(tmp_path, speech):
    """'-face.png' and '-speech.wav' must reach ffmpeg as files, never as options."""
    work = tmp_path / "in"
    work.mkdir()
    (work / "-face.png").write_bytes(PORTRAIT.read_bytes())
    (work / "-speech.wav").write_bytes(speech.read_bytes())
    run = run_cli(tmp_path, "./-face.png", Path("-out.mp4"), "--audio=-speech.wav", cwd=work)
    assert run.out == work / "-out.mp4"
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)
    # A video whose name starts with a dash goes through the ffmpeg decoder too.
    portrait_video(work / "-clip.mp4", 0.4)
    run = run_cli(tmp_path, "-clip.mp4", Path("-out2.mp4"), "--audio=-speech.wav", cwd=work)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)


def test_png_named_mp4(tmp_path, speech):
    lying = tmp_path / "portrait.mp4"
    lying.write_bytes(PORTRAIT.read_bytes())
    run = run_cli(tmp_path, lying, tmp_path / "out.mp4", "--audio", speech)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)


def test_wav_named_mp3(tmp_path, speech):
    lying = tmp_path / "speech.mp3"
    lying.write_bytes(speech.read_bytes())
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", lying)
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)


def test_output_is_an_existing_folder(tmp_path, speech, temp_root):
    folder = tmp_path / "videos"
    folder.mkdir()
    run = run_cli(tmp_path, PORTRAIT, folder, "--audio", speech)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == ["error: The output 'videos' is a folder; give a file name, "
                                               "such as 'videos/out.mp4'."]
    assert not list(folder.iterdir()), "nothing may be written into the folder"
    with pytest.raises(OutputError, match="is a folder"):
        generate(PORTRAIT, folder, audio_path=speech, config=HAAR)
    assert not list(folder.iterdir())
    here = run_cli(tmp_path, PORTRAIT, Path("."), "--audio", speech, cwd=folder)  # '.' has no name: the folder's
    assert here.returncode == 1 and here.stderr.strip().splitlines() == [
        "error: The output '.' is the folder 'videos'; give a file name, such as 'out.mp4'."]
    assert not list(folder.iterdir())


def test_output_that_is_not_an_mp4_is_refused(tmp_path, speech, temp_root):
    out = tmp_path / "result.avi"
    run = run_cli(tmp_path, PORTRAIT, out, "--audio", speech)
    message = assert_refused(run, "The output 'result.avi' must be an .mp4 file; give a name such as 'result.mp4'.")
    refused_in_process(OutputError, message, PORTRAIT, out, audio_path=speech)
    assert not (tmp_path / "result.mp4").exists()


@pytest.mark.parametrize("which", ["face", "audio"])
def test_output_that_is_an_input_is_refused_before_any_work(tmp_path, speech, temp_root, which):
    face, voice = tmp_path / "face.png", tmp_path / "voice.wav"
    face.write_bytes(PORTRAIT.read_bytes())
    voice.write_bytes(speech.read_bytes())
    target = face if which == "face" else voice
    before = target.read_bytes()
    # The same file under another spelling of its path is still the input.
    run = run_cli(tmp_path, face, Path("..") / tmp_path.name / target.name, "--audio", voice, cwd=tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    what = "face image or video" if which == "face" else "speech recording"
    assert run.stderr.strip().splitlines() == [f"error: The output '{target.name}' is the {what} itself; "
                                               f"give the output another file name."]
    with pytest.raises(OutputError, match=f"is the {what} itself"):
        generate(face, target, audio_path=voice, config=HAAR)
    assert target.read_bytes() == before, "the input must be left as it was"


def test_negative_pads_are_read_as_numbers(tmp_path, speech):
    """`--pads -5 10 0 0`: a value starting with '-' is a number here, not an option."""
    run = run_cli(tmp_path, PORTRAIT, tmp_path / "out.mp4", "--audio", speech, "--pads", "-5", "10", "0", "0")
    assert_works(run, SPEECH_SECONDS, (300, 446), 25)


def test_output_inside_a_file(tmp_path, speech, temp_root):
    out = tmp_path / "speech.wav" / "out.mp4"
    (tmp_path / "speech.wav").write_bytes(speech.read_bytes())
    run = run_cli(tmp_path, PORTRAIT, out, "--audio", speech)
    message = assert_refused(run, "The folder for the output 'out.mp4' cannot be made")
    refused_in_process(OutputError, message, PORTRAIT, out, audio_path=speech)


def test_missing_face_file(tmp_path, speech, temp_root):
    run = run_cli(tmp_path, tmp_path / "nowhere.png", tmp_path / "out.mp4", "--audio", speech)
    message = assert_refused(run, "'nowhere.png' does not exist")
    refused_in_process(FaceError, message, tmp_path / "nowhere.png", tmp_path / "out.mp4", audio_path=speech)


# ---------------------------------------------------------------- the tools themselves

@pytest.fixture
def hung_ffmpeg(tmp_path, monkeypatch) -> Path:
    """An 'ffmpeg' that never reads, writes or exits."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "FFMPEG", str(fake))
    return fake


def test_a_stalled_decoder_is_stopped(tmp_path, hung_ffmpeg):
    source = video.FaceInput(TALKING_HEAD, 64, 64, Fraction(25), None)
    started = time.perf_counter()
    with pytest.raises(MediaToolError, match="Decoding 'talking_head.mp4' stalled for more than 1 s"):
        list(video.iter_video_frames(source, 64, 64, timeout=1.0))
    assert time.perf_counter() - started < 10


def test_a_stalled_encoder_is_stopped(tmp_path, hung_ffmpeg, speech):
    encoder = encode.Encoder(tmp_path / "out.mp4", 64, 64, Fraction(25), speech, timeout=1.0)
    started = time.perf_counter()
    with pytest.raises(MediaToolError, match="Encoding the video stalled for more than 1 s"):
        for _ in range(1000):  # the pipe fills up after a few frames, then the write blocks
            encoder.write(np.zeros((64 * 3 // 2, 64), np.uint8))  # one I420 frame, as the encoder takes
        encoder.finish()
    encoder.abort()
    assert time.perf_counter() - started < 10


def test_missing_ffmpeg_is_one_clear_message(tmp_path, temp_root, monkeypatch):
    monkeypatch.setattr(ffmpeg, "FFPROBE", str(tmp_path / "no-such-dir" / "ffprobe"))
    speech = cut_speech(tmp_path / "speech.m4a", SPEECH_SECONDS, start=SPEECH_START)  # a plain WAV is not probed
    with pytest.raises(MediaToolError, match=r"^ffprobe is not installed; install ffmpeg \(apt install ffmpeg\)\.$"):
        generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech, config=HAAR)
