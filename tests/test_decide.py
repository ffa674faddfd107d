"""The sequential, multiple-comparison verdicts of analysis/decide.py (design machinery in
analysis/sequential.py), checked against known truth.

Whole experiments are simulated from known distributions and run through the real "until
decided" loop (decide() after every round of seeds, stop when no verdict is "undecided"), so the
error rates measured here include the repeated looks and the four comparisons. Every rate bound
carries its Monte Carlo error: 3 binomial standard errors of the simulated experiments. The
false rates count a wrong verdict reached at any look, so they also bound the real loop, which
stops giving seeds to a comparison at its first decision (runs/runner.py, still_deciding).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from gluon_resnet.analysis import _sim_cache as C
from gluon_resnet.analysis import decide as D
from gluon_resnet.analysis import sequential as S
from gluon_resnet.analysis import signtest

from conftest import SEED_NOTEBOOK_FULL

BASE, MARGIN, ALPHA, MAX_SEEDS = 0.90, 0.005, 0.05, 10
# (sd of the seed effect that all groups of a paired seed share, sd of each run's own noise)
REALISTIC = (0.003, 0.0026)  # total sd ~0.004
MEDIUM = (0.003, 0.0018)     # total sd ~0.0035; per-seed differences sd ~0.0025
TIGHT = (0.0008, 0.0006)     # total sd 0.001; per-seed differences sd ~0.00085


# Sample sizes. A rate held at alpha = 5 % is checked as measured <= alpha + 3 Monte Carlo
# standard errors, 0.05 + 0.654 / sqrt(n): 0.079 at 500, 0.077 at 600, 0.073 at 800, 0.068 at
# 1,300 experiments (a true 5 % passes with probability 0.9987). n is sized so that the rule
# a test guards against would fail it: unequal spreads need 1,300, because the F of equal
# variances let 0.074-0.085 through there, which the 600-experiment bound (0.077) would
# pass; where a missing look correction is the failure, its rate is past 0.1 per comparison
# (test_sequential_p_inflates_and_is_a_cdf), far over every bound here. The simulations are
# seeded and the README quotes their rates (`make error-rates`), so n and seeds stay as they
# are; each is marked slow (`make test-fast` leaves them out).
def _bound(rate: float, n: int) -> float:
    """rate plus 3 Monte Carlo standard errors of a proportion measured on n experiments."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / n)


def _simulate(deltas, sds, paired: bool, n_exp: int, seed: int, spread: float = 1.0):
    """n_exp experiments of a baseline and len(deltas) variants, each run until decided.

    Values: BASE + delta + seed effect + own noise, both scaled by `spread` in the variants;
    paired designs share the seed effect across groups (same data order and initial weights),
    unpaired ones draw it per group. Returns per experiment the kinds and within_margin flags at
    every look taken (looks x variants)."""
    rng = np.random.default_rng(seed)
    shared_sd, own_sd = sds
    groups = len(deltas) + 1
    shared = rng.normal(0.0, shared_sd, (n_exp, 1 if paired else groups, MAX_SEEDS))
    scale = np.array([1.0] + [spread] * len(deltas))[None, :, None]
    values = (BASE + np.concatenate([[0.0], deltas])[None, :, None]
              + scale * (shared + rng.normal(0.0, own_sd, (n_exp, groups, MAX_SEEDS))))
    analysis = D.Analysis(margin=MARGIN, alpha=ALPHA, paired=paired, max_seeds=MAX_SEEDS)
    return [_until_decided(v, analysis) for v in values]


def _until_decided(values: np.ndarray, analysis):
    """The experiment loop: one more seed per round, decide, stop once nothing is undecided."""
    kinds, inside = [], []
    for n in range(analysis.min_seeds, analysis.max_seeds + 1):
        base = dict(enumerate(values[0, :n].tolist()))
        variants = {f"v{j}": dict(enumerate(values[j, :n].tolist())) for j in range(1, len(values))}
        verdicts = D.decide(base, variants, analysis, extras=False)
        kinds.append([v.kind for v in verdicts])
        inside.append([v.within_margin for v in verdicts])
        if all(v.kind != "undecided" for v in verdicts):
            break
    return np.array(kinds), np.array(inside)


def _never_undecided_again(runs) -> bool:
    """A decided comparison stays decided at every later look (repeated p-values never rise)."""
    for kinds, _ in runs:
        decided = kinds != "undecided"
        if np.any(decided[:-1] & ~decided[1:]):
            return False
    return True


# ---- simulations through the whole procedure ----

