"""What a server of the studio keeps beside its page: the weights it needs, watched until they are all in place,
the speed it has measured, for the estimate shown before a click, and each page's running requests and newest
questions."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator


from lipsync import models
from lipsync.config import CHECKPOINT_NAMES, OUTPUT_SIZES, LipSyncConfig
from lipsync.errors import CheckpointError
from lipsync.media import ffmpeg, video
from lipsync.nets import checkpoints
from lipsync.nets.checkpoints import CheckpointFolder
from lipsync.runtime import resolve

log = logging.getLogger("ui.serving")
WEIGHTS_RETRY_SECONDS = 5
# The checkpoints a request may choose: every Wav2Lip model, the S3FD finder and the enhancer.
OFFERED = (*CHECKPOINT_NAMES, "s3fd", checkpoints.ENHANCER)
SIZE_CLASSES = sorted(OUTPUT_SIZES)  # speed is measured per class of the output's short side


class WeightsWatch:
    """The checkpoints the served settings need, fetched and loaded in the background. While any is missing it is
    looked for again every few seconds, so weights put in place (or a Hub back online) after start-up are used.
    The generator is needed for anything, S3FD for the default finder, the enhancer where faces are enhanced by
    default (on a GPU); whether an optional file is at hand, without fetching it, is `present`."""

    def __init__(self, config: LipSyncConfig):
        self.config = config
        self.folder = CheckpointFolder.of(config.checkpoint_dir)
        enhancer = (checkpoints.ENHANCER,) if resolve(config).enhance else ()
        self.needed = (config.checkpoint, "s3fd", *enhancer)
        self.checked = threading.Event()
        self.missing: dict[str, str] = {}  # checkpoint name -> the library's message

    def start(self) -> None:
        threading.Thread(target=self._watch, name="watch-weights", daemon=True).start()

    def _load(self, name: str) -> None:
        if name == "s3fd":
            models.load_detector("s3fd", self.folder)
        elif name == checkpoints.ENHANCER:
            models.load_enhancer(self.folder, *_enhancer_runtime(self.config))
        else:
            models.load_generator(name, self.folder)

    def _watch(self) -> None:
        while True:
            missing = {}
            for name in self.needed:
                try:
                    self._load(name)
                except CheckpointError as exc:
                    missing[name] = str(exc)
            if missing != self.missing:
                for message in missing.values():
                    log.warning("model weights unavailable: %s", message)
            self.missing = missing
            self.checked.set()
            if not missing:
                return
            time.sleep(WEIGHTS_RETRY_SECONDS)

    def present(self, name: str) -> bool:
        return name not in self.missing and checkpoints.is_present(name, self.folder)

    def absent_for(self, config: LipSyncConfig) -> list[str]:
        """The checkpoints a request with these settings needs that are not at hand."""
        needed = [config.checkpoint]
        if config.detector == "s3fd" and config.box is None:
            needed.append("s3fd")
        if resolve(config).enhance:
            needed.append(checkpoints.ENHANCER)
        return [name for name in needed if not self.present(name)]

    @property
    def absent(self) -> list[str]:
        """Every checkpoint a request may choose that is not at hand (in the folder or the Hub's cache)."""
        return [name for name in OFFERED if not self.present(name)]

    @property
    def blocking(self) -> bool:
        """Whether nothing can be generated: the served model is missing (the Haar finder needs no file)."""
        return self.config.checkpoint in self.missing

    def problem(self) -> str:
        """Every missing file named once, and how to provide them; '' when none is missing."""
        specs = [checkpoints.REGISTRY[name] for name in self.missing]
        folder = self.folder.path
        absent = [spec for spec in specs if folder is None or not (folder / spec.local_name).is_file()]
        broken = [self.missing[spec.name] for spec in specs if spec not in absent]  # there, but not usable
        sentences = []
        if absent:
            files = " and ".join(spec.local_name for spec in absent)
            where = f"not in {folder}" if folder else "they could not be fetched from the Hugging Face Hub"
            sources = "; ".join(f"{spec.repo_id}: {spec.filename}" for spec in absent)
            them = "it" if len(absent) == 1 else "them"
            sentences.append(f"Missing: {files} ({where}). Put {them} in a folder and start the app with "
                             f"--checkpoint-dir FOLDER (from Hugging Face, {sources}).")
        return " ".join(sentences + broken)


def _enhancer_runtime(config: LipSyncConfig) -> tuple[str, object]:
    resolved = resolve(config)
    return resolved.device, resolved.enhancer_dtype


class SpeedLog:
    """Seconds per generated frame on this machine, end to end: a guess at first, then measured from the requests
    served, for each kind of request (device, enhanced or not, still or video, and the class of the frame's size)."""

    assumed = {"cpu": 1 / 25, "cuda": 1 / 150}
    enhanced = {"cpu": 2.0, "cuda": 0.025}  # GFPGAN per frame: 2 CPU cores, one GPU
    video_factor = 1.6  # a video decodes, finds and pastes every frame; a still does most of that once
    start_seconds = 3.0  # speech, detection and the first batch, before the guess has a measurement

    def __init__(self) -> None:
        self._measured: dict[tuple, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def kind(face_path: str | os.PathLike, config: LipSyncConfig) -> tuple:
        resolved = resolve(config)
        still = video.is_still(face_path)
        short = min(_short_side(face_path, still), config.output_size)
        size = next((size for size in SIZE_CLASSES if short <= size), SIZE_CLASSES[-1])
        return resolved.device, resolved.enhance, still, size

    def seconds(self, frames: int, kind: tuple) -> tuple[float, bool]:
        """The expected seconds for this many frames, and whether that comes from measurement."""
        device, enhanced, still, _ = kind
        with self._lock:
            measured = self._measured.get(kind)
        if measured is not None:
            return frames * measured, True
        per_frame = self.assumed[device] * (1.0 if still else self.video_factor)
        return self.start_seconds + frames * (per_frame + (self.enhanced[device] if enhanced else 0.0)), False

    def record(self, kind: tuple, seconds: float, frames: int) -> None:
        per_frame = seconds / max(1, frames)
        with self._lock:
            earlier = self._measured.get(kind)
            self._measured[kind] = per_frame if earlier is None else (earlier + per_frame) / 2


def _short_side(face_path: str | os.PathLike, still: bool) -> int:
    """The face input's short side in pixels, from its header alone; 0 when it cannot be read."""
    if still:
        with video.open_image(face_path) as image:
            return min(image.size)
    info = ffmpeg.probe(face_path, "face video")
    return min(info.video.width, info.video.height) if info is not None and info.video is not None else 0


class PageRequests:
    """The requests each page (a browser tab: Gradio's session) has running: a second click can say that one runs,
    and the page's Stop reaches it, to stop at its next frame."""

    def __init__(self) -> None:
        self._stops: dict[str, list[threading.Event]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def running(self, page: str) -> Iterator[threading.Event]:
        """For the length of a request: the event that says it is to stop."""
        stop = threading.Event()
        with self._lock:
            self._stops.setdefault(page, []).append(stop)
        try:
            yield stop
        finally:
            with self._lock:
                self._stops[page].remove(stop)
                if not self._stops[page]:
                    del self._stops[page]

    def busy(self, page: str) -> bool:
        with self._lock:
            return page in self._stops

    def stop(self, page: str) -> None:
        """Asks every request of the page to stop."""
        with self._lock:
            stops = list(self._stops.get(page, ()))
        for stop in stops:
            stop.set()


class NewestQuestions:
    """For one kind of question each page asks (such as its face preview's), numbered by the page in the order it
    asks them, the newest number: an older question's answer, arriving late, must not replace a newer one's (the
    questions run side by side, so they may be answered in any order). Pages are forgotten past `pages`."""

    def __init__(self, pages: int = 10_000) -> None:
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._pages = pages
        self._lock = threading.Lock()

    def ask(self, page: str, number: int) -> None:
        with self._lock:
            self._newest[page] = max(number, self._newest.get(page, number))
            self._newest.move_to_end(page)
            while len(self._newest) > self._pages:
                self._newest.popitem(last=False)

    def is_newest(self, page: str, number: int) -> bool:
        with self._lock:
            return self._newest.get(page, number) == number
