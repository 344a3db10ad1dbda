"""Text to speech: gTTS first; espeak-ng offline when gTTS cannot reach its service, and the caller is told."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gtts import gTTS
from gtts.lang import tts_langs

from ..errors import TextError
from ..media import ffmpeg

GTTS_TIMEOUT = 20.0
ESPEAK = "espeak-ng"
ESPEAK_WORDS_PER_MINUTE = {False: 165, True: 120}
# gTTS codes whose espeak-ng voice has another name.
ESPEAK_VOICE_ALIASES = {"zh": "cmn", "zh-CN": "cmn", "zh-TW": "cmn", "iw": "he", "jw": "jv", "no": "nb",
                        "fr-CA": "fr", "pt-PT": "pt", "tl": "fil", "yue": "yue"}


@dataclass(frozen=True)
class SpokenText:
    path: Path
    engine: str  # "gTTS" or "espeak-ng"
    fallback_reason: str | None  # why gTTS was not used, when it was not


def languages() -> dict[str, str]:
    """Language codes offered to users (gTTS's list), with their names."""
    return dict(sorted(tts_langs().items()))


@cache
def espeak_voices() -> frozenset[str]:
    try:
        listing = subprocess.run([ESPEAK, "--voices"], check=True, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            # The language, the voice file's name (gmw/en -> en) and the "(en 2)" other-language codes.
            names.update([fields[1], fields[4].rsplit("/", 1)[-1]])
            names.update(re.findall(r"\(([\w-]+) \d+\)", line))
    return frozenset(names)


def espeak_voice(lang: str) -> str | None:
    voices = espeak_voices()
    for candidate in (ESPEAK_VOICE_ALIASES.get(lang, lang), lang.split("-")[0].lower()):
        if candidate in voices:
            return candidate
    return None


def synthesize(text: str, lang: str, work_dir: Path, max_chars: int, slow: bool = False) -> SpokenText:
    text = (text or "").strip()
    if not text:
        raise TextError("There is no text to speak: type a sentence first.")
    if not any(char.isalnum() for char in text):  # in any script; punctuation, emoji and symbols are not spoken
        raise TextError("The text has no words to speak, only punctuation or symbols: type a sentence first.")
    if len(text) > max_chars:
        raise TextError(f"The text has {len(text)} characters; the limit is {max_chars}.")
    if lang not in tts_langs():
        raise TextError(f"Language '{lang}' is not supported. Use a code such as en, fr, de, es, hi, ja or zh-CN.")
    try:
        path = work_dir / "speech_gtts.mp3"
        gTTS(text, lang=lang, slow=slow, timeout=GTTS_TIMEOUT).save(str(path))
        return SpokenText(path, "gTTS", None)
    except Exception as exc:  # gTTSError offline, requests errors, rate limits: all mean "use the offline voice"
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"
    return _espeak(text, lang, work_dir, slow, reason)


def _espeak(text: str, lang: str, work_dir: Path, slow: bool, reason: str) -> SpokenText:
    voice = espeak_voice(lang)
    if voice is None:
        raise TextError(f"{languages().get(lang, lang)} has only the online voice (gTTS), which is not answering "
                        f"now: try again later, or upload a recording instead.")
    text_file = work_dir / "text.txt"
    text_file.write_text(text, encoding="utf-8")
    path = work_dir / "speech_espeak.wav"
    ffmpeg.run_tool([ESPEAK, "-v", voice, "-s", str(ESPEAK_WORDS_PER_MINUTE[slow]), "-w", str(path),
                    "-f", str(text_file)], timeout=120, what="Speaking the text with espeak-ng")
    return SpokenText(path, "espeak-ng", reason)
