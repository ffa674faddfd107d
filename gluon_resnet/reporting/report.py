"""Run records on disk -> report.md + PNG figures; reads nothing but the store's files."""
from __future__ import annotations

import math
import shlex
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from ..analysis import stats
from ..atomic import write_text_atomic
from ..analysis.groups import (LAST_K, REACH, RUNNING_OF, Group, canon, group_runs,
                               has_precise, metric_values, paired_differences, shared_config,
                               training_hours, varying_fields)
from ..analysis.plan import Plan, PlanChanged
from ..analysis.verdicts import Decided, Verdicts, analysis_of, store_plan, store_verdicts
from ..records import Run, newest
from ..store import LEFT_OUT, RunStore
from . import export, paper, plots, reproduce
from .beside import section_beside
from .per_seed import section_per_seed
from .precise import precise_count, section_precise
from .run_state import section_chance, section_state
from .reference import section_reference
from .tables import (fmt, fmt_pct, folder_kind, md_table, section_descriptive,
                     section_pilots, section_verdicts)


def fmt_mean_std(s: stats.Summary) -> str:
    return fmt_pct(s.mean) if s.n < 2 else f"{fmt_pct(s.mean)} ± {fmt_pct(s.std)}"


def fmt_reach(v: tuple[float, int, int]) -> str:
    mean, reached, n = v
    return f"{fmt('.1f')(mean)} ({reached}/{n})"


COLUMNS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("final_test_acc", "final test acc % (mean ± std)", fmt_mean_std),
    ("final_test_acc_median", "median %", fmt_pct),
    ("last3_test_acc", f"last-{LAST_K}-epoch test acc %", fmt_pct),
    ("best_test_acc", "best test acc %", fmt_pct),
    ("final_precise_test_acc", "final precise test acc % (mean ± std)", fmt_mean_std),
    ("last3_precise_test_acc", f"last-{LAST_K}-epoch precise test acc %", fmt_pct),
    ("final_train_loss", "final train loss", fmt(".4f")),
    ("epochs_to_90", f"epochs to {100 * REACH:.0f} % (reached/n)", fmt_reach),
    ("sec_per_epoch", "s / epoch", fmt(".1f")),
    ("images_per_sec", "images / s", fmt(".1f")),
    ("params", "parameters", fmt(",")),
    ("completed", "completed", str),
    ("diverged", "diverged", str),
    ("failed", "failed", str),
    ("running", "running", str),  # interrupted runs included: both resume
]


def group_row(g: Group) -> dict[str, Any]:
    """Main-table values of one group; every mean is over its completed runs only."""
    final = stats.summarize(metric_values(g, "final_test_acc"))
    reach = stats.finite(metric_values(g, "epochs_to_90"))
    row = {"final_test_acc": final, "final_test_acc_median": final.median,
           "final_precise_test_acc": stats.summarize(metric_values(g, "final_precise_test_acc")),
           "epochs_to_90": (float(reach.mean()) if reach.size else float("nan"),
                            int(reach.size), len(g.done)),
           "params": next((r.params for r in g.runs if r.params), None)}
    for key in ("last3_test_acc", "best_test_acc", "last3_precise_test_acc", "final_train_loss",
                "sec_per_epoch", "images_per_sec"):
        row[key] = stats.summarize(metric_values(g, key)).mean
    for status in ("completed", "diverged", "failed", "running"):
        row[status] = len(g.with_status(status))
    row["running"] += len(g.with_status("interrupted"))  # in progress either way: resumable
    return row