def _assert_family_wise_within_alpha(runs, n_exp: int, label: str) -> None:
    """Any false better/worse over the four equal comparisons and all looks: at most alpha
    (within Monte Carlo error); and no decision ever taken back."""
    any_false = np.mean([np.isin(kinds, ["better", "worse"]).any() for kinds, _ in runs])
    print(f"scenario 1 ({label}): false better/worse in {any_false:.3f} of {n_exp} experiments")
    assert any_false <= _bound(ALPHA, n_exp), (
        f"family-wise false better/worse rate {any_false:.3f} over {n_exp} experiments "
        f"exceeds alpha {ALPHA} + 3 MC se = {_bound(ALPHA, n_exp):.3f}")
    assert _never_undecided_again(runs)


@pytest.mark.slow
@pytest.mark.parametrize("paired, n_exp", [(True, 600), (False, 600)])
def test_no_difference_family_wise_false_positives_within_alpha(paired, n_exp):
    runs = _simulate([0.0, 0.0, 0.0, 0.0], REALISTIC, paired, n_exp, seed=11 if paired else 12)
    _assert_family_wise_within_alpha(runs, n_exp, "paired" if paired else "unpaired")


@pytest.mark.slow
def test_unequal_spreads_keep_the_unpaired_family_wise_rate_within_alpha():
    """Unpaired, all means equal, every variant's sd 3x the baseline's: the Welch null changes
    with the sd ratio, and F (the worst case over ratios) still holds alpha over looks and the
    four comparisons. The F of equal variances alone let 0.074 to 0.085 through here."""
    n_exp = 1300
    runs = _simulate([0.0, 0.0, 0.0, 0.0], REALISTIC, False, n_exp, seed=13, spread=3.0)
    _assert_family_wise_within_alpha(runs, n_exp, "unpaired, variants' sd 3x")


