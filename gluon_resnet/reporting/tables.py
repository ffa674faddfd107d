"""Markdown pieces of a report: cell formats, tables, and the sections that compare every
ordering with the baseline (the declared verdicts, the views beside them, other metrics)."""
from __future__ import annotations

import re
from typing import Callable, Optional

from ..analysis import stats
from ..analysis.decide import JOINT_RATE, MEAN_BASIS_RATES
from ..analysis.declared import Analysis
from ..analysis.power import detectable_text
from ..analysis.groups import Group, metric_values, paired_differences
from ..analysis.verdicts import Decided, Verdicts


def fmt(spec: str, scale: float = 1.0) -> Callable[[Optional[float]], str]:
    """Formatter: 'n/a' for None/NaN, else format(value * scale, spec)."""
    return lambda v: "n/a" if v is None or v != v else format(v * scale if scale != 1 else v, spec)


fmt_pct, fmt_pts = fmt(".2f", 100), fmt("+.2f", 100)


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown table lines; a '|' inside a cell is escaped and a line break is a space (a
    description written over several lines of a TOML file would end the row)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(re.sub(r"\s*\n\s*", " ", c).replace("|", "\\|")
                                      for c in r) + " |" for r in rows]


def folder_kind(info: dict) -> str:
    """"archived", "pilots" or "" (evidence): what a folder holds, as the first word of its
    experiment.json's profile note says (written by hand when a folder is set apart)."""
    note = str(info.get("profile_note", ""))
    return next((k.lower() for k in ("ARCHIVED", "PILOTS") if note.startswith(k)), "")


def section_pilots() -> list[str]:
    """In place of the verdicts where the runs are pilots: no comparison is declared."""
    return ["## Against the baseline: no verdicts (pilots)", "",
            "These runs are pilots: they chose the protocol (the profile note above says how), "
            "one seed each, and are not seeds of it, so no comparison is declared for them and "
            "none gets a verdict. Their numbers and curves are below, to read, not to decide "
            "on.", ""]


def _ci(low: float, high: float) -> str:
    return "n/a" if low != low else f"{fmt_pts(low)} to {fmt_pts(high)}"


def _p(p: float) -> str:
    return "n/a" if p != p else stats.format_p(p).replace("p = ", "").replace("p ", "")


VERDICT_HEADER = ["comparison", "seeds", "difference (points)", "simultaneous CI (points)",
                  "p, difference (sequential, Holm)", "p, equivalence (TOST, sequential, Holm)",
                  "look (round)", "verdict"]


def look_cell(d: Decided, analysis: Analysis) -> str:
    """Which look the row is read at: the one that decided it (final), or the latest."""
    # a round counts the seeds any group of the family has; the comparison pairs fewer where
    # one side's run of a round is still training (or collapsed): say so beside the round
    paired = f" ({d.verdict.n} seeds paired)" if d.verdict.n != d.look else ""
    if d.frozen:
        return f"{d.look}: decided, final{paired}"
    return f"{d.look} of at most {analysis.max_seeds}{paired}"


def verdict_rows(decided: list[Decided], analysis: Analysis,
                 median: Optional[list[Decided]] = None) -> list[list[str]]:
    """One row per comparison; on the mean basis the verdict says where the median basis
    (the sensitivity view) disagrees."""
    rows = []
    for i, d in enumerate(decided):
        v, said = d.verdict, d.verdict.sentence(analysis)
        if median and median[i].verdict.kind != v.kind:
            said += (f"; on the median basis (sensitivity, not the declared test): "
                     f"{median[i].verdict.kind}")
        rows.append([d.other.label, str(v.n), fmt_pts(v.diff), _ci(v.ci_low, v.ci_high),
                     _p(v.p_diff_holm), _p(v.p_equiv_holm), look_cell(d, analysis), said])
    return rows


def seeds_ahead(d: Decided, metric: str) -> str:
    """'k of n (smallest to largest difference)': how consistent the paired differences are."""
    diffs = list(paired_differences(d.base, d.other, metric).values())
    if not diffs:
        return "n/a"
    return (f"{sum(x > 0 for x in diffs)} of {len(diffs)} ({fmt_pts(min(diffs))} to "
            f"{fmt_pts(max(diffs))})")


BESIDE_HEADER = ["comparison", "variant ahead in (seeds; smallest to largest difference)",
                 "paired r", "Welch se / paired se", "Welch difference (95 % CI)", "Welch p",
                 "P(variant > baseline) (95 % bootstrap CI)"]


