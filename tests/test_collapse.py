"""Collapsed runs, the median basis, the locked plan and the power statement (decide.py,
collapse.py, signtest.py, plan.py, power.py), checked against known truth by simulating
whole experiments through the real "until decided" loop. The scenarios are the review's: one
arm that collapses, collapses on both sides, skewed differences; rates carry 3 Monte Carlo
standard errors. No MXNet here."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gluon_resnet.analysis import collapse as C
from gluon_resnet.analysis import decide as D
from gluon_resnet.analysis import power, signtest
import simloop

ALPHA, MARGIN, CAP = 0.05, 0.005, 10
DECLARED = D.Analysis(metric="last3_precise_test_acc", margin=MARGIN, max_seeds=CAP,
                      basis="median", collapse="separate", collapse_below=0.2)


# Sample sizes: as in test_decide.py, a 5 % rate is checked against 5 % + 3 Monte Carlo
# standard errors (0.077 at 600 experiments, 0.073 at 800; 0.137 for the 10 % union bound
# at 600). The figures are quoted in the README and decide.JOINT_RATE (pinned by
# test_joint_error_rate_of_both_families), so n and seeds stay with them.
def _bound(rate: float, n: int) -> float:
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


def _wilson(k: int, n: int) -> str:
    low, high = stats.binomtest(k, n).proportion_ci(method="wilson")
    return f"{k / n:.3f} [{low:.3f}, {high:.3f}]"


def _until_decided(values: np.ndarray, analysis: D.Analysis) -> list[list[D.Verdict]]:
    """values: groups x seeds (group 0 the baseline of every other); the printed verdicts at
    every look the real loop takes (groups stop when their comparisons are decided)."""
    run = simloop.until_decided(values, [(0, j) for j in range(1, len(values))], analysis)
    return [printed for printed, _ in run]


def _experiments(n_exp: int, seed: int, variants: int, draw) -> list[np.ndarray]:
    """n_exp arrays of (1 + variants) x CAP values; draw(rng, shape) gives the values."""
    rng = np.random.default_rng(seed)
    return [draw(rng, (1 + variants, CAP)) for _ in range(n_exp)]


def _runs(rng, shape, collapse_rate=(0.0, 0.0), shift=0.0):
    """Accuracies near 0.9 with a shared seed effect; each run collapses (to chance, or
    diverges: NaN) with its group's rate; variants shifted by `shift` when they train."""
    seed_effect = rng.normal(0, 0.003, shape[1])
    values = 0.9 + seed_effect + rng.normal(0, 0.0025, shape)
    values[1:] += shift
    rates = np.array([collapse_rate[0]] + [collapse_rate[1]] * (shape[0] - 1))[:, None]
    hit = rng.random(shape) < rates
    values[hit] = np.where(rng.random(hit.sum()) < 0.5, 0.1, np.nan)  # at chance or diverged
    return values


def _false_accuracy_claims(runs) -> int:
    return sum(any(v.kind in ("better", "worse") for look in r for v in look) for r in runs)


def _false_collapse_claims(runs) -> int:
    return sum(any(v.p_collapse_holm < ALPHA for look in r for v in look) for r in runs)


@pytest.mark.slow
@pytest.mark.parametrize("basis", ["median", "mean"])
def test_one_collapsing_arm_is_a_collapse_claim_not_an_accuracy_one(basis):
    """The variant collapses in 20 % of seeds and otherwise trains exactly like the baseline:
    the separate rule keeps false better/worse at alpha on either basis (seed_notebook
    declares the median, depth the mean) and says when the variant collapses more."""
    n_exp = 600
    declared = D.Analysis.from_dict({**DECLARED.to_dict(), "basis": basis})
    runs = [_until_decided(v, declared) for v in _experiments(
        n_exp, 1, 1, lambda rng, shape: _runs(rng, shape, collapse_rate=(0.0, 0.2)))]
    false = _false_accuracy_claims(runs)
    found = _false_collapse_claims(runs)  # true here: the variant does collapse more
    print(f"one collapsing arm (20 %), {basis} basis: false better/worse {_wilson(false, n_exp)}; "
          f"collapse found {found / n_exp:.3f}")
    assert false / n_exp <= _bound(ALPHA, n_exp)


