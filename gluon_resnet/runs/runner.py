"""The suite's lifecycle for one experiment x profile: plan -> train pending runs -> report.

Each step reads and writes the store on disk, so any step can also run alone (`--list`
plans only, `--report-only` reports only). Who trains the pending runs is an executor
(executors/): each gets the grid as `Job`s and reports every finished one to a `Tally`,
which logs it and rebuilds the report.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..config import RunConfig
from ..analysis.declared import Analysis
from ..analysis import plan as P
from ..analysis.plan import PlanChanged
from ..analysis.groups import group_key
from ..reporting.report import refresh_reports, side_folders
from ..analysis.verdicts import Decided, open_comparisons, settled_groups, store_verdicts
from ..store import RunStore
from .executors import Executor, gpu_count
from .experiment import Experiment, expand, profile_grid
from .jobs import Tally, make_jobs
from .plan import list_runs, list_seed_plan, plan


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
             wait: bool = False, left: Optional[list[RunConfig]] = None,
             log: Callable[[str], None] = print) -> dict[str, int]:
    """Train every pending run of the grid with `executor`, rebuilding the report as runs
    finish; returns counts of trained/skipped/locked/lost. A run another process holds is
    left to it (and added to `left`), or with `wait` waited for and then trained here if
    that process stopped before the run's end (a round must be whole before it is decided)."""
    tally = Tally(store, results_dir, log)
    executor.run(make_jobs(runs, fresh), store, data_dir, tally)
    if left is not None and not wait:
        left += [job.cfg for job in tally.held]
    while wait and tally.held:
        held, tally.held = tally.held, []
        log(f"waiting for {len(held)} run(s) another process is training: "
            + ", ".join(job.cfg.run_id for job in held))
        for job in held:
            store.wait_for(job.cfg.run_id)
        # not fresh again: what the other process trained meanwhile is this call's to keep
        executor.run(make_jobs([job.cfg for job in held], False), store, data_dir, tally)
    return tally.counts


def record_definition(exp: Experiment, profile: str, store: RunStore, source: str,
                      analysis: Optional[Analysis] = None) -> None:
    """experiment.json: the experiment's definition, not a call's (the report derives the
    command to reproduce from the runs on disk). A declared analysis on disk stays unless
    `analysis` replaces it (--until-decided's cap). A definition written by newer code (its
    config names fields this code does not know) stays too: an older checkout training into
    the same folder must not drop them."""
    old, _ = store.read_experiment()
    info = exp.info(profile, source, analysis)
    if isinstance(old.get("base"), dict) and set(old["base"]) - set(info["base"]):
        return
    if analysis is None and isinstance(old.get("analysis"), dict):
        info["analysis"] = old["analysis"]
    elif analysis is None and (plan := P.read_plan(store.root)) is not None:
        info["analysis"] = plan.analysis.to_dict()  # a lost definition: the lock keeps the plan
    if old.get(P.HASH_KEY):  # the lock's hash, written with the lock (analysis/plan.py)
        info[P.HASH_KEY] = old[P.HASH_KEY]
    if info != old:
        store.write_experiment(info)


def planned_analysis(exp: Experiment, profile: str, store: RunStore,
                     cap: Optional[int] = None) -> Analysis:
    """The analysis this call decides with: the definition's, at `cap` or else the folder's
    locked cap (else the declared one); PlanChanged where the folder locked another plan."""
    plan = P.read_plan(store.root)
    declared = exp.analysis_for(profile)
    if cap is not None and cap < declared.min_seeds:
        raise PlanChanged(f"--max-seeds {cap} is below the plan's first look at "
                          f"{declared.min_seeds} seeds: use {declared.min_seeds} or more")
    if plan is not None:  # the lock against the definition that wrote it, before its cap is used
        P.check_against_definition(store, plan)
    wanted = exp.analysis_for(profile, max_seeds=cap or (plan.analysis if plan else declared).max_seeds)
    P.check_wanted(store.root, plan, wanted)
    return wanted


