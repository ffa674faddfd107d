"""The report's view of precise BatchNorm evaluation: how noisy the test accuracy is between
seeds when read with the running statistics and when read with statistics re-estimated at
the final weights (train.precise_evaluate), on the same runs."""
from __future__ import annotations

from ..analysis import stats
from ..analysis.groups import RUNNING_OF, Group, has_precise, run_metrics
from .tables import fmt, fmt_pct, md_table

PRECISE_OF = {running: precise for precise, running in RUNNING_OF.items()}


def metric_pair(metric: str) -> tuple[str, str]:
    """(running, precise) versions of a test-accuracy metric; the final accuracy's pair for a
    metric that has none (e.g. a training loss)."""
    if metric in RUNNING_OF:
        return RUNNING_OF[metric], metric
    if metric in PRECISE_OF:
        return metric, PRECISE_OF[metric]
    return "final_test_acc", "final_precise_test_acc"


def _mean_sd(s: stats.Summary) -> str:
    return "n/a" if not s.n else fmt_pct(s.mean) if s.n < 2 else \
        f"{fmt_pct(s.mean)} ± {fmt_pct(s.std)}"


def noise_rows(groups: list[Group], metric: str) -> list[list[str]]:
    """Per group, over its completed runs that have both reads: n, each read's mean ± sd,
    and how many times larger the running statistics' sd is."""
    running, precise = metric_pair(metric)
    rows = []
    for g in groups:
        both = [run_metrics(r) for r in g.done if has_precise(r)]
        if not both:
            continue
        a = stats.summarize([m[running] for m in both])
        b = stats.summarize([m[precise] for m in both])
        ratio = a.std / b.std if b.std else float("nan")  # NaN stds give NaN: 'n/a'
        rows.append([g.label, str(len(both)), _mean_sd(a), _mean_sd(b), fmt(".1f")(ratio)])
    return rows


def section_precise(groups: list[Group], metric: str, count: str) -> list[str]:
    """The 'Precise evaluation' section: the noise table, and which runs lack the read."""
    done = [r for g in groups for r in g.done]
    without = [r for r in done if not has_precise(r)]
    running, precise = metric_pair(metric)
    title = "## Precise evaluation: running against re-estimated BatchNorm statistics"
    if done and len(without) == len(done):
        return [title, "", f"None of the {len(done)} completed runs here was tested with "
                "precise BatchNorm statistics (they were recorded before precise evaluation "
                "existed, or with `precise_bn_batches=0`): every test number in this report "
                "is read with BatchNorm's running statistics.", ""]
    lines = [title, "",
             "Each epoch is tested twice: with BatchNorm's running statistics (an exponential "
             "average of the last ~10 batches' statistics, which trails the weights when they "
             "move fast) and with statistics re-estimated exactly at the epoch's final weights "
             f"from {count} fixed training batches (`precise_bn_batches`). Below, the spread "
             f"between seeds of {running} and of {precise} over the same runs: the smaller "
             "spread is the one that measures the network.", ""]
    rows = noise_rows(groups, metric)
    if rows:
        lines += md_table(["group", "runs", f"{running} % (mean ± sd)",
                           f"{precise} % (mean ± sd)", "sd ratio, running / precise"],
                          rows) + [""]
    if without:
        lines += [f"{len(without)} of {len(done)} completed runs were recorded without the "
                  "precise read (before it existed, or with `precise_bn_batches=0`): they "
                  "have running-statistics numbers only, and count nowhere that a precise "
                  "metric is used.", ""]
    return lines if rows or without else []


def precise_count(groups: list[Group]) -> str:
    """The precise_bn_batches of the runs, in words ('20', or '10 or 20')."""
    counts = sorted({r.config.precise_bn_batches for g in groups
                     for r in g.done if has_precise(r)})
    return " or ".join(map(str, counts)) or "0"
