"""Lip-sync studio: a face (photo or video) and words (text or a recording) in, a talking MP4 out.

The entry: components, events, the one GPU entry, and LipSyncError -> gr.Error. The page's words, options and face
preview are in ui/, the work in lipsync/.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import spaces  # noqa: E402
from huggingface_hub.utils import logging as hf_logging  # noqa: E402

from lipsync import LipSyncConfig, LipSyncError, options, pipeline  # noqa: E402
from lipsync.config import ALL_FACES  # noqa: E402, F401  (re-exported: the API's value for every face)
from lipsync.errors import CheckpointError  # noqa: E402
from ui import examples, faces, launch, player, score, serving, words  # noqa: E402
from ui import live as live_tab  # noqa: E402
from ui import speech as speech_tabs  # noqa: E402
from ui import options as page_options  # noqa: E402
# The page's choices and words, re-exported for callers of the app.
from ui.options import BLENDS, ENHANCERS, FINDERS, MODELS, PRECISIONS, SIZES, SMOOTHING, open_choices  # noqa
from ui.words import STAGE_LABELS  # noqa: E402, F401

log = logging.getLogger("lipsync.app")

STYLE = Path(__file__).resolve().parent / "ui" / "studio.css"
# What every request starts from: the library's defaults with the served limit (main() may set another).
DEFAULTS = options.DEFAULTS.replace(max_audio_seconds=launch.MAX_SECONDS)
# ZeroGPU slot: start-up and detection, plus generation at a conservative rate; the slot is capped by the Space.
# The rates sit well below the H200's measured ones (README), for a slower GPU and a cold start.
GPU_BASE_SECONDS = 20
GPU_FRAMES_PER_SECOND = 40
GPU_ENHANCED_FRAMES_PER_SECOND = 15  # enhancing: GFPGAN on every generated frame (ZeroGPU runs on CUDA)
GPU_MAX_SECONDS = 300
HEARTBEAT_SECONDS = 0.5  # how often a running request can be stopped, and its clock ticks
CACHE_SECONDS = 2 * 3600  # uploads and results stay downloadable this long
API_ORDER = ("checkpoint", "detector", "pads", "smoothing", "face_index", "output_size", "blend", "color_match",
             "keep_silence", "align_roll", "box", "precision", "enhance", "landmarks", "mask",
             "score", "voice")  # the options, as the API lists them
# On each click the progress comes into view (on a phone it is below the button), a quarter down the screen.
SHOW_PROGRESS = """() => { const top = document.getElementById('status').getBoundingClientRect().top;
    if (top < 0 || top > innerHeight / 2) window.scrollBy({top: top - innerHeight / 4}); }"""


class Served:
    """What this server was started with: the settings every request starts from, the weights they need (watched
    until all are in place), the speed measured on the requests served, and each page's requests and preview."""

    def __init__(self, defaults: LipSyncConfig):
        self.defaults = defaults
        self.weights = serving.WeightsWatch(defaults)
        self.speed = serving.SpeedLog()
        self.requests = serving.PageRequests()
        self.faces = faces.Preview(FINDERS[1][0])
        self.live: live_tab.LiveTab | None = None  # its sockets, once the page is built

    def refresh(self):
        """The banner, its polling timer (on until all is in place), the Generate buttons and the options' hints."""
        weights = self.weights
        why = ": waiting for the model weights (see the note at the top)" if weights.blocking else ""
        buttons = [gr.update(value=speech_tabs.BUTTON.format(words_) + why, interactive=not weights.blocking)
                   for words_ in ("text", "audio")]
        banner = words.banner(weights, FINDERS[1][0])
        return (gr.update(value=banner, visible=bool(banner)),
                gr.Timer(active=bool(weights.missing) or not weights.checked.is_set()), *buttons,
                *page_options.hints(weights))


SERVED = Served(DEFAULTS)  # main() makes it anew from the launch options


