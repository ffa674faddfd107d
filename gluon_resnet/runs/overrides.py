"""`--set field=value` and `--grid field=v1,v2,...` from the command line: any RunConfig field,
parsed to its type by config.parse_value and validated by RunConfig itself."""
from __future__ import annotations

from typing import Any

from ..config import as_text, parse_value


def split_assignment(text: str, flag: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"{flag} {text!r}: write field=value, e.g. {flag} lr=0.1")
    return name.strip(), value.strip()


def parse_set(text: str) -> tuple[str, Any]:
    """'lr=0.1' -> ('lr', 0.1)."""
    name, value = split_assignment(text, "--set")
    return name, parse_value(name, value)


def split_values(text: str) -> list[str]:
    """'0,0.9' -> ['0', '0.9']; commas inside brackets stay: '[3],[3,6]' -> ['[3]', '[3,6]']."""
    out, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    return [v.strip() for v in out + [current] if v.strip()]


def parse_grid(text: str) -> tuple[str, tuple]:
    """'momentum=0,0.9' -> ('momentum', (0.0, 0.9)); duplicates dropped, order kept."""
    name, values = split_assignment(text, "--grid")
    parsed = [parse_value(name, v) for v in split_values(values)]
    if not parsed:
        raise ValueError(f"--grid {text!r}: give at least one value, e.g. --grid {name}=a,b")
    return name, tuple(dict.fromkeys(parsed))


def overrides_of(sets: list[str]) -> dict[str, Any]:
    """Every --set, the last one winning for a field given twice."""
    return dict(parse_set(text) for text in sets)


def axes_of(grids: list[str]) -> dict[str, tuple]:
    """Every --grid; a field given twice is an error (which values were meant is unclear)."""
    axes: dict[str, tuple] = {}
    for name, values in map(parse_grid, grids):
        if name in axes:
            raise ValueError(f"--grid {name} is given twice: list every value in one, e.g. "
                             f"--grid {name}={','.join(map(as_text, axes[name] + values))}")
        axes[name] = values
    return axes
