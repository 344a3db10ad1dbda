"""Wav2Lip lip-sync, in process: `generate(face, out, audio_path=... | text=...)`, or live: `LiveSession(photo)`."""

import os

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning, so on a small CPU the decoder and
# encoder running beside the generator get the cores (the README's performance section has the figure).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import LipSyncConfig  # noqa: E402
from .errors import LipSyncError  # noqa: E402
from .live.session import LiveSession  # noqa: E402
from .pipeline import Result, generate  # noqa: E402

__all__ = ["LipSyncConfig", "LipSyncError", "LiveSession", "Result", "generate"]
