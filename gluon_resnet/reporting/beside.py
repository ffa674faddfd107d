"""Another study's runs beside this one's, seed by seed (experiment.json "beside"): the same
orderings on the same seeds under one changed setting, described and never tested, since a
declared comparison is between orderings within one study."""
from __future__ import annotations

from pathlib import Path
from statistics import median

from ..analysis.groups import Group, canon, group_runs, seed_values
from ..names import is_folder_name
from ..store import RunStore
from .tables import fmt_pct, fmt_pts, md_table


def section_beside(groups: list[Group], exp: dict, root: Path, metric: str) -> list[str]:
    """Each ordering here minus the same ordering in the "beside" experiment's folder of the
    same profile, on `metric`, per seed they share; nothing when the experiment names none."""
    other = exp.get("beside")
    if not other:
        return []
    if not is_folder_name(other):  # experiment.json is read from disk: never a path out
        return ["## Beside another study", "", f"experiment.json names {other!r} as the study "
                "to set beside this one, which is not an experiment's name: left out.", ""]
    there = Path(root).parent.parent / other / Path(root).name
    head = [f"## Beside `{other}` (described, not decided)", ""]
    theirs = {g.ordering: g for g in group_runs(RunStore(there).records())}
    pairs = [(g, theirs[g.ordering]) for g in groups if g.ordering in theirs]
    if not pairs:
        return head + [f"No completed run of `{other}` ({Path(root).name} profile) shares an "
                       f"ordering with this study: train it with `python run_all.py "
                       f"--experiment {other} --profile {Path(root).name}`.", ""]
    lines = head + [
        f"Each ordering here minus the same ordering in [`{other}`'s {Path(root).name} profile]"
        f"(../../{other}/{Path(root).name}/report.md), on {metric} in points, seed by seed "
        "(same seed: same data order and the same initial weights in every layer the two "
        "nets share). No test and no verdict: this study's declared comparison is between "
        "orderings within it, so no claim reads from this table.", ""]
    rows, seeds = [], sorted({s for g, t in pairs for s in _shared(g, t, metric)})
    for g, t in pairs:
        diffs = _shared(g, t, metric)
        changed = "; ".join(f"`{k}` {g.config.get(k)} here, {t.config.get(k)} there"
                            for k in sorted(set(g.config) | set(t.config))
                            if canon(g.config.get(k)) != canon(t.config.get(k)))
        rows.append([g.ordering, changed or "none", str(len(diffs))] + (
            [fmt_pts(median(diffs.values())),
             f"{sum(d > 0 for d in diffs.values())} / {sum(d < 0 for d in diffs.values())} "
             f"of {len(diffs)}",
             f"{fmt_pts(min(diffs.values()))} to {fmt_pts(max(diffs.values()))}"]
            if diffs else ["n/a"] * 3))
    lines += md_table(["ordering", "settings that differ", "seeds in both",
                       "median difference (points)", "ahead / behind here (seeds)",
                       "smallest to largest (points)"], rows)
    per_seed = [[str(s)] + [cell for g, t in pairs for cell in _seed_cells(g, t, s, metric)]
                for s in seeds]
    if per_seed:
        header = ["seed"] + [h for g, _ in pairs for h in (
            f"{g.ordering} here %", f"{g.ordering} in {other} %", f"{g.ordering} difference")]
        lines += [""] + md_table(header, per_seed)
    return lines + [""]


def _shared(g: Group, t: Group, metric: str) -> dict[int, float]:
    """seed -> this study's value minus the other's, for the seeds both completed."""
    ours, theirs = seed_values(g, metric), seed_values(t, metric)
    return {s: ours[s] - theirs[s] for s in sorted(set(ours) & set(theirs))}


def _seed_cells(g: Group, t: Group, seed: int, metric: str) -> list[str]:
    """One seed's value here, there and their difference ('n/a' where a side has none)."""
    a, b = seed_values(g, metric).get(seed), seed_values(t, metric).get(seed)
    return [fmt_pct(a) if a is not None else "n/a", fmt_pct(b) if b is not None else "n/a",
            fmt_pts(a - b) if a is not None and b is not None else "n/a"]