@pytest.mark.slow
@pytest.mark.parametrize("basis", ["median", "mean"])
def test_symmetric_collapses_keep_both_claims_at_alpha(basis):
    """Both arms collapse in 20 % of seeds, independently; no difference otherwise."""
    n_exp = 600
    declared = D.Analysis.from_dict({**DECLARED.to_dict(), "basis": basis})
    runs = [_until_decided(v, declared) for v in _experiments(
        n_exp, 2, 1, lambda rng, shape: _runs(rng, shape, collapse_rate=(0.2, 0.2)))]
    acc, col = _false_accuracy_claims(runs), _false_collapse_claims(runs)
    print(f"symmetric collapses (20 % each), {basis} basis: false better/worse {_wilson(acc, n_exp)}; "
          f"false collapse claim {_wilson(col, n_exp)}")
    assert acc / n_exp <= _bound(ALPHA, n_exp) and col / n_exp <= _bound(ALPHA, n_exp)


def _lognormal(rng, shape):
    """Paired differences from a skewed (lognormal) law shifted to median 0."""
    values = np.full(shape, 0.9)
    d = rng.lognormal(0.0, 1.0, shape[1]) - 1.0  # median of lognormal(0, 1) is 1
    values[1] += 0.003 * d
    return values


@pytest.mark.slow
def test_skewed_differences_hold_alpha_on_the_median_basis_not_the_mean():
    n_exp = 800
    exps = _experiments(n_exp, 3, 1, _lognormal)
    median = _false_accuracy_claims([_until_decided(v, DECLARED) for v in exps])
    mean_an = D.Analysis(margin=MARGIN, max_seeds=CAP)
    mean = _false_accuracy_claims([_until_decided(v - np.array([[0], [0.003 * (math.e ** 0.5 - 1)]]),
                                                  mean_an) for v in exps])  # mean-centred
    print(f"skewed (lognormal) differences: false better/worse on the median basis "
          f"{_wilson(median, n_exp)}; on the mean basis (centred on the mean) {_wilson(mean, n_exp)}")
    assert median / n_exp <= _bound(ALPHA, n_exp)


@pytest.mark.slow
def test_joint_error_rate_of_the_three_families():
    """Two variants with no difference and two at the margin (half +, half -), every run
    collapsing alike (10 %) on both sides: any false claim of the three families (better/
    worse for the first two, equivalent for the others, a collapse-rate claim for any),
    through the loop."""
    n_exp = 600

    def draw(rng, shape):
        v = _runs(rng, shape, collapse_rate=(0.1, 0.1))
        v[3] += MARGIN * rng.choice([-1, 1])
        v[4] += MARGIN * rng.choice([-1, 1])
        return v
    false = {}
    for basis in ("median", "mean"):
        an = D.Analysis.from_dict({**DECLARED.to_dict(), "basis": basis})
        runs = [_until_decided(v, an) for v in _experiments(n_exp, 4, 4, draw)]
        false[basis] = sum(
            any(look[i].kind in ("better", "worse") for look in r for i in (0, 1))
            or any(look[i].kind == "equivalent" or look[i].within_margin
                   for look in r for i in (2, 3))
            or any(v.p_collapse_holm < ALPHA for look in r for v in look) for r in runs)
        print(f"joint (any false claim of the three families, {basis} basis): "
              f"{_wilson(false[basis], n_exp)}")
    for basis, k in false.items():
        assert _wilson(k, n_exp) == "{:.3f} [{:.3f}, {:.3f}]".format(*D.JOINT_RATE[basis]), (
            "the reports quote decide.JOINT_RATE: update it to this run's numbers")
        assert k / n_exp <= _bound(3 * ALPHA, n_exp)  # the union bound of the three


def _fall_mixture(rng, shape):
    """The baseline falls 3 points in 30 % of seeds (as conv_bn_relu-110 did inside its
    warm-up in 3 of 10); the variant is shifted so that the mean difference is 0."""
    values = 0.9 + rng.normal(0, 0.003, shape[1]) + rng.normal(0, 0.0025, shape)
    values[0] -= 0.03 * (rng.random(shape[1]) < 0.3)
    values[1] -= 0.03 * 0.3
    return values


