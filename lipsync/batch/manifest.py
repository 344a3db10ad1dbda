"""The batch runner's manifest: one JSON line per finished row, appended as rows finish, read back to resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LipSyncError
from ..media import ffmpeg
from .jobs import Job, is_url

if TYPE_CHECKING:  # the manifest is read where no model is loaded
    from ..pipeline import Result
    from ..scoring.sync import SyncScore

MANIFEST = "results.jsonl"


def done_record(job: Job, result: Result, seconds: float) -> dict:
    return _record(job, "done", result.frames, round(result.duration, 3), None, seconds, result.score)


def failed_record(job: Job, error: str, seconds: float = 0.0) -> dict:
    """The line of a row that made no video: its own fault, a bug, or its worker lost."""
    return _record(job, "failed", 0, None, error, seconds, None)


def _record(job: Job, status: str, frames: int, duration: float | None, error: str | None, seconds: float,
            score: SyncScore | None) -> dict:
    """The lip-sync columns are empty (null) where no score was asked for or could be made."""
    return {"row": job.row, "face": job.face, "out": job.out, "status": status, "frames": frames,
            "duration": duration, "error": error, "seconds": round(seconds, 2),
            "lse_d": round(score.lse_d, 3) if score else None, "lse_c": round(score.lse_c, 3) if score else None,
            "offset": score.offset if score else None}


def append(out_dir: Path, record: dict) -> None:
    """One line per finished row, on disk before the next row is reported (a kill loses nothing done)."""
    with open(out_dir / MANIFEST, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def read_manifest(out_dir: Path) -> dict[str, dict]:
    """The last line written for each output (a row run again appends a new line)."""
    latest: dict[str, dict] = {}
    try:
        lines = (out_dir / MANIFEST).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return latest
    for line in lines:
        try:
            record = json.loads(line)
            latest[record["out"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by a crash
    return latest


def already_done(job: Job, out_dir: Path, earlier: dict[str, dict]) -> bool:
    duration = expected_duration(job, earlier.get(job.out))
    return duration is not None and output_is_complete(out_dir / job.out, duration)


def expected_duration(job: Job, earlier: dict | None) -> float | None:
    """Seconds the row's video must last: the speech file's length, or for a text row the length recorded when it
    was made (a voice is not known before it speaks)."""
    if job.audio_source is not None and not is_url(job.audio_source):
        info = ffmpeg.probe(job.audio_source, "speech recording")
        if info is None or not info.has_audio:
            return None
        return job.config.capped_speech_seconds(info.audio_duration)
    if earlier is not None and earlier.get("status") == "done" and earlier.get("duration") is not None:
        return float(earlier["duration"])
    return None


def output_is_complete(path: Path, duration: float) -> bool:
    """An MP4 with a video and an audio stream, both as long as the speech (within a frame and AAC padding).
    The video's length is counted from its packets, so a file cut short is caught even with its index intact."""
    if not path.is_file():
        return False
    info = ffmpeg.probe(path, "earlier output")
    if info is None or info.video is None or not info.has_audio or info.video.codec in ffmpeg.IMAGE_CODECS:
        return False
    try:
        counted = ffmpeg.run_tool([ffmpeg.FFPROBE, "-v", "error", "-count_packets", "-select_streams", "v:0",
                                  "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0",
                                  ffmpeg.tool_path(path)], ffmpeg.PROBE_TIMEOUT, "Checking an earlier output")
        packets = int(counted.stdout.decode().strip().split(",")[0])
    except (LipSyncError, ValueError):
        return False
    frame = 1 / float(info.video.fps)
    tolerance = 2 * frame + 0.05  # the frame count is rounded once; compressed speech lengths are approximate
    return abs(packets * frame - duration) <= tolerance and abs(info.audio_duration - duration) <= tolerance
