"""The command that reproduces the runs in a results folder, derived from the runs on disk
and the experiment's definition (experiment.json), whatever calls made them: the seeds,
orderings and archs on disk, and a --set or --grid for every other field whose values on
disk differ from the profile's definition. Groups with different seeds (--until-decided stops
giving seeds to a decided comparison) get one command per set of seeds, so no command trains
a run that is not on disk."""
from __future__ import annotations

import math
import shlex
from typing import Any, Optional

from ..config import FIELDS, ID_DEFAULTS, as_text
from ..orderings import ORDERINGS
from ..analysis.groups import group_key
from ..records import Run

FLAGS = {"seed": "--seeds", "ordering": "--orderings", "arch": "--archs"}


def _values(records: list[Run], field: str) -> list[Any]:
    """The field's distinct values on disk, in a stable order (orderings: the paper's)."""
    seen = list(dict.fromkeys(_hashable(getattr(r.config, field)) for r in records))
    if field == "ordering":
        return sorted(seen, key=lambda o: list(ORDERINGS).index(o) if o in ORDERINGS else 99)
    try:
        return sorted(seen)
    except TypeError:  # None beside numbers: keep the order seen
        return seen


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def command(records: list[Run], info: dict) -> Optional[str]:
    """`python run_all.py ...` for these records, or None without the definition on disk."""
    base, grid = info.get("base"), info.get("grid")
    if not records or not isinstance(base, dict) or not isinstance(grid, dict):
        return None
    words = ["python", "run_all.py", "--experiment", info.get("source") or info.get("name", "?"),
             "--profile", info.get("profile", "?")]
    fields = list(FIELDS)
    for field in ("ordering", "arch", "seed"):
        values = _values(records, field)
        if field in grid or len(values) > 1 or values != [_hashable(base.get(field))]:
            words += [FLAGS[field], ",".join(map(str, values))]
    for field in fields:
        if field in FLAGS:
            continue
        values = _values(records, field)
        # a definition written before the field existed meant the field's old behaviour
        defined = [_hashable(v)
                   for v in grid.get(field, [base.get(field, ID_DEFAULTS.get(field))])]
        if sorted(map(repr, values)) == sorted(map(repr, defined)):
            continue
        if len(values) == 1 and field not in grid:
            words += ["--set", f"{field}={as_text(values[0])}"]
        else:
            words += ["--grid", f"{field}=" + ",".join(as_text(v) for v in values)]
    return shlex.join(words)


def commands(records: list[Run], info: dict) -> list[str]:
    """The commands that together reproduce exactly these records: one per set of seeds that
    groups share (one per group where a grid would add runs that are not on disk)."""
    groups: dict[str, list[Run]] = {}
    for r in records:
        groups.setdefault(group_key(r.settings()), []).append(r)
    by_seeds: dict[tuple, list[list[Run]]] = {}
    for runs in groups.values():
        seeds = tuple(sorted({r.seed for r in runs}))
        by_seeds.setdefault(seeds, []).append(runs)
    if len(by_seeds) == 1:
        one = command(records, info)
        return [one] if one else []
    out: list[str] = []
    for same_seeds in sorted(by_seeds.values(), key=len, reverse=True):
        flat = [r for runs in same_seeds for r in runs]
        fields = {k for k in FIELDS if k != "seed"}
        grid = math.prod(len(_values(flat, f)) for f in fields)
        parts = [flat] if grid == len(same_seeds) else same_seeds
        out += [c for c in (command(part, info) for part in parts) if c]
    return out