@pytest.mark.slow
def test_difference_at_the_margin_is_rarely_called_equivalent():
    """The boundary variant at +margin (half the experiments) or -margin; the others truly
    equivalent (difference 0), Holm's worst case: their equivalence nulls fall first, so the
    boundary comparison is tested at the full alpha. The spread (per-seed differences sd
    0.0025) keeps it undecided for several looks, so TOST's repeated looks matter."""
    n_exp = 800
    runs = (_simulate([+MARGIN, 0.0, 0.0, 0.0], MEDIUM, True, n_exp // 2, seed=21)
            + _simulate([-MARGIN, 0.0, 0.0, 0.0], MEDIUM, True, n_exp // 2, seed=22))
    false_eq = np.mean([((kinds[:, 0] == "equivalent") | inside[:, 0]).any()
                        for kinds, inside in runs])
    others_eq = np.mean([(k[-1, 1:] == "equivalent").mean() for k, _ in runs])
    print(f"scenario 2: false equivalence at the margin in {false_eq:.3f} of {n_exp} experiments "
          f"(the truly equivalent others called equivalent: {others_eq:.3f})")
    assert false_eq <= _bound(ALPHA, n_exp), (
        f"false equivalence rate at the margin {false_eq:.3f} over {n_exp} experiments exceeds "
        f"alpha {ALPHA} + 3 MC se = {_bound(ALPHA, n_exp):.3f}")
    assert others_eq >= 0.8, f"truly equivalent variants recognised in only {others_eq:.3f}"


@pytest.mark.slow
def test_no_difference_with_small_spread_is_found_equivalent():
    n_exp = 500
    runs = _simulate([0.0, 0.0, 0.0, 0.0], TIGHT, True, n_exp, seed=31)
    final = np.array([kinds[-1] for kinds, _ in runs])
    rate = float(np.mean(final == "equivalent"))
    all_four = float(np.mean((final == "equivalent").all(axis=1)))
    looks = np.mean([len(kinds) for kinds, _ in runs]) + 2
    print(f"scenario 3: equivalent in {rate:.3f} of {4 * n_exp} comparisons ({n_exp} experiments; "
          f"all four in {all_four:.3f}; mean seeds at stop {looks:.1f})")
    assert rate >= 0.8, f"equivalent by {MAX_SEEDS} seeds in only {rate:.3f} of comparisons"
    assert _never_undecided_again(runs)


@pytest.mark.slow
def test_large_improvement_is_found_better_never_worse():
    n_exp = 500
    runs = _simulate([0.02, 0.02, 0.02, 0.02], REALISTIC, True, n_exp, seed=41)
    final = np.array([kinds[-1] for kinds, _ in runs])
    better = float(np.mean(final == "better"))
    worse = int(sum(np.sum(kinds == "worse") for kinds, _ in runs))
    looks = np.mean([len(kinds) for kinds, _ in runs]) + 2
    print(f"scenario 4: better in {better:.3f} of {4 * n_exp} comparisons ({n_exp} experiments; "
          f"mean seeds at stop {looks:.1f}); worse verdicts: {worse}")
    assert better >= 0.95, f"a +2-point improvement was found better in only {better:.3f}"
    assert worse == 0, f"{worse} 'worse' verdicts for a +2-point improvement"


# ---- the sequential correction ----

GRID = np.array([0.0005, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.9])


@pytest.mark.parametrize("kind", S.KINDS)
def test_sequential_p_inflates_and_is_a_cdf(kind):
    f = np.array([D.sequential_p(q, kind, 3, MAX_SEEDS) for q in GRID])
    assert np.all(np.diff(f) >= 0), f"F not monotone: {f}"
    assert D.sequential_p(1.0, kind, 3, MAX_SEEDS) == 1.0
    assert D.sequential_p(0.0, kind, 3, MAX_SEEDS) == 0.0
    assert np.all(f >= GRID), f"F below the nominal p: {dict(zip(GRID, f, strict=True))}"
    assert D.sequential_p(0.05, kind, 3, MAX_SEEDS) > 0.1, "8 looks inflate 0.05 past 0.1"


@pytest.mark.parametrize("kind", ["paired", "one_sided"])
def test_single_look_needs_no_correction(kind):
    """One planned look: F is the identity up to Monte Carlo error (the t-test is exact)."""
    f = np.array([D.sequential_p(q, kind, 10, 10) for q in GRID])
    mc = 4 * np.sqrt(GRID * (1 - GRID) / S.N_SIMS)
    assert np.all(np.abs(f - GRID) <= mc), f"F - identity: {f - GRID}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["welch", "welch_one_sided"])
def test_welch_f_holds_at_sd_ratios_on_and_off_its_grid(kind):
    """Single comparisons simulated afresh (another seed) at sd ratios on and off SD_RATIOS:
    rejecting when the repeated p-value is <= alpha happens in at most alpha of them."""
    # 40,000: the worst rate must lie within 0.0033 (3 se) above alpha and 0.005 below it
    n_sims, rng = 40_000, np.random.default_rng(61)
    level = S.nominal_level(kind, 3, MAX_SEEDS, ALPHA)  # reject iff the minimum p <= level
    assert S.sequential_p(level, kind, 3, MAX_SEEDS) <= ALPHA
    rates = {}
    for ratio in (1.0, 1.5, 3.0, 5.0, 7.0, 10.0, 16.0, 40.0):
        a = rng.standard_normal((n_sims, MAX_SEEDS))
        b = ratio * rng.standard_normal((n_sims, MAX_SEEDS))
        min_p = np.ones(n_sims)
        for n in range(3, MAX_SEEDS + 1):
            est, se, df = S.welch_moments(a[:, :n].mean(1), a[:, :n].var(1, ddof=1), n,
                                   b[:, :n].mean(1), b[:, :n].var(1, ddof=1), n)
            p = S.p_two_sided(est, se, df) if kind == "welch" else special.stdtr(df, -est / se)
            min_p = np.minimum(min_p, p)
        rates[ratio] = float(np.mean(min_p <= level))
    print(f"{kind}: rejection rate by sd ratio {rates}")
    bound = _bound(ALPHA, n_sims)
    assert max(rates.values()) <= bound, f"{rates} exceed {bound:.4f}"
    assert max(rates.values()) > ALPHA - 0.005, f"worst case far from alpha: {rates}"


@pytest.mark.slow  # simulates the tables of SIM_LOOKS looks (about 6 s of CPU)
def test_caps_past_the_simulation_are_bounded_not_simulated(monkeypatch):
    """A cap of 1,000 simulates what a cap of SIM_LOOKS does: the looks past it are bounded,
    not simulated (--max-seeds 1000 took 46 s a round, 100,000 never finished)."""
    simulated = []
    real = S._null_running_min

    def recording(two_groups, min_seeds, last_look, n_sims, keep):
        simulated.append(last_look)
        return real(two_groups, min_seeds, last_look, n_sims, keep)
    for kind in ("paired", "welch"):
        S.sequential_p(0.01, kind, 3, S.SIM_LOOKS)  # the simulation, cached
        monkeypatch.setattr(S, "_null_running_min", recording)
        p = S.sequential_p(0.01, kind, 3, 1000)
        level = S.nominal_level(kind, 3, 1000, ALPHA / 4)
        monkeypatch.undo()
        assert simulated == [], f"a cap of 1,000 simulated looks up to {simulated}"
        assert p == 1.0 and 0 < level < ALPHA / 4 / (1000 - S.SIM_LOOKS)
        assert S.sequential_p(level, kind, 3, 1000) <= ALPHA / 4
    assert S.sequential_p(1e-6, "paired", 40, 1000) == pytest.approx(961e-6)  # Bonferroni


def test_simulations_kept_on_disk_are_read_back_only_whole_and_from_the_same_inputs(
        tmp_path, monkeypatch):
    """A second process reads the table the first one simulated (the same numbers); a file
    that was damaged or edited, or computed from other arguments, is simulated afresh; a
    folder that cannot be written costs only the time."""
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "cache"))
    calls = []
    real = S._null_running_min

    def counted(*args):
        calls.append(args)
        return real(*args)
    monkeypatch.setattr(S, "_null_running_min", counted)
    direct = real(False, 3, 6, 2_000, False)
    first = S._simulated(False, 3, 6, 2_000, False)
    again = S._simulated(False, 3, 6, 2_000, False)
    assert len(calls) == 1 and all(np.array_equal(a, b) for a, b in zip(direct, first))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    (path,) = (tmp_path / "cache").glob("*.npz")
    with np.load(path) as f:  # one p edited, the key and the digest kept
        saved = dict(f)
    saved["a0"] = saved["a0"].copy()
    saved["a0"][0] = 0.5
    np.savez(path, **saved)
    assert all(np.array_equal(a, b) for a, b in zip(direct, S._simulated(False, 3, 6, 2_000, False)))
    assert len(calls) == 2
    path.write_bytes(path.read_bytes()[:1000])  # cut short
    S._simulated(False, 3, 6, 2_000, False)
    assert len(calls) == 3
    S._simulated(False, 3, 7, 2_000, False)  # another plan of looks: its own table
    assert len(calls) == 4 and len(list((tmp_path / "cache").glob("*.npz"))) == 2
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "file" / "cache"))  # cannot be made
    assert all(np.array_equal(a, b) for a, b in zip(direct, S._simulated(False, 3, 6, 2_000, False)))


