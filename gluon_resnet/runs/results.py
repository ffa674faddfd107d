"""What the Python API (api.py) hands back: one experiment x profile's results folder, read
as its report reads it. The tables are the files the report writes beside report.md
(summary.csv, runs.csv), the per-seed values and the verdicts come from the functions the
report calls, and the figures are the report's own PNG files."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import RunStore

FIGURE = re.compile(r"^!\[(?P<name>[^\]]*)\]\((?P<path>[^)]+\.png)\)", re.MULTILINE)


@dataclass(frozen=True)
class Results:
    """A results folder after a call; every table is read from disk when asked for, so it
    shows the folder as it is now (another process may be adding runs)."""

    name: str
    profile: str
    folder: Path
    ok: bool = True  # False: a run failed or was lost, or the report could not be written

    @property
    def report(self) -> Path:
        return self.folder / "report.md"

    @property
    def summary(self) -> Any:
        """summary.csv: the report's main table, one row per group, with its verdict."""
        return self._csv("summary.csv")

    @property
    def runs(self) -> Any:
        """runs.csv: one row per run and epoch, every config field and per-epoch number."""
        return self._csv("runs.csv")

    @property
    def per_seed(self) -> Any:
        """The report's "Per seed" table: the primary metric of every completed run by seed
        (rows: the other varied settings, then the seed; columns: the orderings), and each
        ordering minus the baseline (same seed: the paired differences the verdicts use)."""
        import pandas as pd

        from ..analysis.groups import group_runs, seed_values, varying_fields
        from ..analysis.verdicts import store_plan

        store = RunStore(self.folder)
        records = store.records()
        analysis = store_plan(store, records, lock=False)[0].analysis
        others = [f for f in varying_fields(records) if f != "ordering"]
        rows = [{**{f: g.config.get(f) for f in others}, "ordering": g.ordering, "seed": seed,
                 "value": value}
                for g in group_runs(records)
                for seed, value in seed_values(g, analysis.metric).items()]
        if not rows:
            return pd.DataFrame()
        wide = pd.DataFrame(rows).pivot_table(index=others + ["seed"], columns="ordering",
                                              values="value", sort=False)
        wide.columns.name = analysis.metric
        if analysis.baseline in wide:
            order = [analysis.baseline] + [o for o in wide.columns if o != analysis.baseline]
            wide = wide[order]
            for o in order[1:]:
                wide[f"{o} - {analysis.baseline}"] = wide[o] - wide[analysis.baseline]
        return wide

    @property
    def verdicts(self) -> Any:
        """Each comparison with the baseline under the folder's locked plan: the verdict, its
        numbers (metric units: fractions) and the report's sentence."""
        import pandas as pd

        from ..analysis.verdicts import store_verdicts

        found = store_verdicts(RunStore(self.folder), lock=False)
        analysis = found.analysis
        return pd.DataFrame([
            {"comparison": d.other.label, "baseline": d.base.label, "verdict": d.verdict.kind,
             "seeds": d.verdict.n, "look": d.look, "final": d.frozen, "diff": d.verdict.diff,
             "ci_low": d.verdict.ci_low, "ci_high": d.verdict.ci_high,
             "sentence": d.verdict.sentence(analysis)}
            for d in found.decided],
            columns=["comparison", "baseline", "verdict", "seeds", "look", "final", "diff",
                     "ci_low", "ci_high", "sentence"])

    @property
    def figures(self) -> dict[str, Path]:
        """The report's figures, by name (test_acc, train_loss, paired_differences, ...)."""
        if not self.report.exists():
            return {}
        return {m["name"]: self.folder / m["path"]
                for m in FIGURE.finditer(self.report.read_text())}

    def _csv(self, name: str) -> Any:
        import pandas as pd

        path = self.folder / name
        return pd.read_csv(path) if path.exists() else pd.DataFrame()
