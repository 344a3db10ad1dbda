"""Checkpoint registry: local folders checked by keys and shapes, Hub files by sha256, offline failures explained."""

import dataclasses
import shutil

import pytest
import torch

from lipsync import models, user_cache
from lipsync.errors import CheckpointError
from lipsync.nets import checkpoints
from lipsync.nets.checkpoints import REGISTRY
from lipsync.runtime import CheckpointFolder

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_registry_pins_the_published_files():
    assert REGISTRY["wav2lip_gan"].sha256.startswith("ca9ab7b7")
    assert REGISTRY["s3fd"].size == 89_843_225
    assert REGISTRY["wav2lip"].repo_id != "camenduru/Wav2Lip"  # that repo's wav2lip.pth is a broken 167 kB file
    scorer = REGISTRY[checkpoints.SCORER]
    assert (scorer.repo_id, scorer.filename, scorer.size) == ("ByteDance/LatentSync-1.5", "auxiliary/syncnet_v2.model",
                                                              54_573_114)
    assert scorer.sha256.startswith("961e8696") and scorer.local_name == "syncnet_v2.model"


def test_random_checkpoint_loads_through_the_real_loader(checkpoint_dir):
    raw = torch.load(checkpoint_dir / "wav2lip_gan.pth", weights_only=True)
    assert set(raw) >= {"state_dict", "optimizer", "global_step", "global_epoch"}
    assert all(key.startswith("module.") for key in raw["state_dict"])
    model = models.load_generator("wav2lip_gan", CheckpointFolder.of(None))
    assert torch.equal(model.output_block[1].bias, raw["state_dict"]["module.output_block.1.bias"])


def _local_copy(tmp_path, checkpoint_dir, edit) -> str:
    raw = torch.load(checkpoint_dir / "wav2lip.pth", weights_only=True)
    edit(raw["state_dict"])
    torch.save(raw, tmp_path / "wav2lip.pth")
    return str(tmp_path)


def test_missing_key_is_named(tmp_path, checkpoint_dir):
    folder = _local_copy(tmp_path, checkpoint_dir, lambda sd: sd.pop("module.audio_encoder.3.conv_block.0.weight"))
    with pytest.raises(CheckpointError, match=r"audio_encoder\.3\.conv_block\.0\.weight.*missing"):
        models.load_generator("wav2lip", CheckpointFolder.of(folder))


def test_wrong_shape_is_named(tmp_path, checkpoint_dir):
    def shrink(sd):
        sd["module.output_block.1.weight"] = torch.zeros(3, 16, 1, 1)

    folder = _local_copy(tmp_path, checkpoint_dir, shrink)
    with pytest.raises(CheckpointError, match=r"output_block\.1\.weight.*\(3, 16, 1, 1\).*\(3, 32, 1, 1\)"):
        models.load_generator("wav2lip", CheckpointFolder.of(folder))


def test_not_a_checkpoint_is_refused(tmp_path):
    (tmp_path / "wav2lip.pth").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read as a PyTorch checkpoint"):
        models.load_generator("wav2lip", CheckpointFolder.of(tmp_path))


def test_wrong_s3fd_file_is_refused(tmp_path, checkpoint_dir):
    shutil.copy(checkpoint_dir / "wav2lip.pth", tmp_path / "s3fd.pth")
    with pytest.raises(CheckpointError, match="s3fd.pth is not a matching checkpoint"):
        models.load_detector("s3fd", CheckpointFolder.of(tmp_path))


def test_missing_local_file_says_where(tmp_path):
    with pytest.raises(CheckpointError, match=r"wav2lip_gan\.pth"):
        checkpoints.checkpoint_file("wav2lip_gan", CheckpointFolder.of(tmp_path))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, checkpoint_dir):
    """A pre-filled, offline Hugging Face cache holding our random-weight file where the Hub's would be."""
    from huggingface_hub import constants

    monkeypatch.delenv("LIPSYNC_CHECKPOINT_DIR")
    monkeypatch.setenv("LIPSYNC_CACHE", str(tmp_path / "stamps"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = REGISTRY["wav2lip_gan"]
    repo = tmp_path / "hub" / f"models--{spec.repo_id.replace('/', '--')}"
    target = repo / "snapshots" / COMMIT / spec.filename
    target.parent.mkdir(parents=True)
    shutil.copy(checkpoint_dir / "wav2lip_gan.pth", target)
    (repo / "refs").mkdir()
    (repo / "refs" / spec.revision).write_text(COMMIT)
    return target


def test_hub_file_with_wrong_sha256_is_refused(hub_cache):
    with pytest.raises(CheckpointError, match="sha256 check"):
        checkpoints.checkpoint_file("wav2lip_gan", CheckpointFolder.of(None))


def test_hub_file_with_right_sha256_is_used_and_hashed_once(hub_cache, monkeypatch):
    spec = dataclasses.replace(REGISTRY["wav2lip_gan"], sha256=user_cache.hash_file(hub_cache),
                               size=hub_cache.stat().st_size)
    monkeypatch.setitem(REGISTRY, "wav2lip_gan", spec)
    hub = CheckpointFolder.of(None)
    calls = []
    real_hash = user_cache.hash_file
    monkeypatch.setattr(user_cache, "hash_file", lambda path, algorithm="sha256": calls.append(path) or
                        real_hash(path, algorithm))
    assert checkpoints.checkpoint_file("wav2lip_gan", hub).samefile(hub_cache)
    assert checkpoints.checkpoint_file("wav2lip_gan", hub).samefile(hub_cache)
    assert len(calls) == 1
    # A later process finds the stamp on disk and does not hash again either.
    user_cache._digest.cache_clear()
    checkpoints.checkpoint_file("wav2lip_gan", hub)
    assert len(calls) == 1
    # A tampered file (same name, new content) is hashed again and refused; offline, it cannot be re-fetched.
    with open(hub_cache, "r+b") as handle:
        handle.seek(1000)
        handle.write(b"tampered")
    with pytest.raises(CheckpointError, match="sha256 check"):
        checkpoints.checkpoint_file("wav2lip_gan", hub)


def test_offline_without_files_explains_how_to_provide_them(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("LIPSYNC_CHECKPOINT_DIR")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(CheckpointError) as caught:
        checkpoints.checkpoint_file("s3fd", CheckpointFolder.of(None))
    message = str(caught.value)
    assert "face_detection/detection/sfd/s3fd.pth" in message and "camenduru/Wav2Lip" in message
    assert "LIPSYNC_CHECKPOINT_DIR" in message and "\n" not in message
    assert "not in the local cache" in message  # the reason, in words
