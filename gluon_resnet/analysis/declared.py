"""The analysis an experiment declares before its data: metric, baseline, margin, test,
looks and cap, and what a collapsed run counts as. Fixed in the experiment's definition,
written to its experiment.json and locked at the first look (plan.py); decide.py applies
it."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from . import collapse as C

BASES = ("mean", "median")
MAX_CAP = 1000         # the most seeds a plan may look at (as --seeds)
# The metrics a plan may declare as primary (keys of groups.run_metrics), and which way is
# better: a verdict's "better" means higher for an accuracy, lower for a loss or a time.
DIRECTION = {"final_test_acc": "higher", "last3_test_acc": "higher", "best_test_acc": "higher",
             "final_precise_test_acc": "higher", "last3_precise_test_acc": "higher",
             "best_precise_test_acc": "higher", "final_train_loss": "lower",
             "sec_per_epoch": "lower", "images_per_sec": "higher"}
# Metrics that take few distinct values: equal paired differences give the t-test a zero
# spread (p = 0), and the sign test drops ties; neither holds its error rate on them (the
# audit measured 0.065 false claims at alpha 0.05), so they are described, never primary.
INTEGER_VALUED = ("epochs_to_90",)


@dataclass(frozen=True)
class Analysis:
    """The analysis an experiment declares before any run, so it cannot be tuned to the data."""

    metric: str = "final_test_acc"
    baseline: str = "conv_bn_relu"
    margin: float = 0.005        # in metric units: 0.005 = 0.5 percentage points
    alpha: float = 0.05
    paired: bool = True
    min_seeds: int = 3
    max_seeds: int = 10
    power: float = 0.8
    # what the comparison is on: the mean difference (paired t) or the median one (sign test,
    # exact for any distribution: skew and outliers cannot fake a verdict)
    basis: str = "mean"
    # what a run that diverges or ends below collapse_below counts as (collapse.py); 0: only
    # diverged runs (an experiment whose runs may end at chance declares e.g. 0.2)
    collapse: str = "separate"
    collapse_below: float = 0.0

    def __post_init__(self) -> None:
        if self.metric in INTEGER_VALUED:
            raise ValueError(f"metric {self.metric!r} is integer-valued (ties): not allowed as "
                             f"the primary metric; valid metrics: {', '.join(DIRECTION)}")
        if self.metric not in DIRECTION:
            raise ValueError(f"unknown primary metric {self.metric!r}; valid metrics: "
                             f"{', '.join(DIRECTION)}")
        for name in ("margin", "alpha", "power", "collapse_below"):
            # an infinite margin would read "±inf points" and lock as JSON's non-standard Infinity
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        for ok, message in [
            (0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
            (self.margin >= 0, f"margin must be >= 0 (metric units), got {self.margin}"),
            (2 <= self.min_seeds <= self.max_seeds,
             f"need 2 <= min_seeds <= max_seeds, got {self.min_seeds} and {self.max_seeds}"),
            (self.max_seeds <= MAX_CAP,
             f"max_seeds must be at most {MAX_CAP}, got {self.max_seeds}"),
            (0 < self.power < 1, f"power must be in (0, 1), got {self.power}"),
            (self.basis in BASES, f"basis must be one of {', '.join(BASES)}, got {self.basis!r}"),
            (self.basis == "mean" or self.paired, "the median basis (sign test) needs paired seeds"),
            (self.collapse in C.RULES,
             f"collapse must be one of {', '.join(C.RULES)}, got {self.collapse!r}"),
            (0 <= self.collapse_below < 1,
             f"collapse_below must be in [0, 1), got {self.collapse_below}")]:
            if not ok:
                raise ValueError(message)

    @property
    def direction(self) -> str:
        """"higher" or "lower": which way the metric is better (DIRECTION)."""
        return DIRECTION[self.metric]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Analysis:
        """The inverse of to_dict; a misspelt key is an error, not a silent default."""
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ValueError(f"unknown Analysis keys {unknown}; valid keys: {valid}")
        return cls(**d)

    def describe(self) -> str:
        """One sentence for a report, so a reader sees the design fixed in advance."""
        test = ("sign test on the per-seed differences (their median)" if self.basis == "median"
                else "paired t-test on per-seed differences" if self.paired
                else "Welch t-test (unpaired)")
        below = (f" (or ends below {100 * self.collapse_below:.0f} %)" if self.collapse_below
                 else "")
        rule = (f"a run that diverges{below} has collapsed: it "
                + ("counts at chance (10 %)" if self.collapse == "chance" else
                   "is left out of the accuracy comparison and counted in a separate claim on "
                   "collapse rates (exact McNemar)"))
        return (f"primary metric {self.metric} ({self.direction} is better); baseline {self.baseline}; {test}; equivalence "
                f"margin ±{100 * self.margin:.2f} points (TOST); alpha {self.alpha:g} over all "
                f"comparisons (Holm) and all looks (repeated p-values over planned looks at "
                f"{self.min_seeds}..{self.max_seeds} seeds, locked at the first look; seeds "
                f"beyond {self.max_seeds} are not analysed); {rule}")
