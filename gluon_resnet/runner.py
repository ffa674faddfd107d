"""The suite's lifecycle for one experiment x profile: plan -> train pending runs -> report.

Each step reads and writes the store on disk, so any step can also run alone
(`--list` plans only, `--report-only` reports only). Who trains the pending runs is an
executor: `Sequential` here (the default), `executors.local.LocalPool` (one process per
GPU or CPU worker) or `executors.ray_executor.RayExecutor` (tasks on a Ray cluster). Each
gets the grid as `Job`s and reports every finished one to a `Tally`, which logs it and
rebuilds the report.
"""
from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol

from .config import RunConfig
from .experiment import Experiment
from .store import CorruptRecord, RunLocked, RunStore, write_json_atomic

DONE = ("completed", "diverged")  # terminal: re-running would give the same record


@dataclass(frozen=True)
class Planned:
    cfg: RunConfig
    state: str  # "done" | "resume" | "pending" | "corrupt"
    epochs_done: int = 0


def plan(store: RunStore, runs: list[RunConfig]) -> list[Planned]:
    """What each run needs, read from its record on disk."""
    out = []
    for cfg in runs:
        try:
            record = store.load(cfg.run_id)
        except CorruptRecord:
            out.append(Planned(cfg, "corrupt"))
            continue
        if record is None:
            out.append(Planned(cfg, "pending"))
        elif record["status"] in DONE:
            out.append(Planned(cfg, "done", len(record["epochs"])))
        else:  # running (interrupted) or failed: both are retried, from the checkpoint if any
            out.append(Planned(cfg, "resume", len(record["epochs"])))
    return out


def forget(store: RunStore, run_id: str) -> None:
    """Delete a run's record and checkpoint (for --fresh)."""
    store.record_path(run_id).unlink(missing_ok=True)
    shutil.rmtree(store.checkpoint_dir(run_id), ignore_errors=True)


def quarantine(store: RunStore, run_id: str, log: Callable[[str], None]) -> None:
    """Move an unreadable run file aside (kept for inspection) so the run is redone."""
    path = store.record_path(run_id)
    dest = store.root / "corrupt" / f"{run_id}.{time.strftime('%Y%m%dT%H%M%S')}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        store.load(run_id)
    except CorruptRecord as e:
        log(f"corrupted run file, redoing the run: {e} (moved to {dest})")
    shutil.move(str(path), dest)
    shutil.rmtree(store.checkpoint_dir(run_id), ignore_errors=True)


def write_experiment_info(store: RunStore, exp: Experiment, profile: str, command: str,
                          device_note: str) -> None:
    """What the report needs to know about the experiment, on disk beside the runs."""
    write_json_atomic(store.root / "experiment.json", {
        "name": exp.name, "description": exp.description, "profile": profile,
        "profile_note": exp.profiles[profile].note, "baseline": exp.baseline,
        "command": command, "device_note": device_note,
    })


def refresh_reports(store: RunStore, results_dir: Path, log: Callable[[str], None]) -> None:
    """Rebuild the report and the index; a report bug never stops the training suite."""
    from .report import write_index, write_report

    try:
        path = write_report(store.root)
        write_index(results_dir)
        log(f"report: {path}")
    except Exception:  # noqa: BLE001 - the runs on disk matter more than the report
        log("report failed (runs are safe on disk):\n" + traceback.format_exc())


@dataclass(frozen=True)
class Job:
    """One run of the grid as an executor sees it."""

    cfg: RunConfig
    index: int
    total: int
    experiment: str
    profile: str
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


def make_jobs(experiment: str, profile: str, runs: list[RunConfig], fresh: bool) -> list[Job]:
    return [Job(cfg, i, len(runs), experiment, profile, fresh) for i, cfg in enumerate(runs, 1)]


class Tally:
    """The parent's side of every executor: counts, one line per finished job, and the
    report rebuilt after each run that trained."""

    def __init__(self, store: RunStore, results_dir: Path, log: Callable[[str], None]):
        self.store, self.results_dir, self.log = store, results_dir, log
        self.counts = {"trained": 0, "skipped": 0, "locked": 0, "lost": 0}

    def add(self, job: Job, outcome: Outcome) -> None:
        self.counts[outcome.state] += 1
        if outcome.state == "locked":
            self.log(f"{job.head}: skipped, {outcome.error}")
        elif outcome.state == "lost":
            self.log(f"{job.head}: lost, no record came back ({outcome.error})")
        elif outcome.state == "trained":
            error = f" ({outcome.error})" if outcome.error else ""
            self.log(f"{job.head}: {outcome.status}{error}")
            refresh_reports(self.store, self.results_dir, self.log)


def prepare(job: Job, store: RunStore, log: Callable[[str], None], verb: str = "training",
            resume_note: bool = True) -> bool:
    """Under the run's lock: decide from the record on disk now whether to train (True), and
    clear what --fresh or a corrupted file asks to clear."""
    (item,) = plan(store, [job.cfg])
    if job.fresh:
        forget(store, job.cfg.run_id)
    elif item.state == "done":
        log(f"{job.head}: already {item.state} ({item.epochs_done} epochs), skipped")
        return False
    elif item.state == "corrupt":
        quarantine(store, job.cfg.run_id, log)
    resuming = resume_note and item.state == "resume" and not job.fresh
    log(f"{job.head}: {verb}" + (f" (resuming after epoch {item.epochs_done})" if resuming else ""))
    return True


def run_job(job: Job, store: RunStore, log: Callable[[str], None],
            train: Callable[[], dict]) -> Outcome:
    """Take the run's lock, then train it (or skip it) in this process."""
    try:
        with store.lock(job.cfg.run_id):
            if not prepare(job, store, log):
                return Outcome("skipped")
            record = train()
    except RunLocked as e:
        return Outcome("locked", error=str(e))
    return Outcome("trained", record["status"], record.get("error"))


class Executor(Protocol):
    """Trains the jobs (each under its run's lock), telling `tally` as each one finishes."""

    def run(self, jobs: list[Job], store: RunStore, data_dir: Optional[str],
            tally: Tally) -> None: ...


class Sequential:
    """The default executor: every run in this process, one after another."""

    def __init__(self, gpus: Optional[list[int]] = None, progress: bool = True):
        self.gpus, self.progress = gpus, progress

    def run(self, jobs: list[Job], store: RunStore, data_dir: Optional[str], tally: Tally) -> None:
        from .data import load_fashion_mnist
        from .train import contexts, train_run

        data = load_fashion_mnist(data_dir)
        ctx = contexts(self.gpus)
        for job in jobs:
            tally.add(job, run_job(job, store, tally.log, lambda: train_run(
                job.cfg, store, data, experiment=job.experiment, profile=job.profile, ctx=ctx,
                progress=self.progress, log=tally.log)))


def run_all(exp: Experiment, profile: str, runs: list[RunConfig], store: RunStore, *,
            results_dir: Path, data_dir: Optional[str] = None, gpus: Optional[list[int]] = None,
            fresh: bool = False, progress: bool = True, log: Callable[[str], None] = print,
            executor: Optional[Executor] = None) -> dict[str, int]:
    """Train every pending run of the grid with `executor` (default: Sequential on `gpus`),
    rebuilding the report as runs finish; returns counts of trained/skipped/locked/lost."""
    executor = executor or Sequential(gpus, progress)
    tally = Tally(store, results_dir, log)
    executor.run(make_jobs(exp.name, profile, runs, fresh), store, data_dir, tally)
    return tally.counts
