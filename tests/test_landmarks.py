"""FAN landmarks and what they drive: the network and its file against face-alignment's own module, crop and
decoding against the package's, the quality gate, and the geometry (five points, the 512 template's similarity,
roll, masks) on the shared media's faces with their landmarks measured by hand (tests/fixtures/landmarks.json)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import HAND_LANDMARKS as FIXTURE
from conftest import MEDIA, PORTRAIT, TALKING_HEAD
from lipsync import models
from lipsync.errors import CheckpointError
from lipsync.faces import alignment, crop, landmarks
from lipsync.faces.boxes import FaceBox
from lipsync.nets import checkpoints
from lipsync.runtime import CheckpointFolder

# The Haar cascade's boxes (x1, y1, x2, y2) of the two faces, as a detector would hand them over.
PORTRAIT_BOX = FaceBox(135.5, 112.5, 83, 83)
TALKING_HEAD_BOX = FaceBox(317, 389, 232, 232)
FAN_FILE = "2DFAN4-cd938726ad.zip"


@pytest.fixture(scope="module")
def fan_file(landmark_dir) -> Path:
    return landmark_dir / FAN_FILE


@pytest.fixture(scope="module")
def faces() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each hand-measured face: its BGR image and its 68 points."""
    capture = cv2.VideoCapture(str(TALKING_HEAD))
    capture.set(cv2.CAP_PROP_POS_FRAMES, FIXTURE["talking_head"]["frame"])
    ok, frame = capture.read()
    capture.release()
    assert ok
    return {"monalisa": (cv2.imread(str(PORTRAIT)), np.array(FIXTURE["monalisa"]["points"])),
            "talking_head": (frame, np.array(FIXTURE["talking_head"]["points"]))}


def test_fixture_describes_the_shared_media(faces):
    for name, (image, points) in faces.items():
        assert (MEDIA / FIXTURE[name]["file"]).is_file()
        assert [image.shape[1], image.shape[0]] == FIXTURE[name]["size"]
        assert points.shape == (68, 2)
        assert (points >= 0).all() and (points < FIXTURE[name]["size"]).all()


# ---------------------------------------------------------------- the network and its file

def test_fan_is_the_published_2dfan4():
    """The size face-alignment's 2DFAN4 has: 23,820,176 weights and 54,144 BatchNorm running statistics."""
    model = landmarks.new_fan()
    assert sum(p.numel() for p in model.parameters()) == 23_820_176
    stats = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert stats == 54_144


def test_registry_entry_pins_the_published_file():
    spec = checkpoints.REGISTRY[checkpoints.LANDMARKER]
    assert (spec.repo_id, spec.filename, spec.size) == ("ByteDance/LatentSync-1.5", "auxiliary/2DFAN4-cd938726ad.zip",
                                                        96_316_515)
    assert spec.sha256 == "cd938726adb1f15f361263cce2db9cb820c42585fa8796ec72ce19107f369a46"
    assert spec.local_name == FAN_FILE  # the local folder takes the published file name


def test_random_file_loads_key_by_key_into_the_packages_module(fan_file):
    """The TorchScript file's state dict names are FAN(4)'s own, and the real loader puts every tensor where the
    file has it."""
    from face_alignment.models.fan import FAN

    in_file = torch.jit.load(str(fan_file), map_location="cpu").state_dict()
    assert list(in_file) == list(FAN(4).state_dict())
    model = models.load_landmarker(CheckpointFolder.of(fan_file.parent))
    assert models.load_landmarker(CheckpointFolder.of(fan_file.parent)) is model  # once per process
    loaded = model.state_dict()
    for key, value in in_file.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value), key


def _scripted_file(folder: Path, module: torch.nn.Module) -> Path:
    path = folder / FAN_FILE
    torch.jit.trace(module, torch.rand(1, 3, 16, 16), check_trace=False).save(str(path))
    return path


class _OnlyFirstConv(torch.nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, channels, kernel_size=7, stride=2, padding=3)

    def forward(self, x):
        return self.conv1(x)


