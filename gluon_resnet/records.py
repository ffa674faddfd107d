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

Every module sees a record as a typed, frozen `Run` (its epochs as `Epoch`s); `Run.from_dict`
and `Run.to_dict` round-trip the JSON exactly (key order, absent and unknown keys kept). The
lifecycle functions (new_record, add_epoch, finish, fail, stopped) return the next Run.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import functools
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from .config import RunConfig
from .rules import Range

SCHEMA_VERSION = 1
STATUSES = ("running", "completed", "diverged", "failed", "interrupted")
DONE = ("completed", "diverged")  # terminal: training the config again gives the same record
REQUIRED_KEYS = ("schema_version", "run_id", "config", "status", "epochs")
EPOCH_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
              "seconds", "images_per_sec")


class CorruptRecord(ValueError):
    """A run file exists but cannot be read as a record."""


_UNTYPED = ("extra", "layout", "config_keys")  # a record class's fields that are not JSON keys


@functools.lru_cache(maxsize=None)
def _typed(cls: type) -> tuple[str, ...]:
    """The JSON keys a record class types: its fields but _UNTYPED."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in _UNTYPED)


def _named(obj: Any) -> tuple[str, ...]:
    return _typed(obj if isinstance(obj, type) else type(obj))


def _split(cls: type, d: dict) -> dict[str, Any]:
    """A JSON object's typed keys as keyword arguments, the others as `extra`, its key order as
    `layout`: what `_join` needs to write the object back exactly."""
    named = _named(cls)
    return {**{k: v for k, v in d.items() if k in named},
            "extra": {k: v for k, v in d.items() if k not in named}, "layout": tuple(d)}


def _join(obj: Any, required: tuple[str, ...], value: Any = None) -> dict:
    """The JSON object of a record class: the keys it was read (or made) with, in their order,
    then any set since (as a dict gains keys: at the end); one made without a layout writes
    its required keys, its optional ones that are set, then `extra`."""
    named = _named(obj)
    given = obj.layout or tuple(k for k in named if k in required)
    keys = dict.fromkeys((*given, *(k for k in named if getattr(obj, k) is not None),
                          *obj.extra))
    get = value or (lambda k: getattr(obj, k))
    return {k: copy.deepcopy(get(k) if k in named else obj.extra[k]) for k in keys}


@dataclass(frozen=True)
class Epoch:
    """One finished epoch of a run (EPOCH_KEYS, then what later code added)."""

    epoch: int
    train_loss: Optional[float]  # None: not finite (the run diverged)
    train_acc: float
    test_loss: Optional[float]
    test_acc: float
    lr: float
    seconds: float
    images_per_sec: float
    train_seconds: Optional[float] = None
    precise_test_loss: Optional[float] = None  # with precise BatchNorm statistics
    precise_test_acc: Optional[float] = None
    precise_seconds: Optional[float] = None
    clipped_steps: Optional[int] = None  # steps whose gradient clip_norm scaled down
    # per network part (diagnostics); None where not finite
    grad_norm: Optional[dict[str, Optional[float]]] = None
    act_mean: Optional[dict[str, Optional[float]]] = None
    act_std: Optional[dict[str, Optional[float]]] = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this code does not know
    layout: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the keys' order

    @classmethod
    def from_dict(cls, d: dict) -> "Epoch":
        return cls(**_split(cls, d))

    def to_dict(self) -> dict:
        return _join(self, EPOCH_KEYS)

    def value(self, name: str) -> Any:
        """The measurement called `name` ("test_acc", "grad_norm", ...), None if not recorded:
        for code that is told which series to read."""
        if name in _named(self):
            return getattr(self, name)
        return self.extra.get(name)


@dataclass(frozen=True)
class Run:
    """One run's record, typed (see the module docstring for what each field holds)."""

    schema_version: int
    run_id: str
    config: RunConfig  # read with every field (a record predating a field has its default)
    status: str
    epochs: tuple[Epoch, ...]
    experiment: Optional[str] = None
    profile: Optional[str] = None
    error: Optional[str] = None
    traceback: Optional[str] = None
    params: Optional[int] = None
    environment: dict[str, Any] = field(default_factory=dict)
    started: Optional[str] = None
    finished: Optional[str] = None
    wall_seconds: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this code does not know
    layout: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the keys' order
    # the config's keys as written (an older record lacks later fields), to write it back
    config_keys: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> "Run":
        """The typed record of a JSON object that follows the schema (see `validate`)."""
        return cls(**{**_split(cls, d), "config": RunConfig.from_dict(d["config"]),
                      "epochs": tuple(Epoch.from_dict(e) for e in d["epochs"]),
                      "config_keys": tuple(d["config"])})

    def to_dict(self) -> dict:
        """The record's JSON object: the one it was read from, key for key."""
        def value(k: str) -> Any:
            if k == "config":
                full = self.config.to_dict()
                return {c: full[c] for c in self.config_keys} if self.config_keys else full
            if k == "epochs":
                return [e.to_dict() for e in self.epochs]
            return getattr(self, k)
        return _join(self, REQUIRED_KEYS, value)

    def replace(self, **changes: Any) -> "Run":
        """The record with `changes` (a key set for the first time is written last)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- what readers ask

    @property
    def ordering(self) -> str:
        return self.config.ordering

    @property
    def arch(self) -> str:
        return self.config.arch

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def done(self) -> bool:
        """Terminal: training the config again gives the same record."""
        return self.status in DONE

    @property
    def last(self) -> Optional[Epoch]:
        """The last finished epoch, None before the first."""
        return self.epochs[-1] if self.epochs else None

    def series(self, name: str) -> list[Any]:
        """One epoch measurement (`Epoch.value`) per finished epoch."""
        return [e.value(name) for e in self.epochs]

    @property
    def device(self) -> Optional[str]:
        """Where it trained (environment's "device"), None if not recorded."""
        return self.environment.get("device") if isinstance(self.environment, dict) else None

    @property
    def cpu(self) -> tuple[Optional[str], Optional[str]]:
        """The CPU it trained on (environment's device_name, cpu_isa), as
        diagnostics.cpu_kind names this machine's; None where not recorded."""
        env = self.environment if isinstance(self.environment, dict) else {}
        return env.get("device_name"), env.get("cpu_isa")

    @property
    def when(self) -> str:
        """When the run finished, else when it started (ISO 8601), "" if neither is recorded."""
        return self.finished or self.started or ""

    def settings(self) -> dict[str, Any]:
        """The config as a JSON object with every field: for code that walks the fields."""
        return self.config.to_dict()


def now() -> str:
    """Current UTC time, ISO-8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def newest(runs: list[Run]) -> str:
    """The latest finish (or start) among the runs; "n/a" without runs."""
    def key(r: Run) -> float:
        try:
            return datetime.datetime.fromisoformat(r.when).timestamp()
        except (TypeError, ValueError):
            return float("-inf")
    return max(runs, key=key).when if runs else "n/a"


# the keys of a new record, in the order its file lists them (traceback joins when set)
NEW_LAYOUT = ("schema_version", "run_id", "experiment", "profile", "config", "status", "error",
              "params", "environment", "started", "finished", "wall_seconds", "epochs")


def new_record(cfg: RunConfig, experiment: str, profile: str, environment: dict) -> Run:
    """The record of a run about to start (or resume): running, no epochs yet."""
    return Run(schema_version=SCHEMA_VERSION, run_id=cfg.run_id, config=cfg, status="running",
               epochs=(), experiment=experiment, profile=profile, environment=environment,
               started=now(), wall_seconds=0.0, layout=NEW_LAYOUT)


def is_done(record: Optional[Run]) -> bool:
    return record is not None and record.done


def add_epoch(record: Run, entry: dict, wall_seconds: float) -> Run:
    """The record with a finished epoch added; a non-finite loss ends the run as diverged."""
    epoch = Epoch.from_dict(entry)
    record = record.replace(epochs=(*record.epochs, epoch), wall_seconds=wall_seconds)
    if epoch.train_loss is None or epoch.test_loss is None:
        record = record.replace(status="diverged",
                                error=f"non-finite loss in epoch {epoch.epoch}")
    return record


def finish(record: Run, wall_seconds: float) -> Run:
    """Every epoch ran (or the run diverged): the record becomes terminal."""
    return record.replace(status="completed" if record.status == "running" else record.status,
                          finished=now(), wall_seconds=wall_seconds)


def fail(record: Run, error: str, trace: Optional[str] = None, status: str = "failed") -> Run:
    """The run stopped on an error; it is retried (from its checkpoint) next time."""
    return record.replace(status=status, error=error, finished=now(),
                          **({"traceback": trace} if trace else {}))


def stopped(record: Run, existing: Optional[Run], status: str, error: str,
            trace: Optional[str] = None) -> Run:
    """The record to write when a run stops early ("failed" or "interrupted"): never one with
    fewer epochs than the record on disk had (a resumed run stopped before its checkpoint was
    restored keeps its history, and resumes from it next time)."""
    if existing is not None and len(existing.epochs) > len(record.epochs):
        record = existing
    return fail(record, error, trace, status)


def read(path: Path | str) -> dict:
    """The JSON object of one run file, checked (`validate`); CorruptRecord names the file and
    the problem."""
    return validate(_load(path), path)


def read_run(path: Path | str) -> Run:
    """The typed record of one run file (`parse`); CorruptRecord as for `read`."""
    return parse(_load(path), path)


def _load(path: Path | str) -> object:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptRecord(f"{path}: not readable JSON ({e})") from None


def as_json(record: Union[Run, dict]) -> dict:
    """What a run file holds: a Run's JSON object, or the dict the training loop keeps."""
    return record.to_dict() if isinstance(record, Run) else record


def parse(record: object, path: Path | str) -> Run:
    """The typed record of a JSON object that passes `check`."""
    check(record, path)
    return Run.from_dict(record)  # type: ignore[arg-type]


def validate(record: object, path: Path | str) -> dict:
    """The record if it passes `check`, its config read with every field: a record written
    before a field existed trained with that field's default, so it groups and compares with
    runs recorded since."""
    cfg = check(record, path)
    record["config"] = cfg.to_dict()  # type: ignore[index]
    return record  # type: ignore[return-value]


def check(record: object, path: Path | str) -> RunConfig:
    """The record's config if the record follows the schema and belongs to its file: its run_id
    is the file's name and its config's run_id (a record copied over another run's file is
    refused, so that run is redone rather than counted twice). CorruptRecord names the file
    and why."""
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
    check_values(record, cfg, path)
    return cfg


# What each recorded number may be; the types are the Epoch and Run fields'. A value outside
# would move a verdict (an accuracy of 1.5) and is none that training writes.
_ACC, _NON_NEGATIVE = Range(0, 1, high_open=False), Range(0)
VALUE_RANGES = {"epoch": Range(1), "train_acc": _ACC, "test_acc": _ACC, "precise_test_acc": _ACC,
                **dict.fromkeys(("train_loss", "test_loss", "precise_test_loss", "lr", "seconds",
                                 "images_per_sec", "train_seconds", "precise_seconds",
                                 "clipped_steps", "params", "wall_seconds"), _NON_NEGATIVE)}
LOSSES = ("train_loss", "test_loss")  # None: not finite, so the run diverged in that epoch
_TYPE_NAMES = {float: "a number", int: "an integer", str: "a string", dict: "an object",
               type(None): "null", Any: "any value"}


def check_values(record: dict, cfg: RunConfig, path: Path | str) -> None:
    """Every value of a record (that passed the structure checks of `check`) of its field's
    type and within VALUE_RANGES, and its epochs as many as its config and status allow: a
    completed run has all, a diverged one ends on the epoch whose loss was not finite, the
    others have at most all. CorruptRecord names the value."""
    status, epochs = record["status"], record["epochs"]
    for key, value in record.items():
        _check_value(Run, key, value, f"{path}: {key}")
    for ep in epochs:
        for key, value in ep.items():
            _check_value(Epoch, key, value, f"{path}: epoch {ep['epoch']}'s {key}")
    diverged = [ep["epoch"] for ep in epochs if any(ep[k] is None for k in LOSSES)]
    if diverged != ([len(epochs)] if status == "diverged" else []):
        raise CorruptRecord(f"{path}: a {status} run with a non-finite (null) loss in epochs "
                            f"{diverged or 'none'}: only a diverged run has one, in its last")
    if len(epochs) > cfg.epochs or (status == "completed" and len(epochs) != cfg.epochs):
        raise CorruptRecord(f"{path}: a {status} run with {len(epochs)} epochs, its config "
                            f"trains {cfg.epochs}")


def _check_value(cls: type, key: str, value: Any, what: str) -> None:
    """CorruptRecord unless `value` is of the type `cls` declares for `key` (untyped keys and
    the nested config and epochs are checked elsewhere), finite and within VALUE_RANGES."""
    hint = _hints(cls).get(key)
    if hint is None or key in ("config", "epochs"):
        return
    if not _of_type(value, hint):
        raise CorruptRecord(f"{what} is {value!r}, not {_type_text(hint)}")
    numbers = value.values() if isinstance(value, dict) else (value,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise CorruptRecord(f"{what} is {value!r}, not a finite number")
    rule = VALUE_RANGES.get(key)
    if rule is not None and value is not None and not rule.holds(value):
        raise CorruptRecord(f"{what} is {value!r}, must be {rule.text()}")


def _type_text(hint: Any) -> str:
    """A declared type in words: 'a number or null', 'an object whose values are each ...'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        return " or ".join(_type_text(a) for a in args)
    if origin is dict:
        inner = _type_text(args[1])
        return f"an object whose values are each {f'({inner})' if ' or ' in inner else inner}"
    return _TYPE_NAMES.get(hint, str(hint))


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _of_type(value: Any, hint: Any) -> bool:
    """`value` (read from JSON) is of the declared type `hint`: an int is a float too, a bool
    is neither."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        return any(_of_type(value, a) for a in args)
    if origin is dict:
        return isinstance(value, dict) and all(
            _of_type(k, args[0]) and _of_type(v, args[1]) for k, v in value.items())
    if hint is Any:
        return True
    if isinstance(value, bool):
        return hint is bool
    return isinstance(value, (int, float) if hint is float else hint)
