"""Where each checkpoint comes from (a local folder or the Hub, sha256-pinned) and how its weights are read and
checked against the architecture. Loading them into models, once per process, is lipsync.models's job."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import user_cache
from ..errors import CheckpointError

CHECKPOINT_DIR_ENV = "LIPSYNC_CHECKPOINT_DIR"


@dataclass(frozen=True)
class CheckpointFolder:
    """Where user-supplied checkpoints are looked for: a folder (and how it was named, for messages), or none,
    in which case they come from the Hugging Face Hub."""
    path: Path | None
    named_by: str = ""  # "--checkpoint-dir" or the environment variable; "" with no folder

    @classmethod
    def of(cls, override: str | os.PathLike | None) -> "CheckpointFolder":
        """The flag or config value first, then $LIPSYNC_CHECKPOINT_DIR, then none (the Hub)."""
        if override:
            return cls(Path(override).expanduser(), "--checkpoint-dir")
        if os.environ.get(CHECKPOINT_DIR_ENV):
            return cls(Path(os.environ[CHECKPOINT_DIR_ENV]).expanduser(), CHECKPOINT_DIR_ENV)
        return cls(None)


@dataclass(frozen=True)
class CheckpointSpec:
    name: str
    repo_id: str
    filename: str
    sha256: str
    size: int
    # The file's name in a local checkpoint folder; "" for NAME.pth.
    local_file: str = ""
    # The sha256 is the real pin; the revision names the branch the file was listed on (2026-11).
    revision: str = "main"

    @property
    def local_name(self) -> str:
        return self.local_file or f"{self.name}.pth"


REGISTRY: dict[str, CheckpointSpec] = {
    spec.name: spec
    for spec in (
        CheckpointSpec("wav2lip_gan", "camenduru/Wav2Lip", "checkpoints/wav2lip_gan.pth",
                       "ca9ab7b7b812c0e80a6e70a5977c545a1e8a365a6c49d5e533023c034d7ac3d8", 435_801_865),
        # camenduru/Wav2Lip's checkpoints/wav2lip.pth is a broken 167 kB file: take it from numz/wav2lip_studio.
        CheckpointSpec("wav2lip", "numz/wav2lip_studio", "Wav2lip/wav2lip.pth",
                       "b78b681b68ad9fe6c6fb1debc6ff43ad05834a8af8a62ffc4167b7b34ef63c37", 435_807_851),
        CheckpointSpec("s3fd", "camenduru/Wav2Lip", "face_detection/detection/sfd/s3fd.pth",
                       "619a31681264d3f7f7fc7a16a42cbbe8b23f31a256f75a366e5a1bcd59b33543", 89_843_225),
        # The GitHub release asset of GFPGAN v1.3.0, as mirrored on the Hub (same sha256 in several mirrors).
        CheckpointSpec("gfpgan_v1.4", "th2w33knd/GFPGANv1.4", "GFPGANv1.4.pth",
                       "e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad", 348_632_874),
        # SyncNet, the lip-sync scorer: a plain torch.save'd state dict, kept locally under its own name.
        CheckpointSpec("syncnet_v2", "ByteDance/LatentSync-1.5", "auxiliary/syncnet_v2.model",
                       "961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442", 54_573_114,
                       local_file="syncnet_v2.model"),
        # face-alignment 1.4's TorchScript file of the 2DFAN4 landmark network, as LatentSync mirrors it; a local
        # folder keeps the published name.
        CheckpointSpec("fan_2dfan4", "ByteDance/LatentSync-1.5", "auxiliary/2DFAN4-cd938726ad.zip",
                       "cd938726adb1f15f361263cce2db9cb820c42585fa8796ec72ce19107f369a46", 96_316_515,
                       local_file="2DFAN4-cd938726ad.zip"),
    )
}
ENHANCER = "gfpgan_v1.4"
SCORER = "syncnet_v2"
LANDMARKER = "fan_2dfan4"
# BatchNorm's batch counters are no weights: files saved before PyTorch 0.4.1 (the released SyncNet, its size says
# so) lack them, so a copy that has them is accepted, and they are left out of every comparison.
BATCH_COUNTER = "num_batches_tracked"

_lock = threading.Lock()


def how_to_provide(spec: CheckpointSpec) -> str:
    return (f"Download {spec.filename} from the Hugging Face repo {spec.repo_id}, save it as {spec.local_name} in "
            f"a folder, and give that folder as the checkpoint folder (--checkpoint-dir, or {CHECKPOINT_DIR_ENV} "
            f"for every command).")


def checkpoint_file(name: str, folder: CheckpointFolder) -> Path:
    """Path of a usable checkpoint file: from the local folder if one is set, else the Hub (sha256-checked)."""
    spec = REGISTRY[name]
    if folder.path is not None:
        path = folder.path / spec.local_name
        if not path.is_file():
            instead = ("leave out --checkpoint-dir" if folder.named_by == "--checkpoint-dir"
                       else f"unset {folder.named_by}")
            raise CheckpointError(f"{spec.local_name} is not in the checkpoint folder {folder.path}. Put it there, "
                                  f"or {instead} to download it from the Hub ({spec.repo_id}).")
        return path
    return _download(spec)


def is_present(name: str, folder: CheckpointFolder) -> bool:
    """Whether the checkpoint is at hand without a download: in the folder, or in the Hub's local cache."""
    spec = REGISTRY[name]
    if folder.path is not None:
        return (folder.path / spec.local_name).is_file()
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(spec.repo_id, spec.filename, revision=spec.revision), str)


