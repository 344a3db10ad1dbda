"""The one entry point: a face and speech in, an MP4 out, streamed from decoder to model to encoder."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import models, render, runtime, user_cache
from .config import LipSyncConfig
from .errors import AudioError, FaceError, LipSyncError
from .faces import finding, track
from .faces.boxes import FaceBox
from .faces.detectors import Detector
from .media import encode, ffmpeg, output, stream, video
from .nets.syncnet import SyncNet
from .progress import STAGES, ProgressFn, Stage, report
from .scoring import clips
from .scoring.sync import SyncScore
from .speech import audio, tts
from .speech.track import GrowingSpeech, SpeechStopped, WholeSpeech

__all__ = ["generate", "estimate_frames", "find_faces", "Result", "Stage", "STAGES", "ProgressFn", "work_dir"]
WORK_DIR_PREFIX = "lipsync-"


@dataclass(frozen=True)
class Result:
    path: Path
    duration: float  # seconds of speech, and of the video within one frame
    frames: int
    fps: float
    width: int
    height: int
    synced_frames: int  # frames where a mouth was generated
    landmark_frames: int | None  # of those, frames where a face was placed by its landmarks (None: not looked for)
    tts_engine: str | None
    tts_fallback_reason: str | None
    seconds: float  # wall time of the whole request
    score: SyncScore | None = None  # the written MP4's lip sync, where the request's score option had it scored
    tts_skipped: tuple[tts.SkippedVoice, ...] = ()  # the voices before tts_engine in the order, and why not them


@contextmanager
def work_dir() -> Iterator[Path]:
    """A private folder for one request, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=WORK_DIR_PREFIX))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def generate(face_path: str | os.PathLike, out_path: str | os.PathLike, *, audio_path: str | os.PathLike | None = None,
             text: str | None = None, lang: str = "en", slow: bool = False, config: LipSyncConfig = LipSyncConfig(),
             progress: ProgressFn | None = None, on_segment: encode.SegmentFn | None = None) -> Result:
    """Make `out_path` (MP4) where the face in `face_path` speaks `audio_path`, or `text` in `lang`.

    on_segment, for a preview while the video is made: called with each MPEG-TS segment (H.264 + AAC; the first
    encode.FIRST_SEGMENT_SECONDS long so the preview starts sooner, then encode.SEGMENT_SECONDS each, the last one
    shorter) cut from the same encode as soon as it is complete, in order, the last one before generate returns;
    joined byte for byte they play as the whole video. It runs on a watcher thread, never concurrently with itself.
    The file lies in the request's work folder, removed when generate returns: read, copy or move it (it is not
    touched again) before the callback returns. An exception raised by on_segment stops the request and is raised
    by generate. Without it, no segments are made."""
    started = time.perf_counter()
    if (audio_path is None) == (text is None):
        raise LipSyncError("Give either a speech recording or a text to speak, not both or neither.")
    if text is not None:
        tts.check_voice(lang, config.voice)  # a language the chosen voice lacks is refused before any work
    face_path = _existing(face_path, "face image or video", FaceError, config)
    if audio_path is not None:
        audio_path = _existing(audio_path, "speech recording", AudioError, config)
    out_path = output.check_output(out_path, {"face image or video": face_path, "speech recording": audio_path})
    resolved = runtime.resolve(config, still=video.is_still(face_path))
    # Load (or find loaded) models before any slow work, so a missing checkpoint fails at once.
    loaded = models.load(config, resolved)
    with work_dir() as work:
        report(progress, Stage.SPEECH, 0.0)
        source = video.open_face(face_path, config.output_size, config.max_image_pixels, config.still_fps)
        fps = float(source.fps)
        spoken = None if text is None else tts.synthesize(text, lang, work, config.max_text_chars, slow, config.voice)
        with _speech(spoken, audio_path, source, work, config, text or "", slow) as speech:
            report(progress, Stage.SPEECH, 1.0)
            frames_needed = speech.frames if isinstance(speech, WholeSpeech) else 1  # a still: one, for any speech
            found, plan = _plan(source, frames_needed, loaded.detector, loaded.landmarker, config, resolved,
                                progress)
            request = render.Request(source, plan, speech, config, work)
            encoded = work / "out.mp4"
            synced, landmarked = render.render(request, loaded.mouths, loaded.enhancer, encoded, progress,
                                               on_segment)
        n_out = speech.frames
        report(progress, Stage.ENCODE, 1.0)
        score = _score(encoded, source, found, n_out, loaded.scorer, config, work)
        output.place_output(encoded, out_path)
    return Result(out_path, speech.seconds, n_out, fps, source.width, source.height, synced,
                  landmarked if loaded.landmarker is not None else None,
                  spoken.engine if spoken else None, spoken.fallback_reason if spoken else None,
                  time.perf_counter() - started, score=score, tts_skipped=spoken.skipped if spoken else ())


