"""One run of a grid as every executor handles it: a `Job`, what became of it (`Outcome`),
the decision to train it made under its lock (`prepare`), and the parent's tally."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .. import checkpoint
from ..config import RunConfig
from ..records import Run
from ..store import RunStore
from .plan import plan


@dataclass(frozen=True)
class Job:
    """One run of the grid as an executor sees it."""

    cfg: RunConfig
    index: int
    total: int
    fresh: bool = False

    @property
    def head(self) -> str:
        return f"[{self.index}/{self.total}] {self.cfg.run_id}"


@dataclass(frozen=True)
class Outcome:
    """What became of a job: trained (with the record's status), skipped, locked, or lost
    (its process or task died and no record came back)."""

    state: str  # "trained" | "skipped" | "locked" | "lost"
    status: Optional[str] = None
    error: Optional[str] = None

    @classmethod
    def of(cls, record: Run) -> "Outcome":
        return cls("trained", record.status, record.error)


def make_jobs(runs: list[RunConfig], fresh: bool) -> list[Job]:
    return [Job(cfg, i, len(runs), fresh) for i, cfg in enumerate(runs, 1)]


def longest_first(jobs: list[Job]) -> list[Job]:
    """The longest runs first (a stable sort: equal runs keep the grid's order). Parallel
    workers then finish a grid together instead of one long run ending it alone."""
    from .estimate import relative_cost

    return sorted(jobs, key=lambda job: -relative_cost(job.cfg))


def prepare(job: Job, store: RunStore, log: Callable[[str], None], verb: str = "training",
            resume_note: bool = True) -> bool:
    """Under the run's lock: decide from the record on disk now whether to train (True), and
    clear what --fresh or a corrupted file asks to clear."""
    (item,) = plan(store, [job.cfg])
    if job.fresh:
        if item.state != "pending":
            log(f"{job.head}: --fresh: deleting its record ({item.state}, {item.epochs_done} "
                f"epochs) and its checkpoint")
        store.forget(job.cfg.run_id)
    elif item.state == "done":
        log(f"{job.head}: already {item.state} ({item.epochs_done} epochs), skipped")
        return False
    elif item.state == "corrupt":
        store.quarantine(job.cfg.run_id, log)
    note = ""
    if resume_note and item.state == "resume" and not job.fresh and item.epochs_done:
        note = (f" (resuming after epoch {item.epochs_done})"
                if checkpoint.resumable(store, job.cfg) else
                f" (its {item.epochs_done} recorded epochs have no usable checkpoint: "
                "starting again from epoch 1)")
    log(f"{job.head}: {verb}{note}")
    return True


# While a grid trains, its report is rebuilt after a run that trained if this long has passed
# since the last rebuild (or the grid's start): after every run of minutes, but not after each
# run of seconds, where drawing the figures took longer than training (smoke: 3 s a rebuild,
# 0.5 s a run). The call rebuilds it once more when it ends (runner). Whatever a rebuild would
# lock (the plan at the first finished run) is locked after every run all the same.
REPORT_EVERY_SECONDS = 60.0


class Tally:
    """The parent's side of every executor: counts, one line per finished job, and the
    report rebuilt as runs finish (at most every `report_every` seconds)."""

    def __init__(self, store: RunStore, results_dir: Path, log: Callable[[str], None],
                 report_every: float = REPORT_EVERY_SECONDS):
        self.store, self.results_dir, self.log = store, results_dir, log
        self.report_every, self._reported = report_every, time.monotonic()
        self.counts = {"trained": 0, "skipped": 0, "locked": 0, "lost": 0, "failed": 0}
        self.held: list[Job] = []  # the jobs another process was training, in order

    def add(self, job: Job, outcome: Outcome) -> None:
        from ..reporting.report import refresh_reports

        self.counts[outcome.state] += 1
        if outcome.state == "locked":
            self.held.append(job)
            self.log(f"{job.head}: skipped, {outcome.error}")
        elif outcome.state == "lost":
            self.log(f"{job.head}: lost, no record came back ({outcome.error})")
        elif outcome.state == "trained":
            self.counts["failed"] += outcome.status == "failed"  # trained, and failed
            error = f" ({outcome.error})" if outcome.error else ""
            self.log(f"{job.head}: {outcome.status}{error}")
            if time.monotonic() - self._reported < self.report_every:
                refresh_reports(self.store, self.results_dir, self.log, draw=False)
            else:
                refresh_reports(self.store, self.results_dir, self.log)
                self._reported = time.monotonic()
