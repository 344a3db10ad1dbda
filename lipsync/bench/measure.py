"""How the benchmark measures: a case record, the kinds of measure a case names (end to end against the generator,
first preview segment, seconds of one request, a part alone, peak memory), and the generator alone."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .. import models, runtime
from ..config import LipSyncConfig
from ..faces import finding
from ..media.video import iter_video_frames, open_face
from ..nets.wav2lip import FACE_SIZE, MEL_BINS, MEL_STEPS
from ..pipeline import Result, find_faces, generate
from ..runtime import DTYPES
from .inputs import Inputs

PAIRS = 3  # a case with a target is timed in this many (generator, end to end) pairs
RSS_TIMEOUT = 1800
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # where `python -m lipsync` finds the package


@dataclass
class Bench:
    """One run's settings and inputs, its generator, and every measure of that generator taken so far."""

    base: LipSyncConfig  # every case's config, before its own changes
    device: str
    precision: str
    batch_size: int
    batches: int  # batches per measure of the generator
    speech_seconds: float  # the run's speech length (shorter with --quick)
    quick: bool
    inputs: Inputs
    folder: Path
    generator: torch.nn.Module
    generator_runs: list[float] = field(default_factory=list)  # frames/s of the generator alone, in order

    def config(self, case: Case) -> LipSyncConfig:
        return self.base.replace(**case.changes)

    def generator_fps(self) -> float:
        return model_fps(self.generator, self.device, self.batch_size, self.batches, DTYPES[self.precision])


Measure = Callable[[Bench, "Case"], tuple[dict[str, Any], str]]  # -> (JSON figures, the table's text)


@dataclass(frozen=True)
class Case:
    """One row of the table. Add a row by adding a Case to bench_cases; a new kind of measure is one function
    (bench, case) -> (figures, text) here."""

    key: str  # the JSON key; an end-to-end case's keys are KEY_fps, KEY_vs_model (and KEY_vs_model_pairs)
    label: str  # the row's name in the table
    measure: Measure
    face: str = "portrait"  # a name Inputs.face knows
    speech: float = 0.0  # seconds of speech
    changes: Mapping[str, Any] = field(default_factory=dict)  # to the run's base config
    target: float | None = None  # the ratio to the generator alone it should reach; then timed in PAIRS pairs
    fresh: bool = False  # each timed request with no detections cached, as a first request
    warm_up: float = 0.0  # seconds of speech of one untimed request first (loads what the config needs)
    detections_key: str | None = None  # JSON key for the detection passes its timed requests made
    frames: int = 0  # a part timed alone: on this many of the face's frames


@dataclass(frozen=True)
class Derived:
    """A figure computed from others once every case has run."""

    key: str
    label: str
    value: Callable[[dict[str, Any]], float | None]
    text: str  # a format for the value, e.g. "{:.2f}x"


