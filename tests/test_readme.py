"""The README's findings table says what the committed reports say: each row's verdict,
effect, interval, seeds and seeds-to-settle are read back from its report's summary.csv
(written from the run files by `run_all.py --report-only`), so a row cannot go stale when
runs are added or a report changes. The same holds for the 04 notebook's reading of its
committed quick-mode run."""
from __future__ import annotations

import csv
import re
from pathlib import Path

from gluon_resnet.analysis.power import seeds_text
from gluon_resnet.analysis.plan import read_plan
from gluon_resnet.reporting.tables import fmt_pct, fmt_pts
from gluon_resnet.runs.results import Results

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "experiments" / "notebooks" / "04_ablation.ipynb"
MOMENTUM = "results/momentum/quick/report.md"
ROW = re.compile(r"^\|\s*(\[[^]]*\]\(([^)]+)\)[^|]*)?\|([^|]+)\|([^|]+)\|([^|]+)\|\s*(\d+)\s*\|$")
EFFECT = re.compile(r"^([+-]\d+\.\d\d) \(([+-]\d+\.\d\d) to ([+-]\d+\.\d\d)\)$")


def findings_rows(text: str) -> list[dict]:
    """The findings table's rows, each with the report it belongs to (a blank first cell
    continues the row above)."""
    table = text.split("| question (report) |", 1)[1].split("\n\n", 1)[0]
    rows, report = [], None
    for line in table.splitlines()[2:]:
        m = ROW.match(line.strip())
        assert m, f"README findings row not in the expected form: {line}"
        report = m.group(2) or report
        rows.append({"report": report, "comparison": m.group(3).strip(),
                     "verdict": m.group(4).strip(), "effect": m.group(5).strip(),
                     "seeds": int(m.group(6))})
    return rows


