"""The GPU entry run the way ZeroGPU runs it: in a worker forked from the app's process, kept for later calls, with
arguments and what the entry yields (progress, preview segments, then the result) crossing multiprocessing queues
(so pickled)."""

from __future__ import annotations

import multiprocessing
import os

import cv2
import numpy as np
import pytest

from conftest import PORTRAIT, assert_valid_mp4, cut_speech, probe
from lipsync import LipSyncConfig, pipeline

CONFIG = LipSyncConfig(detector="haar", output_size=352)


def gpu_worker(requests, results) -> None:
    """The forked worker: runs the app's GPU entry (a generator) for each request it receives, sends back each item
    it yields as a message, as ZeroGPU forwards a generator's, then an end message; and counts what it loads."""
    import gradio as gr

    import app
    from lipsync.nets import checkpoints

    loaded, fetched = [], []
    torch_load, download = checkpoints._torch_load, checkpoints._download
    checkpoints._torch_load = lambda path: (loaded.append(path), torch_load(path))[1]
    checkpoints._download = lambda spec: (fetched.append(spec.name), download(spec))[1]
    while (request := requests.get()) is not None:
        try:
            for item in app._lip_sync(*request):
                results.put(item)
        except Exception as exc:  # sent back as ZeroGPU does: only a gr.Error keeps its message for the page
            results.put(("error", type(exc).__name__, getattr(exc, "message", "") if isinstance(exc, gr.Error)
                         else "ZeroGPU worker error"))
            continue
        results.put(("end", os.getpid(), len(loaded), len(fetched)))


def app_process(requests: list[tuple], answers) -> None:
    """A fresh app process: loads the models on the CPU, as app.py does at start-up, then forks one worker and sends
    it every request through a queue, collecting what comes back."""
    from lipsync import models
    from lipsync.runtime import CheckpointFolder

    models.load_generator(CONFIG.checkpoint, CheckpointFolder.of(CONFIG.checkpoint_dir))
    fork = multiprocessing.get_context("fork")
    to_worker, from_worker = fork.SimpleQueue(), fork.SimpleQueue()
    worker = fork.Process(target=gpu_worker, args=(to_worker, from_worker), daemon=True)
    worker.start()
    collected = []
    for request in requests:
        to_worker.put(request)
        messages = []
        while (message := from_worker.get())[0] not in ("end", "error"):
            messages.append(message)
        collected.append((messages, message))
    to_worker.put(None)
    worker.join(timeout=60)
    answers.put(collected)


def test_two_requests_through_one_forked_worker(tmp_path, short_head):
    speech = cut_speech(tmp_path / "s.wav", 1.5, start=4.0)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    requests = [(str(PORTRAIT), str(speech), None, "en", False, CONFIG, tmp_path / "still" / "out.mp4"),
                (str(short_head), str(speech), None, "en", False, CONFIG, tmp_path / "video" / "out.mp4"),
                (str(blank), str(speech), None, "en", False, CONFIG, tmp_path / "blank" / "out.mp4")]
    spawn = multiprocessing.get_context("spawn")  # a clean process, as a Space's app starts
    answers = spawn.Queue()
    process = spawn.Process(target=app_process, args=(requests, answers))
    process.start()
    collected = answers.get(timeout=600)
    process.join(timeout=60)
    (_, failed), = collected[2:]  # a bad request: our own sentence reaches the page, and the worker lives on
    assert failed[:2] == ("error", "Error") and "No face" in failed[2], failed
    pids = set()
    for (messages, end), request in zip(collected[:2], requests):
        assert end[0] == "end", end
        _, pid, loaded, fetched = end
        pids.add(pid)
        yielded = [message for message in messages if message[0] != "progress"]
        kinds = [kind for kind, _ in yielded]
        # The preview's segments (1.5 s: a 1 s one and the rest), then the result, once, last; progress between.
        assert kinds == ["segment"] * (len(kinds) - 1) + ["done"] and len(kinds) >= 2, kinds
        assert messages[-1][0] == "done"
        for _, segment in yielded[:-1]:
            assert segment.suffix == ".ts" and segment.parent.parent == request[-1].parent  # the request's folder
            streams = probe(segment)
            assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
        result = yielded[-1][1]
        assert isinstance(result, pipeline.Result) and result.path == request[-1]
        assert_valid_mp4(result.path, 1.5, (result.width, result.height))
        progress = [item for kind, item in messages if kind == "progress"]
        fractions = [fraction for fraction, _ in progress]
        assert len(progress) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0, progress
        assert {stage for _, stage in progress} <= set(pipeline.STAGES)
        assert loaded == 0 and fetched == 0  # the models came with the fork: nothing read or fetched again
    assert len(pids) == 1  # the same worker served both


@pytest.mark.parametrize("face", ["portrait", "video"])
def test_the_slot_estimate_is_within_a_fifth_of_the_real_frames(tmp_path, face, short_head):
    face = PORTRAIT if face == "portrait" else short_head  # 2 s of video under 4 s of speech: played back and forth
    speech = cut_speech(tmp_path / "s.wav", 4.0, start=2.0)
    estimate = pipeline.estimate_frames(face, audio_path=speech, config=CONFIG)
    result = pipeline.generate(face, tmp_path / "out.mp4", audio_path=speech, config=CONFIG)
    real = int(probe(result.path)["video"]["nb_read_frames"])
    assert abs(estimate - real) <= 0.2 * real, (estimate, real)


def test_the_slot_estimate_for_text_is_within_a_fifth_of_the_spoken_frames(tmp_path):
    text = "The quick brown fox jumps over the lazy dog, and then it runs back home to sleep."
    estimate = pipeline.estimate_frames(PORTRAIT, text=text, config=CONFIG)
    result = pipeline.generate(PORTRAIT, tmp_path / "out.mp4", text=text, config=CONFIG)
    assert abs(estimate - result.frames) <= 0.2 * result.frames, (estimate, result.frames)
