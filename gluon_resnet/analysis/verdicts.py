"""A results folder's verdicts: its locked plan (plan.py) applied to its run records, one look
at a time.

A look is a pure function of the plan, the runs and the seeds in hand: after round r of
`--until-decided` every group that was still deciding has its first r seeds, so replaying the
looks r = 1, 2, ... over the records on disk gives every look the loop made. A comparison's
verdict is final at the look that reached it (`replay`): its groups get no more seeds, and
later looks of other comparisons, which can lower its Holm-adjusted p, do not move it
(freezing only removes later rejections, so the error control holds). One Holm family covers
the comparisons locked at the first look; a comparison outside it is reported apart.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ..orderings import DEFAULT_BASELINE
from ..records import Run
from ..store import RunStore
from . import plan as P
from .decide import Verdict, decide_pairs
from .declared import Analysis
from .groups import Group, canon, group_runs, outcomes
from .looks import Looks, Outcomes, at_round, replay, rounds, settled_groups  # noqa: F401


@dataclass(frozen=True)
class Decided:
    """One comparison: the baseline's group, the variant's, the verdict, and the look it is
    read at (the number of rounds of seeds; final where `frozen`)."""

    base: Group
    other: Group
    verdict: Verdict
    look: int = 0
    frozen: bool = False


@dataclass(frozen=True)
class Verdicts:
    """What a folder's plan decides: the locked family's comparisons, the comparisons outside
    the family (descriptive only), and where the plan came from."""

    plan: P.Plan
    source: str
    decided: list[Decided]
    outside: list[tuple[Group, Group]]
    # a plan on the mean basis: the same family, looks and data on the median basis (sign
    # test), for the report's sensitivity lines; empty otherwise
    median_view: list[Decided] = dataclasses.field(default_factory=list)

    @property
    def analysis(self) -> Analysis:
        return self.plan.analysis


# ---- the groups of a folder ----

def baseline_pairs(groups: list[Group], baseline: str) -> list[tuple[Group, Group]]:
    """(baseline group, other group) pairs that differ in the ordering only."""
    index = {canon({**g.config, "ordering": None}): g
             for g in groups if g.ordering == baseline}
    return [(index[canon({**g.config, "ordering": None})], g) for g in groups
            if g.ordering != baseline
            and canon({**g.config, "ordering": None}) in index]


def decide_groups(groups: list[Group], analysis: Analysis, extras: bool = True,
                  plan: Optional[P.Plan] = None) -> tuple[list[Decided], list[tuple[Group, Group]]]:
    """The verdicts of the family's comparisons (every baseline pair until a family is
    locked), looks replayed; and the pairs outside the family."""
    plan = plan or P.Plan(analysis)
    pairs, outside = [], []
    for base, other in baseline_pairs(groups, analysis.baseline):
        member = plan.in_family(P.family_key(base.config), P.family_key(other.config))
        (pairs if member else outside).append((base, other))
    values = [(other.label, outcomes(base, analysis.metric), outcomes(other, analysis.metric))
              for base, other in pairs]
    decided = [Decided(base, other, v, r, frozen) for (base, other), (v, r, frozen)
               in zip(pairs, replay(values, analysis, extras), strict=True)]
    return decided, outside


def first_look_time(groups: list[Group], analysis: Analysis) -> Optional[str]:
    """When the runs first made a look possible: the earliest time a baseline pair of groups
    had min_seeds seeds finished on both sides (from the records' finish times)."""
    times = []
    for base, other in baseline_pairs(groups, analysis.baseline):
        done_a = {r.seed: r.finished for r in base.runs if r.done and r.finished}
        done_b = {r.seed: r.finished for r in other.runs if r.done and r.finished}
        pairs = sorted(max(P.as_time(done_a[s]), P.as_time(done_b[s]))
                       for s in done_a.keys() & done_b.keys())
        if len(pairs) >= analysis.min_seeds:
            times.append(pairs[analysis.min_seeds - 1])
    return min(times).isoformat(timespec="seconds") if times else None


def family_at(groups: list[Group], analysis: Analysis, when: str) -> tuple[P.Member, ...]:
    """The comparisons whose two groups had a finished run at time `when` (the first look)."""
    limit = P.as_time(when)

    def started(g: Group) -> bool:
        return any(r.done and r.finished and P.as_time(r.finished) <= limit for r in g.runs)
    return tuple(P.Member(other.label, P.family_key(base.config), P.family_key(other.config))
                 for base, other in baseline_pairs(groups, analysis.baseline)
                 if started(base) and started(other))


# ---- a folder: its plan checked, locked and applied ----

def analysis_of(info: dict) -> tuple[Analysis, str]:
    """The analysis declared in experiment.json, and where it came from."""
    if isinstance(info.get("analysis"), dict):
        return Analysis.from_dict(info["analysis"]), "declared by the experiment"
    baseline = info.get("baseline") or DEFAULT_BASELINE
    return Analysis(baseline=baseline), "not declared in experiment.json: the defaults"


def store_plan(store: RunStore, records: list[Run], wanted: Optional[Analysis] = None,
               lock: bool = True) -> tuple[P.Plan, str]:
    """The folder's plan, checked against its definition and its runs (LockProblem where the
    lock is damaged, edited, late or missing); locked at the first finished run, its family
    fixed at the first look (`lock`: write what is due)."""
    plan = P.read_plan(store.root)
    info, _ = store.read_experiment()
    declared, source = (wanted, "declared by the experiment") if wanted else analysis_of(info)
    groups = group_runs(records)
    possible = first_look_time(groups, plan.analysis if plan else declared)
    if plan is None:
        P.check_present(store, possible)
        plan = P.Plan(declared, locked=P.now())
        if not (lock and any(r.done for r in records)):
            return P.Plan(declared), source
        P.write_plan(store, plan)
    else:
        P.check_against_definition(store, plan)
        P.check_locked_before(store, plan, possible)
    if (plan.family is None or plan.version == 1) and possible:
        plan = dataclasses.replace(plan, version=P.VERSION, first_look=possible,
                                   family=family_at(groups, plan.analysis, possible))
        if lock:
            P.write_plan(store, plan)
    when = f", first look on {plan.first_look}" if plan.first_look else ""
    return plan, f"declared by the experiment and locked ({P.LOCK_NAME}{when})"


def store_verdicts(store: RunStore, wanted: Optional[Analysis] = None, extras: bool = True,
                   lock: bool = True) -> Verdicts:
    """Verdicts from the records on disk under the folder's locked plan (see store_plan)."""
    records = store.records()
    plan, source = store_plan(store, records, wanted, lock)
    groups = group_runs(records)
    decided, outside = decide_groups(groups, plan.analysis, extras, plan)
    return Verdicts(plan, source, decided, outside,
                    median_view(groups, plan) if extras else [])


def median_view(groups: list[Group], plan: P.Plan) -> list[Decided]:
    """A paired plan on the mean basis, replayed on the median basis (the sensitivity the
    statistics rules ask of it: the mean is not robust to skew); [] for any other plan."""
    if plan.analysis.basis != "mean" or not plan.analysis.paired:
        return []
    median = dataclasses.replace(plan.analysis, basis="median")
    return decide_groups(groups, median, False, dataclasses.replace(plan, analysis=median))[0]


def open_comparisons(decided: list[Decided]) -> list[Decided]:
    return [d for d in decided if d.verdict.kind == "undecided"]
