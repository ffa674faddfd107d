"""Picking a name from a table, or explaining the choices: the one place every lookup of a
user-given name (ordering, arch, profile, experiment, executor, ...) fails the same way."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def pick(table: Mapping[str, Any] | Iterable[str], name: Any, noun: str, *,
         plural: str | None = None, extra: str = "", error: type[Exception] = ValueError) -> Any:
    """table[name] for a mapping, `name` itself for a list of names; otherwise `error`
    saying 'unknown <noun> <name>; valid <plural>: <every name, in the table's order>'."""
    names = list(table)
    if name in names:
        return table[name] if isinstance(table, Mapping) else name
    raise error(f"unknown {noun} {name!r}; valid {plural or noun + 's'}: "
                f"{', '.join(map(str, names))}{extra}")
