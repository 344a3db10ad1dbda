"""Requests running at the same time share models and caches but never each other's frames, boxes or files."""

import hashlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from conftest import PORTRAIT, TALKING_HEAD, cut_speech, probe
from lipsync import LipSyncConfig, generate

CONFIG = LipSyncConfig(detector="haar", output_size=352)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_parallel_requests_give_the_same_files_as_one_at_a_time(tmp_path):
    mirrored = tmp_path / "mirrored.png"
    cv2.imwrite(str(mirrored), cv2.flip(cv2.imread(str(PORTRAIT)), 1))
    jobs = [(PORTRAIT, cut_speech(tmp_path / "a.wav", 1.5)),
            (mirrored, cut_speech(tmp_path / "b.wav", 2.5, start=3.0)),
            (TALKING_HEAD, cut_speech(tmp_path / "c.wav", 2.0, start=6.0))]

    def make(index: int, folder: str) -> Path:
        face, speech = jobs[index]
        return generate(face, tmp_path / folder / f"{index}.mp4", audio_path=speech, config=CONFIG).path

    alone = [digest(make(i, "alone")) for i in range(len(jobs))]
    work_root = Path(tempfile.gettempdir())
    before = {p.name for p in work_root.iterdir() if p.name.startswith("lipsync-")}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        together = list(pool.map(lambda i: make(i, "together"), range(len(jobs))))
    assert [digest(path) for path in together] == alone
    durations = [float(probe(path)["format"]["duration"]) for path in together]
    assert abs(durations[0] - 1.5) < 0.1 and abs(durations[1] - 2.5) < 0.1 and abs(durations[2] - 2.0) < 0.1
    assert {p.name for p in work_root.iterdir() if p.name.startswith("lipsync-")} == before
    assert len(set(alone)) == len(jobs)
