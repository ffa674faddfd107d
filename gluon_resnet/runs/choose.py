"""Which executor a call gets when the user chose none: on a CPU-only machine, worker
processes (one thread each) where that is faster for the grid (plan.default_workers), else
the sequential executor."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional

from .. import runtime
from ..store import RunStore
from .executors import ExecutorOptions, gpu_count
from .experiment import Experiment, expand
from .plan import default_workers
from .runner import planned_analysis, resolve_profile


def seeds_to_plan(exp: Experiment, profile: str, store: RunStore, axes: Mapping[str, Any],
                  until_decided: bool, max_seeds: Optional[int]) -> dict:
    """The grid's axes as the call will train them: --until-decided trains seeds 0, 1, ...
    up to the folder's plan's cap (planned_analysis, its one owner), not the profile's."""
    if not until_decided:
        return dict(axes)
    cap = planned_analysis(exp, profile, store, max_seeds).max_seeds
    return {**axes, "seed": tuple(range(cap))}


def choose_executor(options: ExecutorOptions, experiments: Mapping[str, Experiment],
                    profile_choice: str, results_dir: Path, axes: Mapping[str, Any],
                    overrides: Mapping[str, Any], until_decided: bool = False,
                    max_seeds: Optional[int] = None) -> tuple[ExecutorOptions, str]:
    """(options, kind) for a call that named no executor; ValueError for a grid the
    definitions reject, PlanChanged for a folder locked with another plan."""
    if options.gpus is not None or gpu_count():
        return options, "sequential"
    profile, _ = resolve_profile(profile_choice, None, None)
    cores = runtime.usable_cores() if not runtime.USER_THREADS else 1
    workers = cores
    for name, exp in experiments.items():
        store = RunStore(Path(results_dir) / name / profile)
        runs = expand(exp, profile, overrides=overrides, axes=seeds_to_plan(
            exp, profile, store, axes, until_decided, max_seeds))
        workers = min(workers, default_workers(runs, store, results_dir, cores))
    if workers < 2:
        return options, "sequential"
    print(f"{workers} worker processes x 1 thread: faster than one process for runs of "
          "minutes on this CPU (--executor sequential keeps one)", flush=True)
    return replace(options, workers=workers), "local"
