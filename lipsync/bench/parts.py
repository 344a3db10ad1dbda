"""The bench's measures of the parts that came with landmarks, the lip-sync score, live mode and the voices: FAN
per face, the scorer per scored frame and as a share of a generation, a live session fed in real time, the natural
voice's real-time factor, and a text's first preview segment by each voice."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .. import models, runtime
from ..faces import landmarks
from ..live.session import LiveSession, feed_in_real_time
from ..errors import TextError
from ..pipeline import find_faces, generate
from ..runtime import DTYPES, native_precisions
from ..scoring import clips
from ..speech import piper
from ..speech.audio import SAMPLE_RATE, load_speech
from ..speech.audio import frame_count as audio_frames
from .measure import Bench, Case, one_request

LANDMARK_BATCH = 8  # faces per FAN call, timed
LANDMARK_CALLS = 3
LIVE_CHUNK_SECONDS = 0.2
VOICE_CALLS = 3  # later calls of the natural voice, timed after the first
# Five sentences, about 12 s of speech: long enough that later sentences are still being made as the video starts.
FIVE_SENTENCES = ("The lamp was burning again when we came home. Nobody had touched it since the morning. We sat "
                  "by the window and waited for the rain to stop. The harbour lights came on one by one. At last "
                  "the boat came in, and everyone ran down to meet it.")


def landmarks_alone(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """FAN alone on the portrait's face crop, per face, at each precision the hardware runs natively."""
    config = bench.config(case)
    resolved = runtime.resolve(config)
    frame, faces = find_faces(bench.inputs.face(case.face), config)
    crops = np.repeat(landmarks.fan_crops(frame, faces[:1]), LANDMARK_BATCH, axis=0)
    figures, texts = {}, []
    for name in native_precisions(bench.device):
        model = models.load_landmarker(resolved.checkpoints, bench.device, DTYPES[name])
        landmarks.heatmaps_of(model, crops)  # warm-up
        started = time.perf_counter()
        for _ in range(LANDMARK_CALLS):
            landmarks.heatmaps_of(model, crops)
        ms = 1000 * (time.perf_counter() - started) / (LANDMARK_CALLS * LANDMARK_BATCH)
        figures[f"{case.key}_{name}"] = ms
        texts.append(f"{name} {ms:.0f} ms")
    return figures, ", ".join(texts)


