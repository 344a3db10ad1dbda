"""The player: one place for the video, the preview while it is made, then the finished MP4 (the preview gone, so
its sound stops, and the download offered on the finished file only); the status above it and Stop below."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from . import words


def section() -> dict:
    """[status, preview, result, Stop], in the order the request's updates name them."""
    status = gr.Markdown(label="Status", elem_id="status")  # the progress too, while a request runs
    live = gr.Video(label="Preview: plays while the video is made", streaming=True, autoplay=True, interactive=False,
                    visible=False, height=480, buttons=[], elem_id="live-preview")
    result = gr.Video(label="Your video", format=None, interactive=False, height=480, buttons=["download"],
                      elem_id="result")
    stop = gr.Button("Stop", variant="stop", visible=False, elem_id="stop")
    return {"outputs": [live, result, status, stop], "status": status, "result": result, "stop": stop}


def updates(events: Iterator[tuple[str, object]]) -> Iterator[tuple]:
    """A request's events ("started", "segment", "done", "stopped") as updates of [preview, result, status, Stop]."""
    for what, item in events:
        if what == "started":
            yield gr.update(value=None, visible=True), gr.update(value=None, visible=False), "", gr.update(
                visible=True)
        elif what == "segment":
            yield str(item), gr.skip(), gr.skip(), gr.skip()
        elif what == "done":
            mp4, status = item
            yield gr.update(value=None, visible=False), gr.update(value=mp4, visible=True), status, gr.update(
                visible=False)
        else:
            yield idle(words.STOPPED)


def idle(status) -> tuple:
    """[preview, result, status, Stop] with nothing running: the empty result in the player's place."""
    return gr.update(value=None, visible=False), gr.update(value=None, visible=True), status, gr.update(visible=False)
