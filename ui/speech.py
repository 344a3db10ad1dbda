"""The Text and Audio tabs: the words to speak, or a recording, and each tab's Generate."""

from __future__ import annotations

import gradio as gr

from lipsync import LipSyncConfig, options
from lipsync.config import OPTIONS

from . import words
from .options import open_choices

BUTTON = "Generate from {}"
# The page's voices, in the order of the choice: "Google only" (no fallback) is for the command line and the API.
PAGE_VOICES = [(label, value) for label, value in options.page_choices("voice") if value != "gtts"]
VOICE_INFO = ("Google's voice needs its service; when it cannot be reached, the natural voice of this machine "
              "speaks, else the robotic one.")


def build(defaults: LipSyncConfig) -> dict:
    """The Text and Audio tabs: the words, and each tab's Generate."""
    with gr.Tab("Text", id="text") as text_tab:
        text = gr.Textbox(label="Text to speak", lines=3, max_length=defaults.max_text_chars,
                          placeholder="Type what the face should say.", elem_id="text")
        # One above the other: beside the checkbox, on a phone, "English (en), natural voice" was cut short.
        lang = open_choices(gr.Dropdown(words.languages(), value="en", label="Language", elem_id="language"))
        slow = gr.Checkbox(label="Speak slowly", value=False)
        voice = gr.Radio(PAGE_VOICES, value=defaults.voice, label=OPTIONS["voice"].label, info=VOICE_INFO,
                         elem_id="voice")
        text_button = gr.Button(BUTTON.format("text"), variant="primary", elem_id="generate-text")
    with gr.Tab("Audio", id="audio") as audio_tab:
        audio = gr.Audio(label="Speech", sources=["upload", "microphone"], type="filepath", elem_id="audio")
        gr.Markdown("A recording (wav, mp3, m4a, ogg, flac, or a video with sound), or record one.")
        audio_button = gr.Button(BUTTON.format("audio"), variant="primary", elem_id="generate-audio")
    return {"text_tab": text_tab, "text": text, "lang": lang, "slow": slow, "voice": voice, "text_button": text_button,
            "audio_tab": audio_tab, "audio": audio, "audio_button": audio_button}