def beside_rows(decided: list[Decided], metric: str) -> list[list[str]]:
    """How consistent the paired differences are, what pairing bought, Welch's unpaired
    view, and the probability of improvement."""
    def pi(v) -> str:
        return "n/a" if v.prob_improvement != v.prob_improvement else (
            f"{v.prob_improvement:.2f} ({fmt('.2f')(v.pi_low)} to {fmt('.2f')(v.pi_high)})")
    return [[d.other.label, seeds_ahead(d, metric), fmt(".2f")(v.correlation),
             fmt(".2f")(v.se_ratio),
             f"{fmt_pts(v.welch_diff)} ({_ci(v.welch_ci_low, v.welch_ci_high)})",
             _p(v.welch_p), pi(v)] for d in decided for v in [d.verdict]]


COMPARISON_HEADER = ["group", "seeds (vs baseline)", "difference (points)", "95 % CI (points)",
                     "Welch p", "detectable at 80 % power (points)"]


def comparison_rows(pairs: list[tuple[Group, Group]], metric: str) -> list[list[str]]:
    """Descriptive: one row per pair, difference with Welch's CI and p, detectable difference."""
    rows = []
    for base, other in pairs:
        a, b = metric_values(base, metric), metric_values(other, metric)
        c = stats.welch(a, b)
        rows.append([other.label, f"{c.n_b} vs {c.n_a}", fmt_pts(c.diff), _ci(c.ci_low, c.ci_high),
                     _p(c.p), fmt_pct(stats.min_detectable_difference(a, b))])
    return rows


SEQUENTIAL_NOTE = (
    "How the verdicts are reached. Seeds are added one round at a time and the comparison is "
    "repeated after each round, which would inflate a plain t-test's false positives. Each "
    "comparison's nominal p-values over the looks so far are reduced to their minimum and "
    "mapped through the null distribution of that minimum over every planned look (a "
    "repeated p-value; simulated once, exact for the paired t-test under normality): "
    "alpha is spent over the looks, the p-value never rises as seeds are added, and the plan "
    "(cap included) is locked at the first finished run and its family of comparisons at the "
    "first look; seeds past the cap are not analysed, and a comparison's verdict is final at "
    "the look that reached it (its groups get no more seeds; the looks are replayed from the "
    "run files, and later looks of other comparisons, which could lower its Holm-adjusted p, "
    "do not move it). On the median basis the nominal test is the sign test and "
    "the null distribution of the minimum is exact for any distribution of the differences. "
    "Holm's step-down then corrects over the locked family of comparisons, separately "
    "for the claims of a difference, the claims of equivalence and the claims on collapse "
    "rates (each kind of claim keeps its error rate at alpha). Chosen over a fixed number of seeds because it stops as soon "
    "as the question is settled; chosen over an alpha split per look (Bonferroni) because "
    "it uses the strong correlation between looks and so loses less power. The interval is "
    "simultaneous over looks and comparisons (Bonferroni over comparisons), so it is wider "
    "than the interval behind an equivalence verdict (two one-sided tests at alpha each "
    "side): an 'equivalent' comparison's simultaneous interval may reach past the margin; "
    "'about m seeds "
    "would settle it' is a power analysis at the observed difference and spread: the first "
    "number of seeds at which one look at the locked plan's level (alpha spent over its "
    "looks up to the cap) has the declared power, for the difference and for equivalence, "
    "whichever needs fewer; where that number is already reached and the look still fell "
    "short (power is a chance, not a promise), the verdict line says so.")


def section_verdicts(v: Verdicts) -> list[str]:
    decided, analysis = v.decided, v.analysis
    lines = ["## Against the baseline: verdicts", "",
             f"Declared analysis ({v.source}): {analysis.describe()}.", ""]
    if not decided:
        return lines + [f"No group has a `{analysis.baseline}` counterpart with the same other "
                        "settings, so there is nothing to compare.", ""] + section_outside(v)
    lines += md_table(VERDICT_HEADER, verdict_rows(decided, analysis, v.median_view))
    lines += ["", SEQUENTIAL_NOTE, "", error_rates(analysis), ""]
    lines += section_sensitivity(v) + section_power(decided, analysis)
    lines += ["",
              "Beside the declared test: in how many seeds the variant came out ahead, with "
              "the smallest and largest paired difference (one seed each), the correlation "
              "of paired runs (same seed: same data "
              "order and initial weights) and how much it shrank the standard error, Welch's "
              "unpaired comparison of the same values, and the probability that a variant run "
              "beats a baseline run (Agarwal et al. 2021).", ""]
    return (lines + md_table(BESIDE_HEADER, beside_rows(decided, analysis.metric)) + [""]
            + section_outside(v))


