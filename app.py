"""Lip-sync studio: a face (photo or video) and words (text or a recording) in, a talking MP4 out.

UI only: components, events, the one GPU entry, and LipSyncError -> gr.Error. The work is in lipsync/.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import mimetypes
import os
import queue
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import spaces  # noqa: E402
from huggingface_hub.utils import logging as hf_logging  # noqa: E402

from lipsync import LipSyncConfig, LipSyncError, Result, options, pipeline, runtime, serving, tts  # noqa: E402
from lipsync.config import ALL_FACES, OPTIONS, OUTPUT_SIZES  # noqa: E402
from lipsync.errors import CheckpointError  # noqa: E402
from ui import live as live_tab  # noqa: E402

log = logging.getLogger("lipsync.app")

EXAMPLES = Path(__file__).resolve().parent / "examples"
# A public server limits the speech's length (the library does not): --max-seconds, or this variable on a Space.
MAX_SECONDS_ENV = "LIPSYNC_MAX_SECONDS"
MAX_SECONDS = 120.0
# What every request starts from: the library's defaults with the served limit (main() may set another).
DEFAULTS = options.DEFAULTS.replace(max_audio_seconds=MAX_SECONDS)
# The words the page shows for each of the pipeline's stages.
STAGE_LABELS = {pipeline.Stage.SPEECH: "Preparing the speech", pipeline.Stage.DETECT: "Finding the face",
                pipeline.Stage.GENERATE: "Moving the lips",
                pipeline.Stage.ENHANCE: "Moving the lips and enhancing the face",
                pipeline.Stage.ENCODE: "Writing the video"}
# Choices in words; the API takes the values on the right, as the config names them.
MODELS, FINDERS, SMOOTHING, BLENDS, PRECISIONS, ENHANCERS = (
    options.page_choices(name) for name in ("checkpoint", "detector", "smoothing", "blend", "precision", "enhance"))
LABELS = {name: declared.label for name, declared in OPTIONS.items()}
SIZES = [(f"Keep (up to {DEFAULTS.output_size}p)", DEFAULTS.output_size)] + [
    (f"{size}p", size) for size in OUTPUT_SIZES if size < DEFAULTS.output_size]
NUMBERED_FACES = 10  # the preview numbers at most this many faces, the largest
# ZeroGPU slot: start-up and detection, plus generation at a conservative rate; the slot is capped by the Space.
# The rates sit well below the H200's measured ones (README), for a slower GPU and a cold start.
GPU_BASE_SECONDS = 20
GPU_FRAMES_PER_SECOND = 40
GPU_ENHANCED_FRAMES_PER_SECOND = 15  # enhancing: GFPGAN on every generated frame (ZeroGPU runs on CUDA)
GPU_MAX_SECONDS = 300
CACHE_SECONDS = 2 * 3600  # uploads and results stay downloadable this long
BUTTON = "Generate from {}"
QUEUED = "Queued: this request starts when the one running now is done."
# The example tables wrap their words at any width instead of scrolling sideways or cutting them off.
CSS = """
#example-text table, #example-audio table { table-layout: fixed; width: 100%; }
#example-text th, #example-text td, #example-audio th, #example-audio td {
    white-space: normal; overflow-wrap: anywhere; }