def test_the_bound_past_the_simulation_is_conservative():
    """F over 3..40 looks simulated afresh (another seed, fewer draws): the bound is above it."""
    exact = S._null_running_min(False, 3, 40, 40_000, keep=False)[0]
    f = np.searchsorted(exact, GRID, side="right") / exact.size
    bound = np.array([S.sequential_p(q, "paired", 3, 40) for q in GRID])
    mc = 4 * np.sqrt(f * (1 - f) / exact.size)
    assert np.all(bound >= f - mc), f"bound below the exact F: {bound - f}"


@pytest.mark.slow
@pytest.mark.parametrize("kind, ratios", [("paired", (1.0,)), ("welch", (1.0, 3.0, 12.0, 1e6))])
def test_error_rate_holds_at_a_cap_past_the_simulation(kind, ratios):
    """Single comparisons under the null, looked at after every seed from 3 to 45 (15 looks
    past SIM_LOOKS): rejecting when the repeated p-value is <= alpha happens in at most alpha
    of them, for the Welch kinds at sd ratios across SD_RATIOS (the bound's uniform-p
    assumption checked there)."""
    cap, n_sims, rng = 45, 40_000, np.random.default_rng(71)
    level = S.nominal_level(kind, 3, cap, ALPHA)
    assert S.sequential_p(level, kind, 3, cap) <= ALPHA
    rates = {}
    for ratio in ratios:
        a = rng.standard_normal((n_sims, cap))
        b = ratio * rng.standard_normal((n_sims, cap)) if kind == "welch" else None
        min_p = np.ones(n_sims)
        for n in range(3, cap + 1):
            if kind == "paired":
                est, se, df = a[:, :n].mean(1), a[:, :n].std(1, ddof=1) / np.sqrt(n), n - 1.0
            else:
                est, se, df = S.welch_moments(a[:, :n].mean(1), a[:, :n].var(1, ddof=1), n,
                                       b[:, :n].mean(1), b[:, :n].var(1, ddof=1), n)
            min_p = np.minimum(min_p, S.p_two_sided(est, se, df))
        rates[ratio] = float(np.mean(min_p <= level))
    print(f"{kind}, looks 3..{cap}: rejection rate by sd ratio {rates}")
    assert max(rates.values()) <= _bound(ALPHA, n_sims), rates


def test_re_exports_and_bad_arguments():
    assert D.sequential_p is S.sequential_p and D.holm is S.holm
    assert D.look_schedule is S.look_schedule
    with pytest.raises(ValueError, match="kind"):
        D.sequential_p(0.1, "binomial", 3, 10)
    with pytest.raises(ValueError, match="last_look"):
        D.sequential_p(0.1, "paired", 5, 4)


def test_look_schedule():
    assert D.look_schedule(D.Analysis(), 4) == list(range(3, 11))
    assert D.look_schedule(D.Analysis(min_seeds=4, max_seeds=6), 8) == [4, 5, 6, 7, 8]


# ---- the nominal tests agree with scipy and statsmodels ----

def _two_groups(n: int, paired: bool, seed: int = 5):
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.003, n)
    a = BASE + shared + rng.normal(0, 0.0026, n)
    b = BASE + 0.002 + (shared if paired else rng.normal(0, 0.003, n)) + rng.normal(0, 0.0026, n)
    return a, b


