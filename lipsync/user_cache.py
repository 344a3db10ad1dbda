"""Where the package keeps small files between processes (verified checksums, the mel basis): $LIPSYNC_CACHE, else
~/.cache/lipsync. Writing there may fail (a read-only home); callers then only redo the work in the next process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "LIPSYNC_CACHE"


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
