"""Verdicts for block orderings against a baseline, valid over repeated looks and comparisons.

Seeds are added one round at a time and the analysis is repeated after each round ("looks")
until every comparison has a verdict. Looking again and again inflates a t-test's error rate, and
so does testing several orderings; the design declared in `Analysis` (declared.py) corrects both, with the
machinery of analysis/sequential.py:

* looks: a comparison's nominal p-values (one per look) are reduced to their minimum and mapped
  through F, the null CDF of that minimum over all planned looks. This repeated p-value is valid
  wherever the loop stops within the plan and never increases, so a verdict once reached stays
  (as long as the number of seeds stays within the plan). Unpaired designs use the worst case of
  F over the ratio of the groups' standard deviations.
* comparisons: Holm's step-down over the repeated p-values of all variants, at alpha separately
  for the difference family (two-sided t-test) and the equivalence family (TOST).

The declared design is `Analysis` (declared.py); this module owns one comparison's numbers,
its `Verdict` with the descriptive extras (Welch view, pairing gain, probability of
improvement, seed planning), and `decide`.
Values in, verdicts out: numpy, scipy and statsmodels only, no MXNet.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import collapse as C
from . import signtest
from .declared import Analysis
from .extras import pairing_gain, prob_improvement, spread_of, welch_all
from .power import plan_seeds, seeds_text
from .sequential import (half_width, holm, look_schedule, nominal_level, p_tost, p_two_sided,
                         sequential_p, welch_moments)

__all__ = ["Analysis", "Verdict", "decide", "decide_pairs", "holm", "look_schedule", "prob_improvement",
           "sequential_p"]

NAN = float("nan")
# Any false claim of the three families (difference, equivalence, collapse) together, per
# basis, through the loop: rate and 95 % Wilson interval, measured by tests/test_collapse.py::
# test_joint_error_rate_of_the_three_families (`make error-rates`; seeded, so the test checks
# these are still its numbers).
JOINT_RATE = {"median": (0.025, 0.015, 0.041), "mean": (0.053, 0.038, 0.074)}
# The mean basis's false better/worse under the audit's skewed scenarios, through the loop:
# mean-zero lognormal per-seed differences, and a baseline that falls 3 points in 30 % of
# seeds (mean difference 0). Measured by tests/test_collapse.py (`make error-rates`), which
# checks these are still its numbers; a mean-basis report quotes them.
MEAN_BASIS_RATES = {"skew": (0.166, 0.142, 0.194), "fall": (0.237, 0.209, 0.268)}
FLAT = 1e-12           # values closer than this are identical (float noise of b - a)


def _fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


@dataclass(frozen=True)
class Verdict:
    """One variant against the baseline; differences are variant - baseline, in metric units."""

    name: str
    kind: str                  # "better" | "worse" | "equivalent" | "undecided"
    n: int                     # seeds (pairs) used
    diff: float
    ci_low: float              # simultaneous over looks and comparisons
    ci_high: float
    ci95_low: float            # plain, unadjusted 95 % CI
    ci95_high: float
    p_diff: float              # nominal two-sided p at the latest look
    p_diff_seq: float          # repeated p-value, before Holm
    p_diff_holm: float
    p_equiv: float             # nominal TOST p at the latest look
    p_equiv_seq: float
    p_equiv_holm: float
    within_margin: bool        # equivalence shown (also beside a better/worse verdict)
    seeds_for_difference: int | None
    seeds_for_equivalence: int | None
    seeds_to_settle: int | None
    welch_diff: float          # Welch on all values, kept beside the declared test
    welch_ci_low: float
    welch_ci_high: float
    welch_p: float
    correlation: float         # paired: Pearson r of the pairs; NaN otherwise
    se_ratio: float            # Welch se / paired se, what pairing bought (NaN for unpaired)
    prob_improvement: float
    pi_low: float
    pi_high: float
    reason: str                # short text for degenerate cases, "" otherwise
    collapses: C.CollapseCount | None = None
    p_collapse_holm: float = NAN   # the collapse claim ("separate" rule): over looks, Holm
    spread: float = NAN            # sd of the paired differences (unpaired: of the runs, pooled)

    def sentence(self, analysis: Analysis, scale: float = 100.0, unit: str = "points") -> str:
        """One line for a report, in display units (scale 100: fractions to percentage points)."""
        return self._accuracy_sentence(analysis, scale, unit) + self._collapse_sentence(analysis)

    def _accuracy_sentence(self, analysis: Analysis, scale: float, unit: str) -> str:
        def pt(x: float) -> str:
            return f"{x * scale:+.2f}"
        what = "median difference" if analysis.basis == "median" else "difference"
        ci = f"CI {pt(self.ci_low)} to {pt(self.ci_high)}"
        margin = f"±{analysis.margin * scale:.2f} {unit}"
        if self.kind in ("better", "worse"):
            inside = f", inside the {margin} margin" if self.within_margin else ""
            return (f"{self.kind} by {abs(self.diff) * scale:.2f} {unit}{inside} "
                    f"(simultaneous {ci}; Holm-adjusted sequential p = "
                    f"{_fmt_p(self.p_diff_holm)}, {self.n} seeds)")
        if self.kind == "equivalent":
            # No interval here: TOST decides with its own (1 - 2 alpha) interval, narrower
            # than the simultaneous one, which may reach past the margin (tables.py says so).
            return (f"equivalent within {margin} ({what} {pt(self.diff)}; two one-sided "
                    f"tests, p = {_fmt_p(self.p_equiv_holm)}, {self.n} seeds)")
        if self.reason and (self.seeds_to_settle is None or self.n < 2):
            return f"undecided after {self.n} seeds: {self.reason}"
        head = f"undecided after {self.n} seeds ({what} {pt(self.diff)}{self._rules_out(scale, unit)})"
        if self.reason:  # too few seeds to test, but enough to plan from their spread
            head = f"undecided after {self.n} seeds ({self.reason}; {what} {pt(self.diff)})"
        if self.seeds_to_settle is None:
            return (f"{head}; at this difference and spread {seeds_text(None, analysis.basis)} "
                    "seeds would be needed to settle it")
        settle = seeds_text(max(self.seeds_to_settle, analysis.min_seeds), analysis.basis)
        about = "" if settle.startswith("more") else "about "
        past = ""
        if self.power_reached(analysis):  # "about 7 would settle it" at 7 read as a contradiction
            return (f"{head}; at this difference and spread the plan has its declared power "
                    f"({100 * analysis.power:.0f} %) by about {settle} seeds, yet this look did "
                    f"not settle it: the looks up to the cap of {analysis.max_seeds} may "
                    f"(difference: {seeds_text(self.seeds_for_difference, analysis.basis)}, "
                    f"equivalence: {seeds_text(self.seeds_for_equivalence, analysis.basis)})")
        if max(self.seeds_to_settle, analysis.min_seeds) > analysis.max_seeds:
            # a projection from the spread so far, not an outcome: only the cap's look ends it
            past = (f", past the locked cap of {analysis.max_seeds}: "
                    + ("this plan ends undecided" if self.n >= analysis.max_seeds else
                       "at this spread the plan is not expected to settle it by its cap"))
        return (f"{head}; {about}{settle} seeds would settle it (difference: "
                f"{seeds_text(self.seeds_for_difference, analysis.basis)}, "
                f"equivalence: {seeds_text(self.seeds_for_equivalence, analysis.basis)}){past}")

    def power_reached(self, analysis: Analysis) -> bool:
        """Whether this look already has the seeds the power projection asks for, with looks
        left before the cap: a power is a chance, not a promise, so the look can fall short."""
        return (self.seeds_to_settle is not None
                and max(self.seeds_to_settle, analysis.min_seeds) <= self.n < analysis.max_seeds)

    def _rules_out(self, scale: float, unit: str) -> str:
        """What an undecided comparison's simultaneous CI excludes, in words."""
        if not (np.isfinite(self.ci_low) and np.isfinite(self.ci_high)):
            return "; too few seeds yet to rule out any difference"
        return (f"; it rules out differences below {self.ci_low * scale:+.2f} or above "
                f"{self.ci_high * scale:+.2f} {unit}, simultaneous CI")

    def _collapse_sentence(self, analysis: Analysis) -> str:
        c = self.collapses
        if c is None or not (c.base or c.variant):
            return ""
        text = (f"; collapsed runs: baseline {c.base} of {c.seeds}, variant {c.variant} of "
                f"{c.seeds}")
        if analysis.collapse == "chance":
            return text + " (counted at chance)"
        if self.p_collapse_holm < analysis.alpha:
            more = "more" if c.only_variant > c.only_base else "less"
            return text + (f": the variant collapses {more} often (exact McNemar, over looks "
                           f"and Holm, p = {_fmt_p(self.p_collapse_holm)})")
        return text + (f" (left out; no difference in collapse rate shown, exact McNemar over "
                       f"looks and Holm, p = {_fmt_p(self.p_collapse_holm)})")


