"""The app as its users reach it: `python app.py` on a local port, called through gradio_client."""

from __future__ import annotations

import os
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import PORTRAIT, TALKING_HEAD, assert_valid_mp4, cut_speech, probe, read_frames, run, serve_app
from lipsync import options, pipeline
from lipsync.config import BLENDS, CHECKPOINT_NAMES, DETECTORS, ENHANCERS, PRECISIONS, SMOOTHING, LipSyncConfig

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
    assert status.startswith("2.0 s, 50 frames at 25 fps, 300×446 · ") and "made in" in status


def test_a_scored_request_shows_its_lip_sync_in_words(client, tmp_path):
    speech = cut_speech(tmp_path / "speech.wav", 1.0)
    _, status = client.predict(handle_file(PORTRAIT), handle_file(speech), **HAAR, score="on",
                               api_name="/generate_from_audio")
    assert "lip sync: confidence " in status and " offset " in status, status
    _, plain = client.predict(handle_file(PORTRAIT), handle_file(speech), **HAAR, score="off",
                              api_name="/generate_from_audio")
    assert "lip sync" not in plain


def test_score_video_endpoint_answers_with_the_scores(client, tmp_path):
    """A video the project did not make: the talking head with a recording muxed in, scored through the API."""
    clip = tmp_path / "clip.mp4"
    speech = cut_speech(tmp_path / "speech.wav", 1.5)
    run(["ffmpeg", "-v", "error", "-y", "-i", str(TALKING_HEAD), "-i", str(speech), "-t", "1.5", "-map", "0:v",
         "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", str(clip)])
    answer = client.predict(handle_file(clip), None, api_name="/score_video")
    assert {"lse_d", "lse_c", "offset", "frames", "distances", "confidence"} <= set(answer)
    assert len(answer["distances"]) == 31 and answer["frames"] > 0
    with pytest.raises(AppError, match="is a still image"):
        client.predict(handle_file(PORTRAIT), None, api_name="/score_video")


def test_text_endpoint_falls_back_to_the_natural_voice_offline_or_speaks_by_it_when_chosen(client):
    video, status = client.predict(handle_file(PORTRAIT), "Good morning, how are you today?", "en", **HAAR,
                                   api_name="/generate_from_text")
    info = probe(Path(video))
    assert info["video"]["codec_name"] == "h264" and float(info["audio"]["duration"]) > 1.0
    assert "voice: gTTS could not be reached, so the natural offline voice (Piper) was used" in status
    assert "Error" not in status  # words, not the exception's text
    video, status = client.predict(handle_file(PORTRAIT), "Good morning. How are you today?", "en", **HAAR,
                                   voice="piper", api_name="/generate_from_text")  # chosen: gTTS not tried
    assert float(probe(Path(video))["audio"]["duration"]) > 1.0
    assert status.endswith(" · voice: the natural offline voice (Piper)"), status


def test_only_the_first_inputs_are_needed(client, tmp_path):
    """Every option has a default, the config's own: a client may pass the face and the speech alone. The default
    detector, S3FD, has random weights here: it finds (meaningless) faces in any picture, and it is slow on many
    pixels, hence a small portrait."""
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate_from_audio"]
    defaults = {parameter["parameter_name"]: parameter["parameter_default"] for parameter in endpoint["parameters"]
                if parameter["parameter_has_default"]}
    assert options.to_config({name: value for name, value in defaults.items() if name in options.NAMES}
                             ) == LipSyncConfig()
    assert set(options.NAMES) - set(defaults) == {"checkpoint_dir", "batch_size", "device"}  # the server's choice

    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(PORTRAIT)), (100, 150), interpolation=cv2.INTER_AREA))
    video, status = client.predict(handle_file(small), handle_file(cut_speech(tmp_path / "s.wav", 0.5)),
                                   api_name="/generate_from_audio")
    assert_valid_mp4(Path(video), 0.5, (100, 150), 25)
    assert status.startswith("0.5 s, 12 frames at 25 fps, 100×150 · ")