def scorer_alone(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """SyncNet on a video made for the case, per scored frame (Haar's face track included), at each precision."""
    config = bench.config(case)
    resolved = runtime.resolve(config)
    _, made = one_request(bench, case, case.speech)
    detector = models.load_detector("haar", resolved.checkpoints)
    figures, texts = {}, []
    for name in native_precisions(bench.device):
        model = models.load_syncnet(resolved.checkpoints, bench.device, DTYPES[name])
        started = time.perf_counter()
        score = clips.score_video(made.path, config=config, model=model, detector=detector)
        ms = 1000 * (time.perf_counter() - started) / score.frames
        figures[f"{case.key}_{name}"] = ms
        texts.append(f"{name} {ms:.0f} ms")
    return figures, ", ".join(texts) + " a scored frame"


def score_share(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """What scoring adds to a generation: the same request with score off, then on, as a share of the first (a
    `fresh` case detects in both, so only the scoring differs)."""
    off, _ = one_request(bench, case, case.speech)
    on_case = dataclasses.replace(case, changes={**case.changes, "score": "on"})
    on, result = one_request(bench, on_case, case.speech)
    share = (on - off) / off
    return {case.key: share}, f"+{share:.0%} of the generation ({off:.1f} s -> {on:.1f} s, {result.frames} frames)"


def live_real_time(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """A live session on the portrait fed the speech in 200 ms chunks at the pace it is spoken: the frames a second
    it keeps up, the most it could sustain (the headroom), and the processing time of each chunk."""
    speech = load_speech(bench.inputs.speech(case.speech), bench.folder, None).samples
    session = LiveSession(bench.inputs.face(case.face), bench.config(case))
    run = feed_in_real_time(session, speech, LIVE_CHUNK_SECONDS)
    key = case.key
    figures = {f"{key}_fps": run.sustained_frames_per_second, f"{key}_busy_fps": run.busy_frames_per_second,
               f"{key}_chunk_ms": run.mean_chunk_ms, f"{key}_chunk_ms_p95": run.p95_chunk_ms,
               f"{key}_chunk_ms_max": run.max_chunk_ms, f"{key}_behind_ms": run.most_behind_ms,
               f"{key}_lookahead_ms": session.lookahead_ms}
    return figures, (f"{run.sustained_frames_per_second:.1f} frames/s sustained (target 25; "
                     f"{run.busy_frames_per_second:.1f} while busy), {run.mean_chunk_ms:.0f} ms a 200 ms chunk "
                     f"(95th percentile {run.p95_chunk_ms:.0f}, max {run.max_chunk_ms:.0f}; target 100), "
                     f"{run.most_behind_ms:.0f} ms behind at worst, lookahead {session.lookahead_ms:.1f} ms")


def natural_voice(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """The natural voice's real-time factor on the five sentences (seconds of synthesis per second of speech): the
    process's first call, which loads the voice, apart from the median of the later calls."""
    factors = []
    for _ in range(1 + VOICE_CALLS):
        started = time.perf_counter()
        seconds = sum(len(samples) for samples in piper.speak(FIVE_SENTENCES)) / SAMPLE_RATE
        factors.append((time.perf_counter() - started) / seconds)
    first, later = factors[0], float(np.median(factors[1:]))
    return ({f"{case.key}_rtf_first": first, f"{case.key}_rtf": later},
            f"real-time factor {later:.3f} (first call, loading the voice: {first:.3f}; goal 0.1) on {seconds:.1f} s "
            f"of speech")


def text_first_segment(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """Seconds from the call to the first preview segment for the five sentences on the photo, by the natural voice
    and by Google's where it answers (its voice is made whole before the video starts); the median of three."""
    figures, texts = {}, []
    for voice, name in (("piper", "natural"), ("gtts", "google")):
        runs = []
        try:
            for _ in range(3):
                segments: list[float] = []
                started = time.perf_counter()
                generate(bench.inputs.face(case.face), bench.folder / "text.mp4", text=FIVE_SENTENCES,
                         config=bench.config(case).replace(voice=voice),
                         on_segment=lambda path: segments.append(time.perf_counter() - started))
                runs.append((segments[0], time.perf_counter() - started))
        except TextError:  # Google's service out of reach
            figures[f"{case.key}_{name}_s"] = None
            texts.append(f"{name}: not reachable")
            continue
        first, total = sorted(runs)[1]
        figures[f"{case.key}_{name}_s"] = first
        texts.append(f"{name} {first:.2f} s (of {total:.1f} s)")
    return figures, ", ".join(texts)


def live_socket(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """A live session over its WebSocket on a local server, fed by lipsync.live.client as a microphone would (each
    20 ms once spoken): the samples received of those sent, the frames against the speech's (none dropped or
    doubled), the server's processing per 200 ms of speech, and how long after the speech a frame needs was sent
    it arrived (its mel window's lookahead, the wait for a batch, the work and the network; median and 95th)."""
    from ..live.client import LiveClient
    from ..live.server import LiveSockets, local_server

    speech = load_speech(bench.inputs.speech(case.speech), bench.folder, None).samples
    sockets = LiveSockets(1)
    with local_server(sockets) as url:
        session = LiveSession(bench.inputs.face(case.face), bench.config(case))
        client = LiveClient(url, sockets.open(session), ahead_seconds=0.0)
        arrivals, indices = [], []
        for frame in client.stream([speech], SAMPLE_RATE):
            arrivals.append(time.monotonic())
            indices.append(frame.index)
    summary, key = client.summary, case.key
    in_order = len(indices) == summary.frames and indices == list(range(summary.frames))
    sent_times, sent_counts = zip(*client.sent)
    lags = []
    for index, arrived in zip(indices, arrivals):
        needed = min(int((index + 1) * SAMPLE_RATE / session.fps), sent_counts[-1])
        lags.append(arrived - sent_times[int(np.searchsorted(sent_counts, needed))])
    lag, lag95 = 1000 * float(np.median(lags)), 1000 * float(np.percentile(lags, 95))
    figures = {f"{key}_received_share": summary.received_samples / client.sent_samples,
               f"{key}_frames": summary.frames, f"{key}_frames_expected": audio_frames(summary.seconds, session.fps),
               f"{key}_frames_in_order": in_order, f"{key}_ms_per_200ms": summary.busy_ms_per_200ms,
               f"{key}_frame_lag_ms": lag, f"{key}_frame_lag_ms_p95": lag95}
    return figures, (f"{summary.received_samples} of {client.sent_samples} samples received, {summary.frames} frames "
                     f"for {summary.seconds:.1f} s ({'each once, in order' if in_order else 'NOT each once'}), "
                     f"{summary.busy_ms_per_200ms:.0f} ms of processing per 200 ms of speech (target 100), a frame "
                     f"{lag:.0f} ms after its speech was sent (95th percentile {lag95:.0f})")
