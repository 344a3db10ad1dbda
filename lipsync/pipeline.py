"""The one entry point: a face and speech in, an MP4 out, streamed from decoder to model to encoder."""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import audio, blend, checkpoints, face, media, tts, video
from .config import LipSyncConfig
from .errors import AudioError, FaceError, LipSyncError
from .model import FACE_SIZE

ProgressFn = Callable[[float, str], None]
WORK_DIR_PREFIX = "lipsync-"
# Share of the progress bar given to each stage.
STAGES = {"speech": (0.0, 0.05), "detect": (0.05, 0.25), "generate": (0.25, 0.97), "encode": (0.97, 1.0)}
QUEUE_FRAMES = 32  # frames in flight between decoder, model and encoder


@dataclass(frozen=True)
class Result:
    path: Path
    duration: float  # seconds of speech, and of the video within one frame
    frames: int
    fps: float
    width: int
    height: int
    synced_frames: int  # frames where a mouth was generated
    tts_engine: str | None
    tts_fallback_reason: str | None
    seconds: float  # wall time of the whole request


def _report(progress: ProgressFn | None, stage: str, fraction: float) -> None:
    if progress is not None:
        start, end = STAGES[stage]
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), stage)


@contextmanager
def work_dir() -> Iterator[Path]:
    """A private folder for one request, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def resolve_device(config: LipSyncConfig) -> str:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise LipSyncError("--device cuda was asked for, but no CUDA GPU is available here; use --device cpu.")
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def batch_size(config: LipSyncConfig, device: str) -> int:
    if config.batch_size:
        return config.batch_size
    if device == "cuda":
        gib = torch.cuda.get_device_properties(0).total_memory / 2**30
        return int(min(256, max(32, gib * 4)))
    return 16


def generate(face_path: str | os.PathLike, out_path: str | os.PathLike, *, audio_path: str | os.PathLike | None = None,
             text: str | None = None, lang: str = "en", slow: bool = False, config: LipSyncConfig = LipSyncConfig(),
             progress: ProgressFn | None = None, on_segment: video.SegmentFn | None = None) -> Result:
    """Make `out_path` (MP4) where the face in `face_path` speaks `audio_path`, or `text` in `lang`.

    on_segment, for a preview while the video is made: called with each MPEG-TS segment (H.264 + AAC; the first
    video.FIRST_SEGMENT_SECONDS long so the preview starts sooner, then video.SEGMENT_SECONDS each, the last one
    shorter) cut from the same encode as soon as it is complete, in order, the last one before generate returns;
    joined byte for byte they play as the whole video. It runs on a watcher thread, never concurrently with itself. The file lies in the request's work folder, removed when generate
    returns: read, copy or move it (it is not touched again) before the callback returns. An exception raised by
    on_segment stops the request and is raised by generate. Without it, no segments are made."""
    started = time.perf_counter()
    if (audio_path is None) == (text is None):
        raise LipSyncError("Give either a speech recording or a text to speak, not both or neither.")
    face_path = _existing(face_path, "face image or video", FaceError, config)
    if audio_path is not None:
        audio_path = _existing(audio_path, "speech recording", AudioError, config)
    out_path = video.check_output(out_path)
    device = resolve_device(config)
    # Load (or find loaded) models before any slow work, so a missing checkpoint fails at once.
    model = checkpoints.load_generator(config.checkpoint, device, config.checkpoint_dir)
    detector = face.get_detector(config, device) if config.box is None else None
    with work_dir() as work:
        _report(progress, "speech", 0.0)
        spoken = None
        if text is not None:
            spoken = tts.synthesize(text, lang, work, config.max_text_chars, slow)
            audio_path = spoken.path
        speech = audio.load_speech(audio_path, work, config.max_audio_seconds)
        _report(progress, "speech", 1.0)
        source = video.open_face(face_path, config.output_size, config.max_image_pixels, config.still_fps)
        fps = float(source.fps)
        n_out = audio.frame_count(speech.duration, fps)
        plan = _plan(source, n_out, detector, config, progress)
        mel = audio.melspectrogram(speech.samples)
        strength = (audio.speech_weights(speech.samples, fps, n_out) if config.keep_silence
                    else np.ones(n_out, np.float32))
        encoded = work / "out.mp4"
        synced = _render(source, plan, n_out, mel, strength, model, device, config, encoded, speech.mux_path,
                         work, progress, on_segment)
        _report(progress, "encode", 1.0)
        video.place_output(encoded, out_path)
    return Result(out_path, speech.duration, n_out, fps, source.width, source.height, synced,
                  spoken.engine if spoken else None, spoken.fallback_reason if spoken else None,
                  time.perf_counter() - started)


SPOKEN_CHARS_PER_SECOND = {False: 14.0, True: 9.0}  # rough speaking rate of gTTS / espeak-ng, normal and slow


def estimate_frames(face_path: str | os.PathLike, *, audio_path: str | os.PathLike | None = None,
                    text: str | None = None, slow: bool = False, config: LipSyncConfig = LipSyncConfig()) -> int:
    """About how many frames a request will generate, from the headers alone (for sizing a GPU time slot)."""
    fps = config.still_fps
    info = media.probe(face_path, "face video")
    if info is not None and info.video is not None and info.video.fps and info.video.codec not in media.IMAGE_CODECS:
        fps = float(info.video.fps)
    if audio_path is not None:
        speech = media.probe(audio_path, "audio")
        seconds = speech.audio_duration if speech is not None else 0.0
    else:
        seconds = len((text or "").strip()) / SPOKEN_CHARS_PER_SECOND[slow]
    return audio.frame_count(min(seconds, config.max_audio_seconds), fps)


def find_faces(face_path: str | os.PathLike, config: LipSyncConfig = LipSyncConfig()
               ) -> tuple[np.ndarray, list[face.FaceBox]]:
    """The first frame (BGR) of a face image or video and the faces in it, in face_index order."""
    face_path = _existing(face_path, "face image or video", FaceError, config)
    source = video.open_face(face_path, config.output_size, config.max_image_pixels, config.still_fps)
    frame = source.still
    if frame is None:
        frames = video.iter_video_frames(source, source.width, source.height, config.subprocess_timeout)
        frame = next(frames, None)
        frames.close()
        if frame is None:
            raise FaceError(f"'{source.path.name}' has no frames.")
    detector = face.get_detector(config, "cpu") if config.box is None else None
    # Through the detection cache: the generation that follows the preview finds these detections there.
    return frame, face.order_faces(_detections(source, 1, detector, config, None)[0])


def _existing(path, what: str, error: type[LipSyncError], config: LipSyncConfig) -> Path:
    path = Path(path)
    if not path.is_file():
        raise error(f"The {what} '{path.name}' does not exist.")
    size = path.stat().st_size
    if size == 0:
        raise error(f"The {what} '{path.name}' is empty (0 bytes).")
    if size > config.max_upload_bytes:
        raise error(f"The {what} '{path.name}' is {size / 2**20:.0f} MB; the limit is "
                    f"{config.max_upload_bytes / 2**20:.0f} MB.")
    return path


def _detections(source: video.FaceInput, needed: int, detector, config: LipSyncConfig,
                progress: ProgressFn | None) -> list[list[face.FaceBox]]:
    """Faces in the first `needed` frames of the input (all of them, if it has fewer), from the cache when the
    same bytes were seen with the same settings."""
    scale = face.detection_scale(source.width, source.height, source.is_still)
    small = (max(2, round(source.width * scale)), max(2, round(source.height * scale)))
    key = (checkpoints.hash_file(source.path), source.width, source.height, str(source.fps), config.detector,
           config.align_roll, str(checkpoints.checkpoint_dir(config.checkpoint_dir)), config.box)

    def detect(needed: int) -> tuple[list[list[face.FaceBox]], bool]:
        if source.is_still:
            if config.box is not None:
                return [[face.fixed_box(config, source.width, source.height)]], True
            return face.detect_frames(detector, [source.still], 1.0, None, config.align_roll), True
        frames = itertools.islice(video.iter_video_frames(source, *small, config.subprocess_timeout), needed + 1)
        if config.box is not None:  # only the frame count is needed
            box = face.fixed_box(config, source.width, source.height)
            found = [[box] for _ in frames]
        else:
            found = face.detect_in_batches(detector, frames, scale, config.align_roll,
                                           lambda done: _report(progress, "detect", done / min(needed + 1, 10**6)),
                                           stride=face.VIDEO_DETECT_STRIDE)
        # One frame past the need tells whether the video ended first.
        return found[:needed], len(found) <= needed

    found = face.detect_input(key, needed, detect)
    if not found:
        raise FaceError(f"'{source.path.name}' has no frames.")
    return found


def _plan(source: video.FaceInput, n_out: int, detector, config: LipSyncConfig,
          progress: ProgressFn | None) -> list[list[face.FaceBox]]:
    """Boxes to sync per source frame. Only the frames the speech needs are decoded: the plan is shorter than
    n_out only when the whole video is, and then its length is the video's frame count."""
    _report(progress, "detect", 0.0)
    found = _detections(source, n_out, detector, config, progress)
    _report(progress, "detect", 1.0)
    if config.box is not None:
        return found
    fps = float(source.fps)

    def where(n: int) -> str:
        return "the image" if source.is_still else f"any of the {n} frames (0–{n / fps:.1f} s)"

    return face.plan_faces(found, config, fps, source.width, source.height, where)


