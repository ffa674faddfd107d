"""The declared analysis, locked at its first look: a plan that data cannot change afterwards.

The first time verdicts are computed from a folder that holds a finished run, its analysis
(metric, basis, collapse rule, margin, alpha, looks and cap) is written to analysis.lock.json
beside experiment.json. From then on every report, `--list` and `--until-decided` on that folder
decide with the locked plan, and a call that asks for another one (another `--max-seeds`, or a
definition whose analysis changed) is refused: moving the cap after seeing data is what let the
review's simulations inflate the error rate (lowering it to the seeds in hand) or take verdicts
back (raising it). A new analysis starts in a new folder (another --results-dir, or the old runs
archived), where it is reported on its own and its error control holds.

The lock also keeps the plan when experiment.json is deleted or damaged.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..atomic import write_json_atomic
from .declared import Analysis

LOCK_NAME = "analysis.lock.json"


class PlanChanged(Exception):
    """A call asked a locked folder for another analysis (not a ValueError: the handlers of
    bad names and values must let it through to say how to go on)."""


def lock_path(root: Path) -> Path:
    return Path(root) / LOCK_NAME


def read_lock(root: Path) -> tuple[Analysis | None, str]:
    """The locked analysis (None when not locked yet) and a problem reading it, if any."""
    path = lock_path(root)
    if not path.exists():
        return None, ""
    try:
        return Analysis.from_dict(json.loads(path.read_text())["analysis"]), ""
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"{path.name}: the locked analysis is not readable ({e})"


def lock(root: Path, analysis: Analysis) -> None:
    """Write the lock unless one exists: the first look fixes the plan."""
    if not lock_path(root).exists():
        write_json_atomic(lock_path(root), {"analysis": analysis.to_dict()})


def differences(locked: Analysis, wanted: Analysis) -> list[str]:
    """'field: locked -> wanted' for each field the two plans differ in."""
    a, b = locked.to_dict(), wanted.to_dict()
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k]]


def check(root: Path, wanted: Analysis) -> None:
    """Refuse a plan that differs from the folder's locked one, saying what and how to go on."""
    locked, problem = read_lock(root)
    if problem:
        raise PlanChanged(f"{root}: {problem}; restore it from version control, or start the "
                          "analysis afresh in another --results-dir")
    if locked is None or locked == wanted:
        return
    changed = "; ".join(differences(locked, wanted))
    cap = (f" (run with --max-seeds {locked.max_seeds}, or without it)"
           if locked.max_seeds != wanted.max_seeds else "")
    raise PlanChanged(
        f"{root}: its analysis was locked at the first look ({LOCK_NAME}) and this call asks "
        f"for another ({changed}). Changing a plan after seeing data voids its error control: "
        f"keep the locked plan{cap}, or start a new, separately reported analysis in another "
        "--results-dir (or move these runs to an archive folder first)")
