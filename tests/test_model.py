"""The generator's architecture against the official key list, and the fused model against the plain one."""

import pytest
import torch

from conftest import ROOT
from lipsync.models import load_generator
from lipsync.nets.checkpoints import wav2lip_state_dict
from lipsync.nets.wav2lip import ConvBlock, Wav2Lip
from lipsync.runtime import CheckpointFolder

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
    fast = load_generator("wav2lip_gan", CheckpointFolder.of(None))
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


def speech_sensitive_generator() -> Wav2Lip:
    """Random weights under which the speech changes the mouth: PyTorch's default initialisation shrinks the audio
    signal at every layer until the output hardly depends on it (as with the test checkpoints)."""
    torch.manual_seed(2)
    model = Wav2Lip()
    for block in model.modules():
        if isinstance(block, ConvBlock):
            conv = block.conv_block[0]
            mode = "fan_out" if isinstance(conv, torch.nn.ConvTranspose2d) else "fan_in"
            torch.nn.init.kaiming_normal_(conv.weight, mode=mode, nonlinearity="relu")
            if block.residual:
                conv.weight.data *= 0.5  # keeps the shortcuts from doubling the signal at every block
    return model.eval()


def test_a_fixed_face_decodes_as_the_concatenation_does():
    """decode_fixed (each face feature's share of a layer computed once) equals decode on the same features, for
    Conv2d and ConvTranspose2d layers alike; and it needs the BatchNorm folded, which it says."""
    model = speech_sensitive_generator()
    with torch.inference_mode():
        features = model.encode_faces(torch.rand(1, 6, 96, 96))
        with pytest.raises(ValueError, match="BatchNorm folded"):
            model.fix_face(features, repeats=3)
        model.fold_batchnorm()
        mel = torch.rand(3, 1, 80, 16) * 8 - 4
        expected = model.decode(mel, [feature.expand(3, -1, -1, -1) for feature in features])
        got = model.decode_fixed(mel, model.fix_face(features, repeats=3))
    assert (expected - got).abs().max().item() < 1e-5
    assert (expected[0] - expected[1]).abs().mean().item() > 1e-3  # other speech, another mouth: the test can fail


def test_generator_is_loaded_once_per_process():
    assert load_generator("wav2lip_gan", CheckpointFolder.of(None)) is load_generator("wav2lip_gan", CheckpointFolder.of(None))
