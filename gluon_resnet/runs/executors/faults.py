"""Fault injection for tests of the executors' recovery: a worker lost mid-run.

With GLUON_RESNET_FAULT_KILL_AFTER_EPOCH="EPOCH:MARKER" in a worker's environment, the first
process that writes some run's record of epoch EPOCH (train_run writes it right after that
epoch's checkpoint) and manages to create the file MARKER SIGKILLs itself: once, whatever
the number of workers. Without the variable, `store_for` is a plain RunStore.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

from ...store import RunStore

FAULT_ENV = "GLUON_RESNET_FAULT_KILL_AFTER_EPOCH"


def store_for(root: Path | str) -> RunStore:
    """The store a worker trains into: plain, or killing its process once (see above)."""
    fault = os.environ.get(FAULT_ENV)
    if not fault:
        return RunStore(root)
    epoch, _, marker = fault.partition(":")
    return KillingStore(root, int(epoch), Path(marker))


class KillingStore(RunStore):
    """A store whose process SIGKILLs itself once, right after writing epoch K's record."""

    def __init__(self, root: Path | str, epoch: int, marker: Path):
        super().__init__(root)
        self.epoch, self.marker = epoch, marker

    def write(self, record: dict) -> None:
        super().write(record)
        if record["status"] == "running" and len(record["epochs"]) == self.epoch \
                and claim(self.marker, record["run_id"]):
            os.kill(os.getpid(), signal.SIGKILL)


def claim(marker: Path, text: str) -> bool:
    """Create marker exclusively and write text in it (True), or find it there (False)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True
