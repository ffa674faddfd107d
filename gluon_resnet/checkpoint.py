"""Checkpoints of one run, crash-safe at any moment (SIGKILL included).

checkpoint_dir(run_id)/ holds epoch-<k>.params, epoch-<k>.states and checkpoint.json, which
names those two files and holds the record as of epoch k. checkpoint.json is written last,
atomically, after both files are complete: it is the commit point. The store's record is
written after it, so the record is at most one epoch behind the checkpoint, never ahead.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, Optional

from mxnet import gluon

from .atomic import write_atomic, write_json_atomic
from .config import RunConfig
from .records import Run
from .store import RunStore

META = "checkpoint.json"


class Unreadable(RuntimeError):
    """A checkpoint whose files are there but cannot be loaded (truncated, corrupted)."""


def save(net: gluon.Block, trainer: gluon.Trainer, store: RunStore, record: Run) -> None:
    """Checkpoint the state after the record's last epoch, then drop older files."""
    folder = store.checkpoint_dir(record.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    epoch = len(record.epochs)
    params, states = folder / f"epoch-{epoch:03d}.params", folder / f"epoch-{epoch:03d}.states"
    write_atomic(params, net.save_parameters)
    write_atomic(states, trainer.save_states)
    write_json_atomic(folder / META, {"epoch": epoch, "params": params.name,
                                      "states": states.name, "record": record.to_dict()})
    keep = {params.name, states.name, META}
    for old in folder.iterdir():  # older epochs, and temporary files of killed processes
        if old.name not in keep:
            old.unlink(missing_ok=True)


def load_meta(folder: Path) -> Optional[dict]:
    """checkpoint.json when it and the files it names are present and readable, else None."""
    try:
        meta = json.loads((folder / META).read_text())
        files_ok = all((folder / meta[k]).is_file() for k in ("params", "states"))
        return meta if files_ok and len(meta["record"]["epochs"]) == meta["epoch"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def usable(meta: Optional[dict], cfg: RunConfig, existing: Run) -> bool:
    """Same config, and the epochs on disk agree with the checkpoint's, give or take the
    last one (killed before the record was written, or failed while checkpointing).
    `meta` is checkpoint.json, whose "record" is the record's JSON as of its epoch."""
    if meta is None or not same_config(meta["record"]["config"], cfg.to_dict()):
        return False
    saved, written = meta["record"]["epochs"], [e.to_dict() for e in existing.epochs]
    n = min(len(saved), len(written))
    return abs(len(saved) - len(written)) <= 1 and saved[:n] == written[:n]


def same_config(a: dict, b: dict) -> bool:
    """Equal configs, a field missing from an older one counting as its default."""
    if a == b:
        return True
    try:
        return RunConfig.from_dict(a) == RunConfig.from_dict(b)
    except (TypeError, ValueError):
        return False


def resume_after(store: RunStore, cfg) -> int:
    """The epoch whose checkpoint resume() will continue from, said before the network is
    built: 0 when the run starts afresh (no record, an unreadable one, or no checkpoint that
    agrees with it)."""
    try:
        existing = store.load(cfg.run_id)
    except ValueError:  # unreadable record: redone from scratch
        return 0
    meta = load_meta(store.checkpoint_dir(cfg.run_id))
    if existing is None or not usable(meta, cfg, existing):
        return 0
    return meta["epoch"]


def resumable(store: RunStore, cfg) -> bool:
    """Whether the run's record on disk can resume from its checkpoint."""
    return resume_after(store, cfg) > 0


def resume(net: gluon.Block, trainer: gluon.Trainer, store: RunStore, record: Run,
           existing: Optional[Run], log: Callable[[str], None]) -> tuple[float, Run]:
    """Continue `existing` (an interrupted or failed run) from its checkpoint when it can.

    Loads parameters and trainer state; returns the wall seconds already spent and the
    record with the checkpoint's epochs and start time; (0.0, record) when starting afresh.
    """
    if existing is None:
        return 0.0, record
    folder = store.checkpoint_dir(record.run_id)
    meta = load_meta(folder)
    if not usable(meta, record.config, existing):
        if existing.epochs:
            log(f"{record.run_id}: no usable checkpoint for its {len(existing.epochs)} "
                "recorded epochs; starting again from epoch 1")
        return 0.0, record
    ctx = next(iter(net.collect_params().values())).list_ctx()
    for name, load in ((meta["params"], lambda f: net.load_parameters(f, ctx=ctx)),
                       (meta["states"], trainer.load_states)):
        try:
            load(str(folder / name))
        except Exception as e:  # noqa: BLE001 - MXNet raises MXNetError, ValueError, ...
            message = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise Unreadable(f"checkpoint file {folder / name} is unreadable ({message})") \
                from None
    saved = Run.from_dict(meta["record"])
    return float(saved.wall_seconds or 0.0), record.replace(epochs=saved.epochs,
                                                            started=saved.started)


def discard(store: RunStore, run_id: str) -> None:
    """Remove a run's checkpoint folder (unreadable: the run starts over)."""
    shutil.rmtree(store.checkpoint_dir(run_id), ignore_errors=True)


def finish(store: RunStore, record: Run) -> None:
    """A finished run never resumes: keep only a completed run's final parameters."""
    folder = store.checkpoint_dir(record.run_id)
    if not folder.is_dir():
        return
    keep = set()
    if record.status == "completed":
        meta = load_meta(folder)
        keep = {meta["params"]} if meta else set()
    for f in folder.iterdir():
        if f.name not in keep:
            f.unlink(missing_ok=True)
    if not keep:
        folder.rmdir()
