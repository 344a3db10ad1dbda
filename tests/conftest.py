"""Shared fixtures: random-weight checkpoints of the real architectures, the shared real media, ffprobe."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("LIPSYNC_TEST_MEDIA", ROOT.parent / "shared" / "media"))
PORTRAIT = MEDIA / "monalisa.png"
TALKING_HEAD = MEDIA / "talking_head.mp4"
SPEECH = MEDIA / "speech_en.wav"


@pytest.fixture(scope="session", autouse=True)
def checkpoint_dir(tmp_path_factory) -> Path:
    """Random-weight checkpoints written once per session and used through the real loader."""
    from lipsync.checkpoints import write_random_checkpoints

    folder = write_random_checkpoints(tmp_path_factory.mktemp("checkpoints"))
    os.environ["LIPSYNC_CHECKPOINT_DIR"] = str(folder)
    os.environ["LIPSYNC_CACHE"] = str(tmp_path_factory.mktemp("lipsync-cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    return folder


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, timeout=300, **kwargs)


def cut_speech(out: Path, seconds: float, start: float = 0.0, extra: list[str] | None = None) -> Path:
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
