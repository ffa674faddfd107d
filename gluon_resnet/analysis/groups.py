"""Run records -> groups of seeds and the per-run numbers a report summarises."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import stats
from ..orderings import ORDERINGS
from ..records import Run

PAPER_ORDER = list(ORDERINGS)  # (a) to (e): the order of He et al.'s Fig. 4
REACH = 0.90  # "epochs to reach 90 % test accuracy"
LAST_K = 3  # the steadier statistic of docs/DESIGN.md section 3: mean of the last three epochs


@dataclass
class Group:
    """Runs with identical config except the seed."""

    config: dict  # the shared config, seed removed
    label: str
    runs: list[Run]

    def with_status(self, status: str) -> list[Run]:
        return [r for r in self.runs if r.status == status]

    @property
    def ordering(self) -> str:
        return self.config["ordering"]

    @property
    def done(self) -> list[Run]:
        """Completed runs: the only ones statistics are computed over."""
        return self.with_status("completed")


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _accuracies(record: Run, key: str, prefix: str) -> dict[str, float]:
    """final, last-3 mean and best of one test-accuracy series; NaN where it is missing."""
    series = record.series(key)
    acc = stats.finite(series)
    last = series[-1] if series else None
    return {f"final_{prefix}test_acc": _num(last),
            f"last3_{prefix}test_acc": stats.summarize(series[-LAST_K:]).mean,
            f"best_{prefix}test_acc": float(acc.max()) if acc.size else float("nan")}


def run_metrics(record: Run) -> dict[str, float]:
    """The per-run numbers the main table summarises over seeds; the precise ones are NaN
    for a run recorded before precise evaluation existed (or with it switched off)."""
    last = record.last
    reached = [e.epoch for e in record.epochs if _num(e.test_acc) >= REACH]
    return {**_accuracies(record, "test_acc", ""),
            **_accuracies(record, "precise_test_acc", "precise_"),
            "final_train_loss": _num(last.train_loss if last else None),
            "epochs_to_90": float(reached[0]) if reached else float("nan"),
            "sec_per_epoch": stats.summarize(record.series("seconds")).mean,
            "images_per_sec": stats.summarize(record.series("images_per_sec")).mean}


METRICS = ("final_test_acc", "last3_test_acc", "best_test_acc", "final_precise_test_acc",
           "last3_precise_test_acc", "best_precise_test_acc", "final_train_loss",
           "epochs_to_90", "sec_per_epoch", "images_per_sec")  # the keys of run_metrics
# A test-accuracy metric read with precise BatchNorm statistics -> the same read with the
# running statistics (the report sets the two side by side).
RUNNING_OF = {f"{k}_precise_test_acc": f"{k}_test_acc" for k in ("final", "last3", "best")}


def has_precise(record: Run) -> bool:
    """Whether every epoch of the run was also tested with precise BatchNorm statistics."""
    return bool(record.epochs) and all(e.precise_test_acc is not None for e in record.epochs)


def metric_values(group: Group, key: str) -> list[float]:
    """One run_metrics value per completed run of the group."""
    return [run_metrics(r)[key] for r in group.done]


def seed_values(group: Group, key: str) -> dict[int, float]:
    """seed -> run_metrics value, completed runs only: what a paired comparison matches on."""
    return {r.seed: run_metrics(r)[key] for r in group.done}


def outcomes(group: Group, key: str) -> dict[int, float]:
    """seed -> run_metrics value of every finished run, a diverged one as NaN: what the
    declared analysis decides on (its collapse rule says what a diverged run counts as)."""
    done = group.with_status("completed") + group.with_status("diverged")
    return {r.seed: run_metrics(r)[key] if r.status == "completed" else float("nan")
            for r in done}


def paired_differences(base: Group, other: Group, key: str) -> dict[int, float]:
    """seed -> other minus base on a run_metrics value, over the seeds both completed (in
    seed order): the values every paired view of a comparison works on."""
    a, b = seed_values(base, key), seed_values(other, key)
    return {s: b[s] - a[s] for s in sorted(a.keys() & b.keys())}


def training_hours(records: list[Run]) -> float:
    """Compute spent: every recorded epoch's seconds, over every run (failed ones too)."""
    return sum(e.seconds or 0.0 for r in records for e in r.epochs) / 3600


def shared_config(record: Run) -> dict:
    """The run's config without its seed: what its group shares."""
    return {k: v for k, v in record.settings().items() if k != "seed"}


def canon(cfg: Any) -> str:
    """Canonical JSON: equal configs (or values) give equal strings."""
    return json.dumps(cfg, sort_keys=True)


def group_key(config: dict) -> str:
    """A group's identity: its config without the seed (a run's or a Group's), canonical."""
    return canon({k: v for k, v in config.items() if k != "seed"})


def varying_fields(records: list[Run]) -> list[str]:
    """Config fields (seed aside) whose value differs between runs; ordering always first."""
    keys = sorted({k for r in records for k in shared_config(r)})
    varied = [k for k in keys if len({canon(shared_config(r).get(k)) for r in records}) > 1]
    return ["ordering"] + [k for k in varied if k != "ordering"]


def _label(cfg: dict, fields: list[str]) -> str:
    parts = [str(cfg.get(k)) if k in ("ordering", "arch") else f"{k}={cfg.get(k)}"
             for k in fields]
    return " · ".join(parts)


def _natural(value: Any) -> tuple:
    """Sort key: paper order for orderings, then numbers, then names (cifar20 < cifar110)."""
    if value in PAPER_ORDER:
        return (0, PAPER_ORDER.index(value), ())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, value, ())
    return (2, 0, tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                        for t in re.findall(r"\d+|\D+", str(value))))


def group_runs(records: list[Run]) -> list[Group]:
    """Groups in a stable, readable order (by the varying fields)."""
    fields = varying_fields(records)
    by_key: dict[str, list[Run]] = {}
    for r in records:
        by_key.setdefault(group_key(r.settings()), []).append(r)
    groups = [Group(shared_config(rs[0]), _label(shared_config(rs[0]), fields),
                    sorted(rs, key=lambda r: r.seed))
              for rs in by_key.values()]
    return sorted(groups, key=lambda g: [_natural(g.config.get(k)) for k in fields])
