"""A live session's frames as video: short chunks for a streaming player, or a whole recording spoken into an MP4
through a live session (the Python example of the streaming API)."""

from __future__ import annotations

import os
import shutil
import tempfile
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import LipSyncConfig
from ..errors import LipSyncError
from ..media import encode, ffmpeg, i420, output
from ..pipeline import work_dir
from ..speech import audio
from .session import LiveFrame, LiveSession, LiveStats

CHUNK_PREFIX = "lipsync-live-"
# By the chunk's container: MPEG-TS with AAC plays anywhere; an MP4 with ALAC gives a player that decodes each
# chunk's audio and re-encodes it as one stream (gr.Video's streaming does) exactly the chunk's samples, where AAC
# adds its encoder delay and frame padding to every chunk (README, Live).
CHUNK_AUDIO_ARGS = {".ts": encode.AUDIO_CODEC_ARGS, ".mp4": ["-c:a", "alac"]}
# A few frames at a time: no lookahead or B-frames to fill, and one thread (several cost more to start than they save).
CHUNK_VIDEO_ARGS = [*encode.VIDEO_CODEC_ARGS, "-tune", "zerolatency", "-threads", "1"]
CHUNK_FORMATS = {".ts": "mpegts", ".mp4": "mp4"}


def write_wav(path: Path, samples: np.ndarray) -> None:
    """16-bit mono PCM at SAMPLE_RATE."""
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(audio.SAMPLE_RATE)
        writer.writeframes((np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2").tobytes())


def encode_chunk(frames: Sequence[LiveFrame], out_path: str | os.PathLike, fps: float,
                 timeout: float = 60.0) -> Path:
    """The frames and their speech as one short H.264 video with its audio (see CHUNK_AUDIO_ARGS), each chunk
    playable on its own: MPEG-TS for a .ts path, MP4 for a .mp4 one."""
    out_path = Path(out_path)
    if out_path.suffix not in CHUNK_FORMATS:
        raise LipSyncError(f"A live chunk is written as .ts or .mp4, not '{out_path.suffix or out_path.name}'.")
    if not frames:
        raise LipSyncError("A live chunk needs at least one frame.")
    width, height = i420.frame_size(frames[0].picture)
    work = Path(tempfile.mkdtemp(prefix=CHUNK_PREFIX))
    try:
        pictures, sound = work / "frames.yuv", work / "speech.wav"
        with open(pictures, "wb") as raw:
            for frame in frames:
                raw.write(np.ascontiguousarray(frame.picture).data)
        write_wav(sound, np.concatenate([frame.audio for frame in frames]))
        ffmpeg.run_tool([ffmpeg.FFMPEG, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p",
                        "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", ffmpeg.tool_path(pictures),
                        "-i", ffmpeg.tool_path(sound), "-map", "0:v:0", "-map", "1:a:0", *CHUNK_VIDEO_ARGS,
                        *CHUNK_AUDIO_ARGS[out_path.suffix], "-f", CHUNK_FORMATS[out_path.suffix],
                        ffmpeg.tool_path(out_path)], timeout, "Encoding a live chunk")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_path


def speak_file(photo: str | os.PathLike, speech: str | os.PathLike, out_path: str | os.PathLike,
               config: LipSyncConfig = LipSyncConfig(), chunk_seconds: float = 0.2) -> LiveStats:
    """The streaming API fed from a recording: `speech` cut into chunks of chunk_seconds and fed to a live
    session on `photo`, every frame written to the MP4 `out_path` as it comes. Returns the session's timings."""
    out_path = output.check_output(out_path, {"photo": photo, "speech recording": speech})
    session = LiveSession(photo, config)
    with work_dir() as work:
        decoded = audio.load_speech(speech, work, config.max_audio_seconds)
        samples = decoded.samples
        encoded = work / "live.mp4"
        # The recording itself as the soundtrack, as lipsync.generate does.
        encoder = encode.Encoder(encoded, session.width, session.height, session.fps, decoded.mux_path,
                                config.subprocess_timeout)
        try:
            step = max(1, round(chunk_seconds * audio.SAMPLE_RATE))
            for start in range(0, len(samples), step):
                for frame in session.feed(samples[start:start + step]):
                    encoder.write(frame.picture)
            for frame in session.finish():
                encoder.write(frame.picture)
            encoder.finish()
        except BaseException:
            encoder.abort()
            raise
        output.place_output(encoded, out_path)
    return session.stats

