"""Live mode: a portrait that speaks as its speech arrives (LiveSession); its WebSocket (wire: the messages,
server: the server side, client: the Python client); a recording spoken into an MP4 (files).

May import: the pipeline, render and everything below them; nothing imports it but the top's __init__ and the app."""

from .files import speak_file
from .session import LiveSession, feed_in_real_time

__all__ = ["LiveSession", "feed_in_real_time", "speak_file"]
