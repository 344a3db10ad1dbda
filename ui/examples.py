"""The examples: thumbnails by the upload; a click loads the face, the words, and the tab that takes them."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

FOLDER = Path(__file__).resolve().parents[1] / "examples"
# (face, text, recording, tab, caption)
ITEMS = [(FOLDER / "monalisa.png", "Hello! I have kept this smile for five hundred years.", None, "text",
          "Photo, typed text"),
         (FOLDER / "monalisa.png", None, FOLDER / "speech.wav", "audio", "Photo, a recording"),
         (FOLDER / "talking_head.mp4", None, FOLDER / "speech.wav", "audio", "Video, a recording")]


def gallery() -> gr.Gallery:
    return gr.Gallery([(str(face), caption) for face, *_, caption in ITEMS], label="Or try an example", columns=3,
                      height="auto", allow_preview=False, interactive=False, buttons=[], elem_id="examples")


def load(selected: gr.SelectData):
    """[face, text, recording, tabs, mode] for the example clicked."""
    face, text, audio, tab, _ = ITEMS[selected.index]
    return str(face), text or gr.skip(), str(audio) if audio else gr.skip(), gr.Tabs(selected=tab), tab
