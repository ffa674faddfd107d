"""The locked plan of a results folder: the declared analysis, the family of comparisons it
decides, and when it was fixed; written to analysis.lock.json and checked by every command.

* The analysis (metric, basis, collapse rule, margin, alpha, looks and cap) is locked the first
  time verdicts are computed from a folder that holds a finished run: moving the cap after
  seeing data is what let the review's simulations inflate the error rate (lowering it to the
  seeds in hand) or take verdicts back (raising it).
* The family (which comparisons share the Holm correction) is fixed at the first look, the
  first time a comparison has `min_seeds` finished pairs: runs of any other setting that land
  in the folder later are reported apart, never inside the family, so adding or archiving
  runs cannot move a verdict.
* The lock is checked against the definition that wrote it (experiment.json, which also keeps
  the lock's hash) and against the runs: a lock that was edited, damaged, made after the
  first look or is missing where a look was possible is refused (LockProblem), by
  `--report-only` too. A new analysis starts in a new folder, where it is reported on its own.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..atomic import write_json_atomic
from .declared import Analysis

LOCK_NAME = "analysis.lock.json"
VERSION = 2
# The keys of a version-1 lock's analysis (before the family was locked): later fields take
# their defaults there, and must all be present in a version-2 lock.
V1_KEYS = ("metric", "baseline", "margin", "alpha", "paired", "min_seeds", "max_seeds",
           "power", "basis", "collapse", "collapse_below")
HASH_KEY = "analysis_lock"  # experiment.json's record of the lock: {"sha256": ...}


class PlanChanged(Exception):
    """A call asked a locked folder for another analysis (not a ValueError: the handlers of
    bad names and values must let it through to say how to go on)."""


class LockProblem(PlanChanged):
    """The folder's lock is missing, damaged or edited: nothing can be decided there."""


@dataclass(frozen=True)
class Member:
    """One comparison of the locked family: the variant's label when locked, and the two
    groups' identities (family_key)."""

    comparison: str
    baseline: str
    variant: str


@dataclass(frozen=True)
class Plan:
    """A folder's plan: its analysis, and, once its first look was made, the family and the
    first look's date (None before)."""

    analysis: Analysis
    locked: Optional[str] = None
    first_look: Optional[str] = None
    family: Optional[tuple[Member, ...]] = None
    version: int = VERSION

    def to_dict(self) -> dict:
        return {"version": self.version, "analysis": self.analysis.to_dict(),
                "locked": self.locked, "first_look": self.first_look,
                "family": None if self.family is None
                else [dataclasses.asdict(m) for m in self.family]}

    def in_family(self, baseline: str, variant: str) -> bool:
        """Whether the comparison of these two groups (family_key) belongs to the family
        (every comparison does until the family is fixed)."""
        return self.family is None or any(
            m.baseline == baseline and m.variant == variant for m in self.family)


def family_key(config: dict) -> str:
    """A group's identity in the lock: a hash of its config without the seed, fields at their
    id defaults left out (as in run ids), so fields added later do not change it."""
    from ..config import ID_DEFAULTS

    shared = {k: v for k, v in config.items()
              if k != "seed" and not (k in ID_DEFAULTS and v == ID_DEFAULTS[k])}
    return hashlib.sha256(json.dumps(shared, sort_keys=True).encode()).hexdigest()[:12]


def lock_path(root: Path) -> Path:
    return Path(root) / LOCK_NAME


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _problem(path: Path, what: str) -> LockProblem:
    return LockProblem(f"{path}: {what}. Restore it from version control (git checkout -- "
                       f"{path}), or declare a new analysis in a new folder (another "
                       "--results-dir)")


