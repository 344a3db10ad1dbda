"""Frames read ahead on a thread of their own (detection's decode): the same frames in order, as many as asked,
an error raised where they are used, and nothing left running once the reader stops, early or not."""

import threading
from contextlib import closing

import numpy as np
import pytest

from conftest import TALKING_HEAD
from lipsync.media import ffmpeg, stream, video

SMALL = (90, 160)  # the talking head, scaled down: a quick decode


@pytest.fixture
def decoders(monkeypatch):
    """Every ffmpeg process started, to see whether it still runs."""
    started = []
    popen = ffmpeg.popen

    def spied(args, **kwargs):
        started.append(popen(args, **kwargs))
        return started[-1]

    monkeypatch.setattr(ffmpeg, "popen", spied)
    return started


def decode(source):
    return video.iter_video_frames(source, *SMALL, timeout=60)


def readers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("lipsync-read-ahead")]


def test_read_ahead_gives_the_same_frames_in_order_and_stops_at_its_limit(decoders):
    source = video.open_face(TALKING_HEAD, 720, 10**8, 25)
    direct = list(decode(source))
    ahead = list(stream.read_ahead(decode(source), 8, 40))
    assert len(direct) > 40 and len(ahead) == 40
    assert all(np.array_equal(a, b) for a, b in zip(ahead, direct))
    assert len(list(stream.read_ahead(decode(source), 8, len(direct) + 5))) == len(direct)  # a limit past the end
    assert all(process.poll() is not None for process in decoders) and not readers()


def test_a_reader_that_stops_early_stops_the_decoder_and_its_thread(decoders):
    source = video.open_face(TALKING_HEAD, 720, 10**8, 25)
    with closing(stream.read_ahead(decode(source), 4, 10**6)) as frames:
        first = next(frames)
        assert first.shape == (SMALL[1], SMALL[0], 3) and readers()
    assert decoders[-1].poll() is not None and not readers()


def test_an_error_while_reading_ahead_is_raised_to_the_reader():
    def failing():
        yield from (np.zeros(2) for _ in range(3))
        raise OSError("the disk went away")

    got = []
    with pytest.raises(OSError, match="the disk went away"):
        for frame in stream.read_ahead(failing(), 2, 10):
            got.append(frame)
    assert len(got) == 3 and not readers()