# ---------------------------------------------------------------- the GPU entry

def _gpu_seconds(face: str, audio: str | None, text: str | None, lang: str, slow: bool, config: LipSyncConfig,
                 out: Path) -> int:
    """ZeroGPU slot length for this request, from the number of frames it will generate."""
    try:
        frames = pipeline.estimate_frames(face, audio_path=audio, text=text, slow=slow, config=config)
    except LipSyncError:
        frames = 0  # the call itself will say what is wrong, quickly
    rate = GPU_FRAMES_PER_SECOND if config.enhance == "none" else GPU_ENHANCED_FRAMES_PER_SECOND
    return int(min(GPU_MAX_SECONDS, GPU_BASE_SECONDS + frames / rate))


class Stopped(Exception):
    """The request was stopped or its page went away: its generation stops at the next frame."""


def preview_folder(out: Path) -> Path:
    """Where the request's preview segments are kept: beside its MP4, named for it."""
    return out.with_name(f"{out.stem}-preview")


@spaces.GPU(duration=_gpu_seconds)
def _lip_sync(face: str, audio: str | None, text: str | None, lang: str, slow: bool, config: LipSyncConfig,
              out: Path) -> Iterator[tuple[str, object]]:
    """The request: yields ("progress", (fraction, stage)) as the pipeline reports it, and again every
    HEARTBEAT_SECONDS meanwhile; ("segment", path) for each preview segment as soon as it is made (moved into
    preview_folder(out)); then ("done", Result). A generator, so the page plays the video while it is made
    (ZeroGPU forwards each item; the slot covers the whole request), and so that closing it stops the generation
    within a heartbeat: generate, on a thread of its own, stops at its next callback, and is waited for, so its
    files are gone when close returns. Its error is raised here."""
    made: queue.Queue = queue.Queue()
    stop = threading.Event()
    kept = preview_folder(out)

    def keep(segment: Path) -> None:
        if stop.is_set():
            raise Stopped
        kept.mkdir(parents=True, exist_ok=True)
        made.put(("segment", Path(shutil.move(segment, kept / segment.name))))

    def report(fraction: float, stage: str) -> None:
        if stop.is_set():
            raise Stopped
        made.put(("progress", (fraction, pipeline.Stage(stage))))

    def work() -> None:
        try:
            made.put(("done", pipeline.generate(face, out, audio_path=audio, text=text, lang=lang, slow=slow,
                                                config=config, progress=report, on_segment=keep)))
        except BaseException as exc:  # handed to the generator, which raises it
            made.put(("error", exc))

    worker = threading.Thread(target=work, name="lip-sync", daemon=True)
    worker.start()
    try:
        yield from _relay(made, config)
    finally:
        stop.set()
        worker.join()


def _relay(made: queue.Queue, config: LipSyncConfig) -> Iterator[tuple[str, object]]:
    """The request's items as they come, the last progress again every HEARTBEAT_SECONDS meanwhile, up to "done";
    an error is raised."""
    latest = ("progress", (0.0, pipeline.Stage.SPEECH))
    while True:
        try:
            kind, item = made.get(timeout=HEARTBEAT_SECONDS)
        except queue.Empty:
            kind, item = latest  # nothing new: the last progress again
        if kind == "error":
            # As a gr.Error: on ZeroGPU this runs in a forked worker, and only a gr.Error crosses back to the page
            # with its message (anything else arrives as a bare "ZeroGPU worker error").
            raise (item if isinstance(item, Stopped) else _error(_message(item, config))) from None
        if kind == "progress":
            latest = (kind, item)
        yield kind, item
        if kind == "done":
            return


# ---------------------------------------------------------------- events

def _error(message: str) -> gr.Error:
    """A toast that stays until closed; the message is the whole story, so no server traceback."""
    return gr.Error(message, duration=None, print_exception=False)