"""


def open_choices(component: gr.Radio | gr.Dropdown) -> gr.Radio | gr.Dropdown:
    """Let a radio or dropdown hand any value on: one outside its choices (only the API can send one) is then
    refused by lipsync.options in the app's own words, instead of by Gradio with a traceback in the server log.
    (Per instance: a subclass would make Gradio write an app.pyi stub beside this file.)"""
    component.preprocess = lambda payload: payload
    return component


class Served:
    """What this server was started with: the settings every request starts from, the weights they need (watched
    until all are in place), and the speed measured on the requests served."""

    def __init__(self, defaults: LipSyncConfig):
        self.defaults = defaults
        self.weights = serving.WeightsWatch(defaults)
        self.speed = serving.SpeedLog()

    def refresh(self):
        """The banner, the Generate buttons, and the timer that polls them, kept running until all is in place."""
        weights = self.weights
        why = ": waiting for the model weights (see the note at the top)" if weights.blocking else ""
        buttons = [gr.update(value=BUTTON.format(words) + why, interactive=not weights.blocking)
                   for words in ("text", "audio")]
        return self.banner(), gr.Timer(active=bool(weights.missing) or not weights.checked.is_set()), *buttons

    def banner(self) -> str:
        weights = self.weights
        if weights.blocking:
            return f"⚠️ **The model weights are not available, so nothing can be generated yet.** {weights.problem()}"
        if "s3fd" in weights.missing:
            return (f"⚠️ **The accurate face finder (S3FD) cannot be used yet: choose *{FINDERS[1][0]}* under "
                    f"Options.** {weights.problem()}")
        if not weights.checked.is_set():
            return "⏳ Fetching the model weights (about 0.5 GB, once); the first generation waits for them."
        return ""


SERVED = Served(DEFAULTS)  # main() makes it anew from the launch options


# ---------------------------------------------------------------- the GPU entry

def _gpu_seconds(face: str, audio: str | None, text: str | None, lang: str, slow: bool, config: LipSyncConfig,
                 out: Path, progress: gr.Progress) -> int:
    """ZeroGPU slot length for this request, from the number of frames it will generate."""
    try:
        frames = pipeline.estimate_frames(face, audio_path=audio, text=text, slow=slow, config=config)
    except LipSyncError:
        frames = 0  # the call itself will say what is wrong, quickly
    rate = GPU_FRAMES_PER_SECOND if config.enhance == "none" else GPU_ENHANCED_FRAMES_PER_SECOND
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + frames / rate))


class Stopped(Exception):
    """The request's page went away or cancelled it: its generation stops at the next frame."""


def preview_folder(out: Path) -> Path:
    """Where the request's preview segments are kept: beside its MP4, named for it."""
    return out.with_name(f"{out.stem}-preview")


@spaces.GPU(duration=_gpu_seconds)
def _lip_sync(face: str, audio: str | None, text: str | None, lang: str, slow: bool, config: LipSyncConfig,
              out: Path, progress: gr.Progress) -> Iterator[tuple[str, Path | Result]]:
    """The request: yields ("segment", path) for each preview segment as soon as it is made (moved into
    preview_folder(out)), then ("done", Result). A generator, so the page plays the video while it is made
    (ZeroGPU forwards each item; the slot covers the whole request). generate runs on a thread of its own, in this
    context (gr.Progress reads it), and its error is raised here."""
    made: queue.Queue = queue.Queue()
    stop = threading.Event()  # set when this generator is closed early: generate stops at its next callback
    kept = preview_folder(out)

    def keep(segment: Path) -> None:
        if stop.is_set():
            raise Stopped
        kept.mkdir(parents=True, exist_ok=True)
        made.put(("segment", Path(shutil.move(segment, kept / segment.name))))

    def report(fraction: float, stage: pipeline.Stage) -> None:
        if stop.is_set():
            raise Stopped
        progress(fraction, desc=STAGE_LABELS[stage])

    def work() -> None:
        try:
            made.put(("done", pipeline.generate(face, out, audio_path=audio, text=text, lang=lang, slow=slow,
                                                config=config, progress=report, on_segment=keep)))
        except BaseException as exc:  # handed to the generator, which raises it
            made.put(("error", exc))

    threading.Thread(target=contextvars.copy_context().run, args=(work,), name="lip-sync", daemon=True).start()
    try:
        while True:
            kind, item = made.get()
            if kind == "error":
                # As a gr.Error: on ZeroGPU this runs in a forked worker, and only a gr.Error crosses back to
                # the page with its message (anything else arrives as a bare "ZeroGPU worker error").
                raise (item if isinstance(item, Stopped) else _error(_message(item))) from None
            yield kind, item
            if kind == "done":
                return
    finally:
        stop.set()


