"""Running the generator: device, precision and batch size, and a still face's features computed once."""

from __future__ import annotations

import os

import numpy as np
import torch

from . import checkpoints
from .config import LipSyncConfig
from .errors import OptionError
from .model import FACE_SIZE, FixedFace, Wav2Lip

def _one_thread_after_fork() -> None:
    """GNU OpenMP's thread pool does not survive fork(): a forked child (ZeroGPU's GPU worker is one) whose parent
    has run torch on several threads hangs at its first parallel op, so children run torch on one thread."""
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=_one_thread_after_fork)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BATCH = 16
GPU_BATCH_PER_GIB = 4  # frames per GiB of GPU memory, within GPU_BATCH_RANGE
GPU_BATCH_RANGE = (32, 256)


def resolve_device(config: LipSyncConfig) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise OptionError("The device 'cuda' was asked for, but no CUDA GPU is available here; choose the CPU.")
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def cpu_has_native_bf16() -> bool:
    """oneDNN's own answer: bf16 instructions (AVX512-BF16 or AMX), not an emulation that is slower than fp32."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(config: LipSyncConfig, device: str) -> str:
    """auto: fp16 on CUDA, bf16 on a CPU that does it natively, else fp32. A choice the hardware can't do is
    refused rather than run slowly or wrongly."""
    precision = config.precision
    if precision == "auto":
        if device == "cuda":
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device != "cuda":
        raise OptionError("The precision fp16 needs a CUDA GPU; on the CPU choose bf16 (where supported) or fp32.")
    if precision == "bf16":
        if device == "cpu" and not cpu_has_native_bf16():
            raise OptionError("The precision bf16 needs a CPU with native bf16 support (AVX512-BF16 or AMX); "
                              "this one has none, so choose fp32.")
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            raise OptionError("This GPU does not support bf16; choose fp16 or fp32.")
    return precision


def restorer_dtype(config: LipSyncConfig, device: str) -> torch.dtype:
    """GFPGAN runs in bf16 or fp32 only (fp16 overflows in it): bf16 wherever the generator runs reduced."""
    if resolve_precision(config, device) == "fp32":
        return torch.float32
    if device == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float32
    return torch.bfloat16


def batch_size(config: LipSyncConfig, device: str) -> int:
    if config.batch_size:
        return config.batch_size
    if device == "cuda":
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        low, high = GPU_BATCH_RANGE
        return int(min(high, max(low, gib * GPU_BATCH_PER_GIB)))
    return CPU_BATCH


class MouthGenerator:
    """The generator at one device, precision and batch size. For a still face, `fix_faces` computes the face's
    part once (its features and their share of the decoder); every later batch runs only the audio encoder and the
    decoder over its own channels."""

    def __init__(self, model: Wav2Lip, device: str, dtype: torch.dtype, size: int):
        self.model, self.device, self.dtype, self.size = model, device, dtype, size
        self._fixed: FixedFace | None = None

    @classmethod
    def load(cls, config: LipSyncConfig) -> "MouthGenerator":
        device = resolve_device(config)
        dtype = DTYPES[resolve_precision(config, device)]
        model = checkpoints.load_generator(config.checkpoint, device, config.checkpoint_dir, dtype)
        return cls(model, device, dtype, batch_size(config, device))

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.dtype)

    def _face_input(self, crops: np.ndarray) -> torch.Tensor:
        """(N, 96, 96, 3) uint8 BGR crops -> (N, 6, 96, 96): the crop with its lower half zeroed, then the crop."""
        masked = crops.copy()
        masked[:, FACE_SIZE // 2:] = 0  # the model fills in the lower half
        stacked = np.concatenate([masked, crops], axis=3).transpose(0, 3, 1, 2)
        faces = self._to_device(np.ascontiguousarray(stacked)) / 255.0
        return faces.contiguous(memory_format=torch.channels_last)

    def fix_faces(self, crops: list[np.ndarray]) -> None:
        """Encode the crops of one still frame once, and their share of the decoder, for a whole batch of frames."""
        with torch.inference_mode():
            features = self.model.encode_faces(self._face_input(np.stack(crops)))
            self._fixed = self.model.fix_face(features, repeats=-(-self.size // len(crops)))

    def __call__(self, crops: list[np.ndarray], mels: list[np.ndarray]) -> np.ndarray:
        """Mouths for (crop, mel window) pairs: (N, 96, 96, 3) float32 BGR in 0..255. With fixed faces, `crops`
        must follow the fixed pattern (every frame's faces in order), and only its length matters."""
        mel = self._to_device(np.stack(mels)[:, None])
        with torch.inference_mode():
            if self._fixed is not None and len(mels) <= self.size:
                out = self.model.decode_fixed(mel, self._fixed)
            else:
                out = self.model(mel, self._face_input(np.stack(crops)))
        return out.float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
