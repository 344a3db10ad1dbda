"""What a request runs on, resolved once from its config: the device, each model's precision, the batch size,
whether landmarks are found, faces enhanced and the result's lip sync scored, and where checkpoints come from.
The only module that asks torch about the hardware."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

import torch

from .config import LANDMARK_MASKS, LipSyncConfig
from .errors import OptionError
from .nets.checkpoints import LANDMARKER, CheckpointFolder, is_present

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BATCH = 16
GPU_BATCH_PER_GIB = 4  # frames per GiB of GPU memory, within GPU_BATCH_RANGE
GPU_BATCH_RANGE = (32, 256)
# Whether score=auto scores, per device: on where scoring costs at most 15 % of the generation as the bench measures
# it. On the CPU it costs more than the generation itself (README, "Lip-sync score"): off. On CUDA it is not
# measured yet: on, expecting SyncNet (far smaller than the generator) to fit; the bench's CUDA run is to confirm it.
AUTO_SCORES = {"cpu": False, "cuda": True}


def _one_thread_after_fork() -> None:
    """GNU OpenMP's thread pool does not survive fork(): a forked child (ZeroGPU's GPU worker is one) whose parent
    has run torch on several threads hangs at its first parallel op, so children run torch on one thread."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu" or "cuda"
    precision: str  # the generator's: fp32, bf16 or fp16
    enhancer_dtype: torch.dtype  # GFPGAN: bf16 or fp32 (fp16 overflows in it)
    detector_dtype: torch.dtype  # S3FD
    batch_size: int
    enhance: bool  # whether generated faces are restored with GFPGAN
    landmarks: bool  # whether FAN's 68 points are found on the faces found
    checkpoints: CheckpointFolder
    score: bool = False  # whether the result's lip sync is scored with SyncNet
    score_dtype: torch.dtype = torch.float32  # SyncNet's precision

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.precision]


def cuda_available() -> bool:
    return torch.cuda.is_available()


@cache
def cpu_has_native_bf16() -> bool:
    """oneDNN's own answer: bf16 instructions (AVX512-BF16 or AMX), not an emulation that is slower than fp32."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def native_precisions(device: str) -> list[str]:
    """The precisions this hardware runs natively, full precision first."""
    if device == "cuda":
        return ["fp32", "fp16"] + (["bf16"] if torch.cuda.is_bf16_supported() else [])
    return ["fp32"] + (["bf16"] if cpu_has_native_bf16() else [])


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores{', native bf16' if cpu_has_native_bf16() else ''})"


def resolve(config: LipSyncConfig, still: bool = False) -> Runtime:
    """The runtime of a request; `still`: whether its face is a still image (landmarks' `auto` depends on it)."""
    device = _device(config.device)
    precision = _precision(config.precision, device)
    folder = CheckpointFolder.of(config.checkpoint_dir)
    return Runtime(device, precision, _enhancer_dtype(precision, device), _detector_dtype(config, device),
                   _batch_size(config.batch_size, device), _enhances(config.enhance, device),
                   _finds_landmarks(config, device, folder, still), folder, score=_scores(config.score, device),
                   score_dtype=_score_dtype(config.precision, precision))


def _device(asked: str) -> str:
    if asked == "cuda" and not cuda_available():
        raise OptionError("The device 'cuda' was asked for, but no CUDA GPU is available here; choose the CPU.")
    if asked == "auto":
        return "cuda" if cuda_available() else "cpu"
    return asked


def _precision(asked: str, device: str) -> str:
    """auto: fp16 on CUDA, bf16 on a CPU that does it natively, else fp32. A choice the hardware can't do is
    refused rather than run slowly or wrongly."""
    if asked == "auto":
        if device == "cuda":
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if asked == "fp16" and device != "cuda":
        raise OptionError("The precision fp16 needs a CUDA GPU; on the CPU choose bf16 (where supported) or fp32.")
    if asked == "bf16":
        if device == "cpu" and not cpu_has_native_bf16():
            raise OptionError("The precision bf16 needs a CPU with native bf16 support (AVX512-BF16 or AMX); "
                              "this one has none, so choose fp32.")
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            raise OptionError("This GPU does not support bf16; choose fp16 or fp32.")
    return asked


def _enhancer_dtype(precision: str, device: str) -> torch.dtype:
    """bf16 wherever the generator runs reduced and the hardware has bf16; GFPGAN never runs in fp16."""
    if precision == "fp32" or (device == "cuda" and not torch.cuda.is_bf16_supported()):
        return torch.float32
    return torch.bfloat16


def _detector_dtype(config: LipSyncConfig, device: str) -> torch.dtype:
    """S3FD in bf16 on a CPU that does bf16 natively, unless fp32 is asked for (its boxes stay as placed: a test
    holds them to fp32's); fp32 elsewhere."""
    reduced = config.detector == "s3fd" and device == "cpu" and config.precision in ("auto", "bf16")
    return torch.bfloat16 if reduced and cpu_has_native_bf16() else torch.float32


def _batch_size(asked: int, device: str) -> int:
    if asked:
        return asked
    if device == "cuda":
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        low, high = GPU_BATCH_RANGE
        return int(min(high, max(low, gib * GPU_BATCH_PER_GIB)))
    return CPU_BATCH


def _finds_landmarks(config: LipSyncConfig, device: str, folder: CheckpointFolder, still: bool) -> bool:
    """fan: always (a fixed box, where nothing is found, is refused with it by the config). auto: where a face or
    mouth mask is asked for; else with the S3FD finder (Haar is the no-download choice) when FAN's file is at hand
    without a download, and only where it is cheap beside the rest: a still (one searched frame) or a GPU. On a
    CPU video FAN would cost about a second per face on every second frame, several times the whole generation."""
    if config.landmarks != "auto" or config.box is not None:
        return config.landmarks == "fan"
    if config.mask in LANDMARK_MASKS:
        return True
    return config.detector == "s3fd" and (still or device == "cuda") and is_present(LANDMARKER, folder)


def _enhances(asked: str, device: str) -> bool:
    """auto enhances on CUDA only, where it costs milliseconds rather than seconds a face."""
    return asked == "gfpgan" or (asked == "auto" and device == "cuda")


def _scores(asked: str, device: str) -> bool:
    return asked == "on" or (asked == "auto" and AUTO_SCORES[device])


def _score_dtype(asked: str, precision: str) -> torch.dtype:
    """fp32 unless a reduced precision is asked for by name: on a CPU with native bf16, bf16 moved LSE-D further
    than the scores may move (README, Lip-sync score); CUDA's fp16 and bf16 are not measured yet, so auto stays
    fp32 there too."""
    return torch.float32 if asked == "auto" else DTYPES[precision]
