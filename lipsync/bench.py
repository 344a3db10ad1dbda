"""Benchmark: end-to-end speed against the generator's own speed, memory growth, detection caching.

python -m lipsync.bench [--quick] [--json] [--media DIR] [--checkpoint-dir DIR] [--device cpu|cuda]

Every figure that matters is a ratio of two numbers measured side by side in this one run. Without
--checkpoint-dir it writes random-weight checkpoints of the real architectures (same compute as the real ones).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoints, detect, testing
from .config import LipSyncConfig
from .inference import DTYPES, batch_size, cpu_has_native_bf16, resolve_device, resolve_precision
from .media import FFMPEG, run_tool
from .model import Wav2Lip
from .pipeline import generate
from .video import iter_video_frames, open_face

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = ROOT.parent / "shared" / "media"  # the shared test media, beside a checkout
EXAMPLES = ROOT / "examples"  # in every clone: a portrait and a short recording
PAIRS = 3  # a case with a target is timed in this many (generator, end to end) pairs
VIDEO_FACE_BOX = (250, 520, 190, 440)  # the talking head's face (top, bottom, left, right), for the no-detection case


def model_fps(model: torch.nn.Module, device: str, size: int, batches: int,
              dtype: torch.dtype = torch.float32) -> float:
    """Frames per second of the generator alone, on inputs already in memory, in the model's own dtype."""
    mel = torch.randn(size, 1, 80, 16, device=device, dtype=dtype)
    faces = torch.rand(size, 6, 96, 96, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(mel, faces)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(batches):
            out = model(mel, faces)
        out.float().cpu()
    return size * batches / (time.perf_counter() - started)


def precisions(device: str) -> list[str]:
    """The precisions this hardware runs natively."""
    if device == "cuda":
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return ["fp32"] + (["bf16"] if cpu_has_native_bf16() else [])


def s3fd_ms_per_frame(video: Path, checkpoint_dir: str, device: str, frames: int) -> float:
    """S3FD alone on the sample's frames at the size videos are searched at, in batches as the pipeline does."""
    config = LipSyncConfig(detector="s3fd", checkpoint_dir=checkpoint_dir)
    detector = detect.get_detector(config, device)
    source = open_face(video, config.output_size, config.max_image_pixels, config.still_fps)
    scale = detect.detection_scale(source.width, source.height, False)
    size = (max(2, round(source.width * scale)), max(2, round(source.height * scale)))
    decoded = list(itertools.islice(iter_video_frames(source, *size, config.subprocess_timeout), frames))
    detector.detect(decoded[:detect.DETECT_BATCH])  # warm-up
    started = time.perf_counter()
    for first in range(0, len(decoded), detect.DETECT_BATCH):
        detector.detect(decoded[first:first + detect.DETECT_BATCH])
    return 1000 * (time.perf_counter() - started) / len(decoded)


def scaled_video(video: Path, size: str, folder: Path) -> Path:
    out = folder / f"video_{size.replace(':', 'x')}.mp4"
    run_tool([FFMPEG, "-v", "error", "-y", "-i", str(video), "-vf", f"scale={size}", "-an", "-c:v", "libx264",
              "-preset", "veryfast", "-crf", "18", str(out)], timeout=600, what="Scaling the sample")
    return out


@dataclass(frozen=True)
class Media:
    portrait: Path
    video: Path
    speech: Path  # looped when a case needs more of it


def find_media(folder: Path, work: Path) -> Media:
    """The shared test media when they are there; else the clone's own examples, with a moving video made from the
    portrait (the talking head's size and frame rate, so the same cases run)."""
    if (folder / "talking_head.mp4").is_file():
        return Media(folder / "monalisa.png", folder / "talking_head.mp4", folder / "speech_en.wav")
    print(f"{folder} has no test media: using {EXAMPLES} and a video made from its portrait", file=sys.stderr)
    video = work / "portrait_video.mp4"
    run_tool([FFMPEG, "-v", "error", "-y", "-loop", "1", "-framerate", "25", "-i", str(EXAMPLES / "monalisa.png"),
              "-t", "11", "-vf", "scale=740:1100,crop=704:1046:18+18*sin(t):27+27*cos(t),pad=704:1216:0:85,"
              "format=yuv420p", "-c:v", "libx264", "-preset", "veryfast", str(video)],
             timeout=300, what="Making a video from the portrait")
    return Media(EXAMPLES / "monalisa.png", video, EXAMPLES / "speech.wav")


def speech_clip(media: Media, seconds: float, folder: Path) -> Path:
    out = folder / f"speech_{seconds:g}s.wav"
    run_tool([FFMPEG, "-v", "error", "-y", "-stream_loop", "-1", "-i", str(media.speech), "-t", str(seconds),
              str(out)], timeout=120, what="Cutting the speech sample")
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


def _measure_rss(face_path: str, speech: str, config: LipSyncConfig, out: str, answer) -> None:
    """In a fresh process: load the models, then sample RSS while one video is made."""
    device = resolve_device(config)
    checkpoints.load_generator(config.checkpoint, device, config.checkpoint_dir,
                               DTYPES[resolve_precision(config, device)])
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


def peak_rss_mb(face_path: Path, speech: Path, config: LipSyncConfig) -> float:
    """Peak RSS while making one video, in a fresh process so earlier cases leave nothing behind."""
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as folder:
        worker = context.Process(target=_measure_rss, args=(str(face_path), str(speech), config,
                                                              str(Path(folder) / "out.mp4"), answer))
        worker.start()
        worker.join(timeout=1800)
    if worker.exitcode != 0:
        raise RuntimeError(f"the memory measurement process failed (exit code {worker.exitcode})")
    return answer.get(timeout=5)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores{', native bf16' if cpu_has_native_bf16() else ''})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lipsync.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter clips: about 3 minutes on 2 CPU cores")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--media", type=Path, default=DEFAULT_MEDIA, help="folder with the shared test media (default: ../shared/media, else examples/)")
    parser.add_argument("--checkpoint-dir", help="real checkpoints (default: random weights, written to a temp dir)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--detector", choices=("haar", "s3fd"), default="haar",
                        help="face finder of the end-to-end cases (s3fd times random weights: a GPU case)")
    parser.add_argument("--no-align", dest="align_roll", action="store_false",
                        help="skip the eye-line check (it needs OpenCV 4's cascades)")
    args = parser.parse_args(argv)

    seconds = 5.0 if args.quick else 10.0
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as tmp:
        folder = Path(tmp)
        ckpt = args.checkpoint_dir or str(testing.write_random_checkpoints(folder / "checkpoints"))
        if not args.checkpoint_dir:
            testing.write_random_restorer(ckpt)
        # Restoration off unless a case turns it on, so every ratio compares the same work.
        base = LipSyncConfig(detector=args.detector, align_roll=args.align_roll, keep_silence=False,
                             checkpoint_dir=ckpt, device=args.device, enhance="none")
        device = resolve_device(base)
        precision = resolve_precision(base, device)
        size = batch_size(base, device)
        media = find_media(args.media, folder)
        portrait, video = media.portrait, media.video
        speech = speech_clip(media, seconds, folder)
        rows: list[tuple[str, str]] = []

        def show(name: str, value: str) -> None:
            """Keep the row for the table, and print it now: a run cut short still shows what it measured."""
            rows.append((name, value))
            print(f"{name}: {value}", flush=True)

        figures: dict[str, float | int | str] = {"device": device, "device_name": device_name(device),
                                                 "batch_size": size, "precision": precision,
                                                 "speech_seconds": seconds}
        batches = 4 if args.quick else 8

        plain = Wav2Lip().to(device).eval()
        plain.load_state_dict(checkpoints.wav2lip_state_dict(Path(ckpt) / "wav2lip_gan.pth"))
        figures["plain_model_fps"] = model_fps(plain, device, size, batches)
        show("generator alone, plain fp32", f"{figures['plain_model_fps']:.1f} frames/s")
        for name in precisions(device):
            fast = checkpoints.load_generator(base.checkpoint, device, ckpt, DTYPES[name])
            figures[f"model_fps_{name}"] = model_fps(fast, device, size, batches, DTYPES[name])
            show(f"generator alone, folded BN + channels_last, {name}",
                 f"{figures[f'model_fps_{name}']:.1f} frames/s")
        figures["model_fps"] = figures[f"model_fps_{precision}"]

        generator = checkpoints.load_generator(base.checkpoint, device, ckpt, DTYPES[precision])
        generator_runs = [figures["model_fps"]]

        def case(key: str, label: str, face_path: Path, config: LipSyncConfig, paired: bool = False,
                 fresh: bool = False) -> None:
            """paired (the cases with a target): timed PAIRS times, each beside a fresh measure of the generator, and
            the median pair counted; a shared machine's speed drifts over seconds, and a ratio of two numbers taken
            far apart would measure the drift; the other cases are set against the median of every measure of the
            generator so far. fresh: each time with no detections cached, as a first request."""
            pairs = []
            for _ in range(PAIRS if paired else 1):
                if paired:
                    generator_runs.append(model_fps(generator, device, size, batches, DTYPES[precision]))
                if fresh:
                    detect.clear_cache()
                model = generator_runs[-1] if paired else statistics.median(generator_runs)
                pairs.append((model, end_to_end_fps(face_path, speech, config, folder)[0]))
            ratios = [fps / model for model, fps in pairs]
            model, fps = sorted(pairs, key=lambda pair: pair[1] / pair[0])[len(pairs) // 2]
            figures[f"{key}_fps"], figures[f"{key}_vs_model"] = fps, fps / model
            shown = f"{fps:.1f} frames/s = {fps / model:.2f}x generator ({precision})"
            if paired:
                figures[f"{key}_vs_model_pairs"] = [round(ratio, 3) for ratio in ratios]
                shown += (f", median of {PAIRS} pairs ({', '.join(f'{ratio:.2f}x' for ratio in ratios)}; "
                          f"the generator {model:.1f} frames/s beside it)")
            show(label, shown)

        end_to_end_fps(portrait, speech, base, folder)  # warm caches (detector, mel basis) before timing
        passes = detect.cache_info().misses
        case("still", f"still portrait + {seconds:g} s speech, end to end", portrait, base, paired=True)
        figures["detections_second_call"] = detect.cache_info().misses - passes
        show("detection passes on the repeated requests", str(figures["detections_second_call"]))
        if device == "cpu" and precision != "fp32":
            case("still_fp32", f"  the same in fp32 (vs the {precision} generator)", portrait,
                 base.replace(precision="fp32"))

        tall = scaled_video(video, "1080:1920", folder)
        finder = {"haar": "Haar", "s3fd": "S3FD"}[args.detector]
        case("video", f"704x1216 video + {seconds:g} s speech ({finder}, first request)", video, base, paired=True,
             fresh=True)
        cases = [("video_repeat", f"{finder}, same video again: detection cached", video, base),
                 ("video_box", "fixed --box, no detection", video, base.replace(box=VIDEO_FACE_BOX)),
                 ("video_1080x1920", f"1080x1920 (the sample scaled), {finder}", tall, base)]
        for key, label, face_path, config in cases:
            width_height = "1080x1920" if face_path == tall else "704x1216"
            case(key, f"{width_height} video + {seconds:g} s speech ({label})", face_path, config)

        for key, face_path, label in (("still", portrait, "still portrait"), ("video", video, "704x1216 video")):
            fraction, total = first_segment_fraction(face_path, speech, base, folder)
            figures[f"{key}_first_segment"] = fraction
            show(f"{label} + {seconds:g} s speech: first preview segment ready after",
                 f"{fraction:.0%} of the generation ({fraction * total:.1f} s of {total:.1f} s)")

        if device == "cuda":
            video_720 = scaled_video(video, "720:-2", folder)
            s3fd = base.replace(detector="s3fd")
            end_to_end_fps(video_720, speech_clip(media, 2.0, folder), s3fd, folder)  # warm the detector
            started = time.perf_counter()
            result = generate(video_720, folder / "720.mp4", audio_path=speech_clip(media, 10.0, folder),
                              config=s3fd)
            figures["video_720p_10s_seconds"] = time.perf_counter() - started
            show(f"{result.width}x{result.height} video + 10 s speech, S3FD, end to end",
                 f"{figures['video_720p_10s_seconds']:.2f} s")
            started = time.perf_counter()
            generate(video_720, folder / "720.mp4", audio_path=speech_clip(media, 10.0, folder),
                     config=s3fd.replace(enhance="gfpgan"))
            figures["video_720p_10s_enhanced_seconds"] = time.perf_counter() - started
            show("  the same with enhance gfpgan (the default on CUDA)",
                 f"{figures['video_720p_10s_enhanced_seconds']:.2f} s")
        figures["s3fd_ms_per_frame"] = s3fd_ms_per_frame(video, ckpt, device, 32 if args.quick else 64)
        show("S3FD alone per searched frame (random weights, top-k bounded)",
             f"{figures['s3fd_ms_per_frame']:.1f} ms")

        enhance_speech = speech_clip(media, 1.0 if device == "cpu" else seconds, folder)
        figures["enhance_off_fps"], frames = end_to_end_fps(portrait, enhance_speech, base, folder)
        enhanced = base.replace(enhance="gfpgan")
        end_to_end_fps(portrait, speech_clip(media, 0.2, folder), enhanced, folder)  # load it before timing
        figures["enhance_fps"], _ = end_to_end_fps(portrait, enhance_speech, enhanced, folder)
        figures["enhance_ms_per_frame"] = 1000 / figures["enhance_fps"] - 1000 / figures["enhance_off_fps"]
        show(f"still portrait, {frames} frames, enhance gfpgan / none",
             f"{figures['enhance_fps']:.2f} / {figures['enhance_off_fps']:.1f} frames/s: "
             f"+{figures['enhance_ms_per_frame']:.0f} ms a frame")

        speech_10 = speech_clip(media, 10.0, folder)
        speech_60 = speech_clip(media, 60.0, folder)
        for key, face_path, speech_path in (("rss_10s_mb", portrait, speech_10), ("rss_60s_mb", portrait, speech_60),
                                            ("rss_video_mb", video, speech_10), ("rss_video_1080x1920_mb", tall,
                                                                                 speech_10)):
            figures[key] = peak_rss_mb(face_path, speech_path, base)
        figures["rss_growth"] = figures["rss_60s_mb"] / figures["rss_10s_mb"]
        show("peak RSS while generating, still + 10 s / 60 s speech",
             f"{figures['rss_10s_mb']:.0f} MB / {figures['rss_60s_mb']:.0f} MB = {figures['rss_growth']:.2f}x")
        show("peak RSS, 704x1216 / 1080x1920 video + 10 s speech",
             f"{figures['rss_video_mb']:.0f} MB / {figures['rss_video_1080x1920_mb']:.0f} MB")

    width = max(len(name) for name, _ in rows)
    print(f"device: {figures['device_name']}, {precision}, batch {size}, torch threads {torch.get_num_threads()}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