@pytest.mark.parametrize("paired", [True, False])
def test_nominal_and_sequential_p_match_scipy_and_statsmodels(paired):
    a, b = _two_groups(7, paired)
    analysis = D.Analysis(paired=paired)
    (v,) = D.decide(dict(enumerate(a)), {"x": dict(enumerate(b))}, analysis)
    if paired:
        nominal = [stats.ttest_rel(b[:n], a[:n]).pvalue for n in range(3, 8)]
        tost = [ttost_paired(b[:n], a[:n], -MARGIN, MARGIN)[0] for n in range(3, 8)]
        ci95 = stats.ttest_rel(b, a).confidence_interval()
        assert (v.ci95_low, v.ci95_high) == pytest.approx((ci95.low, ci95.high), rel=1e-9)
    else:
        nominal = [stats.ttest_ind(b[:n], a[:n], equal_var=False).pvalue for n in range(3, 8)]
        tost = [ttost_ind(b[:n], a[:n], -MARGIN, MARGIN, usevar="unequal")[0] for n in range(3, 8)]
    kind, one_sided = ("paired", "one_sided") if paired else ("welch", "welch_one_sided")
    assert v.p_diff == pytest.approx(nominal[-1], rel=1e-9)
    assert v.p_equiv == pytest.approx(tost[-1], rel=1e-9)
    assert v.p_diff_seq == D.sequential_p(min(nominal), kind, 3, MAX_SEEDS)
    assert v.p_equiv_seq == D.sequential_p(min(tost), one_sided, 3, MAX_SEEDS)
    assert v.p_diff_holm == pytest.approx(v.p_diff_seq)  # one comparison: Holm changes nothing
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert (v.welch_diff, v.welch_p) == pytest.approx((b.mean() - a.mean(), welch.pvalue), rel=1e-9)
    assert v.ci_low < v.ci95_low < v.diff < v.ci95_high < v.ci_high