SPOKEN_CHARS_PER_SECOND = {False: 16.0, True: 9.0}  # rough speaking rate of the voices, normal and slow


@contextmanager
def _speech(spoken: tts.SpokenText | None, audio_path: Path | None, source: video.FaceInput, work: Path,
            config: LipSyncConfig, text: str, slow: bool) -> Iterator[WholeSpeech | GrowingSpeech]:
    """The speech to render: a recording's, whole; a text's, whole, or for a still spoken by the natural voice,
    growing as its sentences are made on a thread of their own, so the video starts on the first one."""
    fps = float(source.fps)
    if spoken is not None and spoken.sentences is not None and source.is_still:
        growing = GrowingSpeech(fps, config.keep_silence, config.max_audio_seconds,
                                len(text) / SPOKEN_CHARS_PER_SECOND[slow])
        speaker = threading.Thread(target=_speak_into, args=(spoken.sentences, growing), name="lipsync-speech",
                                   daemon=True)
        speaker.start()
        try:
            yield growing
        finally:
            growing.stop()  # an early end of the render (error): the speaker stops at its next sentence
            speaker.join()
        return
    if spoken is not None:
        audio_path = spoken.path or work / "speech_piper.wav"
        if spoken.sentences is not None:
            audio.write_wav(spoken.sentences, audio_path)
    loaded = audio.load_speech(audio_path, work, config.max_audio_seconds)
    yield WholeSpeech(loaded.samples, loaded.mux_path, fps, config.keep_silence)


def _speak_into(sentences: Iterator[np.ndarray], speech: GrowingSpeech) -> None:
    try:
        with closing(sentences):
            for samples in sentences:
                speech.add(samples)
                speech.wait_until_needed()
    except SpeechStopped:
        return
    except BaseException as exc:  # raised by the render where it waits for the speech
        speech.end(exc)
        return
    speech.end()


def estimate_frames(face_path: str | os.PathLike, *, audio_path: str | os.PathLike | None = None,
                    text: str | None = None, slow: bool = False, config: LipSyncConfig = LipSyncConfig()) -> int:
    """About how many frames a request will generate, from the headers alone (for sizing a GPU time slot)."""
    fps = config.still_fps
    if not video.is_still(face_path):
        info = ffmpeg.probe(face_path, "face video")
        if info is not None and info.video is not None and info.video.fps:
            fps = float(info.video.fps)
    if audio_path is not None:
        speech = ffmpeg.probe(audio_path, "audio")
        seconds = speech.audio_duration if speech is not None else 0.0
    else:
        seconds = len((text or "").strip()) / SPOKEN_CHARS_PER_SECOND[slow]
    return audio.frame_count(config.capped_speech_seconds(seconds), fps)


def find_faces(face_path: str | os.PathLike, config: LipSyncConfig = LipSyncConfig()
               ) -> tuple[np.ndarray, list[FaceBox]]:
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
    # On the CPU: on ZeroGPU no GPU is held outside a generation, and one frame is quick anyway.
    resolved = runtime.resolve(config.replace(device="cpu"), still=source.is_still)
    detector = (models.load_detector(config.detector, resolved.checkpoints, resolved.device, resolved.detector_dtype)
                if config.box is None else None)
    landmarker = models.load_landmarker(resolved.checkpoints) if resolved.landmarks else None
    # Through the detection cache: the generation that follows the preview finds these detections there.
    return frame, track.order_faces(_detections(source, 1, detector, landmarker, config, resolved, None)[0])


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