def test_loader_refuses_a_missing_key(tmp_path):
    _scripted_file(tmp_path, _OnlyFirstConv(64))
    with pytest.raises(CheckpointError, match=r"2DFAN4-cd938726ad\.zip is not a matching checkpoint: "
                                              r"key 'bn1\.weight' is missing"):
        models.load_landmarker(CheckpointFolder.of(tmp_path))


def test_loader_refuses_a_misshapen_key(tmp_path):
    _scripted_file(tmp_path, _OnlyFirstConv(32))
    with pytest.raises(CheckpointError, match=r"2DFAN4-cd938726ad\.zip is not a matching checkpoint: "
                                              r"'conv1\.weight' has shape \(32, 3, 7, 7\), expected \(64, 3, 7, 7\)"):
        models.load_landmarker(CheckpointFolder.of(tmp_path))


def test_loader_refuses_a_file_that_is_not_torchscript(tmp_path):
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / FAN_FILE)
    with pytest.raises(CheckpointError, match="could not be read as a TorchScript file"):
        models.load_landmarker(CheckpointFolder.of(tmp_path))


def test_missing_local_file_names_the_published_file_name(tmp_path):
    with pytest.raises(CheckpointError, match=r"^2DFAN4-cd938726ad\.zip is not in the checkpoint folder"):
        models.load_landmarker(CheckpointFolder.of(tmp_path))


# ---------------------------------------------------------------- crop and decoding against the package

@pytest.mark.parametrize("name, box", [("monalisa", PORTRAIT_BOX), ("talking_head", TALKING_HEAD_BOX)])
def test_crop_is_the_packages_crop(faces, name, box):
    """For an upright box the network sees what face-alignment feeds it (within the two resamplers' rounding)."""
    from face_alignment.utils import crop

    image = faces[name][0]
    centre = np.array([box.cx, box.cy - landmarks.CENTRE_RAISE * box.h])
    theirs = crop(np.ascontiguousarray(image[..., ::-1]), centre, (box.w + box.h) / 195.0)
    diff = np.abs(landmarks.fan_crops(image, [box])[0].astype(int) - theirs.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 1, (diff.mean(), np.percentile(diff, 99))


def test_decoding_is_the_packages_without_its_rounding(monkeypatch):
    from face_alignment import utils

    # The package's own functions as plain Python: numba compiling them costs a minute here, and changes nothing.
    for name in ("_get_preds_fromhm", "transform_np"):
        monkeypatch.setattr(utils, name, getattr(utils, name).py_func)

    rng = np.random.default_rng(0)
    heatmaps = rng.standard_normal((4, 68, 64, 64)).astype(np.float32)
    for face, (row, col) in enumerate([(0, 5), (63, 63), (20, 0)]):  # peaks on the border are not moved
        heatmaps[face, 0, row, col] = 10.0
    box = FaceBox(321.3, 287.9, 181.7, 203.2)
    centre = np.array([box.cx, box.cy - landmarks.CENTRE_RAISE * box.h])
    theirs, theirs_in_image, their_peaks = utils.get_preds_fromhm(heatmaps, centre, (box.w + box.h) / 195.0)
    points, peaks = landmarks.decode(heatmaps)
    np.testing.assert_allclose(points, theirs, atol=1e-4)
    np.testing.assert_array_equal(peaks, their_peaks)
    matrix = landmarks.heatmap_matrix(box)
    in_image = points @ matrix[:, :2].T + matrix[:, 2]
    assert (np.abs(in_image - np.round(in_image)) > 1e-6).all()  # so truncation is not ambiguous
    np.testing.assert_array_equal(in_image.astype(np.int32), theirs_in_image)  # the package truncates


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0])
def test_a_peak_at_a_frame_point_decodes_back_to_it(angle):
    """A spot drawn where the crop puts a frame point comes back to that point, the box turned or not: within the
    decoding's quarter cell plus the package's own offset between its crop and its decoding (a crop pixel each)."""
    box = FaceBox(300.0, 260.0, 150.0, 170.0, angle)
    target = np.array([[280.3, 301.7], [333.1, 240.4]])
    crop_xy = target @ landmarks.crop_matrix(box)[:, :2].T + landmarks.crop_matrix(box)[:, 2]
    centres = (crop_xy + 0.5) / (landmarks.CROP_SIZE / landmarks.HEATMAP_SIZE)  # pixel centre -> map coordinates
    grid = np.arange(landmarks.HEATMAP_SIZE) + 0.5
    heatmaps = np.exp(-((grid[None, None, :] - centres[:, 0, None, None]) ** 2 +
                        (grid[None, :, None] - centres[:, 1, None, None]) ** 2) / (2 * 1.5 ** 2))[None]
    points, _ = landmarks.decode(heatmaps.astype(np.float32))
    matrix = landmarks.heatmap_matrix(box)
    found = points[0] @ matrix[:, :2].T + matrix[:, 2]
    crop_pixel = landmarks.CROP_SCALE * (box.w + box.h) / landmarks.CROP_SIZE
    assert np.abs(found - target).max() <= 3 * crop_pixel, (found, target)


