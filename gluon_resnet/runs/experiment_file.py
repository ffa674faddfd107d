"""An experiment defined in a TOML file outside the package (`--experiment my.toml`), or as
TOML text or a dict with the same keys (the Python API): the same fields as a module under
experiments/, checked key by key so that a mistake names the file, the key and what was
expected. Format: experiments/README.md; example: experiments/lr_ablation.toml.
"""
from __future__ import annotations

import tomllib
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import rules
from ..config import RunConfig, check_field, coerce, describe_type
from ..names import is_folder_name
from ..analysis.declared import MAX_CAP, Analysis
from .experiment import PROFILES, Experiment, Profile

TOP_KEYS = ("name", "description", "base", "grid", "profiles", "analysis")
PROFILE_KEYS = ("note", "overrides", "grid", "analysis")
ANALYSIS_TYPES = typing.get_type_hints(Analysis)


class ExperimentFileError(ValueError):
    """A TOML experiment file that cannot be read as an experiment."""


def load_experiment_file(path: Path | str, reserved: Iterable[str] = ()) -> Experiment:
    """The Experiment a TOML file defines; ExperimentFileError says where and what is wrong.
    `reserved`: the built-in experiments' names, whose results folders a file may not share."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ExperimentFileError(f"{path}: cannot read the file ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ExperimentFileError(f"{path}: not a text file (byte {e.start} is not "
                                  "UTF-8): give a TOML file") from None
    return load_experiment_text(text, str(path), reserved)


def load_experiment_text(text: str, label: str = "<TOML text>",
                         reserved: Iterable[str] = ()) -> Experiment:
    """The Experiment TOML text defines (the file format); errors name `label`."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExperimentFileError(f"{label}: not valid TOML ({e})") from None
    return experiment_from_dict(doc, label, reserved)


def experiment_from_dict(doc: Mapping[str, Any], label: str = "<dict>",
                         reserved: Iterable[str] = ()) -> Experiment:
    """The Experiment a dict with the file's keys defines, checked key by key as a file is."""
    where = _Where(label)
    if not isinstance(doc, Mapping):
        raise ExperimentFileError(f"{label}: expected a table of keys ({', '.join(TOP_KEYS)}), "
                                  f"got {type(doc).__name__}")
    doc = dict(doc)
    where.keys(doc, TOP_KEYS, "")
    name = where.folder_name(doc, tuple(reserved))
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
        raise ExperimentFileError(f"{label}: {e}") from None


class _Where:
    """Checks for one definition: each failure names its file (or label) and the dotted key."""

    def __init__(self, path: Path | str):
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
        if not isinstance(value, Mapping):
            raise self.error(f"{prefix}{key}", "a table ([section] or { ... })", value)
        return value

    def text(self, doc: dict, key: str, required: bool = False) -> str:
        value = doc.get(key, "" if not required else None)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.error(key, "a non-empty string" if required else "a string", value)
        return value

    def folder_name(self, doc: dict, reserved: tuple[str, ...]) -> str:
        """`name`: a plain folder name under --results-dir, not a built-in experiment's."""
        name = self.text(doc, "name", required=True)
        if not is_folder_name(name):
            raise self.error("name", "a plain folder name (letters, digits, '.', '_', '-'; no "
                             "'/', at most 100 characters)", name)
        if name in reserved:
            raise self.error("name", f"a name of its own: {name!r} is a built-in experiment, "
                             "whose results folder it would share", name)
        return name

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
        if not isinstance(value, (list, tuple)) or not value:
            raise self.error(key, "a non-empty list of values, e.g. [0.05, 0.1]", value)
        name = key.rsplit(".", 1)[1]
        if name == "seed" and len(value) > MAX_CAP:  # as run_all.py --seeds
            raise self.error(key, f"at most {MAX_CAP:,} seeds", len(value))
        return tuple(self.field(name, v, key) for v in value)

    def profile(self, table: Any, key: str) -> Profile:
        if not isinstance(table, Mapping):
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
        for name, value in table.items():
            self.typed(value, ANALYSIS_TYPES[name], f"{key}.{name}")
        try:
            return Analysis.from_dict(table)
        except (TypeError, ValueError) as e:
            raise ExperimentFileError(f"{self.path}: [{key}]: {e}") from None

    def typed(self, value: Any, kind: type, key: str) -> None:
        """Strict TOML types: 'false' is not false, 2.5 not an integer (an integer is a float)."""
        ok = (isinstance(value, bool) if kind is bool else
              isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float
              else isinstance(value, kind) and not isinstance(value, bool))
        if not ok:
            words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
            raise self.error(key, words[kind], value)