def run_experiment(exp: Experiment, profile: str, runs: list[RunConfig], store: RunStore, *,
                   executor: Optional[Executor], results_dir: Path, source: str,
                   data_dir: Optional[str] = None, fresh: bool = False,
                   list_only: bool = False, report_only: bool = False,
                   until_decided: str = "run_all.py --until-decided") -> bool:
    """One experiment x profile as the command line asks: list, train + report, or report.
    False when a run failed or was lost, or the report could not be written.
    `until_decided`: the command that would continue this folder, for --list to show."""
    if list_only:
        device = "gpu" if (executor.gpu_count() if executor else gpu_count()) else "cpu"
        per_group = list_runs(runs, store, results_dir, device,
                              workers=getattr(executor, "workers", 1), fresh=fresh)
        analysis = planned_analysis(exp, store.profile, store)
        list_seed_plan(store, analysis, per_group,
                       f"{until_decided} --max-seeds {analysis.max_seeds}")
        return True
    counts = {}
    planned_analysis(exp, profile, store)  # every command checks the folder's lock first
    if not report_only:
        if fresh or any(p.state != "done" for p in plan(store, runs)):
            record_definition(exp, profile, store, source)  # a call that trains nothing
            # writes nothing tracked: a fresh clone's `make run` leaves its tree clean
        print(f"{exp.name}/{profile}: {len(runs)} runs -> {store.root}", flush=True)
        counts = run_grid(runs, store, executor, results_dir=results_dir, data_dir=data_dir,
                          fresh=fresh)
    if report_only:  # the experiment's archived runs and pilots: rebuilt too, each alone
        for root in side_folders(store.root.parent, tuple(exp.profiles)):
            refresh_reports(RunStore(root), results_dir, print)
    if not store.runs_dir.exists():
        print(f"{exp.name}/{profile}: no runs on disk under {store.root}, no report")
        return True
    info, _ = store.read_experiment()
    if "base" not in info:  # written by an older version: the definition, added once
        record_definition(exp, profile, store, info.get("source") or exp.name)
    reported = refresh_reports(store, results_dir, print)
    return reported and not counts.get("failed") and not counts.get("lost")


def run_until_decided(exp: Experiment, profile: str, store: RunStore, executor: Executor, *,
                      max_seeds: Optional[int], results_dir: Path, source: str,
                      axes: Optional[Mapping[str, Any]] = None,
                      overrides: Optional[Mapping[str, Any]] = None,
                      data_dir: Optional[str] = None, fresh: bool = False,
                      log: Callable[[str], None] = print) -> tuple[list[Decided], bool]:
    """Train one seed of every group per round (seed 0, 1, ...), decide from the records on
    disk after each round, and stop when no comparison is undecided or at max_seeds seeds.
    Returns the verdicts, and False when a run failed or the report could not be written.

    A round whose runs are on disk trains nothing, so an interrupted call resumes where it
    stopped. The declared analysis plans its looks up to max_seeds (None: the folder's locked
    cap, else the declared one), recorded in experiment.json and locked at the first look."""
    analysis = planned_analysis(exp, profile, store, max_seeds)
    record_definition(exp, profile, store, source, analysis)
    decided = [] if fresh else store_verdicts(store, analysis, extras=False).decided
    failures, max_seeds = 0, analysis.max_seeds
    replayed: list[int] = []  # rounds found whole on disk, not yet said
    # runs another process held in rounds before the first look: no look can be made
    # before min_seeds, so those rounds go on without them; the first look waits for them
    elsewhere: list[RunConfig] = []
    first = first_seed(exp, profile)
    for seed in range(first, first + max_seeds):
        grid = expand(exp, profile, axes={**(axes or {}), "seed": (seed,)}, overrides=overrides)
        runs = still_deciding(grid, decided)
        looks = seed - first + 1 >= analysis.min_seeds
        if not fresh and all(p.state == "done" for p in plan(store, runs + (
                elsewhere if looks else []))):
            replayed.append(seed)  # nothing to train: decided again below, said once
        else:
            say_replayed(replayed, f"{exp.name}/{profile}", log, first)
            replayed = []
            settled = "" if len(runs) == len(grid) else (
                f", {len(grid) - len(runs)} left out: their comparisons are decided")
            log(f"{exp.name}/{profile}: round {seed - first + 1} (seed {seed}, {len(runs)} runs"
                f"{settled}; at most {max_seeds} rounds) -> {store.root}")
            failures += train_round(runs, elsewhere, looks, store, executor,
                                    results_dir=results_dir, data_dir=data_dir, fresh=fresh,
                                    log=log)
        if looks:
            elsewhere = []  # trained, by this call or the other, before this look
        decided = store_verdicts(store, analysis).decided
        if not decided and elsewhere:
            continue  # the comparisons' runs are still another process's: nothing to say yet
        last = not decided or not open_comparisons(decided) or seed - first + 1 == max_seeds
        if replayed and not last:
            continue
        say_replayed(replayed, f"{exp.name}/{profile}", log, first)
        replayed = []
        if not decided:
            log(f"{exp.name}/{profile}: no comparison with {analysis.baseline} can be made "
                "(no completed baseline and variant with the same other settings): stopping")
            break
        if log_round(decided, analysis, seed - first + 1, log):
            break
    else:
        log(f"{exp.name}/{profile}: stopped at the cap of {max_seeds} seeds with "
            f"{len(open_comparisons(decided))} comparison(s) undecided (see the report)")
    reported = refresh_reports(store, results_dir, log)
    return decided, reported and not failures


