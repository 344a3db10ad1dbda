"""A photo speaking a text by the natural voice starts on the first sentence: the render follows the speech as
each sentence is made, and the result equals a render of the whole speech as a WAV."""

import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import HAAR, PORTRAIT, SPEECH, SPEECH_ONSET, read_frames
from lipsync import generate, pipeline
from lipsync.errors import AudioError, MediaToolError
from lipsync.speech import audio, piper

FIVE_SENTENCES = ("The lamp was burning again. Nobody had touched it since the morning. We sat by the window and "
                  "waited. The rain came down over the harbour. At last the boat came in.")


def recorded_sentences(count: int, seconds: float) -> list[np.ndarray]:
    """Stretches of the shared recording (a 16-bit WAV, read as it is), standing in for a voice's sentences (a
    voice's own noise differs from run to run)."""
    samples = audio.load_speech(SPEECH, Path(tempfile.gettempdir()), None).samples
    start = int(SPEECH_ONSET * audio.SAMPLE_RATE)
    step = int(seconds * audio.SAMPLE_RATE)
    return [samples[start + i * step:start + (i + 1) * step] for i in range(count)]


def fake_voice(monkeypatch, sentences: list[np.ndarray], seconds_each: float = 0.0, fail_at: int | None = None):
    """piper.speak made to yield these sentences, each after seconds_each of "synthesis"; the time each was done
    is logged."""
    done: list[float] = []

    def speak(text, language, slow):
        def sentences_made():
            for index, samples in enumerate(sentences):
                time.sleep(seconds_each)
                if index == fail_at:
                    raise MediaToolError("espeak-ng stopped on a sentence.")
                done.append(time.perf_counter())
                yield samples
        return sentences_made()

    monkeypatch.setattr(piper, "speak", speak)
    return done


def test_the_first_preview_segment_comes_before_the_last_sentence_is_made(tmp_path, monkeypatch):
    done = fake_voice(monkeypatch, recorded_sentences(5, 2.0), seconds_each=1.5)
    segments: list[float] = []
    result = generate(PORTRAIT, tmp_path / "out.mp4", text=FIVE_SENTENCES, config=HAAR.replace(voice="piper"),
                      on_segment=lambda path: segments.append(time.perf_counter()))
    assert len(done) == 5 and segments
    assert segments[0] < done[-1], f"first segment {segments[0] - done[0]:.2f} s after the first sentence, last " \
                                   f"sentence {done[-1] - done[0]:.2f} s after it"
    assert result.duration == pytest.approx(10.0, abs=0.01) and result.frames == 250


def test_a_growing_speech_gives_the_video_of_the_whole_speech(tmp_path, monkeypatch):
    """Mouths, frames and sound equal a render of the same speech from a WAV (keep_silence off: a growing
    speech's silence threshold is under the loudest sound so far, as live mode's)."""
    sentences = recorded_sentences(3, 1.3)
    fake_voice(monkeypatch, sentences, seconds_each=0.2)
    config = HAAR.replace(voice="piper", keep_silence=False)
    growing = generate(PORTRAIT, tmp_path / "growing.mp4", text="One. Two. Three.", config=config)
    audio.write_wav(sentences, tmp_path / "whole.wav")
    whole = generate(PORTRAIT, tmp_path / "whole.mp4", audio_path=tmp_path / "whole.wav", config=config)
    assert growing.frames == whole.frames == 98
    for made, expected in zip(read_frames(growing.path), read_frames(whole.path), strict=True):
        assert np.array_equal(made, expected)
    heard = [audio.load_speech(result.path, tmp_path, None).samples for result in (growing, whole)]
    assert np.array_equal(*heard)


def test_a_sentence_that_fails_midway_stops_the_request_and_leaves_nothing(tmp_path, monkeypatch):
    fake_voice(monkeypatch, recorded_sentences(4, 1.0), seconds_each=0.1, fail_at=2)
    before = set(threading.enumerate())
    folders = set(Path(tempfile.gettempdir()).glob(f"{pipeline.WORK_DIR_PREFIX}*"))
    with pytest.raises(MediaToolError, match="espeak-ng stopped on a sentence"):
        generate(PORTRAIT, tmp_path / "out.mp4", text=FIVE_SENTENCES, config=HAAR.replace(voice="piper"))
    assert not (tmp_path / "out.mp4").exists()
    assert set(Path(tempfile.gettempdir()).glob(f"{pipeline.WORK_DIR_PREFIX}*")) <= folders
    time.sleep(0.5)
    assert not [thread.name for thread in set(threading.enumerate()) - before if thread.is_alive()]


def test_speech_past_the_limit_is_stopped_with_a_sentence(tmp_path, monkeypatch):
    fake_voice(monkeypatch, recorded_sentences(3, 2.0))
    with pytest.raises(AudioError, match=r"^The speech is longer than the limit of 5 s\. Shorten the text"):
        generate(PORTRAIT, tmp_path / "out.mp4", text=FIVE_SENTENCES,
                 config=HAAR.replace(voice="piper", max_audio_seconds=5.0))
    assert not (tmp_path / "out.mp4").exists()
