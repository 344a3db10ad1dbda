"""The examples: thumbnails by the upload; a click loads the face, the words, and the tab that takes them."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

FOLDER = Path(__file__).resolve().parents[1] / "examples"
# (face, its thumbnail, text, recording, tab, caption). A video's thumbnail is one of its frames: a <video> there
# would be a second player on the page.
ITEMS = [(FOLDER / "monalisa.png", FOLDER / "monalisa.png", "Hello! I have kept this smile for five hundred years.",
          None, "text", "Photo, typed text"),
         (FOLDER / "monalisa.png", FOLDER / "monalisa.png", None, FOLDER / "speech.wav", "audio", "Photo, a recording"),
         (FOLDER / "talking_head.mp4", FOLDER / "talking_head.jpg", None, FOLDER / "speech.wav", "audio",
          "Video, a recording")]


def gallery() -> gr.Gallery:
    return gr.Gallery([(str(thumbnail), caption) for _, thumbnail, *_, caption in ITEMS], label="Or try an example", columns=3,
                      height="auto", allow_preview=False, interactive=False, buttons=[], elem_id="examples")


def load(selected: gr.SelectData):
    """[face, text, recording, tabs, mode] for the example clicked."""
    face, _, text, audio, tab, _ = ITEMS[selected.index]
    return str(face), text or gr.skip(), str(audio) if audio else gr.skip(), gr.Tabs(selected=tab), tab
