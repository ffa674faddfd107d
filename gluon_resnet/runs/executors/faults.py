"""Fault injection for tests of the executors' recovery: a worker lost mid-run, or one
that hangs when told to stop.

With GLUON_RESNET_FAULT_KILL_AFTER_EPOCH="EPOCH:MARKER" in a worker's environment, the first
process that writes some run's record of epoch EPOCH (train_run writes it right after that
epoch's checkpoint) and manages to create the file MARKER SIGKILLs itself: once, whatever
the number of workers. With GLUON_RESNET_FAULT_HANG_ON_STOP=1, a worker told to stop never
finishes writing the run's "interrupted" record, as a process stuck in MXNet's engine never
finishes stopping. Without either variable, `store_for` is a plain RunStore. With
GLUON_RESNET_FAULT_STOP_GRACE=SECONDS, the kernel ends such a worker after SECONDS instead of
local.STOP_GRACE_SECONDS, so a test of that ending waits less.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ...records import Run
from ...store import RunStore

FAULT_ENV = "GLUON_RESNET_FAULT_KILL_AFTER_EPOCH"
HANG_ENV = "GLUON_RESNET_FAULT_HANG_ON_STOP"
GRACE_ENV = "GLUON_RESNET_FAULT_STOP_GRACE"


def stop_grace(default: int) -> int:
    """Seconds a stopped worker has before the kernel ends it: `default`, or a test's own."""
    value = os.environ.get(GRACE_ENV)
    return int(value) if value else default


def store_for(root: Path | str) -> RunStore:
    """The store a worker trains into: plain, or with one of the faults above."""
    if os.environ.get(HANG_ENV):
        return HangingStore(root)
    fault = os.environ.get(FAULT_ENV)
    if not fault:
        return RunStore(root)
    epoch, _, marker = fault.partition(":")
    return KillingStore(root, int(epoch), Path(marker))


class HangingStore(RunStore):
    """A store whose process, once told to stop, hangs instead of recording it."""

    def write(self, record: Run) -> None:
        if record.status == "interrupted":
            # as a process stuck in C code, where no Python signal handler runs (a parent's
            # death can send SIGTERM more than once, and each would end the sleep)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
        super().write(record)


class KillingStore(RunStore):
    """A store whose process SIGKILLs itself once, right after writing epoch K's record."""

    def __init__(self, root: Path | str, epoch: int, marker: Path):
        super().__init__(root)
        self.epoch, self.marker = epoch, marker

    def write(self, record: Run) -> None:
        super().write(record)
        if record.status == "running" and len(record.epochs) == self.epoch \
                and claim(self.marker, record.run_id):
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
