"""The sequential design behind analysis/decide.py's verdicts: what makes them valid however
often the experiment loop looks and however many orderings it compares.

It owns
* the nominal tests: one formula for the observed looks and for the null simulation;
* F, the null distribution of the minimum nominal p over the planned looks min_seeds..N (Monte
  Carlo over the first SIM_LOOKS looks, cached; a union bound for the looks after them, so
  the time is independent of the cap), the repeated p-value F(min p) (`sequential_p`) and F's inverse, the nominal
  level that spends a given error over all looks (simultaneous intervals, planning);
* Holm's step-down over comparisons (`holm`) and the plan of looks (`look_schedule`);
* seed planning: how many seeds one last look would need for the declared power.

Null models ("kinds"), all for normal values:
* "paired", "one_sided": one-sample t on iid differences, two-sided and P(T > t). Exact, since t
  statistics are scale-free.
* "welch", "welch_one_sided": the Welch t of two equal-size groups (two-sided, and one-sided for
  the unpaired TOST). Its null depends on the groups' standard-deviation ratio r, so F is the worst
  case over SD_RATIOS: F(q) = max_r F_r(q), with inverse min_r F_r^{-1}(u). The worst ratio
  moves between about 2 and 12 with the planned looks and F_r is flat near it, so a ratio
  between grid points exceeds F by about Monte Carlo error at most; beyond 20, F_r falls towards
  its limit, the one-sample F of an infinitely unequal pair, which is on the grid too. The
  price: with equal spreads the unpaired procedure is conservative (tests/test_decide.py, four
  variants, no difference: family-wise 0.025 at alpha 0.05). All ratios share one set of draws;
  the first call per plan of looks takes about 1.5 s (6 s for Welch), planning's table as much
  again; the tables are kept on disk for the next process (_sim_cache).

No dependence on decide.py: the design's numbers come in as plain arguments.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np
from scipy import special

NAN = float("nan")
# kind -> (two groups?, index of the side: 0 two-sided, 1 one-sided)
_KIND = {"paired": (False, 0), "welch": (True, 0), "one_sided": (False, 1),
         "welch_one_sided": (True, 1)}
KINDS = tuple(_KIND)
# Welch kinds: the worst case over these ratios of the groups' sd; 1e6 stands for the limit of
# an infinitely unequal pair, the one-sample t of the noisier group (n - 1 df)
SD_RATIOS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0, 1e6)
SIM_SEED = 20261123         # fixed, so F (and so every verdict) is reproducible
N_SIMS = 200_000            # null sequences behind the one-sample F's that decide
N_SIMS_WELCH = 100_000      # null sequences per sd ratio behind the Welch F's that decide
N_SIMS_PLAN = 50_000        # planning-only F's, one-sample
N_SIMS_PLAN_WELCH = 20_000  # planning-only F's, Welch, per sd ratio
SIM_LOOKS = 30              # looks simulated; later ones are bounded (see _split_looks)
PLAN_CAP = 30               # planning: more looks inflate as 30 do (understates seeds a little)
PLAN_MAX = 200              # planning: the most seeds considered


# ---- nominal tests: one formula for the observed looks and for the null simulation ----

def welch_moments(mean_a, var_a, n_a, mean_b, var_b, n_b):
    """Difference b - a, its standard error and the Welch-Satterthwaite df (arrays broadcast)."""
    va, vb = var_a / n_a, var_b / n_b
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return mean_b - mean_a, np.sqrt(va + vb), df


def p_two_sided(est, se, df):
    """Two-sided t-test p; with zero spread its limit (0, or 1 when the estimate is 0)."""
    return np.where(se > 0, 2 * special.stdtr(df, -np.abs(est / se)), np.where(est == 0, 1.0, 0.0))


def half_width(se: float, df: float, level: float) -> float:
    """Half-width of a two-sided t interval with tail probability `level`."""
    return 0.0 if se == 0 else float(special.stdtrit(df, 1 - level / 2) * se)


def p_tost(est, se, df, margin):
    """TOST p, the larger one-sided p; with zero spread 0 if |est| < margin, else 1."""
    p = np.maximum(special.stdtr(df, -(est + margin) / se), special.stdtr(df, (est - margin) / se))
    return np.where(se > 0, p, np.where(np.abs(est) < margin, 0.0, 1.0))


# ---- the null distribution of the minimum p over planned looks ----

def _null_looks(two_groups: bool, min_seeds: int, last_look: int,
                n_sims: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Null nominal p's at each look min_seeds..last_look: (two-sided, one-sided P(T > t)), each
    n_sims wide with one row per sd ratio (two groups) or a single row (one sample).

    Sums grow seed by seed, so memory stays O(n_sims) however many looks. One set of draws serves
    every ratio (group b scaled by r), so the F_r differ by the ratio, not by simulation noise."""
    rng = np.random.default_rng(SIM_SEED)
    width, r = (2 if two_groups else 1), np.array(SD_RATIOS)[:, None]
    s, ss = np.zeros((width, n_sims)), np.zeros((width, n_sims))
    for n in range(1, last_look + 1):
        x = rng.standard_normal((width, n_sims))
        s, ss = s + x, ss + x * x
        if n < min_seeds:
            continue
        mean, var = s / n, (ss - s * s / n) / (n - 1)
        est, se, df = (welch_moments(mean[0], var[0], n, r * mean[1], r * r * var[1], n) if two_groups
                       else (mean, np.sqrt(var / n), n - 1.0))
        t = est / se
        low = special.stdtr(df, -np.abs(t))  # 2 * low is p_two_sided's formula (se > 0 a.s. here)
        yield 2 * low, np.where(t > 0, low, 1 - low)


