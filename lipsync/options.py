"""Flat option values, as the command lines, the batch columns and the app receive them (text, numbers, None), into
a LipSyncConfig; and the command-line flags, made from the options' one declaration on the config's fields.

An empty value (None or blank text) means the setting's default, and every default is the config's own."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Callable, Mapping, Sequence

from .config import OPTIONS, LipSyncConfig
from .errors import LipSyncError, OptionError

DEFAULTS = LipSyncConfig()
# The settings one request may choose. The limits for public use (max_*, timeouts) belong to whoever serves.
NAMES = tuple(OPTIONS)
# Settings given as four numbers (top, bottom, left, right), each with an example for messages.
FOUR_NUMBERS = {"pads": DEFAULTS.pads, "box": (100, 300, 50, 250)}
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
INTERRUPTED_STATUS = 130  # 128 + SIGINT, as shells report Ctrl-C


def to_config(values: Mapping[str, Any], base: LipSyncConfig = DEFAULTS) -> LipSyncConfig:
    """`base` with the given settings changed; empty values keep base's."""
    unknown = sorted(set(values) - set(NAMES))
    if unknown:
        raise OptionError(f"There is no option called '{unknown[0]}'; the options are {', '.join(NAMES)}.")
    changes = {name: _parse(name, value, getattr(base, name)) for name, value in values.items() if not _empty(value)}
    return base.replace(**changes)


def page_choices(name: str) -> list[tuple[str, str]]:
    """(the page's words, value) for each allowed value of a setting, as a radio or dropdown takes them."""
    return [(words, value) for value, words in OPTIONS[name].choices]


def as_text(numbers: Sequence[int] | None) -> str:
    """Four numbers as a text box shows them: '0 10 0 0'; nothing for None."""
    return " ".join(str(number) for number in numbers) if numbers is not None else ""


def short_side(value: int | str) -> int:
    """An output size as people write it: 1080, '1080' or '1080p'."""
    try:
        return int(str(value).strip().lower().removesuffix("p"))
    except ValueError:
        raise OptionError(f"The output size must be a height such as 1080p or 720p, not '{value}'.") from None


def yes_or_no(value: Any, what: str) -> bool:
    """A true/false setting written as a bool or as a word (true/false, yes/no, on/off, 1/0)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise OptionError(f"{what} must be true or false, not '{value}'.")
    return word in TRUE_WORDS


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


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, names: Sequence[str] = NAMES,
              base: LipSyncConfig = DEFAULTS) -> None:
    """A flag per setting (each of `names`), the same spellings in every command: `--name VALUE`; a true/false
    setting also as a bare `--name` and `--no-name`. Every flag defaults to None (base's value, which the help
    shows) and its value is read by to_config, so the CLIs refuse a bad value in the same words as the app."""
    for name in names:
        declared = OPTIONS[name]
        flag = "--" + name.replace("_", "-")
        default = getattr(base, name)
        shown = as_text(default) if name in FOUR_NUMBERS else str(default).lower()
        text = declared.help + (f" (default: {shown})" if default is not None else "")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, nargs="?", const="true", metavar="true|false",
                                help=f"{text}; --no-{flag[2:]} is --{flag[2:]} false")
            parser.add_argument(f"--no-{flag[2:]}", *declared.flags, dest=name, action="store_const",
                                const="false", help=argparse.SUPPRESS)
        elif name in FOUR_NUMBERS:
            parser.add_argument(flag, dest=name, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), help=text)
        elif name == "output_size":
            parser.add_argument(flag, dest=name, type=_flag_short_side, metavar="SIZE", help=text)
        else:
            values = declared.values + tuple(alias for alias, _ in declared.aliases)
            parser.add_argument(flag, dest=name, metavar="|".join(values) if values else "VALUE", help=text)


def add_speech_limit(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str,
                     default: str | None = None) -> None:
    """--max-seconds SECONDS, read by speech_limit into `max_seconds` (None: no limit), the same in every command."""
    parser.add_argument("--max-seconds", dest="max_seconds", type=_flag_speech_limit, default=default,
                        metavar="SECONDS", help=help)


def _flag_speech_limit(text: str) -> float | None:
    try:
        return speech_limit(text)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _flag_short_side(text: str) -> int:
    try:
        return short_side(text)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def flag_values(args: argparse.Namespace, names: Sequence[str] = NAMES) -> dict[str, Any]:
    """The settings given on a command line made by add_flags with these names (None where a flag was not given)."""
    return {name: getattr(args, name) for name in names}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse(name: str, value: Any, default: Any) -> Any:
    what = OPTIONS[name].words or name
    if name in FOUR_NUMBERS:
        return four_numbers(value, what, FOUR_NUMBERS[name])
    if name == "output_size":
        return short_side(value)
    if isinstance(default, bool):
        return yes_or_no(value, what)
    if isinstance(default, int):
        try:
            return int(str(value).strip())
        except ValueError:
            raise OptionError(f"{what} must be a whole number, not '{value}'.") from None
    return str(value).strip()


def run_command(work: Callable[[], int], error_status: int = 1, interrupted: str = "interrupted",
                before_error: Callable[[], None] = lambda: None) -> int:
    """A command's ending, shared by every CLI: its work's exit status, or one "error: …" line on stderr and
    error_status for a LipSyncError, 130 for Ctrl-C. before_error clears the terminal line first (a progress bar)."""
    try:
        return work()
    except LipSyncError as exc:
        before_error()
        print(f"error: {exc}", file=sys.stderr)
        return error_status
    except KeyboardInterrupt:
        before_error()
        print(f"error: {interrupted}", file=sys.stderr)
        return INTERRUPTED_STATUS