# ---------------------------------------------------------------- events

def _error(message: str) -> gr.Error:
    """A toast that stays until closed; the message is the whole story, so no server traceback."""
    return gr.Error(message, duration=None, print_exception=False)


def _message(exc: Exception) -> str:
    """What the page says of a failed request: our own sentence for bad input or missing weights."""
    weights = SERVED.weights
    if isinstance(exc, CheckpointError) and weights.checked.wait(5) and weights.missing:
        return weights.problem()
    if isinstance(exc, LipSyncError):
        return str(exc)
    log.exception("generation failed", exc_info=exc)
    return f"Something went wrong on our side ({type(exc).__name__}); please try again."


def _run(face: str | None, audio: str | None, text: str | None, lang: str, slow: bool, chosen: dict,
         progress: gr.Progress) -> Iterator[tuple]:
    """The one place where a request runs and where its errors become messages on the page. Yields the updates of
    [live preview, result, status]: each preview segment as it is made, then the MP4 and the status line."""
    if not face:
        raise _error("Upload a face first: a photo or a video.")
    out_dir = Path(gr.utils.get_upload_folder()) / "lipsync" / uuid.uuid4().hex
    out = out_dir / f"{Path(face).stem}-lipsync.mp4"
    try:
        config = options.to_config(chosen, SERVED.defaults)
        kind = SERVED.speed.kind(face, config)
        expected = _expected_seconds(face, audio, text, slow, config, kind)
        progress(0.0, desc="Starting")
        with contextlib.closing(_lip_sync(face, audio, text, lang, slow, config, out, progress)) as made:
            for kind, item in made:
                if kind == "segment":
                    yield str(item), gr.skip(), gr.skip()
                else:
                    result = item
    except Exception as exc:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise (exc if isinstance(exc, gr.Error) else _error(_message(exc))) from None
    finally:
        # The page has read every segment by now (Gradio takes the next update only after the last one).
        shutil.rmtree(preview_folder(out), ignore_errors=True)
    SERVED.speed.record(kind, result.seconds, result.frames)
    yield gr.skip(), str(result.path), _status(result, expected)


def watch_from_text(face, text, lang, slow, progress=gr.Progress(), **chosen):
    """The page's Generate from text: the preview while the video is made, then the MP4 and the status."""
    yield from _run(face, None, text or "", lang, slow, chosen, progress)


def watch_from_audio(face, audio, progress=gr.Progress(), **chosen):
    """The page's Generate from audio: the preview while the video is made, then the MP4 and the status."""
    if not audio:
        raise _error("Add the speech first: upload a recording or record one with the microphone.")
    yield from _run(face, audio, None, "en", False, chosen, progress)


def generate_from_text(face, text, lang, slow, progress=gr.Progress(), **chosen):
    """Make the face speak the text (gTTS, or the offline espeak-ng voice). Options by name, each optional."""
    return _final(watch_from_text(face, text, lang, slow, progress, **chosen))


def generate_from_audio(face, audio, progress=gr.Progress(), **chosen):
    """Make the face speak a recording. Options by name, each optional."""
    return _final(watch_from_audio(face, audio, progress, **chosen))


def _final(updates: Iterator[tuple]) -> tuple[str, str]:
    """The API's answer: the MP4 and the status, from the last of a request's updates (the preview left out)."""
    *_, (_, video, status) = updates
    return video, status


def _status(result: Result, expected: float | None) -> str:
    guess = f", estimated {expected:.0f} s" if expected is not None else ""
    parts = [f"{result.duration:.1f} s, {result.frames} frames at {result.fps:g} fps, {result.width}×{result.height}",
             f"lips moved in {result.synced_frames} of {result.frames} frames",
             f"made in {result.seconds:.1f} s{guess}"]
    if result.tts_engine == "gTTS":
        parts.append("voice: gTTS")
    elif result.tts_engine:
        parts.append(f"voice: {_fallback_words(result.tts_fallback_reason or '')}, so the offline voice (espeak-ng) "
                     f"was used")
    return " · ".join(parts)


