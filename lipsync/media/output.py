"""Where the finished video goes: the output path checked before any slow work, and the file moved there."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import OutputError


def check_output(path: str | os.PathLike, inputs: dict[str, str | os.PathLike | None] | None = None) -> Path:
    """The output file, checked before any slow work: not a folder, none of the `inputs` ({what: path}, which it
    would overwrite), named .mp4, in a folder that exists (or is made) and can be written to."""
    path = Path(path)
    for what, given in (inputs or {}).items():
        if given is not None and path.exists() and os.path.samefile(path, given):
            raise OutputError(f"The output '{path.name}' is the {what} itself; give the output another file name.")
    if path.is_dir():
        given = path.name or str(path)  # '.' has no name of its own
        folder = path.resolve().name or str(path.resolve())
        what = f"'{given}' is a folder" if given == folder else f"'{given}' is the folder '{folder}'"
        raise OutputError(f"The output {what}; give a file name, such as '{Path(given, 'out.mp4')}'.")
    if not path.name.lower().endswith(".mp4"):
        raise OutputError(f"The output '{path.name}' must be an .mp4 file; give a name such as '{path.stem}.mp4'.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"The folder for the output '{path.name}' cannot be made: {exc.strerror or exc}.") from exc
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"The output '{path.name}' cannot be written: its folder is read-only.")
    return path


def place_output(encoded: Path, path: str | os.PathLike) -> None:
    """Move the finished MP4 from the work folder to where it was asked for."""
    try:
        shutil.move(encoded, check_output(path))
    except OSError as exc:
        raise OutputError(f"The video could not be written to '{path}': {exc.strerror or exc}.") from exc