def test_holm_matches_statsmodels_on_known_p_values():
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(D.holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(D.holm(p), multipletests(p, method="holm")[1])
    q = [0.2, 0.9, 0.5, 0.01, 0.01, 0.3]
    np.testing.assert_allclose(D.holm(q), multipletests(q, method="holm")[1])


def test_holm_spreads_alpha_over_the_comparisons():
    """The same data decided alone is 'better'; among three similar comparisons Holm adjusts."""
    a = {s: BASE for s in range(3)}
    b = {0: BASE + 0.010, 1: BASE + 0.013, 2: BASE + 0.011}
    alone = D.decide(a, {"x": b}, D.Analysis(), extras=False)[0]
    three = D.decide(a, {"x": b, "y": dict(b), "z": dict(b)}, D.Analysis(), extras=False)[0]
    assert three.p_diff_seq == alone.p_diff_seq
    assert three.p_diff_holm == pytest.approx(min(1.0, 3 * alone.p_diff_seq))


# ---- effect, planning, sentences ----

def test_extras_leave_the_decision_unchanged_and_plan_seeds():
    a, b = _two_groups(5, True, seed=7)
    analysis = D.Analysis()
    full = D.decide(dict(enumerate(a)), {"x": dict(enumerate(b))}, analysis)[0]
    fast = D.decide(dict(enumerate(a)), {"x": dict(enumerate(b))}, analysis, extras=False)[0]
    for field in ("kind", "p_diff_holm", "p_equiv_holm", "ci_low", "ci_high"):
        assert getattr(full, field) == getattr(fast, field), field
    for field in ("welch_p", "correlation", "se_ratio", "spread"):  # what only a report shows
        assert math.isfinite(getattr(full, field)) and math.isnan(getattr(fast, field)), field
    assert full.kind == "undecided", full
    assert full.seeds_to_settle is not None and full.seeds_to_settle >= full.n
    both = (full.seeds_for_difference, full.seeds_for_equivalence)
    assert full.seeds_to_settle == min(x for x in both if x is not None)
    assert "would settle it" in full.sentence(analysis)


def test_past_the_cap_is_a_projection_until_the_caps_look():
    """An undecided comparison whose spread projects past the cap: before the cap's look the
    sentence says the plan is not expected to settle it; only at the cap that it ends
    undecided (a projection from a few seeds is not an outcome)."""
    rng = np.random.default_rng(2)  # +0.3 points, sd 0.6: undecided at 4 seeds and at 10
    base = {s: BASE + rng.normal(0, 0.003) for s in range(10)}
    var = {s: base[s] + 0.003 + rng.normal(0, 0.006) for s in range(10)}
    analysis = D.Analysis(max_seeds=10)
    said = {}
    for n in (4, 10):
        (v,) = D.decide({s: base[s] for s in range(n)}, {"x": {s: var[s] for s in range(n)}},
                        analysis)
        assert v.kind == "undecided" and v.seeds_to_settle and v.seeds_to_settle > 10, v
        said[n] = v.sentence(analysis)
    assert "past the locked cap of 10: at this spread the plan is not expected" in said[4]
    assert "ends undecided" not in said[4]
    assert said[10].endswith("past the locked cap of 10: this plan ends undecided")


def test_no_seed_count_the_locked_plan_cannot_decide_at_is_projected():
    """Median basis, cap 20, two comparisons (orderings_confirm's plan): 7 of 7 differences
    below 0 is the most a 7-seed look can show, and the plan's level (alpha spent over looks
    3..20) is below its p, so 7 seeds cannot settle it whatever the truth. The projection is
    the first count where one look at the plan's own level has the declared power; it said 7
    here, the level of a plan that ended at 7."""
    pts = {"x": [-0.18, -1.16, -0.28, -0.71, -0.82, -0.30, -0.90],
           "y": [+0.41, -0.31, -0.26, -0.65, -0.25, +0.34, -0.20]}
    base = {s: BASE for s in range(7)}
    analysis = D.Analysis(basis="median", max_seeds=20)
    v, _ = D.decide(base, {k: {s: BASE + d / 100 for s, d in enumerate(ds)}
                           for k, ds in pts.items()}, analysis)
    level = signtest.nominal_level("two_sided", 3, 20, ALPHA / 2)
    assert v.kind == "undecided" and 2 / 2 ** 7 > level, (v, level)
    m = v.seeds_for_difference
    assert m is not None and 7 < m <= 20, v
    d = np.array(pts["x"]) / 100
    p_neg = stats.norm.cdf(abs(np.median(d)) / np.std(d, ddof=1))
    assert signtest.power(m, p_neg, level) >= 0.8 > signtest.power(m - 1, p_neg, level)


def test_a_later_cap_projects_more_seeds():
    """Mean basis: the same 5 paired seeds (+0.36 points, sd 0.21) under caps 10 and 30. A
    look before the cap spends alpha as the whole locked plan does, so the later cap (more
    looks, a lower level) needs more seeds; the projection did not depend on the cap."""
    base = {s: BASE for s in range(5)}
    var = {s: BASE + d / 100 for s, d in enumerate([0.6, 0.1, 0.5, 0.2, 0.4])}
    said = {cap: D.decide(base, {"x": var}, D.Analysis(max_seeds=cap))[0] for cap in (10, 30)}
    assert all(v.kind == "undecided" for v in said.values()), said
    short, long = said[10].seeds_for_difference, said[30].seeds_for_difference
    assert short is not None and long is not None and 5 < short < long <= 10, (short, long)


def test_planning_needs_fewer_seeds_for_larger_effects():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.004, 4)
    noise -= noise.mean()  # observed differences exactly 0.3, 0.5 and 1.0 points
    base = {s: BASE for s in range(4)}
    deltas = (0.003, 0.005, 0.010)
    variants = {f"d{d}": {s: BASE + d + noise[s] for s in range(4)} for d in deltas}
    verdicts = D.decide(base, variants, D.Analysis())
    needed = [v.seeds_for_difference for v in verdicts]
    assert all(v.kind == "undecided" for v in verdicts), [v.kind for v in verdicts]
    assert None not in needed and needed == sorted(needed, reverse=True), needed
    # Bracket: more seeds than one unrepeated look at alpha/3 would need, fewer than
    # Bonferroni over all (at most 28 counted) looks would.
    effect = deltas[1] / np.std(noise, ddof=1)
    single = TTestPower().solve_power(effect_size=effect, alpha=ALPHA / 3, power=0.8)
    bonferroni = TTestPower().solve_power(effect_size=effect, alpha=ALPHA / 3 / 28, power=0.8)
    assert math.ceil(single) < needed[1] <= math.ceil(bonferroni), (single, needed[1], bonferroni)


@pytest.mark.slow
def test_simultaneous_interval_covers_at_every_look():
    """One comparison, true difference +0.3 points: the simultaneous CI of every look covers it
    in all but alpha of the experiments (exact for the paired t under normality)."""
    n_exp, delta = 1000, 0.003
    rng = np.random.default_rng(51)
    shared = rng.normal(0, REALISTIC[0], (n_exp, MAX_SEEDS))
    a = BASE + shared + rng.normal(0, REALISTIC[1], (n_exp, MAX_SEEDS))
    b = BASE + delta + shared + rng.normal(0, REALISTIC[1], (n_exp, MAX_SEEDS))
    missed = 0
    for e in range(n_exp):
        for n in range(3, MAX_SEEDS + 1):
            (v,) = D.decide(dict(enumerate(a[e, :n])), {"x": dict(enumerate(b[e, :n]))},
                            D.Analysis(), extras=False)
            if not v.ci_low <= delta <= v.ci_high:
                missed += 1
                break
    rate = missed / n_exp
    print(f"simultaneous CI missed the truth at some look in {rate:.3f} of {n_exp} experiments")
    assert rate <= _bound(ALPHA, n_exp), f"non-coverage {rate:.3f} > {_bound(ALPHA, n_exp):.3f}"


