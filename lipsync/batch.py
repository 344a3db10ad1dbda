"""Many (face, speech) jobs from a CSV or JSON Lines list: checked whole before any work, run in this process, in
a pool of processes or on a Ray cluster, each result appended to a manifest, and resumable."""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import media, options
from .options import FALSE_WORDS, TRUE_WORDS
from .config import LipSyncConfig
from .errors import LipSyncError

MANIFEST = "results.jsonl"
SPEECH_COLUMNS = ("audio", "text")
JOB_COLUMNS = ("face", *SPEECH_COLUMNS, "lang", "slow", "out")
OPTION_NAMES = options.NAMES  # the settings one request may choose, read as the CLI and the app read them
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
LOCAL_RAY = "local"  # --ray without an address: start a Ray on this machine
RAY_INSTALL = 'pip install -r requirements-batch.txt (or: pip install "ray>=2.9")'
URL_SCHEMES = ("http", "https")
DOWNLOAD_TIMEOUT = 60.0
# Environment the Ray workers get from the driver: where the weights and caches are, offline mode.
FORWARDED_ENV_PREFIXES = ("LIPSYNC_", "HF_HUB_OFFLINE", "OMP_WAIT_POLICY")
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


@dataclass(frozen=True)
class Summary:
    total: int
    done: int
    failed: int
    skipped: int  # already done before a --resume
    records: tuple[dict, ...]  # the manifest lines written by this run, in the order rows finished

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


# ---------------------------------------------------------------- reading and checking the list

def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, not {value!r}")
    return value.strip()