def _message(exc: Exception, config: LipSyncConfig | None) -> str:
    """What the page says of a failed request: our own sentence for bad input, and for missing weights the
    setting that needs them (or, when nothing can be made, every missing file)."""
    weights = SERVED.weights
    if isinstance(exc, CheckpointError) and weights.checked.wait(5):
        if weights.blocking:
            return weights.problem()
        sentence = config is not None and words.needs_weights(config, weights)
        if sentence:
            return sentence
    if isinstance(exc, LipSyncError):
        return str(exc)
    log.exception("generation failed", exc_info=exc)
    return f"Something went wrong on our side ({type(exc).__name__}); please try again."


def _run(face: str | None, audio: str | None, text: str | None, lang: str, slow: bool, chosen: dict,
         progress: gr.Progress, page: str) -> Iterator[tuple[str, object]]:
    """The one place where a request runs and where its errors become messages. Yields ("started", None),
    ("segment", path) for each preview segment, then ("done", (MP4, status)), or ("stopped", None) after the
    page's Stop. Whatever ends it, its files go, but for a finished MP4."""
    if not face:
        raise _error("Upload a face first: a photo or a video.")
    out_dir = Path(gr.utils.get_upload_folder()) / "lipsync" / uuid.uuid4().hex
    out = out_dir / f"{Path(face).stem}-lipsync.mp4"
    config = result = None
    try:
        with SERVED.requests.running(page) as stop:
            yield "started", None
            config = options.to_config(chosen, SERVED.defaults)
            kind = SERVED.speed.kind(face, config)
            expected = _expected(face, audio, text, slow, config, kind)
            started = time.monotonic()
            with contextlib.closing(_lip_sync(face, audio, text, lang, slow, config, out)) as made:
                for what, item in made:
                    if stop.is_set():
                        break  # closing the entry stops the generation and waits for it
                    if what == "progress":
                        progress(item[0], desc=words.progress(item[1], time.monotonic() - started))
                    elif what == "segment":
                        yield "segment", item
                    else:
                        result = item
    except Exception as exc:
        raise (exc if isinstance(exc, gr.Error) else _error(_message(exc, config))) from None
    finally:
        # The page has read every segment by now (Gradio takes the next update only after the last one).
        shutil.rmtree(preview_folder(out), ignore_errors=True)
        if result is None:
            shutil.rmtree(out_dir, ignore_errors=True)
    if result is None:
        yield "stopped", None
        return
    SERVED.speed.record(kind, result.seconds, result.frames)
    yield "done", (str(result.path), words.status(result, expected and expected[0], kind[2]))


def _final(updates: Iterator[tuple[str, object]]) -> tuple[str | None, str]:
    """The API's answer: the MP4 and the status."""
    for what, item in updates:
        if what == "done":
            return item
    return None, words.STOPPED


def watch_from_text(face, text, lang, slow, progress=gr.Progress(), request: gr.Request = None, **chosen):
    """The page's Generate from text: the preview while the video is made, then the MP4 and the status; nothing
    while the page makes another (the click's note says so)."""
    if not SERVED.requests.busy(request.session_hash):
        yield from player.updates(_run(face, None, text or "", lang, slow, chosen, progress, request.session_hash))


def watch_from_audio(face, audio, progress=gr.Progress(), request: gr.Request = None, **chosen):
    """The page's Generate from audio, as watch_from_text."""
    if not audio:
        raise _error("Add the speech first: upload a recording or record one with the microphone.")
    if not SERVED.requests.busy(request.session_hash):
        yield from player.updates(_run(face, audio, None, "en", False, chosen, progress, request.session_hash))


def generate_from_text(face, text, lang, slow, progress=gr.Progress(), request: gr.Request = None, **chosen):
    """Make the face speak the text (gTTS, or the offline espeak-ng voice). Options by name, each optional."""
    return _final(_run(face, None, text or "", lang, slow, chosen, progress, request.session_hash))


