"""What the package remembers: small files between processes (verified checksums, the mel basis) in $LIPSYNC_CACHE,
else ~/.cache/lipsync; and within a process, the digests of files it has read. Writing to the folder may fail (a
read-only home); callers then only redo the work in the next process."""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

CACHE_ENV = "LIPSYNC_CACHE"
DIGESTS_REMEMBERED = 64  # file digests a process keeps


def folder() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "lipsync"))


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so another process reads the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """A file's hex digest, computed once per process for each path, size and modification time."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return _digest(real, stat.st_size, stat.st_mtime_ns, algorithm)


@lru_cache(maxsize=DIGESTS_REMEMBERED)
def _digest(real: str, size: int, mtime_ns: int, algorithm: str) -> str:
    return hash_file(real, algorithm)


def hash_file(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
