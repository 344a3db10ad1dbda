"""A whole recording spoken into an MP4 through a live session (the Python example of the streaming API)."""

from __future__ import annotations

import os

from ..config import LipSyncConfig
from ..media import encode, output
from ..pipeline import work_dir
from ..speech import audio
from .session import LiveSession, LiveStats


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

