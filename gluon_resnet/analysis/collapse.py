"""Collapsed runs as a declared outcome: what a run that diverges or ends near chance counts as.

A run collapses when its primary metric is not finite (it diverged) or is below the declared
`collapse_below` (an accuracy near chance, 10 % for ten classes). Diverged and at-chance runs
are treated alike, by the rule the experiment declares before its data (declared.Analysis):

* "separate": collapse is its own claim. The accuracy comparison uses the seeds where neither
  run collapsed; the collapse rates are compared by an exact McNemar test on the seeds where
  exactly one of the pair collapsed (binomial, 1/2), made valid over the looks by the sign
  test's exact F (p_over_looks) and Holm over the comparisons. So one arm that collapses more often is reported as that, and
  cannot pass as a better or worse accuracy.
* "chance": a collapsed run counts at chance accuracy, CHANCE, and stays in the comparison;
  declared with the median basis (sign test), where a collapse is one sign and cannot
  dominate a mean.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from scipy import stats as sps

from ..names import pick

from . import signtest

RULES = ("separate", "chance")
CHANCE = 0.1  # ten Fashion-MNIST classes


def collapsed(value: float | None, below: float) -> bool:
    """Whether one run's metric value counts as a collapse: not finite, or below `below`."""
    return value is None or not math.isfinite(float(value)) or float(value) < below


def apply_rule(values: Mapping[int, float | None], rule: str, below: float
               ) -> dict[int, float]:
    """seed -> value the comparison uses: collapsed runs dropped ("separate") or at CHANCE."""
    pick(RULES, rule, "collapse rule")
    if rule == "chance":
        return {int(s): CHANCE if collapsed(v, below) else float(v) for s, v in values.items()}
    return {int(s): float(v) for s, v in values.items() if not collapsed(v, below)}


@dataclass(frozen=True)
class CollapseCount:
    """Collapses of one comparison over the seeds both arms ran (paired by seed)."""

    seeds: int          # seeds where both arms have a finished run
    base: int           # baseline runs collapsed
    variant: int        # variant runs collapsed
    only_base: int      # seeds where only the baseline collapsed
    only_variant: int   # seeds where only the variant collapsed

    def p_exact(self) -> float:
        """Exact McNemar p (two-sided binomial on the discordant seeds); 1 when there are none."""
        return mcnemar_p(self.only_variant, self.only_base + self.only_variant)


@lru_cache(maxsize=4096)
def mcnemar_p(only_variant: int, discordant: int) -> float:
    """Exact McNemar p of `only_variant` of `discordant` seeds; 1 when there are none (cached:
    the simulations ask for the same few counts millions of times)."""
    if discordant == 0:
        return 1.0
    return float(sps.binomtest(only_variant, discordant, 0.5).pvalue)


def _paired_flags(base: Mapping[int, float | None], variant: Mapping[int, float | None],
                  below: float, max_seeds: int | None) -> list[tuple[bool, bool]]:
    """(baseline collapsed, variant collapsed) on each seed both arms finished, the first
    max_seeds of them in seed order."""
    return [(collapsed(base[s], below), collapsed(variant[s], below))
            for s in sorted(set(base) & set(variant))[:max_seeds]]


def count(base: Mapping[int, float | None], variant: Mapping[int, float | None],
          below: float, max_seeds: int | None = None) -> CollapseCount:
    """Collapses over the seeds both arms finished (the first max_seeds of them, in order)."""
    return _count(_paired_flags(base, variant, below, max_seeds))


def _count(flags: list[tuple[bool, bool]]) -> CollapseCount:
    return CollapseCount(len(flags), sum(b for b, _ in flags), sum(v for _, v in flags),
                         sum(b and not v for b, v in flags), sum(v and not b for b, v in flags))


def count_unpaired(base: Mapping[int, float | None], variant: Mapping[int, float | None],
                   below: float, max_seeds: int | None = None) -> CollapseCount:
    """Collapses of two unpaired groups (each group's first max_seeds runs): no seed is
    discordant, so each arm's count stands in for its "only" count."""
    a = sum(collapsed(base[s], below) for s in sorted(base)[:max_seeds])
    b = sum(collapsed(variant[s], below) for s in sorted(variant)[:max_seeds])
    return CollapseCount(min(len(base), len(variant), max_seeds or len(base)), a, b, a, b)


def paired(base: Mapping[int, float | None], variant: Mapping[int, float | None],
           below: float, max_seeds: int) -> tuple[CollapseCount, float]:
    """count(), and the smallest exact McNemar p over the looks so far (every prefix of the
    seeds both arms finished, in seed order): a claim, once made, is not taken back by a later
    seed. One reading of the flags for both: the simulations ask at every look."""
    flags = _paired_flags(base, variant, below, max_seeds)
    only_base = only_variant = 0
    smallest = 1.0
    for cb, cv in flags:  # the counts after each seed
        only_base, only_variant = only_base + (cb and not cv), only_variant + (cv and not cb)
        smallest = min(smallest, mcnemar_p(only_variant, only_base + only_variant))
    return _count(flags), smallest


def p_over_looks(min_p: float, max_seeds: int) -> float:
    """The collapse claim's repeated p over the looks: given which seeds are discordant, each
    is the variant's with probability 1/2 under the null, so the discordant seeds are a sign
    test's sequence, and looking at every count of them up to the cap (more looks than the
    loop can take) bounds the minimum p over the real looks: conservative, never liberal."""
    if min_p >= 1.0:
        return 1.0
    return signtest.sequential_p(min_p, "two_sided", 1, max_seeds)


def unpaired_p_over_looks(base: Mapping[int, float | None], variant: Mapping[int, float | None],
                          below: float, max_seeds: int) -> float:
    """Unpaired designs: Fisher's exact test of the two collapse rates at each look (the first
    k runs of each group, k = 1..cap), Bonferroni over the looks taken (a union bound: valid,
    conservative)."""
    a = [collapsed(base[s], below) for s in sorted(base)[:max_seeds]]
    b = [collapsed(variant[s], below) for s in sorted(variant)[:max_seeds]]
    looks = min(len(a), len(b))
    if not (any(a) or any(b)) or looks == 0:
        return 1.0
    p = min(sps.fisher_exact([[sum(b[:k]), k - sum(b[:k])], [sum(a[:k]), k - sum(a[:k])]])[1]
            for k in range(1, looks + 1))
    return float(min(1.0, p * looks))