def _environments(records: list[Run]) -> list[str]:
    seen: dict[str, int] = {}
    for r in records:
        e = r.environment or {}
        # older records lack cpu_isa: their line stays as it was
        isa = f", {e['cpu_isa']}" if e.get("cpu_isa") else ""
        text = (f"{e.get('device', '?')} ({e.get('device_name', '?')}{isa}), MXNet "
                f"{e.get('mxnet_version', '?')} ({e.get('mxnet_build', '?')} build), Python "
                f"{e.get('python', '?')}, {e.get('platform', '?')}, {e.get('threads', '?')} "
                f"threads of {e.get('cpu_count', '?')} CPUs, commit {e.get('git_commit', '?')}")
        seen[text] = seen.get(text, 0) + 1
    return [f"  - {text} ({n} run{'s' * (n != 1)})" for text, n in seen.items()]


def section_run(records: list[Run], groups: list[Group], exp: dict) -> list[str]:
    """Protocol, profile, seeds, date, device and software, and the command to reproduce."""
    first = records[0] if records else None
    varied = [k for k in varying_fields(records)
              if len({canon(g.config.get(k)) for g in groups}) > 1]
    common = {k: v for k, v in (shared_config(first) if first else {}).items() if k not in varied}
    seeds = sorted({r.seed for r in records})
    sizes = sorted({len(g.runs) for g in groups}) or [0]
    lines = ["## What was run", "",
             f"- experiment: **{exp.get('name') or _named(first, 'experiment')}**"
             + (f": {exp['description']}" if exp.get("description") else ""),
             f"- profile: **{exp.get('profile') or _named(first, 'profile')}**"
             + (f" ({exp['profile_note']})" if exp.get("profile_note") else ""),
             "- protocol (shared by every run): "
             + (", ".join(f"`{k}={v}`" for k, v in common.items()) or "n/a"),
             "- varied: " + (", ".join(f"`{k}`" for k in varied) or "nothing but the seed"),
             f"- seeds: {', '.join(map(str, seeds)) or 'none'} ({len(records)} runs in "
             f"{len(groups)} groups of {'-'.join(map(str, sorted({sizes[0], sizes[-1]})))})",
             f"- newest run: {newest(records)}",
             f"- compute: {training_hours(records):.1f} hours of training over {len(records)} "
             "runs (the sum of every epoch's `seconds` in runs.csv)",
             "- device and software:"] + (_environments(records) or ["  - n/a"])
    found = reproduce.commands(records, exp) or [with_seeds(exp.get("command"), seeds)]
    found = [c for c in found if c]
    lines += ["", "To reproduce these runs" + (
        " (one command per set of seeds, since the groups have different seeds: "
        "`--until-decided` stops giving seeds to a comparison once it is decided):" if len(found) > 1
        else ":"), ""]
    lines += [f"    {c}" for c in found] or ["    (not recorded: no experiment.json in this folder)"]
    return lines + [""]


def _named(run: Optional[Run], what: str) -> str:
    """The run's experiment or profile as its record names it, "?" where it does not."""
    value = getattr(run, what) if run else None
    return "?" if value is None else value


def with_seeds(command: Optional[str], seeds: list[int]) -> Optional[str]:
    """The recorded command, its --seeds set to the seeds on disk: later invocations may
    have added seeds to the folder (--until-decided among them), and the report covers them
    all, so the command names them instead."""
    if not command or not seeds:
        return command
    words = shlex.split(command)
    for flag, takes_value in (("--seeds", True), ("--max-seeds", True), ("--until-decided", False)):
        if flag in words:
            i = words.index(flag)
            del words[i:i + 1 + takes_value]
    return shlex.join(words + ["--seeds", ",".join(map(str, seeds))])


def section_main(groups: list[Group], fields: list[str]) -> list[str]:
    # Folders recorded before precise evaluation existed keep the table they had.
    precise = any(has_precise(r) for g in groups for r in g.done)
    columns = [c for c in COLUMNS if precise or c[0] not in RUNNING_OF]
    header = fields + [h for _, h, _ in columns]
    rows = []
    for g in groups:
        values = group_row(g)
        rows.append([str(g.config.get(k)) for k in fields]
                    + [render(values[key]) for key, _, render in columns])
    return ["## Main table", "",
            "One row per group (same config, different seeds). Every cell is the mean over the "
            "group's completed runs unless its header says otherwise; accuracies in %, std over "
            "seeds with ddof = 1; diverged, failed and running runs are counted, not averaged.",
            ""] + md_table(header, rows) + [""]