def summary_row(report: str, comparison: str) -> dict:
    with open(ROOT / Path(report).parent / "summary.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if r["group"] == comparison]
    return row


def settle_text(report: str, settles: str) -> str:
    """Seeds to settle as the report prints them (decide.Verdict's sentence): 'N', or 'more
    than N' past the planning table; `settles` is summary.csv's figure, empty where none would."""
    analysis = read_plan(ROOT / Path(report).parent).analysis
    n = max(int(float(settles)), analysis.min_seeds) if settles else None
    return seeds_text(n, analysis.basis)


def mismatches(text: str) -> list[str]:
    """Every way the findings table of README text `text` differs from the reports."""
    rows, wrong = findings_rows(text), []
    for row in rows:
        where = f"README row {row['comparison']} ({row['report']})"
        if not (ROOT / row["report"]).exists():
            wrong.append(f"{where}: no such report")
            continue
        ours = summary_row(row["report"], row["comparison"])
        effect = EFFECT.match(row["effect"])
        said = {"verdict": row["verdict"].split()[0], "seeds": row["seeds"],
                "effect": effect.groups() if effect else row["effect"]}
        true = {"verdict": ours["verdict"], "seeds": int(float(ours["verdict_n"])),
                "effect": tuple(fmt_pts(float(ours[k])) for k in (
                    "verdict_diff", "verdict_ci_low", "verdict_ci_high"))}
        settle = re.search(r"~(\d+)|more than \d+", row["verdict"])
        if settle:  # '~N' or 'more than N', checked against the report's own wording
            said["to settle"] = settle.group(1) or settle.group(0)
            true["to settle"] = settle_text(row["report"], ours["verdict_seeds_to_settle"])
        wrong += [f"{where}: {k} {said[k]} in the README, {true[k]} in the report"
                  for k in said if said[k] != true[k]]
    return wrong


def test_readme_findings_are_the_reports_numbers():
    text = (ROOT / "README.md").read_text()
    assert len(findings_rows(text)) >= 4
    assert mismatches(text) == []


def test_a_stale_readme_row_is_caught():
    """The check can fail: one digit of an interval, a seed count, a verdict changed."""
    text = (ROOT / "README.md").read_text()
    row = findings_rows(text)[0]
    line = next(l for l in text.splitlines() if f"| {row['comparison']} |" in l)
    for stale in (line.replace(f"| {row['seeds']} |", f"| {row['seeds'] + 1} |"),
                  line.replace(row["effect"], row["effect"][:-2]
                               + str((int(row["effect"][-2]) + 1) % 10) + ")"),
                  line.replace(f"| {row['verdict']} |", "| better |")):
        assert stale != line
        assert mismatches(text.replace(line, stale)), stale


def test_a_stale_seeds_to_settle_is_caught():
    """A row's seeds-to-settle, written as '~N' or 'more than N', is checked too."""
    text = (ROOT / "README.md").read_text()
    line = next(l for l in text.splitlines() if re.search(r"\| [^|]*~\d+[^|]* \|", l))
    n = int(re.search(r"~(\d+)", line).group(1))
    for stale in (line.replace(f"~{n}", f"~{n + 1}"), line.replace(f"~{n}", f"more than {n}")):
        assert stale != line
        assert mismatches(text.replace(line, stale)), stale


# ---------------------------------------------------------------- the 04 notebook's reading


def notebook_reading() -> str:
    """The stored 04 notebook's last markdown cell: its reading of the committed run."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "markdown"][-1]


def reading_facts() -> list[str]:
    """What the reading must say, each fact written from the momentum report's summary.csv
    and its runs (the paired differences per seed), in the reading's words."""
    results = Results("momentum", "quick", ROOT / Path(MOMENTUM).parent)
    diffs = results.per_seed["bn_relu_conv - conv_bn_relu"]
    facts = []
    for momentum in (0.0, 0.9):
        row = summary_row(MOMENTUM, f"bn_relu_conv · momentum={momentum}")
        n = int(float(row["verdict_n"]))
        d = diffs.xs(momentum, level="momentum").iloc[:n]
        facts.append(f"median difference {fmt_pts(float(row['verdict_diff']))} points "
                     f"(simultaneous CI {fmt_pts(float(row['verdict_ci_low']))} to "
                     f"{fmt_pts(float(row['verdict_ci_high']))}) over {n} seeds")
        facts.append(f"behind in {(d < 0).sum()} of {n} seeds" if row["verdict"] == "worse"
                     else f"ahead in {(d > 0).sum()} of {n} seeds")
        if row["verdict"] == "undecided":
            facts.append(f"about {settle_text(MOMENTUM, row['verdict_seeds_to_settle'])} "
                         "seeds would settle it")
        else:
            facts.append(f"is {row['verdict']} than `conv_bn_relu`")
    for ordering in ("conv_bn_relu", "bn_relu_conv"):
        means = [fmt_pct(float(summary_row(MOMENTUM, f"{ordering} · momentum={m}")
                               ["final_test_acc_mean"])) for m in (0.0, 0.9)]
        facts.append(f"{means[0]} % → {means[1]} % for `{ordering}`")
    return facts


def reading_mismatches(text: str, facts: list[str]) -> list[str]:
    """The `facts` the reading `text` no longer says (whitespace as in one line)."""
    text = " ".join(text.split())
    return [fact for fact in facts if fact not in text]


def test_the_ablation_notebooks_reading_is_its_reports_numbers():
    assert reading_mismatches(notebook_reading(), reading_facts()) == []


def test_a_stale_notebook_reading_is_caught():
    """One digit of any fact, or a verdict's word, changed in the reading no longer reads
    back."""
    text, facts = " ".join(notebook_reading().split()), reading_facts()
    for fact in facts:
        digit = re.search(r"\d", fact)
        stale = (fact[:digit.start()] + str((int(digit.group()) + 1) % 10) + fact[digit.end():]
                 if digit else re.sub(r"is \w+ than", "is better than", fact))
        assert stale != fact, fact
        assert reading_mismatches(text.replace(fact, stale), facts) == [fact]