def test_an_empty_option_means_its_default(client, tmp_path):
    """An empty Pads box once meant 0 0 0 0 in the app, while the default is 0 10 0 0."""
    speech = handle_file(cut_speech(tmp_path / "s.wav", 0.4))

    def frames(**chosen) -> list:
        video, _ = client.predict(handle_file(PORTRAIT), speech, **HAAR, **chosen, api_name="/generate_from_audio")
        return read_frames(Path(video))

    empty, default = frames(pads=""), frames(pads=options.as_text(LipSyncConfig().pads))
    assert len(empty) == len(default) == 10
    assert all(np.array_equal(a, b) for a, b in zip(empty, default))
    no_margin = frames(pads="0 0 0 0")
    assert not all(np.array_equal(a, b) for a, b in zip(empty, no_margin))  # the margin shows in the pixels


def test_options_reach_the_pipeline(server, client, tmp_path):
    log_start = len(server.log.read_text())
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
    # Out of range through the API: the app's own sentence, as for any bad input, and no traceback in its log.
    with pytest.raises(AppError, match=r"^checkpoint must be one of wav2lip_gan, wav2lip, not 'wav3lip'$"):
        client.predict(handle_file(PORTRAIT), speech, checkpoint="wav3lip", **HAAR, api_name="/generate_from_audio")
    with pytest.raises(AppError, match=r"^blend must be one of feather, hard, not 'soft'$"):
        client.predict(handle_file(PORTRAIT), speech, blend="soft", **HAAR, api_name="/generate_from_audio")
    assert "Traceback" not in server.log.read_text()[log_start:]


def test_image_without_a_face_is_a_clear_client_error(client, no_face):
    with pytest.raises(AppError, match="No face was found in the image"):
        client.predict(handle_file(no_face), "Hello there.", "en", **HAAR, api_name="/generate_from_text")


def test_a_face_of_another_type_gets_the_apps_sentence(server, client, tmp_path):
    """Not Gradio's own "Invalid file type" with a traceback in the log: the pipeline's sentence for any face."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a face")
    log_start = len(server.log.read_text())
    with pytest.raises(AppError, match=r"^'notes.txt' is neither an image nor a video that can be read\.$"):
        client.predict(handle_file(notes), "Hello.", "en", **HAAR, api_name="/generate_from_text")
    assert "Traceback" not in server.log.read_text()[log_start:]


def test_every_output_of_the_api_has_a_name(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/generate_from_text", "/generate_from_audio"):
        assert [output["label"] for output in endpoints[name]["returns"]] == ["Your video", "Status"], name


def test_a_language_without_an_offline_voice_fails_in_a_sentence(server, client):
    """Offline, gTTS cannot be reached, and espeak-ng has no Khmer voice."""
    log_start = len(server.log.read_text())
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(PORTRAIT), "Hello.", "km", **HAAR, api_name="/generate_from_text")
    assert str(raised.value) == ("Khmer has only the online voice (gTTS), which is not answering now: try again "
                                 "later, or upload a recording instead.")
    assert "Traceback" not in server.log.read_text()[log_start:]


def test_bad_speech_and_text_are_clear_client_errors(client, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + os.urandom(4000))
    with pytest.raises(AppError, match="broken.wav"):
        client.predict(handle_file(PORTRAIT), handle_file(broken), **HAAR, api_name="/generate_from_audio")
    with pytest.raises(AppError, match="no text to speak"):
        client.predict(handle_file(PORTRAIT), "   ", "en", **HAAR, api_name="/generate_from_text")
    with pytest.raises(AppError, match="Language 'xx' is not supported"):
        client.predict(handle_file(PORTRAIT), "Hello", "xx", **HAAR, api_name="/generate_from_text")


def test_eight_concurrent_jobs_each_get_their_own_output(server, tmp_path):
    lengths = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]  # each its own length, so no output can pass for another
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
        speech = handle_file(cut_speech(tmp_path / "s.wav", 1.5))  # long enough that all five are sent meanwhile
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
            assert_valid_mp4(Path(outcome[0]), 1.5, (300, 446), 25)


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


def test_without_weights_the_app_starts_and_names_every_missing_file(tmp_path):
    offline = {"LIPSYNC_CHECKPOINT_DIR": "", "HF_HOME": str(tmp_path / "empty-hf-home"), "HF_HUB_OFFLINE": "1"}
    with serve_app(tmp_path, env=offline) as bare:
        client = Client(bare.url, verbose=False)
        with pytest.raises(AppError, match=r"^Missing: wav2lip_gan.pth and s3fd.pth \(they could not be "
                                           r"fetched from the Hugging Face Hub\)\. .*--checkpoint-dir ") as raised:
            client.predict(handle_file(PORTRAIT), "Hello.", "en", **HAAR, api_name="/generate_from_text")
        assert "LIPSYNC_CHECKPOINT_DIR" not in str(raised.value)  # the launch option, not the environment
        assert "Traceback" not in bare.log.read_text()


def test_checkpoint_dir_flag_and_a_setting_whose_weights_are_not_there(tmp_path, checkpoint_dir):
    """`python app.py --checkpoint-dir DIR`, as the README and the app's messages say; without the enhancer's file
    in it, a request that asks for enhancing is told so by the setting's name, not by files and variables."""
    offline = {"LIPSYNC_CHECKPOINT_DIR": "", "HF_HOME": str(tmp_path / "empty-hf-home"), "HF_HUB_OFFLINE": "1"}
    folder = tmp_path / "weights"
    folder.mkdir()
    for name in ("wav2lip_gan.pth", "s3fd.pth"):
        (folder / name).symlink_to(checkpoint_dir / name)
    speech = handle_file(cut_speech(tmp_path / "s.wav", 0.4))
    with serve_app(tmp_path / "app", "--checkpoint-dir", str(folder), env=offline) as served:
        client = Client(served.url, verbose=False)
        video, _ = client.predict(handle_file(PORTRAIT), speech, **HAAR, api_name="/generate_from_audio")
        with pytest.raises(AppError) as raised:
            client.predict(handle_file(PORTRAIT), speech, **HAAR, enhance="gfpgan", api_name="/generate_from_audio")
    assert_valid_mp4(Path(video), 0.4, (300, 446), 25)
    assert str(raised.value) == ("“Enhance the face (GFPGAN): On” cannot be used: this server does not have its "
                                 "weights. Choose another setting, or ask whoever runs the server to add them.")


