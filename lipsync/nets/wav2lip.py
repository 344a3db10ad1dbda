"""The Wav2Lip generator, written so that its state_dict matches the released checkpoints key for key."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

FACE_SIZE = 96
MEL_STEPS = 16
MEL_BINS = 80


class ConvBlock(nn.Module):
    """Conv + BatchNorm (+ identity shortcut) + ReLU; `conv_block.0`/`conv_block.1` are the checkpoint's names."""

    def __init__(self, cin, cout, kernel, stride, padding, residual=False, transpose=False, output_padding=0):
        super().__init__()
        if transpose:
            conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding)
        else:
            conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(cout))
        self.residual = residual
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.conv_block(x)
        if self.residual:
            out += x  # in place: this block owns `out`, and it saves a copy per layer
        return self.act(out)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        conv = self.conv_block[0]
        if isinstance(conv, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, weight, bias, conv.stride, conv.padding, conv.output_padding)
        return F.conv2d(x, weight, bias, conv.stride, conv.padding)

    def split_input(self, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For inputs whose trailing channels are always `fixed`: the weight over the leading channels, and what
        the fixed channels and the bias add to the output. A convolution is linear in its input channels, so
        forward_split(x, weight, constant) equals forward(cat(x, fixed)) with a part of the work."""
        conv = self.conv_block[0]
        if not isinstance(self.conv_block[1], nn.Identity) or self.residual:
            raise ValueError("only a layer with its BatchNorm folded and no shortcut is linear in its input")
        own = conv.in_channels - fixed.shape[1]
        if isinstance(conv, nn.ConvTranspose2d):  # weights (in, out, kh, kw)
            leading, trailing = conv.weight[:own], conv.weight[own:]
        else:  # weights (out, in, kh, kw)
            leading, trailing = conv.weight[:, :own], conv.weight[:, own:]
        leading, trailing = (part.contiguous(memory_format=torch.channels_last) for part in (leading, trailing))
        return leading, self._conv(fixed, trailing, conv.bias)

    def forward_split(self, x: torch.Tensor, weight: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
        out = self._conv(x, weight, None)
        out += constant
        return self.act(out)

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Fold the eval-mode BatchNorm into the convolution: same output, one layer less."""
        conv, bn = self.conv_block[0], self.conv_block[1]
        if not isinstance(bn, nn.BatchNorm2d):
            return
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        # Conv2d weights are (out, in, kh, kw); ConvTranspose2d weights are (in, out, kh, kw).
        shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
        conv.weight.mul_(scale.view(shape))
        conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
        self.conv_block[1] = nn.Identity()


def _res(channels):
    return ConvBlock(channels, channels, 3, 1, 1, residual=True)


def _up(cin, cout, stride=2, padding=1, output_padding=1):
    return ConvBlock(cin, cout, 3, stride, padding, transpose=True, output_padding=output_padding)


@dataclass(frozen=True)
class FixedFace:
    """A still face's share of the decoder, computed once (see Wav2Lip.fix_face)."""
    weights: list[torch.Tensor]  # per layer that reads a face feature: its weight over the decoder's own channels
    constants: list[torch.Tensor]  # what the face feature and the bias add to that layer's output


class Wav2Lip(nn.Module):
    """U-Net face decoder conditioned on an audio embedding; 96x96 BGR faces, 80x16 mel windows."""

    def __init__(self):
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),                                  # 96
            nn.Sequential(ConvBlock(16, 32, 3, 2, 1), _res(32), _res(32)),             # 48
            nn.Sequential(ConvBlock(32, 64, 3, 2, 1), _res(64), _res(64), _res(64)),   # 24
            nn.Sequential(ConvBlock(64, 128, 3, 2, 1), _res(128), _res(128)),          # 12
            nn.Sequential(ConvBlock(128, 256, 3, 2, 1), _res(256), _res(256)),         # 6
            nn.Sequential(ConvBlock(256, 512, 3, 2, 1), _res(512)),                    # 3
            nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = nn.Sequential(
            ConvBlock(1, 32, 3, 1, 1), _res(32), _res(32),
            ConvBlock(32, 64, 3, (3, 1), 1), _res(64), _res(64),
            ConvBlock(64, 128, 3, 3, 1), _res(128), _res(128),
            ConvBlock(128, 256, 3, (3, 2), 1), _res(256),
            ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),                                  # 1
            nn.Sequential(_up(1024, 512, stride=1, padding=0, output_padding=0), _res(512)),  # 3
            nn.Sequential(_up(1024, 512), _res(512), _res(512)),                          # 6
            nn.Sequential(_up(768, 384), _res(384), _res(384)),                           # 12
            nn.Sequential(_up(512, 256), _res(256), _res(256)),                           # 24
            nn.Sequential(_up(320, 128), _res(128), _res(128)),                           # 48
            nn.Sequential(_up(160, 64), _res(64), _res(64)),                              # 96
        ])
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """mel: (B, 1, 80, 16); faces: (B, 6, 96, 96) in [0, 1]. Returns (B, 3, 96, 96) in [0, 1]."""
        return self.decode(mel, self.encode_faces(faces))

    def encode_faces(self, faces: torch.Tensor) -> list[torch.Tensor]:
        """The face half: features at every scale, which the decoder reuses. For a still image they are the same
        every frame, so they can be computed once."""
        features = []
        for block in self.face_encoder_blocks:
            faces = block(faces)
            features.append(faces)
        return features

    def decode(self, mel: torch.Tensor, face_features: list[torch.Tensor]) -> torch.Tensor:
        """The audio encoder and the decoder; face_features are not modified."""
        x = self.audio_encoder(mel)
        for block, skip in zip(self.face_decoder_blocks, reversed(face_features)):
            x = torch.cat((block(x), skip), dim=1)
        return self.output_block(x)

    def _feature_reading_blocks(self) -> list[nn.Sequential]:
        """The blocks whose first layer reads the decoder's own channels followed by a face feature, in order."""
        return [*self.face_decoder_blocks[1:], self.output_block]

    def fix_face(self, face_features: list[torch.Tensor], repeats: int) -> FixedFace:
        """For a still face: the face features' part of every layer that reads them, computed once. Then
        decode_fixed runs only the audio encoder and the decoder's own channels (fewer operations than
        forward: the README counts them). One face broadcasts over any batch; several are repeated `repeats` times, in order."""
        weights, constants = [], []
        for block, feature in zip(self._feature_reading_blocks(), reversed(face_features)):
            weight, constant = block[0].split_input(feature)
            if feature.shape[0] > 1:
                constant = constant.repeat(repeats, 1, 1, 1)
            weights.append(weight)
            constants.append(constant.contiguous(memory_format=torch.channels_last))
        return FixedFace(weights, constants)

    def decode_fixed(self, mel: torch.Tensor, fixed: FixedFace) -> torch.Tensor:
        """decode() with the face given by fix_face; mel's batch follows the fixed faces' order."""
        x = self.face_decoder_blocks[0](self.audio_encoder(mel))
        for block, weight, constant in zip(self._feature_reading_blocks(), fixed.weights, fixed.constants):
            x = block[1:](block[0].forward_split(x, weight, constant[:x.shape[0]]))
        return x

    def fold_batchnorm(self) -> "Wav2Lip":
        for module in self.modules():
            if isinstance(module, ConvBlock):
                module.fold_batchnorm()
        return self
