"""What each run of a grid needs, read from its record on disk; and `--list`, which shows it
with an estimated time."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import RunConfig
from ..records import CorruptRecord
from ..store import LEFT_OUT, RunStore


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
        elif record.done:
            out.append(Planned(cfg, "done", len(record.epochs)))
        else:  # running (interrupted) or failed: both are retried, from the checkpoint if any
            out.append(Planned(cfg, "resume", len(record.epochs)))
    return out


def list_runs(runs: list[RunConfig], store: RunStore, results_dir: Path, device: str,
              workers: int = 1, fresh: bool = False) -> dict[str, float]:
    """Print each run's state and estimated time, and the time left for the grid; return
    each group's estimated seconds for one more seed (group_key -> seconds, shared among the
    workers), from which --until-decided's rounds are costed."""
    from ..analysis.groups import group_key
    from .estimate import Speeds

    speeds = Speeds(results_dir, device)
    total = 0.0
    per_group: dict[str, list[float]] = {}
    print(f"{store.experiment}/{store.profile}: {len(runs)} runs ({store.root})")
    for item in plan(store, runs):
        seconds, source = speeds.seconds(item.cfg)
        per_group.setdefault(group_key(item.cfg.to_dict()), []).append(seconds)
        if fresh and item.state != "pending":  # --fresh deletes what is there and retrains
            item = Planned(item.cfg, f"{item.state}->fresh")
        todo = item.state != "done"
        total += seconds * (1 - item.epochs_done / item.cfg.epochs) if todo else 0
        print(f"  {item.cfg.run_id:<48} {item.state:<8} ~{seconds / 60:6.1f} min ({source})")
    print(f"  estimated time left: {total / 60:.1f} min on {device}")
    for problem in store.problems():
        print(f"  {problem}; {LEFT_OUT}")
    if workers > 1:  # runs are independent: the grid divides among the workers
        print(f"  with {workers} parallel workers: about {total / 60 / workers:.1f} min "
              "(less where the workers share CPU cores)")
    return {k: sum(v) / len(v) / workers for k, v in per_group.items()}


def list_seed_plan(store: RunStore, analysis, per_group: dict[str, float],
                   command: str = "run_all.py --until-decided") -> None:
    """For the seeds on disk: each comparison's verdict, or how many seeds would settle it
    and what the rounds up to the locked cap would cost. Rounds train only the groups of
    open comparisons (runner.still_deciding), so each is costed from those groups' times;
    `command` is the --until-decided call that continues this folder."""
    from ..analysis.groups import group_key
    from ..analysis.power import seeds_text
    from ..analysis.verdicts import open_comparisons, store_verdicts

    decided = store_verdicts(store, analysis).decided
    if not decided:
        print("  seeds needed: no completed baseline and variant pair on disk yet")
        return
    typical = sum(per_group.values()) / len(per_group) if per_group else 0.0

    def cost(groups) -> float:
        return sum(per_group.get(group_key(g.config), typical) for g in groups) / 60

    cap = analysis.max_seeds
    still = open_comparisons(decided)
    round_groups = {group_key(g.config): g for d in still for g in (d.base, d.other)}
    print(f"  seeds needed ({analysis.metric}, margin ±{100 * analysis.margin:.2f} points, "
          f"{'paired' if analysis.paired else 'unpaired'}, declared cap {cap} seeds; one more "
          f"round of the open comparisons ~{cost(round_groups.values()):.1f} min):")
    rounds: dict[str, int] = {}  # group -> rounds it still takes part in, within the cap
    for d in decided:
        v = d.verdict
        if v.kind != "undecided":
            print(f"    {d.other.label}: {v.kind} after {v.n} seeds")
            continue
        print(f"    {d.other.label}: undecided after {v.n} seeds; {power_line(v, analysis, len(decided))}")
        target = max(v.seeds_to_settle or 0, analysis.min_seeds)
        if v.seeds_to_settle is None and v.n >= analysis.min_seeds:
            print("      no number of seeds would settle it at the observed difference and spread")
            continue
        needed = seeds_text(target, analysis.basis)
        needed = needed if needed.startswith("more") else f"about {needed}"
        more = max(0, min(target, analysis.max_seeds) - v.n)
        reached = v.power_reached(analysis)
        more = max(more, 1) if reached else more
        for g in (d.base, d.other):
            rounds[group_key(g.config)] = max(rounds.get(group_key(g.config), 0), more)
        beyond = (f"; past the locked cap of {analysis.max_seeds}, so the plan runs {more} more "
                  "round(s) and stops undecided" if target > analysis.max_seeds else
                  f": {more} more round(s)")
        line = (f"the plan has its declared power by {needed} seeds, yet {v.n} did not settle "
                f"it: the next round's look may (cap {analysis.max_seeds})" if reached else
                f"{needed} seeds would settle it{beyond}")
        print(f"      {line}, ~{more * cost((d.base, d.other)):.1f} min")
    if rounds:
        minutes = sum(n * cost([round_groups[k]]) for k, n in rounds.items())
        print(f"  all of them: {max(rounds.values())} more round(s), ~{minutes:.1f} min "
              f"(cap {analysis.max_seeds}; a comparison's groups stop once it is decided): "
              f"{command}")


def power_line(v, analysis, comparisons: int) -> str:
    """What the locked plan can find for one comparison, at the spread of the seeds so far."""
    from ..analysis.power import as_points, detectable

    if v.spread != v.spread:
        return "power: needs 2 seeds for a spread"
    found = detectable(analysis, v.spread, comparisons)
    if found is None:
        return f"the plan's cap of {analysis.max_seeds} seeds is too few to find any difference"
    return (f"by the cap of {analysis.max_seeds} seeds the plan finds a difference of "
            f"{as_points(found)} points with {100 * analysis.power:.0f} % power (sd of the "
            f"paired differences so far {100 * v.spread:.2f})")


# Two 1-thread processes beat one 2-thread process on this suite's runs of minutes (1.28x
# measured on the quick profile, docs/running.md); for runs of seconds each worker's start-up
# (importing MXNet, loading the data: ~3 s) costs more than it saves (smoke: 11.1 s vs 8.3 s).
PARALLEL_MIN_SECONDS = 60


def default_workers(runs: list[RunConfig], store: RunStore, results_dir: Path,
                    cores: int) -> int:
    """Worker processes for a CPU-only machine when the user chose no executor: one per core
    when at least two runs are pending and a run takes over a minute, else 1."""
    from .estimate import Speeds

    pending = [p.cfg for p in plan(store, runs) if p.state != "done"]
    if cores < 2 or len(pending) < 2:
        return 1
    speeds = Speeds(results_dir, "cpu")
    seconds = sorted(speeds.seconds(cfg)[0] for cfg in pending)
    return cores if seconds[len(seconds) // 2] >= PARALLEL_MIN_SECONDS else 1
