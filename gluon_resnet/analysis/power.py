"""What the declared plan can find: seeds that would settle a comparison, the smallest
difference it detects, and how such figures are printed.

Both assume the truth is what the seeds so far show (their difference and spread) and one last
look at the plan's nominal level F^{-1}(alpha/C), F over the locked plan's looks up to its cap
(past the cap, over the looks up to that last one): earlier looks, which could only help, and
Holm's steps are ignored. The mean basis plans with the noncentral t (sequential.plan_t), the
median basis with the binomial law of the signs of normal differences.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Protocol

import numpy as np
from scipy import special
from scipy import stats as sps

from . import signtest
from .sequential import PLAN_CAP, PLAN_MAX, horizon, nominal_level, plan_t


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

    def level(kind: str, n: int) -> float:  # nominal_level's cache: one bisection per horizon
        return signtest.nominal_level(kind, an.min_seeds, int(horizon(n, an.max_seeds)),
                                       an.alpha / c)
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
    return plan_t(a, b, est, se, paired=an.paired, min_seeds=an.min_seeds,
                  max_seeds=an.max_seeds, alpha=an.alpha, power=an.power, margin=an.margin,
                  n_comparisons=c)


N_POWER_SIMS = 4000  # Monte Carlo error of a power near 0.8: about 0.006


def _hits(an: _Plan, d: np.ndarray, looks: np.ndarray, q_diff: float, q_equiv: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """For each simulated experiment (rows) and look: whether the nominal test of a
    difference (two-sided) and of equivalence (TOST) is at or below its level; the same tests
    decide.py makes (paired; simulated differences are continuous, so none is exactly 0 or at
    the margin). The t-tests compare statistics with critical values: the same decisions."""
    tol = 1 + 1e-12
    if an.basis == "median":
        two, one = (signtest.p_table(kind, an.max_seeds + 1)
                    for kind in ("two_sided", "one_sided"))

        def count(x: np.ndarray) -> np.ndarray:
            return np.cumsum(x, axis=1)[:, looks - 1]
        n = np.broadcast_to(looks, (d.shape[0], looks.size))
        return (two[n, count(d > 0)] <= q_diff * tol,
                np.maximum(one[n, count(d > -an.margin)], one[n, count(d < an.margin)])
                <= q_equiv * tol)
    s, ss = np.cumsum(d, axis=1)[:, looks - 1], np.cumsum(d * d, axis=1)[:, looks - 1]
    mean = s / looks
    se = np.sqrt(np.maximum(ss - s * s / looks, 0) / (looks - 1) / looks)
    df = looks - 1.0
    crit_d, crit_e = special.stdtrit(df, 1 - q_diff / 2), special.stdtrit(df, 1 - q_equiv)
    return (np.abs(mean) >= crit_d * se,
            ((mean + an.margin) >= crit_e * se) & ((an.margin - mean) >= crit_e * se))


def loop_power(an: _Plan, sd: float, c: int, delta: float, n_sims: int = N_POWER_SIMS) -> float:
    """P(the plan finds a difference) for one paired comparison of true difference delta and
    spread sd, simulated through its looks min_seeds..cap with their early stops: a look that
    shows equivalence first ends the comparison without a difference (Bonferroni level
    alpha/c for the family; Holm's steps, which could only help, are ignored)."""
    cap, looks = an.max_seeds, np.arange(an.min_seeds, an.max_seeds + 1)
    rng = np.random.default_rng(20261206)  # common numbers: power is smooth in delta
    d = delta + sd * rng.standard_normal((n_sims, cap))
    kinds = ("two_sided", "one_sided") if an.basis == "median" else ("paired", "one_sided")
    level = (signtest.nominal_level if an.basis == "median" else nominal_level)
    q_diff = level(kinds[0], an.min_seeds, cap, an.alpha / c)
    q_equiv = level(kinds[1], an.min_seeds, cap, an.alpha / c)
    hit_d, hit_e = _hits(an, d, looks, q_diff, q_equiv)
    big = looks.size + 1
    first_d = np.where(hit_d.any(axis=1), hit_d.argmax(axis=1), big)
    first_e = np.where(hit_e.any(axis=1), hit_e.argmax(axis=1), big)
    # found where a difference is shown no later than equivalence (the same look: better or
    # worse, inside the margin); neither by the cap: not found
    return float(np.mean((first_d < big) & (first_d <= first_e)))


@lru_cache(maxsize=256)
def detectable(an: _Plan, sd: float, c: int) -> float | None:
    """The smallest true difference (in metric units) the declared plan finds with its power
    by its cap, for paired differences of spread sd (unpaired: runs of spread sd), through
    its looks and their early equivalence stops (loop_power); None when no difference is
    found that often (too few seeds for the level)."""
    if not sd > 0:
        return None
    if not an.paired:
        return _detectable_unpaired(an, sd, c)
    top = 20 * sd + 2 * an.margin
    if loop_power(an, sd, c, top) < an.power:
        return None
    lo, hi = 0.0, top
    while hi - lo > 1e-3 * sd:  # to a thousandth of the spread
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if loop_power(an, sd, c, mid) >= an.power else (mid, hi)
    return float(hi)


def _detectable_unpaired(an: _Plan, sd: float, c: int) -> float | None:
    """Unpaired plans: one last look of Welch's test at the cap (noncentral t)."""
    from statsmodels.stats.power import TTestIndPower  # a second to import: only here

    n = an.max_seeds
    q = nominal_level("welch", an.min_seeds, min(n, PLAN_CAP), an.alpha / c)
    effect = TTestIndPower().solve_power(effect_size=None, nobs1=n, alpha=q, power=an.power,
                                         ratio=1.0, alternative="two-sided")
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
