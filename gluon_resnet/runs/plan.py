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
              workers: int = 1) -> None:
    """Print each run's state and estimated time, and the time left for the grid."""
    from .estimate import bench_gflops, estimate_seconds, measured_rates

    rates, gflops = measured_rates(results_dir), bench_gflops(results_dir)
    total = 0.0
    print(f"{store.experiment}/{store.profile}: {len(runs)} runs ({store.root})")
    for item in plan(store, runs):
        seconds, source = estimate_seconds(item.cfg, rates, gflops, device)
        todo = item.state != "done"
        total += seconds * (1 - item.epochs_done / item.cfg.epochs) if todo else 0
        print(f"  {item.cfg.run_id:<48} {item.state:<8} ~{seconds / 60:6.1f} min ({source})")
    print(f"  estimated time left: {total / 60:.1f} min on {device}")
    if workers > 1:  # runs are independent: the grid divides among the workers
        print(f"  with {workers} parallel workers: about {total / 60 / workers:.1f} min "
              "(less where the workers share CPU cores)")