# ---- one comparison ----

def _samples(base: Mapping[int, float | None], var: Mapping[int, float | None], an: Analysis):
    """Samples in ascending seed order under the declared collapse rule (collapse.py), within
    the plan's first max_seeds seeds (paired: pairs): a, b, n (usable pairs, or the smaller
    group), all usable values of each group, the collapse counts and the collapse claim's
    repeated p (minimum over the looks; NaN where the rule is not "separate")."""
    if not an.paired:
        a, b = ({s: g[s] for s in sorted(g)[:an.max_seeds]} for g in (base, var))
        counts = C.count_unpaired(a, b, an.collapse_below)
        p = (C.unpaired_p_over_looks(a, b, an.collapse_below, an.max_seeds)
             if an.collapse == "separate" else NAN)
        a, b = (C.apply_rule(g, an.collapse, an.collapse_below) for g in (a, b))
        xa, xb = np.array([a[s] for s in sorted(a)]), np.array([b[s] for s in sorted(b)])
        return xa, xb, min(xa.size, xb.size), xa, xb, counts, p
    seeds = sorted(base.keys() & var.keys())[:an.max_seeds]
    counts, min_p = C.paired(base, var, an.collapse_below, an.max_seeds)
    p = C.p_over_looks(min_p, an.max_seeds) if an.collapse == "separate" else NAN
    # the rule is applied to each run alone, so once per group serves both views: the pairs
    # on the seeds both groups ran, and (the unpaired view beside it) every usable run of
    # each group within the cap
    a, b = (C.apply_rule(g, an.collapse, an.collapse_below) for g in (base, var))
    both = [s for s in seeds if s in a and s in b]
    a_all, b_all = ([ruled[s] for s in sorted(g)[:an.max_seeds] if s in ruled]
                    for g, ruled in ((base, a), (var, b)))
    return (np.array([a[s] for s in both]), np.array([b[s] for s in both]), len(both),
            np.array(a_all), np.array(b_all), counts, p)


