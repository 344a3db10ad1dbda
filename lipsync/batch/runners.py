"""The batch runner's workers: one row made into a video, and the three ways to run rows (in this process, in a
pool of processes, on Ray). Each warms up its models before any row, and a model that will not load (a missing or
broken checkpoint) refuses the run with its own sentence instead of failing every row with it."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

from ..config import LipSyncConfig
from ..errors import LipSyncError
from .jobs import BatchRefused, Job, is_url
from .manifest import done_record, failed_record

LOCAL_RAY = "local"  # --ray without an address: start a Ray on this machine
RAY_INSTALL = 'pip install -r requirements-batch.txt (or: pip install "ray>=2.9")'
DOWNLOAD_TIMEOUT = 60.0
# Environment the Ray workers get from the driver: where the weights and caches are, offline mode.
FORWARDED_ENV_PREFIXES = ("LIPSYNC_", "HF_HUB_OFFLINE", "OMP_WAIT_POLICY")

RecordFn = Callable[[dict], None]


# ---------------------------------------------------------------- one row

def run_job(job: Job, out_dir: str | os.PathLike) -> dict:
    """Make one row's video; its manifest line. A bad row is a failed record, never an exception."""
    from ..pipeline import generate, work_dir

    started = time.perf_counter()
    final = Path(out_dir) / job.out
    temp = _temp_output(final)
    try:
        with work_dir() as downloads:
            face = download(job.face_source, downloads, job.config) if is_url(job.face_source) else job.face_source
            audio = job.audio_source
            if audio is not None and is_url(audio):
                audio = download(audio, downloads, job.config)
            result = generate(face, temp, audio_path=audio, text=job.text, lang=job.lang, slow=job.slow,
                              config=job.config)
        os.replace(temp, final)
        return done_record(job, result, time.perf_counter() - started)
    except LipSyncError as exc:
        error = str(exc)
    except Exception as exc:  # a bug, not the row's fault: reported for this row, and the other rows go on
        error = f"{type(exc).__name__}: {exc}"
    finally:
        temp.unlink(missing_ok=True)
    return failed_record(job, error, time.perf_counter() - started)


def download(url: str, folder: Path, config: LipSyncConfig) -> Path:
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


# ---------------------------------------------------------------- warming up

def warm_up_problem(defaults: LipSyncConfig) -> str | None:
    """Load the models the rows' default settings need, once per process: None when they load, else why not.
    A row with settings of its own loads what they need when it runs."""
    from .. import models

    try:
        models.load(defaults)
    except LipSyncError as exc:
        return str(exc)
    return None


def _refuse_unless_warm(problems: list[str | None]) -> None:
    """Every worker's warm-up problem, each said once (a cluster's nodes may differ); none: the rows may start."""
    said = list(dict.fromkeys(problem for problem in problems if problem))
    if said:
        raise BatchRefused(said)


# ---------------------------------------------------------------- in this process

def run_here(jobs: list[Job], out_dir: Path, defaults: LipSyncConfig, on_record: RecordFn) -> None:
    _refuse_unless_warm([warm_up_problem(defaults)])
    for job in jobs:
        on_record(run_job(job, out_dir))


# ---------------------------------------------------------------- in a pool of processes

_pool_worker_problem: str | None = None  # this pool worker's warm-up, as warm_up_problem gave it


def _start_pool_worker(defaults: LipSyncConfig, threads: int) -> None:
    import torch

    global _pool_worker_problem
    torch.set_num_threads(threads)  # the pool shares the cores instead of each process taking all of them
    _pool_worker_problem = warm_up_problem(defaults)


def _pool_worker_warm_up_problem() -> str | None:
    return _pool_worker_problem


def run_in_processes(jobs: list[Job], out_dir: Path, defaults: LipSyncConfig, workers: int,
                     on_record: RecordFn) -> None:
    threads = max(1, (os.cpu_count() or 1) // workers)
    # spawn: a fresh interpreter per worker (a forked torch with threads running is not safe).
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_pool_worker, initargs=(defaults, threads))
    try:
        # One worker answers for all: they warm up alike, on this machine from the same files.
        try:
            _refuse_unless_warm([pool.submit(_pool_worker_warm_up_problem).result()])
        except BrokenProcessPool as exc:
            raise BatchRefused([f"A worker process could not start: {exc}"]) from None
        futures = {pool.submit(run_job, job, out_dir): job for job in jobs}
        for future in as_completed(futures):
            try:
                on_record(future.result())
            except Exception as exc:  # the worker process died (killed, out of memory)
                on_record(failed_record(futures[future],
                                        f"the worker process was lost: {type(exc).__name__}: {exc}"))
        pool.shutdown()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for child in multiprocessing.active_children():  # this pool's workers: stop the rows they are on
            child.terminate()
        raise


# ---------------------------------------------------------------- on Ray

class RowWorker:
    """A Ray actor: loads the models once, then makes one row at a time."""

    def __init__(self, out_dir: str, defaults: LipSyncConfig):
        self.out_dir = out_dir
        self.problem = warm_up_problem(defaults)

    def warm_up_problem(self) -> str | None:
        return self.problem

    def run(self, job: Job) -> dict:
        return run_job(job, self.out_dir)


def import_ray():
    try:
        import ray
    except ImportError:
        raise BatchRefused([f"--ray needs Ray, which is not installed: {RAY_INSTALL}"]) from None
    return ray


def run_on_ray(jobs: list[Job], out_dir: Path, defaults: LipSyncConfig, address: str, workers: int | None,
               ray_cpus: int | None, on_record: RecordFn) -> None:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        _start_ray(ray, address, ray_cpus)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = min(len(jobs), workers or gpus or max(1, cpus))
        # One GPU per actor when the cluster has them; Ray then gives each actor its own CUDA_VISIBLE_DEVICES.
        actor_class = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=1)(RowWorker)
        actors = [actor_class.remote(str(out_dir), defaults) for _ in range(count)]
        try:
            _refuse_unless_warm(ray.get([actor.warm_up_problem.remote() for actor in actors]))
        except ray.exceptions.RayError as exc:
            raise BatchRefused([f"A Ray worker could not start: {type(exc).__name__}."]) from None
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
                record = failed_record(job, f"the Ray worker was lost: {type(exc).__name__}")
            on_record(record)
            if waiting:
                job = waiting.pop()
                running[actor.run.remote(job)] = (job, actor)
    finally:
        if started_here:
            ray.shutdown()


def _start_ray(ray, address: str, ray_cpus: int | None) -> None:
    # The lipsync code travels with the job; the workers need its dependencies installed (README: Batch).
    runtime_env = {"py_modules": [str(Path(__file__).resolve().parents[1])],  # the whole lipsync package
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
