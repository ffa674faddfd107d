"""The runs a reader must know about beside the statistics: those left out (running,
failed, diverged, unreadable) and those counted that ended at chance."""
from __future__ import annotations

from ..idx import NUM_CLASSES
from ..records import Run
from ..store import LEFT_OUT

AT_CHANCE = 1.5 / NUM_CLASSES  # final training accuracy below this: the run ended at chance


def section_state(records: list[Run], problems: list[str]) -> list[str]:
    """Running, failed and diverged runs and unreadable files: shown, never averaged."""
    lines = []
    for r in records:
        n, total = len(r.epochs), r.config.epochs
        if r.status == "running":
            lines.append(f"- in progress: `{r.run_id}` (epoch {n} of {total}; "
                         "not in the statistics)")
        elif r.status == "failed":
            error = (r.error or "no error text").strip().splitlines()[-1:] or [""]
            lines.append(f"- failed: `{r.run_id}` after {n} complete epoch(s): {error[0]}")
        elif r.status == "interrupted":
            lines.append(f"- interrupted: `{r.run_id}` after {n} complete epoch(s); "
                         "resumes on the next call (not in the statistics)")
        elif r.status == "diverged":
            lines.append(f"- diverged: `{r.run_id}` at epoch {n} (non-finite loss)")
    lines += [f"- unreadable or invalid run file ({LEFT_OUT}): {p}" for p in problems]
    return ["## Runs not in the statistics", ""] + lines + [""] if lines else []


def section_chance(records: list[Run]) -> list[str]:
    """Completed runs that ended at chance. The declared analysis counts them (failing to
    train is what the ordering did), so they pull their group down: name them."""
    stuck = [r for r in records if r.status == "completed" and r.last
             and r.last.train_acc < AT_CHANCE]
    if not stuck:
        return []
    lines = [_chance_line(r) for r in stuck]
    return (["## Runs that ended at chance", "",
             f"These completed runs ended below {100 * AT_CHANCE:.0f} % training accuracy "
             f"(chance is {100 / NUM_CLASSES:.0f} %): they never learned, or lost what they had "
             "learned. They are in the statistics, as the declared analysis counts every "
             "completed run; the curves show when they fell.", ""] + lines + [""])


def _chance_line(r: Run) -> str:
    last = r.epochs[-1]
    best = max(r.epochs, key=lambda e: e.train_acc)
    return (f"- `{r.run_id}`: training accuracy {100 * last.train_acc:.1f} %, test accuracy "
            f"{100 * last.test_acc:.1f} % after epoch {len(r.epochs)} (best training "
            f"accuracy {100 * best.train_acc:.1f} %, epoch {best.epoch})")
