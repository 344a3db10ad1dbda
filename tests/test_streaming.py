"""The streaming preview: MPEG-TS segments cut from the one encode while frames arrive (a short first one, then
about 2 s each), handed over in order; joined, they play as the whole video with continuous audio, and the final MP4
is unchanged in kind and length."""

import shutil
import subprocess
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import HAAR, PORTRAIT, assert_valid_mp4, cut_speech, probe, run
from lipsync import generate, render
from lipsync.errors import MediaToolError
from lipsync.media import encode, ffmpeg
from lipsync.progress import STAGES, Stage

SECONDS = 5.0
FPS = 25
RATE = 16000  # the speech sample's own rate, kept for the comparison
# Small batches: the generator can run ahead of the encoder by at most a batch plus the queues, so the first segment
# is seen before the last frame is generated on a fast device too.
CONFIG = HAAR.replace(batch_size=8)
# Where the segments should be cut: after a short first one, every SEGMENT_SECONDS (here 1 and 3 s).
CUTS = list(np.arange(encode.FIRST_SEGMENT_SECONDS, SECONDS, encode.SEGMENT_SECONDS))


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """One generation with on_segment; the callback moves each segment out of the work folder (it owns it then)."""
    folder = tmp_path_factory.mktemp("streaming")
    speech = cut_speech(folder / "speech.wav", SECONDS)
    kept = folder / "segments"
    kept.mkdir()
    events: list[tuple] = []  # progress reports and segments, in the order they happened

    def on_segment(path: Path) -> None:
        assert path.is_file() and path.suffix == ".ts"
        events.append(("segment", path.name))
        shutil.move(path, kept / path.name)

    result = generate(PORTRAIT, folder / "out.mp4", audio_path=speech, config=CONFIG,
                      progress=lambda fraction, stage: events.append(("progress", stage, fraction)),
                      on_segment=on_segment)
    events.append(("returned",))
    names = [event[1] for event in events if event[0] == "segment"]
    joined = folder / "joined.ts"
    joined.write_bytes(b"".join((kept / name).read_bytes() for name in names))
    return {"result": result, "events": events, "segments": [kept / name for name in names], "joined": joined,
            "speech": speech}


def video_frames(path: Path) -> list[dict]:
    out = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type",
               "-of", "csv=p=0", str(path)]).stdout.decode()
    return [dict(zip(("key_frame", "pict_type"), line.split(","))) for line in out.split()]


def decoded_audio(path: Path) -> np.ndarray:
    out = run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(RATE),
               "-f", "f32le", "-"]).stdout
    return np.frombuffer(out, np.float32)


def best_lag(reference: np.ndarray, signal: np.ndarray, start: int, length: int, lags: range) -> tuple[int, float]:
    """The shift of `signal` against `reference` that best matches reference[start:start+length], and its
    normalized correlation."""
    window = reference[start:start + length]
    scores = []
    for lag in lags:
        piece = signal[start + lag:start + lag + length]
        scores.append(float(window @ piece) / (np.linalg.norm(window) * np.linalg.norm(piece) + 1e-12))
    best = int(np.argmax(scores))
    return lags[best], scores[best]


def test_segments_arrive_in_order_while_frames_are_still_being_generated(streamed):
    events = streamed["events"]
    names = [event[1] for event in events if event[0] == "segment"]
    assert len(names) == len(CUTS) + 1 == 3
    assert names == sorted(names) and len(set(names)) == len(names)
    first = events.index(("segment", names[0]))
    generating = [i for i, event in enumerate(events) if event[:2] == ("progress", "generate")]
    # More frames were generated after the first segment was handed over ...
    assert first < generating[-1], events
    assert events[generating[-1]][2] >= STAGES[Stage.GENERATE][1] - 1e-9
    # ... and every segment came before generate returned.
    assert events.index(("segment", names[-1])) < events.index(("returned",))


def test_segments_are_cut_on_time_and_start_with_a_keyframe_and_their_audio(streamed):
    counts = []
    for segment in streamed["segments"]:
        info = probe(segment)
        assert info["format"]["format_name"] == "mpegts"
        assert info["video"]["codec_name"] == "h264" and info["video"]["pix_fmt"] == "yuv420p"
        assert info["audio"]["codec_name"] == "aac"
        frames = video_frames(segment)
        assert frames[0] == {"key_frame": "1", "pict_type": "I"}, frames[:2]  # plays on its own
        counts.append(len(frames))
        # The segment's audio spans its own video, at either end to within an AAC frame (1024 samples) and the
        # H.264 reordering delay (2 frames): the muxer cuts both streams at the keyframe's decoding time.
        audio_start, video_start = float(info["audio"]["start_time"]), float(info["video"]["start_time"])
        audio_end = audio_start + float(info["audio"]["duration"])
        tolerance = 1024 / RATE + 2 / FPS + 1e-6
        assert abs(audio_start - video_start) <= tolerance, (audio_start, video_start)
        assert abs(audio_end - (video_start + len(frames) / FPS)) <= tolerance, (audio_end, video_start)
    assert counts == [round((end - start) * FPS) for start, end in zip([0, *CUTS], [*CUTS, SECONDS])] == [25, 50, 50]


