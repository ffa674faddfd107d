"""Summaries and two-sample comparisons over seeds; no plotting, no MXNet.

Values that are None, NaN or infinite (a diverged run's loss, a missing field) are
dropped before any statistic is computed; `n` always counts the values actually used.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
from scipy import stats as sps

NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """Location and spread of one sample (std with ddof=1; NaN when undefined)."""

    n: int
    mean: float
    std: float
    median: float
    min: float
    max: float


@dataclass(frozen=True)
class Comparison:
    """Welch comparison of b against a: diff = mean(b) - mean(a)."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    se: float  # standard error of the difference
    df: float  # Welch-Satterthwaite degrees of freedom
    ci_low: float
    ci_high: float
    p: float  # two-sided Welch t-test


def finite(values: Iterable[Optional[float]]) -> np.ndarray:
    """The finite values as a float array (None, NaN and inf dropped)."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def summarize(values: Iterable[Optional[float]]) -> Summary:
    """Mean, sample std (ddof=1), median, n, min, max of the finite values."""
    x = finite(values)
    if x.size == 0:
        return Summary(0, NAN, NAN, NAN, NAN, NAN)
    std = math.sqrt(_var(x)) if x.size > 1 else NAN
    return Summary(int(x.size), float(np.mean(x)), std, float(np.median(x)),
                   float(np.min(x)), float(np.max(x)))


def _var(x: np.ndarray) -> float:
    """Sample variance (ddof=1), exactly 0 when all values are equal (not ~1e-32 round-off)."""
    return 0.0 if np.ptp(x) == 0 else float(np.var(x, ddof=1))


def _se_df(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Standard error of mean(b) - mean(a) and Welch-Satterthwaite df (NaN if undefined)."""
    if a.size < 2 or b.size < 2:
        return NAN, NAN
    va, vb = _var(a) / a.size, _var(b) / b.size
    se = math.sqrt(va + vb)
    if se == 0:  # no spread on either side: the t statistic is 0/0
        return 0.0, NAN
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    return float(se), float(df)


def welch(a: Iterable[Optional[float]], b: Iterable[Optional[float]],
          confidence: float = 0.95) -> Comparison:
    """Difference of means b - a, its Welch CI and the Welch t-test p-value."""
    x, y = finite(a), finite(b)
    mean_a = float(np.mean(x)) if x.size else NAN
    mean_b = float(np.mean(y)) if y.size else NAN
    diff = mean_b - mean_a
    se, df = _se_df(x, y)
    if math.isnan(df):
        return Comparison(x.size, y.size, mean_a, mean_b, diff, se, df, NAN, NAN, NAN)
    half = sps.t.ppf(0.5 + confidence / 2, df) * se
    # scipy's ttest_ind gives the same p, but warns ("Precision loss ...", with its source
    # line) on nearly identical values, such as smoke runs at chance: computed from se and df
    p = float(2 * sps.t.sf(abs(diff) / se, df))
    return Comparison(x.size, y.size, mean_a, mean_b, diff, se, df,
                      diff - half, diff + half, p)


def min_detectable_difference(a: Iterable[Optional[float]], b: Iterable[Optional[float]],
                              power: float = 0.8, alpha: float = 0.05) -> float:
    """Smallest true difference a two-sided Welch test at `alpha` finds with `power`.

    Normal-theory approximation with the observed spread, as in sample-size tables:
        MDD = (t_{1-alpha/2, df} + t_{power, df}) * SE,
    SE = sqrt(s_a^2/n_a + s_b^2/n_b), df = Welch-Satterthwaite. The far rejection tail
    is ignored (it adds < alpha/2 to the power). NaN when fewer than two values on a side;
    0 when neither side varies.
    """
    x, y = finite(a), finite(b)
    se, df = _se_df(x, y)
    if se == 0:
        return 0.0
    if math.isnan(df):
        return NAN
    return float((sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(power, df)) * se)


def format_p(p: float, alpha: float = 0.05) -> str:
    """'p = 0.041', 'p < 0.001'; never rounds a p below alpha up to alpha or above it."""
    if p < 0.001:
        return "p < 0.001"
    for digits in range(2, 8):
        text = f"{p:.{digits}g}"
        if (float(text) >= alpha) == (p >= alpha):
            break
    return f"p = {text}"


@dataclass(frozen=True)
class Skew:
    """The sample skewness G1 of some values, its standard error, and the diagnostic's word."""

    n: int
    g1: float
    se: float

    @property
    def skewed(self) -> bool:
        """|G1| beyond twice its standard error: the textbook rule (Tabachnick & Fidell)."""
        return bool(self.n >= 3 and abs(self.g1) > 2 * self.se)

    def text(self) -> str:
        if self.n < 3:
            return "too few seeds to judge skew"
        side = "right" if self.g1 > 0 else "left"
        word = f"skewed to the {side}" if self.skewed else "no clear skew"
        return f"{word} (G1 {self.g1:+.2f}, twice its se {2 * self.se:.2f})"


def skewness(values: Iterable[Optional[float]]) -> Skew:
    """Adjusted Fisher-Pearson skewness G1 of the finite values and its standard error
    sqrt(6n(n-1) / ((n-2)(n+1)(n+3))); NaN below 3 values or without spread."""
    x = finite(values)
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0:
        return Skew(n, NAN, NAN)
    g1 = float(sps.skew(x, bias=False))
    se = math.sqrt(6 * n * (n - 1) / ((n - 2) * (n + 1) * (n + 3)))
    return Skew(n, g1, se)
