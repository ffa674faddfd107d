"""Numbers published elsewhere (experiment.json "reference", e.g. the seed notebook's printed
accuracies) beside ours: their level against ours, and whether one run per variant, as they
read it, could have decided the comparison at the spread measured here."""
from __future__ import annotations

import math
from typing import Optional

from scipy import stats as sps

from ..analysis import stats
from ..analysis.groups import Group, metric_values, paired_differences
from ..analysis.verdicts import Decided
from .tables import fmt_pct, fmt_pts, md_table


def section_reference(decided: list[Decided], info: dict) -> list[str]:
    """Numbers published elsewhere (experiment.json "reference") beside ours, on their metric
    and on the declared one, whether ours reach their level, and whether one run per variant
    could have decided the comparison, judged by the spread we measured."""
    ref = info.get("reference") or {}
    values, metric = ref.get("values") or {}, ref.get("metric", "final_test_acc")
    declared = (info.get("analysis") or {}).get("metric", metric)
    if not values or not decided:
        return []
    metrics = [metric] + ([declared] if declared != metric else [])
    lines = [f"## Beside {ref.get('source', 'the published numbers')}", "",
             f"Their {metric} next to ours (mean ± std over our completed seeds)"
             + (f", on the same metric and on the declared one ({declared})" if len(metrics) > 1
                else ", same metric") + ".", ""]
    groups: dict[str, Group] = {}
    for d in decided:
        groups.setdefault(d.base.ordering, d.base)
        groups[d.other.ordering] = d.other
    rows, levels = [], []
    for ordering, value in values.items():
        g = groups.get(ordering)
        cells = [_ours(g, m) for m in metrics]
        rows.append([ordering, fmt_pct(value), *[c for c, _ in cells]])
        mean = cells[-1][1]
        if mean is not None:
            levels.append(f"{ordering} {fmt_pct(mean)} % against their {fmt_pct(value)} % "
                          f"({fmt_pts(mean - value)} points)")
    lines += md_table(["ordering", "theirs %", *[f"ours, {m} %" for m in metrics]], rows)
    if levels:
        lines += ["", f"Our level on the declared metric ({declared}): " + "; ".join(levels)
                  + "." + (f" Why they may differ, said before the runs: {ref['differs']}"
                           if ref.get("differs") else "")]
    return lines + [""] + one_run_sentences(decided, info) + [""]


def _ours(g: Optional[Group], metric: str) -> tuple[str, Optional[float]]:
    """A group's cell on one metric (mean ± std, seeds) and its mean (None: no run has it)."""
    ours = stats.summarize(metric_values(g, metric)) if g else None
    if not ours or not ours.n:
        return "n/a", None
    return f"{fmt_pct(ours.mean)} ± {fmt_pct(ours.std)} ({ours.n} seeds)", ours.mean


def one_run_sentences(decided: list[Decided], info: dict) -> list[str]:
    """For each comparison whose two sides have published numbers (experiment.json
    "reference"): whether one run per variant could have decided it."""
    ref = info.get("reference") or {}
    values, metric = ref.get("values") or {}, ref.get("metric", "final_test_acc")
    out = []
    for d in decided:
        a, b = values.get(d.base.ordering), values.get(d.other.ordering)
        if a is not None and b is not None:
            out.append(_one_run_could_decide(d, b - a, metric))
    return out


def _one_run_could_decide(d: Decided, theirs: float, metric: str) -> str:
    """Plainly: with one run each no test is possible; with the seed-to-seed spread of the
    difference measured here, how often would one pair show a gap this large by chance."""
    diffs = list(paired_differences(d.base, d.other, metric).values())
    head = (f"{d.other.label} against {d.base.label}: they read a difference of "
            f"{fmt_pts(theirs)} points from one run each, where no test is possible (one run "
            "has no spread to compare with).")
    if len(diffs) < 3:
        return head + f" Too few paired seeds here ({len(diffs)}) to say how large chance is."
    sd = stats.summarize(diffs).std
    chance = 2 * sps.norm.sf(abs(theirs) / sd) if sd > 0 else float("nan")
    verdict = ("could not have decided it" if chance > 0.05 else "would rarely show by chance")
    return (head + f" Here the {metric} difference of one seed varies with sd "
            f"{fmt_pct(sd)} points over {len(diffs)} seeds, so with no true difference one "
            f"pair shows a gap of {abs(theirs) * 100:.2f} points or more "
            f"{100 * chance:.0f} % of the time (normal approximation): one run per variant "
            f"{verdict}.") if not math.isnan(chance) else head