def test_nothing_settles_a_coin_flip_at_the_margin():
    """Observed difference at 0 with huge spread: no power for either question by 200 seeds."""
    base = {s: BASE for s in range(3)}
    var = {0: BASE - 0.05, 1: BASE + 0.05, 2: BASE}
    (v,) = D.decide(base, {"x": var}, D.Analysis())
    assert v.kind == "undecided" and v.seeds_to_settle is None
    assert "more than 200 seeds would be needed to settle it" in v.sentence(D.Analysis())


def test_sentences():
    analysis = D.Analysis()
    base = {s: BASE + 0.001 * (s % 3) for s in range(6)}
    better = {s: v + 0.0084 + 0.0002 * (s % 2) for s, v in base.items()}
    same = {s: v + 0.0005 - 0.0001 * (s % 2) for s, v in base.items()}
    verdicts = D.decide(base, {"better": better, "same": same}, analysis)
    kinds = {v.name: v for v in verdicts}
    assert kinds["better"].sentence(analysis).startswith("better by 0.85 points (simultaneous CI +")
    assert kinds["same"].kind == "better" and kinds["same"].within_margin  # tiny but certain
    assert "inside the ±0.50 points margin" in kinds["same"].sentence(analysis)


# ---- probability of improvement, pairing ----

def test_prob_improvement():
    low, high = [0.80, 0.81, 0.82], [0.90, 0.91, 0.92]
    assert D.prob_improvement(low, high, paired=True) == (1.0, 1.0, 1.0)
    assert D.prob_improvement([0.80, 0.81, 0.82], [0.90, 0.91], paired=False) == (1.0, 1.0, 1.0)
    assert D.prob_improvement([1.0, 2.0], [1.5, 3.0], paired=False)[0] == 0.75
    assert D.prob_improvement([1.0, 2.0], [1.0, 2.0], paired=True)[0] == 0.5  # ties count half
    point, low, high = D.prob_improvement([0.9], [0.95], paired=True)
    assert point == 1.0 and math.isnan(low) and math.isnan(high)
    a, b = _two_groups(8, True)
    point, low, high = D.prob_improvement(a, b, paired=True)
    assert 0 <= low <= point <= high <= 1 and high - low > 0.1


def test_pairing_shows_in_correlation_and_se_ratio():
    a, b = _two_groups(10, True)
    v = D.decide(dict(enumerate(a)), {"x": dict(enumerate(b))}, D.Analysis())[0]
    assert v.correlation == pytest.approx(stats.pearsonr(a, b)[0])
    paired_se = np.std(b - a, ddof=1) / math.sqrt(10)
    welch_se = math.sqrt(a.var(ddof=1) / 10 + b.var(ddof=1) / 10)
    assert v.se_ratio == pytest.approx(welch_se / paired_se)
    assert v.se_ratio > 1.2  # the shared seed effect (sd 0.003) is what pairing removes
    u = D.decide(dict(enumerate(a)), {"x": dict(enumerate(b))}, D.Analysis(paired=False))[0]
    assert math.isnan(u.correlation) and math.isnan(u.se_ratio)


# ---- Analysis ----

@pytest.mark.parametrize("bad, message", [
    (dict(alpha=0.0), "alpha"), (dict(alpha=1.5), "alpha"), (dict(margin=-0.01), "margin"),
    (dict(min_seeds=1), "min_seeds"), (dict(min_seeds=5, max_seeds=4), "min_seeds"),
    (dict(power=1.0), "power"), (dict(alpha=float("nan")), "alpha"),
    (dict(margin=float("inf")), "margin must be a finite number, got inf"),
])
def test_analysis_validation(bad, message):
    with pytest.raises(ValueError, match=message):
        D.Analysis(**bad)


def test_analysis_round_trip_and_description():
    analysis = D.Analysis(metric="final_train_loss", margin=0.01, paired=False, max_seeds=12)
    assert D.Analysis.from_dict(analysis.to_dict()) == analysis
    with pytest.raises(ValueError, match="valid keys.*margin"):
        D.Analysis.from_dict({"margn": 0.01})
    text = D.Analysis().describe()
    assert "margin ±0.50 points" in text and "Holm" in text and "3..10 seeds" in text
    assert "Welch" in analysis.describe() and "(lower is better)" in analysis.describe()
    assert "final_test_acc (higher is better)" in text


