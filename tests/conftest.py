"""Shared fixtures and helpers: random-weight checkpoints of the real architectures, the shared real media, the CLI
(its entry point in this process, or in a subprocess), ffprobe, the output encoder's own noise, the app on a local
port."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from lipsync import LipSyncConfig
from lipsync.media.encode import VIDEO_CODEC_ARGS

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("LIPSYNC_TEST_MEDIA", ROOT.parent / "shared" / "media"))
PORTRAIT = MEDIA / "monalisa.png"
TALKING_HEAD = MEDIA / "talking_head.mp4"
SPEECH = MEDIA / "speech_en.wav"
SPEECH_ONSET = 3.0  # the sample is near-silent for its first 3 s
HAAR = LipSyncConfig(detector="haar")  # random S3FD weights find no real face; the cascade is a real detector
# The 68 landmarks of the portrait's face and of a frame of the talking head, measured by hand: random FAN weights
# give garbage points, so geometry is tested with these.
HAND_LANDMARKS = json.loads((Path(__file__).parent / "fixtures" / "landmarks.json").read_text())


@pytest.fixture(scope="session", autouse=True)
def checkpoint_dir(tmp_path_factory) -> Path:
    """Random-weight checkpoints written once per session and used through the real loader."""
    from lipsync.bench.random_weights import write_random_checkpoints

    folder = write_random_checkpoints(tmp_path_factory.mktemp("checkpoints"))
    with pytest.MonkeyPatch.context() as patch:  # the environment is restored after the session
        patch.setenv("LIPSYNC_CHECKPOINT_DIR", str(folder))
        patch.setenv("LIPSYNC_CACHE", str(tmp_path_factory.mktemp("lipsync-cache")))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        yield folder


@pytest.fixture(scope="session")
def enhancer_file(checkpoint_dir) -> Path:
    """The random-weight GFPGAN file (~345 MB), written once beside the other random checkpoints, only for the
    tests that need it."""
    from lipsync.bench.random_weights import write_random_enhancer

    return write_random_enhancer(checkpoint_dir)


@pytest.fixture(scope="session")
def landmark_dir(checkpoint_dir, tmp_path_factory) -> Path:
    """A checkpoint folder holding the random-weight FAN file (~96 MB), written once, only for the tests that need
    it, and links to the other random checkpoints (the enhancer's is filled once enhancer_file has run). Apart from
    checkpoint_dir, so that landmarks' `auto`, which turns on where the file is at hand, stays off elsewhere."""
    from lipsync.bench.random_weights import write_random_landmarker
    from lipsync.nets.checkpoints import LANDMARKER, REGISTRY

    folder = tmp_path_factory.mktemp("with-landmarks")
    for name, spec in REGISTRY.items():
        if name != LANDMARKER:
            (folder / spec.local_name).symlink_to(checkpoint_dir / spec.local_name)
    write_random_landmarker(folder)
    return folder


@dataclass
class PlacedLandmarks:
    points: np.ndarray  # (68, 2): what every face found is given
    calls: int = 0  # landmark passes asked for


@pytest.fixture
def hand_landmarks(monkeypatch) -> PlacedLandmarks:
    """The landmark model's output replaced by the portrait's hand-measured points: every face found gets them
    (set .points to place others) and passes the gate. The detection cache is emptied before and after, so no
    request shares detections with those of another landmark model."""
    from lipsync.faces import finding, landmarks

    placed = PlacedLandmarks(np.array(HAND_LANDMARKS["monalisa"]["points"], np.float64))

    def locate(model, frames, boxes, scale=1.0):
        placed.calls += 1
        return [[landmarks.Landmarks(placed.points.copy(), np.ones(landmarks.NUM_POINTS, np.float32), True)
                 for _ in frame_boxes] for frame_boxes in boxes]

    monkeypatch.setattr(landmarks, "locate", locate)
    finding.CACHE.clear()
    yield placed
    finding.CACHE.clear()


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, timeout=300, **kwargs)


