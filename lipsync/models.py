"""The models a request needs, loaded once per process into one cache: the generator, the face detector, the
face enhancer, the landmark model and the lip-sync scorer, each for a resolved runtime."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch

from .config import LipSyncConfig
from .errors import CheckpointError
from .faces.detectors import Detector, HaarDetector, S3FDDetector
from .faces.enhance import FaceEnhancer
from .faces.landmarks import new_fan
from .nets import checkpoints
from .nets.checkpoints import CheckpointFolder
from .nets.gfpgan import GFPGAN
from .nets.mouths import MouthRunner
from .nets.syncnet import SyncNet, weights_of
from .nets.wav2lip import Wav2Lip
from .runtime import Runtime, resolve

T = TypeVar("T")
_lock = threading.RLock()  # held while a model is built: a second request for it waits and then shares it
_cache: dict[tuple, object] = {}


@dataclass(frozen=True)
class Models:
    mouths: MouthRunner
    detector: Detector | None  # None with a fixed face box
    landmarker: torch.nn.Module | None  # FAN(4); None unless the runtime finds landmarks
    enhancer: FaceEnhancer | None  # None unless the runtime enhances faces
    scorer: SyncNet | None = None  # None unless the runtime scores the result and (for auto) its file is at hand


def _cached(key: tuple, build: Callable[[], T]) -> T:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def load(config: LipSyncConfig, runtime: Runtime | None = None) -> Models:
    """Everything the request needs, from the cache. Also the warm-up of the app, the CLIs and the bench: a
    missing checkpoint fails here, before any slow work."""
    runtime = runtime or resolve(config)
    detector = (load_detector(config.detector, runtime.checkpoints, runtime.device, runtime.detector_dtype)
                if config.box is None else None)
    landmarker = load_landmarker(runtime.checkpoints, runtime.device) if runtime.landmarks else None
    enhancer = (load_enhancer(runtime.checkpoints, runtime.device, runtime.enhancer_dtype)
                if runtime.enhance else None)
    return Models(load_mouth_runner(config.checkpoint, runtime), detector, landmarker, enhancer, scorer=_scorer(config, runtime))



def load_mouth_runner(checkpoint: str, runtime: Runtime) -> MouthRunner:
    """The Wav2Lip net from the cache, run at the runtime's device, precision and batch size."""
    return MouthRunner(load_generator(checkpoint, runtime.checkpoints, runtime.device, runtime.dtype),
                       runtime.device, runtime.dtype, runtime.batch_size)


def _scorer(config: LipSyncConfig, runtime: Runtime) -> SyncNet | None:
    """score=on: SyncNet, or the checkpoint's error; auto: SyncNet where its file can be had, else none, since a
    generation that did not ask for a score is never stopped by the scorer's file."""
    if not runtime.score:
        return None
    try:
        return load_syncnet(runtime.checkpoints, runtime.device, runtime.score_dtype)
    except CheckpointError:
        if config.score == "on":
            raise
        return None


def load_generator(name: str, folder: CheckpointFolder, device: str = "cpu",
                   dtype: torch.dtype = torch.float32) -> Wav2Lip:
    """The generator with BatchNorm folded; one copy per device and dtype, made once from the fp32 CPU one."""
    path = checkpoints.checkpoint_file(name, folder)
    base = _cached(("generator", str(path)), lambda: _build_generator(path))
    if device == "cpu" and dtype == torch.float32:
        return base
    return _cached(("generator", str(path), device, dtype), lambda: copy.deepcopy(base).to(device, dtype))


def _build_generator(path) -> Wav2Lip:
    with torch.device("meta"):  # shapes only: no time spent on a random initialisation the file replaces
        model = Wav2Lip()
    weights = checkpoints.wav2lip_state_dict(path)
    checkpoints.check_state_dict(weights, model.state_dict(), path.name)
    model.load_state_dict(weights, assign=True)
    return model.eval().fold_batchnorm().to(memory_format=torch.channels_last)


def load_detector(kind: str, folder: CheckpointFolder, device: str = "cpu",
                  dtype: torch.dtype = torch.float32) -> Detector:
    if kind == "haar":
        return _cached(("detector", "haar"), HaarDetector)
    path = checkpoints.checkpoint_file("s3fd", folder)
    return _cached(("detector", str(path), device, dtype),
                   lambda: S3FDDetector(checkpoints.s3fd_state_dict(path), device, dtype))


def load_landmarker(folder: CheckpointFolder, device: str = "cpu",
                    dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """FAN(4) with the registry's weights, checked key by key and shape by shape. fp32 is what requests get: in
    bf16 on the CPU its points move by more than half a pixel."""
    path = checkpoints.checkpoint_file(checkpoints.LANDMARKER, folder)

    def build() -> torch.nn.Module:
        model = new_fan()
        weights = checkpoints.fan_state_dict(path)
        checkpoints.check_state_dict(weights, checkpoints.without_batch_counters(model.state_dict()), path.name)
        model.load_state_dict(weights, strict=False)  # strict but for the batch counters, checked just above
        return model.eval().to(device, dtype, memory_format=torch.channels_last)

    return _cached(("landmarker", str(path), device, dtype), build)


def load_enhancer(folder: CheckpointFolder, device: str = "cpu", dtype: torch.dtype = torch.float32) -> FaceEnhancer:
    """GFPGAN v1.4, in bf16 or fp32."""
    FaceEnhancer.check_dtype(dtype)
    path = checkpoints.checkpoint_file(checkpoints.ENHANCER, folder)

    def build() -> FaceEnhancer:
        with torch.device("meta"):  # shapes only: the weights come from the file
            net = GFPGAN()
        weights = checkpoints.gfpgan_state_dict(path)
        checkpoints.check_state_dict(weights, net.state_dict(), path.name)
        net.load_state_dict(weights, assign=True)
        return FaceEnhancer(net.eval().to(device, dtype).channels_last())

    return _cached(("enhancer", str(path), device, dtype), build)


def load_syncnet(folder: CheckpointFolder, device: str = "cpu", dtype: torch.dtype = torch.float32) -> SyncNet:
    """SyncNet from syncnet_v2.model, checked name by name and shape by shape, its lip tower folded for inference."""
    path = checkpoints.checkpoint_file(checkpoints.SCORER, folder)

    def build() -> SyncNet:
        model = SyncNet()
        weights = checkpoints.syncnet_state_dict(path)
        checkpoints.check_state_dict(weights, weights_of(model), path.name)
        model.load_state_dict(weights, strict=False)  # strict but for the batch counters, left out just above
        return model.eval().fold_time().to(device, dtype)

    return _cached(("syncnet", str(path), device, dtype), build)
