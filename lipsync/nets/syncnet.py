"""SyncNet (Chung & Zisserman 2016), the network behind the LSE-D / LSE-C lip-sync scores, written so that its
state dict matches the released syncnet_v2.model name for name. Its file is in the checkpoint registry and it is
loaded once per process by lipsync.models."""

from __future__ import annotations

import torch
from torch import nn

from .checkpoints import without_batch_counters

EMBEDDING = 1024


def _conv2d(cin: int, cout: int, kernel, padding) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _conv3d(cin: int, cout: int, kernel, stride, padding) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, kernel, stride, padding), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]


def _head() -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, EMBEDDING))


class SyncNet(nn.Module):
    """Two towers that map 0.2 s of speech (13 MFCC × 20 steps) and 5 face crops (224×224, BGR, 0–255) to
    1024-vectors that lie close together when the mouth matches the sound."""

    def __init__(self):
        super().__init__()
        self.netcnnaud = nn.Sequential(
            *_conv2d(1, 64, 3, 1), nn.MaxPool2d(1, 1),
            *_conv2d(64, 192, 3, 1), nn.MaxPool2d(3, (1, 2)),
            *_conv2d(192, 384, 3, 1), *_conv2d(384, 256, 3, 1), *_conv2d(256, 256, 3, 1), nn.MaxPool2d(3, 2),
            *_conv2d(256, 512, (5, 4), 0))
        self.netfcaud = _head()
        self.netcnnlip = nn.Sequential(
            *_conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)), *_conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv3d(256, 512, (1, 6, 6), 1, 0))
        self.netfclip = _head()

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, 1024)."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_video(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) windows of face crops -> (N, 1024)."""
        return self.netfclip(self.netcnnlip(crops).flatten(1))

    def fold_time(self) -> "SyncNet":
        """Run the lip tower as 2D convolutions (for inference; the state dict changes): its first layer spans
        all 5 frames and every later one a single frame, so the frames can be stacked as 15 channels. The same
        numbers up to rounding, and faster on the CPU, whose 2D kernels are the tuned ones (README, Lip-sync score)."""
        if not isinstance(self.netcnnlip, TimeFoldedTower):
            self.netcnnlip = TimeFoldedTower(self.netcnnlip).train(self.training)
        return self


class TimeFoldedTower(nn.Sequential):
    """netcnnlip with time folded into channels: takes (N, 3, 5, H, W) like the original and returns
    (N, 512, 1, 1)."""

    def __init__(self, tower: nn.Sequential):
        layers = []
        for layer in tower:
            if isinstance(layer, nn.Conv3d):
                # (out, in, time, h, w) -> (out, time·in, h, w): channel t·3 + c is colour c of frame t.
                weight = layer.weight.detach().transpose(1, 2).flatten(1, 2)
                conv = nn.Conv2d(weight.shape[1], layer.out_channels, weight.shape[2:], layer.stride[1:],
                                 layer.padding[1:])
                conv.weight.data.copy_(weight)
                conv.bias.data.copy_(layer.bias.detach())
                layers.append(conv)
            elif isinstance(layer, nn.BatchNorm3d):
                norm = nn.BatchNorm2d(layer.num_features)
                norm.load_state_dict(layer.state_dict())
                layers.append(norm)
            elif isinstance(layer, nn.MaxPool3d):
                padding = nn.modules.utils._triple(layer.padding)
                layers.append(nn.MaxPool2d(layer.kernel_size[1:], layer.stride[1:], padding[1:]))
            else:
                layers.append(layer)
        super().__init__(*layers)
        self.to(memory_format=torch.channels_last)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        batch, colours, frames, height, width = crops.shape
        stacked = crops.permute(0, 3, 4, 2, 1).reshape(batch, height, width, frames * colours)
        return super().forward(stacked.permute(0, 3, 1, 2))  # channels-last in memory


def weights_of(model: SyncNet) -> dict[str, torch.Tensor]:
    """The names and tensors a syncnet_v2.model file holds: the state dict without the batch counters."""
    return without_batch_counters(model.state_dict())
