"""Report figures as PNG files: one function per figure, plain data in, a file out.

Each mapping's order is the group order; a group keeps the same colour in every figure.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..atomic import write_atomic
from ..records import Run
from ._drawn import drawn_once

DPI = 110


def colours(labels: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per group label (tab10, tab20 beyond ten groups)."""
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _padded(runs: Sequence[Sequence[float | None]]) -> np.ndarray:
    """Seeds x epochs array, NaN where a run has no (finite) value."""
    width = max((len(r) for r in runs), default=0)
    out = np.full((len(runs), width), np.nan)
    for i, run in enumerate(runs):
        out[i, :len(run)] = [np.nan if v is None else v for v in run]
    return out


def _subplots(*grid: int, figsize: tuple[float, float], **kw):
    """A figure of its own, never pyplot's: files only, whatever backend a notebook's pyplot
    uses (its first switch raises in matplotlib 3.7 under IPython 9), and nothing to close."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kw)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    # the temporary file's name says nothing of the format: name it
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    return Path(path)


@drawn_once
def curves(series: Mapping[str, Sequence[Sequence[float | None]]], ylabel: str,
           path: Path, title: str = "", log: bool = False,
           palette: Optional[Mapping[str, tuple]] = None,
           beside: Optional[Mapping[str, Sequence[Sequence[float | None]]]] = None,
           beside_label: str = "") -> Path:
    """Value against epoch per group: mean over seeds as a line, min..max as a band; the
    `beside` series (e.g. the same metric read another way) as dashed means."""
    fig, ax = _subplots(figsize=(7, 4.2))
    col = palette or colours(list(series))
    for label, runs in (beside or {}).items():
        arr = _padded(runs)
        if arr.size and not np.isnan(arr).all():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(arr, 0)
            ax.plot(np.arange(1, arr.shape[1] + 1), mean, ls="--", lw=1, color=col[label],
                    alpha=0.8, label=f"{label}, {beside_label}")
    for label, runs in series.items():
        arr = _padded(runs)
        if arr.size == 0 or np.isnan(arr).all():
            continue
        epochs = np.arange(1, arr.shape[1] + 1)
        with warnings.catch_warnings():  # all-NaN epochs: "Mean of empty slice"
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, lo, hi = np.nanmean(arr, 0), np.nanmin(arr, 0), np.nanmax(arr, 0)
        ax.plot(epochs, mean, marker="o", ms=3, color=col[label], label=f"{label} (n={len(runs)})")
        ax.fill_between(epochs, lo, hi, color=col[label], alpha=0.18, linewidth=0)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


@drawn_once
def per_part(panels: Mapping[str, Mapping[str, Mapping[str, float]]], ylabel: str,
             path: Path, title: str = "", log: bool = True,
             palette: Optional[Mapping[str, tuple]] = None) -> Path:
    """One panel per epoch (e.g. first, last): a value per network part, a line per group."""
    fig, axes = _subplots(1, max(len(panels), 1), figsize=(4.2 * max(len(panels), 1), 4),
                             sharey=True, squeeze=False)
    labels = list(dict.fromkeys(g for groups in panels.values() for g in groups))
    col = palette or colours(labels)
    for ax, (panel, groups) in zip(axes[0], panels.items()):
        for label, values in groups.items():
            parts = list(values)
            ax.plot(range(len(parts)), [values[p] for p in parts], marker="o", ms=4,
                    color=col[label], label=label)
            ax.set_xticks(range(len(parts)), parts, rotation=30)
        ax.set(title=panel, xlabel="part of the network")
        ax.grid(alpha=0.3)
        if log:
            ax.set_yscale("log")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


@drawn_once
def strip(values: Mapping[str, Sequence[float]], ylabel: str, path: Path,
          title: str = "", palette: Optional[Mapping[str, tuple]] = None) -> Path:
    """Box plot per group with every seed drawn as a dot on top."""
    labels = list(values)
    fig, ax = _subplots(figsize=(max(4.5, 1.3 * len(labels) + 2), 4.2))
    col = palette or colours(labels)
    ax.boxplot([values[k] for k in labels], widths=0.5, showfliers=False,
               medianprops={"color": "black"})
    jitter = np.random.default_rng(0)  # fixed: the same records draw the same figure
    for i, label in enumerate(labels, start=1):
        ys = np.asarray(values[label], dtype=float)
        xs = i + jitter.uniform(-0.12, 0.12, ys.size)
        ax.scatter(xs, ys, color=col[label], zorder=3, s=22)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, ha="right")
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)



# --- the report's figure set, from groups of run records ------------------------------

def _epoch_means(runs: list[Run], key: str, index: int) -> dict[str, float]:
    """Mean over runs of a per-part dict (grad_norm, act_std) at one epoch index."""
    dicts = [r.epochs[index].value(key) or {} for r in runs if r.epochs]
    parts = list(dict.fromkeys(p for d in dicts for p in d))
    means = {}
    for part in parts:
        vals = np.array([np.nan if d.get(part) is None else d[part] for d in dicts], float)
        if np.isfinite(vals).any():
            means[part] = float(np.nanmean(vals))
    return means


def _part_panels(groups, key: str) -> dict[str, dict[str, dict[str, float]]]:
    panels: dict[str, dict[str, dict[str, float]]] = {"first epoch": {}, "last epoch": {}}
    for g in groups:
        for title, index in (("first epoch", 0), ("last epoch", -1)):
            means = _epoch_means(g.done, key, index)
            if means:
                panels[title][g.label] = means
    return panels if panels["last epoch"] else {}


def _series(groups, key: str) -> dict[str, list[list]]:
    return {g.label: [r.series(key) for r in g.done] for g in groups}


def _test_curves(groups, out_dir: Path, pal) -> tuple[str, str]:
    """Test accuracy against epoch: the precise read where runs have it, the running
    statistics' read dashed beside it; the running read alone for older runs."""
    precise = {k: v for k, v in _series(groups, "precise_test_acc").items()
               if any(x is not None for run in v for x in run)}
    running = _series(groups, "test_acc")
    if not precise:
        curves(running, "test accuracy", out_dir / "test_acc.png",
               "test accuracy: mean over seeds, band = min..max", palette=pal)
        return ("test accuracy against epoch (line: mean over seeds; band: min to max)",
                "test_acc.png")
    curves(precise, "test accuracy", out_dir / "test_acc.png",
           "test accuracy (precise BN statistics): mean over seeds, band = min..max",
           palette=pal, beside={k: running[k] for k in precise},
           beside_label="running statistics")
    return ("test accuracy against epoch with BatchNorm statistics re-estimated at each "
            "epoch's weights (line: mean over seeds; band: min to max; dashed: the same "
            "runs read with the running statistics)", "test_acc.png")