def first_seed(exp: Experiment, profile: str) -> int:
    """The seed of --until-decided's first round: the profile grid's first seed (0 for every
    study but a confirmatory one, which must not reuse the seeds of the study it confirms)."""
    return min(profile_grid(exp, profile).get("seed", (0,)))


def train_round(runs: list[RunConfig], elsewhere: list[RunConfig], looks: bool,
                store: RunStore, executor: Executor, *, results_dir: Path,
                data_dir: Optional[str], fresh: bool, log: Callable[[str], None]) -> int:
    """One round's runs; the runs another process holds are added to `elsewhere`, or, where
    a look follows (`looks`), waited for together with those of earlier rounds, so that the
    look sees whole rounds. Returns how many runs failed or were lost."""
    counts = run_grid(runs, store, executor, results_dir=results_dir, data_dir=data_dir,
                      fresh=fresh, wait=looks, left=elsewhere, log=log)
    failed = counts["failed"] + counts["lost"]
    if looks and elsewhere:  # not --fresh again: the other process trained them meanwhile
        earlier = run_grid(elsewhere, store, executor, results_dir=results_dir,
                           data_dir=data_dir, wait=True, log=log)
        failed += earlier["failed"] + earlier["lost"]
    return failed


def say_replayed(seeds: list[int], name: str, log: Callable[[str], None], first: int = 0) -> None:
    """One line for rounds whose runs were all on disk (a rerun replays them silently)."""
    if not seeds:
        return
    a, b = seeds[0] - first + 1, seeds[-1] - first + 1
    rounds = (f"round {a} (seed {seeds[0]})" if len(seeds) == 1 else
              f"rounds {a}-{b} (seeds {seeds[0]}-{seeds[-1]})")
    log(f"{name}: {rounds} already on disk: nothing to train")


def still_deciding(runs: list[RunConfig], decided: list[Decided]) -> list[RunConfig]:
    """The runs that can still change a verdict. A group that takes part only in decided
    comparisons gets no more seeds: its verdict is final at the look that reached it
    (verdicts.replay; the sequential design allows stopping each comparison at its own first
    decision), and the compute goes to the open ones."""
    settled = settled_groups([(group_key(d.base.config), group_key(d.other.config))
                              for d in decided], [d.verdict.kind for d in decided])
    return [cfg for cfg in runs if group_key(cfg.to_dict()) not in settled]


def log_round(decided: list[Decided], analysis: Analysis, rounds: int,
              log: Callable[[str], None]) -> bool:
    """One line per comparison after a round; True when every one is decided."""
    still = open_comparisons(decided)
    log(f"after {rounds} round(s): {len(decided) - len(still)} of {len(decided)} comparisons "
        f"decided" + (", still open:" if still else ": every comparison has a verdict"))
    for d in decided:
        mark = "  open " if d.verdict.kind == "undecided" else "  done "
        log(f"{mark}{d.other.label}: {d.verdict.sentence(analysis)}")
    return not still