def paired_figure(decided: list[Decided], analysis, root: Path) -> list[tuple[str, str]]:
    """Per-seed differences to the baseline on the primary metric, with the margin band."""
    if not decided:
        return []
    diffs = {d.other.label: {s: 100 * x for s, x in
                             paired_differences(d.base, d.other, analysis.metric).items()}
             for d in decided}
    name = "paired_differences.png"
    plots.paired_differences(diffs, 100 * analysis.margin, f"{analysis.metric}: variant - "
                             f"{analysis.baseline} (points)", root / name,
                             "same seed, variant - baseline (dot: one seed; bar: mean)")
    return [(f"per-seed differences to {analysis.baseline} on {analysis.metric} (one dot per "
             f"seed; bar: mean; band: the ±{100 * analysis.margin:g}-point margin)", name)]


def _effect_point(d: Decided, metric: str) -> tuple[float, float, float]:
    """(difference, low, high) in points: the mean paired difference, drawn even before a
    test is possible (too few seeds: no interval, low = high = the difference), and the
    simultaneous interval cut to what a difference of accuracies can be (±100 points)."""
    diffs = [100 * x for x in paired_differences(d.base, d.other, metric).values()]
    diff = sum(diffs) / len(diffs) if diffs else float("nan")
    v = d.verdict
    if v.ci_low is None or v.ci_high is None or not math.isfinite(v.ci_low + v.ci_high):
        return diff, diff, diff
    return diff, max(-100.0, 100 * v.ci_low), min(100.0, 100 * v.ci_high)


def effect_figure(decided: list[Decided], analysis, root: Path) -> list[tuple[str, str]]:
    """With one other varied setting (e.g. arch: depth), each ordering's difference to the
    baseline against that setting, with its simultaneous interval."""
    others = {k for d in decided for k in d.other.config
              if k not in ("ordering",) and len({canon(e.other.config.get(k)) for e in decided}) > 1}
    if len(others) != 1 or not decided:
        return []
    (field,) = others
    effects: dict[str, list] = {}
    for d in decided:
        effects.setdefault(d.other.ordering, []).append(
            (str(d.other.config[field]), *_effect_point(d, analysis.metric)))
    name = f"effect_by_{field}.png"
    plots.effect_by(effects, field, f"{analysis.metric}: ordering - {analysis.baseline} "
                    "(points)", 100 * analysis.margin, root / name,
                    f"difference to {analysis.baseline} by {field} (simultaneous CI)")
    return [(f"each ordering's mean paired difference to {analysis.baseline} against {field}, "
             "with its simultaneous interval (none before a test is possible, cut at ±100 "
             "points) and the margin band", name)]


def section_paper() -> list[str]:
    return ["## Context: He et al. (2016), CIFAR-10 (the paper's figures, not ours)", "",
            "Test error in % on CIFAR-10, median of 5 runs (\"Identity Mappings in Deep "
            "Residual Networks\", Table 2; ResNet-1001 from the same paper). Different data "
            "set, depths and protocol: context for the question, not a target for the numbers "
            "above.", ""] + md_table(paper.HEADER, paper.rows()) + [""]


