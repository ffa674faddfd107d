"""The numbers behind the paired comparisons, one per seed, so that a reader checks "ahead in
every seed", one seed's outlier, or a fall after the warm-up in the report itself rather
than in runs.csv."""
from __future__ import annotations

import math
from typing import Callable, Optional

from ..idx import NUM_CLASSES, TRAIN_IMAGES
from ..analysis.groups import Group, seed_values
from ..records import Run
from .tables import fmt_pct, fmt_pts, md_table


def warmup_epochs(record: Run) -> int:
    """Epochs wholly in the warm-up: those recorded at warmup_lr under He et al.'s rule
    (checked at the end of each epoch), else those made only of the first warmup_steps
    optimiser steps (ceil(images / batch) steps an epoch, as train.py counts them). The epoch
    in which a warm-up of steps ends trains mostly at the full rate, so it counts after."""
    cfg = record.config
    if cfg.warmup_until_error:
        return next((i for i, e in enumerate(record.epochs)
                     if not math.isclose(e.lr or 0.0, cfg.warmup_lr)), len(record.epochs))
    return cfg.warmup_steps // steps_per_epoch(record)


def fall_after_warmup(record: Run) -> Optional[float]:
    """The largest fall of training accuracy, after the epochs wholly in the warm-up, below
    the best epoch so far (warm-up epochs included in that best): how far a run fell back
    once the full learning rate began, which its final accuracy hides once it recovers.
    None without a warm-up."""
    if not has_warmup(record):
        return None
    return _largest_fall(record, warmup_epochs(record), len(record.epochs))


def fall_in_warmup(record: Run) -> Optional[float]:
    """The largest fall of training accuracy below the best epoch so far within the epochs
    wholly in the warm-up (None without a warm-up): a run can stumble while the rate still
    rises, which the fall after it does not show."""
    if not has_warmup(record):
        return None
    return _largest_fall(record, 0, warmup_epochs(record))


def has_warmup(record: Run) -> bool:
    """Whether the run warmed up, by He et al.'s rule or by optimiser steps."""
    return bool(record.config.warmup_until_error or record.config.warmup_steps)


def _largest_fall(record: Run, start: int, stop: int) -> Optional[float]:
    """The largest fall below the best epoch so far over epochs [start, stop) (0-based)."""
    accs = [e.train_acc for e in record.epochs]
    falls = [max(a for a in accs[:i + 1] if a is not None) - accs[i]
             for i in range(start, min(stop, len(accs))) if accs[i] is not None]
    return max(falls) if falls else None


def steps_per_epoch(record: Run) -> int:
    """Optimiser steps in one epoch of the run, as train.py counts them."""
    per_class = record.config.train_per_class
    images = NUM_CLASSES * per_class if per_class else TRAIN_IMAGES
    return math.ceil(images / record.config.batch_size)


def clipped_share(record: Run) -> Optional[float]:
    """The share of the run's optimiser steps whose gradient clip_norm scaled down (None
    without clipping, or where an epoch lacks the count)."""
    counts = [e.clipped_steps for e in record.epochs]
    if not record.config.clip_norm or not counts or None in counts:
        return None
    return sum(counts) / (len(counts) * steps_per_epoch(record))


def _setting(g: Group, fields: list[str]) -> str:
    """The group's other varied settings (arch, ...), the ordering left out."""
    return " · ".join(str(g.config.get(k)) for k in fields if k != "ordering")


def _table(groups: list[Group], fields: list[str], values: dict[str, dict[int, float]],
           baseline: str, with_diffs: bool) -> list[str]:
    """Rows (setting, seed); one column per ordering, then each ordering minus the baseline."""
    orderings = list(dict.fromkeys(g.ordering for g in groups))
    if baseline in orderings:
        orderings.remove(baseline)
        orderings.insert(0, baseline)
    others = [o for o in orderings if o != baseline] if with_diffs and baseline in orderings else []
    settings = list(dict.fromkeys(_setting(g, fields) for g in groups))
    by = {(_setting(g, fields), g.ordering): values[g.label] for g in groups}
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


def _by_run(groups: list[Group], value: Callable[[Run], Optional[float]]
            ) -> dict[str, dict[int, float]]:
    """`value` of each completed run, by group label and seed; runs where it is None left out."""
    return {g.label: {r.seed: v for r in g.done if (v := value(r)) is not None}
            for g in groups}


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
    falls = _by_run(done, fall_after_warmup)
    if any(falls.values()):
        lines += ["Largest fall of training accuracy after the warm-up, in points below the "
                  "best epoch so far (the epochs the warm-up touched left out; 0: it never "
                  "fell back): how far a run fell back once the full learning rate began.", ""]
        lines += _table(done, fields, falls, baseline, with_diffs=False) + [""]
        lines += ["Largest fall of training accuracy inside the warm-up, in points below the "
                  "best epoch so far (the epochs wholly in the warm-up; 0: it only rose): a "
                  "run that stumbled while the rate still rose, which the table above leaves "
                  "out.", ""]
        lines += _table(done, fields, _by_run(done, fall_in_warmup), baseline,
                        with_diffs=False) + [""]
    clipped = _by_run(done, clipped_share)
    if any(clipped.values()):
        lines += ["Steps whose gradient was clipped (`clip_norm`), in % of the run's steps: "
                  "the same norm for every ordering acts more on those whose gradients are "
                  "longer, so this shows how far the clipping, not the ordering alone, shaped "
                  "each run (each epoch's count is in runs.csv).", ""]
        lines += _table(done, fields, clipped, baseline, with_diffs=False) + [""]
    return lines
