"""Command line: python -m lipsync --face FACE (--audio AUDIO | --text TEXT) --out OUT.mp4"""

from __future__ import annotations

import argparse
import sys

from huggingface_hub.utils import logging as hf_logging
from tqdm import tqdm

from . import options

COMMANDS = {  # python -m lipsync COMMAND …: the commands other than making one video
    "batch": "make one video per row of a CSV or JSON Lines list (python -m lipsync batch --help)",
    "score": "score a video's lip sync: LSE-D, LSE-C and the audio offset (python -m lipsync score --help)",
}


def build_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<8} {what}" for name, what in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="python -m lipsync", description="Make a face speak: Wav2Lip lip-sync.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"other commands (python -m lipsync COMMAND --help):\n{commands}")
    parser.add_argument("--face", required=True, help="image (png/jpg/webp/…) or video (mp4/mov/webm/mkv/…)")
    speech = parser.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", help="speech recording (wav/mp3/m4a/ogg/flac) or a video with an audio track")
    speech.add_argument("--text", help="text to speak (the voice: see --voice)")
    parser.add_argument("--lang", default="en", help="language code for --text (default: en)")
    parser.add_argument("--slow", action="store_true", help="speak --text slowly")
    parser.add_argument("--out", required=True, help="output .mp4")
    options.add_flags(parser.add_argument_group("options"))
    options.add_speech_limit(parser, "refuse speech longer than this (default: no limit)")
    return parser


class ProgressBar:
    """One line on a terminal, drawn by tqdm: stage and percentage, redrawn in place when they change; silent when
    stderr is not a terminal, so logs and error output stay one plain line."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        # delay=inf: tqdm draws only when refresh() is called below, never on its own timer.
        self.bar = tqdm(total=100, file=self.stream, bar_format="[{bar:30}] {percentage:3.0f}% {desc}", ascii=".#",
                        disable=not self.stream.isatty(), delay=float("inf"))
        self.last = None

    def __call__(self, fraction: float, stage: str) -> None:
        percent = int(fraction * 100)
        if self.bar.disable or (percent, stage) == self.last:
            return
        self.last = (percent, stage)
        self.bar.n = percent
        self.bar.set_description_str(f"{stage:<8}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:  # twice is harmless: the bar ends its line once
        self.bar.close()
        if self.last is not None:
            self.stream.write("\n")
            self.last = None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["batch"]:  # python -m lipsync batch JOBS.csv --out-dir DIR …
        from . import batch

        return batch.main(argv[1:])
    if argv[:1] == ["score"]:  # python -m lipsync score VIDEO [--audio AUDIO] [--json] …
        from .scoring import command

        return command.main(argv[1:])
    args = build_parser().parse_args(argv)
    hf_logging.set_verbosity_error()  # its retry chatter; failures come as one line
    bar = ProgressBar()
    return options.run_command(lambda: _make_video(args, bar), before_error=bar.close)


def _make_video(args: argparse.Namespace, bar: ProgressBar) -> int:
    from .pipeline import generate

    config = options.to_config(options.flag_values(args))
    config = config.replace(max_audio_seconds=args.max_seconds)
    result = generate(args.face, args.out, audio_path=args.audio, text=args.text, lang=args.lang,
                      slow=args.slow, config=config, progress=bar)
    bar.close()
    if result.tts_engine:
        why = f" ({result.tts_fallback_reason})" if result.tts_fallback_reason else ""
        print(f"voice: {result.tts_engine}{why}", file=sys.stderr)
    placed = "" if result.landmark_frames is None else f" (faces placed by landmarks in {result.landmark_frames})"
    print(f"{result.path}: {result.duration:.2f} s, {result.frames} frames at {result.fps:.2f} fps{placed}, "
          f"{result.width}x{result.height}, made in {result.seconds:.1f} s")
    if result.score is not None:
        print(f"lip sync: {result.score.summary()}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