def test_integer_valued_and_unknown_metrics_are_refused_as_primary():
    """epochs_to_90 takes a few integer values: three equal differences gave the t-test
    p = 0 and a false-claim rate of 0.065 at alpha 0.05 (the audit), so it is described,
    never decided on; an unknown name lists the valid ones."""
    with pytest.raises(ValueError, match="integer-valued"):
        D.Analysis(metric="epochs_to_90")
    with pytest.raises(ValueError, match="valid metrics: final_test_acc"):
        D.Analysis(metric="final_acc")


def test_better_means_lower_for_a_loss():
    """A metric where lower is better: a variant whose loss is clearly lower is "better" (it
    was "worse": better always meant larger)."""
    an = D.Analysis(metric="final_train_loss", margin=0.001)
    base = {s: 0.50 + 0.001 * s for s in range(6)}
    (v,) = D.decide(base, {"x": {s: x - 0.05 for s, x in base.items()}}, an)
    assert v.kind == "better" and "better by 5.00" in v.sentence(an)
    (v,) = D.decide(base, {"x": {s: x + 0.05 for s, x in base.items()}}, an)
    assert v.kind == "worse"


# ---- degenerate inputs ----

def test_two_seeds_are_undecided_with_a_reason():
    (v,) = D.decide({0: 0.90, 1: 0.91}, {"x": {0: 0.95, 1: 0.96}}, D.Analysis())
    assert v.kind == "undecided" and v.reason == "needs at least 3 seeds, has 2" and v.n == 2
    assert v.sentence(D.Analysis()) == "undecided after 2 seeds: needs at least 3 seeds, has 2"
    assert v.diff == pytest.approx(0.05)


def test_diverged_runs_drop_their_pair():
    base = {0: 0.90, 1: float("nan"), 2: 0.905, 3: 0.898, 4: 0.902}
    var = {0: 0.91, 1: 0.92, 2: None, 3: 0.907, 4: 0.913, 5: 0.95}
    (v,) = D.decide(base, {"x": var}, D.Analysis())
    assert v.n == 3  # seeds 0, 3, 4: the only ones finite in both groups
    assert v.diff == pytest.approx(np.mean([0.01, 0.009, 0.011]))
    all_b, all_a = [0.91, 0.92, 0.907, 0.913, 0.95], [0.90, 0.905, 0.898, 0.902]
    assert v.welch_diff == pytest.approx(np.mean(all_b) - np.mean(all_a))  # all finite values
    (u,) = D.decide(base, {"x": var}, D.Analysis(paired=False), extras=False)
    assert u.n == 4  # unpaired: each group's finite values, the first 4 of each


def test_zero_spread():
    base = {s: BASE for s in range(4)}
    (same,) = D.decide(base, {"x": dict(base)}, D.Analysis())
    assert same.kind == "equivalent" and same.p_equiv == 0.0 and same.p_diff == 1.0
    assert same.reason.startswith("zero spread")
    (up,) = D.decide(base, {"x": {s: BASE + 0.001 for s in range(4)}}, D.Analysis())
    assert up.kind == "better" and up.within_margin
    assert up.ci_low == up.ci_high == pytest.approx(0.001)
    (none,) = D.decide(base, {"x": dict(base)}, D.Analysis(margin=0.0))
    assert none.kind == "undecided"


def test_a_projection_at_this_looks_seeds_is_not_read_as_a_promise():
    """seed_notebook full's look at 7 seeds (its per-seed accuracies, points): the power
    analysis puts its declared power at 7 seeds, which this very look did not turn into a
    verdict (6 of 7 seeds behind: the sign test's p is 0.125). The report printed "about 7
    seeds would settle it" after 7 undecided seeds; it says what the projection is instead."""
    conv, bn = SEED_NOTEBOOK_FULL["conv_bn_relu"][:7], SEED_NOTEBOOK_FULL["bn_relu_conv"]
    analysis = D.Analysis(metric="last3_precise_test_acc", margin=0.005, max_seeds=10,
                          basis="median", collapse_below=0.2)
    v = D.decide({s: x / 100 for s, x in enumerate(conv)},
                 {"bn_relu_conv": {s: x / 100 for s, x in enumerate(bn)}}, analysis)[0]
    assert v.kind == "undecided" and v.n == 7 and v.seeds_to_settle == 7
    text = v.sentence(analysis)
    assert "would settle it" not in text
    assert "declared power (80 %) by about 7 seeds, yet this look did not settle it" in text
    assert "up to the cap of 10" in text
    # at the cap the plan ends, whatever the projection: no look is left to promise
    at_cap = D.Analysis(**{**analysis.to_dict(), "max_seeds": 7})
    w = D.decide({s: x / 100 for s, x in enumerate(conv)},
                 {"bn_relu_conv": {s: x / 100 for s, x in enumerate(bn)}}, at_cap)[0]
    assert "did not settle it" not in w.sentence(at_cap)