def _fallback_words(reason: str) -> str:
    """Why gTTS was not used, in words rather than its exception text."""
    return "gTTS turned the request away (too many requests)" if "429" in reason else "gTTS could not be reached"


def _expected_seconds(face: str, audio: str | None, text: str | None, slow: bool, config: LipSyncConfig,
                      kind: tuple) -> float | None:
    try:
        frames = pipeline.estimate_frames(face, audio_path=audio, text=text, slow=slow, config=config)
        return SERVED.speed.seconds(frames, kind)[0]
    except LipSyncError:
        return None


def estimate(face: str | None, mode: str, text: str, audio: str | None, slow: bool, enhance: str) -> str:
    """Before Generate: roughly how long the request will take here."""
    words = {"text": text if (text or "").strip() else None, "audio": audio}[mode]
    if not face or not words:
        return ""
    try:
        config = options.to_config({"enhance": enhance}, SERVED.defaults)
        frames = pipeline.estimate_frames(face, audio_path=words if mode == "audio" else None,
                                          text=words if mode == "text" else None, slow=slow, config=config)
        kind = SERVED.speed.kind(face, config)
        seconds, measured = SERVED.speed.seconds(frames, kind)
    except LipSyncError:
        return ""
    where = "this GPU" if kind[0] == "cuda" else f"this computer's CPU ({os.cpu_count()} cores)"
    basis = "at the speed of the last requests here" if measured else "a first guess until one request has run here"
    return f"Estimate: about {max(1, round(seconds))} s on {where} for {frames} frames ({basis})."


def queue_note(running: bool) -> tuple[str, bool]:
    """On each click: the status line is cleared (an error must not sit beside the last success), or says that
    this request waits for the one this page is running."""
    return (QUEUED if running else ""), True


def preview_faces(face: str | None, detector: str, align_roll: bool, box: str):
    """The face as uploaded (a video plays), and its first frame with the faces found numbered as 'Which face'
    counts them, with the choices to match."""
    video = gr.update(value=face, visible=True) if _is_video(face) else gr.update(value=None, visible=False)
    only_the_first = gr.update(choices=_face_choices(range(1)), value=0)
    if not face:
        return video, None, only_the_first, ""
    try:
        config = options.to_config({"detector": detector, "align_roll": align_roll, "box": box}, SERVED.defaults)
        frame, boxes = pipeline.find_faces(face, config)
    except LipSyncError as exc:
        needs_s3fd = isinstance(exc, CheckpointError) and detector == "s3fd"
        hint = f" Choose *{FINDERS[1][0]}* under Options, which needs no download." if needs_s3fd else ""
        return video, None, only_the_first, f"⚠️ {exc}{hint}"
    numbered = sorted(sorted(range(len(boxes)), key=lambda n: -boxes[n].w * boxes[n].h)[:NUMBERED_FACES])
    frame = frame.copy()  # a video's decoded frame may be a read-only view
    _draw_numbers(frame, [(number, boxes[number]) for number in numbered])
    choices = gr.update(choices=_face_choices(numbered), value=0) if numbered else only_the_first
    return video, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), choices, _faces_note(len(boxes), len(numbered))


def _is_video(path: str | None) -> bool:
    return bool(path) and (mimetypes.guess_type(path)[0] or "").startswith("video/")


