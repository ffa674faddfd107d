"""An experiment is data: a base config, a grid over config fields, and profiles.

`expand(experiment, profile)` turns it into the list of `RunConfig`s to train,
seed-major so that a partly finished grid already holds one seed of every variant.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from ..config import RunConfig
from ..names import pick
from ..analysis.declared import Analysis

PROFILES = ("full", "quick", "smoke")
GRID_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig))
# What every smoke profile shares: 20 training and 10 test images per class, batches of 50
# (seconds per run, for tests and CI); each experiment adds its width, size and epochs.
SMOKE_DATA = {"train_per_class": 20, "test_per_class": 10, "batch_size": 50}


@dataclass(frozen=True)
class Profile:
    """How one profile changes the experiment: config overrides, and grid axes it narrows."""

    note: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple] = field(default_factory=dict)  # replaces these grid axes
    analysis: Mapping[str, Any] = field(default_factory=dict)  # replaces Analysis fields


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    base: RunConfig
    grid: Mapping[str, tuple]  # RunConfig field -> values; "seed" is the outermost loop
    profiles: Mapping[str, Profile]
    analysis: Analysis = Analysis()  # declared before any run: metric, baseline, margin, ...
    # Numbers published elsewhere for this question, shown beside ours (not analysed):
    # {"source": "...", "metric": "final_test_acc", "values": {ordering: value}}
    reference: Mapping[str, Any] = field(default_factory=dict)
    # Another experiment whose runs of the same profile share this one's seeds under one
    # changed setting: described beside the verdicts, seed by seed, never tested.
    beside: Optional[str] = None

    @property
    def baseline(self) -> str:
        return self.analysis.baseline

    def analysis_for(self, profile: str, **changes: Any) -> Analysis:
        """The experiment's analysis with the profile's changes (and the caller's)."""
        fields = {**self.analysis.to_dict(), **self.profiles[profile].analysis, **changes}
        return Analysis.from_dict(fields)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.grid) - set(GRID_FIELDS))
        if unknown:
            raise ValueError(f"{self.name}: grid axes {unknown} are not RunConfig fields")
        missing = sorted(set(PROFILES) - set(self.profiles))
        if missing:
            raise ValueError(f"{self.name}: profiles {missing} are not defined")
        for profile in PROFILES:
            analysis = self.analysis_for(profile)
            orderings = profile_grid(self, profile).get("ordering", (self.base.ordering,))
            if analysis.baseline not in orderings:
                raise ValueError(f"{self.name}: baseline {analysis.baseline!r} is not among "
                                 f"the orderings of profile {profile}: {', '.join(orderings)}")

    def info(self, profile: str, source: str, analysis: Optional[Analysis] = None) -> dict:
        """What a report needs to know about the experiment (the store's experiment.json): its
        definition under `profile`, whatever call trains it. `source` is how --experiment
        names it (a built-in name or a .toml path)."""
        analysis = analysis or self.analysis_for(profile)
        return {"name": self.name, "source": source, "description": self.description,
                "profile": profile, "profile_note": self.profiles[profile].note,
                "baseline": analysis.baseline, "analysis": analysis.to_dict(),
                "reference": dict(self.reference),
                "base": self.base.replace(**self.profiles[profile].overrides).to_dict(),
                "grid": {k: [v for v in vals] for k, vals in profile_grid(self, profile).items()},
                **({"beside": self.beside} if self.beside else {})}


def profile_grid(exp: Experiment, profile: str) -> dict[str, tuple]:
    """The experiment's grid with the profile's narrowed axes applied."""
    grid = dict(exp.grid)
    grid.update(exp.profiles[profile].grid)
    return grid


def expand(exp: Experiment, profile: str, *, axes: Optional[Mapping[str, Sequence]] = None,
           overrides: Optional[Mapping[str, Any]] = None) -> list[RunConfig]:
    """Every run of `exp` under `profile`; `axes` replace grid axes (e.g. from the CLI),
    `overrides` replace config fields of every run (e.g. epochs)."""
    if profile not in exp.profiles:
        pick(PROFILES, profile, "profile")
    grid = profile_grid(exp, profile)
    for name, values in (axes or {}).items():
        pick(GRID_FIELDS, name, "grid axis", plural="axes")
        grid[name] = tuple(values)
    base = exp.base.replace(**{**exp.profiles[profile].overrides, **(overrides or {})})
    seeds = grid.pop("seed", (base.seed,))
    names = list(grid)
    runs = []
    for seed in seeds:
        for values in itertools.product(*(grid[n] for n in names)):
            runs.append(base.replace(seed=seed, **dict(zip(names, values))))
    return list(dict.fromkeys(runs))  # keep order, drop duplicates
