"""Flat option values, as the command line and the app receive them (text, numbers, None), into a LipSyncConfig.

An empty value (None or blank text) means the setting's default, and every default is the config's own."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .config import LipSyncConfig
from .errors import OptionError

DEFAULTS = LipSyncConfig()
# The settings one request may choose. The limits for public use (max_*, timeouts) belong to whoever serves.
NAMES = ("checkpoint", "checkpoint_dir", "detector", "box", "pads", "smoothing", "face_index", "blend", "color_match",
         "keep_silence", "align_roll", "output_size", "precision", "enhance", "batch_size", "device")
# How a setting is called in a message where its field name would not read as words.
WORDS = {"box": "The face box", "pads": "Pads", "face_index": "The face number", "output_size": "The output size",
         "batch_size": "The batch size"}
# Settings given as four numbers (top, bottom, left, right), each with an example for messages.
FOUR_NUMBERS = {"pads": DEFAULTS.pads, "box": (100, 300, 50, 250)}
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def to_config(values: Mapping[str, Any], base: LipSyncConfig = DEFAULTS) -> LipSyncConfig:
    """`base` with the given settings changed; empty values keep base's."""
    unknown = sorted(set(values) - set(NAMES))
    if unknown:
        raise OptionError(f"There is no option called '{unknown[0]}'; the options are {', '.join(NAMES)}.")
    changes = {name: _parse(name, value, getattr(base, name)) for name, value in values.items() if not _empty(value)}
    return base.replace(**changes)


def as_text(numbers: Sequence[int] | None) -> str:
    """Four numbers as a text box shows them: '0 10 0 0'; nothing for None."""
    return " ".join(str(number) for number in numbers) if numbers is not None else ""


def short_side(value: int | str) -> int:
    """An output size as people write it: 1080, '1080' or '1080p'."""
    try:
        return int(str(value).strip().lower().removesuffix("p"))
    except ValueError:
        raise OptionError(f"The output size must be a height such as 1080p or 720p, not '{value}'.") from None


def speech_limit(value: float | str | None) -> float | None:
    """The longest speech a request may have, in seconds, as a flag or a setting gives it; None for no limit
    (as for nothing, blank text or 0)."""
    if _empty(value):
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0):
        raise OptionError(f"The speech limit must be a number of seconds (0 for none), not '{value}'.")
    return seconds or None


def four_numbers(value: str | Sequence[int], what: str, example: Sequence[int]) -> tuple[int, int, int, int]:
    """'0 10 0 0', '0,10,0,0' or four integers -> a (top, bottom, left, right) tuple."""
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    try:
        numbers = tuple(int(part) for part in parts)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 4:
        shown = value if isinstance(value, str) else as_text(value)
        raise OptionError(f"{what} must be four whole numbers, TOP BOTTOM LEFT RIGHT, such as "
                          f"'{as_text(example)}'; got '{shown}'.")
    return numbers


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse(name: str, value: Any, default: Any) -> Any:
    what = WORDS.get(name, name)
    if name in FOUR_NUMBERS:
        return four_numbers(value, what, FOUR_NUMBERS[name])
    if name == "output_size":
        return short_side(value)
    if isinstance(default, bool):
        word = str(value).strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise OptionError(f"{what} must be true or false, not '{value}'.")
        return word in TRUE_WORDS
    if isinstance(default, int):
        try:
            return int(str(value).strip())
        except ValueError:
            raise OptionError(f"{what} must be a whole number, not '{value}'.") from None
    return str(value).strip()
