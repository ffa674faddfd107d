"""Looks: the verdicts a family of comparisons gets after each round of seeds, a pure
function of the analysis, the outcomes and the seeds in hand, and the stopping rule of the
--until-decided loop. A comparison's verdict is final at the look that reached it. Values in,
verdicts out (no MXNet): the loop (runs/runner.py, through verdicts.py) and the simulations
of it (tests/simloop.py) share this code."""
from __future__ import annotations

from typing import Mapping, Sequence

from .decide import Verdict, decide_pairs
from .declared import Analysis

Outcomes = Mapping[int, float]  # seed -> primary metric (NaN: diverged)


def rounds(pairs: Sequence[tuple[str, Outcomes, Outcomes]], analysis: Analysis) -> list[int]:
    """The seeds of the rounds, in order: every seed any group of the family has, up to the
    cap (round r holds the first r of them)."""
    seeds = sorted({s for _, a, b in pairs for s in (*a, *b)})
    return seeds[:analysis.max_seeds]


def at_round(pairs, seeds: Sequence[int], r: int):
    """The pairs as they stood after round r: each group's outcomes on the first r seeds."""
    hand = set(seeds[:r])
    return [(name, {s: v for s, v in a.items() if s in hand},
             {s: v for s, v in b.items() if s in hand}) for name, a, b in pairs]


class Looks:
    """The looks of one family, added one round at a time; a comparison decided at a look
    keeps that look's verdict (frozen) whatever later looks say."""

    def __init__(self, analysis: Analysis):
        self.analysis = analysis
        self.frozen: dict[int, tuple[Verdict, int]] = {}
        self.latest: list[Verdict] = []
        self.round = 0

    def add(self, pairs, round_: int, extras: bool = False) -> list[Verdict]:
        """The verdicts after this look, frozen ones as they were when reached."""
        current = decide_pairs(pairs, self.analysis, extras=extras)
        for i, v in enumerate(current):
            if i not in self.frozen and v.kind != "undecided":
                self.frozen[i] = (v, round_)
        self.latest, self.round = current, round_
        return self.verdicts()

    def verdicts(self) -> list[Verdict]:
        return [self.frozen[i][0] if i in self.frozen else v for i, v in enumerate(self.latest)]

    def look_of(self, i: int) -> tuple[int, bool]:
        """(the round comparison i is read at, whether it is frozen there)."""
        return (self.frozen[i][1], True) if i in self.frozen else (self.round, False)


def replay(pairs: Sequence[tuple[str, Outcomes, Outcomes]], analysis: Analysis,
           extras: bool = True) -> list[tuple[Verdict, int, bool]]:
    """Every look of the family in order; each comparison's (verdict, round, frozen): at the
    look that decided it, else at the latest. With `extras`, each verdict is recomputed with
    the descriptive extras at its own look (the verdicts themselves are the same)."""
    seeds = rounds(pairs, analysis)
    looks = Looks(analysis)
    for r in range(1, len(seeds) + 1):
        looks.add(at_round(pairs, seeds, r), r)
    if not pairs or not seeds:
        return [(v, 0, False) for v in decide_pairs(pairs, analysis, extras=extras)]
    out = [(v, *looks.look_of(i)) for i, v in enumerate(looks.verdicts())]
    if extras:
        cache: dict[int, list[Verdict]] = {}
        for i, (v, r, frozen) in enumerate(out):
            if r not in cache:
                cache[r] = decide_pairs(at_round(pairs, seeds, r), analysis, extras=True)
            out[i] = (cache[r][i], r, frozen)
    return out


def settled_groups(members: Sequence[tuple[str, str]], kinds: Sequence[str]) -> set[str]:
    """The groups that get no more seeds: every comparison they take part in (baseline key,
    variant key) has a verdict. The --until-decided loop and the simulations of it stop the
    same groups."""
    still = {k for (a, b), kind in zip(members, kinds, strict=True) if kind == "undecided"
             for k in (a, b)}
    return {k for pair in members for k in pair} - still