def _detections(source: video.FaceInput, needed: int, detector: Detector | None, landmarker: torch.nn.Module | None,
                config: LipSyncConfig, resolved: runtime.Runtime, progress: ProgressFn | None) -> list[list[FaceBox]]:
    """Faces in the first `needed` frames of the input (all of them, if it has fewer), with their landmarks where
    a landmark model is given, from the cache when the same bytes were seen with the same settings and models.
    A box given by hand is the one entry for every frame: nothing is decoded for it."""
    if config.box is not None:
        return [[finding.fixed_box(config, source.width, source.height)]]
    scale, small = finding.detection_size(source.width, source.height, source.is_still)
    # Landmarks are found on the chosen face only, so which face that is belongs to the key where they are found.
    marked = config.face_index if landmarker is not None else None
    key = (user_cache.file_digest(source.path), source.width, source.height, str(source.fps), config.detector,
           config.align_roll, str(resolved.checkpoints.path), marked)

    def run(needed: int) -> tuple[list[list[FaceBox]], bool]:
        if source.is_still:
            return finding.detect_faces(detector, [source.still], 1.0, config.align_roll, still=True,
                                        landmarker=landmarker, face_index=config.face_index), True
        # Decoded on a thread of its own, a batch ahead: the decoder is not left waiting while a batch is searched.
        decoded = video.iter_video_frames(source, *small, config.subprocess_timeout, searched_only=True)
        ahead = finding.DETECT_BATCH * finding.VIDEO_DETECT_STRIDE
        with closing(stream.read_ahead(decoded, ahead, needed + 1)) as frames:
            found = finding.detect_faces(
                detector, frames, scale, config.align_roll, stride=finding.VIDEO_DETECT_STRIDE,
                landmarker=landmarker, face_index=config.face_index, max_gap=track.max_gap_frames(float(source.fps)),
                on_batch=lambda done: report(progress, Stage.DETECT, done / min(needed + 1, 10**6)))
        # One frame past the need tells whether the video ended first.
        return found[:needed], len(found) <= needed

    found = finding.CACHE.get(key, needed, run)
    if not found:
        raise FaceError(f"'{source.path.name}' has no frames.")
    return found


def _plan(source: video.FaceInput, n_out: int, detector: Detector | None, landmarker: torch.nn.Module | None,
          config: LipSyncConfig, resolved: runtime.Runtime, progress: ProgressFn | None
          ) -> tuple[list[list[FaceBox]], list[list[FaceBox]]]:
    """The faces found and the boxes to sync, per source frame. Only the frames the speech needs are decoded: the
    plan is shorter than n_out only when the whole video is, and then its length is the video's frame count; with
    a box given by hand, it is that box's one entry."""
    report(progress, Stage.DETECT, 0.0)
    found = _detections(source, n_out, detector, landmarker, config, resolved, progress)
    report(progress, Stage.DETECT, 1.0)
    if config.box is not None:
        return found, found
    fps = float(source.fps)

    def where(n: int) -> str:
        return "the image" if source.is_still else f"any of the {n} frames (0–{n / fps:.1f} s)"

    return found, track.plan_faces(found, config, fps, source.width, source.height, where)


def _score(encoded: Path, source: video.FaceInput, found: list[list[FaceBox]], n_out: int,
           scorer: SyncNet | None, config: LipSyncConfig, work: Path) -> SyncScore | None:
    """The lip sync of the MP4 as written (decoded as a player decodes it), with the face followed through the
    detections already made, unpadded, in each output frame; none without a scorer or for a result too short to
    score."""
    fps = float(source.fps)
    if scorer is None or n_out / fps < clips.MIN_SCORED_SECONDS:
        return None
    faces = clips.face_track(found, fps, f"'{source.path.name}'", config.face_index)
    boxes = [faces[0 if source.is_still else stream.ping_pong(index, len(faces))] for index in range(n_out)]
    folder = work / "score"  # apart from the request's own decoded speech
    folder.mkdir()
    return clips.score_video(encoded, config=config, model=scorer, boxes=boxes, boxes_fps=fps, work=folder)