def _download(spec: CheckpointSpec) -> Path:
    from huggingface_hub import hf_hub_download

    def fetch(force: bool) -> Path:
        try:
            return Path(hf_hub_download(spec.repo_id, spec.filename, revision=spec.revision, force_download=force))
        except Exception as exc:  # offline, repo gone, rate-limited: all end the same way for the user
            raise CheckpointError(f"Could not fetch {spec.filename} from the Hugging Face Hub ({spec.repo_id}): "
                                  f"{_why_not_fetched(exc)}. {how_to_provide(spec)}") from exc

    path = fetch(force=False)
    if _matches(path, spec):
        return path
    try:
        path = fetch(force=True)  # a tampered or truncated cached copy: fetch it again, once
    except CheckpointError as exc:
        raise CheckpointError(f"The cached {spec.filename} failed its sha256 check and could not be downloaded "
                              f"again. {how_to_provide(spec)}") from exc
    if _matches(path, spec):
        return path
    raise CheckpointError(f"{spec.filename} from {spec.repo_id} failed its sha256 check (expected {spec.sha256[:12]}…): "
                          f"the file is corrupt or was replaced. {how_to_provide(spec)}")


def _why_not_fetched(exc: Exception) -> str:
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RemoteEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    if isinstance(exc, LocalEntryNotFoundError):
        return "it is not in the local cache, and the Hub cannot be reached or HF_HUB_OFFLINE is set"
    if isinstance(exc, GatedRepoError):
        return "the repository asks for access; log in with a token that has it"
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError, RemoteEntryNotFoundError)):
        return "the Hub no longer has that file at that revision"
    return f"the Hub could not be reached ({type(exc).__name__})"


def _matches(path: Path, spec: CheckpointSpec) -> bool:
    stat = path.stat()
    if stat.st_size != spec.size:
        return False
    return sha256_of(path) == spec.sha256


def sha256_of(path: Path) -> str:
    """A checkpoint's sha256, remembered on disk too (by path, size and mtime), so a large file is hashed once
    and not again in the next process."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = f"{real}:{stat.st_size}:{stat.st_mtime_ns}"
    with _lock:
        stamps = _read_stamps()
    if key in stamps:
        return stamps[key]
    digest = user_cache.file_digest(real)
    with _lock:
        stamps = _read_stamps()
        stamps[key] = digest
        try:
            user_cache.write_atomically(_stamp_file(), json.dumps(stamps).encode())
        except OSError:
            pass  # a read-only home only costs a re-hash in the next process
    return digest


def _stamp_file() -> Path:
    """Where verified sha256 sums are remembered between processes."""
    return user_cache.folder() / "verified.json"


def _read_stamps() -> dict[str, str]:
    try:
        return json.loads(_stamp_file().read_text())
    except (OSError, ValueError):
        return {}


def _torch_load(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path.name} could not be read as a PyTorch checkpoint ({type(exc).__name__}). "
                              f"It may be truncated or not a checkpoint at all.") from exc


def check_state_dict(found: dict, expected: dict, source: str) -> None:
    """Refuse a checkpoint whose keys or shapes differ from the architecture, naming the first difference."""
    for key, tensor in expected.items():
        if key not in found:
            raise CheckpointError(f"{source} is not a matching checkpoint: key {key!r} is missing.")
        if tuple(found[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{source} is not a matching checkpoint: {key!r} has shape "
                                  f"{tuple(found[key].shape)}, expected {tuple(tensor.shape)}.")
    extra = [key for key in found if key not in expected]
    if extra:
        raise CheckpointError(f"{source} is not a matching checkpoint: unexpected key {extra[0]!r}.")


def wav2lip_state_dict(path: Path) -> dict:
    raw = _torch_load(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path.name} is not a Wav2Lip checkpoint: it holds no dictionary of weights.")
    weights = raw.get("state_dict", raw)
    return {key.removeprefix("module."): value for key, value in weights.items()}


def s3fd_state_dict(path: Path) -> dict:
    """S3FD's weights, checked against face-alignment's network key by key and shape by shape."""
    from face_alignment.detection.sfd.net_s3fd import s3fd

    raw = _torch_load(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path.name} is not an S3FD checkpoint: it holds no dictionary of weights.")
    check_state_dict(raw, s3fd().state_dict(), path.name)
    return raw


def gfpgan_state_dict(path: Path) -> dict:
    """The EMA weights of a GFPGAN checkpoint (the released files keep the ones to use under `params_ema`)."""
    raw = _torch_load(path)
    weights = raw.get("params_ema", raw.get("params")) if isinstance(raw, dict) else None
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path.name} is not a GFPGAN checkpoint: it holds no params_ema or params weights.")
    return weights


def without_batch_counters(weights: dict) -> dict:
    """The weights but BatchNorm's batch counters (see BATCH_COUNTER)."""
    return {key: value for key, value in weights.items() if not key.endswith(BATCH_COUNTER)}


def syncnet_state_dict(path: Path) -> dict:
    """SyncNet's weights from a plain state dict, without BatchNorm's batch counters."""
    raw = _torch_load(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path.name} is not a SyncNet checkpoint: it holds no dictionary of weights.")
    return without_batch_counters(raw)


def fan_state_dict(path: Path) -> dict:
    """The weights of a TorchScript FAN file (face-alignment 1.4's format), without BatchNorm's batch counters."""
    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path.name} could not be read as a TorchScript file ({type(exc).__name__}). "
                              f"It may be truncated or not the landmark model at all.") from exc
    return without_batch_counters(dict(scripted.state_dict()))