# ---------------------------------------------------------------- the gate

def _spots(peak: float, rng: np.random.Generator) -> np.ndarray:
    """Heatmaps the way a trained FAN draws a well-seen face: a Gaussian spot per point, a little noise around."""
    grid = np.arange(landmarks.HEATMAP_SIZE)
    centres = rng.uniform(10, 54, (68, 2))
    maps = peak * np.exp(-((grid[None, None, :] - centres[:, 0, None, None]) ** 2 +
                           (grid[None, :, None] - centres[:, 1, None, None]) ** 2) / (2 * 1.5 ** 2))
    return (maps + rng.uniform(-0.01, 0.01, maps.shape)).astype(np.float32)[None]


def test_gate_passes_clear_spots_and_fails_weak_ones():
    rng = np.random.default_rng(1)
    for peak, expected in ((0.9, True), (0.6, True), (0.3, False)):
        heatmaps = _spots(peak, rng)
        assert landmarks.passes_gate(heatmaps, landmarks.decode(heatmaps)[1])[0] == expected, peak
    noise = rng.uniform(0.0, 0.9, (1, 68, 64, 64)).astype(np.float32)  # strong peaks, but everywhere
    assert not landmarks.passes_gate(noise, landmarks.decode(noise)[1])[0]


def test_random_weights_fail_the_gate_on_real_faces(fan_file, faces):
    """Untrained weights give busy maps on real faces: every face falls back. The points still come back in
    full-frame pixels when the frame given is a scaled copy (as detection sees it)."""
    model = models.load_landmarker(CheckpointFolder.of(fan_file.parent))
    image = faces["monalisa"][0]
    half = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    (full,), (scaled,) = landmarks.locate(model, [image], [[PORTRAIT_BOX]])[0], landmarks.locate(
        model, [half], [[PORTRAIT_BOX]], scale=0.5)[0]
    assert not full.passed and not scaled.passed
    side = landmarks.CROP_SCALE * (PORTRAIT_BOX.w + PORTRAIT_BOX.h)
    centre = np.array([PORTRAIT_BOX.cx, PORTRAIT_BOX.cy - landmarks.CENTRE_RAISE * PORTRAIT_BOX.h])
    for face in (full, scaled):
        assert face.points.shape == (68, 2) and (np.abs(face.points - centre) <= side / 2).all()


# ---------------------------------------------------------------- geometry on the hand-measured faces

def _five_by_hand(points: np.ndarray) -> np.ndarray:
    return np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize("name", ["monalisa", "talking_head"])
