"""Decode, generate (and restore) and encode in overlapping stages joined by bounded queues."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .config import LipSyncConfig
from .faces import crop, enhance, paste
from .faces.boxes import FaceBox
from .faces.enhance import FaceEnhancer
from .media import encode, stream, video
from .nets.mouths import MouthRunner
from .progress import ProgressFn, Stage, report
from .speech.track import GrowingSpeech, WholeSpeech

QUEUE_FRAMES = 32  # frames in flight between decoder, model and encoder
# Frames per model call until the preview's first segment is out. x264 closes that segment only some frames
# after its last one, so full batches would hold it back by up to a batch; on the CPU a call of 8 frames costs
# about what one of 16 does per frame (README, Performance).
PREVIEW_BATCH = 8


@dataclass
class Frame:
    """One output frame on its way: the decoded I420 picture and the faces to sync in it."""
    picture: np.ndarray
    boxes: list[FaceBox]  # empty where nothing is generated (silence)
    crops: list[np.ndarray]  # the 96×96 crops the model sees, one per box
    speech_weight: float  # how much of the generated mouth shows: 1 while speaking, fading to 0 in silences
    window: np.ndarray | None = None  # its mel window, for each of its faces
    mouths: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """What the render stages need to know of one request."""
    source: video.FaceInput
    plan: list[list[FaceBox]]  # boxes per source frame; a fixed box's one entry stands for every frame
    speech: WholeSpeech | GrowingSpeech  # growing only for a still, whose frames need no count up front
    config: LipSyncConfig
    work: Path


MouthsFn = Callable[[list["Frame"], list[np.ndarray]], np.ndarray]  # (frames, their mel windows) -> mouths


def render(request: Request, runner: MouthRunner, enhancer: FaceEnhancer | None, out: Path,
           progress: ProgressFn | None, on_segment: encode.SegmentFn | None = None) -> tuple[int, int]:
    """Write the lip-synced video to `out` (and preview segments to on_segment, if given); returns the number of
    frames where a mouth was generated, and of those where a face had landmarks."""
    source, config = request.source, request.config
    decoded: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
    generated: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
    running = threading.Event()
    running.set()
    still_crops = _still_crops(request)
    mouths = _mouth_maker(runner, still_crops)
    # Mouths are pasted by the encoding thread, off the model's; enhancing faces needs them pasted before it.
    paste_early = enhancer is not None
    encoder = encode.Encoder(out, source.width, source.height, source.fps, request.speech.audio,
                             config.subprocess_timeout, on_segment)
    decoder = stream.Worker(lambda: _decode(request, decoded, running, still_crops))
    writer = stream.Worker(lambda: _encode(generated, running, encoder, config, paste_here=not paste_early))
    decoder.start()
    writer.start()
    try:
        counts = _generate(request, decoded, decoder, generated, writer, mouths,
                           lambda: min(runner.size, PREVIEW_BATCH) if encoder.awaiting_first_segment
                           else runner.size,
                           enhancer, progress)
        stream.put(generated, stream.STOP, writer.is_alive)
        writer.join_or_raise()
        report(progress, Stage.ENCODE, 0.0)
        encoder.finish()
    except BaseException:
        running.clear()
        if isinstance(request.speech, GrowingSpeech):
            request.speech.stop()
        encoder.abort()
        decoder.join(timeout=10)
        writer.join(timeout=10)
        raise
    return counts


def _still_crops(request: Request) -> list[np.ndarray] | None:
    """For a still: its crops, cut once from the full-color image (as the model was trained)."""
    if not request.source.is_still or not request.plan[0]:
        return None
    return [crop.crop_face(request.source.still, box) for box in request.plan[0]]


def _mouth_maker(runner: MouthRunner, still_crops: list[np.ndarray] | None) -> MouthsFn:
    """A still's faces go through the network once, then only the speech changes; a video's faces change every
    frame and go through the whole network."""
    if still_crops is not None:
        still = runner.for_still(still_crops)
        return lambda frames, windows: still(windows)
    return lambda frames, windows: runner([face for frame in frames for face in frame.crops], windows)


def _decode(request: Request, decoded: queue.Queue, running: threading.Event,
            still_crops: list[np.ndarray] | None) -> None:
    """Stage 1: source frames with the faces to sync and their crops."""
    source, plan, speech = request.source, request.plan, request.speech
    counted = None if request.config.box is not None else len(plan)  # a fixed box's plan does not count frames
    n_out = speech.frames if isinstance(speech, WholeSpeech) else None  # None: a still, for as long as it speaks
    frames = stream.source_frames(source, n_out, counted, request.work, request.config.subprocess_timeout)
    for index, picture in enumerate(frames):
        spoken = speech.frame(index)  # a growing speech's next frame: waited for
        if spoken is None or not running.is_set():
            break
        boxes = plan[stream.ping_pong(index, len(plan))]
        if spoken.weight <= 0 or not boxes:
            boxes, crops = [], []
        else:
            crops = still_crops or [crop.crop_face_i420(picture, box) for box in boxes]
        if not stream.put(decoded, (index, Frame(picture, boxes, crops, spoken.weight, spoken.window)),
                          running.is_set):
            return
    stream.put(decoded, stream.STOP, running.is_set)  # the end, at once: not found later by polling


def _generate(request: Request, decoded: queue.Queue, decoder: stream.Worker, generated: queue.Queue,
              writer: stream.Worker, mouths: MouthsFn, batch: Callable[[], int], enhancer: FaceEnhancer | None,
              progress: ProgressFn | None) -> tuple[int, int]:
    """Stage 2 (this thread): the model on full batches of faces (batch() of them, asked before each), then face
    enhancement when asked for. Returns the frames with a generated mouth, and of those the frames where a face
    had landmarks."""
    stage = Stage.ENHANCE if enhancer is not None else Stage.GENERATE
    synced = landmarked = 0
    pending: list[Frame] = []
    windows: list[np.ndarray] = []
    done = False
    while not done:
        item = stream.get(decoded, decoder)
        done = item is stream.STOP
        if not done:
            index, frame = item
            pending.append(frame)
            windows += [frame.window] * len(frame.boxes)
        if pending and (done or len(windows) >= batch()):
            add_mouths(pending, windows, mouths)
            if enhancer is not None:
                _enhance(pending, enhancer, request.config)
            for frame in pending:
                synced += bool(frame.boxes)
                landmarked += any(box.points is not None for box in frame.boxes)
                if not stream.put(generated, frame, writer.is_alive):
                    writer.join_or_raise()
            pending, windows = [], []
            report(progress, stage, (index + 1) / request.speech.expected_frames)
    return synced, landmarked


def add_mouths(frames: list[Frame], windows: list[np.ndarray], mouths: MouthsFn) -> None:
    if not windows:
        return
    made = mouths(frames, windows)
    cursor = 0
    for frame in frames:
        frame.mouths = list(made[cursor:cursor + len(frame.boxes)])
        cursor += len(frame.boxes)


def paste_mouths(frame: Frame, config: LipSyncConfig) -> None:
    if not frame.boxes:
        return
    frame.picture = frame.picture.copy()
    for box, mouth, face in zip(frame.boxes, frame.mouths, frame.crops):
        paste.paste(frame.picture, box, mouth, face, config.blend, config.mask, config.color_match,
                    frame.speech_weight)


def _enhance(frames: list[Frame], enhancer: FaceEnhancer, config: LipSyncConfig) -> None:
    """The mouths pasted, then every generated face of the batch enhanced at once and blended back through the
    mouth's mask."""
    owners = [frame for frame in frames for _ in frame.boxes]  # the frame of each face, in order
    if not owners:
        return
    for frame in frames:
        paste_mouths(frame, config)
    aligned = [enhance.align_faces(frame.picture, frame.boxes) for frame in frames if frame.boxes]
    enhanced = enhancer(np.concatenate([stacked for stacked, _ in aligned]))
    matrices = [matrix for _, frame_matrices in aligned for matrix in frame_matrices]
    boxes = [box for frame in frames for box in frame.boxes]
    for frame, box, face, matrix in zip(owners, boxes, enhanced, matrices):
        paste.paste_enhanced(frame.picture, box, face, matrix, config.blend, config.mask, frame.speech_weight)


def _encode(generated: queue.Queue, running: threading.Event, encoder: encode.Encoder, config: LipSyncConfig,
            paste_here: bool) -> None:
    """Stage 3: mouths blended into their frames (unless the model's thread did it), frames to the encoder."""
    while running.is_set():
        try:
            frame = generated.get(timeout=stream.POLL_SECONDS)
        except queue.Empty:
            continue
        if frame is stream.STOP:
            return
        if paste_here:
            paste_mouths(frame, config)
        encoder.write(frame.picture)
