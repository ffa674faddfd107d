"""Every comparison against the baseline ordering, decided by the experiment's declared
analysis (decide.py): from the run records on disk, for the report, `--until-decided` and
`--list` alike. One Holm family covers every comparison of the experiment (every other
ordering, in every stratum of the other varied settings)."""
from __future__ import annotations

from dataclasses import dataclass

from ..orderings import DEFAULT_BASELINE
from ..store import RunStore
from .decide import Analysis, Verdict, decide_pairs
from .groups import Group, canon, group_runs, seed_values


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


def baseline_pairs(groups: list[Group], baseline: str) -> list[tuple[Group, Group]]:
    """(baseline group, other group) pairs that differ in the ordering only."""
    index = {canon({**g.config, "ordering": None}): g
             for g in groups if g.config.get("ordering") == baseline}
    return [(index[canon({**g.config, "ordering": None})], g) for g in groups
            if g.config.get("ordering") != baseline
            and canon({**g.config, "ordering": None}) in index]


def decide_groups(groups: list[Group], analysis: Analysis, extras: bool = True
                  ) -> list[Decided]:
    """The verdict of every pair that differs in the ordering only, on the primary metric."""
    pairs = baseline_pairs(groups, analysis.baseline)
    verdicts = decide_pairs([(other.label, seed_values(base, analysis.metric),
                              seed_values(other, analysis.metric)) for base, other in pairs],
                            analysis, extras=extras)
    return [Decided(base, other, v) for (base, other), v in zip(pairs, verdicts)]


def decide_store(store: RunStore, analysis: Analysis | None = None, extras: bool = True
                 ) -> tuple[Analysis, list[Decided]]:
    """Verdicts from the records on disk (completed runs only) and the store's analysis."""
    if analysis is None:
        analysis, _ = analysis_of(store.read_experiment()[0])
    return analysis, decide_groups(group_runs(store.records()), analysis, extras)


def open_comparisons(decided: list[Decided]) -> list[Decided]:
    return [d for d in decided if d.verdict.kind == "undecided"]
