"""Text to speech, by the voice a request chooses: gTTS (Google's service), the natural offline voice (Piper,
lipsync.speech.piper) or espeak-ng. "auto" tries them in that order: the natural voice when gTTS cannot be reached
and the language has one, else espeak-ng; the caller is told which voice spoke and why."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterator

import numpy as np
from gtts import gTTS
from gtts.lang import tts_langs

from ..errors import CheckpointError, TextError
from ..media import ffmpeg
from . import piper
from .phonemes import ESPEAK

GTTS_TIMEOUT = 20.0
ENGINES = {"gtts": "gTTS", "piper": "Piper", "espeak": "espeak-ng"}  # the names SpokenText.engine gives
ESPEAK_WORDS_PER_MINUTE = {False: 165, True: 120}
# gTTS codes whose espeak-ng voice has another name.
ESPEAK_VOICE_ALIASES = {"zh": "cmn", "zh-CN": "cmn", "zh-TW": "cmn", "iw": "he", "jw": "jv", "no": "nb",
                        "fr-CA": "fr", "pt-PT": "pt", "tl": "fil", "yue": "yue"}


@dataclass(frozen=True)
class SkippedVoice:
    """A voice earlier in the order that did not speak, and why (as its error said it)."""
    engine: str  # one of ENGINES' names
    reason: str

    @property
    def rate_limited(self) -> bool:
        return "429" in self.reason


@dataclass(frozen=True)
class SpokenText:
    """The speech of a text: a file (gTTS, espeak-ng), or the natural voice's samples, made sentence by sentence
    as they are read (so a video can start on the first sentence)."""
    engine: str  # one of ENGINES' names
    skipped: tuple[SkippedVoice, ...]
    path: Path | None = None
    sentences: Iterator[np.ndarray] | None = None  # 16 kHz float32, as piper.speak yields them

    @property
    def fallback_reason(self) -> str | None:
        """Why the voices before it were not used, in one line ("gTTS: …; Piper: …")."""
        return "; ".join(f"{voice.engine}: {voice.reason}" for voice in self.skipped) or None


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


def check_voice(lang: str, voice: str) -> None:
    """Refuse, before any work, a language no voice in the choice can speak: gTTS's list for every voice but the
    natural one, whose languages are named when it has none for this one."""
    if voice == "piper":
        if lang not in piper.natural_languages():
            raise TextError(f"There is no natural voice for {languages().get(lang, lang)} ({lang}). Languages with "
                            f"one: {', '.join(piper.natural_languages())}; or choose another voice.")
    elif lang not in tts_langs():
        raise TextError(f"Language '{lang}' is not supported. Use a code such as en, fr, de, es, hi, ja or zh-CN.")


def synthesize(text: str, lang: str, work_dir: Path, max_chars: int, slow: bool = False,
               voice: str = "auto") -> SpokenText:
    """The text's speech by the chosen voice, or by the first in the order that can speak it. The natural voice is
    loaded (and its file checked) here, but speaks as its sentences are read from SpokenText.sentences."""
    text = (text or "").strip()
    if not text:
        raise TextError("There is no text to speak: type a sentence first.")
    if not any(char.isalnum() for char in text):  # in any script; punctuation, emoji and symbols are not spoken
        raise TextError("The text has no words to speak, only punctuation or symbols: type a sentence first.")
    if len(text) > max_chars:
        raise TextError(f"The text has {len(text)} characters; the limit is {max_chars}.")
    check_voice(lang, voice)
    if voice == "piper":
        return SpokenText(ENGINES["piper"], (), sentences=piper.speak(text, lang, slow))
    if voice == "espeak":
        return _espeak(text, lang, work_dir, slow, ())
    try:
        path = work_dir / "speech_gtts.mp3"
        gTTS(text, lang=lang, slow=slow, timeout=GTTS_TIMEOUT).save(str(path))
        return SpokenText(ENGINES["gtts"], (), path=path)
    except Exception as exc:  # gTTSError offline, requests errors, rate limits: all mean "use an offline voice"
        skipped = (SkippedVoice(ENGINES["gtts"],
                                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"),)
        if voice == "gtts":
            raise TextError(f"The Google voice (gTTS) is not answering now ({skipped[0].reason}): try again later, "
                            f"or choose an offline voice.") from exc
    if lang in piper.natural_languages():
        try:
            return SpokenText(ENGINES["piper"], skipped, sentences=piper.speak(text, lang, slow))
        except CheckpointError as exc:  # the voice file missing, damaged or out of reach: the next voice
            skipped += (SkippedVoice(ENGINES["piper"], str(exc)),)
    return _espeak(text, lang, work_dir, slow, skipped)


def _espeak(text: str, lang: str, work_dir: Path, slow: bool, skipped: tuple[SkippedVoice, ...]) -> SpokenText:
    voice = espeak_voice(lang)
    if voice is None:
        raise TextError(f"{languages().get(lang, lang)} has only the online voice (gTTS), which is not answering "
                        f"now: try again later, or upload a recording instead." if skipped else
                        f"espeak-ng has no voice for {languages().get(lang, lang)}: choose another voice.")
    text_file = work_dir / "text.txt"
    text_file.write_text(text, encoding="utf-8")
    path = work_dir / "speech_espeak.wav"
    ffmpeg.run_tool([ESPEAK, "-v", voice, "-s", str(ESPEAK_WORDS_PER_MINUTE[slow]), "-w", str(path),
                    "-f", str(text_file)], timeout=120, what="Speaking the text with espeak-ng")
    return SpokenText(ENGINES["espeak"], skipped, path=path)
