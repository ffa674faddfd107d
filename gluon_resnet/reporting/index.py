"""results/README.md: what the committed evidence says (every comparison's verdict, from the
run files) and one row per report."""
from __future__ import annotations

from pathlib import Path

from ..records import newest
from ..store import RunStore
from ..analysis.groups import training_hours
from . import paper
from .tables import folder_kind, md_table, one_run_sentences
from ..analysis.plan import PlanChanged
from ..analysis.verdicts import store_verdicts


KINDS = ("better", "worse", "equivalent", "undecided")
def gist(info: dict, width: int = 140) -> str:
    """A table cell's worth of an experiment's description: its first sentence, cut at a word
    (the report carries the whole), marked where the folder is an archive or pilots."""
    text = str(info.get("description", "")).split(". ")[0].rstrip(".")
    if len(text) > width:
        text = text[:width].rsplit(" ", 1)[0] + " ..."
    kind = folder_kind(info)
    return f"{kind}: {text}" if kind else text


def summary(name: str, link: str, n_runs: int, hours: float, analysis, decided: list) -> str:
    """One line per question: how many comparisons reached which verdict."""
    counts = {k: sum(d.verdict.kind == k for d in decided) for k in KINDS}
    said = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no comparison yet"
    seeds = sorted({d.verdict.n for d in decided})
    span = (f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}") if seeds else "0"
    return (f"**[{name}]({link})** ({n_runs} completed runs, {hours:.1f} hours of training; "
            f"{len(decided)} comparison(s) "
            f"with {analysis.baseline} on {analysis.metric}, {span} seeds each, cap "
            f"{analysis.max_seeds}): {said}.")


def reference_line(info: dict) -> list[str]:
    """An experiment's declared published numbers (experiment.json "reference"), labelled."""
    ref = info.get("reference") or {}
    values = ref.get("values") or {}
    if not values:
        return []
    shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items())
    return [f"  - For context, not ours: {ref.get('source', 'published')} read "
            f"{ref.get('metric', 'the metric')} {shown}."]


def write_index(results_dir: Path) -> Path:
    """results_dir/README.md: what the evidence says (every verdict, from the reports'
    records), then one row per <experiment>/<profile>/report.md present."""
    results_dir = Path(results_dir)
    rows, findings = [], []
    for report in sorted(results_dir.glob("*/*/report.md")):
        root = report.parent
        store = RunStore(root)
        records = store.records()
        exp, _ = store.read_experiment()
        done = sum(r.status == "completed" for r in records)
        name, link = f"{root.parent.name} / {root.name}", f"{root.parent.name}/{root.name}/report.md"
        rows.append([f"[{root.parent.name}]({link})", root.name, gist(exp),
                     f"{len(records)} ({done} completed)", newest(records)])
        if folder_kind(exp) == "pilots":
            findings += [f"- **[{name}]({link})** (pilots: {done} completed runs, "
                         f"{training_hours(records):.1f} hours of training): they chose the "
                         "protocol and are not seeds of it, so they get no verdicts."]
            continue
        try:
            verdicts = store_verdicts(store, lock=False)
        except PlanChanged as e:  # that folder's own commands refuse it; the page says why
            findings += [f"- **[{name}]({link})**: no verdicts: {e}"]
            continue
        analysis, decided = verdicts.analysis, verdicts.decided
        findings += [f"- {summary(name, link, done, training_hours(records), analysis, decided)}"]
        findings += [f"  - {d.other.label} against {analysis.baseline}: "
                     f"{d.verdict.sentence(analysis)}" for d in decided]
        findings += reference_line(exp) + [f"    {line}" for line in one_run_sentences(decided, exp)]
    lines = ["# Results", "",
             "## What the committed evidence says", "",
             "One entry per question (experiment and profile) with the count of verdicts, then "
             "one line per comparison with the baseline, each decided by its experiment's "
             "declared analysis from the run files in its folder (the report beside them "
             "shows how). Differences are in percentage points of test accuracy on "
             "Fashion-MNIST, on each profile's reduced protocol.", ""]
    lines += findings or ["No comparison has runs on both sides yet."]
    lines += ["", paper.context(), "", "## Reports", "",
              "One report per experiment and profile, regenerated from the run files beside it.",
              ""]
    lines += md_table(["experiment", "profile", "description", "runs", "newest run"], rows) \
        if rows else ["No reports yet."]
    path = results_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
