"""Live mode: a portrait that speaks as its speech arrives (LiveSession), and writing its frames to files.

May import: the pipeline, render and everything below them; nothing imports it but the top's __init__ and the app."""

from .files import speak_file
from .session import LiveSession, feed_in_real_time

__all__ = ["LiveSession", "feed_in_real_time", "speak_file"]
