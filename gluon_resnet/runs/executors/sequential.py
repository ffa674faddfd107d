"""The default executor: every run in this process, one after another, the longest first
(like the parallel executors: two processes sharing a folder then end a round together)."""
from __future__ import annotations

from typing import Optional

from ...devices import contexts
from ...store import RunStore
from ..jobs import Job, Tally, longest_first
from .worker import load_data, train_job


class Sequential:
    """Train the jobs here, the longest first; `gpus` split each run's batches (data
    parallelism)."""

    workers = 1

    def __init__(self, gpus: Optional[list[int]] = None, progress: bool = True):
        self.gpus, self.progress = gpus, progress

    def gpu_count(self) -> int:
        from . import gpu_count

        return len(self.gpus) if self.gpus is not None else gpu_count()

    def run(self, jobs: list[Job], store: RunStore, data_dir: Optional[str], tally: Tally) -> None:
        data, ctx = load_data(data_dir), contexts(self.gpus)
        for job in longest_first(jobs):
            outcome, _ = train_job(job, store, data, ctx, log=tally.log, progress=self.progress)
            tally.add(job, outcome)
