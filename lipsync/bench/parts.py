"""The bench's measures of the parts that came with landmarks, the lip-sync score and live mode: FAN per face, the
scorer per scored frame and as a share of a generation, and a live session fed in real time."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from .. import models, runtime
from ..faces import landmarks
from ..live.session import LiveSession, feed_in_real_time
from ..pipeline import find_faces
from ..runtime import DTYPES, native_precisions
from ..scoring import clips
from ..speech.audio import load_speech
from .measure import Bench, Case, one_request

LANDMARK_BATCH = 8  # faces per FAN call, timed
LANDMARK_CALLS = 3
LIVE_CHUNK_SECONDS = 0.2


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
