"""An experiment defined in a TOML file outside the package (`--experiment my.toml`): the same
fields as a module under experiments/, checked key by key so that a mistake names the file,
the key and what was expected. Format: experiments/README.md; example: experiments/lr_ablation.toml.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .. import rules
from ..config import RunConfig, check_field, coerce, describe_type
from ..reporting.decide import Analysis
from .experiment import PROFILES, Experiment, Profile

TOP_KEYS = ("name", "description", "base", "grid", "profiles", "analysis")
PROFILE_KEYS = ("note", "overrides", "grid", "analysis")


class ExperimentFileError(ValueError):
    """A TOML experiment file that cannot be read as an experiment."""


def load_experiment_file(path: Path | str) -> Experiment:
    """The Experiment a TOML file defines; ExperimentFileError says where and what is wrong."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as e:
        raise ExperimentFileError(f"{path}: cannot read the file ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ExperimentFileError(f"{path}: not valid TOML ({e})") from None
    where = _Where(path)
    where.keys(doc, TOP_KEYS, "")
    name = where.text(doc, "name", required=True)
    base = where.config(where.table(doc, "base"), "base")
    grid = {k: where.values(v, f"grid.{k}") for k, v in where.table(doc, "grid").items()}
    profiles = {p: where.profile(v, f"profiles.{p}")
                for p, v in where.table(doc, "profiles").items()}
    unknown = sorted(set(profiles) - set(PROFILES))
    if unknown:
        raise where.error(f"profiles.{unknown[0]}", f"one of {', '.join(PROFILES)}")
    for p in PROFILES:  # an undeclared profile runs the experiment as defined
        profiles.setdefault(p, Profile(note="as defined (no profile of this name in the file)"))
    analysis = where.analysis(where.table(doc, "analysis"), "analysis")
    try:
        return Experiment(name=name, description=where.text(doc, "description"), base=base,
                          grid=grid, profiles=profiles, analysis=analysis)
    except ValueError as e:
        raise ExperimentFileError(f"{path}: {e}") from None


class _Where:
    """Checks for one file: each failure names the file and the dotted key."""

    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, expected: str, got: Any = None) -> ExperimentFileError:
        found = "" if got is None else f", got {got!r}"
        return ExperimentFileError(f"{self.path}: key {key!r}: expected {expected}{found}")

    def keys(self, table: dict, valid: tuple, prefix: str) -> None:
        for key in table:
            if key not in valid:
                raise self.error(f"{prefix}{key}", f"one of {', '.join(valid)}")

    def table(self, doc: dict, key: str, prefix: str = "") -> dict:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.error(f"{prefix}{key}", "a table ([section] or { ... })", value)
        return value

    def text(self, doc: dict, key: str, required: bool = False) -> str:
        value = doc.get(key, "" if not required else None)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.error(key, "a non-empty string" if required else "a string", value)
        return value

    def field(self, name: str, value: Any, key: str) -> Any:
        """One RunConfig value: its type (config.coerce), then its range (rules.py)."""
        try:
            check_field(name)
            value = coerce(name, value)
        except ValueError:
            if name not in RunConfig.__dataclass_fields__:
                raise self.error(key, "a RunConfig field: "
                                 + ", ".join(RunConfig.__dataclass_fields__)) from None
            raise self.error(key, describe_type(name), value) from None
        try:
            rules.check(name, value)
        except ValueError as e:
            raise ExperimentFileError(f"{self.path}: key {key!r}: {e}") from None
        return value

    def config(self, table: dict, prefix: str) -> RunConfig:
        fields = {k: self.field(k, v, f"{prefix}.{k}") for k, v in table.items()}
        try:
            return RunConfig(**fields)
        except ValueError as e:
            raise ExperimentFileError(f"{self.path}: [{prefix}]: {e}") from None

    def values(self, value: Any, key: str) -> tuple:
        if not isinstance(value, list) or not value:
            raise self.error(key, "a non-empty list of values, e.g. [0.05, 0.1]", value)
        name = key.rsplit(".", 1)[1]
        return tuple(self.field(name, v, key) for v in value)

    def profile(self, table: Any, key: str) -> Profile:
        if not isinstance(table, dict):
            raise self.error(key, "a table with note, overrides, grid, analysis", table)
        self.keys(table, PROFILE_KEYS, f"{key}.")
        overrides = {k: self.field(k, v, f"{key}.overrides.{k}")
                     for k, v in self.table(table, "overrides", f"{key}.").items()}
        grid = {k: self.values(v, f"{key}.grid.{k}")
                for k, v in self.table(table, "grid", f"{key}.").items()}
        analysis = self.table(table, "analysis", f"{key}.")
        self.analysis(analysis, f"{key}.analysis")  # checked now, applied by the Experiment
        return Profile(note=table.get("note", ""), overrides=overrides, grid=grid,
                       analysis=analysis)

    def analysis(self, table: dict, key: str) -> Analysis:
        valid = tuple(Analysis.__dataclass_fields__)
        self.keys(table, valid, f"{key}.")
        try:
            return Analysis.from_dict(table)
        except (TypeError, ValueError) as e:
            raise ExperimentFileError(f"{self.path}: [{key}]: {e}") from None