def generate_from_audio(face, audio, progress=gr.Progress(), request: gr.Request = None, **chosen):
    """Make the face speak a recording. Options by name, each optional."""
    if not audio:
        raise _error("Add the speech first: upload a recording or record one with the microphone.")
    return _final(_run(face, audio, None, "en", False, chosen, progress, request.session_hash))


def _expected(face: str, audio: str | None, text: str | None, slow: bool, config: LipSyncConfig,
              kind: tuple) -> tuple[float, bool, int] | None:
    """The expected seconds, whether measured, and the frames; None when the inputs cannot be read."""
    try:
        frames = pipeline.estimate_frames(face, audio_path=audio, text=text, slow=slow, config=config)
    except LipSyncError:
        return None
    return (*SERVED.speed.seconds(frames, kind), frames)


def estimate(face: str | None, mode: str, text: str, audio: str | None, slow: bool, **chosen) -> str:
    """Before Generate: roughly how long the request will take here, with the settings chosen."""
    speech = {"text": text if (text or "").strip() else None, "audio": audio}[mode]
    if not face or not speech:
        return ""
    try:
        config = options.to_config(chosen, SERVED.defaults)
        kind = SERVED.speed.kind(face, config)
    except LipSyncError:
        return ""
    expected = _expected(face, speech if mode == "audio" else None, speech if mode == "text" else None, slow,
                         config, kind)
    return words.estimate(*expected, kind[0], os.cpu_count()) if expected else ""


def click_note(request: gr.Request) -> str:
    """On each click: the status is cleared (no error beside the last success), or says that this page is making a
    video already: the click then goes (Gradio would keep a deferred one past a Stop)."""
    return words.BUSY if SERVED.requests.busy(request.session_hash) else ""


def stop(request: gr.Request) -> tuple:
    """The page's Stop: its request stops at the next frame, its files removed (Gradio drops a waiting one)."""
    SERVED.requests.stop(request.session_hash)
    return player.idle(words.STOPPED)


def preview_faces(face, detector, align_roll, box, number, request: gr.Request):
    """[preview, which face, note, numbered boxes] for the face and the settings that find it."""
    settings = {"detector": detector, "align_roll": align_roll, "box": box}
    return SERVED.faces.find(face, settings, SERVED.defaults, request.session_hash, int(number))