def cli(*args, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 600,
        process: bool = False) -> subprocess.CompletedProcess:
    """`python -m lipsync ARGS`, text output captured: by default its entry point (lipsync.__main__.main, what
    `python -m lipsync` runs) in this process, with `env` and `cwd` set around it: the same parsing, messages and
    exit codes without starting torch again (seconds a run). An exception it lets out fails the test, as a
    traceback would. process=True: in a subprocess running this checkout's code, for what only a process shows."""
    command = [sys.executable, "-m", "lipsync", *map(str, args)]
    if process:
        environment = dict(os.environ, **(env or {}), PYTHONPATH=str(ROOT))
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environment)
    from lipsync.__main__ import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(stdout), redirect_stderr(stderr):
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        if env and "TMPDIR" in env:
            patch.setattr(tempfile, "tempdir", env["TMPDIR"])  # read once per process otherwise
        patch.chdir(cwd)
        try:
            code = main(command[3:])
        except SystemExit as exc:  # argparse's refusals
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return subprocess.CompletedProcess(command, code, stdout.getvalue(), stderr.getvalue())


def through_encoder(image: np.ndarray, folder: Path, rate: str = "25") -> list[np.ndarray]:
    """The BGR image as 0.5 s of video through the output encoder's settings, with no sync at all: what the
    encoder alone does to it (the codec noise that outputs are compared within)."""
    import cv2

    still = folder / "reference.png"
    cv2.imwrite(str(still), image)
    out = folder / "reference.mp4"
    run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-framerate", rate, "-i", str(still), "-t", "0.5",
         *VIDEO_CODEC_ARGS, str(out)])
    return read_frames(out)


@pytest.fixture(scope="session")
def short_head(tmp_path_factory) -> Path:
    """The talking head's first 2 s (50 frames at 704×1216), for tests where the video's length is not what is
    tested: a quarter of the frames to decode, find and sync."""
    out = tmp_path_factory.mktemp("short-head") / "talking_head_2s.mp4"
    run(["ffmpeg", "-v", "error", "-y", "-i", str(TALKING_HEAD), "-t", "2", "-an", "-c:v", "libx264", "-preset",
         "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", str(out)])
    return out


def cut_speech(out: Path, seconds: float, start: float = SPEECH_ONSET, extra: list[str] | None = None) -> Path:
    """A slice of the real speech sample, optionally re-encoded (extra ffmpeg output args)."""
    run(["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-t", str(seconds), "-i", str(SPEECH),
         *(extra or []), str(out)])
    return out


def probe(path: Path) -> dict:
    """Streams and format of a media file as ffprobe reports them."""
    out = run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", "-count_frames",
               str(path)]).stdout
    data = json.loads(out)
    streams = {s["codec_type"]: s for s in data["streams"]}
    return {"video": streams.get("video"), "audio": streams.get("audio"), "format": data["format"]}


def assert_valid_mp4(path: Path, duration: float, size: tuple[int, int] | None = None,
                     fps: float | None = None) -> dict:
    """H.264 (yuv420p) + AAC with +faststart, the video as long as the speech within one frame, the audio within
    one frame (+AAC padding); the size and frame rate too when given."""
    assert path.is_file(), path
    info = probe(path)
    video, sound = info["video"], info["audio"]
    assert video is not None and sound is not None, info
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert sound["codec_name"] == "aac"
    if size is not None:
        assert (video["width"], video["height"]) == size
    if fps is not None:
        assert Fraction(video["avg_frame_rate"]) == Fraction(fps).limit_denominator(1001), video["avg_frame_rate"]
    rate = float(Fraction(video["avg_frame_rate"]))
    frames = int(video["nb_read_frames"])
    assert abs(frames / rate - duration) <= 1 / rate + 1e-6, (frames, rate, duration)
    assert abs(float(sound["duration"]) - duration) <= 1 / rate + 0.03, sound["duration"]  # AAC pads its frames
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "+faststart puts the index before the media data"
    return info


def read_frames(path: Path) -> list:
    """Every decoded frame of a video as BGR arrays."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


@dataclass
class Server:
    url: str
    temp_root: Path  # the app's TMPDIR, where each request's work folder lives
    gradio_dir: Path  # the app's GRADIO_TEMP_DIR: uploads and results
    log: Path


@contextmanager
def serve_app(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python app.py` in a subprocess on a free local port, with its own temp folders, until the block ends."""
    port = free_port()
    server = Server(f"http://127.0.0.1:{port}/", folder / "tmp", folder / "gradio", folder / "app.log")
    server.temp_root.mkdir(parents=True)
    environment = {**os.environ, "TMPDIR": str(server.temp_root), "GRADIO_TEMP_DIR": str(server.gradio_dir),
                   **(env or {})}
    with open(server.log, "wb") as log:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args],
                                   env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}:\n{server.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(server.url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer within 180 s:\n{server.log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