def report_figures(groups, out_dir: Path) -> list[tuple[str, str]]:
    """Draw every figure there is data for; (caption, file name) pairs, in report order.

    `groups` are analysis.groups.Group objects; only their completed runs (`.done`) are drawn.
    """
    out_dir = Path(out_dir)
    done = [g for g in groups if g.done]
    if not done:
        return []
    made, pal = [], colours([g.label for g in groups])
    made.append(_test_curves(done, out_dir, pal))
    curves(_series(done, "train_loss"), "train loss", out_dir / "train_loss.png",
           "train loss: mean over seeds, band = min..max", log=True, palette=pal)
    made.append(("train loss against epoch (line: mean over seeds; band: min to max)",
                 "train_loss.png"))
    for key, ylabel, name in (("grad_norm", "gradient norm", "grad_norm.png"),
                              ("act_std", "activation std", "act_std.png")):
        panels = _part_panels(done, key)
        if panels:
            per_part(panels, ylabel, out_dir / name, f"{ylabel} per part, mean over seeds",
                     palette=pal)
            made.append((f"{ylabel} per part of the network, first and last epoch "
                         "(mean over seeds)", name))
    finals = {g.label: [r.last.test_acc for r in g.done if r.last]
              for g in done}
    finals = {k: [v for v in vs if v is not None] for k, vs in finals.items()}
    strip(finals, "final test accuracy", out_dir / "final_test_acc.png",
          "final test accuracy per group (one dot per seed)", palette=pal)
    made.append(("final test accuracy per group (box; one dot per seed)", "final_test_acc.png"))
    return made


@drawn_once
def paired_differences(diffs: Mapping[str, Mapping[int, float]], margin: float, ylabel: str,
                       path: Path, title: str = "") -> Path:
    """Per comparison, one dot per seed (variant - baseline on the same seed), the mean as a
    bar, and the margin of practical equivalence as a shaded band around zero."""
    labels = list(diffs)
    fig, ax = _subplots(figsize=(max(5.0, 1.3 * len(labels) + 2), 4.2))
    ax.axhspan(-margin, margin, color="0.85", zorder=0, label=f"±margin ({margin:g})")
    ax.axhline(0, color="0.4", lw=0.8)
    for i, label in enumerate(labels):
        values = np.array([v for v in diffs[label].values() if v is not None and np.isfinite(v)])
        if values.size == 0:
            continue
        jitter = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else np.zeros(1)
        ax.scatter(i + jitter, values, s=22, color="C0", zorder=3)
        ax.hlines(values.mean(), i - 0.25, i + 0.25, color="C3", lw=2, zorder=4)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


@drawn_once
def effect_by(effects: Mapping[str, Sequence[tuple[str, float, float, float]]], xlabel: str,
              ylabel: str, margin: float, path: Path, title: str = "") -> Path:
    """Per variant, its difference to the baseline (with its interval) at each value of
    another setting, e.g. depth: (x label, difference, low, high) per point."""
    fig, ax = _subplots(figsize=(7, 4.2))
    ax.axhspan(-margin, margin, color="0.88", zorder=0, label=f"±margin ({margin:g})")
    ax.axhline(0, color="0.4", lw=0.8)
    labels = list(dict.fromkeys(x for points in effects.values() for x, *_ in points))
    offsets = np.linspace(-0.12, 0.12, len(effects)) if len(effects) > 1 else [0.0]
    for k, (variant, points) in enumerate(effects.items()):
        xs = [labels.index(x) + offsets[k] for x, *_ in points]
        diff = np.array([d for _, d, _, _ in points])
        low = np.array([lo for _, _, lo, _ in points])
        high = np.array([hi for _, _, _, hi in points])
        ax.errorbar(xs, diff, yerr=[diff - low, high - diff], marker="o", capsize=4,
                    label=variant, color=f"C{k}")
    ax.set_xticks(range(len(labels)), labels)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return _save(fig, path)
