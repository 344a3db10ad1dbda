"""The batch runner on the shared media: a list with a bad row, a killed run resumed, the same list on Ray, and the
lists it must refuse before any work."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import PORTRAIT, ROOT, TALKING_HEAD, assert_valid_mp4, cut_speech, read_frames
from lipsync import batch
from lipsync.batch import runners
from lipsync.config import LipSyncConfig
from lipsync.errors import LipSyncError

SPEECH_SECONDS = 1.0
GOOD_ROWS = f"""face,audio,out,output_size,pads
{PORTRAIT},speech.wav,,,
{TALKING_HEAD},speech.wav,,,
{TALKING_HEAD},speech.wav,small.mp4,480p,0 20 0 0
"""
BAD_ROW = "grey.png,speech.wav,,,\n"  # a face file with no face in it
EXPECTED_OUTPUTS = {1: "1-monalisa.mp4", 2: "2-talking_head.mp4", 3: "small.mp4", 4: "4-grey.mp4"}


@pytest.fixture(scope="module")
def job_list(tmp_path_factory) -> Path:
    """Four rows: the portrait, the talking head, the talking head with per-row options, and a faceless grey
    image; speech and the grey image beside the list (relative paths), the shared media by absolute path."""
    import cv2

    folder = tmp_path_factory.mktemp("jobs")
    cut_speech(folder / "speech.wav", SPEECH_SECONDS)
    cv2.imwrite(str(folder / "grey.png"), np.full((256, 256, 3), 128, np.uint8))
    (folder / "good.csv").write_text(GOOD_ROWS)
    path = folder / "jobs.csv"
    path.write_text(GOOD_ROWS + BAD_ROW)
    return path


def batch_cli(*args: str | os.PathLike) -> list[str]:
    return [sys.executable, "-m", "lipsync", "batch", *map(str, args), "--detector", "haar"]


def manifest(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / batch.MANIFEST).read_text().splitlines()]


def comparable(records: list[dict]) -> list[dict]:
    """Manifest lines in row order without their timings (which differ from run to run)."""
    return sorted(({k: v for k, v in record.items() if k != "seconds"} for record in records),
                  key=lambda record: record["row"])


@pytest.fixture(scope="module")
def local_run(job_list, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The list run through the CLI in a pool of 2 processes."""
    out_dir = tmp_path_factory.mktemp("local") / "videos"
    done = subprocess.run(batch_cli(job_list, "--out-dir", out_dir, "--workers", "2"), capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    return out_dir, done


def check_outputs(out_dir: Path) -> None:
    assert_valid_mp4(out_dir / EXPECTED_OUTPUTS[1], SPEECH_SECONDS, fps=25)
    assert_valid_mp4(out_dir / EXPECTED_OUTPUTS[2], SPEECH_SECONDS, size=(704, 1216), fps=25)
    assert_valid_mp4(out_dir / EXPECTED_OUTPUTS[3], SPEECH_SECONDS, size=(480, 828), fps=25)  # the row's size
    assert not (out_dir / EXPECTED_OUTPUTS[4]).exists()
    assert sorted(path.name for path in out_dir.iterdir()) == sorted([*list(EXPECTED_OUTPUTS.values())[:3],
                                                                     batch.MANIFEST])


def test_list_with_a_bad_row_makes_the_others_and_reports_it(local_run):
    out_dir, done = local_run
    assert done.returncode == 1, done.stderr
    check_outputs(out_dir)
    records = {record["row"]: record for record in manifest(out_dir)}
    assert sorted(records) == [1, 2, 3, 4]
    for row in (1, 2, 3):
        assert records[row]["status"] == "done" and records[row]["frames"] == 25
        assert records[row]["out"] == EXPECTED_OUTPUTS[row] and records[row]["error"] is None
    assert records[4]["status"] == "failed" and records[4]["face"] == "grey.png"
    assert "No face was found" in records[4]["error"]
    assert "4 rows: 3 made, 1 failed" in done.stdout
    assert "row 4 (grey.png) failed: No face was found" in done.stderr
    assert "Traceback" not in done.stderr


def test_killed_run_resumes_with_only_the_remaining_rows(job_list, tmp_path):
    out_dir = tmp_path / "videos"
    log = tmp_path / "first.log"
    with open(log, "wb") as stream:
        first = subprocess.Popen(batch_cli(job_list, "--out-dir", out_dir), stdout=stream,
                                 stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not (out_dir / batch.MANIFEST).is_file() or not (out_dir / batch.MANIFEST).stat().st_size:
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no row finished within 300 s"
            time.sleep(0.1)
        first.terminate()
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode != 0, "the run was stopped before its end"
    made_first = {record["row"] for record in manifest(out_dir) if record["status"] == "done"}
    assert 1 in made_first and len(made_first) < 3, made_first
    # Written atomically: nothing but finished videos under the final names, no temp file left behind.
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(
        [EXPECTED_OUTPUTS[row] for row in made_first] + [batch.MANIFEST])

    lines_before = len(manifest(out_dir))
    second = subprocess.run(batch_cli(job_list, "--out-dir", out_dir, "--resume"), capture_output=True, text=True,
                            timeout=600, cwd=ROOT)
    assert second.returncode == 1, second.stderr
    ran_second = [record["row"] for record in manifest(out_dir)[lines_before:]]
    assert sorted(ran_second) == sorted({1, 2, 3, 4} - made_first)
    assert f"{len(made_first)} already done" in second.stdout
    check_outputs(out_dir)

    # A list whose rows are all done does no work at all.
    good = job_list.with_name("good.csv")
    lines_before = len(manifest(out_dir))
    third = subprocess.run(batch_cli(good, "--out-dir", out_dir, "--resume"), capture_output=True, text=True,
                           timeout=300, cwd=ROOT)
    assert third.returncode == 0, third.stderr
    assert len(manifest(out_dir)) == lines_before
    assert "3 rows: 0 made, 0 failed, 3 already done" in third.stdout


def test_resume_check_rejects_a_cut_or_wrong_length_video(local_run, tmp_path):
    out_dir, _ = local_run
    video = out_dir / EXPECTED_OUTPUTS[2]
    assert batch.output_is_complete(video, SPEECH_SECONDS)
    assert not batch.output_is_complete(video, SPEECH_SECONDS + 0.5)  # made for another speech
    cut = tmp_path / "cut.mp4"
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # +faststart: the index is intact, a third of the frames is gone
    assert not batch.output_is_complete(cut, SPEECH_SECONDS)
    silent = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-an", "-c", "copy", str(silent)], check=True)
    assert not batch.output_is_complete(silent, SPEECH_SECONDS)
    assert not batch.output_is_complete(tmp_path / "missing.mp4", SPEECH_SECONDS)


def test_same_list_on_a_local_ray_gives_the_same_results(job_list, local_run, tmp_path):
    pytest.importorskip("ray")
    out_dir = tmp_path / "videos"
    done = subprocess.run(batch_cli(job_list, "--out-dir", out_dir, "--ray", "--ray-cpus", "2"),
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    check_outputs(out_dir)
    local_dir, _ = local_run
    assert comparable(manifest(out_dir)) == comparable(manifest(local_dir))
    for row in (1, 2, 3):
        ours, theirs = read_frames(out_dir / EXPECTED_OUTPUTS[row]), read_frames(local_dir / EXPECTED_OUTPUTS[row])
        assert len(ours) == len(theirs) == 25
        difference = np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(ours, theirs)])
        assert difference < 1.0, (row, difference)  # same mouths, within encoder rounding


REFUSED = {
    "no face column": ("audio\nspeech.wav\n", "header: there is no 'face' column"),
    "no speech column": ("face\nface.png\n", "header: there is neither an 'audio' nor a 'text' column"),
    "unknown column": ("face,audio,colour\nface.png,speech.wav,red\n", "header: unknown column 'colour'"),
    "duplicate out": ("face,audio,out\na.png,s.wav,x.mp4\nb.png,s.wav,X.mp4\n",
                      "row 2: out 'X.mp4' is also the output of row 1"),
    "default name taken": ("face,audio,out\na.png,s.wav,2-b.mp4\nb.png,s.wav,\n",
                           "row 2: out '2-b.mp4' is also the output of row 1"),
    "audio and text": ("face,audio,text\na.png,s.wav,hello\n", "row 1: give either audio or text"),
    "neither audio nor text": ("face,audio,text\na.png,s.wav,\nb.png,,\n", "row 2: give either audio or text"),
    "empty face": ("face,audio\n,s.wav\n", "row 1: face is empty"),
    "bad option value": ("face,audio,face_index\na.png,s.wav,first\n", "row 1: The face number must be a whole number"),
    "option outside its choices": ("face,audio,detector\na.png,s.wav,dlib\n", "row 1: detector must be one of"),
    "pads of three numbers": ("face,audio,pads\na.png,s.wav,0 10 0\n", "row 1: Pads must be four whole numbers"),
    "out not an mp4": ("face,audio,out\na.png,s.wav,a.mov\n", "row 1: out must end in .mp4"),
    "out outside the folder": ("face,audio,out\na.png,s.wav,../a.mp4\n", "row 1: out must be a file name inside"),
    "too many cells": ("face,audio\na.png,s.wav,extra\n", "row 1: 3 cells, but the header names 2 columns"),
    "no rows": ("face,audio\n", "has no rows"),
    "empty file": ("", "is empty"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_malformed_list_is_refused_with_row_and_reason(case, tmp_path):
    text, reason = REFUSED[case]
    path = tmp_path / "jobs.csv"
    path.write_text(text)
    with pytest.raises(batch.BatchRefused) as refused:
        batch.read_jobs(path)
    assert any(reason in problem for problem in refused.value.problems), refused.value.problems


@pytest.mark.parametrize("line, reason", [
    ('{"face": "a.png", "audio": "s.wav", "smile": true}', "row 2: unknown option 'smile'"),
    ('{"face": "a.png", "audio": "s.wav", "enhance": 3}', "row 2: enhance must be one of"),
    ('{"face": "a.png", "audio": "s.wav"', "row 2: not valid JSON"),
    ('["a.png", "s.wav"]', "row 2: a row must be a JSON object"),
])
def test_malformed_json_lines_are_refused(line, reason, tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text('{"face": "b.png", "text": "hello"}\n' + line + "\n")
    with pytest.raises(batch.BatchRefused) as refused:
        batch.read_jobs(path)
    assert any(reason in problem for problem in refused.value.problems), refused.value.problems


def test_refused_list_exits_2_before_any_work(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text("face,audio,out\na.png,s.wav,x.mp4\nb.png,s.wav,x.mp4\nc.png,,\n")
    out_dir = tmp_path / "videos"
    done = subprocess.run(batch_cli(path, "--out-dir", out_dir), capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: jobs.csv row 2: out 'x.mp4' is also the output of row 1.",
        "error: jobs.csv row 3: give either audio or text, not both or neither."]
    assert not out_dir.exists()


def test_rows_read_with_their_options_and_paths(tmp_path):
    (tmp_path / "lists").mkdir()
    path = tmp_path / "lists" / "jobs.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in [
        {"face": "faces/a.png", "audio": "https://example.org/s.mp3", "face_index": -1, "pads": [0, 5, 0, 0],
         "color_match": False, "box": None},
        {"face": "/abs/b.mp4", "text": "Bonjour", "lang": "fr", "slow": "yes", "output_size": "720p",
         "box": "10, 90, 20, 80", "out": "greetings/b.mp4"},
    ]) + "\n")
    first, second = batch.read_jobs(path, LipSyncConfig(detector="haar"))
    assert first.face_source == str(tmp_path / "lists" / "faces" / "a.png")
    assert first.audio_source == "https://example.org/s.mp3" and first.out == "1-a.mp4"
    assert first.config == LipSyncConfig(detector="haar", face_index=-1, pads=(0, 5, 0, 0), color_match=False)
    assert second.text == "Bonjour" and second.lang == "fr" and second.slow is True
    assert second.config == LipSyncConfig(detector="haar", output_size=720, box=(10, 90, 20, 80))
    assert second.out == "greetings/b.mp4"


def test_ray_missing_says_how_to_install(job_list, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    status = batch.main([str(job_list), "--out-dir", str(tmp_path / "videos"), "--ray"])
    assert status == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: --ray needs Ray, which is not installed: {batch.RAY_INSTALL}"]
    assert not (tmp_path / "videos" / batch.MANIFEST).exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_missing_checkpoint_is_refused_before_any_row(job_list, tmp_path, workers, capsys):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    status = batch.main([str(job_list), "--out-dir", str(tmp_path / "videos"), "--workers", workers,
                         "--checkpoint-dir", str(empty), "--detector", "haar"])
    assert status == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "wav2lip_gan.pth is not in the checkpoint folder" in err[0], err
    assert not (tmp_path / "videos" / batch.MANIFEST).exists()


def test_inputs_by_url_are_downloaded(tmp_path):
    shutil.copy(PORTRAIT, tmp_path / "face.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        got = runners.download(f"{base}/face.png", downloads, LipSyncConfig())
        assert got.suffix == ".png" and got.read_bytes() == PORTRAIT.read_bytes()
        with pytest.raises(LipSyncError, match="could not be downloaded: HTTP 404"):
            runners.download(f"{base}/missing.png", downloads, LipSyncConfig())
        with pytest.raises(LipSyncError, match="is larger than"):
            runners.download(f"{base}/face.png", downloads, LipSyncConfig(max_upload_bytes=1000))
    finally:
        server.shutdown()
        server.server_close()


def test_csv_cells_may_be_quoted_across_lines(tmp_path):
    path = tmp_path / "jobs.csv"
    path.write_text('face,text,slow,color_match\nface.png,"Hello, world.\nSecond line.",1,no\n\nb.png,Hi,,\n')
    first, second = batch.read_jobs(path)
    assert first.text == "Hello, world.\nSecond line." and first.slow is True
    assert first.config.color_match is False
    assert (second.row, second.out, second.slow, second.config) == (2, "2-b.mp4", False, LipSyncConfig())


def test_a_scored_row_writes_its_lip_sync_columns(job_list, tmp_path):
    """A row with score=on gets lse_d, lse_c and offset in the manifest; a row without a score has them empty."""
    rows = tmp_path / "scored.csv"
    rows.write_text(f"face,audio,score\n{PORTRAIT},{job_list.parent / 'speech.wav'},on\n"
                    f"{PORTRAIT},{job_list.parent / 'speech.wav'},off\n")
    done = subprocess.run(batch_cli(rows, "--out-dir", tmp_path / "videos"), capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    scored, plain = sorted(manifest(tmp_path / "videos"), key=lambda record: record["row"])
    assert isinstance(scored["lse_d"], float) and isinstance(scored["lse_c"], float)
    assert isinstance(scored["offset"], int) and -15 <= scored["offset"] <= 15
    assert (plain["lse_d"], plain["lse_c"], plain["offset"]) == (None, None, None)


def test_speech_limit_is_set_by_a_flag_for_every_row(tmp_path, capsys):
    """No limit unless --max-seconds sets one; then a row with longer speech fails with the sentence that says so
    (before any frame is made) and the run goes on."""
    parser = batch.build_parser()
    assert batch._defaults(parser.parse_args(["jobs.csv", "--out-dir", "v"]), parser).max_audio_seconds is None
    cut_speech(tmp_path / "six.wav", 6.0)
    path = tmp_path / "jobs.csv"
    path.write_text(f"face,audio\n{PORTRAIT},six.wav\n")
    out_dir = tmp_path / "videos"
    status = batch.main([str(path), "--out-dir", str(out_dir), "--max-seconds", "5", "--detector", "haar"])
    assert status == 1
    (record,) = manifest(out_dir)
    assert record["status"] == "failed"
    assert record["error"] == "The speech is 6 s long; the limit is 5 s. Trim it and try again."
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        batch.main([str(path), "--out-dir", str(out_dir), "--max-seconds", "soon"])
    assert refused.value.code == 2
    assert "The speech limit must be a number of seconds (0 for none), not 'soon'." in capsys.readouterr().err
