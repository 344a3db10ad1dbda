"""The app as its users reach it: `python app.py` on a local port, called through gradio_client."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import PORTRAIT, TALKING_HEAD, assert_valid_mp4, cut_speech, probe, serve_app

HAAR = {"detector": "haar"}  # random S3FD weights find nothing useful; the cascade is a real detector


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_app(tmp_path_factory.mktemp("app"), "--queue-size", "8", "--concurrency", "2") as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


@pytest.fixture(scope="module")
def no_face(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("noface") / "wall.png"
    cv2.imwrite(str(path), np.tile(np.linspace(60, 200, 320, dtype=np.uint8)[None, :, None], (240, 1, 3)))
    return path


def test_audio_endpoint_round_trip(client, tmp_path):
    speech = cut_speech(tmp_path / "speech.mp3", 2.0, extra=["-c:a", "libmp3lame"])
    video, status = client.predict(handle_file(PORTRAIT), handle_file(speech), **HAAR,
                                   api_name="/generate_from_audio")
    assert_valid_mp4(Path(video), 2.0, (300, 446), 25)
    assert "50 frames at 25 fps" in status and "lips moved in" in status


def test_text_endpoint_falls_back_to_espeak_offline(client):
    video, status = client.predict(handle_file(PORTRAIT), "Good morning, how are you today?", "en", **HAAR,
                                   api_name="/generate_from_text")
    info = probe(Path(video))
    assert info["video"]["codec_name"] == "h264" and float(info["audio"]["duration"]) > 1.0
    assert "espeak-ng" in status and "gTTS unavailable" in status


def test_only_the_first_inputs_are_needed(client, tmp_path):
    """Every option has a default: a client may pass the face and the speech alone. The default detector, S3FD,
    has random weights here: it may find no face, and it is slow on many pixels, hence a small portrait."""
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(PORTRAIT)), (100, 150), interpolation=cv2.INTER_AREA))
    try:
        video, _ = client.predict(handle_file(small), handle_file(cut_speech(tmp_path / "s.wav", 0.5)),
                                  api_name="/generate_from_audio")
        assert probe(Path(video))["video"]["codec_name"] == "h264"
    except AppError as exc:
        assert "No face was found" in str(exc)


def test_options_reach_the_pipeline(client, tmp_path):
    speech = handle_file(cut_speech(tmp_path / "s.wav", 1.0))
    video, _ = client.predict(handle_file(TALKING_HEAD), speech, output_size=278, **HAAR,
                              api_name="/generate_from_audio")
    assert_valid_mp4(Path(video), 1.0, (278, 480), 25)  # 704×1216 scaled to 480 high, rounded to even
    video, _ = client.predict(handle_file(PORTRAIT), speech, box="150 300 60 240", blend="hard",
                              api_name="/generate_from_audio")  # a fixed box needs no detector
    assert_valid_mp4(Path(video), 1.0, (300, 446), 25)
    with pytest.raises(AppError, match="Face number 3 was asked for, but only 1 face was found"):
        client.predict(handle_file(PORTRAIT), speech, face_index=3, **HAAR, api_name="/generate_from_audio")
    with pytest.raises(AppError, match="Pads must be four whole numbers"):
        client.predict(handle_file(PORTRAIT), speech, pads="0 10", **HAAR, api_name="/generate_from_audio")
    with pytest.raises(AppError, match="wav3lip is not in the list of choices"):
        client.predict(handle_file(PORTRAIT), speech, checkpoint="wav3lip", **HAAR, api_name="/generate_from_audio")


def test_image_without_a_face_is_a_clear_client_error(client, no_face):
    with pytest.raises(AppError, match="No face was found in the image"):
        client.predict(handle_file(no_face), "Hello there.", "en", **HAAR, api_name="/generate_from_text")


def test_bad_speech_and_text_are_clear_client_errors(client, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + os.urandom(4000))
    with pytest.raises(AppError, match="broken.wav"):
        client.predict(handle_file(PORTRAIT), handle_file(broken), **HAAR, api_name="/generate_from_audio")
    with pytest.raises(AppError, match="no text to speak"):
        client.predict(handle_file(PORTRAIT), "   ", "en", **HAAR, api_name="/generate_from_text")
    with pytest.raises(AppError, match="xx is not in the list of choices"):
        client.predict(handle_file(PORTRAIT), "Hello", "xx", **HAAR, api_name="/generate_from_text")


def test_eight_concurrent_jobs_each_get_their_own_output(server, tmp_path):
    lengths = [0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0]
    speeches = [cut_speech(tmp_path / f"{index}.wav", seconds, start=3.0 + index) for index, seconds in
                enumerate(lengths)]

    def call(speech: Path) -> tuple[str, str]:
        return Client(server.url, verbose=False).predict(handle_file(PORTRAIT), handle_file(speech), **HAAR,
                                                         api_name="/generate_from_audio")

    with ThreadPoolExecutor(len(lengths)) as pool:
        results = list(pool.map(call, speeches))
    assert len({video for video, _ in results}) == len(lengths)
    for seconds, (video, _) in zip(lengths, results):
        assert_valid_mp4(Path(video), seconds, (300, 446), 25)


def test_a_full_queue_answers_busy(tmp_path):
    with serve_app(tmp_path, "--queue-size", "1", "--concurrency", "1") as small:
        speech = handle_file(cut_speech(tmp_path / "s.wav", 3.0))
        jobs = [Client(small.url, verbose=False).submit(handle_file(PORTRAIT), speech, **HAAR,
                                                        api_name="/generate_from_audio") for _ in range(5)]
        outcomes = []
        for job in jobs:
            try:
                outcomes.append(job.result(timeout=240))
            except Exception as exc:  # the refusal arrives as the client's own error type
                outcomes.append(exc)
    refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert refused and all("queue is full" in str(exc).lower() for exc in refused)
    assert len(refused) < len(jobs)  # the ones that got in were served
    for outcome in outcomes:
        if not isinstance(outcome, Exception):
            assert_valid_mp4(Path(outcome[0]), 3.0, (300, 446), 25)


def test_fifty_mixed_runs_and_a_cancel_leave_nothing_behind(server, tmp_path, no_face):
    speech = cut_speech(tmp_path / "s.wav", 0.4)
    broken = tmp_path / "broken.ogg"
    broken.write_bytes(os.urandom(3000))
    cases = [((handle_file(PORTRAIT), handle_file(speech)), "/generate_from_audio", True),
             ((handle_file(PORTRAIT), "Hi.", "en"), "/generate_from_text", True),
             ((handle_file(no_face), handle_file(speech)), "/generate_from_audio", False),
             ((handle_file(PORTRAIT), handle_file(broken)), "/generate_from_audio", False),
             ((handle_file(PORTRAIT), "", "en"), "/generate_from_text", False)]
    results_before = set((server.gradio_dir / "lipsync").glob("*"))
    client = Client(server.url, verbose=False)

    def call(case) -> bool:
        args, api, good = case
        if good:
            assert probe(Path(client.predict(*args, **HAAR, api_name=api)[0]))["video"]["codec_name"] == "h264"
        else:
            with pytest.raises(AppError):
                client.predict(*args, **HAAR, api_name=api)
        return good

    with ThreadPoolExecutor(6) as pool:  # as many at once as the queue (8) takes
        served = sum(pool.map(call, cases * 10))
    long_job = client.submit(handle_file(PORTRAIT), handle_file(cut_speech(tmp_path / "long.wav", 8.0)), **HAAR,
                             api_name="/generate_from_audio")
    deadline = time.monotonic() + 60
    while not list(server.temp_root.glob("lipsync-*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until its work folder exists: the request is running
    assert list(server.temp_root.glob("lipsync-*")), "the long request never started"
    long_job.cancel()
    deadline = time.monotonic() + 120
    while list(server.temp_root.glob("lipsync-*")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list(server.temp_root.iterdir()) == []  # no work folder, no stray file
    results = set((server.gradio_dir / "lipsync").glob("*")) - results_before
    # One result folder per served request (the cancelled one may have finished before the cancel took).
    assert served <= len(results) <= served + 1


def test_without_weights_the_app_starts_and_says_how_to_provide_them(tmp_path):
    offline = {"LIPSYNC_CHECKPOINT_DIR": "", "HF_HOME": str(tmp_path / "empty-hf-home"), "HF_HUB_OFFLINE": "1"}
    with serve_app(tmp_path, env=offline) as bare:
        client = Client(bare.url, verbose=False)
        with pytest.raises(AppError, match="Could not fetch checkpoints/wav2lip_gan.pth .*LIPSYNC_CHECKPOINT_DIR"):
            client.predict(handle_file(PORTRAIT), "Hello.", "en", **HAAR, api_name="/generate_from_text")


def test_gpu_slot_is_sized_from_the_frames_to_generate(tmp_path):
    import app

    def slot(face: Path, speech: Path | None = None, text: str | None = None) -> int:
        return app._gpu_seconds(str(face), str(speech) if speech else None, text, "en", False, app.DEFAULTS,
                                tmp_path / "out.mp4", None)

    short, long = cut_speech(tmp_path / "short.wav", 2.0), cut_speech(tmp_path / "long.wav", 42.0)
    assert slot(PORTRAIT, short) == app.GPU_BASE_SECONDS + 50 // app.GPU_FRAMES_PER_SECOND  # 2 s at 25 fps
    assert slot(PORTRAIT, long) == app.GPU_BASE_SECONDS + 1050 // app.GPU_FRAMES_PER_SECOND
    assert slot(PORTRAIT, text="A sentence to speak. " * 40) > slot(PORTRAIT, text="Hi.")
    assert slot(PORTRAIT, tmp_path / "missing.wav") == app.GPU_BASE_SECONDS  # the call itself will explain
