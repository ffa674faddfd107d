"""What each run of a grid needs, read from its record on disk; and `--list`, which shows it
with an estimated time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig
from ..records import DONE, CorruptRecord
from ..store import RunStore


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


def list_runs(runs: list[RunConfig], store: RunStore, results_dir: Path, device: str,
              workers: int = 1, fresh: bool = False) -> float:
    """Print each run's state and estimated time, and the time left for the grid; return the
    estimated seconds of one more seed of the whole grid (one round of --until-decided)."""
    from .estimate import bench_gflops, estimate_seconds, measured_rates

    rates, gflops = measured_rates(results_dir), bench_gflops(results_dir, device)
    total = every = 0.0
    print(f"{store.experiment}/{store.profile}: {len(runs)} runs ({store.root})")
    for item in plan(store, runs):
        seconds, source = estimate_seconds(item.cfg, rates, gflops, device)
        every += seconds
        if fresh and item.state != "pending":  # --fresh deletes what is there and retrains
            item = Planned(item.cfg, f"{item.state}->fresh")
        todo = item.state != "done"
        total += seconds * (1 - item.epochs_done / item.cfg.epochs) if todo else 0
        print(f"  {item.cfg.run_id:<48} {item.state:<8} ~{seconds / 60:6.1f} min ({source})")
    print(f"  estimated time left: {total / 60:.1f} min on {device}")
    if workers > 1:  # runs are independent: the grid divides among the workers
        print(f"  with {workers} parallel workers: about {total / 60 / workers:.1f} min "
              "(less where the workers share CPU cores)")
    seeds = len({cfg.seed for cfg in runs}) or 1
    return every / seeds / workers


def list_seed_plan(store: RunStore, analysis, per_seed_seconds: float) -> None:
    """For the seeds on disk: each comparison's verdict, or how many seeds would settle it
    and what those rounds would cost."""
    from ..reporting.verdicts import decide_store

    _, decided = decide_store(store, analysis)
    if not decided:
        print("  seeds needed: no completed baseline and variant pair on disk yet")
        return
    print(f"  seeds needed ({analysis.metric}, margin ±{100 * analysis.margin:.2f} points, "
          f"{'paired' if analysis.paired else 'unpaired'}; one more seed of this grid ~"
          f"{per_seed_seconds / 60:.1f} min):")
    need = []
    for d in decided:
        v = d.verdict
        if v.kind != "undecided":
            print(f"    {d.other.label}: {v.kind} after {v.n} seeds")
            continue
        target = max(v.seeds_to_settle or 0, analysis.min_seeds)
        if v.seeds_to_settle is None and v.n >= analysis.min_seeds:
            print(f"    {d.other.label}: undecided after {v.n} seeds; no number of seeds "
                  "would settle it at the observed difference and spread")
            continue
        need.append(target)
        more = max(0, target - v.n)
        print(f"    {d.other.label}: undecided after {v.n} seeds; about {target} seeds would "
              f"settle it: {more} more round(s), ~{more * per_seed_seconds / 60:.1f} min")
    if need:
        more = max(0, max(need) - min(d.verdict.n for d in decided))
        print(f"  all of them: about {max(need)} seeds, {more} more round(s) of the grid, "
              f"~{more * per_seed_seconds / 60:.1f} min (run_all.py --until-decided)")


# Two 1-thread processes beat one 2-thread process on this suite's runs of minutes (1.28x
# measured on the quick profile, README); for runs of seconds each worker's start-up
# (importing MXNet, loading the data: ~3 s) costs more than it saves (smoke: 11.1 s vs 8.3 s).
PARALLEL_MIN_SECONDS = 60


def default_workers(runs: list[RunConfig], store: RunStore, results_dir: Path,
                    cores: int) -> int:
    """Worker processes for a CPU-only machine when the user chose no executor: one per core
    when at least two runs are pending and a run takes over a minute, else 1."""
    from .estimate import bench_gflops, estimate_seconds, measured_rates

    pending = [p.cfg for p in plan(store, runs) if p.state != "done"]
    if cores < 2 or len(pending) < 2:
        return 1
    rates, gflops = measured_rates(results_dir), bench_gflops(results_dir)
    seconds = sorted(estimate_seconds(cfg, rates, gflops, "cpu")[0] for cfg in pending)
    return cores if seconds[len(seconds) // 2] >= PARALLEL_MIN_SECONDS else 1
