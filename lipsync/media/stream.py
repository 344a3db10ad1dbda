"""Frames on the move: the face input as a stream of I420 frames, and the bounded queues between the threads
that decode, generate and encode them."""

from __future__ import annotations

import itertools
import queue
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import FaceError
from . import i420, video

STOP = object()  # sent down a queue after the last item
POLL_SECONDS = 0.2  # how often a blocked thread looks whether its partner is still there


class Worker(threading.Thread):
    """A daemon thread whose exception is re-raised in the caller by join_or_raise()."""

    def __init__(self, target: Callable[[], None], name: str | None = None):
        super().__init__(daemon=True, name=name)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def join_or_raise(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def put(channel: queue.Queue, item, consumer_alive: Callable[[], bool]) -> bool:
    """Put without blocking forever: gives up (False) once the consumer is gone."""
    while consumer_alive():
        try:
            channel.put(item, timeout=POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


def get(channel: queue.Queue, producer: Worker):
    """Next item, or STOP once the producer has sent it or has ended; its error is raised here."""
    while True:
        try:
            return channel.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if not producer.is_alive() and channel.empty():
                producer.join_or_raise()
                return STOP


def read_ahead(frames: Iterator[np.ndarray], depth: int, limit: int) -> Iterator[np.ndarray]:
    """The first `limit` of `frames` (a generator, closed afterwards), taken up to `depth` ahead by a thread of
    their own: their decoder works on while the caller works on what it was given."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    running = threading.Event()
    running.set()

    def take() -> None:
        try:
            for frame in itertools.islice(frames, limit):
                if not put(channel, frame, running.is_set):
                    return
        finally:
            frames.close()
        put(channel, STOP, running.is_set)

    taker = Worker(take, "lipsync-read-ahead")
    taker.start()
    try:
        while (frame := get(channel, taker)) is not STOP:
            yield frame
        taker.join_or_raise()
    finally:
        running.clear()  # the caller stopped early: the taker gives up within POLL_SECONDS
        taker.join()


def ping_pong(index: int, count: int) -> int:
    """Frame of a video played forward, then backward, then forward… so a loop never jumps."""
    if count == 1:
        return 0
    period = 2 * (count - 1)
    step = index % period
    return step if step < count else period - step


def source_frames(source: video.FaceInput, n_out: int | None, n_src: int | None, work: Path,
                  timeout: float) -> Iterator[np.ndarray]:
    """I420 source frames for output frames 0..n_out-1: the still repeated (n_out None: for as long as it is
    asked), or the video trimmed or ping-ponged. n_src: the video's frames as detection counted them (up to n_out),
    or None where nothing counted them (a fixed box): a video then found shorter than the speech is decoded a
    second time, to be played backwards."""
    if source.is_still:
        still = i420.to_i420(source.still)
        yield from itertools.repeat(still, *([] if n_out is None else [n_out]))
        return
    assert n_out is not None, "a video's frames are counted by its speech"
    shape = i420.frame_shape(source.width, source.height)
    frame_bytes = shape[0] * shape[1]

    def decode() -> Iterator[np.ndarray]:
        return video.iter_video_frames(source, source.width, source.height, timeout, "yuv420p")

    looping = n_src is not None and n_out > n_src
    spill = open(work / "frames.raw", "w+b") if looping else None  # raw frames, only to play them backwards
    try:
        produced = 0
        last = None
        for frame in decode():
            if produced == n_out:
                break
            if spill:
                spill.write(frame.data)
            yield frame
            last = frame
            produced += 1
        if last is None:
            raise FaceError(f"'{source.path.name}' has no frames.")
        while n_src is not None and produced < min(n_out, n_src):  # the decoder gave fewer than detection counted
            if spill:
                spill.write(last.data)
            yield last
            produced += 1
        if produced < n_out and spill is None:  # uncounted, and shorter than the speech
            spill = open(work / "frames.raw", "w+b")
            for frame in itertools.islice(decode(), produced):
                spill.write(frame.data)
        for index in range(produced, n_out):
            spill.seek(ping_pong(index, produced) * frame_bytes)
            yield np.frombuffer(spill.read(frame_bytes), np.uint8).reshape(shape)
    finally:
        if spill:
            spill.close()
