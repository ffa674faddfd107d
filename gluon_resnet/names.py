"""Picking a name from a table, or explaining the choices: the one place every lookup of a
user-given name (ordering, arch, profile, experiment, executor, ...) fails the same way."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# An experiment's results folder: one plain folder name, never a path out of --results-dir.
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def pick(table: Mapping[str, Any] | Iterable[str], name: Any, noun: str, *,
         plural: str | None = None, extra: str = "", error: type[Exception] = ValueError) -> Any:
    """table[name] for a mapping, `name` itself for a list of names; otherwise `error`
    saying 'unknown <noun> <name>; valid <plural>: <every name, in the table's order>'."""
    names = list(table)
    if name in names:
        return table[name] if isinstance(table, Mapping) else name
    raise error(f"unknown {noun} {name!r}; valid {plural or noun + 's'}: "
                f"{', '.join(map(str, names))}{extra}")


def is_folder_name(name: Any) -> bool:
    """Whether `name` is one plain folder name (letters, digits, '.', '_', '-'; not only dots)."""
    return isinstance(name, str) and bool(FOLDER_NAME.fullmatch(name)) and name.strip(".") != ""
