"""The one start-up and the one training step every executor's worker shares: the data set
loaded once per process, then each job trained under its run's lock."""
from __future__ import annotations

from typing import Callable, Optional

from ...data import FashionMNIST, load_fashion_mnist
from ...records import Run
from ...store import RunLocked, RunStore
from ...train import train_run
from ..jobs import Job, Outcome, prepare

_DATA: dict = {}  # data_dir -> FashionMNIST: a worker process (Ray reuses them) loads it once


def load_data(data_dir: Optional[str]) -> FashionMNIST:
    """Find, verify and load Fashion-MNIST once per process and data folder."""
    if data_dir not in _DATA:
        _DATA[data_dir] = load_fashion_mnist(data_dir)
    return _DATA[data_dir]


def train_job(job: Job, store: RunStore, data: FashionMNIST, ctx: list, *,
              log: Callable[[str], None], progress: bool = False,
              before: Optional[Callable[[], None]] = None) -> tuple[Outcome, Optional[Run]]:
    """Take the run's lock, decide from disk whether it needs training, train it in this
    process; the outcome and the run's record (None when locked). `before` runs under the
    lock once the store is in order (a Ray worker notes its attempt there)."""
    try:
        with store.lock(job.cfg.run_id):
            needed = prepare(job, store, log)
            if before is not None:
                before()
            if not needed:
                return Outcome("skipped"), store.load(job.cfg.run_id)
            record = train_run(job.cfg, store, data, ctx=ctx, progress=progress, log=log)
    except RunLocked as e:
        return Outcome("locked", error=str(e)), None
    return Outcome.of(record), record
