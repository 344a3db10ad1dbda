"""The one H.264 + AAC encode of a request, fed raw I420 frames by a pipe; optionally cut into MPEG-TS segments
for a preview while it is made."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import MediaToolError
from . import ffmpeg

# superfast at CRF 23: about the size and PSNR of veryfast at a lower CRF for less CPU, which on a CPU machine the
# generator shares (README, Performance); and no rate-control lookahead. No threaded lookahead either
# (sync-lookahead=0: the same stream, less delay), so the first preview segment is not held back for it.
VIDEO_CODEC_ARGS = ["-c:v", "libx264", "-preset", "superfast", "-crf", "23", "-x264-params", "sync-lookahead=0",
                    "-pix_fmt", "yuv420p"]
AUDIO_CODEC_ARGS = ["-c:a", "aac", "-b:a", "160k"]
CODEC_ARGS = [*VIDEO_CODEC_ARGS, *AUDIO_CODEC_ARGS]
ENCODER_ARGS = [*CODEC_ARGS, "-movflags", "+faststart"]
SEGMENT_SECONDS = 2
FIRST_SEGMENT_SECONDS = 1  # shorter, so the preview starts sooner; the cuts are then at 1, 3, 5 … s
SEGMENT_FOLDER = "segments"  # beside the MP4
SEGMENT_LIST = "list.txt"  # the segment muxer adds a line here when a segment is closed
SEGMENT_POLL_SECONDS = 0.05
SegmentFn = Callable[[Path], None]  # receives each finished segment of the streaming preview


@dataclass(frozen=True)
class PcmSpeech:
    """Speech for the encoder as it is made: chunks() yields 16-bit mono PCM at `rate` until the speech ends."""
    rate: int
    chunks: Callable[[], Iterator[bytes]]


class Encoder:
    """One ffmpeg process: raw I420 frames on stdin, the speech (a file, or PCM through a second pipe) as audio,
    an H.264/AAC MP4 out.

    With on_segment, the same encode is also cut into MPEG-TS segments (H.264 + AAC, a keyframe at each cut: the
    first FIRST_SEGMENT_SECONDS long, then SEGMENT_SECONDS each) while frames arrive; each closed segment is handed
    to on_segment, in order, from a watcher thread.
    """

    def __init__(self, out_path: Path, width: int, height: int, fps: Fraction, speech: Path | PcmSpeech, timeout: float,
                 on_segment: SegmentFn | None = None):
        self.out_path = out_path
        self.timeout = timeout
        if isinstance(speech, Path):
            audio_in, pcm_pipe = ["-i", ffmpeg.tool_path(speech)], None
        else:
            pcm_pipe = os.pipe()
            audio_in = ["-f", "s16le", "-ar", str(speech.rate), "-ac", "1", "-i", f"pipe:{pcm_pipe[0]}"]
        inputs = [ffmpeg.FFMPEG, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
                  "-r", str(fps), "-i", "-", *audio_in, "-map", "0:v:0", "-map", "1:a:0"]
        self._segments = None
        folder = None
        if on_segment is None:
            args = [*inputs, *ENCODER_ARGS, ffmpeg.tool_path(out_path)]
        else:
            (out_path.parent / SEGMENT_FOLDER).mkdir()
            folder = out_path.parent  # run there, so the tee specification holds only names we choose
            # One encode, two muxers (tee): the MP4 and the segments (the tee's own escaping rules never meet a
            # user's path).
            outputs = (f"[f=mp4:movflags=+faststart]file:{_tee_escape(out_path.name)}|"
                       f"[f=segment:segment_format=mpegts:segment_time={SEGMENT_SECONDS}:"
                       f"segment_time_delta={SEGMENT_SECONDS - FIRST_SEGMENT_SECONDS}:"
                       f"segment_list={SEGMENT_FOLDER}/{SEGMENT_LIST}:segment_list_type=flat]"
                       f"{SEGMENT_FOLDER}/segment%05d.ts")
            # A keyframe at each cut, and the segment muxer cuts at the first keyframe within segment_time_delta
            # of its next multiple of segment_time, so at these and never at one x264 adds on a scene change.
            # Audio strictly interleaved with the video (no read-ahead): each segment carries its own audio.
            cuts = f"{FIRST_SEGMENT_SECONDS}+(n_forced-1)*{SEGMENT_SECONDS}"
            args = [*inputs, *CODEC_ARGS, "-force_key_frames", f"expr:gte(t,{cuts})", "-max_interleave_delta", "0",
                    "-f", "tee", outputs]
        try:
            self.process = ffmpeg.popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder,
                                        pass_fds=pcm_pipe[:1] if pcm_pipe else ())
        except BaseException:
            if pcm_pipe:
                os.close(pcm_pipe[1])
            raise
        finally:
            if pcm_pipe:
                os.close(pcm_pipe[0])  # ffmpeg's end, its own now
        if on_segment is not None:
            self._segments = _SegmentWatcher(out_path.parent / SEGMENT_FOLDER, on_segment)
        self._pcm = None
        if pcm_pipe:
            self._pcm = threading.Thread(target=_feed_pcm, args=(speech.chunks, pcm_pipe[1]), name="lipsync-pcm",
                                         daemon=True)
            self._pcm.start()
        self._watchdog = ffmpeg.Watchdog(self.process, timeout)
        self._stderr: list[bytes] = []
        self._drain = threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True)
        self._drain.start()

    def _failed(self) -> MediaToolError:
        """The error for an encoder that has stopped (or is stopped now): stalled, or ffmpeg's own last line."""
        ended = ffmpeg.stop(self.process, self.timeout)
        self._watchdog.stop()
        if not ended:
            return MediaToolError(f"Encoding the video took longer than {self.timeout:.0f} s and was stopped.")
        self._drain.join(timeout=5)
        if self._watchdog.fired:
            return MediaToolError(f"Encoding the video stalled for more than {self.timeout:.0f} s and was stopped.")
        return MediaToolError(f"Encoding the video failed: {ffmpeg.last_line(b''.join(self._stderr))}")

    @property
    def awaiting_first_segment(self) -> bool:
        """Whether a preview is being cut and none of its segments has been handed over yet."""
        return self._segments is not None and self._segments.handed == 0

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
        ended = ffmpeg.stop(self.process, self.timeout)
        self._watchdog.stop()
        if not ended:
            raise MediaToolError(f"Encoding the video took longer than {self.timeout:.0f} s and was stopped.")
        self._drain.join(timeout=5)
        if self._pcm is not None:
            self._pcm.join(timeout=5)
        if self.process.returncode != 0:
            raise self._failed()
        if self._segments is not None:
            self._segments.finish()

    def abort(self) -> None:
        self._watchdog.stop()
        ffmpeg.stop(self.process, 0)
        self._drain.join(timeout=5)
        if self._segments is not None:
            self._segments.stop()
        for stream in (self.process.stdin, self.process.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


def _feed_pcm(chunks: Callable[[], Iterator[bytes]], fd: int) -> None:
    """The speech's PCM into ffmpeg's second pipe as it is made; closed at its end, or when ffmpeg has gone."""
    with open(fd, "wb", buffering=0) as pipe:
        try:
            for chunk in chunks():
                pipe.write(chunk)
        except (BrokenPipeError, OSError):
            pass  # ffmpeg stopped: the video's own pipe reports why


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
        self.handed = 0  # segments handed to on_segment so far
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
        for name in names[self.handed:]:
            if self.error is not None or self._cancelled.is_set():
                return
            self.handed += 1  # before the call: the render reads it to know a segment is out
            try:
                self.on_segment(self.folder / name)
            except BaseException as exc:  # handed to the encoder's caller
                self.error = exc
                return

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
