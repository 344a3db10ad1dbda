"""GFPGAN v1.4, the network that enhances a face: written from the published configuration ("clean" v1.4: a U-Net
encoder whose features modulate a StyleGAN2 decoder through spatial feature transforms on half of its channels), so
that `state_dict()` matches the released checkpoint key for key. It uses the stored noise buffers, never fresh noise:
the same face gives the same enhanced face, so a video does not flicker."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ENHANCE_SIZE = 512  # the face side the network takes and gives
STYLE_DIM = 512


class ResBlock(nn.Module):
    """Two 3×3 convolutions around a bilinear resampling (×0.5 down, ×2 up), plus a resampled 1×1 shortcut."""

    def __init__(self, cin: int, cout: int, scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1)
        self.conv2 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        self.scale = scale

    def forward(self, x):
        out = F.leaky_relu(self.conv1(x), 0.2)
        out = F.interpolate(out, scale_factor=self.scale, mode="bilinear", align_corners=False)
        out = F.leaky_relu(self.conv2(out), 0.2)
        return out + self.skip(F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False))


class ModulatedConv(nn.Module):
    """StyleGAN2 convolution whose input channels are scaled per sample by a style; optionally demodulated so each
    output channel has unit expected norm. The style scaling is applied to the input and the demodulation to the
    output, which equals a per-sample modulated kernel but runs as one ordinary (batched) convolution."""

    def __init__(self, cin: int, cout: int, kernel: int, demodulate: bool, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, kernel, kernel) / math.sqrt(cin * kernel * kernel))
        self.modulation = nn.Linear(STYLE_DIM, cin)
        nn.init.ones_(self.modulation.bias)  # a neutral style scales every channel by about 1
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x, style):
        scale = self.modulation(style)  # (batch, cin)
        weight = self.weight[0]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        out = F.conv2d(x * scale[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:
            energy = scale.square() @ weight.square().sum(dim=(2, 3)).t()  # (batch, cout)
            out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        return out


class StyleConv(nn.Module):
    """Modulated 3×3 convolution, then the stored noise (scaled by a learnt weight), a bias and a leaky ReLU."""

    def __init__(self, cin: int, cout: int, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # the noise strength
        self.bias = nn.Parameter(torch.zeros(1, cout, 1, 1))
        self.modulated_conv = ModulatedConv(cin, cout, 3, demodulate=True, upsample=upsample)

    def forward(self, x, style, noise):
        out = self.modulated_conv(x, style) * math.sqrt(2)  # the gain the released weights were trained with
        return F.leaky_relu(out + self.weight * noise + self.bias, 0.2)


class ToRGB(nn.Module):
    """Modulated 1×1 projection to RGB, added to the (upsampled) image of the coarser level."""

    def __init__(self, cin: int, upsample: bool):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.modulated_conv = ModulatedConv(cin, 3, 1, demodulate=False)
        self.upsample = upsample

    def forward(self, x, style, skip=None):
        out = self.modulated_conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                skip = F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
            out = out + skip
        return out


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int):
        return self.weight.expand(batch, -1, -1, -1)


class NormStyle(nn.Module):
    """The mapping network's input normalisation (no weights)."""

    def forward(self, x):
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class StyleDecoder(nn.Module):
    """StyleGAN2 synthesis from 4×4 to 512×512, one style vector per layer, with SFT conditions applied to the
    second half of the channels after each upsampling convolution."""

    def __init__(self, levels: dict[int, int], num_mlp: int = 8):
        super().__init__()
        # The mapping network turns noise into styles when training; the encoder gives styles directly
        # (input_is_latent), so it never runs here, but the checkpoint holds it and loads strictly.
        mlp: list[nn.Module] = [NormStyle()]
        for _ in range(num_mlp):
            mlp += [nn.Linear(STYLE_DIM, STYLE_DIM), nn.LeakyReLU(0.2)]
        self.style_mlp = nn.Sequential(*mlp)
        self.constant_input = ConstantInput(levels[4], 4)
        self.style_conv1 = StyleConv(levels[4], levels[4])
        self.to_rgb1 = ToRGB(levels[4], upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        cin = levels[4]
        resolutions = [res for res in sorted(levels) if res > 4]
        for res in resolutions:
            self.style_convs.append(StyleConv(cin, levels[res], upsample=True))
            self.style_convs.append(StyleConv(levels[res], levels[res]))
            self.to_rgbs.append(ToRGB(levels[res], upsample=True))
            cin = levels[res]
        self.noises = nn.Module()
        sizes = [4] + [res for res in resolutions for _ in range(2)]
        for index, res in enumerate(sizes):
            self.noises.register_buffer(f"noise{index}", torch.randn(1, 1, res, res))

    def forward(self, styles, conditions):
        """styles: (batch, num_styles, 512); conditions: [scale, shift] per level after 4×4, coarse to fine."""
        noise = [getattr(self.noises, f"noise{index}") for index in range(len(self.style_convs) + 1)]
        out = self.style_conv1(self.constant_input(styles.shape[0]), styles[:, 0], noise[0])
        image = self.to_rgb1(out, styles[:, 1])
        for level, to_rgb in enumerate(self.to_rgbs):
            layer = 2 * level + 1
            out = self.style_convs[2 * level](out, styles[:, layer], noise[layer])
            kept, modulated = out.chunk(2, dim=1)  # SFT on half the channels keeps the decoder's own detail
            scale, shift = conditions[2 * level], conditions[2 * level + 1]
            out = torch.cat([kept, modulated * scale + shift], dim=1)
            out = self.style_convs[2 * level + 1](out, styles[:, layer + 1], noise[layer + 1])
            image = to_rgb(out, styles[:, layer + 2], image)
        return image


class GFPGAN(nn.Module):
    """GFPGANv1Clean in the v1.4 configuration: (batch, 3, 512, 512) RGB in [-1, 1] -> the same, restored."""

    def __init__(self, size: int = ENHANCE_SIZE):
        super().__init__()
        steps = int(math.log2(size)) - 2  # 512: seven resolutions between 512 and 4
        resolutions = [4 * 2 ** step for step in range(steps + 1)]  # 4 .. 512
        # U-Net widths (narrow 0.5 of the decoder's, channel multiplier 2) and decoder widths, per resolution.
        unet = {res: min(256, 16384 // res) for res in resolutions}
        decoder = {res: min(512, 32768 // res) for res in resolutions}
        self.conv_body_first = nn.Conv2d(3, unet[size], 1)
        self.conv_body_down = nn.ModuleList(ResBlock(unet[res], unet[res // 2], 0.5) for res in resolutions[:0:-1])
        self.final_conv = nn.Conv2d(unet[4], unet[4], 3, 1, 1)
        self.conv_body_up = nn.ModuleList(ResBlock(unet[res // 2], unet[res], 2.0) for res in resolutions[1:])
        # Per-level RGB images of the encoder are a training-time loss only; kept for strict loading.
        self.toRGB = nn.ModuleList(nn.Conv2d(unet[res], 3, 1) for res in resolutions[1:])
        self.num_styles = 2 * steps + 2
        self.final_linear = nn.Linear(unet[4] * 4 * 4, self.num_styles * STYLE_DIM)
        self.stylegan_decoder = StyleDecoder(decoder)
        self.condition_scale = nn.ModuleList(self._condition(unet[res]) for res in resolutions[1:])
        self.condition_shift = nn.ModuleList(self._condition(unet[res]) for res in resolutions[1:])

    @torch.no_grad()
    def channels_last(self) -> "GFPGAN":
        """Store every convolution kernel channels-last, the layout the CPU and GPU convolutions run fastest
        with channels-last input; the values stay the same."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
            elif isinstance(module, ModulatedConv):  # (1, out, in, k, k), laid out so that [0] is channels-last
                module.weight.data = module.weight.data.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
        return self

    @staticmethod
    def _condition(channels: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2),
                             nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x):
        feat = F.leaky_relu(self.conv_body_first(x), 0.2)
        skips = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.append(feat)
        feat = F.leaky_relu(self.final_conv(feat), 0.2)
        styles = self.final_linear(feat.flatten(1)).view(x.shape[0], self.num_styles, STYLE_DIM)
        conditions = []
        for block, skip, scale, shift in zip(self.conv_body_up, reversed(skips), self.condition_scale,
                                             self.condition_shift):
            feat = block(feat + skip)
            conditions += [scale(feat), shift(feat)]
        return self.stylegan_decoder(styles, conditions)
