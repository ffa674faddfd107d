"""The suite's lifecycle for one experiment x profile: plan -> train pending runs -> report.

Each step reads and writes the store on disk, so any step can also run alone (`--list`
plans only, `--report-only` reports only). Who trains the pending runs is an executor
(executors/): each gets the grid as `Job`s and reports every finished one to a `Tally`,
which logs it and rebuilds the report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ..config import RunConfig
from ..reporting.report import refresh_reports
from ..store import RunStore
from .executors import Executor, gpu_count
from .experiment import Experiment
from .jobs import Tally, make_jobs
from .plan import list_runs


def resolve_profile(profile: str, executor: Optional[Executor] = None,
                    gpus: Optional[list[int]] = None) -> tuple[str, str]:
    """The profile to use and a sentence saying why (`auto`: full where there are GPUs)."""
    if executor is not None:
        n = executor.gpu_count()
    else:
        n = len(gpus) if gpus is not None else gpu_count()
    if executor is not None and hasattr(executor, "cluster_gpus"):
        device = f"Ray cluster with {n} GPU(s)" if n else "Ray cluster without GPUs: CPU"
    else:
        device = f"{n} GPU(s)" if n else "no GPU visible to MXNet: CPU"
    if profile != "auto":
        return profile, f"profile {profile} (chosen); {device}"
    chosen = "full" if n else "quick"
    return chosen, f"profile auto -> {chosen} ({device})"


def run_grid(runs: list[RunConfig], store: RunStore, executor: Executor, *,
             results_dir: Path, data_dir: Optional[str] = None, fresh: bool = False,
             log: Callable[[str], None] = print) -> dict[str, int]:
    """Train every pending run of the grid with `executor`, rebuilding the report as runs
    finish; returns counts of trained/skipped/locked/lost."""
    tally = Tally(store, results_dir, log)
    executor.run(make_jobs(runs, fresh), store, data_dir, tally)
    return tally.counts


def run_experiment(exp: Experiment, profile: str, runs: list[RunConfig], store: RunStore, *,
                   executor: Optional[Executor], results_dir: Path, command: str,
                   device_note: str, data_dir: Optional[str] = None, fresh: bool = False,
                   list_only: bool = False, report_only: bool = False) -> None:
    """One experiment x profile as the command line asks: list, train + report, or report."""
    if list_only:
        device = "gpu" if (executor.gpu_count() if executor else gpu_count()) else "cpu"
        list_runs(runs, store, results_dir, device, workers=getattr(executor, "workers", 1))
        return
    if not report_only:
        store.write_experiment(exp.info(profile, command, device_note))
        print(f"{exp.name}/{profile}: {len(runs)} runs -> {store.root}", flush=True)
        run_grid(runs, store, executor, results_dir=results_dir, data_dir=data_dir,
                 fresh=fresh)
    if not store.runs_dir.exists():
        print(f"{exp.name}/{profile}: no runs on disk under {store.root}, no report")
        return
    refresh_reports(store, results_dir, print)
