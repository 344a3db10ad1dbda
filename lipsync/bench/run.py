"""Benchmark: end-to-end speed against the generator's own speed, memory growth, detection caching.

python -m lipsync.bench [--quick] [--json] [--media DIR] [--checkpoint-dir DIR] [--device cpu|cuda]

Every figure that matters is a ratio of two numbers measured side by side in this one run. Without
--checkpoint-dir it writes random-weight checkpoints of the real architectures (same compute as the real ones).
The cases are listed in cases.py, measured by measure.py, on the inputs of inputs.py.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from .. import models, options, runtime
from ..config import LipSyncConfig
from ..errors import LipSyncError
from ..nets import checkpoints
from ..nets.wav2lip import Wav2Lip
from ..runtime import DTYPES, device_name, native_precisions
from . import random_weights
from .cases import DERIVED, cases
from .inputs import EXAMPLES, Inputs, find_media
from .measure import Bench, model_fps, run_case

QUICK_SPEECH_SECONDS, SPEECH_SECONDS = 5.0, 10.0
QUICK_BATCHES, BATCHES = 4, 8  # batches per measure of the generator alone
FLAGS = ("checkpoint_dir", "device", "detector")
# Haar by default: S3FD times random weights, a GPU case. Restoration off unless a case turns it on, so every ratio
# compares the same work.
BASE = LipSyncConfig(detector="haar", keep_silence=False, enhance="none")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipsync.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="shorter clips, for a run in about half the time (README, Performance)")
    parser.add_argument("--json", action="store_true", help="end with one line of JSON")
    parser.add_argument("--media", type=Path, default=EXAMPLES,
                        help="folder with a portrait, a recording and a video (default: examples/; without a video "
                             "one is made from the portrait)")
    # Without --checkpoint-dir: random weights of the real architectures, written to a temp dir.
    options.add_flags(parser, FLAGS, base=BASE)
    parser.add_argument("--no-align", dest="align_roll", action="store_false",
                        help="skip the eye-line check (it needs OpenCV 4's cascades)")
    return parser


class Table:
    """The rows measured so far: each printed as it is measured (a run cut short still shows what it measured),
    all of them again, aligned, at the end."""

    def __init__(self):
        self.rows: list[tuple[str, str]] = []

    def show(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"{name}: {value}", flush=True)

    def print(self) -> None:
        width = max(len(name) for name, _ in self.rows)
        for name, value in self.rows:
            print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.media.is_dir():
        parser.error(f"--media {args.media} is not a folder")
    table = Table()
    with tempfile.TemporaryDirectory(prefix="lipsync-bench-") as tmp:
        folder = Path(tmp)
        try:
            base = options.to_config(options.flag_values(args, FLAGS), BASE).replace(align_roll=args.align_roll)
        except LipSyncError as exc:
            parser.error(str(exc))
        if base.checkpoint_dir is None:
            ckpt = str(random_weights.write_random_checkpoints(folder / "checkpoints"))
            random_weights.write_random_enhancer(ckpt)
            random_weights.write_random_landmarker(ckpt)
            base = base.replace(checkpoint_dir=ckpt)
        resolved = runtime.resolve(base)
        device, precision = resolved.device, resolved.precision
        bench = Bench(base, device, precision, resolved.batch_size, QUICK_BATCHES if args.quick else BATCHES,
                      QUICK_SPEECH_SECONDS if args.quick else SPEECH_SECONDS, args.quick,
                      Inputs(find_media(args.media, folder), folder), folder,
                      models.load_generator(base.checkpoint, resolved.checkpoints, device, resolved.dtype))
        figures = {"device": device, "device_name": device_name(device), "batch_size": bench.batch_size,
                   "precision": precision, "speech_seconds": bench.speech_seconds}
        figures.update(_generators_alone(bench, resolved, table))
        bench.generator_runs.append(figures["model_fps"])
        for case in cases(bench):
            measured, text = run_case(bench, case)
            figures.update(measured)
            table.show(case.label, text)
        for derived in DERIVED:
            value = derived.value(figures)
            if value is not None:  # None: a case it needs did not run (--quick)
                figures[derived.key] = value
                table.show(derived.label, derived.text.format(value))

    print(f"device: {figures['device_name']}, {precision}, batch {bench.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    table.print()
    if args.json:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


def _generators_alone(bench: Bench, resolved: runtime.Runtime, table: Table) -> dict[str, float]:
    """The released generator as is, then folded and channels_last at each precision the hardware runs natively;
    model_fps: the one of the run's precision, which every case is set against."""
    plain = Wav2Lip().to(bench.device).eval()
    plain.load_state_dict(checkpoints.wav2lip_state_dict(checkpoints.checkpoint_file(bench.base.checkpoint,
                                                                             resolved.checkpoints)))
    figures = {"plain_model_fps": model_fps(plain, bench.device, bench.batch_size, bench.batches)}
    table.show("generator alone, plain fp32", f"{figures['plain_model_fps']:.1f} frames/s")
    for name in native_precisions(bench.device):
        fast = models.load_generator(bench.base.checkpoint, resolved.checkpoints, bench.device, DTYPES[name])
        fps = figures[f"model_fps_{name}"] = model_fps(fast, bench.device, bench.batch_size, bench.batches,
                                                        DTYPES[name])
        table.show(f"generator alone, folded BN + channels_last, {name}", f"{fps:.1f} frames/s")
    figures["model_fps"] = figures[f"model_fps_{bench.precision}"]
    return figures

