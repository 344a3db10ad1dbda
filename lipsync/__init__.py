"""Wav2Lip lip-sync, in process: `generate(face, out, audio_path=... | text=...)`."""

from .config import LipSyncConfig
from .errors import LipSyncError
from .pipeline import Result, generate

__all__ = ["LipSyncConfig", "LipSyncError", "Result", "generate"]
