"""Every knob of a lip-sync run, with its default and its limit, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import OptionError

CHECKPOINT_NAMES = ("wav2lip_gan", "wav2lip")
DETECTORS = ("s3fd", "haar")
SMOOTHING = ("one_euro", "mean", "none")
BLENDS = ("feather", "hard")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# auto: gfpgan on CUDA, none on the CPU (where it costs far more than the mouth itself).
ENHANCERS = ("auto", "none", "gfpgan")
# Output size limits as people name them: the short side in pixels.
OUTPUT_SIZES = (2160, 1440, 1080, 720, 480, 360)
ALL_FACES = -1


@dataclass(frozen=True)
class LipSyncConfig:
    checkpoint: str = "wav2lip_gan"
    # Folder with user-supplied wav2lip_gan.pth / wav2lip.pth / s3fd.pth; None: $LIPSYNC_CHECKPOINT_DIR, then the Hub.
    checkpoint_dir: str | None = None
    detector: str = "s3fd"
    # Fixed face box (top, bottom, left, right) in input pixels; skips detection.
    box: tuple[int, int, int, int] | None = None
    # Extra margin around the detected box: (top, bottom, left, right) pixels.
    pads: tuple[int, int, int, int] = (0, 10, 0, 0)
    smoothing: str = "one_euro"
    # 0 = largest face, then left to right; ALL_FACES syncs every face.
    face_index: int = 0
    blend: str = "feather"
    color_match: bool = True
    keep_silence: bool = True
    align_roll: bool = True
    # The short side of the output at most ("1080p"): inputs within it keep their own size, larger ones are scaled.
    output_size: int = 1080
    still_fps: float = 25.0
    batch_size: int = 0  # 0: chosen for the device
    device: str = "auto"
    # auto: bf16 on a CPU with native bf16, fp16 autocast on CUDA, else fp32.
    precision: str = "auto"
    enhance: str = "auto"
    # Limits for public use. None: speech of any length (the app serves with a limit of its own).
    max_audio_seconds: float | None = None
    max_text_chars: int = 2000
    max_image_pixels: int = 40_000_000
    max_upload_bytes: int = 500 * 1024 * 1024
    subprocess_timeout: float = 600.0

    def __post_init__(self) -> None:
        _one_of("checkpoint", self.checkpoint, CHECKPOINT_NAMES)
        _one_of("detector", self.detector, DETECTORS)
        _one_of("smoothing", self.smoothing, SMOOTHING)
        _one_of("blend", self.blend, BLENDS)
        _one_of("device", self.device, DEVICES)
        _one_of("precision", self.precision, PRECISIONS)
        _one_of("enhance", self.enhance, ENHANCERS)
        if self.box is not None:
            top, bottom, left, right = self.box
            if not (0 <= top < bottom and 0 <= left < right):
                raise OptionError("box must be TOP BOTTOM LEFT RIGHT with top < bottom and left < right")
        if len(self.pads) != 4:
            raise OptionError("pads must be four numbers: TOP BOTTOM LEFT RIGHT")
        if self.face_index < ALL_FACES:
            raise OptionError("face_index must be 0 or more, or -1 for all faces")
        if self.output_size < 96 or self.still_fps <= 0 or self.batch_size < 0:
            raise OptionError("output_size must be at least 96, still_fps positive and batch_size not negative")
        if self.max_audio_seconds is not None and not self.max_audio_seconds > 0:
            raise OptionError("max_audio_seconds must be positive, or None for no limit")

    def capped_speech_seconds(self, seconds: float) -> float:
        """A speech length, no more than the limit: how long a request's video can be."""
        return seconds if self.max_audio_seconds is None else min(seconds, self.max_audio_seconds)

    def replace(self, **changes) -> "LipSyncConfig":
        return dataclasses.replace(self, **changes)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise OptionError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
