"""The live socket's messages, shared by the server (lipsync.live.server, on the app's own port at SOCKET_PATH),
the Python client (lipsync.live.client) and the page's script. All numbers little-endian.

The client sends:
1. text, once: {"token": "<from the app's start_live event>", "rate": <its samples per second>}
2. binary, any number: its speech as 16-bit mono PCM at that rate, as it is captured: at most MAX_MESSAGE_MS a
   message, and never more than REALTIME_SLACK_SECONDS ahead of real time since the first;
3. text, once its speech has ended: {"type": "end"}. The remaining frames follow, then the summary.

The server sends:
- text, at the start: {"type": "ready", "fps", "width", "height", "sample_rate" (of the frames' sound),
  "lookahead_ms", "image": "jpeg", "quality"};
- binary PHOTO + the photo as a JPEG, once, before any frame;
- binary FRAME per frame, in order, as soon as it is made: the FRAME_HEADER (index, regions, samples), then per
  region its REGION_HEADER (x, y, width, height, JPEG bytes) and JPEG (the photo's pixels there in this frame:
  drawn over the photo, they make the frame), then the frame's own stretch of speech as 16-bit PCM at
  "sample_rate";
- text at the end: {"type": "end", "received_samples" (at the client's rate), "frames", "seconds", "summary"},
  then it closes the socket (1000).
Bad input closes the socket with one of the CLOSE_ codes and a sentence as the reason."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

SOCKET_PATH = "/live/socket"
MESSAGE_SECONDS = 0.02  # of speech in each message the page and lipsync.live.client send
MAX_MESSAGE_MS = 50  # of speech in one binary message, at most
REALTIME_SLACK_SECONDS = 1.0  # how far a client's speech may run ahead of the clock (network bursts)
MIN_RATE, MAX_RATE = 8_000, 192_000
JPEG_QUALITY = 85
PHOTO, FRAME = b"P", b"F"
FRAME_HEADER = struct.Struct("<cIHI")  # FRAME, index, regions, speech samples
REGION_HEADER = struct.Struct("<HHHHI")  # x, y, width, height, JPEG bytes
CLOSE_DONE = 1000
CLOSE_WRONG_TYPE = 1003  # text where speech was expected, or the reverse; an odd byte count
CLOSE_REFUSED = 1008  # a token unknown, used or expired; speech faster than real time; the session's limit
CLOSE_TOO_BIG = 1009
CLOSE_FAILED = 1011
MAX_REASON_BYTES = 123  # a close frame's reason, as the WebSocket protocol allows


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    width: int
    height: int
    jpeg: bytes


@dataclass(frozen=True)
class FrameMessage:
    index: int
    regions: list[Region]
    samples: np.ndarray  # int16


def pack_frame(index: int, regions: list[Region], samples: np.ndarray) -> bytes:
    parts = [FRAME_HEADER.pack(FRAME, index, len(regions), len(samples))]
    for region in regions:
        parts += [REGION_HEADER.pack(region.x, region.y, region.width, region.height, len(region.jpeg)), region.jpeg]
    parts.append(np.asarray(samples, "<i2").tobytes())
    return b"".join(parts)


def unpack_frame(message: bytes) -> FrameMessage:
    kind, index, count, samples = FRAME_HEADER.unpack_from(message)
    if kind != FRAME:
        raise ValueError(f"not a frame message: {kind!r}")
    cursor = FRAME_HEADER.size
    regions = []
    for _ in range(count):
        x, y, width, height, size = REGION_HEADER.unpack_from(message, cursor)
        cursor += REGION_HEADER.size
        regions.append(Region(x, y, width, height, message[cursor:cursor + size]))
        cursor += size
    return FrameMessage(index, regions, np.frombuffer(message, "<i2", samples, cursor))


def reason(text: str) -> str:
    """A close reason within the protocol's 123 bytes, cut at a word."""
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_REASON_BYTES:
        return text
    cut = encoded[:MAX_REASON_BYTES - 3].decode("utf-8", "ignore").rsplit(" ", 1)[0]
    return cut + "..."
