"""Frames in and out: the face input as a still or a stream, and the one H.264 + AAC encode fed by a pipe."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import media
from .errors import FaceError, MediaToolError, OutputError

STILL_MAX_SIDE_MIN = 16
STILL_BACKGROUND = (255, 255, 255)  # RGB under the transparent parts of an image
CODEC_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
              "-c:a", "aac", "-b:a", "160k"]
ENCODER_ARGS = [*CODEC_ARGS, "-movflags", "+faststart"]
SEGMENT_SECONDS = 2
FIRST_SEGMENT_SECONDS = 1  # shorter, so the preview starts sooner; the cuts are then at 1, 3, 5 … s
SEGMENT_FOLDER = "segments"  # beside the MP4
SEGMENT_LIST = "list.txt"  # the segment muxer adds a line here when a segment is closed
SEGMENT_POLL_SECONDS = 0.05
SegmentFn = Callable[[Path], None]  # receives each finished segment of the streaming preview


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
        return FaceInput(path, out_w, out_h, Fraction(still_fps).limit_denominator(1001), np.ascontiguousarray(still))
    info = media.probe(path, "face video")
    if info is not None and info.video is None and info.has_audio:
        raise FaceError(f"'{path.name}' is a sound recording; the face must be an image or a video.")
    if info is None or info.video is None or min(info.video.width, info.video.height) < 1:
        raise FaceError(f"'{path.name}' is neither an image nor a video that can be read.")
    if info.video.width * info.video.height > max_pixels:
        raise FaceError(f"'{path.name}' is {info.video.width}×{info.video.height}; the limit is {max_pixels:,} pixels.")
    out_w, out_h = output_dimensions(info.video.width, info.video.height, output_size)
    return FaceInput(path, out_w, out_h, info.video.fps, None)


def _read_still(path: Path, max_pixels: int) -> np.ndarray | None:
    """BGR uint8 of a still image, None for anything that is not one (videos, animated GIFs)."""
    try:
        with warnings.catch_warnings():  # our own, lower limit is checked below, from the header alone
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
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
        if min(width, height) < STILL_MAX_SIDE_MIN:
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
                      pix_fmt: str = "bgr24") -> Iterator[np.ndarray]:
    """Decode a video at face.fps (its nominal rate): each frame is the source frame shown at that time, so a
    variable-rate clip keeps its motion's speed. Rotated upright, at width×height:
    BGR (height, width, 3) frames, or with pix_fmt "yuv420p" I420 frames (height * 3 / 2, width) as decoded, which
    go to the encoder untouched wherever no face is pasted."""
    # Drop an odd last row/column first, so a full-size decode is a plain copy, not a 1-pixel resample.
    # For BGR, accurate_rnd + full_chroma_int: without them YUV -> BGR darkens by about 1.5 levels of Y.
    flags = "area+accurate_rnd+full_chroma_int" if pix_fmt == "bgr24" else "area"
    scale = (f"fps={face.fps},crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0,"
             f"scale={width}:{height}:flags={flags},format={pix_fmt}")
    args = [media.FFMPEG, "-v", "error", "-nostdin", "-i", media.tool_path(face.path), "-map", "0:v:0",
            "-vf", scale, "-f", "rawvideo", "-"]
    shape = (height, width, 3) if pix_fmt == "bgr24" else (height * 3 // 2, width)
    frame_bytes = int(np.prod(shape))
    process = media.popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=frame_bytes)
    watchdog = media.Watchdog(process, timeout)
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
        media.stop(process, timeout if finished else 0)
        process.stdout.close()
        drain.join(timeout=5)
        process.stderr.close()
    if watchdog.fired:
        raise MediaToolError(f"Decoding '{face.path.name}' stalled for more than {timeout:.0f} s and was stopped.")
    if process.returncode != 0:
        raise FaceError(f"'{face.path.name}' could not be decoded: {media.last_line(b''.join(stderr_lines))}")


def check_output(path: str | os.PathLike, inputs: dict[str, str | os.PathLike | None] | None = None) -> Path:
    """The output file, checked before any slow work: not a folder, none of the `inputs` ({what: path}, which it
    would overwrite), named .mp4, in a folder that exists (or is made) and can be written to."""
    path = Path(path)
    for what, given in (inputs or {}).items():
        if given is not None and path.exists() and os.path.samefile(path, given):
            raise OutputError(f"The output '{path.name}' is the {what} itself; give the output another file name.")
    if path.is_dir():
        given = path.name or str(path)  # '.' has no name of its own
        folder = path.resolve().name or str(path.resolve())
        what = f"'{given}' is a folder" if given == folder else f"'{given}' is the folder '{folder}'"
        raise OutputError(f"The output {what}; give a file name, such as '{Path(given, 'out.mp4')}'.")
    if not path.name.lower().endswith(".mp4"):
        raise OutputError(f"The output '{path.name}' must be an .mp4 file; give a name such as '{path.stem}.mp4'.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"The folder for the output '{path.name}' cannot be made: {exc.strerror or exc}.") from exc
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"The output '{path.name}' cannot be written: its folder is read-only.")
    return path


def place_output(encoded: Path, path: str | os.PathLike) -> None:
    """Move the finished MP4 from the work folder to where it was asked for."""
    try:
        shutil.move(encoded, check_output(path))
    except OSError as exc:
        raise OutputError(f"The video could not be written to '{path}': {exc.strerror or exc}.") from exc


class Encoder:
    """One ffmpeg process: raw I420 frames on stdin, the speech file as audio, an H.264/AAC MP4 out.

    With on_segment, the same encode is also cut into MPEG-TS segments (H.264 + AAC, a keyframe at each cut: the
    first FIRST_SEGMENT_SECONDS long, then SEGMENT_SECONDS each) while frames arrive; each closed segment is handed
    to on_segment, in order, from a watcher thread.
    """

    def __init__(self, out_path: Path, width: int, height: int, fps: Fraction, audio_path: Path, timeout: float,
                 on_segment: SegmentFn | None = None):
        self.out_path = out_path
        self.timeout = timeout
        inputs = [media.FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
                  "-r", str(fps), "-i", "-", "-i", media.tool_path(audio_path), "-map", "0:v:0", "-map", "1:a:0"]
        self._segments = None
        if on_segment is None:
            self.process = media.popen([*inputs, *ENCODER_ARGS, media.tool_path(out_path)],
                                       stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            (out_path.parent / SEGMENT_FOLDER).mkdir()
            # One encode, two muxers (tee): the MP4 and the segments. Run in the MP4's folder so the tee
            # specification holds only names we choose (its own escaping rules never meet a user's path).
            outputs = (f"[f=mp4:movflags=+faststart]file:{_tee_escape(out_path.name)}|"
                       f"[f=segment:segment_format=mpegts:segment_time={SEGMENT_SECONDS}:"
                       f"segment_time_delta={SEGMENT_SECONDS - FIRST_SEGMENT_SECONDS}:"
                       f"segment_list={SEGMENT_FOLDER}/{SEGMENT_LIST}:segment_list_type=flat]"
                       f"{SEGMENT_FOLDER}/segment%05d.ts")
            # A keyframe at each cut, and the segment muxer cuts at the first keyframe within segment_time_delta
            # of its next multiple of segment_time, so at these and never at one x264 adds on a scene change.
            # Audio strictly interleaved with the video (no read-ahead): each segment carries its own audio.
            cuts = f"{FIRST_SEGMENT_SECONDS}+(n_forced-1)*{SEGMENT_SECONDS}"
            self.process = media.popen([*inputs, *CODEC_ARGS, "-force_key_frames", f"expr:gte(t,{cuts})",
                                        "-max_interleave_delta", "0", "-f", "tee", outputs],
                                       stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=out_path.parent)
            self._segments = _SegmentWatcher(out_path.parent / SEGMENT_FOLDER, on_segment)
        self._watchdog = media.Watchdog(self.process, timeout)
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True)
        self._drain.start()

    def _failed(self) -> MediaToolError:
        """The error for an encoder that has stopped (or is stopped now): stalled, or ffmpeg's own last line."""
        ended = media.stop(self.process, self.timeout)
        self._watchdog.stop()
        if not ended:
            return MediaToolError(f"Encoding the video took longer than {self.timeout:.0f} s and was stopped.")
        self._drain.join(timeout=5)
        if self._watchdog.fired:
            return MediaToolError(f"Encoding the video stalled for more than {self.timeout:.0f} s and was stopped.")
        return MediaToolError(f"Encoding the video failed: {media.last_line(b''.join(self._stderr))}")

    def write(self, frame: np.ndarray) -> None:
        if self._segments is not None and self._segments.error is not None:
            raise self._segments.error  # on_segment failed: the request stops
        try:
            with self._watchdog.waiting():
                self.process.stdin.write(np.ascontiguousarray(frame).data)
        except (BrokenPipeError, ValueError) as exc:  # ValueError: the pipe was closed under us
            raise self._failed() from exc

    def finish(self) -> None:
        """Close the input, wait for the encode; with segments, hand over the last ones before returning."""
        try:
            with self._watchdog.waiting():
                self.process.stdin.close()  # flushes what is buffered
        except BrokenPipeError:
            pass  # ffmpeg has already stopped: its return code tells why
        ended = media.stop(self.process, self.timeout)
        self._watchdog.stop()
        if not ended:
            raise MediaToolError(f"Encoding the video took longer than {self.timeout:.0f} s and was stopped.")
        self._drain.join(timeout=5)
        if self.process.returncode != 0:
            raise self._failed()
        if self._segments is not None:
            self._segments.finish()

    def abort(self) -> None:
        self._watchdog.stop()
        media.stop(self.process, 0)
        self._drain.join(timeout=5)
        if self._segments is not None:
            self._segments.stop()
        for stream in (self.process.stdin, self.process.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


def _tee_escape(name: str) -> str:
    """A file name as one literal token of the tee muxer's specification."""
    return "".join("\\" + char if char.isascii() and not (char.isalnum() or char in "._-") else char for char in name)


class _SegmentWatcher:
    """Follows the segment muxer's list file from a thread and calls on_segment with each segment it names:
    a segment is listed only once it is closed, so the callback always gets a complete file."""

    def __init__(self, folder: Path, on_segment: SegmentFn):
        self.folder = folder
        self.on_segment = on_segment
        self.error: BaseException | None = None
        self._delivered = 0
        self._done = threading.Event()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lipsync-segments", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(SEGMENT_POLL_SECONDS):
            self._deliver()
        self._deliver()  # segments closed by the encoder's end

    def _deliver(self) -> None:
        try:
            text = (self.folder / SEGMENT_LIST).read_text()
        except FileNotFoundError:
            return
        names = text.split("\n")[:-1]  # a line is complete once its newline is written
        for name in names[self._delivered:]:
            if self.error is not None or self._cancelled.is_set():
                return
            try:
                self.on_segment(self.folder / name)
            except BaseException as exc:  # handed to the encoder's caller
                self.error = exc
                return
            self._delivered += 1

    def finish(self) -> None:
        """After the encoder has exited: deliver the rest, then raise what on_segment raised, if anything."""
        self._done.set()
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """No more callbacks (the request failed)."""
        self._cancelled.set()
        self._done.set()
        self._thread.join()