def error_rates(analysis: Analysis) -> str:
    """The error rate of each family of claims and the measured rate of all together."""
    rate, low, high = JOINT_RATE[analysis.basis]
    return (f"Error rates: the claims of a difference (better/worse) are false at most "
            f"{analysis.alpha:g} of the time over the family and all looks, and so are the "
            f"claims of equivalence and the claims on collapse rates; any false claim of the "
            f"three kinds, together, at most {3 * analysis.alpha:g} (their sum), measured "
            f"{rate:.3f} (95 % CI {low:.3f} to {high:.3f}) on the {analysis.basis} basis in a "
            "simulation of the loop (groups stop when decided) with two comparisons without a "
            "difference, two at the margin and runs that collapse alike on both sides "
            "(`make error-rates`).")


SKEW_HEADER = ["comparison", "seeds", "per-seed differences", "median basis: difference "
               "(points)", "median basis: simultaneous CI", "median basis: verdict"]


def section_sensitivity(v: Verdicts) -> list[str]:
    """A plan on the mean basis: the same data on the median basis, a skew diagnostic of the
    per-seed differences, and the mean basis's measured error rates under skew."""
    if not v.median_view:
        return []
    from ..analysis.stats import skewness

    rows = []
    for d, m in zip(v.decided, v.median_view, strict=True):
        diffs = list(paired_differences(d.base, d.other, v.analysis.metric).values())
        rows.append([d.other.label, str(m.verdict.n), skewness(diffs).text(),
                     fmt_pts(m.verdict.diff), _ci(m.verdict.ci_low, m.verdict.ci_high),
                     m.verdict.kind + (", final" if m.frozen else "")])
    (skew, s_lo, s_hi), (fall, f_lo, f_hi) = (MEAN_BASIS_RATES[k] for k in ("skew", "fall"))
    return ["Sensitivity (the mean is not robust to skew; the verdicts above stay those of the "
            "declared plan): the same runs, family and looks on the median basis (sign test, "
            "exact for any distribution), and whether the per-seed differences look skewed "
            "(sample skewness G1 beyond twice its standard error). Where the two bases "
            "disagree, the verdict above says so. Measured error rates of this mean-basis "
            f"procedure (`make error-rates`): false better/worse {skew:.3f} (95 % CI "
            f"{s_lo:.3f} to {s_hi:.3f}) with mean-zero lognormal per-seed differences, and "
            f"{fall:.3f} ({f_lo:.3f} to {f_hi:.3f}) with a baseline that falls 3 points in "
            f"30 % of seeds and no mean difference, against {v.analysis.alpha:g} declared.",
            ""] + md_table(SKEW_HEADER, rows) + [""]


def section_outside(v: Verdicts) -> list[str]:
    """Comparisons whose groups came after the family was locked: described, not decided."""
    if not v.outside:
        return []
    return ["## Outside the locked family (descriptive, no verdicts)", "",
            f"These comparisons were not in the folder when its family was locked at the first "
            f"look ({v.plan.first_look}), so they are not in its Holm correction and get no "
            "verdict (a new analysis of them belongs in its own folder). Welch's interval and "
            "uncorrected p, to look at, not to decide on.", ""] + md_table(
        COMPARISON_HEADER, comparison_rows(v.outside, v.analysis.metric)) + [""]


POWER_HEADER = ["comparison", "sd of the paired differences so far (points)",
                "smallest difference found with the declared power by the cap (points)"]


def section_power(decided: list[Decided], analysis: Analysis) -> list[str]:
    """What the plan can find: the difference it detects with its power at its cap, read at
    the spread of the seeds so far (a pilot's spread while few seeds are in)."""
    rows = []
    for d in decided:
        sd = d.verdict.spread
        rows.append([d.other.label, fmt(".2f", 100)(sd),
                     detectable_text(analysis, sd, len(decided))])
    return [f"Power, said up front: with {analysis.max_seeds} seeds (the cap) the declared plan "
            f"finds a true difference of this size in {100 * analysis.power:.0f} % of "
            "experiments (one last look at the plan's level; earlier looks only add); an "
            "undecided comparison says little about smaller ones.", ""] + md_table(
        POWER_HEADER, rows)


DESCRIPTIVE = (("last3_test_acc", "Mean test accuracy of the last 3 epochs"),
               ("final_test_acc", "Final test accuracy (last epoch)"),
               ("best_test_acc", "Best test accuracy over the epochs"))


def section_descriptive(decided: list[Decided], analysis: Analysis) -> list[str]:
    """The other metrics against the baseline: differences and intervals, no verdicts."""
    pairs = [(d.base, d.other) for d in decided]
    if not pairs:
        return []
    lines = ["## Other metrics (descriptive, no verdicts)", "",
             "Only the declared primary metric gets verdicts; these are Welch's intervals and "
             "uncorrected p-values, to look at, not to decide on.", ""]
    for metric, title in DESCRIPTIVE:
        if metric != analysis.metric:
            lines += [f"{title}:", ""] + md_table(COMPARISON_HEADER,
                                                  comparison_rows(pairs, metric)) + [""]
    return lines
