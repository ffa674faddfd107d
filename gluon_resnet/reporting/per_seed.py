"""The numbers behind the paired comparisons, one per seed, so that a reader checks "ahead in
every seed", one seed's outlier, or a fall after the warm-up in the report itself rather
than in runs.csv."""
from __future__ import annotations

import math
from typing import Optional

from ..config import ID_DEFAULTS
from .groups import Group, seed_values
from .tables import fmt_pct, fmt_pts, md_table


def low_after_warmup(record: dict) -> Optional[float]:
    """The lowest training accuracy once He et al.'s warm-up rule (warmup_until_error) let
    the full rate begin, or None for a run without that rule. It checks the error at the end
    of each epoch, so the epochs recorded at warmup_lr are the warm-up and are skipped: a run
    that learned in the warm-up and fell back at the full rate shows that fall here, which
    its final accuracy hides once it recovers. (A fixed warmup_steps ends inside an epoch
    whose record cannot separate the two, so those runs get no value.)"""
    cfg = record["config"]
    if not cfg.get("warmup_until_error"):
        return None
    epochs = list(record["epochs"])
    while epochs and math.isclose(epochs[0].get("lr") or 0.0, cfg.get("warmup_lr", ID_DEFAULTS["warmup_lr"])):
        epochs.pop(0)
    accs = [e["train_acc"] for e in epochs if e.get("train_acc") is not None]
    return min(accs) if accs else None


def _setting(g: Group, fields: list[str]) -> str:
    """The group's other varied settings (arch, ...), the ordering left out."""
    return " · ".join(str(g.config.get(k)) for k in fields if k != "ordering")


def _table(groups: list[Group], fields: list[str], values: dict[str, dict[int, float]],
           baseline: str, with_diffs: bool) -> list[str]:
    """Rows (setting, seed); one column per ordering, then each ordering minus the baseline."""
    orderings = list(dict.fromkeys(g.config.get("ordering") for g in groups))
    if baseline in orderings:
        orderings.remove(baseline)
        orderings.insert(0, baseline)
    others = [o for o in orderings if o != baseline] if with_diffs and baseline in orderings else []
    settings = list(dict.fromkeys(_setting(g, fields) for g in groups))
    by = {(_setting(g, fields), g.config.get("ordering")): values[g.label] for g in groups}
    shown = [k for k in fields if k != "ordering"]
    rows = []
    for setting in settings:
        cells = {o: by.get((setting, o), {}) for o in orderings}
        for seed in sorted({s for v in cells.values() for s in v}):
            row = ([setting] if shown else []) + [str(seed)]
            row += [fmt_pct(cells[o].get(seed)) for o in orderings]
            row += [fmt_pts(cells[o][seed] - cells[baseline][seed])
                    if seed in cells[o] and seed in cells[baseline] else "n/a" for o in others]
            rows.append(row)
    header = ([" · ".join(shown)] if shown else []) + ["seed"] + orderings
    return md_table(header + [f"{o} - {baseline}" for o in others], rows)


def section_per_seed(groups: list[Group], fields: list[str], metric: str, baseline: str
                     ) -> list[str]:
    """The primary metric of every completed run by seed, with the paired differences; and,
    where the runs had a warm-up, each run's lowest training accuracy after it."""
    done = [g for g in groups if g.done]
    if not done:
        return []
    values = {g.label: seed_values(g, metric) for g in done}
    lines = ["## Per seed", "",
             f"{metric} of each completed run in %, by seed, and each ordering minus "
             f"{baseline} in points (same seed: same data order and initial weights). These "
             "are the values the paired test above works on.", ""]
    lines += _table(done, fields, values, baseline, with_diffs=True) + [""]
    lows = {g.label: {int(r["config"].get("seed", 0)): low_after_warmup(r) for r in g.done}
            for g in done}
    if any(v is not None for seeds in lows.values() for v in seeds.values()):
        lows = {k: {s: v for s, v in seeds.items() if v is not None} for k, seeds in lows.items()}
        lines += ["Lowest training accuracy after the warm-up, in % (the epochs trained wholly "
                  "at the warm-up rate left out): how far a run fell back once the full "
                  "learning rate began.", ""]
        lines += _table(done, fields, lows, baseline, with_diffs=False) + [""]
    return lines
