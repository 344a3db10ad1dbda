"""Frames in and out: the face input as a still or a stream, and the one H.264 + AAC encode fed by a pipe."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import media
from .errors import FaceError, MediaToolError

STILL_MAX_SIDE_MIN = 16
ENCODER_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart"]


@dataclass(frozen=True)
class FaceInput:
    """A still image (decoded once) or a video (decoded as a stream, as often as needed)."""
    path: Path
    width: int  # output size: even, at most max_height tall
    height: int
    fps: Fraction
    still: np.ndarray | None  # BGR frame of a still image

    @property
    def is_still(self) -> bool:
        return self.still is not None


def _even_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    if height > max_height:
        width, height = round(width * max_height / height), max_height
    return max(2, width - width % 2), max(2, height - height % 2)


def open_face(path: str | Path, max_height: int, max_pixels: int, still_fps: float) -> FaceInput:
    """Tell a still from a video by its content (not its name) and check it before decoding it in full."""
    path = Path(path)
    still = _read_still(path, max_pixels)
    if still is not None:
        height, width = still.shape[:2]
        out_w, out_h = _even_size(width, height, max_height)
        if height > max_height:
            still = cv2.resize(still, (out_w, out_h), interpolation=cv2.INTER_AREA)
        still = still[:out_h, :out_w]  # an odd last row or column is dropped, not resampled
        return FaceInput(path, out_w, out_h, Fraction(still_fps).limit_denominator(1001), np.ascontiguousarray(still))
    info = media.probe(path, "face video")
    if info is None or info.video is None:
        raise FaceError(f"'{path.name}' is neither an image nor a video that can be read.")
    if info.video.width * info.video.height > max_pixels:
        raise FaceError(f"'{path.name}' is {info.video.width}×{info.video.height}; the limit is {max_pixels:,} pixels.")
    out_w, out_h = _even_size(info.video.width, info.video.height, max_height)
    return FaceInput(path, out_w, out_h, info.video.fps, None)


def _read_still(path: Path, max_pixels: int) -> np.ndarray | None:
    """BGR uint8 of a still image, None for anything that is not one (videos, animated GIFs)."""
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    with image:
        if getattr(image, "n_frames", 1) > 1:
            return None  # animated: decoded as a video
        width, height = image.size
        if width * height > max_pixels:
            raise FaceError(f"'{path.name}' is {width}×{height}; the limit is {max_pixels:,} pixels.")
        if min(width, height) < STILL_MAX_SIDE_MIN:
            raise FaceError(f"'{path.name}' is only {width}×{height} pixels: too small to hold a face.")
        try:
            image = ImageOps.exif_transpose(image)
            if image.mode == "I;16" or image.mode.startswith("I;16") or image.mode == "I":
                image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
            rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise FaceError(f"'{path.name}' is a damaged or truncated image.") from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


def iter_video_frames(face: FaceInput, width: int, height: int, timeout: float) -> Iterator[np.ndarray]:
    """Decode a video at a constant frame rate (variable-rate input is resampled), rotated upright, at width×height."""
    # Drop an odd last row/column first, so a full-size decode is a plain copy, not a 1-pixel resample.
    scale = f"fps={face.fps},crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,scale={width}:{height}:flags=area,format=bgr24"
    args = [media.FFMPEG, "-v", "error", "-nostdin", "-i", media.tool_path(face.path), "-map", "0:v:0",
            "-vf", scale, "-f", "rawvideo", "-"]
    frame_bytes = width * height * 3
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=frame_bytes)
    stderr_lines: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
    drain.start()
    finished = False
    try:
        while True:
            data = process.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
        finished = True
    finally:
        if not finished:
            process.kill()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
        drain.join(timeout=5)
        process.stderr.close()
    if process.returncode != 0:
        raise FaceError(f"'{face.path.name}' could not be decoded: {media.last_line(b''.join(stderr_lines))}")


class Encoder:
    """One ffmpeg process: raw BGR frames on stdin, the speech file as audio, an H.264/AAC MP4 out."""

    def __init__(self, out_path: Path, width: int, height: int, fps: Fraction, audio_path: Path, timeout: float):
        self.out_path = out_path
        self.timeout = timeout
        args = [media.FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
                "-r", str(fps), "-i", "-", "-i", media.tool_path(audio_path), "-map", "0:v:0", "-map", "1:a:0",
                *ENCODER_ARGS, media.tool_path(out_path)]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True)
        self._drain.start()

    def write(self, frame: np.ndarray) -> None:
        try:
            self.process.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError as exc:
            self.process.wait(timeout=self.timeout)
            self._drain.join(timeout=5)
            raise MediaToolError(f"Encoding the video failed: {media.last_line(b''.join(self._stderr))}") from exc

    def finish(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            self.process.kill()
            self.process.wait()
            raise MediaToolError(f"Encoding the video took longer than {self.timeout:.0f} s and was stopped.") from exc
        self._drain.join(timeout=5)
        if self.process.returncode != 0:
            raise MediaToolError(f"Encoding the video failed: {media.last_line(b''.join(self._stderr))}")

    def abort(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._drain.join(timeout=5)
        for stream in (self.process.stdin, self.process.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