def test_joined_segments_play_as_the_whole_video(streamed):
    joined = streamed["joined"]
    decoding = subprocess.run(["ffmpeg", "-v", "error", "-i", str(joined), "-f", "null", "-"], capture_output=True,
                              timeout=120, check=True)
    assert decoding.stderr == b""  # no decoding errors at the joins
    info = probe(joined)
    frames = int(info["video"]["nb_read_frames"])
    assert abs(frames / FPS - SECONDS) <= 1 / FPS + 1e-6, frames
    # Without MP4's edit list, the AAC encoder's priming frame and its padded last frame count too.
    assert abs(float(info["audio"]["duration"]) - SECONDS) <= 2 * 1024 / RATE + 1e-6, info["audio"]["duration"]


def test_joined_audio_is_the_speech_without_gaps_or_repeats(streamed):
    speech = decoded_audio(streamed["speech"])
    joined = decoded_audio(streamed["joined"])
    window = int(0.4 * RATE)
    # Where the speech starts in the joined stream (the AAC encoder's priming comes first).
    offset, score = best_lag(np.pad(speech, (0, RATE)), np.pad(joined, (0, 2 * RATE)), RATE // 2, window,
                             range(0, RATE // 5))
    assert score > 0.95, score
    aligned = joined[offset:offset + len(speech)]
    assert len(aligned) == len(speech)
    # A gap or a repeat anywhere shifts everything after it, and the difference is then of the speech's own size.
    residual = np.sqrt(np.mean((aligned - speech) ** 2)) / np.sqrt(np.mean(speech ** 2))
    assert residual < 0.1, residual
    # Either side of each join, the audio lines up with the speech at exactly the same shift.
    padded = np.pad(joined, (0, 2 * RATE))
    for join in CUTS:
        at = int(join * RATE)
        for start in (at - window, at):
            lag, score = best_lag(speech, padded, start, window, range(offset - 2000, offset + 2000))
            assert (lag, score > 0.95) == (offset, True), (join, start, lag, offset, score)


def test_joined_audio_is_in_step_with_the_video(streamed):
    """The speech's first sample is presented with the first frame (the priming is before both)."""
    info = probe(streamed["joined"])
    speech = decoded_audio(streamed["speech"])
    joined = decoded_audio(streamed["joined"])
    offset, _ = best_lag(np.pad(speech, (0, RATE)), np.pad(joined, (0, 2 * RATE)), RATE // 2, int(0.4 * RATE),
                         range(0, RATE // 5))
    speech_starts = float(info["audio"]["start_time"]) + offset / RATE
    assert abs(speech_starts - float(info["video"]["start_time"])) <= 1 / FPS / 2, (speech_starts, info)


def test_the_final_mp4_is_valid_and_as_long_as_the_stream(streamed):
    result = streamed["result"]
    info = assert_valid_mp4(result.path, SECONDS, fps=FPS)
    assert int(info["video"]["nb_read_frames"]) == int(probe(streamed["joined"])["video"]["nb_read_frames"])


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "no-preview"])
def test_the_model_runs_small_batches_only_until_the_first_segment_is_out(tmp_path, short_speech, monkeypatch,
                                                                           preview):
    calls: list[tuple[int, bool]] = []  # per model call: its windows, and whether a segment was out before it
    segments: list[Path] = []
    add_mouths = render.add_mouths

    def counted(frames, windows, mouths):
        calls.append((len(windows), bool(segments)))
        add_mouths(frames, windows, mouths)

    monkeypatch.setattr(render, "add_mouths", counted)
    generate(PORTRAIT, tmp_path / "out.mp4", audio_path=short_speech, config=HAAR.replace(batch_size=16),
             on_segment=segments.append if preview else None)
    *sizes, last = [size for size, _ in calls]
    assert 0 < last <= 16 and sum(sizes) + last == SECONDS * FPS
    if not preview:
        assert set(sizes) == {16}
        return
    before = [size for size, out in calls[:-1] if not out]
    after = [size for size, out in calls[:-1] if out]
    assert set(before) == {render.PREVIEW_BATCH} and set(after) == {16}
    # The first segment (1 s) is out some 10 frames after its last; the generator may run ahead of the encoder.
    assert len(before) * render.PREVIEW_BATCH < 3 * FPS


# ------------------------------------------------------------------------- the encoder on its own, small frames

def small_frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (96, 64), np.uint8) for _ in range(count)]  # I420 of 64x64


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory) -> Path:
    return cut_speech(tmp_path_factory.mktemp("speech") / "speech.wav", 5.0)


