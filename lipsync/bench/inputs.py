"""The benchmark's inputs: a portrait, a video and a speech recording from a media folder (by default the clone's
examples/), speech clips of any length, and the video at other sizes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..media.ffmpeg import FFMPEG, run_tool

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"  # in every clone: a portrait and a short recording
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")
SPEECH_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".ogg")
# The video made from a portrait when the folder has none: the size and frame rate of the shared talking head, the
# face drifting in a small circle so that detection and tracking have work to do.
MADE_VIDEO_SECONDS = 11
MADE_VIDEO_FILTER = ("scale=740:1100,crop=704:1046:18+18*sin(t):27+27*cos(t),pad=704:1216:0:85,"
                     "format=yuv420p")


@dataclass(frozen=True)
class Media:
    portrait: Path
    video: Path
    speech: Path  # looped when a case needs more of it


def find_media(folder: Path, work: Path) -> Media:
    """The folder's first image, video and recording (by name); what it lacks comes from examples/, and without
    a video one is made from the portrait in `work`."""
    portrait = _first(folder, IMAGE_SUFFIXES) or _from_examples(folder, "portrait", IMAGE_SUFFIXES)
    speech = _first(folder, SPEECH_SUFFIXES) or _from_examples(folder, "speech recording", SPEECH_SUFFIXES)
    video = _first(folder, VIDEO_SUFFIXES)
    if video is None:
        print(f"{folder} has no video: using one made from {portrait}", file=sys.stderr)
        video = work / "portrait_video.mp4"
        run_tool([FFMPEG, "-v", "error", "-y", "-loop", "1", "-framerate", "25", "-i", str(portrait),
                  "-t", str(MADE_VIDEO_SECONDS), "-vf", MADE_VIDEO_FILTER, "-c:v", "libx264", "-preset", "veryfast",
                  str(video)], timeout=300, what="Making a video from the portrait")
    return Media(portrait, video, speech)


def _first(folder: Path, suffixes: tuple[str, ...]) -> Path | None:
    if not folder.is_dir():
        return None
    return next((path for path in sorted(folder.iterdir()) if path.suffix.lower() in suffixes), None)


def _from_examples(folder: Path, what: str, suffixes: tuple[str, ...]) -> Path:
    path = _first(EXAMPLES, suffixes)
    print(f"{folder} has no {what}: using {path}", file=sys.stderr)
    return path


def speech_clip(media: Media, seconds: float, folder: Path) -> Path:
    out = folder / f"speech_{seconds:g}s.wav"
    run_tool([FFMPEG, "-v", "error", "-y", "-stream_loop", "-1", "-i", str(media.speech), "-t", str(seconds),
              str(out)], timeout=120, what="Cutting the speech sample")
    return out


def scaled_video(video: Path, size: str, folder: Path) -> Path:
    """The video scaled by ffmpeg's scale filter (`size` such as '1080:1920' or '720:-2')."""
    out = folder / f"video_{size.replace(':', 'x')}.mp4"
    run_tool([FFMPEG, "-v", "error", "-y", "-i", str(video), "-vf", f"scale={size}", "-an", "-c:v", "libx264",
              "-preset", "veryfast", "-crf", "18", str(out)], timeout=600, what="Scaling the sample")
    return out


class Inputs:
    """The run's faces by name ('portrait', 'video' or a name in SCALED) and speech clips by length, each made
    once, when a case first asks for it."""

    SCALED = {"video_1080x1920": "1080:1920", "video_720p": "720:-2"}  # the video at another size

    def __init__(self, media: Media, folder: Path):
        self.media, self.folder = media, folder
        self._made: dict[str | float, Path] = {"portrait": media.portrait, "video": media.video}

    def face(self, name: str) -> Path:
        if name not in self._made:
            self._made[name] = scaled_video(self.media.video, self.SCALED[name], self.folder)
        return self._made[name]

    def speech(self, seconds: float) -> Path:
        if seconds not in self._made:
            self._made[seconds] = speech_clip(self.media, seconds, self.folder)
        return self._made[seconds]
