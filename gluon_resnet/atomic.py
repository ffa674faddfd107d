"""Writing a file so that a reader, or a crash at any moment, sees the old file or the new
one, never half of one. The one writer that every file the project generates goes through:
run records, checkpoints, the data verification cache, the analysis lock, reports, CSVs,
figures and the findings page."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: Path | str, save: Callable[[str], None]) -> None:
    """Let `save` write a temporary file beside `path`, flush it to disk, then rename it over
    `path` (a rename within one folder is atomic on POSIX file systems). An OSError names
    `path`, not the temporary file: the file a user knows (the disk full, the folder
    read-only), whose previous content is still there."""
    path = Path(path)
    try:
        _write(path, save)
    except OSError as e:
        if e.filename == str(path):
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


def _write(path: Path, save: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            save(tmp)
        except Exception as e:
            if not isinstance(e, OSError) and _out_of_space(path.parent, e):
                # MXNet says "FileStream.Write incomplete": name it as the OS would
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
            raise
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide files from other users
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _out_of_space(folder: Path, error: Exception) -> bool:
    """A library's failed write that was the disk being full (or the quota exhausted)."""
    if "Write incomplete" in str(error):
        return True
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def write_json_atomic(path: Path | str, obj: Any) -> None:
    """`obj` as indented JSON, atomically (see write_atomic)."""
    def save(tmp: str) -> None:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=False)
            f.write("\n")
    write_atomic(path, save)


def write_text_atomic(path: Path | str, text: str) -> None:
    """`text` as the file's content, atomically (see write_atomic)."""
    def save(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    write_atomic(path, save)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