def _yes_no(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _read_rows(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    """(row number, {column: value}) for each job, and the problems of the file's shape."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BatchRefused([f"The job list '{path}' does not exist."]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchRefused([f"The job list '{path}' cannot be read: {exc}."]) from None
    rows, problems = [], []
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
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
    reader = csv.reader(io.StringIO(text, newline=""))  # a quoted cell may span lines
    header = [cell.strip() for cell in next(reader, [])]
    if not any(header):
        raise BatchRefused([f"The job list '{path.name}' is empty: it needs a header line such as 'face,audio'."])
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
    unknown = [name for name in header if name not in JOB_COLUMNS + OPTION_NAMES]
    if unknown:
        problems.append(f"header: unknown column {', '.join(map(repr, unknown))}; columns are "
                        f"{', '.join(JOB_COLUMNS)} and the options {', '.join(OPTION_NAMES)}.")
    if "face" not in header:
        problems.append("header: there is no 'face' column.")
    if not any(column in header for column in SPEECH_COLUMNS):
        problems.append("header: there is neither an 'audio' nor a 'text' column.")
    return rows, problems


def _source(value: str, folder: Path) -> str:
    """A URL as is; a path relative to the list's folder made absolute."""
    if urllib.parse.urlsplit(value).scheme in URL_SCHEMES:
        return value
    return str((folder / Path(value).expanduser()).resolve())


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


def _cell(value):
    """A JSON value as the text a CSV cell would hold; "none" is an empty cell (the setting's default)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return value if isinstance(value, str) or value is None else str(value)


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
    config = options.to_config({name: _cell(record[name]) for name in OPTION_NAMES if name in record}, defaults)
    return Job(row, face, _source(face, folder), _source(audio, folder) if audio else None, text,
               _text(record.get("lang", "en"), "lang"), _yes_no(record.get("slow", False), "slow"),
               _output_name(record, row, face), config)


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


# ---------------------------------------------------------------- one row

def _download(url: str, folder: Path, config: LipSyncConfig) -> Path:
    """A URL input copied to a local file (keeping its suffix, which tells its format), within the size limit."""
    name = Path(urllib.parse.urlsplit(url).path).name or "download"
    target = folder / f"{len(list(folder.iterdir()))}-{name}"
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                if out.tell() + len(chunk) > config.max_upload_bytes:
                    raise LipSyncError(f"'{url}' is larger than {config.max_upload_bytes / 2**20:.0f} MB.")
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        reason = (f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError)
                  else getattr(exc, "reason", None) or exc)
        raise LipSyncError(f"'{url}' could not be downloaded: {reason}.") from exc
    return target


def _temp_output(final: Path) -> Path:
    """Where a row's video is written before it is renamed to `final` (same folder, so the rename is atomic)."""
    return final.with_name(f".{final.stem}.partial.mp4")


def run_job(job: Job, out_dir: str | os.PathLike) -> dict:
    """Make one row's video; its manifest line. A bad row is a failed record, never an exception."""
    from .pipeline import generate, work_dir

    started = time.perf_counter()
    final = Path(out_dir) / job.out
    temp = _temp_output(final)
    record = {"row": job.row, "face": job.face, "out": job.out}
    try:
        with work_dir() as downloads:
            face = _download(job.face_source, downloads, job.config) if _is_url(job.face_source) else job.face_source
            audio = job.audio_source
            if audio is not None and _is_url(audio):
                audio = _download(audio, downloads, job.config)
            result = generate(face, temp, audio_path=audio, text=job.text, lang=job.lang, slow=job.slow,
                              config=job.config)
        os.replace(temp, final)
        record.update(status="done", frames=result.frames, duration=round(result.duration, 3), error=None)
    except LipSyncError as exc:
        record.update(status="failed", frames=0, duration=None, error=str(exc))
    except Exception as exc:  # a bug, not the row's fault: reported for this row, and the other rows go on
        record.update(status="failed", frames=0, duration=None, error=f"{type(exc).__name__}: {exc}")
    finally:
        temp.unlink(missing_ok=True)
    record["seconds"] = round(time.perf_counter() - started, 2)
    return record


def _is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in URL_SCHEMES


def load_models(config: LipSyncConfig) -> None:
    """Load the generator and the detector once, when a worker starts; a failure shows again in each row."""
    from . import pipeline

    try:
        pipeline.load_models(config)
    except LipSyncError:
        pass


# ---------------------------------------------------------------- resume

def expected_duration(job: Job, earlier: dict | None) -> float | None:
    """Seconds the row's video must last: the speech file's length, or for a text row the length recorded when it
    was made (a voice is not known before it speaks)."""
    if job.audio_source is not None and not _is_url(job.audio_source):
        info = media.probe(job.audio_source, "speech recording")
        if info is None or not info.has_audio:
            return None
        return job.config.capped_speech_seconds(info.audio_duration)
    if earlier is not None and earlier.get("status") == "done" and earlier.get("duration") is not None:
        return float(earlier["duration"])
    return None


def output_is_complete(path: Path, duration: float) -> bool:
    """An MP4 with a video and an audio stream, both as long as the speech (within a frame and AAC padding).
    The video's length is counted from its packets, so a file cut short is caught even with its index intact."""
    if not path.is_file():
        return False
    info = media.probe(path, "earlier output")
    if info is None or info.video is None or not info.has_audio or info.video.codec in media.IMAGE_CODECS:
        return False
    try:
        counted = media.run_tool([media.FFPROBE, "-v", "error", "-count_packets", "-select_streams", "v:0",
                                  "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0",
                                  media.tool_path(path)], media.PROBE_TIMEOUT, "Checking an earlier output")
        packets = int(counted.stdout.decode().strip().split(",")[0])
    except (LipSyncError, ValueError):
        return False
    frame = 1 / float(info.video.fps)
    tolerance = 2 * frame + 0.05  # the frame count is rounded once; compressed speech lengths are approximate
    return abs(packets * frame - duration) <= tolerance and abs(info.audio_duration - duration) <= tolerance


def read_manifest(out_dir: Path) -> dict[str, dict]:
    """The last line written for each output (a row run again appends a new line)."""
    latest: dict[str, dict] = {}
    try:
        lines = (out_dir / MANIFEST).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return latest
    for line in lines:
        try:
            record = json.loads(line)
            latest[record["out"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by a crash
    return latest


def already_done(job: Job, out_dir: Path, earlier: dict[str, dict]) -> bool:
    duration = expected_duration(job, earlier.get(job.out))
    return duration is not None and output_is_complete(out_dir / job.out, duration)


# ---------------------------------------------------------------- executors

RecordFn = Callable[[dict], None]


def _run_here(jobs: list[Job], out_dir: Path, on_record: RecordFn) -> None:
    for job in jobs:
        on_record(run_job(job, out_dir))


def _start_worker_process(defaults: LipSyncConfig, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)  # the pool shares the cores instead of each process taking all of them
    load_models(defaults)


def _run_in_processes(jobs: list[Job], out_dir: Path, defaults: LipSyncConfig, workers: int,
                      on_record: RecordFn) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn: a fresh interpreter per worker (a forked torch with threads running is not safe).
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker_process, initargs=(defaults, threads))
    try:
        futures = {pool.submit(run_job, job, out_dir): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                on_record(future.result())
            except Exception as exc:  # the worker process died (killed, out of memory)
                on_record({"row": job.row, "face": job.face, "out": job.out, "status": "failed", "frames": 0,
                           "duration": None, "error": f"the worker process was lost: {type(exc).__name__}: {exc}",
                           "seconds": 0.0})
        pool.shutdown()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # this pool's workers: stop the rows they are on
            child.terminate()
        raise


class RowWorker:
    """A Ray actor: loads the models once, then makes one row at a time."""

    def __init__(self, out_dir: str, defaults: LipSyncConfig):
        self.out_dir = out_dir
        load_models(defaults)

    def run(self, job: Job) -> dict:
        return run_job(job, self.out_dir)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BatchRefused([f"--ray needs Ray, which is not installed: {RAY_INSTALL}"]) from None
    return ray


def _run_on_ray(jobs: list[Job], out_dir: Path, defaults: LipSyncConfig, address: str, workers: int | None,
                ray_cpus: int | None, on_record: RecordFn) -> None:
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # The lipsync code travels with the job; the workers need its dependencies installed (README: Batch).
        runtime_env = {"py_modules": [str(Path(__file__).parent)],
                       "env_vars": {key: value for key, value in os.environ.items()
                                    if key.startswith(FORWARDED_ENV_PREFIXES)}}
        init_options = dict(runtime_env=runtime_env, logging_level=logging.ERROR, log_to_driver=False)
        try:
            if address == LOCAL_RAY:
                ray.init(num_cpus=ray_cpus, include_dashboard=False, **init_options)
            else:
                ray.init(address=address, **init_options)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise BatchRefused([f"Ray at '{address}' could not be reached: {exc}"]) from None
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = min(len(jobs), workers or gpus or max(1, cpus))
        # One GPU per actor when the cluster has them; Ray then gives each actor its own CUDA_VISIBLE_DEVICES.
        actor_class = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=1)(RowWorker)
        actors = [actor_class.remote(str(out_dir), defaults) for _ in range(count)]
        waiting = list(reversed(jobs))
        running = {}
        for actor in actors:
            if waiting:
                job = waiting.pop()
                running[actor.run.remote(job)] = (job, actor)
        while running:
            (ready,), _ = ray.wait(list(running), num_returns=1)
            job, actor = running.pop(ready)
            try:
                record = ray.get(ready)
            except ray.exceptions.RayError as exc:  # the actor or its node was lost
                record = {"row": job.row, "face": job.face, "out": job.out, "status": "failed", "frames": 0,
                          "duration": None, "error": f"the Ray worker was lost: {type(exc).__name__}",
                          "seconds": 0.0}
            on_record(record)
            if waiting:
                job = waiting.pop()
                running[actor.run.remote(job)] = (job, actor)
    finally:
        if started_here:
            ray.shutdown()


# ---------------------------------------------------------------- the run

def _append(manifest: Path, record: dict) -> None:
    """One line per finished row, on disk before the next row is reported (a kill loses nothing done)."""
    with open(manifest, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def _prepare_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchRefused([f"The output folder '{out_dir}' cannot be made: {exc.strerror or exc}."]) from None
    if not os.access(out_dir, os.W_OK):
        raise BatchRefused([f"The output folder '{out_dir}' cannot be written to."])
    return out_dir.resolve()


def run(jobs_path: str | os.PathLike, out_dir: str | os.PathLike, *, defaults: LipSyncConfig = LipSyncConfig(),
        resume: bool = False, workers: int | None = None, ray_address: str | None = None,
        ray_cpus: int | None = None, show_progress: bool = True) -> Summary:
    """Run every row of the list into `out_dir`, appending each result to `out_dir/results.jsonl`.
    ray_address: None runs here (workers > 1: that many processes); LOCAL_RAY starts a Ray on this machine
    (ray_cpus caps it); any other value is a Ray address. Raises BatchRefused before any work for a bad list."""
    if workers is not None and workers < 1:
        raise BatchRefused(["--workers must be 1 or more."])
    jobs = read_jobs(jobs_path, defaults)
    out_dir = _prepare_out_dir(Path(out_dir))
    if ray_address is not None:
        _import_ray()  # refused before any work when it is missing
    skipped = 0
    if resume:
        earlier = read_manifest(out_dir)
        todo = [job for job in jobs if not already_done(job, out_dir, earlier)]
        skipped = len(jobs) - len(todo)
    else:
        todo = jobs
    tally = {"done": 0, "failed": 0}
    records: list[dict] = []
    bar = _ProgressBar(len(todo), skipped, show_progress)

    def on_record(record: dict) -> None:
        _append(out_dir / MANIFEST, record)
        records.append(record)
        tally[record["status"]] += 1
        bar.update(record, tally)

    try:
        if ray_address is not None and todo:  # with nothing to do, no Ray is started
            _run_on_ray(todo, out_dir, defaults, ray_address, workers, ray_cpus, on_record)
        elif (workers or 1) > 1 and len(todo) > 1:
            _run_in_processes(todo, out_dir, defaults, min(workers, len(todo)), on_record)
        else:
            _run_here(todo, out_dir, on_record)
    finally:
        bar.close()
    return Summary(len(jobs), tally["done"], tally["failed"], skipped, tuple(records))


class _ProgressBar:
    """tqdm on a terminal (rows done, failed, time left); one line per failed row wherever stderr goes."""

    def __init__(self, total: int, skipped: int, enabled: bool):
        from tqdm import tqdm

        self.enabled = enabled
        self.bar = tqdm(total=total, unit="row", disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True)
        if enabled and skipped:
            self.bar.write(f"{skipped} rows already done (skipped).", file=sys.stderr)

    def update(self, record: dict, tally: dict) -> None:
        if self.enabled and record["status"] == "failed":
            self.bar.write(f"row {record['row']} ({record['face']}) failed: {record['error']}", file=sys.stderr)
        self.bar.set_postfix(done=tally["done"], failed=tally["failed"], refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------- command line

def _option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lipsync batch",
        description="Make one video per row of a CSV or JSON Lines list of (face, audio or text) jobs.")
    parser.add_argument("jobs", help="CSV (header: face,audio|text[,lang,slow,out,OPTIONS…]) or .jsonl list")
    parser.add_argument("--out-dir", required=True, help="folder for the videos and results.jsonl")
    parser.add_argument("--resume", action="store_true",
                        help="skip rows whose video is already there and complete")
    parser.add_argument("--workers", type=int, help="processes here (default 1), or Ray actors with --ray "
                                                    "(default: one per GPU, else one per CPU)")
    parser.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
                        help="run on Ray: alone, a Ray started on this machine; else the cluster's address")
    parser.add_argument("--ray-cpus", type=int, help="CPUs of the Ray that --ray alone starts (default: all)")
    parser.add_argument("--max-seconds", metavar="SECONDS", help="refuse rows whose speech is longer than this "
                                                                 "(default: no limit)")
    defaults = parser.add_argument_group("defaults for every row (a column of the same name overrides them)")
    for name in OPTION_NAMES:
        four = name in options.FOUR_NUMBERS
        default = getattr(options.DEFAULTS, name)
        defaults.add_argument(_option_flag(name), dest=name, metavar="VALUE", nargs="+" if four else None,
                              help=f"(default: {(options.as_text(default) or None) if four else default})")
    return parser


def _defaults(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LipSyncConfig:
    given = {name: _cell(getattr(args, name)) for name in OPTION_NAMES if getattr(args, name) is not None}
    try:
        return options.to_config(given).replace(max_audio_seconds=options.speech_limit(args.max_seconds))
    except LipSyncError as exc:
        parser.error(str(exc))


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: temp files and folders are removed


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = _defaults(args, parser)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        summary = run(args.jobs, args.out_dir, defaults=defaults, resume=args.resume, workers=args.workers,
                      ray_address=args.ray, ray_cpus=args.ray_cpus)
    except BatchRefused as exc:
        for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except LipSyncError as exc:  # ffprobe missing or stuck while checking earlier outputs
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; rows already done are in the manifest (rerun with --resume)", file=sys.stderr)
        return 130
    ran = summary.done + summary.failed
    line = f"{summary.total} rows: {summary.done} made, {summary.failed} failed"
    if summary.skipped:
        line += f", {summary.skipped} already done"
    print(f"{line} ({ran} run; manifest: {Path(args.out_dir) / MANIFEST})")
    return summary.exit_status


if __name__ == "__main__":
    sys.exit(main())