def test_gpu_slot_is_sized_from_the_frames_to_generate(tmp_path):
    import app

    def slot(face: Path, speech: Path | None = None, text: str | None = None) -> int:
        return app._gpu_seconds(str(face), str(speech) if speech else None, text, "en", False, app.DEFAULTS,
                                tmp_path / "out.mp4")

    short, long = cut_speech(tmp_path / "short.wav", 2.0), cut_speech(tmp_path / "long.wav", 42.0)
    # The defaults restore the face on a GPU (enhance auto): the slower rate; without it, the faster one.
    assert slot(PORTRAIT, short) == app.GPU_BASE_SECONDS + 50 // app.GPU_ENHANCED_FRAMES_PER_SECOND  # 2 s, 25 fps
    assert slot(PORTRAIT, long) == app.GPU_BASE_SECONDS + 1050 // app.GPU_ENHANCED_FRAMES_PER_SECOND
    plain = app.DEFAULTS.replace(enhance="none")
    assert app._gpu_seconds(str(PORTRAIT), str(long), None, "en", False, plain, tmp_path / "out.mp4") == (
        app.GPU_BASE_SECONDS + 1050 // app.GPU_FRAMES_PER_SECOND)
    assert slot(PORTRAIT, text="A sentence to speak. " * 40) > slot(PORTRAIT, text="Hi.")
    assert slot(PORTRAIT, tmp_path / "missing.wav") == app.GPU_BASE_SECONDS  # the call itself will explain


def test_the_page_speaks_in_words_and_the_api_keeps_the_values():
    import app

    assert set(app.STAGE_LABELS) == set(pipeline.STAGES)  # every stage the pipeline reports has words
    for choices, values in ((app.MODELS, CHECKPOINT_NAMES), (app.FINDERS, DETECTORS), (app.SMOOTHING, SMOOTHING),
                            (app.BLENDS, BLENDS), (app.PRECISIONS, PRECISIONS), (app.ENHANCERS, ENHANCERS)):
        assert [value for _, value in choices] == list(values)
        assert all(label != value for label, value in choices if value not in ("bf16",))  # bf16 has no other name
    assert app.SIZES[0] == ("Keep (up to 1080p)", LipSyncConfig().output_size)


def heads(rows: int, columns: int, margin: float) -> np.ndarray:
    """The portrait's head in a grid, with this much of its width around it."""
    frame, (face,) = pipeline.find_faces(PORTRAIT, LipSyncConfig(**HAAR))
    x1, y1, x2, y2 = face.bounds(frame.shape[1], frame.shape[0])
    pad = int((x2 - x1) * margin)
    head = frame[max(0, y1 - pad):y2 + pad, max(0, x1 - pad):x2 + pad]
    return np.vstack([np.hstack([head] * columns)] * rows)


def test_the_preview_numbers_the_ten_largest_faces_and_counts_the_rest(tmp_path):
    import app

    crowd = tmp_path / "crowd.png"
    cv2.imwrite(str(crowd), heads(3, 4, 0.6))  # twelve faces
    picture, choices, note, shown = app.SERVED.faces.find(str(crowd), {"detector": "haar", "align_roll": True,
                                                                        "box": ""}, app.DEFAULTS, "a page", 1)
    assert note == "12 faces found; the 10 largest are numbered, and 2 more are not. Click a face to choose it."
    numbers = [value for _, value in choices["choices"]]
    assert len(numbers) == 11 and numbers[0] == 0 and numbers[-1] == app.ALL_FACES
    assert sorted(number for number, _ in shown) == numbers[:-1]  # the boxes a click picks from
    height, width, _ = picture["value"].shape  # the first frame, cropped to even sides
    assert (height, width) == (cv2.imread(str(crowd)).shape[0] // 2 * 2, cv2.imread(str(crowd)).shape[1] // 2 * 2)

    settings = {"detector": "haar", "align_roll": True, "box": ""}
    picture, choices, note, shown = app.SERVED.faces.find(str(TALKING_HEAD), settings, app.DEFAULTS, "a page", 3)
    assert note == "1 face found." and picture["visible"] is True and len(shown) == 1
    late = app.SERVED.faces.find(str(crowd), settings, app.DEFAULTS, "a page", 2)  # asked before, answered after
    assert all(update == gr.skip() for update in late)  # it does not land over question 3's answer


def test_the_preview_tags_stay_clear_of_each_other(tmp_path):
    """Faces close together: each number tag inside the picture, drawn where it is said to be, none over another
    (tags placed above each box at a fixed spot overlapped 5 times in this crowd)."""
    from ui import faces

    crowd = tmp_path / "crowd.png"
    cv2.imwrite(str(crowd), heads(2, 5, 0.25))
    frame, boxes = pipeline.find_faces(crowd, LipSyncConfig(**HAAR))
    height, width = frame.shape[:2]
    shown = [(number, box.bounds(width, height)) for number, box in enumerate(boxes)]
    picture = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    places = faces.draw_numbers(picture, shown)
    assert len(places) == len(boxes) == 10
    for index, (left, top, right, bottom) in enumerate(places):
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        tag = picture[top:bottom, left:right].reshape(-1, 3)
        assert (tag == faces.TAG).all(axis=1).mean() > 0.5  # mostly the tag's fill; the rest, its number
        for other in places[index + 1:]:
            assert not faces._overlaps((left, top, right, bottom), other), (index, places)
    assert faces.picked(shown, *(np.add(shown[3][1][:2], shown[3][1][2:]) // 2)) == 3  # a click on face 3


def test_the_estimate_before_generate_keeps_the_speed_per_kind_of_input(tmp_path, monkeypatch):
    import app
    from ui import serving

    speech = str(cut_speech(tmp_path / "s.wav", 2.0))
    monkeypatch.setattr(app.SERVED, "speed", serving.SpeedLog())  # nothing measured yet in this process
    guess = app.estimate(str(PORTRAIT), "audio", "", speech, False, enhance="none")
    assert guess == (f"Estimate: about 5 s on this computer's CPU ({os.cpu_count()} cores) for 50 frames (a first "
                     f"guess until a request like this one has run here).")
    hd = app.estimate(str(PORTRAIT), "audio", "", speech, False, enhance="gfpgan")
    assert hd.startswith("Estimate: about 105 s")  # GFPGAN on 2 CPU cores: about 2 s a frame
    assert app.estimate(str(PORTRAIT), "text", "", speech, False, enhance="none") == ""  # no words in this tab yet

    made = pipeline.Result(tmp_path / "out.mp4", 2.0, 50, 25.0, 300, 446, 50, 0, None, None, seconds=10.0)
    app.SERVED.speed.record(app.SERVED.speed.kind(PORTRAIT, LipSyncConfig(enhance="none")), made.seconds,
                            made.frames)
    measured = app.estimate(str(PORTRAIT), "audio", "", speech, False, enhance="none", output_size="720")
    assert measured.startswith("Estimate: about 10 s") and "at the speed of the last requests like this one" in measured
    large = tmp_path / "large.png"  # the same photo, three times the size: another kind of request
    cv2.imwrite(str(large), cv2.resize(cv2.imread(str(PORTRAIT)), None, fx=3, fy=3))
    for face in (TALKING_HEAD, large):
        assert "a first guess" in app.estimate(str(face), "audio", "", speech, False, enhance="none")


def test_the_gpu_entry_streams_segments_and_stops_when_closed(tmp_path, monkeypatch):
    """The page closed or stopped it: closing the entry's generator stops the generation itself at its next frame
    (no MP4 is placed) and waits for it, so its work folder is gone when close returns; meanwhile it reports
    progress, which is where a close can reach it."""
    import tempfile

    import app

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # the request's work folder, watched here
    (tmp_path / "tmp").mkdir()
    speech = cut_speech(tmp_path / "s.wav", 8.0)
    out = tmp_path / "request" / "out.mp4"
    made = app._lip_sync(str(PORTRAIT), str(speech), None, "en", False, LipSyncConfig(**HAAR), out)
    reported = []
    for kind, item in made:
        if kind == "segment":
            break
        assert kind == "progress"
        reported.append(item)
    assert reported and reported[0] == (0.0, pipeline.Stage.SPEECH)
    assert item.parent == app.preview_folder(out) and item.stat().st_size > 0
    made.close()
    assert list((tmp_path / "tmp").iterdir()) == []  # generate returned, and cleaned up after itself
    assert not out.exists()  # stopped before the end: the MP4 was never placed


def test_the_app_serves_with_a_speech_limit_of_its_own(tmp_path, monkeypatch):
    """The library has no limit on speech; the app keeps one: 120 s, else $LIPSYNC_MAX_SECONDS, else the launch
    option --max-seconds (0: none). A request past it is refused with the sentence, and the estimate stops at it."""
    import app
    from ui import launch

    class Page:  # build_app's page, launched nowhere
        def __init__(self, *limits):
            app.SERVED.live = types.SimpleNamespace(launch_options=dict)  # as build_app sets it

        def queue(self, **settings):
            return self

        def launch(self, **settings):
            launched.append(settings)

    launched = []
    monkeypatch.setattr(app, "build_app", Page)
    monkeypatch.setattr(app, "SERVED", app.SERVED)  # put back after the test
    monkeypatch.setattr(app.serving.WeightsWatch, "start", lambda self: None)
    monkeypatch.delenv(launch.MAX_SECONDS_ENV, raising=False)
    limits = []
    for env, argv in ((None, []), ("0", []), ("30", []), ("30", ["--max-seconds", "5"])):
        if env is not None:
            monkeypatch.setenv(launch.MAX_SECONDS_ENV, env)
        app.main(argv)
        limits.append(app.SERVED.defaults.max_audio_seconds)
    assert limits == [120, None, 30, 5] and len(launched) == 4

    six = str(cut_speech(tmp_path / "six.wav", 6.0))
    with pytest.raises(gr.Error) as refused:
        app.generate_from_audio(str(PORTRAIT), six, lambda *args, **kwargs: None,
                                types.SimpleNamespace(session_hash="limit-test"), **HAAR)
    assert refused.value.message == "The speech is 6 s long; the limit is 5 s. Trim it and try again."
    assert "for 125 frames" in app.estimate(str(PORTRAIT), "audio", "", six, False, enhance="none")  # 5 s at 25 fps


def test_the_live_socket_from_python_through_the_app(server, client, tmp_path):
    """lipsync.live.client, as the README shows it: the app's start_live event gives the token, the socket on the
    app's own port takes the recording at its pace and gives back every frame; a photo with no face gets a
    sentence before any socket opens."""
    from lipsync.live.client import speak

    frames = list(speak(server.url, PORTRAIT, cut_speech(tmp_path / "s.wav", 1.0), **HAAR))
    assert [frame.index for frame in frames] == list(range(25))
    assert sum(len(frame.audio) for frame in frames) == 16_000 and frames[0].image.shape == (446, 300, 3)
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((240, 320, 3), 128, np.uint8))
    with pytest.raises(AppError, match="No face was found"):
        client.predict(handle_file(wall), **HAAR, api_name="/start_live")
