"""stats.py against hand computations, t tables, scipy called directly and simulation."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from scipy import stats as sps

from gluon_resnet.analysis.stats import (format_p, min_detectable_difference, summarize,
                                welch)

T975_DF4, T80_DF4 = 2.776445, 0.940965  # printed t tables, df = 4


def test_summarize_matches_statistics_module():
    values = [0.91, 0.88, 0.905, 0.899, 0.93]
    s = summarize(values)
    assert s.n == 5
    assert s.mean == pytest.approx(statistics.mean(values))
    assert s.std == pytest.approx(statistics.stdev(values))  # ddof = 1
    assert s.median == pytest.approx(statistics.median(values))
    assert (s.min, s.max) == (0.88, 0.93)


def test_summarize_drops_missing_and_handles_tiny_samples():
    s = summarize([0.5, None, float("nan"), float("inf"), 0.7])
    assert (s.n, s.mean, s.median) == (2, pytest.approx(0.6), pytest.approx(0.6))
    one = summarize([0.9])
    assert one.n == 1 and one.mean == 0.9 and math.isnan(one.std)
    empty = summarize([])
    assert empty.n == 0 and math.isnan(empty.mean) and math.isnan(empty.median)
    assert summarize([0.8, 0.8, 0.8]).std == 0.0  # not round-off noise


def test_welch_hand_computed_equal_sizes():
    # means 2 and 5, variances 1 and 1: SE = sqrt(2/3), df = 4 exactly
    c = welch([1, 2, 3], [4, 5, 6])
    se = math.sqrt(2 / 3)
    assert (c.diff, c.df) == (pytest.approx(3.0), pytest.approx(4.0))
    assert c.se == pytest.approx(se)
    assert c.ci_low == pytest.approx(3 - T975_DF4 * se, abs=1e-5)
    assert c.ci_high == pytest.approx(3 + T975_DF4 * se, abs=1e-5)
    assert c.p == pytest.approx(2 * sps.t.sf(3 / se, 4))


def test_welch_hand_computed_unequal_sizes_and_variances():
    # a: mean 1, var 2, n 2; b: mean 4, var 20/3, n 4 -> SE^2 = 1 + 5/3, df = 1728/468
    c = welch([0, 2], [1, 3, 5, 7])
    assert c.se == pytest.approx(math.sqrt(8 / 3))
    assert c.df == pytest.approx(1728 / 468)
    assert c.p == pytest.approx(2 * sps.t.sf(3 / math.sqrt(8 / 3), 1728 / 468))


def test_welch_matches_scipy_and_ci_bounds_sit_at_p_005():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.90, 0.004, 5), rng.normal(0.905, 0.009, 7)
    c = welch(a, b)
    assert c.p == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue)
    # duality: shifting b by a CI bound puts the Welch test exactly at p = 0.05
    for bound in (c.ci_low, c.ci_high):
        assert sps.ttest_ind(b - bound, a, equal_var=False).pvalue == pytest.approx(0.05)


def test_min_detectable_difference_formula_and_power():
    se = math.sqrt(2 / 3)
    assert min_detectable_difference([1, 2, 3], [4, 5, 6]) == \
        pytest.approx((T975_DF4 + T80_DF4) * se, abs=1e-5)
    # a true difference of that size is found about 80 % of the time (simulation)
    n, sigma = 5, 1.0
    z = np.arange(n) - 2.0
    z *= sigma / statistics.stdev(z)  # a sample whose spread is exactly sigma
    mdd = min_detectable_difference(z, z)
    rng = np.random.default_rng(0)
    a = rng.normal(0, sigma, (4000, n))
    b = rng.normal(mdd, sigma, (4000, n))
    power = np.mean(sps.ttest_ind(b, a, axis=1, equal_var=False).pvalue < 0.05)
    assert 0.72 < power < 0.88


def test_degenerate_inputs():
    assert math.isnan(min_detectable_difference([1.0], [1.0, 2.0]))
    assert min_detectable_difference([0.9, 0.9], [0.9, 0.9]) == 0.0
    c = welch([0.9, 0.9], [0.95, 0.95])
    assert math.isnan(c.p) and c.diff == pytest.approx(0.05)
    assert math.isnan(welch([], [0.9, 0.91]).diff)


@pytest.mark.parametrize("p, text", [(0.41, "p = 0.41"), (0.0123, "p = 0.012"),
                                     (0.0004, "p < 0.001"), (0.0496, "p = 0.0496"),
                                     (0.04996, "p = 0.04996"), (0.0504, "p = 0.05")])
def test_format_p_never_rounds_across_alpha(p, text):
    assert format_p(p) == text


def test_nearly_identical_values_warn_nothing():
    """Runs at chance differ by float noise: scipy's ttest_ind warned 'Precision loss ...'
    (with its source line) into normal output; the p now comes from se and df."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = welch([0.123456789] * 3, [0.123456789, 0.123456789, 0.12345678900000002])
        assert 0 < c.p <= 1
