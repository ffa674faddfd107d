"""The sign test over repeated looks: decide.py's "median" basis, exact for any distribution of
the per-seed differences.

A paired difference counts only by its sign, so under the null (median difference 0, or the
margin for an equivalence test) the number of positive signs after n seeds is Binomial(n, 1/2)
whatever the spread, skew or outliers: a collapsed run is one sign, not a mean-shifting value.
The null CDF of the minimum nominal p over planned looks, F, is computed exactly by walking the
fair coin's distribution look by look (no Monte Carlo): cheap up to thousands of looks.

Exact zero differences carry no sign and are left out of a look's count (the usual
convention); with continuous metrics they do not occur.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import stats as sps

KINDS = ("two_sided", "one_sided")


def _p_two_sided(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sided sign-test p for k positive signs out of n (1 when n is 0)."""
    low = sps.binom.cdf(np.minimum(k, n - k), n, 0.5)
    return np.where(n > 0, np.minimum(1.0, 2 * low), 1.0)


def _p_one_sided(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """P(Binomial(n, 1/2) >= k): evidence that signs are positive more often than not."""
    return np.where(n > 0, sps.binom.sf(k - 1, n, 0.5), 1.0)


def _p(kind: str, k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The nominal p of k positive signs out of n, looked up in the kind's table (the same
    numbers as computing them: the table is computed by the same functions, once)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    k, n = np.asarray(k), np.asarray(n)
    size = 64
    while size <= (int(n.max()) if n.size else 0):
        size *= 2
    return p_table(kind, size)[n, k]


@lru_cache(maxsize=16)
def p_table(kind: str, rows: int) -> np.ndarray:
    """The nominal p of k positives of n, as table[n, k] for 0 <= k <= n < rows: a simulation
    looks up millions of them, and scipy's binomial functions cost far more per call than
    per value. Two-sided, or one-sided P(Binomial(n, 1/2) >= k)."""
    n, k = np.meshgrid(np.arange(rows), np.arange(rows), indexing="ij")
    k = np.minimum(k, n)
    table = _p_two_sided(k, n) if kind == "two_sided" else _p_one_sided(k, n)
    table.setflags(write=False)
    return table


def look_p(d: np.ndarray, looks: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Nominal sign-test p's at each look (the first n differences): two-sided for a difference
    and, for equivalence within ±margin, the larger of the two one-sided p's (TOST)."""
    d = np.asarray(d, dtype=float)
    mask = np.arange(d.size) < np.asarray(looks)[:, None]

    def count(x: np.ndarray) -> np.ndarray:
        return (x & mask).sum(axis=1)
    p_diff = _p("two_sided", count(d > 0), count(d != 0))
    p_low = _p("one_sided", count(d > -margin), count(d != -margin))
    p_high = _p("one_sided", count(d < margin), count(d != margin))
    return p_diff, np.maximum(p_low, p_high)


def prefix_medians(d: np.ndarray, looks: np.ndarray) -> np.ndarray:
    """Median of the first n differences for each n in looks (np.median's values: the middle
    one, or the mean of the middle two), all looks in one sort."""
    looks = np.asarray(looks, dtype=int)
    if looks.size == 0:
        return np.zeros(0)
    width, d = int(looks.max()), np.asarray(d, float)
    rows = np.where(np.arange(width) < looks[:, None], d[:width], np.inf)
    rows.sort(axis=1)
    at = np.arange(looks.size)
    low, high = rows[at, (looks - 1) // 2], rows[at, looks // 2]
    nan_before = np.cumsum(np.isnan(d[:width]))[looks - 1] > 0  # np.median's NaN
    return np.where(nan_before, np.nan, np.where(low == high, low, (low + high) / 2))


@lru_cache(maxsize=16)
def _look_ps(kind: str, min_seeds: int, last_look: int) -> tuple[np.ndarray, ...]:
    """The nominal p of every count of positives, one array per planned look."""
    return tuple(_p(kind, np.arange(n + 1), np.full(n + 1, n))
                 for n in range(min_seeds, last_look + 1))


@lru_cache(maxsize=1024)
def _hit(kind: str, q: float, min_seeds: int, last_look: int) -> float:
    """P(some look n = min_seeds..last_look has nominal p <= q) for fair coins, exactly: the
    distribution of positives is carried along the paths that have not yet crossed."""
    ps, probs, hit = _look_ps(kind, min_seeds, last_look), np.array([1.0]), 0.0
    for n in range(1, last_look + 1):
        probs = np.concatenate([probs, [0.0]]) * 0.5 + np.concatenate([[0.0], probs]) * 0.5
        if n >= min_seeds:
            cross = ps[n - min_seeds] <= q * (1 + 1e-12)
            hit += float(probs[cross].sum())
            probs = np.where(cross, 0.0, probs)
    return min(1.0, hit)


def sequential_p(min_p: float, kind: str, min_seeds: int, last_look: int) -> float:
    """Repeated p-value F(min_p) of the sign test over the planned looks min_seeds..last_look."""
    if last_look < min_seeds:
        raise ValueError(f"last_look {last_look} < min_seeds {min_seeds}")
    if not np.isfinite(min_p):
        return float("nan")
    return _hit(kind, float(min_p), int(min_seeds), int(last_look))


@lru_cache(maxsize=256)
def nominal_level(kind: str, min_seeds: int, last_look: int, u: float) -> float:
    """The largest attainable nominal level q with F(q) <= u (0 when none: no look can reject);
    F is monotone in q, so a bisection over the attainable p's finds it."""
    qs = np.unique(np.concatenate(_look_ps(kind, int(min_seeds), int(last_look))))
    lo, hi = -1, qs.size  # F(qs[lo]) <= u < F(qs[hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _hit(kind, float(qs[mid]), int(min_seeds), int(last_look)) <= u:
            lo = mid
        else:
            hi = mid
    return float(qs[lo]) if lo >= 0 else 0.0


def median_interval(d: np.ndarray, level: float) -> tuple[float, float]:
    """Distribution-free interval for the median difference from order statistics, two-sided
    tail probability <= level; infinite where the seeds are too few for that level."""
    x, n = np.sort(np.asarray(d, dtype=float)), len(d)
    if n == 0:
        return float("nan"), float("nan")
    # cut j order statistics from each end, the most with P(Binomial(n, 1/2) <= j - 1) <= level/2
    j = int(np.sum(_cdf(n) <= level / 2))
    if j == 0:
        return float("-inf"), float("inf")
    return float(x[j - 1]), float(x[n - j])


@lru_cache(maxsize=1024)
def _cdf(n: int) -> np.ndarray:
    """P(Binomial(n, 1/2) <= j) for j = 0..n-1."""
    cdf = sps.binom.cdf(np.arange(n), n, 0.5)
    cdf.setflags(write=False)
    return cdf


def power(n: int, p_positive: float, level: float) -> float:
    """Power of a single two-sided sign test at n seeds and nominal level, when each difference
    is positive with probability p_positive."""
    k = np.arange(n + 1)
    reject = _p_two_sided(k, np.full(n + 1, n)) <= level * (1 + 1e-12)
    return float(sps.binom.pmf(k, n, p_positive)[reject].sum())


def tost_power(n: int, p_above_low: float, p_below_high: float, level: float) -> float:
    """Lower bound (Bonferroni) on the power of the sign-test TOST at n seeds."""
    k = np.arange(n + 1)
    reject = _p_one_sided(k, np.full(n + 1, n)) <= level * (1 + 1e-12)
    low = sps.binom.pmf(k, n, p_above_low)[reject].sum()
    high = sps.binom.pmf(k, n, p_below_high)[reject].sum()
    return float(max(0.0, low + high - 1.0))
