"""Lip-sync studio: a face (photo or video) and words (text or a recording) in, a talking MP4 out.

UI only: components, events, the one GPU entry, and LipSyncError -> gr.Error. The work is in lipsync/.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import spaces  # noqa: E402
from huggingface_hub.utils import logging as hf_logging  # noqa: E402

from lipsync import LipSyncConfig, LipSyncError, Result, checkpoints, pipeline, tts  # noqa: E402
from lipsync.config import ALL_FACES, BLENDS, CHECKPOINT_NAMES, DETECTORS, SMOOTHING  # noqa: E402
from lipsync.errors import OptionError  # noqa: E402

log = logging.getLogger("lipsync.app")

EXAMPLES = Path(__file__).resolve().parent / "examples"
DEFAULTS = LipSyncConfig()
STAGE_LABELS = {"speech": "Preparing the speech", "detect": "Finding the face", "generate": "Moving the lips",
                "encode": "Writing the video"}
OUTPUT_SIZES = [("Keep (up to 1080p)", 1080), ("720p", 720), ("480p", 480), ("360p", 360)]
# ZeroGPU slot: start-up and detection, plus generation at a conservative rate; the slot is capped by the Space.
GPU_BASE_SECONDS = 20
GPU_FRAMES_PER_SECOND = 40
GPU_MAX_SECONDS = 300
CACHE_SECONDS = 2 * 3600  # uploads and results stay downloadable this long


class Weights:
    """The checkpoints, fetched and loaded once per process in the background, and a banner saying how it went."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: str | None = None

    def start(self) -> None:
        threading.Thread(target=self._fetch, name="fetch-weights", daemon=True).start()

    def _fetch(self) -> None:
        try:
            checkpoints.load_generator(DEFAULTS.checkpoint, "cpu", DEFAULTS.checkpoint_dir)
            checkpoints.s3fd_path(DEFAULTS.checkpoint_dir)
        except LipSyncError as exc:
            self.error = str(exc)
            log.warning("model weights unavailable: %s", exc)
        finally:
            self.done.set()

    def refresh(self):
        """The banner, and the timer that polls it kept running only while the fetch is under way."""
        return self.banner(), gr.Timer(active=not self.done.is_set())

    def banner(self) -> str:
        if self.error:
            return f"⚠️ **The model weights are not available, so nothing can be generated yet.** {self.error}"
        if not self.done.is_set():
            return "⏳ Fetching the model weights (about 0.5 GB, once); the first generation waits for them."
        return ""


WEIGHTS = Weights()


# ---------------------------------------------------------------- the GPU entry

def _gpu_seconds(face: str, audio: str | None, text: str | None, lang: str, slow: bool, config: LipSyncConfig,
                 out: Path, progress: gr.Progress) -> int:
    """ZeroGPU slot length for this request, from the number of frames it will generate."""
    try:
        frames = pipeline.estimate_frames(face, audio_path=audio, text=text, slow=slow, config=config)
    except LipSyncError:
        frames = 0  # the call itself will say what is wrong, quickly
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + frames / GPU_FRAMES_PER_SECOND))


@spaces.GPU(duration=_gpu_seconds)
def _lip_sync(face: str, audio: str | None, text: str | None, lang: str, slow: bool, config: LipSyncConfig,
              out: Path, progress: gr.Progress) -> Result:
    return pipeline.generate(face, out, audio_path=audio, text=text, lang=lang, slow=slow, config=config,
                             progress=lambda fraction, stage: progress(fraction, desc=STAGE_LABELS[stage]))


# ---------------------------------------------------------------- events

def _numbers(text: str, what: str) -> tuple[int, int, int, int] | None:
    parts = (text or "").replace(",", " ").split()
    if not parts:
        return None
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise OptionError(f"{what} must be four whole numbers, TOP BOTTOM LEFT RIGHT, such as '0 10 0 0'; "
                          f"got '{text}'.")
    return values


def _config(checkpoint: str, detector: str, pads: str, smoothing: str, face_index, output_size, blend: str,
            color_match: bool, keep_silence: bool, align_roll: bool, box: str) -> LipSyncConfig:
    try:
        face_index = int(face_index)
        output_size = int(output_size)
    except (TypeError, ValueError):
        raise OptionError(f"The face number and output height must be whole numbers, not '{face_index}' and "
                          f"'{output_size}'.") from None
    return DEFAULTS.replace(checkpoint=checkpoint, detector=detector, pads=_numbers(pads, "Pads") or (0, 0, 0, 0),
                            smoothing=smoothing, face_index=face_index, output_size=output_size, blend=blend,
                            color_match=bool(color_match), keep_silence=bool(keep_silence),
                            align_roll=bool(align_roll), box=_numbers(box, "The face box"))


def _status(result: Result) -> str:
    parts = [f"{result.duration:.1f} s, {result.frames} frames at {result.fps:g} fps, {result.width}×{result.height}",
             f"lips moved in {result.synced_frames} of {result.frames} frames",
             f"made in {result.seconds:.1f} s"]
    if result.tts_engine == "gTTS":
        parts.append("voice: gTTS")
    elif result.tts_engine:
        reason = result.tts_fallback_reason.split(". ")[0]  # gTTS's own messages run on with guesses
        parts.append(f"voice: espeak-ng, offline fallback (gTTS unavailable: {reason})")
    return " · ".join(parts)


