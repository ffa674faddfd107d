"""The results store: one JSON record per run, written atomically, one lock per run.

Layout of a store root (``results/<experiment>/<profile>/``)::

    runs/<run_id>.json          the run's record (schema below), rewritten after every epoch
    checkpoints/<run_id>/       parameters + trainer state of the last complete epoch (git-ignored)
    locks/<run_id>.lock         held (flock) while a process trains the run (git-ignored)
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

SCHEMA_VERSION = 1
STATUSES = ("running", "completed", "diverged", "failed")
REQUIRED_KEYS = ("schema_version", "run_id", "config", "status", "epochs")
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
              "seconds", "images_per_sec")


class RunLocked(RuntimeError):
    """Another process holds the run's lock."""


class CorruptRecord(ValueError):
    """A run file exists but cannot be read as a record."""


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A reader (or a crash at any moment) sees the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide records from other users
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class RunStore:
    """Files of one experiment x profile folder."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def record_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.root / "checkpoints" / run_id

    def write(self, record: dict) -> None:
        write_json_atomic(self.record_path(record["run_id"]), record)

    def load(self, run_id: str) -> Optional[dict]:
        """The run's record, None when absent; CorruptRecord when unreadable."""
        path = self.record_path(run_id)
        if not path.exists():
            return None
        return read_record(path)

    def records(self) -> list[dict]:
        """Every readable record, sorted by run_id; unreadable files are skipped (see `problems`)."""
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            with contextlib.suppress(CorruptRecord):
                out.append(read_record(path))
        return out

    def problems(self) -> list[str]:
        """One line per run file that cannot be read, saying why."""
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                read_record(path)
            except CorruptRecord as e:
                out.append(str(e))
        return out

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Hold the run's lock; the kernel drops it when the process dies (SIGKILL included)."""
        path = self.root / "locks" / f"{run_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLocked(f"run {run_id} is being trained by another process "
                                f"(lock {path} is held)") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def read_record(path: Path) -> dict:
    """Parse and check one run file; CorruptRecord names the file and the problem."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptRecord(f"{path}: not readable JSON ({e})") from None
    if not isinstance(record, dict):
        raise CorruptRecord(f"{path}: expected a JSON object, found {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise CorruptRecord(f"{path}: missing keys {missing}")
    if record["schema_version"] != SCHEMA_VERSION:
        raise CorruptRecord(f"{path}: schema_version {record['schema_version']!r}, "
                            f"this code reads {SCHEMA_VERSION}")
    if record["status"] not in STATUSES:
        raise CorruptRecord(f"{path}: status {record['status']!r} is not one of {STATUSES}")
    for i, ep in enumerate(record["epochs"]):
        missing = [k for k in EPOCH_KEYS if k not in ep]
        if missing or ep["epoch"] != i + 1:
            raise CorruptRecord(f"{path}: epoch entry {i} is malformed (missing {missing})")
    return record