@pytest.mark.slow
def test_the_mean_basis_under_skew_and_falls_quotes_its_measured_rates():
    """The audit's scenarios for the mean basis, through the loop: mean-zero lognormal
    per-seed differences, and a baseline that falls in 30 % of seeds (mean difference 0).
    The mean basis is not robust there (the audit: 0.143 and 0.231 against 0.05), which is
    why new studies declare the median and a mean-basis report quotes these rates
    (decide.MEAN_BASIS_RATES, checked here) beside its median-basis sensitivity lines."""
    n_exp = 800
    mean_an = D.Analysis(margin=MARGIN, max_seeds=CAP)
    centre = np.array([[0], [0.003 * (math.e ** 0.5 - 1)]])
    skew = _false_accuracy_claims([_until_decided(v - centre, mean_an)
                                   for v in _experiments(n_exp, 3, 1, _lognormal)])
    fall = _false_accuracy_claims([_until_decided(v, mean_an)
                                   for v in _experiments(n_exp, 8, 1, _fall_mixture)])
    print(f"mean basis: false better/worse with lognormal differences {_wilson(skew, n_exp)}, "
          f"with a falling baseline {_wilson(fall, n_exp)}")
    assert _wilson(skew, n_exp) == "{:.3f} [{:.3f}, {:.3f}]".format(*D.MEAN_BASIS_RATES["skew"])
    assert _wilson(fall, n_exp) == "{:.3f} [{:.3f}, {:.3f}]".format(*D.MEAN_BASIS_RATES["fall"])
    assert fall / n_exp > _bound(ALPHA, n_exp)  # not robust: what the report warns of


@pytest.mark.slow
def test_a_verdict_once_reported_stays_under_the_locked_plan():
    """Seeds past the cap are not analysed, so looking again never takes a verdict back."""
    rng = np.random.default_rng(5)
    taken_back = 0
    for _ in range(150):
        v = _runs(rng, (2, CAP + 6), shift=rng.choice([0.0, 0.004]))
        kinds = [D.decide(dict(enumerate(v[0, :n].tolist())), {"x": dict(enumerate(v[1, :n].tolist()))},
                          DECLARED, extras=False)[0].kind for n in range(3, CAP + 7)]
        decided = np.array(kinds) != "undecided"
        taken_back += int(np.any(decided[:-1] & ~decided[1:]))
        assert kinds[CAP - 3:] == [kinds[CAP - 3]] * 7  # nothing moves past the cap
    assert taken_back == 0


# ---- the sign test and the power statement ----

@pytest.mark.slow
def test_sign_test_f_is_exact_against_simulation():
    rng = np.random.default_rng(7)
    signs = rng.random((200_000, CAP)) < 0.5
    n = np.arange(1, CAP + 1)
    k = np.cumsum(signs, axis=1)
    p = signtest._p_two_sided(k, n)[:, 2:]  # looks 3..10
    for q in (0.01, 0.03125, 0.1):
        sim = float(np.mean(p.min(axis=1) <= q))
        assert abs(sim - signtest.sequential_p(q, "two_sided", 3, CAP)) < 4 * math.sqrt(
            sim * (1 - sim) / 200_000) + 1e-9
    one = signtest.nominal_level("two_sided", 3, CAP, ALPHA)
    assert signtest.sequential_p(one, "two_sided", 3, CAP) <= ALPHA


@pytest.mark.slow
def test_median_interval_covers():
    rng = np.random.default_rng(8)
    cover = np.mean([(lambda lo_hi: lo_hi[0] <= 0 <= lo_hi[1])(
        signtest.median_interval(rng.standard_t(2, 9), 0.05)) for _ in range(4000)])
    assert cover >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / 4000)


@pytest.mark.slow
@pytest.mark.parametrize("basis, sd", [("mean", 0.003), ("median", 0.003), ("median", 0.01)])
def test_detectable_difference_is_found_with_the_declared_power(basis, sd):
    """At the printed detectable difference the real loop (its looks, and its early stops
    when equivalence is shown first) finds the difference in at least 80 % of experiments.
    The audit's case: median basis, sd 0.30 points, margin 0.5: the figure computed from one
    last look at the cap was ±0.42 points, found in only 0.763 [0.741, 0.784] of them."""
    an = D.Analysis(max_seeds=CAP, basis=basis, margin=MARGIN)
    delta = power.detectable(an, sd, 1)
    rng = np.random.default_rng(9)
    n_exp = 1000
    found = 0
    for _ in range(n_exp):
        values = np.full((2, CAP), 0.9)
        values[1] += delta + rng.normal(0, sd, CAP)
        found += any(v.kind in ("better", "worse") for look in _until_decided(values, an)
                     for v in look)
    print(f"{basis}, sd {100 * sd:.2f} points: detectable ±{100 * delta:.2f} points; the loop "
          f"found it in {_wilson(found, n_exp)}")
    assert found / n_exp >= an.power - 3 * math.sqrt(an.power * (1 - an.power) / n_exp)
    assert power.detectable(D.Analysis(max_seeds=3, basis="median"), 1.0, 6) is None