def _run(face: str | None, audio: str | None, text: str | None, lang: str, slow: bool, options: tuple,
         progress: gr.Progress) -> tuple[str, str]:
    """The one place where a request runs and where its errors become messages on the page."""
    if not face:
        raise gr.Error("Upload a face first: a photo or a video.")
    out_dir = Path(gr.utils.get_upload_folder()) / "lipsync" / uuid.uuid4().hex
    try:
        config = _config(*options)
        progress(0.0, desc=STAGE_LABELS["speech"])
        result = _lip_sync(face, audio, text, lang, slow, config, out_dir / f"{Path(face).stem}-lipsync.mp4",
                           progress)
    except Exception as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        if isinstance(exc, LipSyncError):
            message = str(exc)
        else:
            log.exception("generation failed")
            message = f"Something went wrong on our side ({type(exc).__name__}); please try again."
        raise gr.Error(message, duration=None, print_exception=False) from None
    return str(result.path), _status(result)


def generate_from_text(face, text, lang="en", slow=False, checkpoint=DEFAULTS.checkpoint, detector=DEFAULTS.detector,
                       pads="0 10 0 0", smoothing=DEFAULTS.smoothing, face_index=0, output_size=DEFAULTS.output_size,
                       blend=DEFAULTS.blend, color_match=DEFAULTS.color_match, keep_silence=DEFAULTS.keep_silence,
                       align_roll=DEFAULTS.align_roll, box="", progress=gr.Progress()):
    options = (checkpoint, detector, pads, smoothing, face_index, output_size, blend, color_match, keep_silence,
               align_roll, box)
    return _run(face, None, text or "", lang, slow, options, progress)


def generate_from_audio(face, audio, checkpoint=DEFAULTS.checkpoint, detector=DEFAULTS.detector, pads="0 10 0 0",
                        smoothing=DEFAULTS.smoothing, face_index=0, output_size=DEFAULTS.output_size,
                        blend=DEFAULTS.blend, color_match=DEFAULTS.color_match, keep_silence=DEFAULTS.keep_silence,
                        align_roll=DEFAULTS.align_roll, box="", progress=gr.Progress()):
    if not audio:
        raise gr.Error("Add the speech first: upload a recording or record one with the microphone.")
    options = (checkpoint, detector, pads, smoothing, face_index, output_size, blend, color_match, keep_silence,
               align_roll, box)
    return _run(face, audio, None, "en", False, options, progress)


def preview_faces(face: str | None, detector: str, align_roll: bool, box: str):
    """The first frame with the faces found numbered as 'Which face' counts them, and the choices to match."""
    if not face:
        return None, gr.update(choices=_face_choices(1), value=0), ""
    try:
        config = DEFAULTS.replace(detector=detector, align_roll=bool(align_roll), box=_numbers(box, "The face box"))
        frame, boxes = pipeline.find_faces(face, config)
    except LipSyncError as exc:
        return None, gr.update(choices=_face_choices(1), value=0), f"⚠️ {exc}"
    height, width = frame.shape[:2]
    thickness = max(2, round(max(width, height) / 250))
    scale = thickness / 2.5  # the number stays legible when the preview shrinks the frame
    for number, found in enumerate(boxes):
        x1, y1, x2, y2 = found.bounds(width, height)
        cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 220, 0), thickness)
        (text_w, text_h), base = cv2.getTextSize(str(number), cv2.FONT_HERSHEY_SIMPLEX, scale * 2, thickness)
        top = max(0, y1 - text_h - base - 2 * thickness)  # a filled tag above the box, inside the frame
        cv2.rectangle(frame, (x1, top), (x1 + text_w + 2 * thickness, top + text_h + base + 2 * thickness),
                      (0, 220, 0), cv2.FILLED)
        cv2.putText(frame, str(number), (x1 + thickness, top + text_h + thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    scale * 2, (0, 0, 0), thickness)
    count = len(boxes)
    note = (f"{count} face{'s' if count != 1 else ''} found." if count else
            "⚠️ No face found here: try the other detector, or give the face box by hand.")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), gr.update(choices=_face_choices(count), value=0), note


def _face_choices(count: int) -> list[tuple[str, int]]:
    choices = [("0: the largest face", 0)] + [(f"{number}", number) for number in range(1, count)]
    return choices + [("All faces", ALL_FACES)] if count > 1 else choices


# ---------------------------------------------------------------- layout

