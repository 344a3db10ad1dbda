"""The face input: a still image decoded once, or a video decoded as a stream of frames, as often as needed."""

from __future__ import annotations

import re
import subprocess
import os
import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import FaceError, MediaToolError
from . import ffmpeg, i420

STILL_MIN_SHORT_SIDE = 16  # pixels: a still with a shorter side is too small to hold a face
STILL_BACKGROUND = (255, 255, 255)  # RGB under the transparent parts of an image


@dataclass(frozen=True)
class FaceInput:
    """A still image (decoded once) or a video (decoded as a stream, as often as needed)."""
    path: Path
    width: int  # output size: even, the short side at most output_size
    height: int
    fps: Fraction
    still: np.ndarray | None  # BGR frame of a still image

    @property
    def is_still(self) -> bool:
        return self.still is not None


def output_dimensions(width: int, height: int, output_size: int) -> tuple[int, int]:
    """The size a frame comes back at: its own, or scaled so its short side is output_size; then made even by
    dropping an odd last row or column."""
    short = min(width, height)
    if short > output_size:
        width, height = round(width * output_size / short), round(height * output_size / short)
    return max(2, width - width % 2), max(2, height - height % 2)


def still_rate(still_fps: float) -> Fraction:
    """The frame rate a still's video is made at."""
    return Fraction(still_fps).limit_denominator(1001)


def open_face(path: str | Path, output_size: int, max_pixels: int, still_fps: float) -> FaceInput:
    """Tell a still from a video by its content (not its name) and check it before decoding it in full."""
    path = Path(path)
    still = _read_still(path, max_pixels)
    if still is not None:
        height, width = still.shape[:2]
        out_w, out_h = output_dimensions(width, height, output_size)
        if min(width, height) > output_size:
            still = cv2.resize(still, (out_w, out_h), interpolation=cv2.INTER_AREA)
        still = still[:out_h, :out_w]  # an odd last row or column is dropped, not resampled
        return FaceInput(path, out_w, out_h, still_rate(still_fps), np.ascontiguousarray(still))
    info = ffmpeg.probe(path, "face video")
    if info is not None and info.video is None and info.has_audio:
        raise FaceError(f"'{path.name}' is a sound recording; the face must be an image or a video.")
    if info is None or info.video is None or min(info.video.width, info.video.height) < 1:
        raise FaceError(f"'{path.name}' is neither an image nor a video that can be read.")
    if info.video.width * info.video.height > max_pixels:
        raise FaceError(f"'{path.name}' is {info.video.width}×{info.video.height}; the limit is {max_pixels:,} pixels.")
    out_w, out_h = output_dimensions(info.video.width, info.video.height, output_size)
    return FaceInput(path, out_w, out_h, info.video.fps, None)


def open_image(path: str | os.PathLike) -> Image.Image:
    """Pillow's lazy open, from the header alone, without its warning for large images: the callers check their
    own, lower pixel limit. Past twice Pillow's own limit it raises DecompressionBombError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def is_still(path: str | Path) -> bool:
    """The one rule for still versus video: a file Pillow reads as an image of one frame is a still; anything else
    (a video, an animated GIF) is decoded as a video. From the header alone."""
    try:
        with open_image(path) as image:
            return getattr(image, "n_frames", 1) == 1
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError):
        return False


def _read_still(path: Path, max_pixels: int) -> np.ndarray | None:
    """BGR uint8 of a still image, None for anything that is not one (videos, animated GIFs)."""
    try:
        image = open_image(path)  # our own, lower limit is checked below
    except Image.DecompressionBombError as exc:  # Pillow refuses past twice its own limit, before we can look
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"has {int(pixels.group(1)):,} pixels" if pixels else "is far too large"
        raise FaceError(f"'{path.name}' {size}; the limit is {max_pixels:,} pixels.") from exc
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise FaceError(f"'{path.name}' is {width}×{height}; the limit is {max_pixels:,} pixels.")
        try:
            animated = getattr(image, "n_frames", 1) > 1  # counting the frames reads through the file
        except (OSError, EOFError, ValueError, SyntaxError) as exc:
            raise FaceError(f"'{path.name}' is a damaged or truncated image.") from exc
        if animated:
            return None  # decoded as a video
        if min(width, height) < STILL_MIN_SHORT_SIDE:
            raise FaceError(f"'{path.name}' is only {width}×{height} pixels: too small to hold a face.")
        try:
            image = ImageOps.exif_transpose(image)
            if image.mode == "I;16" or image.mode.startswith("I;16") or image.mode == "I":
                image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                # Composited onto a plain background, not whatever color the decoder keeps under transparency.
                background = Image.new("RGBA", image.size, STILL_BACKGROUND + (255,))
                image = Image.alpha_composite(background, image.convert("RGBA"))
            rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as exc:
            raise FaceError(f"'{path.name}' is a damaged or truncated image.") from exc
    return np.ascontiguousarray(rgb[:, :, ::-1])


def iter_video_frames(face: FaceInput, width: int, height: int, timeout: float,
                      pix_fmt: str = "bgr24", searched_only: bool = False) -> Iterator[np.ndarray]:
    """Decode a video at face.fps (its nominal rate): each frame is the source frame shown at that time, so a
    variable-rate clip keeps its motion's speed. Rotated upright, at width×height:
    BGR (height, width, 3) frames, or with pix_fmt "yuv420p" I420 frames (height * 3 / 2, width) as decoded, which
    go to the encoder untouched wherever no face is pasted. searched_only: frames only searched for faces, never
    shown, decoded without the deblocking filter (a sixth less decoding of H.264; invisible once scaled down)."""
    # Drop an odd last row/column first, so a full-size decode is a plain copy, not a 1-pixel resample.
    # For BGR, accurate_rnd + full_chroma_int: without them YUV -> BGR darkens by about 1.5 levels of Y.
    flags = "area+accurate_rnd+full_chroma_int" if pix_fmt == "bgr24" else "area"
    scale = (f"fps={face.fps},crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,"
             f"scale={width}:{height}:flags={flags},format={pix_fmt}")
    skip = ["-skip_loop_filter", "all"] if searched_only else []
    args = [ffmpeg.FFMPEG, "-v", "error", "-nostdin", *skip, "-i", ffmpeg.tool_path(face.path), "-map", "0:v:0",
            "-vf", scale, "-f", "rawvideo", "-"]
    shape = (height, width, 3) if pix_fmt == "bgr24" else i420.frame_shape(width, height)
    frame_bytes = int(np.prod(shape))
    process = ffmpeg.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=frame_bytes)
    watchdog = ffmpeg.Watchdog(process, timeout)
    stderr_lines: list[bytes] = []
    drain = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)
    drain.start()
    finished = False
    try:
        while True:
            with watchdog.waiting():
                data = process.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            yield np.frombuffer(data, np.uint8).reshape(shape)
        finished = True
    finally:
        watchdog.stop()
        ffmpeg.stop(process, timeout if finished else 0)
        process.stdout.close()
        drain.join(timeout=5)
        process.stderr.close()
    if watchdog.fired:
        raise MediaToolError(f"Decoding '{face.path.name}' stalled for more than {timeout:.0f} s and was stopped.")
    if process.returncode != 0:
        raise FaceError(f"'{face.path.name}' could not be decoded: {ffmpeg.last_line(b''.join(stderr_lines))}")
