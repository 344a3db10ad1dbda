"""Text into what a Piper voice reads: sentences and clauses, each clause's punctuation as the symbol the voices
were trained on, and espeak-ng's IPA for it (espeak-ng runs as a separate program)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from ..errors import MediaToolError

ESPEAK = "espeak-ng"
ESPEAK_TIMEOUT = 30.0
# Clause-ending punctuation (Latin, CJK, Arabic) and the symbol the voices were trained on after such a clause.
CLAUSE_SYMBOLS = {",": ",", "،": ",", "、": ",", "，": ",", ";": ";", "؛": ";", "；": ";", ":": ":", "：": ":",
                  ".": ".", "。": ".", "…": ".", "!": "!", "！": "!", "?": "?", "？": "?", "؟": "?"}
SENTENCE_SYMBOLS = frozenset(".!?")
_SYMBOL_PRECEDENCE = "?!.;:,"  # for a run such as "?!" or "...": the one that says most about the intonation
_WIDE_PUNCTUATION = "、，；：。！？"  # written with no space after them
_CLOSING = "\"'”’»)\\]」』"  # quotes and brackets that close with the clause
_PUNCTUATION_RUN = re.compile(
    # a run ends a clause before a space or the end (closing quotes and brackets may come first), or at once if wide
    "([" + re.escape("".join(CLAUSE_SYMBOLS)) + "]+)"
    "(?:[" + _CLOSING + "]*(?=\\s|$)|(?<=[" + _WIDE_PUNCTUATION + "])[" + _CLOSING + "]*)")
# Titles, whose full stop stays inside the sentence: a name follows.
_TITLES = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "mt"})
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# espeak-ng marks a switch to another language's phonemes as "(en)" ... "(de)": no phonemes, nothing to say.
_LANGUAGE_SWITCH = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)?\)")


def sentences(text: str) -> list[str]:
    """The text cut into sentences: after . ! ? (and their CJK and Arabic forms) before a space or the end, unless a
    lowercase word follows, and at blank lines. A lone full stop before a lowercase word ("e.g. this") or after a
    title ("Mr. Smith") is an abbreviation's and ends no clause either."""
    found = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        current = []
        for clause in clauses(" ".join(paragraph.split())):
            current.append(clause.text)
            if clause.ends_sentence:
                found.append(" ".join(current))
                current = []
        if current:
            found.append(" ".join(current))
    return found


@dataclass(frozen=True)
class Clause:
    text: str  # with its punctuation, which espeak-ng reads abbreviations by
    symbol: str  # the voice's symbol for that punctuation; "" at an unpunctuated end
    ends_sentence: bool


def clauses(text: str) -> list[Clause]:
    """The text's clauses, each with its punctuation's symbol and whether it ends a sentence."""
    clauses = []
    start = 0
    for run in _PUNCTUATION_RUN.finditer(text):
        following = text[run.end():].lstrip()
        words_before = text[:run.start()].split()
        lowercase_next = bool(following) and following[0].islower()
        if run[1] == "." and following and (lowercase_next or words_before and words_before[-1].lower() in _TITLES):
            continue
        marks = {CLAUSE_SYMBOLS[char] for char in run[1]}
        symbol = next(mark for mark in _SYMBOL_PRECEDENCE if mark in marks)
        clauses.append(Clause(text[start:run.end()].strip(), symbol,
                               symbol in SENTENCE_SYMBOLS and not lowercase_next))
        start = run.end()
    clauses.append(Clause(text[start:].strip(), "", True))
    return [clause for clause in clauses if clause.text]


def espeak_ipa(text: str, voice: str) -> list[str]:
    """espeak-ng's IPA for the text, one string per clause it found (it drops the punctuation)."""
    try:
        done = subprocess.run([ESPEAK, "-q", "-b", "1", "--ipa", "-v", voice, "--stdin"], input=text.encode("utf-8"),
                              capture_output=True, check=True, timeout=ESPEAK_TIMEOUT)
    except FileNotFoundError as exc:
        raise MediaToolError("espeak-ng is not installed; install espeak-ng (apt install espeak-ng).") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaToolError(f"espeak-ng took longer than {ESPEAK_TIMEOUT:.0f} s to read a clause and was "
                             f"stopped.") from exc
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip() or f"exit status {exc.returncode}"
        raise MediaToolError(f"espeak-ng could not read the text with its '{voice}' voice: {detail}") from exc
    lines = (_LANGUAGE_SWITCH.sub("", line).strip() for line in done.stdout.decode("utf-8").splitlines())
    return [line for line in lines if line]