def _median_looks(a: np.ndarray, b: np.ndarray, n: int, margin: float):
    """Looks 2..n and, at each, the median difference and the sign test's nominal p's."""
    looks, d = np.arange(2, n + 1), b[:n] - a[:n]
    return (looks, signtest.prefix_medians(d, looks), np.full(looks.size, NAN),
            np.full(looks.size, NAN), *signtest.look_p(d, looks, margin))


def _prefix_moments(x: np.ndarray, looks: np.ndarray):
    """Mean and variance (ddof=1, two-pass) of the first n values for each n in looks."""
    mask = np.arange(x.size) < looks[:, None]
    mean = (x * mask).sum(axis=1) / looks
    var = (np.square(x - mean[:, None]) * mask).sum(axis=1) / (looks - 1)
    flat = (np.maximum.accumulate(x) - np.minimum.accumulate(x))[looks - 1] <= FLAT
    return mean, np.where(flat, 0.0, var)


def _look_stats(a: np.ndarray, b: np.ndarray, n: int, paired: bool):
    """Looks 2..n and, at each, the estimate b - a, its standard error and df."""
    looks = np.arange(2, n + 1)
    if paired:
        mean, var = _prefix_moments(b[:n] - a[:n], looks)
        return looks, mean, np.sqrt(var / looks), looks - 1.0
    (ma, va), (mb, vb) = _prefix_moments(a[:n], looks), _prefix_moments(b[:n], looks)
    return (looks, *welch_moments(ma, va, looks, mb, vb, looks))


