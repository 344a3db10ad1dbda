"""Random-weight checkpoints of the real architectures (Wav2Lip, S3FD, SyncNet, GFPGAN, FAN) in the released files'
formats, for the tests, the bench and anyone trying the tool where the real weights cannot be downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..faces.landmarks import CROP_SIZE
from ..nets import checkpoints
from ..nets.gfpgan import GFPGAN, StyleConv, ToRGB
from ..nets.syncnet import SyncNet, weights_of
from ..nets.wav2lip import Wav2Lip


def _plausible_batch_statistics(model: torch.nn.Module) -> None:
    """Running statistics that are not the identity, so that folding and loading them is exercised."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)


def write_random_checkpoints(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Random-weight checkpoints of the real architectures, in the released files' format, for tests and benchmarks
    where the real weights cannot be downloaded: same compute, garbage mouths."""
    from face_alignment.detection.sfd.net_s3fd import s3fd

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    for name in ("wav2lip_gan", "wav2lip"):
        model = Wav2Lip()
        _plausible_batch_statistics(model)
        weights = {f"module.{key}": value for key, value in model.state_dict().items()}
        torch.save({"state_dict": weights, "optimizer": {"state": {}, "param_groups": []},
                    "global_step": 0, "global_epoch": 0}, folder / f"{name}.pth")
    torch.save(s3fd().state_dict(), folder / "s3fd.pth")
    write_random_syncnet(folder, seed)
    return folder


def write_random_syncnet(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A random-weight syncnet_v2.model in the released format (54 MB), for tests and the bench: same compute,
    scores that mean nothing. Its BatchNorm statistics are measured on random inputs at the real ones' scale
    (smooth pictures in 0–255, MFCC values of about ±10), so activations keep a trained network's scale instead of
    shrinking layer by layer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SyncNet()
    for module in model.modules():
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.momentum = None  # a plain average over the calibration batch
    pictures = torch.rand(8, 3, 5, 14, 14, generator=generator) * 255
    crops = torch.nn.functional.interpolate(pictures, size=(5, 224, 224), mode="trilinear")
    sounds = torch.randn(64, 1, 13, 20, generator=generator) * 10
    with torch.no_grad():
        model.train()
        model.embed_video(crops)
        model.embed_audio(sounds)
    path = folder / checkpoints.REGISTRY[checkpoints.SCORER].local_name
    torch.save(weights_of(model), path)
    return path


def write_random_enhancer(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A random-weight GFPGAN v1.4 checkpoint in the released format (~345 MB): same compute, a smeared face out.
    The noise strengths are made non-zero so that the stored noise buffers take part, and the RGB projections
    small so that the summed image stays mostly inside [-1, 1] instead of clipping."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GFPGAN()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, StyleConv):
                module.weight.fill_(0.1)
            elif isinstance(module, ToRGB):
                module.modulated_conv.weight.mul_(0.2)
    torch.save({"params_ema": model.state_dict()}, folder / checkpoints.REGISTRY[checkpoints.ENHANCER].local_name)
    return folder / checkpoints.REGISTRY[checkpoints.ENHANCER].local_name


def write_random_landmarker(folder: str | os.PathLike, seed: int = 0) -> Path:
    """A random-weight FAN(4) in the published file's format (a TorchScript file, ~96 MB, whose output is the last
    heatmap, as face-alignment 1.4 shipped it): same compute, garbage points that fail the landmark gate."""
    from face_alignment.models.fan import FAN

    class LastHeatmap(FAN):
        def forward(self, x):
            return super().forward(x)[-1]

    torch.manual_seed(seed)
    model = LastHeatmap(4).eval()
    _plausible_batch_statistics(model)
    path = Path(folder) / checkpoints.REGISTRY[checkpoints.LANDMARKER].local_name
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.jit.trace(model, torch.rand(1, 3, CROP_SIZE, CROP_SIZE), check_trace=False).save(str(path))
    return path
