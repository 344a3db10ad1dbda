"""The batch runner's job list: a CSV or JSON Lines file read into Jobs, every row checked before any work."""

from __future__ import annotations

import csv
import io
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from .. import options
from ..config import LipSyncConfig
from ..errors import LipSyncError

SPEECH_COLUMNS = ("audio", "text")
JOB_COLUMNS = ("face", *SPEECH_COLUMNS, "lang", "slow", "out")
OPTION_NAMES = options.NAMES  # the settings one request may choose, read as the CLI and the app read them
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
URL_SCHEMES = ("http", "https")
MAX_PROBLEMS_SHOWN = 20


class BatchRefused(LipSyncError):
    """The list, the output folder or the way to run it was refused before any work (exit status 2)."""

    def __init__(self, problems: list[str]):
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"… and {len(problems) - len(shown)} more problems")
        super().__init__("\n".join(shown))
        self.problems = problems


@dataclass(frozen=True)
class Job:
    row: int  # 1 = the first job (after a CSV's header line)
    face: str  # as written in the list
    face_source: str  # a path resolved against the list's folder, or a URL
    audio_source: str | None
    text: str | None
    lang: str
    slow: bool
    out: str  # relative to the output folder
    config: LipSyncConfig


def is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in URL_SCHEMES


def as_cell(value):
    """A JSON value or a flag's value as the text a CSV cell would hold; "none" is an empty cell (the setting's
    default)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return value if isinstance(value, str) or value is None else str(value)


def read_jobs(path: str | os.PathLike, defaults: LipSyncConfig = LipSyncConfig()) -> list[Job]:
    """Every job of a CSV or JSON Lines list, or BatchRefused with each problem (row number and reason)."""
    path = Path(path)
    rows, problems = _read_rows(path)
    jobs, seen = [], {}
    for row, record in rows:
        try:
            job = _job(row, record, path.parent, defaults)
        except (ValueError, LipSyncError) as exc:
            problems.append(f"row {row}: {str(exc).rstrip('.')}.")
            continue
        key = job.out.lower()  # two names that differ in case are one file on some file systems
        if key in seen:
            problems.append(f"row {row}: out '{job.out}' is also the output of row {seen[key]}.")
        seen.setdefault(key, row)
        jobs.append(job)
    if not rows and not problems:
        problems.append(f"The job list '{path.name}' has no rows.")
    if problems:
        raise BatchRefused([f"{path.name} {problem}" if problem.startswith(("row", "header")) else problem
                            for problem in problems])
    return jobs


def _read_rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(row number, {column: value}) for each job, and the problems of the file's shape."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BatchRefused([f"The job list '{path}' does not exist."]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchRefused([f"The job list '{path}' cannot be read: {exc}."]) from None
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        return _json_lines_rows(text)
    return _csv_rows(text, path.name)


def _json_lines_rows(text: str) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, problems = [], []
    lines = [line for line in text.splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"row {number}: not valid JSON ({exc.msg} at column {exc.colno}).")
            continue
        if not isinstance(record, dict):
            problems.append(f"row {number}: a row must be a JSON object with a 'face' key.")
            continue
        rows.append((number, {key: value for key, value in record.items() if value is not None}))
    return rows, problems


def _csv_rows(text: str, name: str) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, problems = [], []
    reader = csv.reader(io.StringIO(text, newline=""))  # a quoted cell may span lines
    header = [cell.strip() for cell in next(reader, [])]
    if not any(header):
        raise BatchRefused([f"The job list '{name}' is empty: it needs a header line such as 'face,audio'."])
    if len(set(header)) != len(header):
        problems.append("header: a column is named twice.")
    number = 0
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        number += 1
        if len(cells) > len(header):
            problems.append(f"row {number}: {len(cells)} cells, but the header names {len(header)} columns.")
            continue
        rows.append((number, {key: cell for key, cell in zip(header, cells) if cell.strip()}))
    unknown = [column for column in header if column not in JOB_COLUMNS + OPTION_NAMES]
    if unknown:
        problems.append(f"header: unknown column {', '.join(map(repr, unknown))}; columns are "
                        f"{', '.join(JOB_COLUMNS)} and the options {', '.join(OPTION_NAMES)}.")
    if "face" not in header:
        problems.append("header: there is no 'face' column.")
    if not any(column in header for column in SPEECH_COLUMNS):
        problems.append("header: there is neither an 'audio' nor a 'text' column.")
    return rows, problems


def _job(row: int, record: dict, folder: Path, defaults: LipSyncConfig) -> Job:
    unknown = [key for key in record if key not in JOB_COLUMNS + OPTION_NAMES]
    if unknown:
        raise ValueError(f"unknown option {', '.join(map(repr, unknown))}")
    face = str(record.get("face", "")).strip()
    if not face:
        raise ValueError("face is empty")
    audio = str(record["audio"]).strip() if "audio" in record else None
    text = str(record["text"]) if "text" in record else None
    if (audio is None) == (text is None):
        raise ValueError("give either audio or text, not both or neither")
    if text is not None and not text.strip():
        raise ValueError("text is empty")
    # Through the one mapping the CLI and the app use; the config's own checks (choices, ranges) follow.
    config = options.to_config({name: as_cell(record[name]) for name in OPTION_NAMES if name in record}, defaults)
    return Job(row, face, _source(face, folder), _source(audio, folder) if audio else None, text,
               _text(record.get("lang", "en"), "lang"), options.yes_or_no(record.get("slow", False), "slow"),
               _output_name(record, row, face), config)


def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, not {value!r}")
    return value.strip()


def _source(value: str, folder: Path) -> str:
    """A URL as is; a path relative to the list's folder made absolute."""
    return value if is_url(value) else str((folder / Path(value).expanduser()).resolve())


def _output_name(record: dict, row: int, face: str) -> str:
    out = str(record.get("out", "")).strip()
    if not out:
        stem = Path(urllib.parse.urlsplit(face).path).stem or "face"
        return f"{row}-{stem}.mp4"
    path = Path(out)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"out must be a file name inside the output folder, not {out!r}")
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"out must end in .mp4, not {out!r}")
    return path.as_posix()