def run_case(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """The case's untimed warm-up if it has one, then its measure (and the detection passes when it asks)."""
    if case.warm_up:
        one_request(bench, case, case.warm_up)
    passes = finding.CACHE.misses
    figures, text = case.measure(bench, case)
    if case.detections_key:
        figures[case.detections_key] = finding.CACHE.misses - passes
        text += f"; detection passes on its repeated requests: {figures[case.detections_key]}"
    return figures, text


def one_request(bench: Bench, case: Case, speech: float, segments: list[float] | None = None) -> tuple[float, Result]:
    """One request of the case with `speech` seconds of speech: its seconds and its result. segments: the seconds
    after the start at which each preview segment was ready are appended to it."""
    if case.fresh:
        finding.CACHE.clear()
    on_segment = None if segments is None else lambda path: segments.append(time.perf_counter() - started)
    started = time.perf_counter()
    result = generate(bench.inputs.face(case.face), bench.folder / "bench.mp4",
                      audio_path=bench.inputs.speech(speech), config=bench.config(case), on_segment=on_segment)
    return time.perf_counter() - started, result


# ---------------------------------------------------------------- the kinds of measure

def end_to_end(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """Frames a second end to end, as a ratio to the generator alone. With a target: timed PAIRS times, each against
    the mean of a fresh measure of the generator just before and one just after it, and the median pair counted; a
    shared machine's speed drifts over seconds, and a ratio of two numbers taken far apart would measure the drift.
    Without: set against the median of every measure of the generator so far."""
    paired = case.target is not None
    pairs = []
    for _ in range(PAIRS if paired else 1):
        if paired:
            bench.generator_runs.append(bench.generator_fps())
        seconds, result = one_request(bench, case, case.speech)
        if paired:
            bench.generator_runs.append(bench.generator_fps())
        model = statistics.mean(bench.generator_runs[-2:]) if paired else statistics.median(bench.generator_runs)
        pairs.append((model, result.frames / seconds))
    ratios = [fps / model for model, fps in pairs]
    model, fps = sorted(pairs, key=lambda pair: pair[1] / pair[0])[len(pairs) // 2]
    figures: dict[str, Any] = {f"{case.key}_fps": fps, f"{case.key}_vs_model": fps / model}
    text = f"{fps:.{1 if fps >= 10 else 2}f} frames/s = {fps / model:.2f}x generator ({bench.precision})"
    if paired:
        figures[f"{case.key}_vs_model_pairs"] = [round(ratio, 3) for ratio in ratios]
        text += (f", median of {PAIRS} pairs ({', '.join(f'{ratio:.2f}x' for ratio in ratios)}; "
                 f"the generator {model:.1f} frames/s around it; target {case.target:.2f}x)")
    return figures, text


def first_segment(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """When the streaming preview's first segment was ready, as a fraction of the whole generation: the median of
    PAIRS requests (one request's first second is at the mercy of a shared machine's swings)."""
    runs = []
    for _ in range(PAIRS):
        segments: list[float] = []
        total, _ = one_request(bench, case, case.speech, segments)
        runs.append((segments[0] / total, segments[0], total))
    fraction, first, total = sorted(runs)[len(runs) // 2]
    figures = {case.key: fraction, f"{case.key}_runs": [round(run[0], 3) for run in runs]}
    return figures, (f"{fraction:.0%} of the generation ({first:.1f} s of {total:.1f} s), median of {PAIRS} "
                     f"({', '.join(f'{run[0]:.0%}' for run in runs)})")


def request_seconds(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    seconds, result = one_request(bench, case, case.speech)
    return {case.key: seconds}, f"{seconds:.2f} s ({result.width}x{result.height}, {result.frames} frames)"


def cold_command(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """The command line's whole run in a fresh process (import, model loading, the request, exit) beside one warm
    request of the same in this process, with the face's box given (found first, untimed); PAIRS alternating
    pairs, the median pair counted."""
    face, speech = bench.inputs.face(case.face), bench.inputs.speech(case.speech)
    frame, faces = find_faces(face, bench.config(case))
    x1, y1, x2, y2 = faces[0].bounds(frame.shape[1], frame.shape[0])
    box = (y1, y2, x1, x2)
    warm = dataclasses.replace(case, changes={**case.changes, "box": box})
    out = bench.folder / "cold.mp4"
    command = [sys.executable, "-m", "lipsync", "--face", str(face), "--audio", str(speech), "--out", str(out),
               "--box", *map(str, box), "--checkpoint-dir", str(bench.base.checkpoint_dir),
               "--enhance", bench.base.enhance, "--keep-silence", str(bench.base.keep_silence).lower(),
               "--device", bench.device, "--precision", bench.precision]
    pairs = []
    for _ in range(PAIRS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=PACKAGE_ROOT, timeout=RSS_TIMEOUT)
        cold = time.perf_counter() - started
        pairs.append((cold, one_request(bench, warm, case.speech)[0]))
    cold, warm_seconds = sorted(pairs, key=lambda pair: pair[0] / pair[1])[len(pairs) // 2]
    figures = {f"{case.key}_seconds": cold, f"{case.key}_warm_seconds": warm_seconds,
               f"{case.key}_vs_warm": cold / warm_seconds}
    return figures, (f"{cold:.1f} s, a warm request {warm_seconds:.1f} s beside it ({cold / warm_seconds:.2f}x), "
                     f"median of {PAIRS} pairs")


def detector_alone(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """The config's face detector alone on the face's first frames at the size they are searched at, in batches as
    the pipeline does."""
    config = bench.config(case)
    resolved = runtime.resolve(config)
    detector = models.load_detector(config.detector, resolved.checkpoints, bench.device, resolved.detector_dtype)
    source = open_face(bench.inputs.face(case.face), config.output_size, config.max_image_pixels, config.still_fps)
    scale, size = finding.detection_size(source.width, source.height, False)
    decoded = list(itertools.islice(iter_video_frames(source, *size, config.subprocess_timeout, searched_only=True),
                                    case.frames))
    detector.detect(decoded[:finding.DETECT_BATCH])  # warm-up
    started = time.perf_counter()
    for first in range(0, len(decoded), finding.DETECT_BATCH):
        detector.detect(decoded[first:first + finding.DETECT_BATCH])
    ms = 1000 * (time.perf_counter() - started) / len(decoded)
    return {case.key: ms}, f"{ms:.1f} ms"


def peak_rss(bench: Bench, case: Case) -> tuple[dict[str, Any], str]:
    """Peak RSS while making one video, in a fresh process so earlier cases leave nothing behind."""
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as folder:
        worker = context.Process(target=_measure_rss, args=(
            str(bench.inputs.face(case.face)), str(bench.inputs.speech(case.speech)), bench.config(case),
            str(Path(folder) / "out.mp4"), answer))
        worker.start()
        worker.join(timeout=RSS_TIMEOUT)
    if worker.exitcode != 0:
        raise RuntimeError(f"the memory measurement process failed (exit code {worker.exitcode})")
    mb = answer.get(timeout=5)
    return {case.key: mb}, f"{mb:.0f} MB"


def _current_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure_rss(face_path: str, speech: str, config: LipSyncConfig, out: str, answer) -> None:
    """In a fresh process: load the models, then sample RSS while one video is made."""
    models.load(config)
    peak, running = [_current_rss()], threading.Event()
    running.set()

    def sample() -> None:
        while running.is_set():
            peak[0] = max(peak[0], _current_rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    generate(face_path, out, audio_path=speech, config=config)
    running.clear()
    sampler.join()
    answer.put(peak[0] / 2**20)


# ---------------------------------------------------------------- the generator alone

def model_fps(model: torch.nn.Module, device: str, size: int, batches: int,
              dtype: torch.dtype = torch.float32) -> float:
    """Frames per second of the generator alone, on inputs already in memory, in the model's own dtype."""
    mel = torch.randn(size, 1, MEL_BINS, MEL_STEPS, device=device, dtype=dtype)
    faces = torch.rand(size, 6, FACE_SIZE, FACE_SIZE, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(mel, faces)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(batches):
            out = model(mel, faces)
        out.float().cpu()
    return size * batches / (time.perf_counter() - started)



