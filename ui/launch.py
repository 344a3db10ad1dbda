"""The app's launch options: where it listens, how many requests it takes, its weights and its limits."""

from __future__ import annotations

import argparse
import os

from lipsync import options
from ui import live

# A public server limits the speech's length (the library does not): --max-seconds, or this variable on a Space.
MAX_SECONDS_ENV = "LIPSYNC_MAX_SECONDS"
MAX_SECONDS = 120.0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The launch options, `max_seconds` read as the speech limit (None: no limit)."""
    parser = argparse.ArgumentParser(description="Serve the lip-sync studio.")
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link (Colab)")
    parser.add_argument("--server-name", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on; 0.0.0.0 for every one (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--queue-size", type=int, default=16, help="requests that may wait; more are told it is busy")
    parser.add_argument("--concurrency", type=int, default=2, help="requests generated at the same time")
    options.add_flags(parser, ["checkpoint_dir"])
    options.add_speech_limit(parser, f"longest speech a request may have; 0 for no limit (default: "
                                     f"${MAX_SECONDS_ENV}, else {MAX_SECONDS:g})",
                             default=os.environ.get(MAX_SECONDS_ENV, f"{MAX_SECONDS:g}"))
    parser.add_argument("--live-seconds", type=float, default=live.LIVE_SECONDS,
                        help="the longest one Live session may last, in seconds")
    parser.add_argument("--live-sessions", type=int, default=live.LIVE_SESSIONS,
                        help="Live sessions at the same time; one more is told it waits")
    return parser.parse_args(argv)
