"""What the declared plan can find: seeds that would settle a comparison, the smallest
difference it detects, and how such figures are printed.

Both assume the truth is what the seeds so far show (their difference and spread) and one last
look at the plan's nominal level F^{-1}(alpha/C): earlier looks, which could only help, and
Holm's steps are ignored. The mean basis plans with the noncentral t (sequential.plan_t), the
median basis with the binomial law of the signs of normal differences.
"""
from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import TTestIndPower, TTestPower

from . import signtest
from .sequential import PLAN_CAP, PLAN_MAX, nominal_level, plan_t


class _Plan(Protocol):  # what is read of declared.Analysis
    basis: str
    paired: bool
    min_seeds: int
    max_seeds: int
    alpha: float
    power: float
    margin: float


def seeds_text(n: int | None, basis: str) -> str:
    """A planned number of seeds as printed: beyond what the planning table computes, 'more
    than N' (the t plan reuses the level of 30 looks past 30, so its figures there understate)."""
    top = PLAN_CAP if basis == "mean" else PLAN_MAX
    if n is None:
        return f"more than {PLAN_MAX}"
    return f"more than {top}" if n > top else str(n)


def _first(ns, ok) -> int | None:
    """The first n where ok(n): a scan of the small ones, then a bisection (ok ~ monotone)."""
    ns = list(ns)
    for n in ns[:60]:
        if ok(n):
            return n
    rest = ns[60:]
    if not rest or not ok(rest[-1]):
        return None
    lo, hi = -1, len(rest) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(rest[mid]) else (mid, hi)
    return rest[hi]


def _sign_plan(d: np.ndarray, an: _Plan, c: int) -> tuple[int | None, int | None]:
    if d.size < 2 or not np.ptp(d) > 0:
        return None, None
    sd = float(np.std(d, ddof=1))
    est = float(np.median(d))
    ns = range(max(d.size, an.min_seeds), PLAN_MAX + 1)

    def level(kind: str, n: int) -> float:
        return signtest.nominal_level(kind, an.min_seeds, n, an.alpha / c)
    p_pos = sps.norm.cdf(abs(est) / sd)
    n_diff = None if est == 0 else _first(
        ns, lambda n: signtest.power(n, p_pos, level("two_sided", n)) >= an.power)
    if not abs(est) < an.margin:
        return n_diff, None
    low, high = sps.norm.cdf((est + an.margin) / sd), sps.norm.cdf((an.margin - est) / sd)
    return n_diff, _first(
        ns, lambda n: signtest.tost_power(n, low, high, level("one_sided", n)) >= an.power)


def plan_seeds(a: np.ndarray, b: np.ndarray, est: float, se: float, an: _Plan, c: int
               ) -> tuple[int | None, int | None]:
    """Seeds at which one last look would have the declared power, for the difference and
    for equivalence, if the truth were what the seeds so far show."""
    if an.basis == "median":
        return _sign_plan(b - a, an, c)
    return plan_t(a, b, est, se, paired=an.paired, min_seeds=an.min_seeds, alpha=an.alpha,
                  power=an.power, margin=an.margin, n_comparisons=c)


def detectable(an: _Plan, sd: float, c: int) -> float | None:
    """The smallest true difference (in metric units) the declared plan finds with its power
    at its cap, for differences (paired) or runs (unpaired) of spread sd; None when no
    difference is found that often (too few seeds for the level)."""
    if not sd > 0:
        return None
    n = an.max_seeds
    if an.basis == "median":
        q = signtest.nominal_level("two_sided", an.min_seeds, n, an.alpha / c)
        if signtest.power(n, 1.0, q) < an.power:
            return None
        lo, hi = 0.5, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if signtest.power(n, mid, q) >= an.power else (mid, hi)
        return float(sd * sps.norm.ppf(hi))
    kind = "paired" if an.paired else "welch"
    q = nominal_level(kind, an.min_seeds, min(n, PLAN_CAP), an.alpha / c)
    solver = TTestPower() if an.paired else TTestIndPower()
    effect = solver.solve_power(effect_size=None, nobs=n, alpha=q, power=an.power,
                                alternative="two-sided") if an.paired else solver.solve_power(
        effect_size=None, nobs1=n, alpha=q, power=an.power, ratio=1.0, alternative="two-sided")
    return float(effect * sd) if effect is not None and math.isfinite(effect) else None



def as_points(found: float) -> str:
    """A detectable difference (metric units) in points, as every report and --list says it."""
    return f"±{100 * found:.2f}"


def detectable_text(an: _Plan, sd: float, c: int) -> str:
    """detectable() as a report cell: in points, or why there is none."""
    if sd != sd:
        return "n/a (needs 2 seeds)"
    found = detectable(an, sd, c)
    return "none: too few seeds for the level" if found is None else as_points(found)
