"""Command line: python -m lipsync --face FACE (--audio AUDIO | --text TEXT) --out OUT.mp4"""

from __future__ import annotations

import argparse
import sys

from huggingface_hub.utils import logging as hf_logging
from tqdm import tqdm

from . import options
from .config import (ALL_FACES, BLENDS, CHECKPOINT_NAMES, DETECTORS, DEVICES, ENHANCERS, PRECISIONS, SMOOTHING,
                     LipSyncConfig)
from .errors import LipSyncError, OptionError


def _short_side(text: str) -> int:
    """'1080p', '1080' -> 1080."""
    try:
        return options.short_side(text)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipsync", description="Make a face speak: Wav2Lip lip-sync.")
    parser.add_argument("--face", required=True, help="image (png/jpg/webp/…) or video (mp4/mov/webm/mkv/…)")
    speech = parser.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", help="speech recording (wav/mp3/m4a/ogg/flac) or a video with an audio track")
    speech.add_argument("--text", help="text to speak (gTTS, or espeak-ng when offline)")
    parser.add_argument("--lang", default="en", help="language code for --text (default: en)")
    parser.add_argument("--slow", action="store_true", help="speak --text slowly")
    parser.add_argument("--out", required=True, help="output .mp4")
    defaults = LipSyncConfig()
    parser.add_argument("--checkpoint", choices=CHECKPOINT_NAMES, default=defaults.checkpoint)
    parser.add_argument("--checkpoint-dir", help="folder with wav2lip_gan.pth, wav2lip.pth, s3fd.pth "
                                                 "(default: $LIPSYNC_CHECKPOINT_DIR, else the Hugging Face Hub)")
    parser.add_argument("--detector", choices=DETECTORS, default=defaults.detector)
    parser.add_argument("--box", type=int, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                        help="fixed face box in pixels; skips detection")
    parser.add_argument("--pads", type=int, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                        default=defaults.pads,
                        help=f"margin added to the detected box (default: {options.as_text(defaults.pads)})")
    parser.add_argument("--smoothing", choices=SMOOTHING, default=defaults.smoothing)
    parser.add_argument("--face-index", type=int, default=defaults.face_index,
                        help=f"which face: 0 = largest, then left to right; {ALL_FACES} = all faces")
    parser.add_argument("--blend", choices=BLENDS, default=defaults.blend)
    parser.add_argument("--no-color-match", dest="color_match", action="store_false")
    parser.add_argument("--no-keep-silence", dest="keep_silence", action="store_false",
                        help="animate the mouth during silences too")
    parser.add_argument("--no-align", dest="align_roll", action="store_false", help="do not straighten tilted heads")
    parser.add_argument("--output-size", type=_short_side, default=defaults.output_size, metavar="SIZE",
                        help="short side of the output at most, e.g. 1080p or 720p; smaller inputs keep their size "
                             f"(default: {defaults.output_size}p)")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help="auto: bf16 on a CPU with native bf16, fp16 on CUDA, else fp32")
    parser.add_argument("--enhance", choices=ENHANCERS, default=defaults.enhance,
                        help="restore the generated face with GFPGAN (auto: on CUDA only; slow on a CPU)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--device", choices=DEVICES, default=defaults.device)
    parser.add_argument("--max-seconds", metavar="SECONDS", help="refuse speech longer than this (default: no limit)")
    return parser


class ProgressBar:
    """One line on a terminal, drawn by tqdm: stage and percentage, redrawn in place when they change; silent when
    stderr is not a terminal, so logs and error output stay one plain line."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        # delay=inf: tqdm draws only when refresh() is called below, never on its own timer.
        self.bar = tqdm(total=100, file=stream, bar_format="[{bar:30}] {percentage:3.0f}% {desc}", ascii=".#",
                        disable=not stream.isatty(), delay=float("inf"))
        self.last = None

    def __call__(self, fraction: float, stage: str) -> None:
        percent = int(fraction * 100)
        if self.bar.disable or (percent, stage) == self.last:
            return
        self.last = (percent, stage)
        self.bar.n = percent
        self.bar.set_description_str(f"{stage:<8}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
        if self.last is not None:
            self.stream.write("\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["batch"]:  # python -m lipsync batch JOBS.csv --out-dir DIR …
        from . import batch

        return batch.main(argv[1:])
    args = build_parser().parse_args(argv)
    hf_logging.set_verbosity_error()  # its retry chatter; failures come as one line
    bar = ProgressBar()
    try:
        from .pipeline import generate

        config = options.to_config({name: value for name, value in vars(args).items() if name in options.NAMES})
        config = config.replace(max_audio_seconds=options.speech_limit(args.max_seconds))
        result = generate(args.face, args.out, audio_path=args.audio, text=args.text, lang=args.lang,
                          slow=args.slow, config=config, progress=bar)
    except LipSyncError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bar.close()
        print("error: interrupted", file=sys.stderr)
        return 130
    bar.close()
    if result.tts_fallback_reason:
        print(f"note: gTTS was unavailable ({result.tts_fallback_reason}); used espeak-ng.", file=sys.stderr)
    print(f"{result.path}: {result.duration:.2f} s, {result.frames} frames at {result.fps:.2f} fps, "
          f"{result.width}x{result.height}, made in {result.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