def _analyse(name: str, base: Mapping[int, float], var: Mapping[int, float], an: Analysis) -> dict:
    """All about one comparison that does not depend on the others (the latest look is last)."""
    a, b, n, a_all, b_all, counts, p_collapse = _samples(base, var, an)
    if an.basis == "median":
        looks, est, se, df, p_diff, p_equiv = _median_looks(a, b, n, an.margin)
        two_sided, one_sided, seq = "two_sided", "one_sided", signtest.sequential_p
    else:
        looks, est, se, df = _look_stats(a, b, n, an.paired)
        p_diff, p_equiv = p_two_sided(est, se, df), p_tost(est, se, df, an.margin)
        two_sided, one_sided = ("paired", "one_sided") if an.paired else ("welch", "welch_one_sided")
        seq = sequential_p
    row = dict(name=name, a=a, b=b, n=n, a_all=a_all, b_all=b_all, est=est, se=se, df=df,
               p_diff=p_diff, p_equiv=p_equiv, sign=0.0, p_diff_seq=NAN, p_equiv_seq=NAN,
               last_look=an.max_seeds, reason="", collapses=counts, p_collapse=p_collapse)
    use = looks >= an.min_seeds
    if not use.any():
        return {**row, "reason": f"needs at least {an.min_seeds} seeds, has {n}"}
    pd, pe = row["p_diff"][use], row["p_equiv"][use]
    # direction of the deciding look, in the metric's sense of better (+1) or worse (-1); 0 at
    # a median (or mean) of exactly 0: a tie, which claims no direction
    row["sign"] = float(np.sign(est[use][np.argmin(pd)])) * (1 if an.direction == "higher" else -1)
    row["p_diff_seq"] = seq(pd.min(), two_sided, an.min_seeds, row["last_look"])
    row["p_equiv_seq"] = seq(pe.min(), one_sided, an.min_seeds, row["last_look"])
    if an.basis == "mean" and se[-1] == 0:
        row["reason"] = (f"zero spread over {n} seeds: p-values are the t-test limits (0 or 1), "
                         f"equivalent only if |difference| < margin")
    return row


def _intervals(row: dict, an: Analysis, c: int, est: float, se: float, df: float
               ) -> tuple[float, float, float, float]:
    """The simultaneous CI (nominal level q* = F^{-1}(alpha/C), Bonferroni over the C
    comparisons for simplicity: Holm may rarely decide where it narrowly includes 0) and the
    plain 95 % one: t intervals (mean basis) or order-statistic ones (median basis)."""
    if an.basis == "median":
        d = row["b"][:row["n"]] - row["a"][:row["n"]]
        q_star = signtest.nominal_level("two_sided", an.min_seeds, row["last_look"], an.alpha / c)
        return (*signtest.median_interval(d, q_star), *signtest.median_interval(d, 0.05))
    q_star = nominal_level("paired" if an.paired else "welch", an.min_seeds, row["last_look"],
                            an.alpha / c)
    half, half95 = half_width(se, df, q_star), half_width(se, df, 0.05)
    return est - half, est + half, est - half95, est + half95


