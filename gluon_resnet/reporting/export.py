"""The report's numbers as CSV files beside report.md, for pandas, R or a spreadsheet without
this package: runs.csv (one row per run and epoch) and summary.csv (the main table, one row
per group, with its verdict against the baseline)."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional

from ..atomic import write_atomic
from ..config import FIELDS
from ..analysis.groups import Group
from ..analysis.verdicts import Decided
from ..records import Run

EPOCH_NUMBERS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds",
                 "images_per_sec", "precise_test_loss", "precise_test_acc", "train_seconds",
                 "precise_seconds", "clipped_steps")
PER_PART = ("grad_norm", "act_mean", "act_std")


def _cell(value: Any) -> Any:
    """CSV cell: '' for missing or non-finite numbers, lists as a,b."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def run_rows(records: list[Run]) -> list[dict]:
    """One row per run and epoch (a run without epochs: one row, epoch empty)."""
    rows = []
    for r in records:
        settings = r.settings()
        head = {"run_id": r.run_id, **{f: settings[f] for f in FIELDS}, "status": r.status}
        for entry in r.epochs or (None,):
            value = entry.value if entry else (lambda k: None)
            # the epoch's scheduled lr is not the config's starting lr: its own column
            row = {**head, **{("epoch_lr" if k == "lr" else k): value(k) for k in EPOCH_NUMBERS}}
            for key in PER_PART:
                row.update({f"{key}.{part}": v for part, v in (value(key) or {}).items()})
            rows.append(row)
    return rows


def summary_rows(groups: list[Group], fields: list[str], table: dict[str, dict],
                 decided: list[Decided]) -> list[dict]:
    """The main table's numbers (fractions, not percent), one row per group, and each
    group's verdict against the baseline (empty for the baseline itself)."""
    verdict = {d.other.label: d.verdict for d in decided}
    rows = []
    for g in groups:
        t, v = table[g.label], verdict.get(g.label)
        final = t["final_test_acc"]
        mean_reach, reached, _ = t["epochs_to_90"]
        rows.append({"group": g.label, **{f: g.config.get(f) for f in fields},
                     "seeds": final.n, "final_test_acc_mean": final.mean,
                     "final_test_acc_std": final.std, "final_test_acc_median": final.median,
                     **{k: t[k] for k in ("last3_test_acc", "best_test_acc", "final_train_loss")},
                     "epochs_to_90_mean": mean_reach, "reached_90": reached,
                     **{k: t[k] for k in ("sec_per_epoch", "images_per_sec", "params",
                                          "completed", "diverged", "failed", "running")},
                     **_verdict_cells(v)})
    return rows


def _verdict_cells(v: Optional[Any]) -> dict:
    keys = ("kind", "n", "diff", "ci_low", "ci_high", "p_diff_holm", "p_equiv_holm",
            "seeds_to_settle")
    return {f"verdict_{k}" if k != "kind" else "verdict": getattr(v, k, None) for k in keys}


def write_csv(rows: list[dict], path: Path) -> Path:
    """rows as CSV with the union of their keys as columns, in first-seen order."""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def save(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: _cell(row.get(k)) for k in columns} for row in rows)
    write_atomic(path, save)  # a full disk leaves the previous file whole, not cut short
    return Path(path)