def _analysis(path: Path, raw: object, version: int) -> Analysis:
    if not isinstance(raw, dict):
        raise _problem(path, "field analysis is not an object")
    names = [f.name for f in dataclasses.fields(Analysis)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise _problem(path, f"field analysis.{unknown[0]} is unknown")
    missing = [k for k in (V1_KEYS if version == 1 else names) if k not in raw]
    if missing:
        raise _problem(path, f"field analysis.{missing[0]} is missing")
    try:
        return Analysis.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise _problem(path, f"field analysis: {e}") from None


def _members(path: Path, raw: object) -> Optional[tuple[Member, ...]]:
    if raw is None:
        return None
    keys = [f.name for f in dataclasses.fields(Member)]
    if not isinstance(raw, list) or not all(isinstance(m, dict) and sorted(m) == sorted(keys)
                                            and all(isinstance(m[k], str) for k in keys)
                                            for m in raw):
        raise _problem(path, f"field family is not a list of {{{', '.join(keys)}}}")
    return tuple(Member(**m) for m in raw)


def read_plan(root: Path) -> Optional[Plan]:
    """The folder's locked plan (None when there is no lock file); LockProblem naming the
    file and the field when it is not a lock this code wrote."""
    path = lock_path(root)
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _problem(path, f"not readable JSON ({e})") from None
    if not isinstance(raw, dict) or "analysis" not in raw:
        raise _problem(path, "field analysis is missing")
    version = raw.get("version", 1)
    if version not in (1, VERSION):
        raise _problem(path, f"field version is {version!r}, this code reads 1 and {VERSION}")
    if version == VERSION:
        missing = [k for k in ("locked", "first_look", "family") if k not in raw]
        if missing:
            raise _problem(path, f"field {missing[0]} is missing")
        for k in ("locked", "first_look"):
            if raw[k] is not None and not _is_time(raw[k]):
                raise _problem(path, f"field {k} is not a date ({raw[k]!r})")
    return Plan(_analysis(path, raw["analysis"], version), raw.get("locked"),
                raw.get("first_look"), _members(path, raw.get("family")), version)


def _is_time(value: object) -> bool:
    try:
        datetime.datetime.fromisoformat(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


def digest(root: Path) -> Optional[str]:
    """sha256 of the lock file's bytes (None without one)."""
    path = lock_path(root)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def write_plan(store, plan: Plan) -> None:
    """Write the lock and record its hash in experiment.json (atomically, each)."""
    write_json_atomic(lock_path(store.root), plan.to_dict())
    info, _ = store.read_experiment()
    info[HASH_KEY] = {"sha256": digest(store.root)}
    store.write_experiment(info)


def differences(locked: Analysis, wanted: Analysis) -> list[str]:
    """'field: locked -> wanted' for each field the two plans differ in."""
    a, b = locked.to_dict(), wanted.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k]]


def check_against_definition(store, plan: Plan) -> None:
    """The lock against experiment.json: the declared analysis, then the hash recorded when
    the lock was written. LockProblem naming the field where they differ."""
    path = lock_path(store.root)
    info, _ = store.read_experiment()
    declared = info.get("analysis")
    if isinstance(declared, dict):
        try:
            wanted = Analysis.from_dict(declared)
        except (TypeError, ValueError) as e:
            raise _problem(store.experiment_path, f"field analysis: {e}") from None
        changed = differences(plan.analysis, wanted)
        if changed:
            raise _problem(path, f"field analysis.{changed[0].split(':')[0]} differs from the "
                                 f"analysis experiment.json declares ({changed[0]})")
    recorded = info.get(HASH_KEY)
    recorded = recorded.get("sha256") if isinstance(recorded, dict) else None
    if recorded and recorded != digest(store.root):
        raise _problem(path, "its contents differ from those written at the lock (the hash "
                             f"that experiment.json records under {HASH_KEY})")


def check_present(store, look_possible: Optional[str]) -> None:
    """A folder without a lock: refused where the runs show that it had one (experiment.json
    records a lock's hash) or that a look was possible (`look_possible`: when the first
    comparison reached its first look, from the records)."""
    info, _ = store.read_experiment()
    path = lock_path(store.root)
    if info.get(HASH_KEY):
        raise _problem(path, "is missing, though experiment.json records that it was written")
    if look_possible:
        raise _problem(path, f"is missing, though its runs made a first look possible on "
                             f"{look_possible} (a plan is locked before its first look)")


def check_locked_before(store, plan: Plan, look_possible: Optional[str]) -> None:
    """A lock written after the first look (a plan made to fit the data) is refused."""
    if plan.locked and look_possible and as_time(plan.locked) > as_time(look_possible):
        raise _problem(lock_path(store.root),
                       f"field locked ({plan.locked}) is after the first look its runs made "
                       f"possible ({look_possible}): the plan was written after the data")


def as_time(value: str) -> datetime.datetime:
    """An ISO 8601 time, in UTC where it names no zone (records and locks alike)."""
    t = datetime.datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


def check_wanted(root: Path, plan: Optional[Plan], wanted: Analysis) -> None:
    """Refuse a call's plan that differs from the folder's locked one, saying how to go on."""
    if plan is None or plan.analysis == wanted:
        return
    locked = plan.analysis
    changed = "; ".join(differences(locked, wanted))
    cap = (f" (run with --max-seeds {locked.max_seeds}, or without it)"
           if locked.max_seeds != wanted.max_seeds else "")
    raise PlanChanged(
        f"{root}: its analysis was locked at the first look ({LOCK_NAME}) and this call asks "
        f"for another ({changed}). Changing a plan after seeing data voids its error control: "
        f"keep the locked plan{cap}, or start a new, separately reported analysis in another "
        "--results-dir (or move these runs to an archive folder first)")
