"""ffprobe and ffmpeg, always as argument lists with a timeout, their failures turned into plain messages."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from fractions import Fraction

from .errors import MediaToolError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
PROBE_TIMEOUT = 60.0


def tool_path(path: str | os.PathLike) -> str:
    """An absolute path, so a file named '-x.mp4' or 'concat:…' can never be read as an option or protocol."""
    return os.path.abspath(os.fspath(path))


def last_line(stderr: bytes | str | None) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def run_tool(args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, check=True, capture_output=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise MediaToolError(f"{args[0]} is not installed; install ffmpeg (apt install ffmpeg).") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"{what} took longer than {timeout:.0f} s and was stopped.") from exc
    except subprocess.CalledProcessError as exc:
        raise MediaToolError(f"{what} failed: {last_line(exc.stderr)}") from exc


@dataclass(frozen=True)
class VideoStream:
    width: int  # as displayed, after any rotation metadata
    height: int
    fps: Fraction
    codec: str


@dataclass(frozen=True)
class MediaInfo:
    duration: float
    video: VideoStream | None
    has_audio: bool
    audio_duration: float


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(float(side["rotation"]))
    return int(float(stream.get("tags", {}).get("rotate", 0)))


def _fps(stream: dict) -> Fraction:
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            rate = Fraction(stream.get(key, "0/0"))
        except (ValueError, ZeroDivisionError):
            continue
        if 0 < rate <= 240:
            return rate.limit_denominator(1001)
    return Fraction(25)


def probe(path: str | os.PathLike, what: str) -> MediaInfo | None:
    """Streams of a media file, or None when ffprobe cannot read it at all."""
    args = [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", tool_path(path)]
    try:
        result = run_tool(args, PROBE_TIMEOUT, f"Reading the {what}")
    except MediaToolError as exc:
        if "not installed" in str(exc):
            raise
        return None
    data = json.loads(result.stdout or b"{}")
    streams = data.get("streams", [])
    fmt = data.get("format", {})
    duration = float(fmt.get("duration") or 0.0)
    video = None
    for stream in streams:
        if stream.get("codec_type") == "video" and not stream.get("disposition", {}).get("attached_pic"):
            width, height = int(stream.get("width", 0)), int(stream.get("height", 0))
            if _rotation(stream) % 180:
                width, height = height, width
            video = VideoStream(width, height, _fps(stream), stream.get("codec_name", "?"))
            break
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    audio_duration = float(audio[0].get("duration") or duration) if audio else 0.0
    return MediaInfo(duration, video, bool(audio), audio_duration)

