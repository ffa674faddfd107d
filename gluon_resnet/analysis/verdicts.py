"""Every comparison against the baseline ordering, decided by the experiment's declared
analysis (declared.py, decide.py): from the run records on disk, for the report, `--until-decided` and
`--list` alike. One Holm family covers every comparison of the experiment (every other
ordering, in every stratum of the other varied settings)."""
from __future__ import annotations

from dataclasses import dataclass

from ..orderings import DEFAULT_BASELINE
from ..records import Run
from ..store import RunStore
from . import plan_lock
from .decide import Verdict, decide_pairs
from .declared import Analysis
from .groups import Group, canon, group_runs, outcomes


@dataclass(frozen=True)
class Decided:
    """One comparison: the baseline's group, the variant's, and the verdict."""

    base: Group
    other: Group
    verdict: Verdict


def analysis_of(info: dict) -> tuple[Analysis, str]:
    """The analysis declared in experiment.json, and where it came from."""
    if isinstance(info.get("analysis"), dict):
        return Analysis.from_dict(info["analysis"]), "declared by the experiment"
    baseline = info.get("baseline") or DEFAULT_BASELINE
    return Analysis(baseline=baseline), "not declared in experiment.json: the defaults"


def store_analysis(store: RunStore) -> tuple[Analysis, str]:
    """The analysis a folder is decided with: its locked plan (plan_lock.py) where it has one,
    else the one declared in experiment.json, and where it came from."""
    locked, problem = plan_lock.read_lock(store.root)
    if locked is not None:
        return locked, f"declared by the experiment and locked at the first look ({plan_lock.LOCK_NAME})"
    analysis, source = analysis_of(store.read_experiment()[0])
    return analysis, (f"{source}; {problem}" if problem else source)


def baseline_pairs(groups: list[Group], baseline: str) -> list[tuple[Group, Group]]:
    """(baseline group, other group) pairs that differ in the ordering only."""
    index = {canon({**g.config, "ordering": None}): g
             for g in groups if g.ordering == baseline}
    return [(index[canon({**g.config, "ordering": None})], g) for g in groups
            if g.ordering != baseline
            and canon({**g.config, "ordering": None}) in index]


def decide_groups(groups: list[Group], analysis: Analysis, extras: bool = True
                  ) -> list[Decided]:
    """The verdict of every pair that differs in the ordering only, on the primary metric."""
    pairs = baseline_pairs(groups, analysis.baseline)
    verdicts = decide_pairs([(other.label, outcomes(base, analysis.metric),
                              outcomes(other, analysis.metric)) for base, other in pairs],
                            analysis, extras=extras)
    return [Decided(base, other, v) for (base, other), v in zip(pairs, verdicts)]


def decide_store(store: RunStore, analysis: Analysis | None = None, extras: bool = True
                 ) -> tuple[Analysis, list[Decided]]:
    """Verdicts from the records on disk and the store's analysis (its locked plan, else
    experiment.json's); the first look at a folder with finished runs locks the plan."""
    if analysis is None:
        analysis, _ = store_analysis(store)
    records = store.records()
    lock_first_look(store, analysis, records)
    return analysis, decide_groups(group_runs(records), analysis, extras)


def lock_first_look(store: RunStore, analysis: Analysis, records: list[Run]) -> None:
    """Lock the plan at the first look at finished runs (never over an unreadable lock)."""
    if any(r.done for r in records) and \
            not plan_lock.read_lock(store.root)[1]:
        plan_lock.lock(store.root, analysis)


def open_comparisons(decided: list[Decided]) -> list[Decided]:
    return [d for d in decided if d.verdict.kind == "undecided"]
