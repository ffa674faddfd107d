"""results/README.md: what the committed evidence says (every comparison's verdict, from the
run files) and one row per report."""
from __future__ import annotations

from pathlib import Path

from ..store import RunStore
from .groups import group_runs
from .report import _newest
from .tables import md_table
from .verdicts import analysis_of, decide_groups


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
        done = sum(r["status"] == "completed" for r in records)
        link = f"{root.parent.name}/{root.name}/report.md"
        rows.append([f"[{root.parent.name}]({link})", root.name, exp.get("description", ""),
                     f"{len(records)} ({done} completed)", _newest(records)])
        analysis, _ = analysis_of(exp)
        decided = decide_groups(group_runs(records), analysis)
        findings += [f"- [{root.parent.name} / {root.name}]({link}), {d.other.label} against "
                     f"{analysis.baseline} ({analysis.metric}): {d.verdict.sentence(analysis)}"
                     for d in decided]
    lines = ["# Results", "",
             "## What the committed evidence says", "",
             "One line per comparison with the baseline, each decided by its experiment's "
             "declared analysis from the run files in its folder (the report beside them "
             "shows how). Differences are in percentage points of test accuracy on "
             "Fashion-MNIST, on each profile's reduced protocol.", ""]
    lines += findings or ["No comparison has runs on both sides yet."]
    lines += ["", "For context only, not a result of ours: He et al. (2016, Table 2) report "
              "CIFAR-10 test error at 110 layers of 6.61 % (conv_bn_relu), 8.17 % "
              "(bn_after_add), 7.84 % (relu_before_add), 6.71 % (relu_preact) and 6.37 % "
              "(bn_relu_conv), medians of 5 runs.", "", "## Reports", "",
              "One report per experiment and profile, regenerated from the run files beside it.",
              ""]
    lines += md_table(["experiment", "profile", "description", "runs", "newest run"], rows) \
        if rows else ["No reports yet."]
    path = results_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
