"""The voice order for text: gTTS, then the natural offline voice (Piper), then espeak-ng; each voice on its own
by choice; which voice spoke, said by the CLI and in the page's words. Offline here, so gTTS always fails, as it
does on a machine without network."""

import shutil
import time

import pytest

from conftest import HAAR, PORTRAIT, cli, probe
from lipsync import generate
from lipsync.errors import CheckpointError, TextError
from lipsync.speech import piper, tts
from ui import words

TEXT = "Good morning. The lamp was burning again."


def spoken_seconds(path) -> float:
    return float(probe(path)["audio"]["duration"])


@pytest.fixture
def damaged_bundled_voice(tmp_path, monkeypatch):
    """The bundled voice's model with its last byte changed, so it fails its sha256; loaded anew, not from the
    process's voices."""
    model, config = piper._bundled_files()
    damaged = tmp_path / model.name
    shutil.copy(model, damaged)
    with open(damaged, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))
    monkeypatch.setattr(piper, "_bundled_files", lambda: (damaged, config))
    monkeypatch.setattr(piper, "_voices", {})
    return damaged


def test_without_gtts_the_natural_voice_speaks_and_says_why(tmp_path):
    result = generate(PORTRAIT, tmp_path / "out.mp4", text=TEXT, config=HAAR)
    assert result.tts_engine == "Piper" and result.tts_fallback_reason.startswith("gTTS: ")
    assert spoken_seconds(result.path) > 1.5  # its speech is in the video
    assert words.voice_used(result.tts_engine, result.tts_skipped) == (
        "voice: gTTS could not be reached, so the natural offline voice (Piper) was used")


def test_a_language_whose_natural_voice_is_out_of_reach_falls_to_espeak(tmp_path):
    """German's voice comes from the Hub, which is out of reach here (HF_HUB_OFFLINE): espeak-ng speaks."""
    result = generate(PORTRAIT, tmp_path / "out.mp4", text="Guten Morgen, wie geht es dir?", lang="de", config=HAAR)
    assert result.tts_engine == "espeak-ng"
    assert "gTTS: " in result.tts_fallback_reason and "Piper: " in result.tts_fallback_reason
    assert "de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx" in result.tts_fallback_reason
    assert words.voice_used(result.tts_engine, result.tts_skipped) == (
        "voice: gTTS could not be reached and the natural voice's file was not at hand, so the robotic offline "
        "voice (espeak-ng) was used")


def test_a_damaged_natural_voice_is_named_and_the_next_voice_speaks(tmp_path, damaged_bundled_voice):
    result = generate(PORTRAIT, tmp_path / "out.mp4", text=TEXT, config=HAAR)
    assert result.tts_engine == "espeak-ng" and damaged_bundled_voice.name in result.tts_fallback_reason
    assert "sha256" in result.tts_fallback_reason
    with pytest.raises(CheckpointError, match=damaged_bundled_voice.name):  # chosen by name: no next voice
        generate(PORTRAIT, tmp_path / "natural.mp4", text=TEXT, config=HAAR.replace(voice="piper"))


@pytest.mark.parametrize("voice, engine", [("piper", "Piper"), ("espeak", "espeak-ng")])
def test_a_chosen_offline_voice_speaks_without_trying_gtts(tmp_path, monkeypatch, voice, engine):
    def no_gtts(*args, **kwargs):
        raise AssertionError("gTTS may not be tried")

    monkeypatch.setattr(tts, "gTTS", no_gtts)
    result = generate(PORTRAIT, tmp_path / "out.mp4", text=TEXT, config=HAAR.replace(voice=voice))
    assert result.tts_engine == engine and result.tts_fallback_reason is None
    assert words.voice_used(engine, ()) == f"voice: {words.VOICE_WORDS[engine]}"
    assert spoken_seconds(result.path) > 1.5


def test_the_natural_voice_for_a_language_without_one_is_refused_before_any_work(tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("no work may start")

    monkeypatch.setattr(piper, "speak", no_work)
    monkeypatch.setattr(tts, "_espeak", no_work)
    started = time.perf_counter()
    with pytest.raises(TextError) as refused:
        generate(PORTRAIT, tmp_path / "out.mp4", text="Hello.", lang="hi", config=HAAR.replace(voice="piper"))
    assert time.perf_counter() - started < 1.0  # before any model is loaded or any file read
    message = str(refused.value)
    assert message.startswith("There is no natural voice for Hindi (hi). Languages with one: ")
    assert ", ".join(piper.natural_languages()) in message
    assert not (tmp_path / "out.mp4").exists()


def test_google_only_fails_in_a_sentence_when_gtts_cannot_be_reached(tmp_path):
    with pytest.raises(TextError, match=r"^The Google voice \(gTTS\) is not answering now \(.+\): try again later, "
                                        r"or choose an offline voice\.$"):
        generate(PORTRAIT, tmp_path / "out.mp4", text=TEXT, config=HAAR.replace(voice="gtts"))


def test_the_command_line_says_which_voice_spoke(tmp_path):
    out = tmp_path / "out.mp4"
    done = cli("--face", PORTRAIT, "--text", TEXT, "--voice", "natural", "--out", out, "--detector", "haar")
    assert done.returncode == 0, done.stderr
    assert "voice: Piper\n" in done.stderr  # chosen: no fallback to explain
    refused = cli("--face", PORTRAIT, "--text", TEXT, "--voice", "piper", "--lang", "km", "--out", out)
    assert refused.returncode == 1 and refused.stderr.startswith("error: There is no natural voice for Khmer (km)")
    assert len(refused.stderr.splitlines()) == 1