def test_similarity_is_opencvs_lmeds_fit(faces, name):
    points = faces[name][1]
    five = alignment.five_points(points)
    np.testing.assert_allclose(five, _five_by_hand(points))
    ours = alignment.template_similarity(five)
    reference, _ = cv2.estimateAffinePartial2D(_five_by_hand(points).astype(np.float32),
                                               alignment.FFHQ_TEMPLATE_512.astype(np.float32), method=cv2.LMEDS)
    assert np.linalg.norm(_apply(ours, five) - _apply(reference, five), axis=1).max() <= 0.5
    residuals = np.linalg.norm(_apply(ours, five) - alignment.FFHQ_TEMPLATE_512, axis=1)
    print(f"{name}: residuals from the template in the 512 crop (eyes, nose, mouth corners): "
          f"{', '.join(f'{r:.1f}' for r in residuals)} px")
    assert residuals.max() < 25  # a real face is near the template, never on it; swapped points are far off


def test_template_moved_by_a_known_similarity_comes_back():
    angle, scale, shift = math.radians(17.0), 0.37, np.array([41.5, -12.25])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = alignment.FFHQ_TEMPLATE_512 @ rotation.T + shift
    matrix = alignment.template_similarity(moved)
    assert np.abs(_apply(matrix, moved) - alignment.FFHQ_TEMPLATE_512).max() <= 0.01
    back = cv2.invertAffineTransform(matrix)
    assert np.abs(_apply(back, alignment.FFHQ_TEMPLATE_512) - moved).max() <= 0.01


@pytest.mark.parametrize("turn", [15.0, 30.0])
def test_roll_of_the_turned_portrait(faces, turn):
    """The portrait and its hand points turned together by `turn` degrees (counter-clockwise): the roll follows
    within 1°, and the box turned by it crops the same upright face as the unturned portrait's."""
    image, points = faces["monalisa"]
    height, width = image.shape[:2]
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), turn, 1.0)
    turned_image = cv2.warpAffine(image, rotation, (width, height), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    turned = _apply(rotation, points)
    roll, turned_roll = alignment.roll_degrees(points), alignment.roll_degrees(turned)
    assert abs(turned_roll - (roll - turn)) <= 1.0, (roll, turned_roll)

    def upright_crop(frame, pts, angle):
        cx, cy = pts[27:36].mean(axis=0)
        return crop.crop_face(frame, FaceBox(cx, cy, 90, 90, angle)).astype(np.float32)

    reference = upright_crop(image, points, roll)
    assert np.abs(upright_crop(turned_image, turned, turned_roll) - reference).mean() < 4.0
    assert np.abs(upright_crop(turned_image, turned, -turned_roll) - reference).mean() > 12.0  # the wrong way


@pytest.mark.parametrize("name", ["monalisa", "talking_head"])
@pytest.mark.parametrize("kind", ["face", "mouth"])
def test_masks_are_one_inside_their_hull_and_zero_beyond_the_feather(faces, name, kind):
    points = faces[name][1]
    x1, y1 = np.floor(points.min(axis=0)).astype(int) - 40
    x2, y2 = np.ceil(points.max(axis=0)).astype(int) + 40
    bounds = (max(0, x1), max(0, y1), x2, y2)
    feather = 15.0
    if kind == "face":
        mask = alignment.face_mask(points, bounds, feather)
        hull_points = np.concatenate([points[3:14], points[31:36]])
        grow = 0.0
    else:
        mask = alignment.mouth_mask(points, bounds, feather)
        hull_points = points[48:68]
        grow = alignment.MOUTH_GROW * np.linalg.norm(points[54] - points[48])
    assert mask.shape == (bounds[3] - bounds[1], bounds[2] - bounds[0]) and mask.dtype == np.float32
    hull = cv2.convexHull(hull_points.astype(np.float32))
    ys, xs = np.mgrid[bounds[1]:bounds[3], bounds[0]:bounds[2]]
    signed = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in zip(xs.ravel(), ys.ravel())])
    signed = signed.reshape(mask.shape)  # > 0 inside the hull, < 0 outside: pixels from its edge
    assert (mask[signed >= 1.0] == 1.0).all()
    assert (mask[signed <= -(grow + feather + 1.5)] == 0.0).all()
    band = (signed < -(grow + 1.5)) & (signed > -(grow + feather - 1.5))
    assert band.any() and ((mask[band] > 0) & (mask[band] < 1)).all()  # feathered, not cut
