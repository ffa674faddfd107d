"""The --until-decided loop on simulated values, for the statistics' simulations: the same
looks (verdicts.Looks, which replays what the report prints, frozen verdicts included) and
the same stopping rule (verdicts.settled_groups, which runner.still_deciding applies) as the
real loop, on arrays instead of run files. No MXNet."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gluon_resnet.analysis import looks as V
from gluon_resnet.analysis.decide import Verdict
from gluon_resnet.analysis.declared import Analysis


def until_decided(values: np.ndarray, comparisons: Sequence[tuple[int, int]],
                  analysis: Analysis) -> list[tuple[list[Verdict], list[Verdict]]]:
    """values: groups x cap (seed s of group g at [g, s]); comparisons: (baseline group,
    variant group). Round r gives seed r - 1 to every group not settled at the look before,
    then looks. Returns, for each look from min_seeds on, (what the report prints: frozen
    verdicts as reached; the look's own verdicts, which the code before frozen verdicts
    printed)."""
    members = [(str(a), str(b)) for a, b in comparisons]
    have = np.zeros(values.shape[0], dtype=int)
    looks = V.Looks(analysis)
    kinds = ["undecided"] * len(comparisons)
    out = []
    for r in range(1, analysis.max_seeds + 1):
        settled = V.settled_groups(members, kinds)
        for g in range(values.shape[0]):
            if str(g) not in settled:
                have[g] = r
        pairs = [(f"v{j}", {s: float(values[a, s]) for s in range(have[a])},
                  {s: float(values[b, s]) for s in range(have[b])})
                 for j, (a, b) in enumerate(comparisons)]
        printed = looks.add(pairs, r)
        kinds = [v.kind for v in printed]
        if r >= analysis.min_seeds:
            out.append((printed, list(looks.latest)))
        if all(k != "undecided" for k in kinds):
            break
    return out


def claims(run: list[tuple[list[Verdict], list[Verdict]]], printed: bool = True
           ) -> list[set[str]]:
    """For each comparison, the verdict kinds ever shown over the looks of one experiment."""
    if not run:
        return []
    seen = [set() for _ in run[0][0]]
    for look in run:
        for i, v in enumerate(look[0 if printed else 1]):
            seen[i].add(v.kind)
    return seen


def flipped(run: list[tuple[list[Verdict], list[Verdict]]], printed: bool = True) -> bool:
    """Whether a comparison's verdict, once shown, changed at a later look."""
    if not run:
        return False
    for i in range(len(run[0][0])):
        kinds = [look[0 if printed else 1][i].kind for look in run]
        first = next((k for k in kinds if k != "undecided"), None)
        if first is not None and any(k != first for k in kinds[kinds.index(first):]):
            return True
    return False
