"""The page's Live tab: the chosen photo speaks with the microphone's voice as you talk, over one WebSocket on the
app's own port (lipsync.live.server; its messages: lipsync.live.wire).

Start is a Gradio event: it finds and encodes the face once (made ahead when the tab opens) and gives the page a
single-use token. The page's script (LIVE_SCRIPT) then opens the socket and sends the microphone's samples as an
AudioWorklet captures them, 16-bit PCM, 20 ms a message; it draws each frame on a canvas at its time, a small
jitter buffer behind the first, and plays its sound with it when "Play my voice" is on (off by default: hearing
yourself late is confusing). At most `sessions` run at once, each for at most `seconds`."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from spaces.config import Config as SpacesConfig
from starlette.routing import WebSocketRoute

from lipsync import LipSyncConfig, LipSyncError, LiveSession, options
from lipsync.live import wire
from lipsync.live.server import LiveSockets

LIVE_SECONDS = 120
LIVE_SESSIONS = 2
JITTER_SECONDS = 0.12  # frames are shown this far behind the first one's arrival: room for the network's jitter
ELEMENT_IDS = {"start": "live-start", "stop": "live-stop", "playback": "live-playback", "status": "live-status"}
# The canvas and the line the page's script writes to.
CANVAS = ('<div id="live-stage"><canvas id="live-canvas" width="0" height="0"></canvas>'
          '<p id="live-note"></p></div>')
SCRIPT = (Path(__file__).with_name("live.js").read_text()
          .replace("SOCKET_PATH", json.dumps(wire.SOCKET_PATH.lstrip("/")))
          .replace("JITTER_SECONDS", str(JITTER_SECONDS)).replace("MESSAGE_SECONDS", str(wire.MESSAGE_SECONDS)))


@dataclass(frozen=True)
class Limits:
    """The launch options: how long one session may last, and how many may run at once."""
    seconds: float = LIVE_SECONDS
    sessions: int = LIVE_SESSIONS


def live_config(chosen: dict[str, Any], defaults: LipSyncConfig) -> LipSyncConfig:
    """The page's options for a live session. Never face restoration (it takes far longer than a frame), and on
    ZeroGPU the Space's CPU: a GPU slot held for a whole session would be held mostly waiting for speech."""
    config = options.to_config(chosen, defaults).replace(enhance="none")
    return config.replace(device="cpu") if SpacesConfig.zero_gpu else config


class LiveTab:
    """The tab's events and the socket's sessions; per page, the session made ahead and the token it was given."""

    def __init__(self, defaults: LipSyncConfig, limits: Limits):
        self.defaults, self.limits = defaults, limits
        self.sockets = LiveSockets(limits.sessions)
        self._ready: dict[str, tuple[tuple, LiveSession]] = {}  # page -> ((photo, config), session)
        self._tokens: dict[str, str] = {}  # page -> the token it was given last
        self._lock = threading.Lock()

    def launch_options(self) -> dict[str, Any]:
        """For Blocks.launch: the socket's route on the app's own server, and no server-side rendering (its Node
        front server passes no WebSocket on)."""
        return {"ssr_mode": False, "app_kwargs": {"routes": [WebSocketRoute(wire.SOCKET_PATH, self.sockets.serve)]}}

    def prepare(self, face: str | None, request: gr.Request, **chosen) -> str:
        """On opening the tab: the photo's face found and encoded and the model loaded, before anyone speaks."""
        if not face:
            return "Upload a photo first (at the top), then press Start and speak."
        config = live_config(chosen, self.defaults)
        try:
            session = LiveSession(face, config, max_seconds=self.limits.seconds)
        except LipSyncError as exc:
            return f"⚠️ {exc}"
        with self._lock:
            self._ready[request.session_hash] = ((face, config), session)
        return "Ready: press Start and speak."

    def start(self, face: str | None, request: gr.Request, **chosen) -> tuple[str, str]:
        """Start: [token, status]: the session made (or taken as made ahead) and its token, or why not."""
        if not face:
            raise gr.Error("Upload a photo first (at the top), then press Start.", print_exception=False)
        busy = self.sockets.busy_message()
        if busy:
            raise gr.Error(busy, print_exception=False)
        config = live_config(chosen, self.defaults)
        page = request.session_hash
        with self._lock:
            made_for, session = self._ready.pop(page, (None, None))
        try:
            if made_for != (face, config):
                session = LiveSession(face, config, max_seconds=self.limits.seconds)
            token = self.sockets.open(session)
        except LipSyncError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        with self._lock:
            self._tokens[page] = token
        return token, ""  # from here on the page's own line, under the portrait, says how the session goes

    def forget(self, request: gr.Request) -> None:
        """The page has gone: its session made ahead, and a token it did not use."""
        with self._lock:
            self._ready.pop(request.session_hash, None)
            token = self._tokens.pop(request.session_hash, None)
        if token is not None:
            self.sockets.cancel(token)


def build(defaults: LipSyncConfig, limits: Limits = Limits()) -> Callable[..., LiveTab]:
    """The Live tab, inside the page's Tabs; returns what wires its events once the page's options exist: the
    photo is the page's face, the options its options panel's."""
    tab = LiveTab(defaults, limits)
    with gr.Tab("Live", id="live") as live:
        gr.Markdown(f"Press **Start** and speak: the photo above speaks with your voice as you talk, a fraction of a "
                    f"second behind (at most {limits.seconds:g} s a session). **Stop** ends it.")
        with gr.Row():
            start = gr.Button("Start", variant="primary", elem_id=ELEMENT_IDS["start"])
            stop = gr.Button("Stop", variant="stop", elem_id=ELEMENT_IDS["stop"])
        # Read by the page's script at each frame, so it may change during a session.
        gr.Checkbox(label="Play my voice with the portrait", value=False, elem_id=ELEMENT_IDS["playback"])
        gr.HTML(CANVAS)
        status = gr.Markdown(elem_id=ELEMENT_IDS["status"])
        token = gr.Textbox(visible=False)

    def wire_events(demo: gr.Blocks, face: gr.File, controls: dict[str, gr.components.Component]) -> LiveTab:
        live.select(tab.prepare, face, status, inputs_kwargs=controls, api_name=False, concurrency_limit=1,
                    concurrency_id="live-prepare", show_progress="minimal")
        start.click(tab.start, face, [token, status], inputs_kwargs=controls, api_name="start_live",
                    concurrency_limit=limits.sessions, concurrency_id="live-start", show_progress="minimal").success(
            None, token, None, js=SCRIPT, queue=False, api_name=False)
        stop.click(None, js="() => { window.lipsyncLive && window.lipsyncLive.stop(); }", queue=False, api_name=False)
        demo.unload(tab.forget)
        return tab

    return wire_events
