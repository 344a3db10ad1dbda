"""CPU seconds a request spends outside the model, against the floor any tool must spend on the same clip: decoding
its frames once and encoding them once with our encoder's settings (both by ffmpeg). CPU time counts cycles, not
waiting, so it holds better than wall time on a shared host.

    outside the model = the request's CPU (this process and its ffmpeg children) - the generator's CPU on the same
                        frames, measured alone in the same run
    ratio             = outside the model / the floor's CPU (ffmpeg's, decode + encode; a still's: the encode)"""

from __future__ import annotations

import resource
import subprocess
import time
from typing import Any

import numpy as np

from .. import models, runtime
from ..faces import finding
from ..media import encode, ffmpeg, i420, video
from ..config import LipSyncConfig
from ..pipeline import Result, estimate_frames, generate
from ..speech.audio import MEL_WINDOW, N_MELS
from .measure import Bench, Case

RUNS = 3


def cpu_seconds() -> tuple[float, float]:
    """(this process's CPU seconds, its finished children's), user + system."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def cpu_over_floor(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """RUNS requests of the case, each set against the generator alone on its frames and the floor of its clip."""
    face, speech = bench.inputs.face(case.face), bench.inputs.speech(case.speech)
    config = bench.config(case)
    still = video.is_still(face)
    frames = estimate_frames(face, audio_path=speech, config=config)
    runs = []
    for _ in range(RUNS):
        if case.fresh:
            finding.CACHE.clear()
        # The generator alone just before and just after, averaged: the host's speed drifts over seconds.
        before = _generator_cpu(bench, case, frames, still)
        own, children = cpu_seconds()
        result = generate(face, bench.folder / "floor.mp4", audio_path=speech, config=config)
        own_after, children_after = cpu_seconds()
        request = own_after - own + children_after - children
        model = (before + _generator_cpu(bench, case, result.frames, still)) / 2
        floor = _floor_cpu(face, speech, result, config, bench)
        outside = request - model
        runs.append((outside / floor, 1000 * outside / result.frames, 1000 * floor / result.frames,
                     request, model))
    runs.sort()
    ratio, outside_ms, floor_ms, request, model = runs[len(runs) // 2]
    key = case.key
    figures = {f"{key}_cpu_over_floor": ratio, f"{key}_cpu_over_floor_runs": [round(run[0], 3) for run in runs],
               f"{key}_outside_model_ms_per_frame": outside_ms, f"{key}_floor_ms_per_frame": floor_ms}
    return figures, (f"{ratio:.2f}x the floor (runs {', '.join(f'{run[0]:.2f}' for run in runs)}): "
                     f"{outside_ms:.1f} ms a frame outside the model against {floor_ms:.1f} "
                     f"(request {request:.1f} CPU-s, generator alone {model:.1f})")


def _generator_cpu(bench: Bench, case: Case, frames: int, still: bool) -> float:
    """CPU seconds of the generator alone on `frames` frames of one face, in its own batches: a still's faces
    encoded once, as a request does."""
    runner = models.load_mouth_runner(bench.config(case).checkpoint, runtime.resolve(bench.config(case), still=still))
    crop = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    window = np.zeros((N_MELS, MEL_WINDOW), np.float32)
    started = time.process_time()
    still_mouths = runner.for_still([crop]) if still else None
    for first in range(0, frames, runner.size):
        count = min(runner.size, frames - first)
        if still_mouths is not None:
            still_mouths([window] * count)
        else:
            runner([crop] * count, [window] * count)
    return time.process_time() - started


def _floor_cpu(face, speech, result: Result, config: LipSyncConfig, bench: Bench) -> float:
    """ffmpeg's CPU seconds to decode the clip's frames once (a video's) and encode `frames` of them, with the
    speech, with our encoder's settings; a still's frame is given raw, looped, so only the encode counts."""
    frames, width, height = result.frames, result.width, result.height
    if video.is_still(face):
        source = video.open_face(face, config.output_size, config.max_image_pixels, config.still_fps)
        raw = bench.folder / "still.yuv"
        raw.write_bytes(np.ascontiguousarray(i420.to_i420(source.still)).tobytes())
        frames_in = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-r", "25",
                     "-stream_loop", str(frames - 1), "-i", ffmpeg.tool_path(raw)]
        sized = []
    else:
        frames_in, sized = ["-i", ffmpeg.tool_path(face)], ["-vf", f"scale={width}:{height}"]
    _, children = cpu_seconds()
    subprocess.run([ffmpeg.FFMPEG, "-v", "error", "-nostdin", "-y", *frames_in, "-i", ffmpeg.tool_path(speech),
                    "-map", "0:v:0", "-map", "1:a:0", *sized, "-frames:v", str(frames), *encode.CODEC_ARGS, "-f", "mp4",
                    "/dev/null"], check=True, capture_output=True)
    return cpu_seconds()[1] - children
