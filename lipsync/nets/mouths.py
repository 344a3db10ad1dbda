"""Running the Wav2Lip net on a device: a video's faces batch by batch, or one still's faces computed once."""

from __future__ import annotations

import numpy as np
import torch

from .wav2lip import FACE_SIZE, FixedFace, Wav2Lip


class MouthRunner:
    """The Wav2Lip net at one device, precision and batch size: mouths for (crop, mel window) pairs."""

    def __init__(self, model: Wav2Lip, device: str, dtype: torch.dtype, batch_size: int):
        self.model, self.device, self.dtype, self.size = model, device, dtype, batch_size

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.dtype)

    def face_input(self, crops: list[np.ndarray]) -> torch.Tensor:
        """(N, 96, 96, 3) uint8 BGR crops -> (N, 6, 96, 96): the crop with its lower half zeroed, then the crop."""
        stacked = np.stack(crops)
        masked = stacked.copy()
        masked[:, FACE_SIZE // 2:] = 0  # the model fills in the lower half
        both = np.concatenate([masked, stacked], axis=3).transpose(0, 3, 1, 2)
        faces = self.to_device(np.ascontiguousarray(both)) / 255.0
        return faces.contiguous(memory_format=torch.channels_last)

    def mel_input(self, windows: list[np.ndarray]) -> torch.Tensor:
        return self.to_device(np.stack(windows)[:, None])

    def __call__(self, crops: list[np.ndarray], windows: list[np.ndarray]) -> np.ndarray:
        """Mouths for (crop, mel window) pairs: (N, 96, 96, 3) float32 BGR in 0..255."""
        with torch.inference_mode():
            out = self.model(self.mel_input(windows), self.face_input(crops))
        return to_mouths(out)

    def for_still(self, crops: list[np.ndarray]) -> "StillMouths":
        """A runner for one still frame's faces: their part of the network is computed here, once."""
        return StillMouths(self, crops)


class StillMouths:
    """The mouths of one still frame's faces for any speech: each call runs only the audio encoder and the
    decoder over its own channels. Windows come as every frame's faces in order (faces × frames)."""

    def __init__(self, runner: MouthRunner, crops: list[np.ndarray]):
        self.runner, self.faces = runner, len(crops)
        # A batch holds whole frames, so the fixed faces repeat in step with the windows.
        self.batch = max(1, runner.size // self.faces) * self.faces
        with torch.inference_mode():
            features = runner.model.encode_faces(runner.face_input(crops))
            self.fixed: FixedFace = runner.model.fix_face(features, repeats=self.batch // self.faces)

    def __call__(self, windows: list[np.ndarray]) -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for start in range(0, len(windows), self.batch):
                mel = self.runner.mel_input(windows[start:start + self.batch])
                parts.append(to_mouths(self.runner.model.decode_fixed(mel, self.fixed)))
        return np.concatenate(parts)


def to_mouths(out: torch.Tensor) -> np.ndarray:
    return out.float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
