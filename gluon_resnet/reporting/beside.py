"""Another study's runs beside this one's, seed by seed (experiment.json "beside"): the same
orderings on the same seeds under one changed setting, described and never tested, since a
declared comparison is between orderings within one study."""
from __future__ import annotations

from pathlib import Path
from statistics import median

from ..analysis.groups import Group, canon, group_runs, paired_differences, seed_values
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
    profile = Path(root).name
    head = [f"## Beside `{other}` (described, not decided)", ""]
    theirs = {g.ordering: g for g in group_runs(RunStore(Path(root).parent.parent / other
                                                         / profile).records())}
    pairs = [(g, theirs[g.ordering]) for g in groups if g.ordering in theirs]
    if not pairs:
        return head + [f"No completed run of `{other}` ({profile} profile) shares an "
                       f"ordering with this study: train it with `python run_all.py "
                       f"--experiment {other} --profile {profile}`.", ""]
    lines = head + [
        f"Each ordering here minus the same ordering in [`{other}`'s {profile} profile]"
        f"(../../{other}/{profile}/report.md), on {metric} in points, seed by seed "
        "(same seed: same data order and the same initial weights in every layer the two "
        "nets share). No test and no verdict: this study's declared comparison is between "
        "orderings within it, so no claim reads from this table.", ""]
    # each side's values once: (ordering, here, there, here minus there), by seed
    sides = [(g.ordering, seed_values(g, metric), seed_values(t, metric),
              paired_differences(t, g, metric)) for g, t in pairs]
    rows = []
    for (g, t), (ordering, _, _, diffs) in zip(pairs, sides):
        changed = "; ".join(f"`{k}` {g.config.get(k)} here, {t.config.get(k)} there"
                            for k in sorted(set(g.config) | set(t.config))
                            if canon(g.config.get(k)) != canon(t.config.get(k)))
        d = list(diffs.values())
        rows.append([ordering, changed or "none", str(len(d))] + (
            [fmt_pts(median(d)), f"{sum(x > 0 for x in d)} / {sum(x < 0 for x in d)} of {len(d)}",
             f"{fmt_pts(min(d))} to {fmt_pts(max(d))}"] if d else ["n/a"] * 3))
    lines += md_table(["ordering", "settings that differ", "seeds in both",
                       "median difference (points)", "ahead / behind here (seeds)",
                       "smallest to largest (points)"], rows)
    seeds = sorted({s for *_, diffs in sides for s in diffs})
    if seeds:  # fmt_pct and fmt_pts say n/a where a side has no value for the seed
        header = ["seed"] + [h for ordering, *_ in sides for h in (
            f"{ordering} here %", f"{ordering} in {other} %", f"{ordering} difference")]
        lines += [""] + md_table(header, [[str(s)] + [
            cell for _, here, there, diffs in sides
            for cell in (fmt_pct(here.get(s)), fmt_pct(there.get(s)), fmt_pts(diffs.get(s)))]
            for s in seeds])
    return lines + [""]