def _verdict(row: dict, p_diff_holm: float, p_equiv_holm: float, p_collapse_holm: float,
             an: Analysis, c: int, extras: bool) -> Verdict:
    """One comparison's verdict from its own numbers and the Holm-adjusted p's."""
    last = len(row["est"]) - 1
    est, se, df, p_d, p_e = (float(row[k][last]) if last >= 0 else NAN
                             for k in ("est", "se", "df", "p_diff", "p_equiv"))
    if np.isnan(row["p_diff_seq"]):  # no look yet: not tested
        p_diff_holm = p_equiv_holm = NAN
    diff_sig, equiv_sig = bool(p_diff_holm < an.alpha), bool(p_equiv_holm < an.alpha)
    tie = diff_sig and row["sign"] == 0
    kind = ("better" if row["sign"] > 0 else "worse") if diff_sig and not tie else (
        "equivalent" if equiv_sig else "undecided")
    if tie and kind == "undecided" and not row["reason"]:
        row = {**row, "reason": "a tie: the signs differ from chance but the median difference "
                                "at the deciding look is exactly 0, so no direction is claimed"}
    n_diff, n_eq = (plan_seeds(row["a"][:row["n"]], row["b"][:row["n"]], est, se, an, c)
                    if extras and kind == "undecided" else (None, None))
    settle = min((x for x in (n_diff, n_eq) if x is not None), default=None)
    pi = prob_improvement(row["a"], row["b"], an.paired) if extras else (NAN, NAN, NAN)
    gain = pairing_gain(row["a"], row["b"]) if extras and an.paired else (NAN, NAN)
    welch = welch_all(row["a_all"], row["b_all"]) if extras else (NAN,) * 4
    spread = spread_of(row["a"], row["b"], an.paired) if extras else NAN
    return Verdict(row["name"], kind, row["n"], est, *_intervals(row, an, c, est, se, df),
                   p_d, row["p_diff_seq"], p_diff_holm, p_e, row["p_equiv_seq"],
                   p_equiv_holm, equiv_sig, n_diff, n_eq, settle, *welch, *gain, *pi,
                   row["reason"], row["collapses"], p_collapse_holm, spread)


def decide(baseline: Mapping[int, float], variants: Mapping[str, Mapping[int, float]],
           analysis: Analysis, *, extras: bool = True) -> list[Verdict]:
    """Verdicts for every variant against the baseline: sequential looks and Holm included.

    Call it after every round of seeds; stop when no verdict is "undecided". extras=False skips
    what only a report shows (the bootstrap, the seed planning, the Welch view of all runs, the
    pairing gain and the spread: NaN / None there; verdicts, p-values and intervals unchanged)
    for the loop's decisions and the simulations that run it thousands of times."""
    return decide_pairs([(name, baseline, values) for name, values in variants.items()],
                        analysis, extras=extras)


def decide_pairs(pairs: Sequence[tuple[str, Mapping[int, float], Mapping[int, float]]],
                 analysis: Analysis, *, extras: bool = True) -> list[Verdict]:
    """decide() for comparisons that each have their own baseline sample (name, baseline,
    variant): e.g. every ordering against conv_bn_relu at every depth. One Holm family covers
    them all."""
    with np.errstate(invalid="ignore", divide="ignore"):  # zero spread: limits taken explicitly
        rows = [_analyse(name, base, values, analysis) for name, base, values in pairs]
        holm_d = holm([1.0 if np.isnan(r["p_diff_seq"]) else r["p_diff_seq"] for r in rows])
        holm_e = holm([1.0 if np.isnan(r["p_equiv_seq"]) else r["p_equiv_seq"] for r in rows])
        holm_c = holm([1.0 if np.isnan(r["p_collapse"]) else r["p_collapse"] for r in rows])
        return [_verdict(r, float(hd), float(he), float(hc), analysis, len(rows), extras)
                for r, hd, he, hc in zip(rows, holm_d, holm_e, holm_c, strict=True)]
