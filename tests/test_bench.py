"""The benchmark runs from a plain clone: without the shared media it uses the examples and makes its own video."""

from __future__ import annotations

from conftest import probe
from lipsync.bench import inputs as bench


def test_without_shared_media_the_bench_uses_the_examples(tmp_path):
    media = bench.find_media(tmp_path / "no-such-folder", tmp_path)
    assert media.portrait == bench.EXAMPLES / "monalisa.png" and media.speech == bench.EXAMPLES / "speech.wav"
    video = probe(media.video)["video"]
    assert (video["width"], video["height"], video["avg_frame_rate"]) == (704, 1216, "25/1")
    clip = bench.speech_clip(media, 9.0, tmp_path)  # longer than the example recording: looped
    assert abs(float(probe(clip)["format"]["duration"]) - 9.0) < 0.05