def build_app() -> gr.Blocks:
    languages = tts.languages()
    with gr.Blocks(title="Lip-sync studio", delete_cache=(600, CACHE_SECONDS)) as demo:
        gr.Markdown("# Lip-sync studio\nA face (photo or video) and words (text or a recording) in; "
                    "a video of that face speaking them out. Wav2Lip, with a feathered blend and steady tracking.")
        banner = gr.Markdown(elem_id="weights-banner")
        with gr.Row():
            with gr.Column():
                face = gr.File(label="Face: a photo or a video", file_types=["image", "video"], type="filepath",
                               elem_id="face")
                preview = gr.Image(label="Faces found (numbered)", interactive=False, height=260,
                                   elem_id="face-preview")
                faces_note = gr.Markdown()
                with gr.Tabs():
                    with gr.Tab("Text", id="text"):
                        text = gr.Textbox(label="Text to speak", lines=4, max_length=DEFAULTS.max_text_chars,
                                          placeholder="Type what the face should say.", elem_id="text")
                        with gr.Row():
                            lang = gr.Dropdown(choices=[(f"{name} ({code})", code) for code, name in languages.items()],
                                               value="en", label="Language")
                            slow = gr.Checkbox(label="Speak slowly", value=False)
                        text_button = gr.Button("Generate from text", variant="primary", elem_id="generate-text")
                    with gr.Tab("Audio", id="audio"):
                        audio = gr.Audio(label="Speech: upload (wav, mp3, m4a, ogg, flac) or record",
                                         sources=["upload", "microphone"], type="filepath", elem_id="audio")
                        audio_button = gr.Button("Generate from audio", variant="primary", elem_id="generate-audio")
                with gr.Accordion("Options", open=False):
                    with gr.Row():
                        checkpoint = gr.Dropdown(list(CHECKPOINT_NAMES), value=DEFAULTS.checkpoint, label="Model",
                                                 info="wav2lip_gan: sharper; wav2lip: tighter sync")
                        detector = gr.Radio(list(DETECTORS), value=DEFAULTS.detector, label="Face detector",
                                            info="haar needs no download", elem_id="detector")
                    with gr.Row():
                        face_index = gr.Dropdown(_face_choices(1), value=0, label="Which face",
                                                 allow_custom_value=True, info="numbered in the preview")
                        output_size = gr.Dropdown(OUTPUT_SIZES, value=DEFAULTS.output_size, label="Output size",
                                                 allow_custom_value=True)
                    with gr.Row():
                        pads = gr.Textbox("0 10 0 0", label="Pads: top bottom left right (pixels)")
                        box = gr.Textbox("", label="Fixed face box: top bottom left right (empty: detect)")
                    with gr.Row():
                        smoothing = gr.Radio(list(SMOOTHING), value=DEFAULTS.smoothing, label="Box smoothing")
                        blend = gr.Radio(list(BLENDS), value=DEFAULTS.blend, label="Blend")
                    with gr.Row():
                        color_match = gr.Checkbox(value=DEFAULTS.color_match, label="Match skin colour")
                        keep_silence = gr.Checkbox(value=DEFAULTS.keep_silence, label="Still lips in silences")
                        align_roll = gr.Checkbox(value=DEFAULTS.align_roll, label="Straighten tilted heads")
            with gr.Column():
                result = gr.Video(label="Result", format=None, interactive=False, height=480, elem_id="result")
                status = gr.Markdown(elem_id="status")

        options = [checkpoint, detector, pads, smoothing, face_index, output_size, blend, color_match, keep_silence,
                   align_roll, box]
        text_button.click(generate_from_text, [face, text, lang, slow, *options], [result, status],
                          api_name="generate_from_text", show_progress_on=[result])
        audio_button.click(generate_from_audio, [face, audio, *options], [result, status],
                           api_name="generate_from_audio", show_progress_on=[result])
        for trigger in (face.change, detector.change, align_roll.change, box.submit):
            trigger(preview_faces, [face, detector, align_roll, box], [preview, face_index, faces_note],
                    api_name=False, concurrency_limit=4)

        poll = gr.Timer(2.0)
        gr.on([demo.load, poll.tick], WEIGHTS.refresh, None, [banner, poll], api_name=False, queue=False,
              show_progress="hidden")

        with gr.Row():
            gr.Examples([[str(EXAMPLES / "monalisa.png"), "Hello! I have kept this smile for five hundred years.",
                          "en"]], [face, text, lang], label="Example: text", cache_examples=False)
            gr.Examples([[str(EXAMPLES / "monalisa.png"), str(EXAMPLES / "speech.wav")]], [face, audio],
                        label="Example: audio", cache_examples=False)
        gr.Markdown("The Wav2Lip weights are for research and non-commercial use only.")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the lip-sync studio.")
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link (Colab)")
    parser.add_argument("--server-name", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on; 0.0.0.0 for every one (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--queue-size", type=int, default=16, help="requests that may wait; more are told it is busy")
    parser.add_argument("--concurrency", type=int, default=2, help="requests generated at the same time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    hf_logging.set_verbosity_error()  # its retry chatter; the banner and errors say what failed
    WEIGHTS.start()
    demo = build_app()
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    demo.launch(share=args.share, server_name=args.server_name, server_port=args.port,
                max_file_size=DEFAULTS.max_upload_bytes, allowed_paths=[str(EXAMPLES)])


if __name__ == "__main__":
    sys.exit(main())
