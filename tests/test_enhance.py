"""GFPGAN v1.4, the face enhancer: the architecture against the release's key listing, the checkpoint registry, determinism,
bf16 against fp32, the alignment on the portrait (box + roll, and its hand-measured landmarks), and the paste back
through the mouth's mask (the oval, and the face and mouth masks drawn from landmarks)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import HAND_LANDMARKS, PORTRAIT, ROOT, assert_valid_mp4, cut_speech, read_frames, through_encoder
from lipsync import LipSyncConfig, generate, models
from lipsync.errors import CheckpointError, OptionError
from lipsync.faces import alignment, enhance, finding, paste, track
from lipsync.faces.boxes import FaceBox
from lipsync.faces.detectors import HaarDetector
from lipsync.media import i420
from lipsync.nets import checkpoints, gfpgan
from lipsync.nets.checkpoints import CheckpointFolder
from lipsync.nets.wav2lip import FACE_SIZE

LISTING = ROOT.parent / "shared" / "reference" / "gfpgan_v1.4_state_dict.txt"
HAAR_EYE = Path(cv2.data.haarcascades) / "haarcascade_eye.xml"


@pytest.fixture(scope="module")
def portrait() -> tuple[np.ndarray, FaceBox]:
    """The portrait as an I420 frame, with its Haar box padded as the pipeline pads it."""
    image = cv2.imread(str(PORTRAIT))
    image = image[:image.shape[0] & ~1, :image.shape[1] & ~1]
    height, width = image.shape[:2]
    (x1, y1, x2, y2, _), = HaarDetector().detect([image])[0]
    box = FaceBox((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1).padded((0, 10, 0, 0), width, height)
    return i420.to_i420(image), box


@pytest.fixture(scope="module")
def enhanced(enhancer_file, portrait) -> dict:
    """Two separately decoded copies of the same frame, each aligned and enhanced in its own call (fp32)."""
    frame, box = portrait
    model = models.load_enhancer(CheckpointFolder.of(None))
    faces, matrices = enhance.align_faces(frame.copy(), [box])
    first = model(faces)[0]
    second = model(enhance.align_faces(frame.copy(), [box])[0])[0]
    return {"face": faces[0], "matrix": matrices[0], "first": first, "second": second}


def _listing() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in LISTING.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, _ = line.split("\t")
            rows.append((key, tuple(int(n) for n in shape.strip("(,)").split(",") if n.strip())))
    return rows


def test_state_dict_matches_the_release_listing():
    with torch.device("meta"):
        model = gfpgan.GFPGAN()
    ours = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    assert ours == _listing()
    assert sum(p.numel() for p in model.parameters()) == 86_444_252
    assert sum(b.numel() for b in model.buffers()) == 699_024


def test_modulated_conv_equals_a_per_sample_kernel():
    """The batched form (style on the input, demodulation on the output) against the textbook one: each sample's
    kernel scaled by its style, normalised per output channel, run as a grouped convolution."""
    torch.manual_seed(0)
    for demodulate, upsample, kernel in ((True, True, 3), (True, False, 3), (False, False, 1)):
        layer = gfpgan.ModulatedConv(8, 6, kernel, demodulate=demodulate, upsample=upsample).double()
        x, style = torch.randn(3, 8, 5, 5, dtype=torch.float64), torch.randn(3, gfpgan.STYLE_DIM, dtype=torch.float64)
        weight = layer.weight * layer.modulation(style)[:, None, :, None, None]  # (batch, out, in, k, k)
        if demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)[:, :, None, None, None]
        source = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) if upsample else x
        expected = F.conv2d(source.reshape(1, -1, *source.shape[2:]), weight.reshape(-1, 8, kernel, kernel),
                            padding=kernel // 2, groups=3).reshape(3, 6, *source.shape[2:])
        torch.testing.assert_close(layer(x, style), expected)


def test_random_checkpoint_loads_through_the_real_loader(enhancer_file, monkeypatch):
    monkeypatch.setenv(checkpoints.CHECKPOINT_DIR_ENV, str(enhancer_file.parent))
    assert enhancer_file.name == "gfpgan_v1.4.pth"
    raw = torch.load(enhancer_file, weights_only=True)
    assert list(raw) == ["params_ema"]
    enhancer = models.load_enhancer(CheckpointFolder.of(None))
    model = enhancer.net
    assert torch.equal(model.final_linear.bias, raw["params_ema"]["final_linear.bias"])
    assert torch.equal(model.stylegan_decoder.noises.noise14, raw["params_ema"]["stylegan_decoder.noises.noise14"])
    assert models.load_enhancer(CheckpointFolder.of(None)) is enhancer  # once per process
    bf16 = models.load_enhancer(CheckpointFolder.of(None), dtype=torch.bfloat16)
    assert bf16.net.final_linear.weight.dtype == torch.bfloat16


def test_registry_pins_the_released_file():
    spec = checkpoints.REGISTRY[checkpoints.ENHANCER]
    assert (spec.local_name, spec.size) == ("gfpgan_v1.4.pth", 348_632_874)
    assert spec.sha256.startswith("e2cd4703")


def test_wrong_shape_is_refused(tmp_path):
    torch.save({"params_ema": {"conv_body_first.weight": torch.zeros(32, 3, 3, 3)}}, tmp_path / "gfpgan_v1.4.pth")
    with pytest.raises(CheckpointError, match=r"gfpgan_v1\.4\.pth is not a matching checkpoint: "
                                              r"'conv_body_first\.weight' has shape \(32, 3, 3, 3\), expected \(32, 3, 1, 1\)"):
        models.load_enhancer(CheckpointFolder.of(tmp_path))


def test_file_without_weights_is_refused(tmp_path):
    torch.save({"optimizer": {}}, tmp_path / "gfpgan_v1.4.pth")
    with pytest.raises(CheckpointError, match="not a GFPGAN checkpoint"):
        models.load_enhancer(CheckpointFolder.of(tmp_path))


def test_params_are_the_fallback(tmp_path):
    weights = {"conv_body_first.bias": torch.arange(32.0)}
    torch.save({"params": weights}, tmp_path / "plain.pth")
    assert torch.equal(checkpoints.gfpgan_state_dict(tmp_path / "plain.pth")["conv_body_first.bias"], torch.arange(32.0))


def test_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(CheckpointError, match=r"gfpgan_v1\.4\.pth"):
        models.load_enhancer(CheckpointFolder.of(tmp_path))


def test_offline_hub_says_how_to_provide_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv(checkpoints.CHECKPOINT_DIR_ENV)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(CheckpointError, match=r"th2w33knd/GFPGANv1\.4.*LIPSYNC_CHECKPOINT_DIR"):
        models.load_enhancer(CheckpointFolder.of(None))


def test_fp16_is_refused(enhancer_file):
    with pytest.raises(OptionError, match="bf16 or fp32"):
        models.load_enhancer(CheckpointFolder.of(None), dtype=torch.float16)


def test_same_frame_restores_to_the_same_face(enhanced):
    first, second, face = enhanced["first"], enhanced["second"], enhanced["face"]
    assert first.dtype == np.float32 and first.shape == (512, 512, 3)
    assert np.isfinite(first).all() and first.min() >= 0 and first.max() <= 255
    assert np.array_equal(first, second)  # stored noise: no flicker
    assert np.abs(first - face).mean() > 5  # and the model did something


def test_bf16_is_close_to_fp32(enhanced):
    model = models.load_enhancer(CheckpointFolder.of(None), dtype=torch.bfloat16)
    out = model(enhanced["face"][None])[0]
    difference = np.abs(out - enhanced["first"])
    assert difference.mean() < 2.0 and np.percentile(difference, 99) < 8.0, (difference.mean(), difference.max())


def test_template_eyes_land_on_the_portraits_eyes(portrait):
    """The eyes found by OpenCV's eye cascade in the aligned face sit on the template's eye points."""
    frame, box = portrait
    face = enhance.aligned_face(frame, box)
    cascade = cv2.CascadeClassifier(str(HAAR_EYE))
    eyes, _, weights = cascade.detectMultiScale3(cv2.cvtColor(face[:300], cv2.COLOR_BGR2GRAY), 1.1, 5,
                                                 minSize=(40, 40), outputRejectLevels=True)
    assert len(eyes) >= 2, eyes
    strongest = eyes[np.argsort(np.ravel(weights))[-2:]]  # the cascade's two most certain eyes
    centres = sorted((x + w / 2, y + h / 2) for x, y, w, h in strongest)
    distance = np.hypot(*(np.array(centres) - alignment.FFHQ_TEMPLATE_512[:2]).T)
    assert distance.max() < 0.06 * gfpgan.ENHANCE_SIZE, centres


def test_aligned_face_equals_a_warp_of_the_whole_frame(portrait):
    """Only the region under the template is converted from I420; the result is the full-frame warp, with the
    training grey where the template reaches past the frame (the second box sits in the top-left corner)."""
    frame, box = portrait
    whole_frame = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420)
    for where in (box, FaceBox(20.0, 25.0, box.w, box.h, 10.0)):
        whole = cv2.warpAffine(whole_frame, enhance.alignment_matrix(where), (512, 512), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=enhance.BORDER_BGR)
        assert np.abs(enhance.aligned_face(frame, where).astype(int) - whole).max() <= 1
    assert (whole == enhance.BORDER_BGR).all(axis=2).mean() > 0.2


def test_roll_turns_the_alignment_with_the_face(portrait):
    """Turning the frame by 20° and the box with it gives the same aligned face: the roll is taken into account."""
    frame, box = portrait
    image = cv2.cvtColor(frame, cv2.COLOR_YUV2BGR_I420)
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 20.0, 1.0)
    cx, cy = turn @ [box.cx, box.cy, 1.0]
    turned_box = FaceBox(cx, cy, box.w, box.h, -20.0)
    turned = i420.to_i420(cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_CUBIC))
    upright_matrix = np.vstack([enhance.alignment_matrix(box), [0, 0, 1]])
    turned_matrix = np.vstack([enhance.alignment_matrix(turned_box), [0, 0, 1]])
    np.testing.assert_allclose(turned_matrix @ np.vstack([turn, [0, 0, 1]]), upright_matrix, atol=1e-3)
    inner = (slice(150, 400), slice(150, 360))  # the face, away from the corners the turn brings in
    difference = np.abs(enhance.aligned_face(turned, turned_box)[inner].astype(int) - enhance.aligned_face(frame, box)[inner])
    assert difference.mean() < 6, difference.mean()


def test_landmarks_align_the_face_by_its_five_points(portrait):
    """With the portrait's hand-measured landmarks the alignment is the five points' fit onto the template (as
    GFPGAN's helper fits it), which puts them nearer the template than the box + roll approximation does."""
    _, box = portrait
    points = np.array(HAND_LANDMARKS["monalisa"]["points"], np.float64)
    five = alignment.five_points(points)
    matrix = enhance.alignment_matrix(dataclasses.replace(box, points=points))
    np.testing.assert_array_equal(matrix, alignment.template_similarity(five))
    residuals = {}
    for name, fitted in (("landmarks", matrix), ("box", enhance.alignment_matrix(box))):
        placed = five @ fitted[:, :2].T + fitted[:, 2]
        residuals[name] = np.linalg.norm(placed - alignment.FFHQ_TEMPLATE_512, axis=1)
    print("the portrait's five points off the 512 template (eyes, nose, mouth corners), px: " + "; ".join(
        f"{name} {', '.join(f'{r:.1f}' for r in values)}" for name, values in residuals.items()))
    assert residuals["landmarks"].mean() < residuals["box"].mean()


def _mask_in_frame(box: FaceBox, width: int, height: int, mask: str = "box") -> np.ndarray:
    """The face's feathered mask warped into the whole frame, computed here independently of blend's regions."""
    return cv2.warpAffine(paste.blend_mask(box, "feather", mask), box.crop_matrix(FACE_SIZE), (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@pytest.mark.parametrize("mask", ["box", "face", "mouth"])
def test_paste_enhanced_changes_only_the_mouth_mask(portrait, enhanced, mask):
    frame, box = portrait
    if mask != "box":
        box = dataclasses.replace(box, points=np.array(HAND_LANDMARKS["monalisa"]["points"], np.float64))
    out = frame.copy()
    paste.paste_enhanced(out, box, enhanced["first"], enhanced["matrix"], "feather", mask, 1.0)
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    alpha = _mask_in_frame(box, width, height, mask)
    chroma_alpha = alpha.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
    for before, after, weight in zip(i420.planes(frame), i420.planes(out), (alpha, chroma_alpha, chroma_alpha)):
        outside = weight * 255 < 0.49  # too little to move a pixel by rounding
        assert np.array_equal(before[outside], after[outside])
        assert outside.mean() > 0.8  # most of the frame lies outside the mouth
        inside = weight > 0.5
        assert inside.sum() > 100 and (before[inside] != after[inside]).mean() > 0.5
    untouched = frame.copy()
    paste.paste_enhanced(untouched, box, enhanced["first"], enhanced["matrix"], "feather", mask, 0.0)
    assert np.array_equal(untouched, frame)


@pytest.mark.parametrize("mask", ["face", "mouth"])
def test_paste_enhanced_blends_as_much_as_the_chosen_mask(portrait, enhanced, mask):
    """Against the oval's paste of the same face: each luma pixel moves by the chosen mask's share of what the
    oval moves it by (both blend towards the same enhanced face), where the two masks differ as much as where
    they agree."""
    frame, box = portrait
    marked = dataclasses.replace(box, points=np.array(HAND_LANDMARKS["monalisa"]["points"], np.float64))
    pasted = {}
    for kind, face_box in (("box", box), (mask, marked)):
        pasted[kind] = frame.copy()
        paste.paste_enhanced(pasted[kind], face_box, enhanced["first"], enhanced["matrix"], "feather", kind, 1.0)
    height, width = frame.shape[0] * 2 // 3, frame.shape[1]
    luma = i420.planes(frame)[0].astype(float)
    moved = {kind: i420.planes(out)[0].astype(float) - luma for kind, out in pasted.items()}
    oval, chosen = _mask_in_frame(box, width, height), _mask_in_frame(marked, width, height, mask)
    measured = (np.abs(moved["box"]) > 30) & (oval > 0.1)  # rounding is small beside these moves
    ratio = moved[mask][measured] / moved["box"][measured]
    expected = chosen[measured] / oval[measured]
    assert (np.abs(expected - 1) > 0.3).sum() > 100  # the masks differ there: the check can tell them apart
    error = np.abs(ratio - expected)
    assert np.median(error) < 0.03 and np.percentile(error, 95) < 0.1, (np.median(error), error.max())


def test_enhance_in_the_pipeline_restores_only_the_lower_face(enhancer_file, portrait, tmp_path):
    speech = cut_speech(tmp_path / "s.wav", 0.04, start=4.0)  # 1 frame: GFPGAN takes seconds a face here
    config = LipSyncConfig(detector="haar", keep_silence=False, precision="fp32")
    stages = []
    plain = generate(PORTRAIT, tmp_path / "plain.mp4", audio_path=speech, config=config)
    enhanced = generate(PORTRAIT, tmp_path / "hd.mp4", audio_path=speech, config=config.replace(enhance="gfpgan"),
                        progress=lambda fraction, stage: stages.append(stage))
    assert_valid_mp4(enhanced.path, plain.duration, (plain.width, plain.height), 25)
    assert "enhance" in stages and "generate" not in stages
    before, after = read_frames(plain.path)[0].astype(float), read_frames(enhanced.path)[0].astype(float)
    _, box = portrait
    x1, y1, x2, y2 = box.bounds(plain.width, plain.height)
    lower = (slice((y1 + y2) // 2, y2), slice(x1, x2))
    assert np.abs(after[lower] - before[lower]).mean() > 2.0  # the enhanced face shows in the mouth region
    assert np.abs(after[:y1 - 8] - before[:y1 - 8]).mean() < 0.5  # above the face: only codec noise


@pytest.mark.parametrize("mask", ["face", "mouth"])
def test_enhance_with_hand_landmarks_restores_only_inside_the_chosen_mask(enhancer_file, landmark_dir,
                                                                          hand_landmarks, tmp_path, mask):
    """The portrait's hand landmarks in place of FAN's: the enhanced face shows inside the mask, and beyond it the
    enhanced video is the input within the encoder's own noise there."""
    speech = cut_speech(tmp_path / "s.wav", 0.04, start=4.0)  # 1 frame: GFPGAN takes seconds a face here
    config = LipSyncConfig(detector="haar", keep_silence=False, precision="fp32", landmarks="fan", mask=mask,
                           checkpoint_dir=str(landmark_dir))
    plain = generate(PORTRAIT, tmp_path / "plain.mp4", audio_path=speech, config=config)
    enhanced = generate(PORTRAIT, tmp_path / "hd.mp4", audio_path=speech, config=config.replace(enhance="gfpgan"))
    assert enhanced.landmark_frames == enhanced.synced_frames == enhanced.frames
    before, after = read_frames(plain.path)[0].astype(float), read_frames(enhanced.path)[0].astype(float)
    source = cv2.imread(str(PORTRAIT))[:plain.height]
    found = finding.detect_faces(HaarDetector(), [source], 1.0, True, still=True, landmarker=object())
    (box,), = track.plan_faces(found, config, 25.0, plain.width, plain.height, str)
    alpha = _mask_in_frame(box, plain.width, plain.height, mask)
    assert np.abs(after - before).mean(axis=2)[alpha > 0.5].mean() > 2.0  # the enhanced face shows in the mask
    beyond = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0  # past the chroma's reach
    codec_noise = max(np.abs(frame.astype(float) - source).mean(axis=2)[beyond].mean()
                      for frame in through_encoder(source, tmp_path))
    assert np.abs(after - source).mean(axis=2)[beyond].mean() <= codec_noise + 0.5


def test_enhance_auto_stays_off_on_the_cpu(tmp_path):
    speech = cut_speech(tmp_path / "s.wav", 0.2, start=4.0)
    stages = []
    generate(PORTRAIT, tmp_path / "out.mp4", audio_path=speech, config=LipSyncConfig(detector="haar", device="cpu"),
             progress=lambda fraction, stage: stages.append(stage))
    assert "generate" in stages and "enhance" not in stages