def write_report(root: Path) -> Path:
    """Write root/report.md and its figures from root/runs/*.json and root/experiment.json."""
    root = Path(root)
    store = RunStore(root)
    records, problems = store.records(), store.problems()
    exp, exp_problems = store.read_experiment()
    groups = group_runs(records)
    fields = varying_fields(records)
    first = records[0] if records else None
    name = exp.get("name") or (first and first.experiment) or root.parent.name
    profile = exp.get("profile") or (first and first.profile) or root.name
    lines = [f"# Report: {name} ({profile} profile)", ""]
    lines += section_run(records, groups, exp)
    # paths relative to the report, so a committed report names no machine's folders
    lines += section_state(records, [p.replace(f"{root}/", "") for p in problems + exp_problems])
    lines += section_chance(records)
    pilots = folder_kind(exp) == "pilots"
    if any(g.done for g in groups):
        if pilots:  # pilots chose the protocol: no comparison, no plan, nothing locked
            analysis, source = analysis_of(exp)
            verdicts = Verdicts(Plan(analysis), source, [], [])
        else:
            verdicts = store_verdicts(store)  # the locked plan, checked, looks replayed
        analysis, decided = verdicts.analysis, verdicts.decided
        lines += section_main(groups, fields)
        lines += section_pilots() if pilots else section_verdicts(verdicts)
        lines += section_per_seed(groups, fields, analysis.metric, analysis.baseline)
        lines += section_precise(groups, analysis.metric, precise_count(groups))
        lines += section_descriptive(decided, analysis)
        lines += section_reference(decided, exp)
        lines += section_beside(groups, exp, root, analysis.metric)
        figures = (plots.report_figures(groups, root) + paired_figure(decided, analysis, root)
                   + effect_figure(decided, analysis, root))
        for old in set(root.glob("*.png")) - {root / png for _, png in figures}:
            old.unlink()  # a figure this report no longer draws must not outlive it
        table = {g.label: group_row(g) for g in groups}
        export.write_csv(export.summary_rows(groups, fields, table, decided), root / "summary.csv")
        lines += ["Tables as CSV: [runs.csv](runs.csv) (one row per run and epoch), "
                  "[summary.csv](summary.csv) (the main table and the verdicts).", ""]
        lines += ["## Figures", ""] + [f"![{Path(png).stem}]({png})\n\n{cap}.\n"
                                       for cap, png in figures]
    else:
        lines += ["No completed runs yet: no statistics or figures.", ""]
    lines += section_paper()
    if records:
        export.write_csv(export.run_rows(records), root / "runs.csv")
    path = root / "report.md"
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path


def side_folders(experiment_dir: Path, profiles: tuple[str, ...]) -> list[Path]:
    """An experiment's folders of runs kept apart from its profiles' (archived runs of an
    earlier protocol or metric, pilots), so that no report mixes them with today's."""
    return [p.parent for p in sorted(Path(experiment_dir).glob("*/experiment.json"))
            if p.parent.name not in profiles]


def lock_what_is_due(root: Path) -> None:
    """What a report rebuild locks, without drawing the report: the plan at the folder's first
    finished run, its family at the first look (pilots lock nothing)."""
    store = RunStore(root)
    exp, _ = store.read_experiment()
    records = store.records()
    if folder_kind(exp) != "pilots" and any(r.done for r in records):
        store_plan(store, records)


def refresh_reports(store: RunStore, results_dir: Path, log: Callable[[str], None],
                    draw: bool = True) -> bool:
    """Rebuild the report and the index (`draw` False: only lock what is due, for a run that
    finished between rebuilds); False (and why) when that failed. A report bug never stops
    the training suite: the runs on disk matter more."""
    from .index import write_index

    try:
        if not draw:
            lock_what_is_due(store.root)
            return True
        path = write_report(store.root)
        write_index(results_dir, log)
    except PlanChanged:  # the folder's lock: the caller says how to go on (exit status 2)
        raise
    except OSError as e:  # the folder, not the code: say which and why, no traceback
        log(f"report failed (runs are safe on disk): cannot write {e.filename or store.root}: "
            f"{e.strerror or e}")
        return False
    except Exception:  # noqa: BLE001
        log("report failed (runs are safe on disk):\n" + traceback.format_exc())
        return False
    log(f"report: {path}")
    for problem in store.problems():
        log(f"{problem}; {LEFT_OUT}")
    return True
