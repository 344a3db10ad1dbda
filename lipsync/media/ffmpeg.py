"""ffprobe and ffmpeg, always as argument lists with a timeout, their failures turned into plain messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

from ..errors import MediaFileError, MediaToolError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
PROBE_TIMEOUT = 60.0
NOMINAL_FPS_MAX = 60
# ffprobe codec names of still-image formats (ffprobe reports a picture as a one-frame "video" stream).
IMAGE_CODECS = frozenset({"png", "mjpeg", "jpegls", "bmp", "webp", "tiff", "gif", "jpeg2000", "ppm", "pgm"})


def tool_path(path: str | os.PathLike) -> str:
    """An absolute path, so a file named '-x.mp4' or 'concat:…' can never be read as an option or protocol."""
    return os.path.abspath(os.fspath(path))


# ffmpeg's closing lines that only say "it failed"; the line before them says why.
_GENERIC_ENDINGS = re.compile(r"^(Conversion failed!|Error marking filters as finished|Error while filtering|"
                              r"Error while processing the decoded data|Cannot determine format of input stream|"
                              r"Error closing file|Error sending frames to consumers|Terminating thread with)")
_CONTEXT = re.compile(r"^\[(\w[\w,-]*) @ 0x[0-9a-f]+\]\s*")  # "[h264 @ 0x55d1…] msg" -> "h264: msg"


def last_line(stderr: bytes | str | None) -> str:
    """The last line of ffmpeg's stderr that says what went wrong (skipping its generic closing lines)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [_CONTEXT.sub(r"\1: ", line.strip()) for line in text.splitlines() if line.strip()]
    specific = [line for line in lines if not _GENERIC_ENDINGS.match(line)]
    return (specific or lines or ["no message"])[-1]


def _not_installed(tool: str) -> MediaToolError:
    name = os.path.basename(tool)
    package = "ffmpeg" if name in ("ffmpeg", "ffprobe") else name
    return MediaToolError(f"{name} is not installed; install {package} (apt install {package}).")


def run_tool(args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, check=True, capture_output=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise _not_installed(args[0]) from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"{what} took longer than {timeout:.0f} s and was stopped.") from exc
    except subprocess.CalledProcessError as exc:
        detail = last_line(exc.stderr)
        raise MediaFileError(f"{what} failed: {detail}", detail) from exc


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
    """The nominal rate, so a variable-rate clip (a phone's) keeps its rate and its motion's speed; the average
    where the nominal one is missing or too high to be a rate it was shot at (a GIF's mixed delays give 100)."""
    for key, highest in (("r_frame_rate", NOMINAL_FPS_MAX), ("avg_frame_rate", 240)):
        try:
            rate = Fraction(stream.get(key, "0/0"))
        except (ValueError, ZeroDivisionError):
            continue
        if 0 < rate <= highest:
            return rate.limit_denominator(1001)
    return Fraction(25)


def probe(path: str | os.PathLike, what: str) -> MediaInfo | None:
    """Streams of a media file, or None when ffprobe cannot read it at all."""
    args = [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", tool_path(path)]
    try:
        result = run_tool(args, PROBE_TIMEOUT, f"Reading the {what}")
    except MediaFileError:
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


def popen(args: list[str], **kwargs) -> subprocess.Popen:
    """A streaming tool (frames through a pipe); pair it with a Watchdog and check its return code."""
    try:
        return subprocess.Popen(args, **kwargs)
    except FileNotFoundError as exc:
        raise _not_installed(args[0]) from exc


def stop(process: subprocess.Popen, grace: float) -> bool:
    """Wait up to `grace` seconds for a streaming tool to end by itself, then kill it (0: kill it now); True when
    it ended by itself."""
    try:
        process.wait(timeout=grace)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


class Watchdog:
    """The timeout of a streaming tool: kills it when the caller has waited more than `timeout` s on one read or
    write (a stalled tool), but not while the caller is busy elsewhere (a slow consumer is not a stall)."""

    def __init__(self, process: subprocess.Popen, timeout: float):
        self.process = process
        self.timeout = timeout
        self.fired = False
        self._since: float | None = None
        self._stopped = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    @contextmanager
    def waiting(self) -> Iterator[None]:
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._since = None

    def _watch(self) -> None:
        period = min(1.0, max(0.05, self.timeout / 10))
        while not self._stopped.wait(period):
            since = self._since
            if since is not None and time.monotonic() - since > self.timeout and self.process.poll() is None:
                self.fired = True
                self.process.kill()
                return

    def stop(self) -> None:
        self._stopped.set()
