"""Command line: python -m lipsync score VIDEO [--audio AUDIO] [--json]: the lip sync of any video, scored with
SyncNet as the lip-sync papers score it."""

from __future__ import annotations

import argparse

from huggingface_hub.utils import logging as hf_logging

from .. import options

SETTINGS = ("checkpoint_dir", "detector", "device", "precision")  # the options that bear on a score


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipsync score",
        description="Score a video's lip sync with SyncNet: LSE-D (lower is better), LSE-C (higher is better) and "
                    "the audio offset in frames at 25 fps (negative: the sound comes late). Prints one line.",
        epilog="SyncNet runs in fp32 unless --precision names bf16 or fp16.")
    parser.add_argument("video", help="the video to score (any frame rate: it is resampled to 25 fps)")
    parser.add_argument("--audio", help="a recording to score the video's frames against (default: its own sound)")
    parser.add_argument("--json", action="store_true",
                        help="also print the scores as one JSON object, on the last line")
    options.add_flags(parser.add_argument_group("options"), SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    hf_logging.set_verbosity_error()  # its retry chatter; failures come as one line
    return options.run_command(lambda: _score(args))


def _score(args: argparse.Namespace) -> int:
    from .clips import score_video

    config = options.to_config(options.flag_values(args, SETTINGS))
    score = score_video(args.video, args.audio, config=config)
    print(score.summary())
    if args.json:
        print(score.to_json())
    return 0
