"""The run record: its schema, its statuses, and its lifecycle (create, finish, fail).

One JSON object per run (written by store.RunStore, one file per run)::

    schema_version  SCHEMA_VERSION
    run_id          config.run_id (also the file name)
    experiment, profile   the store folder's names: results/<experiment>/<profile>/
    config          RunConfig.to_dict()
    status          "running" -> "completed" | "diverged" | "failed" | "interrupted"
    error, traceback      why a run failed or diverged (traceback only when failed)
    params          trainable parameters
    environment     device, software, threads, git commit (diagnostics.environment)
    started, finished, wall_seconds
    epochs          one entry per finished epoch: EPOCH_KEYS, plus per-part grad_norm,
                    act_mean, act_std
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import datetime

from .config import RunConfig

SCHEMA_VERSION = 1
STATUSES = ("running", "completed", "diverged", "failed", "interrupted")
DONE = ("completed", "diverged")  # terminal: training the config again gives the same record
REQUIRED_KEYS = ("schema_version", "run_id", "config", "status", "epochs")
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
              "seconds", "images_per_sec")


class CorruptRecord(ValueError):
    """A run file exists but cannot be read as a record."""


def now() -> str:
    """Current UTC time, ISO-8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def when(record: dict) -> str:
    """When the run finished, else when it started (ISO 8601), "" if neither is recorded."""
    return record.get("finished") or record.get("started") or ""


def newest(records: list[dict]) -> str:
    """The latest finish (or start) among the records; "n/a" without records."""
    def key(r: dict) -> float:
        try:
            return datetime.datetime.fromisoformat(when(r)).timestamp()
        except (TypeError, ValueError):
            return float("-inf")
    return when(max(records, key=key)) if records else "n/a"


def new_record(cfg: RunConfig, experiment: str, profile: str, environment: dict) -> dict:
    """The record of a run about to start (or resume): running, no epochs yet."""
    return {"schema_version": SCHEMA_VERSION, "run_id": cfg.run_id, "experiment": experiment,
            "profile": profile, "config": cfg.to_dict(), "status": "running", "error": None,
            "params": None, "environment": environment, "started": now(), "finished": None,
            "wall_seconds": 0.0, "epochs": []}


def is_done(record: Optional[dict]) -> bool:
    return record is not None and record["status"] in DONE


def add_epoch(record: dict, entry: dict, wall_seconds: float) -> None:
    """Append a finished epoch; a non-finite loss ends the run as diverged."""
    record["epochs"].append(entry)
    record["wall_seconds"] = wall_seconds
    if entry["train_loss"] is None or entry["test_loss"] is None:
        record["status"] = "diverged"
        record["error"] = f"non-finite loss in epoch {entry['epoch']}"


def finish(record: dict, wall_seconds: float) -> None:
    """Every epoch ran (or the run diverged): the record becomes terminal."""
    if record["status"] == "running":
        record["status"] = "completed"
    record["finished"], record["wall_seconds"] = now(), wall_seconds


def fail(record: dict, error: str, trace: Optional[str] = None) -> None:
    """The run stopped on an error; it is retried (from its checkpoint) next time."""
    record["status"], record["error"], record["finished"] = "failed", error, now()
    if trace:
        record["traceback"] = trace


def stopped(record: dict, existing: Optional[dict], status: str, error: str,
            trace: Optional[str] = None) -> dict:
    """The record to write when a run stops early ("failed" or "interrupted"): never one with
    fewer epochs than the record on disk had (a resumed run stopped before its checkpoint was
    restored keeps its history, and resumes from it next time)."""
    if existing is not None and len(existing["epochs"]) > len(record["epochs"]):
        record = {**existing}
    fail(record, error, trace)
    record["status"] = status
    return record


def validate(record: object, path: Path | str) -> dict:
    """The record if it follows the schema and belongs to its file: its run_id is the file's
    name and its config's run_id (a record copied over another run's file is refused, so
    that run is redone rather than counted twice). CorruptRecord names the file and why."""
    if not isinstance(record, dict):
        raise CorruptRecord(f"{path}: expected a JSON object, found {type(record).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise CorruptRecord(f"{path}: missing keys {missing}")
    if record["schema_version"] != SCHEMA_VERSION:
        raise CorruptRecord(f"{path}: schema_version {record['schema_version']!r}, "
                            f"this code reads {SCHEMA_VERSION}")
    if not isinstance(record["config"], dict):
        raise CorruptRecord(f"{path}: config is not an object")
    if record["status"] not in STATUSES:
        raise CorruptRecord(f"{path}: status {record['status']!r} is not one of {STATUSES}")
    if not isinstance(record["epochs"], list):
        raise CorruptRecord(f"{path}: epochs is not a list")
    for i, ep in enumerate(record["epochs"]):
        missing = [k for k in EPOCH_KEYS if k not in ep] if isinstance(ep, dict) else EPOCH_KEYS
        if missing or ep["epoch"] != i + 1:
            raise CorruptRecord(f"{path}: epoch entry {i} is malformed (missing {list(missing)})")
    try:
        cfg = RunConfig.from_dict(record["config"])
    except (TypeError, ValueError) as e:
        raise CorruptRecord(f"{path}: config is not a valid RunConfig ({e})") from None
    if record["run_id"] != cfg.run_id or Path(path).stem != cfg.run_id:
        raise CorruptRecord(f"{path}: holds the record of run {record['run_id']!r} whose config "
                            f"is run {cfg.run_id!r}, in the file of run {Path(path).stem!r} "
                            "(copied over it?)")
    # A record written before a field existed trained with that field's default: read it
    # with every field, so it groups and compares with runs recorded since.
    record["config"] = cfg.to_dict()
    return record
