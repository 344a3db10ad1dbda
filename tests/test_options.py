"""The one mapping from flat option values (command line, app, API) to LipSyncConfig."""

from __future__ import annotations

import pytest

from lipsync import options
from lipsync.__main__ import build_parser
from lipsync.config import LipSyncConfig
from lipsync.errors import OptionError


def test_empty_values_are_the_config_defaults():
    empty = {name: "" for name in options.NAMES}
    assert options.to_config(empty) == LipSyncConfig()
    assert options.to_config({name: None for name in options.NAMES}) == LipSyncConfig()
    assert options.to_config({"pads": "  "}).pads == LipSyncConfig().pads != (0, 0, 0, 0)


def test_text_values_are_read_as_their_settings():
    config = options.to_config({"pads": "-5, 12 0 3", "box": "10 200 20 180", "output_size": "720p",
                                "face_index": "2", "color_match": "false", "keep_silence": False,
                                "align_roll": "true", "batch_size": 8, "checkpoint": " wav2lip ",
                                "precision": "bf16", "enhance": "none", "landmarks": "off", "mask": "box"})
    assert config == LipSyncConfig(pads=(-5, 12, 0, 3), box=(10, 200, 20, 180), output_size=720, face_index=2,
                                   color_match=False, keep_silence=False, align_roll=True, batch_size=8,
                                   checkpoint="wav2lip", precision="bf16", enhance="none", landmarks="none",
                                   mask="box")
    assert options.to_config({"pads": [1, 2, 3, 4], "output_size": 480}).pads == (1, 2, 3, 4)


@pytest.mark.parametrize(("values", "message"), [
    ({"pads": "0 10"}, "Pads must be four whole numbers, TOP BOTTOM LEFT RIGHT, such as '0 10 0 0'; got '0 10'."),
    ({"box": "a b c d"}, "The face box must be four whole numbers"),
    ({"output_size": "big"}, "The output size must be a height such as 1080p or 720p, not 'big'."),
    ({"face_index": "first"}, "The face number must be a whole number, not 'first'."),
    ({"color_match": "maybe"}, "color_match must be true or false, not 'maybe'."),
    ({"checkpoint": "wav3lip"}, "checkpoint must be one of wav2lip_gan, wav2lip, not 'wav3lip'"),
    ({"score": "maybe"}, "score must be one of auto, on, off, not 'maybe'"),
    ({"mask": "lips"}, "mask must be one of auto, box, face, mouth, not 'lips'"),
    ({"landmarks": "none", "mask": "face"}, "The face mask follows the face's landmarks"),
    ({"max_audio_seconds": "9999"}, "There is no option called 'max_audio_seconds'"),
])
def test_bad_values_are_refused_in_words(values, message):
    with pytest.raises(OptionError) as refused:
        options.to_config(values)
    assert str(refused.value).startswith(message)


def test_the_command_line_defaults_are_the_config_defaults():
    args = build_parser().parse_args(["--face", "f.png", "--text", "hi", "--out", "o.mp4"])
    chosen = {name: value for name, value in vars(args).items() if name in options.NAMES}
    assert set(chosen) == set(options.NAMES)  # every option the config takes per request has a flag
    assert options.to_config(chosen) == LipSyncConfig()
    assert build_parser().parse_args(["--face", "f", "--text", "t", "--out", "o", "--output-size", "720p"]
                                     ).output_size == 720
    chosen = build_parser().parse_args(["--face", "f", "--text", "t", "--out", "o", "--landmarks", "fan",
                                        "--mask", "mouth"])
    assert options.to_config(options.flag_values(chosen)) == LipSyncConfig(landmarks="fan", mask="mouth")


def test_speech_has_no_length_limit_unless_one_is_set():
    assert LipSyncConfig().max_audio_seconds is None
    assert LipSyncConfig().capped_speech_seconds(600.0) == 600.0
    assert LipSyncConfig(max_audio_seconds=120).capped_speech_seconds(600.0) == 120.0
    for bad in (0, -5.0, float("nan")):
        with pytest.raises(OptionError, match="max_audio_seconds must be positive, or None for no limit"):
            LipSyncConfig(max_audio_seconds=bad)
    assert [options.speech_limit(value) for value in (None, " ", "0", 0, "90", 7.5)] == [None, None, None, None,
                                                                                        90.0, 7.5]
    for bad in ("two minutes", "-1", "inf", "nan"):
        with pytest.raises(OptionError, match=r"The speech limit must be a number of seconds \(0 for none\)"):
            options.speech_limit(bad)
    assert build_parser().parse_args(["--face", "f", "--text", "t", "--out", "o.mp4"]).max_seconds is None
