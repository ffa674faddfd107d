"""What a report shows beside a declared verdict, never decides with: Welch's unpaired view of
the same values, what the pairing bought, the probability of improvement, and the spread a
power statement is read at."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from .sequential import SIM_SEED, half_width, p_two_sided, welch_moments

NAN = float("nan")
FLAT = 1e-12  # values closer than this are identical (float noise of b - a)


def _pi_stat(a, b, axis=-1):
    """Mann-Whitney probability that a variant run beats a baseline run, ties counting half."""
    a = np.moveaxis(np.asarray(a), axis, -1)[..., :, None]
    b = np.moveaxis(np.asarray(b), axis, -1)[..., None, :]
    return np.mean((b > a) + 0.5 * (b == a), axis=(-2, -1))


def prob_improvement(a, b, paired: bool) -> tuple[float, float, float]:
    """P(variant run > baseline run) as rliable reports it (Agarwal et al. 2021), with a 95 %
    percentile bootstrap CI; paired designs resample seeds jointly. Non-finite values dropped."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    else:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if min(a.size, b.size) < 2:
        return (float(_pi_stat(a, b)) if a.size and b.size else NAN), NAN, NAN
    ci = sps.bootstrap((a, b), _pi_stat, paired=paired, vectorized=True, n_resamples=2000,
                       batch=max(1, min(2000, 2_000_000 // (a.size * b.size))), method="percentile",
                       random_state=np.random.default_rng(SIM_SEED)).confidence_interval
    return float(_pi_stat(a, b)), float(ci.low), float(ci.high)


def welch_all(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Welch difference, 95 % CI and p on all values: the unpaired view beside the declared one."""
    if min(a.size, b.size) < 2:
        return NAN, NAN, NAN, NAN
    d, se, df = welch_moments(a.mean(), a.var(ddof=1), a.size, b.mean(), b.var(ddof=1), b.size)
    half = half_width(float(se), float(df), 0.05)
    return float(d), float(d - half), float(d + half), float(p_two_sided(d, se, df))


def pairing_gain(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Pearson r of the pairs and Welch se / paired se: how much the shared seed saved."""
    if a.size < 2:
        return NAN, NAN
    da, db = a - a.mean(), b - b.mean()
    saa, sbb, sab = float(da @ da), float(db @ db), float(da @ db)
    r = NAN if a.size < 3 or np.ptp(a) <= FLAT or np.ptp(b) <= FLAT else sab / math.sqrt(saa * sbb)
    # both standard errors carry the same factor 1 / sqrt(n (n - 1))
    return r, (NAN if np.ptp(b - a) <= FLAT else math.sqrt((saa + sbb) / (saa + sbb - 2 * sab)))


def spread_of(a: np.ndarray, b: np.ndarray, paired: bool) -> float:
    """The sd a power statement is read at: of the paired differences, or pooled."""
    if min(a.size, b.size) < 2:
        return NAN
    if paired:
        return float(np.std(b - a, ddof=1))
    return math.sqrt((float(np.var(a, ddof=1)) + float(np.var(b, ddof=1))) / 2)