def _draw_numbers(frame, numbered) -> None:
    height, width = frame.shape[:2]
    thickness = max(2, round(max(width, height) / 250))
    scale = thickness / 2.5  # the number stays legible when the preview shrinks the frame
    for number, found in numbered:
        x1, y1, x2, y2 = found.bounds(width, height)
        cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 220, 0), thickness)
        (text_w, text_h), base = cv2.getTextSize(str(number), cv2.FONT_HERSHEY_SIMPLEX, scale * 2, thickness)
        top = max(0, y1 - text_h - base - 2 * thickness)  # a filled tag above the box, inside the frame
        cv2.rectangle(frame, (x1, top), (x1 + text_w + 2 * thickness, top + text_h + base + 2 * thickness),
                      (0, 220, 0), cv2.FILLED)
        cv2.putText(frame, str(number), (x1 + thickness, top + text_h + thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    scale * 2, (0, 0, 0), thickness)


def _faces_note(found: int, numbered: int) -> str:
    if not found:
        return "⚠️ No face found here: try the other face finder, or a fixed face box under Options → Advanced."
    if found > numbered:
        return f"{found} faces found; the {numbered} largest are numbered, and {found - numbered} more are not."
    return f"{found} face{'s' if found != 1 else ''} found."


def _face_choices(numbers) -> list[tuple[str, int]]:
    choices = [("0: the largest face", 0) if number == 0 else (str(number), number) for number in numbers]
    return choices + [("All faces", ALL_FACES)] if len(choices) > 1 else choices


# ---------------------------------------------------------------- layout

def _options_panel() -> dict[str, gr.components.Component]:
    """The options, grouped by what a user wants; the technical ones under Advanced. Keyed as the API names them,
    in the order it lists them."""
    with gr.Accordion("Options", open=False, elem_id="options"):
        gr.Markdown("**Which face**")
        with gr.Row():
            face_index = gr.Dropdown(_face_choices(range(1)), value=DEFAULTS.face_index, label=LABELS["face_index"],
                                      allow_custom_value=True, info="As numbered in the preview; 0 is the largest.")
            detector = gr.Radio(FINDERS, value=DEFAULTS.detector, label=LABELS["detector"], elem_id="detector",
                                 info="Haar is quick and needs no download; S3FD finds turned and small faces.")
        align_roll = gr.Checkbox(value=DEFAULTS.align_roll, label=LABELS["align_roll"],
                                 info="The model sees the head upright; the mouth is turned back to fit.")
        gr.Markdown("**Quality**")
        with gr.Row():
            checkpoint = gr.Dropdown(MODELS, value=DEFAULTS.checkpoint, label=LABELS["checkpoint"],
                                      info="The GAN model draws a sharper mouth; the other follows the sound a "
                                           "little more closely.")
            enhance = gr.Radio(ENHANCERS, value=DEFAULTS.enhance, label=LABELS["enhance"], elem_id="enhance",
                                info="Sharpens the face around the new mouth: quick on a GPU, seconds a frame on a CPU.")
        with gr.Row():
            color_match = gr.Checkbox(value=DEFAULTS.color_match, label=LABELS["color_match"],
                                      info="The new mouth takes the colour of the face around it.")
            keep_silence = gr.Checkbox(value=DEFAULTS.keep_silence, label=LABELS["keep_silence"],
                                       info="The mouth rests while nobody speaks.")
        gr.Markdown("**Speed**")
        with gr.Row():
            output_size = gr.Dropdown(SIZES, value=DEFAULTS.output_size, label=LABELS["output_size"],
                                       allow_custom_value=True, info="Smaller is quicker; smaller inputs keep "
                                                                     "their own size.")
            precision = gr.Radio(PRECISIONS, value=DEFAULTS.precision, label=LABELS["precision"],
                                  info="Automatic takes the quickest one this device does well.")
        with gr.Accordion("Advanced", open=False, elem_id="advanced"):
            with gr.Row():
                pads = gr.Textbox(options.as_text(DEFAULTS.pads), label=LABELS["pads"],
                                  info=f"Top bottom left right; more at the bottom takes in the chin. Empty: "
                                       f"{options.as_text(DEFAULTS.pads)}.")
                box = gr.Textbox("", label=LABELS["box"],
                                 info="Top bottom left right; skips face finding. Empty: find the face.")
            with gr.Row():
                smoothing = gr.Radio(SMOOTHING, value=DEFAULTS.smoothing, label=LABELS["smoothing"],
                                      info="Takes the jitter out of the box from frame to frame.")
                blend = gr.Radio(BLENDS, value=DEFAULTS.blend, label=LABELS["blend"],
                                  info="A soft edge hides the seam around the new mouth.")
    for choice in (face_index, detector, checkpoint, enhance, output_size, precision, smoothing, blend):
        open_choices(choice)
    return {"checkpoint": checkpoint, "detector": detector, "pads": pads, "smoothing": smoothing,
            "face_index": face_index, "output_size": output_size, "blend": blend, "color_match": color_match,
            "keep_silence": keep_silence, "align_roll": align_roll, "box": box, "precision": precision,
            "enhance": enhance}


def build_app(live_limits: live_tab.Limits = live_tab.Limits()) -> gr.Blocks:
    languages = tts.languages()
    with gr.Blocks(title="Lip-sync studio", delete_cache=(600, CACHE_SECONDS)) as demo:
        gr.Markdown("# Lip-sync studio\nA face (photo or video) and words (text or a recording) in; "
                    "a video of that face speaking them out. Wav2Lip, with a feathered blend and steady tracking.")
        banner = gr.Markdown(elem_id="weights-banner")
        running = gr.State(False)  # whether this page has a request running, so a second one says it waits
        mode = gr.State("text")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320):
                face = gr.File(label="Face: a photo or a video", file_types=["image", "video"], type="filepath",
                               elem_id="face")
                with gr.Row():
                    face_video = gr.Video(label="Your video", interactive=False, visible=False, height=260,
                                          elem_id="face-video")
                    preview = gr.Image(label="Faces found (numbered)", interactive=False, height=260,
                                       elem_id="face-preview")
                faces_note = gr.Markdown(elem_id="faces-note")
                controls = _options_panel()
                with gr.Tabs():
                    with gr.Tab("Text", id="text") as text_tab:
                        text = gr.Textbox(label="Text to speak", lines=4, max_length=DEFAULTS.max_text_chars,
                                          placeholder="Type what the face should say.", elem_id="text")
                        with gr.Row():
                            lang = open_choices(gr.Dropdown([(f"{name} ({code})", code) for code, name in
                                                             languages.items()], value="en", label="Language"))
                            slow = gr.Checkbox(label="Speak slowly", value=False)
                        text_button = gr.Button(BUTTON.format("text"), variant="primary", elem_id="generate-text")
                    with gr.Tab("Audio", id="audio") as audio_tab:
                        audio = gr.Audio(label="Speech", sources=["upload", "microphone"], type="filepath",
                                         elem_id="audio")
                        gr.Markdown("A recording (wav, mp3, m4a, ogg, flac, or a video with sound), or record one.")
                        audio_button = gr.Button(BUTTON.format("audio"), variant="primary", elem_id="generate-audio")
                    live_tab.build(demo, face, controls, SERVED.defaults, live_limits)
                estimate_note = gr.Markdown(elem_id="estimate")
            with gr.Column(min_width=320):
                with gr.Row(equal_height=True):
                    live = gr.Video(label="Preview: plays while the video is made", streaming=True, autoplay=True,
                                    interactive=False, height=480, elem_id="live-preview")
                    result = gr.Video(label="Result: the complete MP4", format=None, interactive=False, height=480,
                                      elem_id="result")
                status = gr.Markdown(elem_id="status")
                # The API's endpoints: the same requests, answering with the MP4 and the status only.
                api_buttons = {"text": gr.Button(visible=False), "audio": gr.Button(visible=False)}

        estimate_inputs = [face, mode, text, audio, slow, controls["enhance"]]
        for button, watch, words, api_button, api_run in (
                (text_button, watch_from_text, [face, text, lang, slow], api_buttons["text"], generate_from_text),
                (audio_button, watch_from_audio, [face, audio], api_buttons["audio"], generate_from_audio)):
            button.click(queue_note, running, [status, running], queue=False, api_name=False,
                         trigger_mode="multiple", show_progress="hidden").then(
                watch, words, [live, result, status], inputs_kwargs=controls, api_name=False,
                show_progress_on=[result], trigger_mode="always_last", concurrency_id="generate").then(
                lambda *words: (False, estimate(*words)), estimate_inputs, [running, estimate_note], queue=False,
                api_name=False, show_progress="hidden")  # the estimate now from the measured speed
            api_button.click(api_run, words, [result, status], inputs_kwargs=controls, api_name=api_run.__name__,
                             concurrency_id="generate")

        for trigger in (face.change, controls["detector"].change, controls["align_roll"].change,
                        controls["box"].submit):
            trigger(preview_faces, [face, controls["detector"], controls["align_roll"], controls["box"]],
                    [face_video, preview, controls["face_index"], faces_note], api_name=False, concurrency_limit=4)

        text_tab.select(lambda: "text", None, mode, queue=False, api_name=False)
        audio_tab.select(lambda: "audio", None, mode, queue=False, api_name=False)
        gr.on([face.change, mode.change, text.change, audio.change, slow.change, controls["enhance"].change],
              estimate, estimate_inputs, estimate_note, api_name=False,
              queue=False, show_progress="hidden", trigger_mode="always_last")

        poll = gr.Timer(2.0)
        gr.on([demo.load, poll.tick], SERVED.refresh, None, [banner, poll, text_button, audio_button],
              api_name=False, queue=False, show_progress="hidden")

        gr.Examples([[str(EXAMPLES / "monalisa.png"), "Hello! I have kept this smile for five hundred years.", "en"]],
                    [face, text, lang], label="Example: text", cache_examples=False, elem_id="example-text")
        gr.Examples([[str(EXAMPLES / "monalisa.png"), str(EXAMPLES / "speech.wav")]], [face, audio],
                    label="Example: audio", cache_examples=False, elem_id="example-audio")
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
    parser.add_argument("--checkpoint-dir", help=f"folder with wav2lip_gan.pth, wav2lip.pth, s3fd.pth (default: "
                                                 f"${runtime.CHECKPOINT_DIR_ENV}, else the Hugging Face Hub)")
    parser.add_argument("--max-seconds", default=os.environ.get(MAX_SECONDS_ENV, f"{MAX_SECONDS:g}"),
                        metavar="SECONDS",
                        help=f"longest speech a request may have; 0 for no limit (default: ${MAX_SECONDS_ENV}, "
                             f"else {MAX_SECONDS:g})")
    parser.add_argument("--live-seconds", type=float, default=live_tab.LIVE_SECONDS,
                        help="the longest one Live session may last, in seconds")
    parser.add_argument("--live-sessions", type=int, default=live_tab.LIVE_SESSIONS,
                        help="Live sessions at the same time; one more is told it waits")
    args = parser.parse_args(argv)
    try:
        limit = options.speech_limit(args.max_seconds)
    except LipSyncError as exc:
        parser.error(str(exc))
    global SERVED
    SERVED = Served(DEFAULTS.replace(checkpoint_dir=args.checkpoint_dir, max_audio_seconds=limit))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    hf_logging.set_verbosity_error()  # its retry chatter; the banner and errors say what failed
    SERVED.weights.start()
    demo = build_app(live_tab.Limits(args.live_seconds, args.live_sessions))
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    demo.launch(share=args.share, server_name=args.server_name, server_port=args.port,
                max_file_size=DEFAULTS.max_upload_bytes, allowed_paths=[str(EXAMPLES)], css=CSS)


if __name__ == "__main__":
    sys.exit(main())
