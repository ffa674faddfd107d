"""The suite's lifecycle for one experiment x profile: plan -> train pending runs -> report.

Each step reads and writes the store on disk, so any step can also run alone
(`--list` plans only, `--report-only` reports only).
"""
from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

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


def run_all(exp: Experiment, profile: str, runs: list[RunConfig], store: RunStore, *,
            results_dir: Path, data_dir: Optional[str] = None, gpus: Optional[list[int]] = None,
            fresh: bool = False, progress: bool = True,
            log: Callable[[str], None] = print) -> dict[str, int]:
    """Train every pending run of the grid, one at a time, rebuilding the report after each."""
    from .data import load_fashion_mnist
    from .train import contexts, train_run

    data = load_fashion_mnist(data_dir)
    ctx = contexts(gpus)
    counts = {"trained": 0, "skipped": 0, "locked": 0}
    for i, cfg in enumerate(runs, 1):
        head = f"[{i}/{len(runs)}] {cfg.run_id}"
        try:
            with store.lock(cfg.run_id):
                record = _run_one(cfg, store, head, fresh, log, lambda: train_run(
                    cfg, store, data, experiment=exp.name, profile=profile, ctx=ctx,
                    progress=progress, log=log))
        except RunLocked as e:
            log(f"{head}: skipped, {e}")
            counts["locked"] += 1
            continue
        if record is None:
            counts["skipped"] += 1
            continue
        counts["trained"] += 1
        error = f" ({record['error']})" if record.get("error") else ""
        log(f"{head}: {record['status']}{error}")
        refresh_reports(store, results_dir, log)
    return counts


def _run_one(cfg: RunConfig, store: RunStore, head: str, fresh: bool,
             log: Callable[[str], None], train: Callable[[], dict]) -> Optional[dict]:
    """Under the run's lock: decide from the record on disk now, then train or skip (None)."""
    (item,) = plan(store, [cfg])
    if fresh:
        forget(store, cfg.run_id)
    elif item.state == "done":
        log(f"{head}: already {item.state} ({item.epochs_done} epochs), skipped")
        return None
    elif item.state == "corrupt":
        quarantine(store, cfg.run_id, log)
    resuming = item.state == "resume" and not fresh
    log(f"{head}: training" + (f" (resuming after epoch {item.epochs_done})" if resuming else ""))
    return train()