def test_without_on_segment_only_the_mp4_is_written(tmp_path, short_speech):
    encoder = encode.Encoder(tmp_path / "out.mp4", 64, 64, Fraction(FPS), short_speech, timeout=60)
    for frame in small_frames(125):
        encoder.write(frame)
    encoder.finish()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert_valid_mp4(tmp_path / "out.mp4", SECONDS, (64, 64), FPS)


def test_an_odd_output_name_is_kept_literally_with_segments(tmp_path, short_speech):
    name = "a [1]|b:c'd=e,f\\g.mp4"  # the tee muxer's own separators and escapes
    got: list[str] = []
    encoder = encode.Encoder(tmp_path / name, 64, 64, Fraction(FPS), short_speech, timeout=60,
                            on_segment=lambda path: got.append(path.name))
    for frame in small_frames(125):
        encoder.write(frame)
    encoder.finish()
    assert got == ["segment00000.ts", "segment00001.ts", "segment00002.ts"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, encode.SEGMENT_FOLDER])
    assert_valid_mp4(tmp_path / name, SECONDS, (64, 64), FPS)


def test_a_scene_change_keyframe_does_not_cut_a_segment(tmp_path, short_speech):
    rng = np.random.default_rng(1)
    scenes = [rng.integers(0, 256, (96, 64), np.uint8), np.full((96, 64), 200, np.uint8)]
    change = round(2.2 * FPS)  # between the cuts at 1 and 3 s, far enough from the first for x264 to add an IDR
    encoder = encode.Encoder(tmp_path / "out.mp4", 64, 64, Fraction(FPS), short_speech, timeout=60,
                            on_segment=lambda path: shutil.copy(path, tmp_path))
    for index in range(round(SECONDS * FPS)):
        encoder.write(scenes[index >= change])
    encoder.finish()
    frames = [video_frames(tmp_path / f"segment{number:05d}.ts") for number in range(3)]
    assert [len(segment) for segment in frames] == [25, 50, 50]
    assert frames[1][change - 25]["key_frame"] == "1"  # x264 did add one there, inside the second segment


class Refused(Exception):
    pass


def test_an_error_in_on_segment_stops_the_encode_and_is_raised(tmp_path, short_speech):
    calls: list[Path] = []

    def refuse(path: Path) -> None:
        calls.append(path)
        raise Refused("the viewer went away")

    encoder = encode.Encoder(tmp_path / "out.mp4", 64, 64, Fraction(FPS), short_speech, timeout=60,
                            on_segment=refuse)
    with pytest.raises(Refused):
        try:
            for frame in small_frames(125):
                encoder.write(frame)
            encoder.finish()
        except BaseException:
            encoder.abort()
            raise
    assert len(calls) == 1  # no segment after the one that failed


def test_a_stalled_streaming_encoder_is_stopped_and_calls_back_no_more(tmp_path, short_speech, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "FFMPEG", str(fake))
    calls: list[Path] = []
    encoder = encode.Encoder(tmp_path / "out.mp4", 64, 64, Fraction(FPS), short_speech, timeout=1.0,
                            on_segment=calls.append)
    with pytest.raises(MediaToolError, match="Encoding the video stalled for more than 1 s"):
        for frame in small_frames(1000):  # the pipe fills up after a few frames, then the write blocks
            encoder.write(frame)
    encoder.abort()
    assert calls == []
    assert not [thread for thread in threading.enumerate() if thread.name == "lipsync-segments"]


def test_generate_raises_what_on_segment_raised_and_cleans_up(tmp_path, monkeypatch):
    root = tmp_path / "temp-root"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    speech = cut_speech(tmp_path / "speech.wav", 2.0)

    def refuse(path: Path) -> None:
        raise Refused(path.name)

    with pytest.raises(Refused, match="segment00000.ts"):
        generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech, config=CONFIG, on_segment=refuse)
    assert not (tmp_path / "out.mp4").exists()
    assert list(root.iterdir()) == []