def _envelope(p: np.ndarray) -> np.ndarray:
    """Sorted sample whose empirical CDF is the max of the rows' empirical CDFs: the elementwise
    minimum of the sorted rows (its k-th smallest is the rows' smallest k-th smallest), so its
    quantiles are the minimum of the rows' quantiles. Rows of equal size."""
    return np.sort(p, axis=1).min(axis=0)


def _null_running_min(two_groups: bool, min_seeds: int, last_look: int, n_sims: int,
                      keep: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sorted null minima of the nominal p over the looks so far, (two-sided, one-sided), worst
    case over sd ratios: at the last look, or at every look (keep: one sorted column a look)."""
    run, kept = None, []
    for p in _null_looks(two_groups, min_seeds, last_look, n_sims):
        run = p if run is None else (np.minimum(run[0], p[0]), np.minimum(run[1], p[1]))
        if keep:
            kept.append((_envelope(run[0]), _envelope(run[1])))
    if keep:
        return tuple(np.stack(cols, axis=1) for cols in zip(*kept, strict=True))
    return _envelope(run[0]), _envelope(run[1])


def _simulated(two_groups: bool, min_seeds: int, last_look: int, n_sims: int,
               keep: bool) -> tuple[np.ndarray, ...]:
    """_null_running_min's tables, kept on disk between processes (_sim_cache)."""
    from ._sim_cache import kept

    code = (_null_looks, _envelope, _null_running_min, welch_moments)
    return kept("null-min", (two_groups, min_seeds, last_look, n_sims, keep, SIM_SEED,
                             SD_RATIOS), code,
                lambda: _null_running_min(two_groups, min_seeds, last_look, n_sims, keep))


@lru_cache(maxsize=16)
def _null_sides(two_groups: bool, min_seeds: int, last_look: int) -> tuple[np.ndarray, ...]:
    n_sims = N_SIMS_WELCH if two_groups else N_SIMS
    return _simulated(two_groups, min_seeds, last_look, n_sims, keep=False)


def _kind(kind: str) -> tuple[bool, int]:
    if kind not in _KIND:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return _KIND[kind]


def _null_min(kind: str, min_seeds: int, last_look: int) -> np.ndarray:
    """Sorted null minima of the nominal p over looks min_seeds..last_look: F's support."""
    two_groups, side = _kind(kind)
    return _null_sides(two_groups, int(min_seeds), int(last_look))[side]


def _split_looks(min_seeds: int, last_look: int) -> tuple[int | None, int]:
    """(the last look F simulates, or None where min_seeds is past SIM_LOOKS; the looks after
    it). Each look after SIM_LOOKS adds at most its nominal level q to F (a union bound), so
    F over looks min_seeds..N is bounded by F_sim(q) + (N - SIM_LOOKS) q: exact up to
    SIM_LOOKS, conservative beyond, and as fast at a cap of 1,000 as at 30."""
    if min_seeds > SIM_LOOKS:
        return None, last_look - min_seeds + 1
    simulated = min(last_look, SIM_LOOKS)
    return simulated, last_look - simulated


def sequential_p(min_p: float, kind: str, min_seeds: int, last_look: int) -> float:
    """Repeated p-value F(min_p): the null probability that the smallest nominal p over ALL
    planned looks min_seeds..last_look is <= min_p.

    "paired": two-sided one-sample t on iid normal differences, exact under normality. "welch":
    two-sided Welch t of two equal-size normal groups, the worst case over the sd ratios
    SD_RATIOS (max of their F's). "one_sided": P(T > t) of the one-sample t at the TOST boundary,
    "welch_one_sided" its Welch worst case; conservative for TOST, whose p is the larger of two
    one-sided p's.

    Looks past SIM_LOOKS are not simulated: each adds at most min_p (_split_looks), an upper
    bound, so the repeated p-value stays valid (conservative) at any cap. The bound assumes each
    look's nominal p is uniform under the null: exact for the one-sample kinds, Welch's
    approximation for the others (at 31+ seeds a group its error is within the Monte Carlo
    error of F; tests/test_decide.py measures it)."""
    if last_look < min_seeds:
        raise ValueError(f"last_look {last_look} < min_seeds {min_seeds}")
    _kind(kind)
    if not np.isfinite(min_p):
        return NAN
    simulated, beyond = _split_looks(int(min_seeds), int(last_look))
    f = 0.0
    if simulated is not None:
        mins = _null_min(kind, min_seeds, simulated)
        f = np.searchsorted(mins, min_p, side="right") / mins.size
    return float(min(1.0, f + beyond * min_p))


def _f_inverse(sorted_min: np.ndarray, u: float, looks: int) -> float:
    """Largest simulated q with F(q) <= u: the nominal level that spends u over all looks."""
    k = int(math.floor(u * sorted_min.size))
    return float(sorted_min[k - 1]) if k >= 1 else u / looks  # beyond the simulation: Bonferroni


def _bounded_inverse(sorted_min: np.ndarray, u: float, beyond: int) -> float:
    """Largest q with F_sim(q) + beyond * q <= u (F_sim the empirical CDF of sorted_min, zero
    if empty): the nominal level of sequential_p's bound. On [m_k, m_k+1) F_sim is k / K, so
    q there is at most (u - k / K) / beyond; the best over the K + 1 pieces."""
    size = sorted_min.size
    if size == 0:
        return u / beyond  # Bonferroni over every look
    k = np.arange(size + 1)
    start = np.concatenate([[0.0], sorted_min])
    end = np.nextafter(np.concatenate([sorted_min, [1.0]]), 0.0)
    q = np.minimum((u - k / size) / beyond, end)
    return float(q[q >= start].max())


@lru_cache(maxsize=256)
def nominal_level(kind: str, min_seeds: int, last_look: int, u: float) -> float:
    """F^{-1}(u) over looks min_seeds..last_look (Welch kinds: the smallest over sd ratios),
    of sequential_p's bound past SIM_LOOKS."""
    simulated, beyond = _split_looks(int(min_seeds), int(last_look))
    if beyond == 0:
        return _f_inverse(_null_min(kind, min_seeds, last_look), u, last_look - min_seeds + 1)
    mins = _null_min(kind, min_seeds, simulated) if simulated is not None else np.empty(0)
    return _bounded_inverse(mins, u, beyond)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values: statsmodels' multipletests(method="holm") numbers, without the
    gc.collect() it runs on every call (15+ ms, too slow for simulating the procedure)."""
    p = np.asarray(p_values, dtype=float)
    order, out = np.argsort(p, kind="stable"), np.empty_like(p)
    out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1)))
    return out


class _Looks(Protocol):  # what look_schedule reads of declared.Analysis
    min_seeds: int
    max_seeds: int


def look_schedule(analysis: _Looks, n_available: int) -> list[int]:
    """Planned looks min_seeds..N, N = max(max_seeds, n_available). Running past max_seeds
    enlarges the plan: F is recomputed for it and repeated p-values may rise."""
    return list(range(analysis.min_seeds, max(analysis.max_seeds, n_available) + 1))


# ---- planning: how many seeds would settle an undecided comparison ----

@lru_cache(maxsize=8)
def _plan_tables(two_groups: bool, min_seeds: int) -> tuple[np.ndarray, ...]:
    n_sims = N_SIMS_PLAN_WELCH if two_groups else N_SIMS_PLAN
    return _simulated(two_groups, min_seeds, max(PLAN_CAP, min_seeds), n_sims, keep=True)


def _plan_table(kind: str, min_seeds: int) -> np.ndarray:
    """Null running minima at looks min_seeds..30, each column sorted: F for every horizon."""
    two_groups, side = _kind(kind)
    return _plan_tables(two_groups, int(min_seeds))[side]


@lru_cache(maxsize=256)
def _plan_levels(kind: str, min_seeds: int, u: float) -> np.ndarray:
    """Nominal level q*(n) = F_n^{-1}(u) of a last look at n = min_seeds..200 seeds."""
    table = _plan_table(kind, min_seeds)
    levels = np.array([_f_inverse(table[:, j], u, j + 1) for j in range(table.shape[1])])
    return levels[np.minimum(np.arange(PLAN_MAX + 1 - min_seeds), table.shape[1] - 1)]


def _first(n: np.ndarray, power: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(np.nan_to_num(power) >= target)
    return int(n[hit[0]]) if hit.size else None


def horizon(n, cap: int):
    """The last planned look that sets the level of a last look at n seeds: the locked cap up
    to it (the plan's looks spend alpha up to its cap, wherever it stops), n past it (a plan
    with a larger cap, for what would settle it); at most PLAN_MAX. n: an int or an array."""
    return np.minimum(np.maximum(n, cap), PLAN_MAX)


def plan_t(a: np.ndarray, b: np.ndarray, d: float, se: float, *, paired: bool, min_seeds: int,
          max_seeds: int, alpha: float, power: float, margin: float,
          n_comparisons: int) -> tuple[int | None, int | None]:
    """Seeds at which one last look would have the declared power for the difference and for
    the equivalence question if the truth were the observed difference d and spread of a and b
    (the n seeds used; se the latest standard error), at level F^{-1}(alpha/C) with F over the
    looks up to the locked cap max_seeds (a look before the cap spends alpha as the whole plan
    does), or up to that look past the cap: earlier looks (which could only help) and Holm's
    steps are ignored."""
    n = min(a.size, b.size)
    if n < 2 or not se > 0:
        return None, None
    grid = np.arange(max(n, min_seeds), PLAN_MAX + 1)

    def level(kind: str) -> np.ndarray:
        levels = _plan_levels(kind, min_seeds, alpha / n_comparisons)
        return levels[horizon(grid, max_seeds) - min_seeds]
    # statsmodels costs a second to import: only where a plan is made
    from statsmodels.stats.power import TTestIndPower, TTestPower

    if paired:
        sd = float(np.std(b - a, ddof=1))
        pw = TTestPower().power(effect_size=abs(d) / sd, nobs=grid, alpha=level("paired"),
                                alternative="two-sided")
        se_n, df = sd / np.sqrt(grid), grid - 1.0
    else:
        va, vb = float(np.var(a, ddof=1)), float(np.var(b, ddof=1))
        pw = TTestIndPower().power(effect_size=abs(d) / math.sqrt((va + vb) / 2), nobs1=grid,
                                   alpha=level("welch"), ratio=1.0, alternative="two-sided")
        _, se_n, df = welch_moments(0.0, va, grid, 0.0, vb, grid)
    n_diff = _first(grid, pw, power) if d != 0 else None
    if not abs(d) < margin:
        return n_diff, None
    # TOST power as the Bonferroni lower bound P(T1 > c) + P(T2 < -c) - 1, T1 and T2 noncentral
    # t; exact power (Owen's Q: both share one variance estimate) is a little higher.
    c = special.stdtrit(df, 1 - level("one_sided" if paired else "welch_one_sided"))
    tost = (special.nctdtr(df, (d - margin) / se_n, -c)
            - special.nctdtr(df, (d + margin) / se_n, c))
    return n_diff, _first(grid, np.clip(tost, 0.0, 1.0), power)
