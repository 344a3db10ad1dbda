"""The generator's architecture against the official key list, and the fused model against the plain one."""

import torch

from conftest import ROOT
from lipsync.checkpoints import load_generator, wav2lip_state_dict
from lipsync.model import ConvBlock, Wav2Lip

REFERENCE = ROOT.parent / "shared" / "reference" / "wav2lip_state_dict.txt"


def official_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("module."):
            key, shape = line.split(" ", 1)
            shapes[key.removeprefix("module.")] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return shapes


def test_state_dict_matches_official_keys_and_shapes():
    ours = {key: tuple(value.shape) for key, value in Wav2Lip().state_dict().items()}
    assert ours == official_shapes()
    assert sum(p.numel() for p in Wav2Lip().parameters()) == 36_298_035


def test_forward_shapes_and_range():
    model = Wav2Lip().eval()
    with torch.inference_mode():
        out = model(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_folded_channels_last_model_matches_plain_model(checkpoint_dir):
    """The fast model (BatchNorm folded, channels_last) gives the plain model's output within 1e-4."""
    plain = Wav2Lip()
    plain.load_state_dict(wav2lip_state_dict(checkpoint_dir / "wav2lip_gan.pth"))
    plain.eval()
    fast = load_generator("wav2lip_gan", "cpu")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    torch.manual_seed(1)
    mel, faces = torch.randn(4, 1, 80, 16), torch.rand(4, 6, 96, 96)
    with torch.inference_mode():
        expected = plain(mel, faces)
        got = fast(mel, faces.contiguous(memory_format=torch.channels_last))
    assert (expected - got).abs().max().item() < 1e-4
    # And folding really changed the weights (the check above is not comparing a model with itself): every
    # convolution followed by a BatchNorm in the plain model differs from the fast model's by that BatchNorm's scale.
    folded = [(a.conv_block[0], b.conv_block[0]) for a, b in zip(plain.modules(), fast.modules())
              if isinstance(a, ConvBlock) and isinstance(a.conv_block[1], torch.nn.BatchNorm2d)]
    assert len(folded) == 50
    for before, after in folded:
        assert (before.weight - after.weight.float()).abs().max() > 1e-3


def test_generator_is_loaded_once_per_process():
    assert load_generator("wav2lip_gan", "cpu") is load_generator("wav2lip_gan", "cpu")