def _ping_pong(index: int, count: int) -> int:
    """Frame of a video played forward, then backward, then forward… so a loop never jumps."""
    if count == 1:
        return 0
    period = 2 * (count - 1)
    step = index % period
    return step if step < count else period - step


class _Worker(threading.Thread):
    """A daemon thread whose exception is re-raised in the caller by join_or_raise()."""

    def __init__(self, target: Callable[[], None]):
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def join_or_raise(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


_STOP = object()


def _put(channel: queue.Queue, item, consumer_alive: Callable[[], bool]) -> bool:
    """Put without blocking forever: gives up (False) once the consumer is gone."""
    while consumer_alive():
        try:
            channel.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


def _get(channel: queue.Queue, producer: _Worker):
    """Next item, or _STOP once the producer has ended; its error is raised here."""
    while True:
        try:
            return channel.get(timeout=0.2)
        except queue.Empty:
            if not producer.is_alive() and channel.empty():
                producer.join_or_raise()
                return _STOP


def _frames(source: video.FaceInput, n_out: int, n_src: int, work: Path, timeout: float) -> Iterator[np.ndarray]:
    """I420 source frames for output frames 0..n_out-1: the still repeated, or the video trimmed or ping-ponged."""
    if source.is_still:
        still = blend.to_i420(source.still)
        for _ in range(n_out):
            yield still
        return
    loops = n_out > n_src
    shape = (source.height * 3 // 2, source.width)
    frame_bytes = shape[0] * shape[1]
    spill = open(work / "frames.raw", "w+b") if loops else None  # raw frames, only to play them backwards
    try:
        produced = 0
        last = None
        for frame in video.iter_video_frames(source, source.width, source.height, timeout, "yuv420p"):
            if produced == n_out:
                break
            if spill:
                spill.write(frame.data)
            yield frame
            last = frame
            produced += 1
        while produced < min(n_out, n_src):  # the decoder gave fewer frames than detection counted
            yield last
            produced += 1
        for index in range(produced, n_out):
            spill.seek(_ping_pong(index, produced) * frame_bytes)
            yield np.frombuffer(spill.read(frame_bytes), np.uint8).reshape(shape)
    finally:
        if spill:
            spill.close()


def _render(source: video.FaceInput, plan: list[list[face.FaceBox]], n_out: int, mel: np.ndarray,
            strength: np.ndarray, model: torch.nn.Module, device: str, config: LipSyncConfig, out: Path,
            speech_path: Path, work: Path, progress: ProgressFn | None, on_segment: video.SegmentFn | None) -> int:
    """Decode, generate and encode in three overlapping stages joined by bounded queues."""
    fps = float(source.fps)
    n_src = len(plan)
    size = batch_size(config, device)
    decoded: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
    generated: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
    running = threading.Event()
    running.set()
    encoder = video.Encoder(out, source.width, source.height, source.fps, speech_path, config.subprocess_timeout,
                            on_segment)

    def decode() -> None:
        for index, frame in enumerate(_frames(source, n_out, n_src, work, config.subprocess_timeout)):
            if not _put(decoded, (index, frame), running.is_set):
                return

    def encode() -> None:
        while running.is_set():
            try:
                item = generated.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _STOP:
                return
            frame, boxes, mouths, crops, weight = item
            if boxes:
                frame = frame.copy()
                for box, mouth, crop in zip(boxes, mouths, crops):
                    blend.paste(frame, box, mouth, crop, config.blend, config.color_match, weight)
            encoder.write(frame)

    decoder, writer = _Worker(decode), _Worker(encode)
    decoder.start()
    writer.start()
    synced = 0
    try:
        pending: list[tuple] = []  # (frame, boxes, crops, weight) waiting for the model
        inputs: list[tuple[np.ndarray, np.ndarray]] = []  # (crop, mel window), one per face to generate
        done = False
        while not done:
            item = _get(decoded, decoder)
            done = item is _STOP
            if not done:
                index, frame = item
                boxes = plan[0 if source.is_still else _ping_pong(index, n_src)]
                weight = float(strength[index])
                crops = [blend.crop_face_i420(frame, box) for box in boxes] if weight > 0 else []
                window = audio.mel_window(mel, fps, index)
                inputs += [(crop, window) for crop in crops]
                pending.append((frame, boxes if crops else [], crops, weight))
            if pending and (done or len(inputs) >= size):
                mouths = _generate(model, inputs, device) if inputs else []
                cursor = 0
                for frame, boxes, crops, weight in pending:
                    synced += bool(boxes)
                    item = (frame, boxes, mouths[cursor:cursor + len(boxes)], crops, weight)
                    cursor += len(boxes)
                    if not _put(generated, item, writer.is_alive):
                        writer.join_or_raise()
                pending, inputs = [], []
                _report(progress, "generate", (index + 1) / n_out)
        _put(generated, _STOP, writer.is_alive)
        writer.join_or_raise()
        _report(progress, "encode", 0.0)
        encoder.finish()
    except BaseException:
        running.clear()
        encoder.abort()
        decoder.join(timeout=10)
        writer.join(timeout=10)
        raise
    return synced


def _generate(model: torch.nn.Module, inputs: list[tuple[np.ndarray, np.ndarray]], device: str) -> np.ndarray:
    """Run the generator on (crop, mel window) pairs; returns (N, 96, 96, 3) float BGR in 0..255."""
    crops = np.stack([crop for crop, _ in inputs]).astype(np.float32) / 255.0
    masked = crops.copy()
    masked[:, FACE_SIZE // 2:] = 0.0  # the model fills in the lower half
    faces = torch.from_numpy(np.concatenate([masked, crops], axis=3).transpose(0, 3, 1, 2))
    mels = torch.from_numpy(np.stack([window for _, window in inputs])[:, None])
    cuda = device == "cuda"
    if cuda:
        faces, mels = faces.pin_memory().to(device, non_blocking=True), mels.pin_memory().to(device, non_blocking=True)
    faces = faces.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
        out = model(mels, faces)
    return out.float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