def build_app(live_limits: live_tab.Limits = live_tab.Limits()) -> gr.Blocks:
    defaults = SERVED.defaults
    with gr.Blocks(title="Lip-sync studio", delete_cache=(600, CACHE_SECONDS)) as demo:
        gr.Markdown("# Lip-sync studio\nA face (photo or video) and words (text or a recording) in; "
                    "a video of that face speaking them out. Wav2Lip, with a feathered blend and steady tracking.")
        banner = gr.HTML(elem_id="weights-banner", visible=False)
        mode = gr.State("text")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=320, elem_id="inputs"):
                face = open_choices(gr.File(label="Face: a photo or a video", file_types=["image", "video"],
                                            type="filepath", height=110, elem_id="face"))
                thumbnails = examples.gallery()
                face_parts = faces.section(defaults)
                preset = page_options.preset_radio(defaults)
                with gr.Tabs() as tabs:
                    speech = speech_tabs.build(defaults)
                    wire_live = live_tab.build(defaults, live_limits)
                estimate_note = gr.Markdown(elem_id="estimate")
                chosen = page_options.options_panel(defaults)
            with gr.Column(min_width=320, elem_id="outputs"):
                shown = player.section()
                api_buttons = [gr.Button(visible=False), gr.Button(visible=False)]  # the API's endpoints
                score.endpoint(lambda: SERVED.defaults, lambda exc: _error(_message(exc, None)))
        controls = {name: {**chosen, "face_index": face_parts["face_index"], "voice": speech["voice"]}[name]
                    for name in API_ORDER}
        SERVED.live = wire_live(demo, face, controls)
        estimate_inputs = [face, mode, speech["text"], speech["audio"], speech["slow"]]
        runs = _wire_requests(face, speech, shown, api_buttons, controls)
        for run in runs:
            run.then(estimate, estimate_inputs, estimate_note, inputs_kwargs=controls, queue=False, api_name=False,
                     show_progress="hidden")  # the estimate now from the measured speed
        faces.wire(face, face_parts, [chosen[name] for name in ("detector", "align_roll", "box")], preview_faces)
        thumbnails.select(examples.load, None, [face, speech["text"], speech["audio"], tabs, mode], queue=False,
                          api_name=False)
        page_options.wire_presets(preset, chosen, lambda: SERVED.defaults)
        for tab, name in ((speech["text_tab"], "text"), (speech["audio_tab"], "audio")):
            tab.select(lambda name=name: name, None, mode, queue=False, api_name=False)
        gr.on([face.change, *(part.change for part in estimate_inputs[1:]),
               *(control.change for control in chosen.values())], estimate, estimate_inputs, estimate_note,
              inputs_kwargs=controls, api_name=False, queue=False, show_progress="hidden",
              trigger_mode="always_last")
        poll = gr.Timer(2.0)
        gr.on([demo.load, poll.tick], SERVED.refresh, None,
              [banner, poll, speech["text_button"], speech["audio_button"], preset, chosen["detector"],
               chosen["enhance"], chosen["checkpoint"]], api_name=False, queue=False, show_progress="hidden")
        gr.Markdown("The Wav2Lip weights are for research and non-commercial use only.")
    return demo


def _wire_requests(face, speech: dict, shown: dict, api_buttons: list, controls: dict) -> list:
    """Each Generate into the player, the same two requests as API endpoints, and Stop; returns the page's runs."""
    runs = []
    for button, watch, words_in, api_button, api_run in (
            (speech["text_button"], watch_from_text, [face, speech["text"], speech["lang"], speech["slow"]],
             api_buttons[0], generate_from_text),
            (speech["audio_button"], watch_from_audio, [face, speech["audio"]], api_buttons[1],
             generate_from_audio)):
        button.click(None, js=SHOW_PROGRESS)
        run = button.click(click_note, None, shown["status"], queue=False, api_name=False,
                           trigger_mode="multiple", show_progress="hidden").then(
            watch, words_in, shown["outputs"], inputs_kwargs=controls, api_name=False,
            show_progress_on=[shown["status"]], trigger_mode="once", concurrency_id="generate")
        # The toast tells the error, and no badge stays; a Stop is a failure too: its status stays.
        run.failure(lambda: player.idle(gr.skip()), None, shown["outputs"], queue=False, api_name=False,
                    show_progress="hidden")
        runs.append(run)
        # The API: the same requests, answering with the MP4 and the status only.
        api_button.click(api_run, words_in, [shown["result"], shown["status"]], inputs_kwargs=controls,
                         api_name=api_run.__name__, concurrency_id="generate")
    shown["stop"].click(stop, None, shown["outputs"], cancels=runs, queue=False, api_name=False)
    return runs


def main(argv: list[str] | None = None) -> None:
    args = launch.parse(argv)
    global SERVED
    SERVED = Served(DEFAULTS.replace(checkpoint_dir=args.checkpoint_dir, max_audio_seconds=args.max_seconds))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    hf_logging.set_verbosity_error()  # its retry chatter; the banner and errors say what failed
    SERVED.weights.start()
    demo = build_app(live_tab.Limits(args.live_seconds, args.live_sessions))
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    demo.launch(share=args.share, server_name=args.server_name, server_port=args.port,
                max_file_size=DEFAULTS.max_upload_bytes, allowed_paths=[str(examples.FOLDER)], css_paths=[STYLE],
                **SERVED.live.launch_options())


if __name__ == "__main__":
    sys.exit(main())