def test_a_zero_median_is_a_tie_not_a_direction():
    """The audit's case (cap 30): sixteen zero differences, then fourteen of +1 point. The
    signs differ from chance but the median at the deciding look is 0: it was printed
    "worse by 0.00 points"; now no direction is claimed."""
    an = D.Analysis(max_seeds=30, basis="median", margin=MARGIN)
    base = {s: 0.9 for s in range(30)}
    (v,) = D.decide(base, {"x": {s: 0.9 + (0.01 if s >= 16 else 0.0) for s in range(30)}}, an)
    assert v.kind not in ("better", "worse") and v.p_diff_holm < ALPHA  # the signs did differ
    assert "worse" not in v.sentence(an) and "better" not in v.sentence(an)
    assert v.kind == "equivalent"  # shown at look 16, when all 16 differences were 0
    (v,) = D.decide(base, {"x": {s: 0.9 + (0.01 if s >= 10 else 0.0) for s in range(30)}}, an)
    assert v.kind == "better"  # with a positive median the direction is claimed


def test_the_collapse_claim_uses_its_smallest_p_over_the_looks():
    """The audit's case: a claim on collapse rates at one look (p 0.043) vanished at the
    next (0.223) when a later seed went the other way; its p is now the repeated p of the
    smallest nominal p over the looks, so it never rises."""
    an = D.Analysis.from_dict({**DECLARED.to_dict(), "max_seeds": 30})
    base, var = {}, {}
    rng = np.random.default_rng(12)
    p_seen = []
    for s in range(30):
        base[s] = 0.1 if s in (8, 9, 11) else 0.9 + rng.normal(0, 0.003)
        var[s] = 0.1 if s < 8 else 0.9 + rng.normal(0, 0.003)
        if s >= 2:
            (v,) = D.decide(base, {"x": var}, an, extras=False)
            p_seen.append(v.p_collapse_holm)
    assert min(p_seen) < ALPHA  # 8 of 8 discordant seeds were the variant's
    assert all(b <= a + 1e-12 for a, b in zip(p_seen, p_seen[1:]))  # never rises
    current = C.p_over_looks(C.count(base, var, 0.2).p_exact(), 30)
    assert current > ALPHA  # the current counts alone (what the code used) lost the claim


def test_an_unpaired_design_applies_the_collapse_rule():
    """A run below collapse_below in an unpaired design is a collapse (left out, counted),
    not a low accuracy averaged in: the rule was applied to paired designs only."""
    an = D.Analysis(paired=False, collapse_below=0.2, margin=MARGIN)
    base = {s: 0.9 + 0.001 * s for s in range(6)}
    var = {**{s: 0.9 + 0.001 * s for s in range(5)}, 5: 0.15}
    (v,) = D.decide(base, {"x": var}, an)
    assert v.collapses.variant == 1 and v.n == 5
    assert abs(v.diff) < 0.01  # the 0.15 run is not in the mean
    assert "collapsed runs: baseline 0 of 6, variant 1 of" in v.sentence(an)


def test_seed_figures_beyond_the_planning_range_say_more_than():
    assert power.seeds_text(12, "mean") == "12"
    assert power.seeds_text(31, "mean") == "more than 30"
    assert power.seeds_text(None, "median") == "more than 200"
    assert power.seeds_text(150, "median") == "150"


def test_collapse_rule_and_sentences():
    base = {s: 0.9 for s in range(8)}
    var = {s: (0.1 if s < 6 else 0.91) for s in range(8)}
    assert C.apply_rule(var, "chance", 0.2)[0] == C.CHANCE and 0 not in C.apply_rule(var, "separate", 0.2)
    count = C.count(base, {**var, 7: float("nan")}, 0.2)
    assert (count.base, count.variant, count.only_variant) == (0, 7, 7)
    (v,) = D.decide(base, {"x": {**var, 7: float("nan")}}, DECLARED)
    assert v.p_collapse_holm < ALPHA and "collapses more often" in v.sentence(DECLARED)
    with pytest.raises(ValueError, match="collapse must be one of"):
        D.Analysis(collapse="ignore")
    with pytest.raises(ValueError, match="median basis .* paired"):
        D.Analysis(basis="median", paired=False)
    with pytest.raises(ValueError, match="max_seeds must be at most 1000"):
        D.Analysis(max_seeds=100_000)
