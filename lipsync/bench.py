"""Benchmark: end-to-end speed against the generator's own speed, memory growth, detection caching.

python -m lipsync.bench [--quick] [--json] [--media DIR] [--checkpoint-dir DIR] [--device cpu|cuda]

Every figure that matters is a ratio of two numbers measured side by side in this one run. Without
--checkpoint-dir it writes random-weight checkpoints of the real architectures (same compute as the real ones).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from . import checkpoints, face
from .config import LipSyncConfig
from .media import FFMPEG, run_tool
from .model import Wav2Lip
from .pipeline import batch_size, generate, resolve_device

DEFAULT_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
VIDEO_FACE_BOX = (250, 520, 190, 440)  # the talking head's face (top, bottom, left, right), for the no-detection case


def model_fps(model: torch.nn.Module, device: str, size: int, batches: int) -> float:
    """Frames per second of the generator alone, on inputs already in memory."""
    cuda = device == "cuda"
    mel = torch.randn(size, 1, 80, 16, device=device)
    faces = torch.rand(size, 6, 96, 96, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
        model(mel, faces)  # warm-up
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(batches):
            out = model(mel, faces)
        out.float().cpu()
    return size * batches / (time.perf_counter() - started)


def speech_clip(media: Path, seconds: float, folder: Path) -> Path:
    out = folder / f"speech_{seconds:g}s.wav"
    run_tool([FFMPEG, "-v", "error", "-y", "-t", str(seconds), "-i", str(media / "speech_en.wav"), str(out)],
             timeout=120, what="Cutting the speech sample")
    return out


def end_to_end_fps(face_path: Path, speech: Path, config: LipSyncConfig, folder: Path) -> tuple[float, int]:
    started = time.perf_counter()
    result = generate(face_path, folder / "bench.mp4", audio_path=speech, config=config)
    return result.frames / (time.perf_counter() - started), result.frames


def first_segment_fraction(face_path: Path, speech: Path, config: LipSyncConfig,
                           folder: Path) -> tuple[float, float]:
    """When the streaming preview's first segment was ready, as a fraction of the whole generation; and that whole."""
    first: list[float] = []
    started = time.perf_counter()
    generate(face_path, folder / "bench.mp4", audio_path=speech, config=config,
             on_segment=lambda path: first or first.append(time.perf_counter()))
    total = time.perf_counter() - started
    return (first[0] - started) / total, total


def _current_rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure_rss(face_path: str, speech: str, checkpoint_dir: str, device: str, out: str, answer) -> None:
    """In a fresh process: load the models, then sample RSS while one video is made."""
    config = LipSyncConfig(detector="haar", keep_silence=False, checkpoint_dir=checkpoint_dir, device=device)
    checkpoints.load_generator(config.checkpoint, resolve_device(config), checkpoint_dir)
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


def peak_rss_mb(face_path: Path, speech: Path, checkpoint_dir: str, device: str) -> float:
    """Peak RSS while making one video, in a fresh process so earlier cases leave nothing behind."""
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as folder:
        worker = context.Process(target=_measure_rss, args=(str(face_path), str(speech), checkpoint_dir, device,
                                                              str(Path(folder) / "out.mp4"), answer))
        worker.start()
        worker.join(timeout=1800)
    if worker.exitcode != 0:
        raise RuntimeError(f"the memory measurement process failed (exit code {worker.exitcode})")
    return answer.get(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lipsync.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter clips: about 3 minutes on 2 CPU cores")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA, help="folder with the shared test media")
    parser.add_argument("--checkpoint-dir", help="real checkpoints (default: random weights, written to a temp dir)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)

    seconds = 5.0 if args.quick else 10.0
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as tmp:
        folder = Path(tmp)
        ckpt = args.checkpoint_dir or str(checkpoints.write_random_checkpoints(folder / "checkpoints"))
        base = LipSyncConfig(detector="haar", keep_silence=False, checkpoint_dir=ckpt, device=args.device)
        device = resolve_device(base)
        size = batch_size(base, device)
        portrait, video = args.media / "monalisa.png", args.media / "talking_head.mp4"
        speech = speech_clip(args.media, seconds, folder)
        rows: list[tuple[str, str]] = []
        figures: dict[str, float | int | str] = {"device": device, "batch_size": size, "speech_seconds": seconds}

        fast = checkpoints.load_generator(base.checkpoint, device, ckpt)
        plain = Wav2Lip().to(device).eval()
        plain.load_state_dict(checkpoints.wav2lip_state_dict(Path(ckpt) / "wav2lip_gan.pth"))
        batches = 4 if args.quick else 8
        figures["plain_model_fps"] = model_fps(plain, device, size, batches)
        figures["model_fps"] = model_fps(fast, device, size, batches)
        rows.append(("generator alone, plain fp32", f"{figures['plain_model_fps']:.1f} frames/s"))
        rows.append(("generator alone, folded BN + channels_last", f"{figures['model_fps']:.1f} frames/s"))

        end_to_end_fps(portrait, speech, base, folder)  # warm caches (detector, mel basis) before timing
        passes = face.STATS.passes
        figures["still_fps"], _ = end_to_end_fps(portrait, speech, base, folder)
        figures["detections_second_call"] = face.STATS.passes - passes
        figures["still_vs_model"] = figures["still_fps"] / figures["model_fps"]
        rows.append((f"still portrait + {seconds:g} s speech, end to end",
                     f"{figures['still_fps']:.1f} frames/s = {figures['still_vs_model']:.2f}x generator"))
        rows.append(("detection passes on the repeated request", str(figures["detections_second_call"])))

        video_config = base
        cases = [("video", "Haar, first request", video_config),
                 ("video_repeat", "Haar, same video again: detection cached", video_config),
                 ("video_box", "fixed --box, no detection", video_config.replace(box=VIDEO_FACE_BOX))]
        for key, label, config in cases:
            figures[f"{key}_fps"], _ = end_to_end_fps(video, speech, config, folder)
            figures[f"{key}_vs_model"] = figures[f"{key}_fps"] / figures["model_fps"]
            rows.append((f"704x1216 video + {seconds:g} s speech ({label})",
                         f"{figures[f'{key}_fps']:.1f} frames/s = {figures[f'{key}_vs_model']:.2f}x generator"))

        for key, face_path, label in (("still", portrait, "still portrait"), ("video", video, "704x1216 video")):
            fraction, total = first_segment_fraction(face_path, speech, base, folder)
            figures[f"{key}_first_segment"] = fraction
            rows.append((f"{label} + {seconds:g} s speech: first preview segment ready after",
                         f"{fraction:.0%} of the generation ({fraction * total:.1f} s of {total:.1f} s)"))

        speech_10 = speech_clip(args.media, 10.0, folder)
        speech_60 = speech_clip(args.media, 60.0, folder)
        figures["rss_10s_mb"] = peak_rss_mb(portrait, speech_10, ckpt, device)
        figures["rss_60s_mb"] = peak_rss_mb(portrait, speech_60, ckpt, device)
        figures["rss_growth"] = figures["rss_60s_mb"] / figures["rss_10s_mb"]
        rows.append(("peak RSS while generating, still + 10 s / 60 s speech",
                     f"{figures['rss_10s_mb']:.0f} MB / {figures['rss_60s_mb']:.0f} MB = {figures['rss_growth']:.2f}x"))

    width = max(len(name) for name, _ in rows)
    print(f"device: {device}, batch {size}, torch threads {torch.get_num_threads()}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
