"""Many (face, speech) jobs from a CSV or JSON Lines list: checked whole before any work, run in this process, in
a pool of processes or on a Ray cluster, each result appended to a manifest, and resumable.

Here: the entry (`python -m lipsync batch`, `run`); jobs (the list), runners (the workers), manifest (the results
file and the resume check).

May import: the pipeline and everything below it; nothing in lipsync imports it but the command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import options
from ..config import LipSyncConfig
from ..errors import LipSyncError
from .jobs import MAX_PROBLEMS_SHOWN, BatchRefused, Job, as_cell, read_jobs
from .manifest import MANIFEST, already_done, append, output_is_complete, read_manifest
from .runners import LOCAL_RAY, RAY_INSTALL, RowWorker, import_ray, run_here, run_in_processes, run_job, run_on_ray

__all__ = ["BatchRefused", "Job", "LOCAL_RAY", "MANIFEST", "RAY_INSTALL", "RowWorker", "Summary", "main",
           "output_is_complete", "read_jobs", "run", "run_job"]


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


def run(jobs_path: str | os.PathLike, out_dir: str | os.PathLike, *, defaults: LipSyncConfig = LipSyncConfig(),
        resume: bool = False, workers: int | None = None, ray_address: str | None = None,
        ray_cpus: int | None = None, show_progress: bool = True) -> Summary:
    """Run every row of the list into `out_dir`, appending each result to `out_dir/results.jsonl`.
    ray_address: None runs here (workers > 1: that many processes); LOCAL_RAY starts a Ray on this machine
    (ray_cpus caps it); any other value is a Ray address. Raises BatchRefused before any work for a bad list, and
    before any row when the models of the default settings do not load."""
    if workers is not None and workers < 1:
        raise BatchRefused(["--workers must be 1 or more."])
    jobs = read_jobs(jobs_path, defaults)
    out_dir = _prepare_out_dir(Path(out_dir))
    if ray_address is not None:
        import_ray()  # refused before any work when it is missing
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
        append(out_dir, record)
        records.append(record)
        tally[record["status"]] += 1
        bar.update(record, tally)

    try:
        if ray_address is not None and todo:  # with nothing to do, no Ray is started
            run_on_ray(todo, out_dir, defaults, ray_address, workers, ray_cpus, on_record)
        elif (workers or 1) > 1 and len(todo) > 1:
            run_in_processes(todo, out_dir, defaults, min(workers, len(todo)), on_record)
        elif todo:  # with nothing to do, no models are loaded
            run_here(todo, out_dir, defaults, on_record)
    finally:
        bar.close()
    return Summary(len(jobs), tally["done"], tally["failed"], skipped, tuple(records))


def _prepare_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchRefused([f"The output folder '{out_dir}' cannot be made: {exc.strerror or exc}."]) from None
    if not os.access(out_dir, os.W_OK):
        raise BatchRefused([f"The output folder '{out_dir}' cannot be written to."])
    return out_dir.resolve()


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
    options.add_speech_limit(parser, "refuse rows whose speech is longer than this (default: no limit)")
    defaults = parser.add_argument_group("defaults for every row (a column of the same name overrides them)")
    options.add_flags(defaults)
    return parser


def _defaults(args: argparse.Namespace, parser: argparse.ArgumentParser) -> LipSyncConfig:
    try:
        config = options.to_config({name: as_cell(value) for name, value in options.flag_values(args).items()})
        return config.replace(max_audio_seconds=args.max_seconds)
    except LipSyncError as exc:
        parser.error(str(exc))


def _stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: temp files and folders are removed


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    defaults = _defaults(args, parser)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # A LipSyncError here is ffprobe missing or stuck while checking earlier outputs: refused, as a bad list is.
    return options.run_command(
        lambda: _run_list(args, defaults), error_status=2,
        interrupted="interrupted; rows already done are in the manifest (rerun with --resume)")


def _run_list(args: argparse.Namespace, defaults: LipSyncConfig) -> int:
    try:
        summary = run(args.jobs, args.out_dir, defaults=defaults, resume=args.resume, workers=args.workers,
                      ray_address=args.ray, ray_cpus=args.ray_cpus)
    except BatchRefused as exc:
        for problem in exc.problems[:MAX_PROBLEMS_SHOWN]:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    ran = summary.done + summary.failed
    line = f"{summary.total} rows: {summary.done} made, {summary.failed} failed"
    if summary.skipped:
        line += f", {summary.skipped} already done"
    print(f"{line} ({ran} run; manifest: {Path(args.out_dir) / MANIFEST})")
    return summary.exit_status

if __name__ == "__main__":
    sys.exit(main())
