"""The results store: the files of one experiment x profile folder, and who may write them.

Every file a store folder (``results/<experiment>/<profile>/``) can hold::

    experiment.json             the experiment's description, baseline and declared analysis,
                                the profile's note, the command that made the runs (report input)
    runs/<run_id>.json          the run's record (records.py), rewritten after every epoch
    checkpoints/<run_id>/       parameters + trainer state of the last complete epoch, and
                                checkpoint.json (checkpoint.py); git-ignored
    locks/<run_id>.lock         held (flock) while a process trains the run; git-ignored
    corrupt/<run_id>.<time>.json   an unreadable run file, moved aside and kept; the run is redone
    attempts/<run_id>.jsonl     Ray worker stores only: one line per attempt at the run
    fresh/<run_id>              Ray worker stores only: the --fresh submission already applied
    report.md, *.png            the report (reporting/), rebuilt from the files above

Records and experiment.json are replaced atomically (atomic.py): a reader never sees half a
file, and a killed process never leaves one.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from .atomic import write_json_atomic
from .records import CorruptRecord, Run, as_json, read_run
from .records import read as read_record


# What becomes of a run file that cannot be read or fails the record's checks (records.check):
# said wherever one is found (the report, --list, each report rebuild).
LEFT_OUT = ("left out of every verdict; the next training call whose grid holds the run moves "
            "the file to corrupt/ and trains the run again from epoch 1")


class RunLocked(RuntimeError):
    """Another process holds the run's lock."""


class RunStore:
    """Files of one experiment x profile folder (see the module docstring)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def experiment(self) -> str:
        """The experiment's name: the store folder is <results>/<experiment>/<profile>."""
        return self.root.parent.name

    @property
    def profile(self) -> str:
        return self.root.name

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def record_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.json"

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.root / "checkpoints" / run_id

    # ------------------------------------------------------------ records

    def write(self, record: Run | dict) -> None:
        """Replace the run's file with its record (a Run, or a record's JSON object)."""
        data = as_json(record)
        write_json_atomic(self.record_path(data["run_id"]), data)

    def load(self, run_id: str) -> Optional[Run]:
        """The run's record, None when absent; CorruptRecord when unreadable."""
        path = self.record_path(run_id)
        return read_run(path) if path.exists() else None

    def records(self) -> list[Run]:
        """Every readable record, typed, sorted by run_id; unreadable files are skipped (see
        `problems`)."""
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            with contextlib.suppress(CorruptRecord):
                out.append(read_run(path))
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

    def forget(self, run_id: str) -> None:
        """Delete a run's record and checkpoint (for --fresh)."""
        self.record_path(run_id).unlink(missing_ok=True)
        shutil.rmtree(self.checkpoint_dir(run_id), ignore_errors=True)

    def quarantine(self, run_id: str, log: Callable[[str], None]) -> None:
        """Move an unreadable run file aside to corrupt/ (kept for inspection) so the run is
        redone; its checkpoint belongs to a record nobody can read, and goes."""
        path = self.record_path(run_id)
        dest = self.root / "corrupt" / f"{run_id}.{time.strftime('%Y%m%dT%H%M%S')}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.load(run_id)
        except CorruptRecord as e:
            log(f"corrupted run file, redoing the run: {e} (moved to {dest})")
        shutil.move(str(path), dest)
        shutil.rmtree(self.checkpoint_dir(run_id), ignore_errors=True)

    # ------------------------------------------------------------ locks

    def lock_path(self, run_id: str) -> Path:
        return self.root / "locks" / f"{run_id}.lock"

    @contextlib.contextmanager
    def lock(self, run_id: str) -> Iterator[None]:
        """Hold the run's lock; the kernel drops it when the process dies (SIGKILL included)."""
        path = self.lock_path(run_id)
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

    def wait_for(self, run_id: str) -> None:
        """Block until no process holds the run's lock (at once when none does)."""
        path = self.lock_path(run_id)
        if not path.exists():
            return
        with open(path) as f:
            fcntl.flock(f, fcntl.LOCK_SH)  # granted once the holder's exclusive lock is gone
            fcntl.flock(f, fcntl.LOCK_UN)

    # ------------------------------------------------------------ experiment.json

    @property
    def experiment_path(self) -> Path:
        return self.root / "experiment.json"

    def write_experiment(self, info: dict) -> None:
        write_json_atomic(self.experiment_path, info)

    def read_experiment(self) -> tuple[dict, list[str]]:
        """experiment.json as a dict ({} when absent) and any problem reading it."""
        path = self.experiment_path
        if not path.exists():
            return {}, []
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            return {}, [f"{path}: not readable JSON ({e})"]
        return (info, []) if isinstance(info, dict) else ({}, [f"{path}: not a JSON object"])

    # ------------------------------------------------------------ Ray worker stores

    def note_attempt(self, run_id: str, line: dict) -> int:
        """Append one attempt at the run to attempts/<run_id>.jsonl; its number, 1-based."""
        path = self.root / "attempts" / f"{run_id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        attempt = (len(path.read_text().splitlines()) if path.exists() else 0) + 1
        with open(path, "a") as f:
            f.write(json.dumps({"attempt": attempt, **line}) + "\n")
        return attempt

    def forget_once(self, run_id: str, token: str) -> None:
        """--fresh, once per submission `token`: a retry of the same submission resumes."""
        mark = self.root / "fresh" / run_id
        if mark.is_file() and mark.read_text() == token:
            return
        self.forget(run_id)
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.write_text(token)
