"""report.py against hand-made run files: every table number is recomputed here from JSON."""
from __future__ import annotations

import contextlib
import csv
import json
import re
import shutil
import statistics
import zlib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from gluon_resnet.analysis.declared import Analysis
from gluon_resnet.config import RunConfig
from gluon_resnet.reporting import export
from gluon_resnet.reporting.index import MARKER, OLD_START, not_ours, write_index
from gluon_resnet.reporting.report import refresh_reports, write_report
from gluon_resnet.store import RunStore

from conftest import SEED_NOTEBOOK_FULL

PARTS = ("stem", "stage1", "stage2", "head")
EPOCHS = 4


def config(ordering: str, seed: int, arch: str = "d2l18") -> dict:
    return {"arch": arch, "ordering": ordering, "width": 0.25, "final_bn_relu": None,
            "size": 32, "train_per_class": 20, "test_per_class": 10, "augment": False,
            "lr": 0.05, "batch_size": 64, "epochs": EPOCHS, "momentum": 0.0,
            "weight_decay": 0.0, "init": "xavier", "schedule": "constant", "lr_steps": [],
            "lr_factor": 0.1, "seed": seed}


def run_id(ordering: str, seed: int, arch: str = "d2l18") -> str:
    """A record must carry its own config's run id (records.validate)."""
    return RunConfig.from_dict(config(ordering, seed, arch)).run_id


def epoch(i: int, rng: np.random.Generator, base: float) -> dict:
    acc = float(min(0.99, max(0.0, base - 0.06 * (EPOCHS - i) + rng.normal(0, 0.01))))
    return {"epoch": i, "train_loss": float(1.2 / i + rng.uniform(0, 0.05)),
            "train_acc": min(1.0, acc + 0.02), "test_loss": float(0.5 + rng.uniform(0, 0.1)),
            "test_acc": acc, "lr": 0.05, "seconds": float(rng.uniform(2, 3)),
            "images_per_sec": float(rng.uniform(80, 120)),
            "grad_norm": {p: float(rng.uniform(0.1, 2)) for p in PARTS},
            "act_mean": {p: float(rng.normal()) for p in PARTS},
            "act_std": {p: float(rng.uniform(0.5, 3)) for p in PARTS}}


def record(ordering: str, seed: int, base: float, status: str = "completed",
           n_epochs: int = EPOCHS, arch: str = "d2l18") -> dict:
    rng = np.random.default_rng(zlib.crc32(f"{ordering}{seed}{arch}".encode()))
    eps = [epoch(i, rng, base) for i in range(1, n_epochs + 1)]
    if status == "diverged":
        eps[-1]["train_loss"] = None
    return {"schema_version": 1, "run_id": run_id(ordering, seed, arch),
            "experiment": "orderings", "profile": "smoke", "config": config(ordering, seed, arch),
            "status": status, "error": "Traceback...\nRuntimeError: boom" if status == "failed"
            else None, "params": {"d2l18": 700_000, "cifar20": 17_000}[arch]
            + 10 * len(ordering), "environment": {
                "mxnet_version": "1.9.1", "mxnet_build": "cpu", "device": "cpu(0)",
                "device_name": "test CPU", "python": "3.11.9", "platform": "Linux",
                "git_commit": "0000000", "threads": 2, "cpu_count": 2},
            "started": f"2024-05-0{1 + seed}T10:00:00", "wall_seconds": 10.0,
            "finished": None if status == "running" else f"2024-05-0{1 + seed}T11:00:00",
            "epochs": eps}


def write_runs(root: Path, records: list[dict], analysis=None) -> None:
    """The records, in a folder locked as its first finished run locks it (before them)."""
    from gluon_resnet.analysis import plan as P
    from gluon_resnet.analysis.declared import Analysis
    from gluon_resnet.store import RunStore

    (root / "runs").mkdir(parents=True, exist_ok=True)
    for r in records:
        (root / "runs" / f"{r['run_id']}.json").write_text(json.dumps(r))
    if not P.lock_path(root).exists():
        P.write_plan(RunStore(root), P.Plan(analysis or Analysis(), locked="2024-01-01T00:00:00"))


EXPERIMENT = {"name": "orderings", "description": "five orderings, d2l ResNet-18",
              "profile": "smoke", "profile_note": "seconds, for tests",
              "baseline": "conv_bn_relu", "command": "python run_all.py --profile smoke",
              "device_note": "test machine"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "results" / "orderings" / "smoke"
    runs = [record("conv_bn_relu", s, 0.90) for s in range(4)]
    runs += [record("bn_relu_conv", s, 0.93) for s in range(3)]
    runs += [record("bn_relu_conv", 3, 0.99 + 0.06 * EPOCHS, "running", n_epochs=2)]
    runs += [record("relu_preact", 0, 0.88), record("relu_preact", 1, 0.88, "diverged"),
             record("relu_preact", 2, 0.88, "failed", n_epochs=1)]
    write_runs(root, runs)
    (root / "runs" / "broken-run.json").write_text("{not json")
    (root / "experiment.json").write_text(json.dumps(EXPERIMENT))
    return root


def table(text: str, heading: str, occurrence: int = 0) -> list[dict[str, str]]:
    """The markdown table after `heading` (the n-th table there) as a list of row dicts."""
    section = text.split(heading, 1)[1]
    blocks = re.findall(r"((?:^\|.*\|\n)+)", section, flags=re.M)
    lines = blocks[occurrence].strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split(" | "))))
            for line in lines[2:]]


def completed(root: Path, ordering: str) -> list[dict]:
    out = []
    for path in sorted((root / "runs").glob("*.json")):
        try:
            r = json.loads(path.read_text())
        except ValueError:
            continue
        if r["config"]["ordering"] == ordering and r["status"] == "completed":
            out.append(r)
    return out


def close(cell: str, expected: float, decimals: int) -> bool:
    return abs(float(cell) - expected) <= 0.5 * 10 ** -decimals + 1e-9


def test_main_table_matches_recomputation(store: Path):
    text = write_report(store).read_text()
    rows = {r["ordering"]: r for r in table(text, "## Main table")}
    assert set(rows) == {"conv_bn_relu", "bn_relu_conv", "relu_preact"}
    for ordering, row in rows.items():
        runs = completed(store, ordering)
        finals = [r["epochs"][-1]["test_acc"] for r in runs]
        cell = row["final test acc % (mean ± std)"]
        if len(finals) > 1:
            mean, std = (float(x) for x in cell.split(" ± "))
            assert close(str(mean), 100 * statistics.mean(finals), 2)
            assert close(str(std), 100 * statistics.stdev(finals), 2)
        else:
            assert close(cell, 100 * finals[0], 2)
        assert close(row["median %"], 100 * statistics.median(finals), 2)
        last3 = [statistics.mean(e["test_acc"] for e in r["epochs"][-3:]) for r in runs]
        assert close(row["last-3-epoch test acc %"], 100 * statistics.mean(last3), 2)
        best = [max(e["test_acc"] for e in r["epochs"]) for r in runs]
        assert close(row["best test acc %"], 100 * statistics.mean(best), 2)
        loss = [r["epochs"][-1]["train_loss"] for r in runs]
        assert close(row["final train loss"], statistics.mean(loss), 4)
        reach = [next(e["epoch"] for e in r["epochs"] if e["test_acc"] >= 0.9)
                 for r in runs if any(e["test_acc"] >= 0.9 for e in r["epochs"])]
        cell = row["epochs to 90 % (reached/n)"]
        assert cell.endswith(f"({len(reach)}/{len(runs)})")
        if reach:
            assert close(cell.split()[0], statistics.mean(reach), 1)
        else:
            assert cell.startswith("n/a")
        secs = [statistics.mean(e["seconds"] for e in r["epochs"]) for r in runs]
        assert close(row["s / epoch"], statistics.mean(secs), 1)
        ips = [statistics.mean(e["images_per_sec"] for e in r["epochs"]) for r in runs]
        assert close(row["images / s"], statistics.mean(ips), 1)
        assert int(row["parameters"].replace(",", "")) == runs[0]["params"]
    assert [rows[o]["completed"] for o in ("conv_bn_relu", "bn_relu_conv", "relu_preact")] \
        == ["4", "3", "1"]
    assert (rows["relu_preact"]["diverged"], rows["relu_preact"]["failed"]) == ("1", "1")
    assert (rows["bn_relu_conv"]["running"], rows["conv_bn_relu"]["running"]) == ("1", "0")


def test_comparison_matches_scipy(store: Path):
    text = write_report(store).read_text()
    base = {r["config"]["seed"]: r["epochs"][-1]["test_acc"] for r in completed(store, "conv_bn_relu")}
    other = {r["config"]["seed"]: r["epochs"][-1]["test_acc"]
             for r in completed(store, "bn_relu_conv")}
    # the declared, paired analysis: per-seed differences over the seeds both completed
    verdicts = {r["comparison"]: r for r in table(text, "## Against the baseline: verdicts")}
    pairs = sorted(base.keys() & other.keys())
    diffs = [other[s] - base[s] for s in pairs]
    row = verdicts["bn_relu_conv"]
    assert row["seeds"] == str(len(pairs)) == "3"
    assert close(row["difference (points)"], 100 * np.mean(diffs), 2)
    assert row["verdict"].split(" ")[0] in ("better", "worse", "equivalent", "undecided")
    # its diverged run has collapsed: left out of the comparison, counted in the collapse claim
    assert verdicts["relu_preact"]["verdict"] == (
        "undecided after 1 seeds: needs at least 3 seeds, has 1; collapsed runs: baseline 0 "
        "of 2, variant 1 of 2 (left out; no difference in collapse rate shown, exact McNemar "
        "over looks and Holm, p = 1.000)")
    # Welch's unpaired view beside it, on all completed runs
    beside = {r["comparison"]: r for r in table(text, "## Against the baseline: verdicts", 3)}
    a, b = list(base.values()), list(other.values())
    p = sps.ttest_ind(b, a, equal_var=False).pvalue
    cell = beside["bn_relu_conv"]["Welch p"]
    assert cell == "< 0.001" if p < 0.001 else abs(float(cell) - p) < 0.01
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    half = sps.t.ppf(0.975, df) * np.sqrt(va + vb) * 100
    diff = 100 * (np.mean(b) - np.mean(a))
    text_diff, ci = beside["bn_relu_conv"]["Welch difference (95 % CI)"].split(" (")
    lo, hi = (float(x) for x in ci.rstrip(")").split(" to "))
    assert close(text_diff, diff, 2) and close(str(lo), diff - half, 2)
    assert close(str(hi), diff + half, 2)
    # other metrics: differences and intervals only, no verdict column
    last3 = table(text, "## Other metrics (descriptive, no verdicts)")
    assert "verdict" not in last3[0] and {r["group"] for r in last3} >= {"bn_relu_conv"}


def test_runs_at_chance_named_and_still_counted(tmp_path: Path):
    """A completed run that ended at chance is in the statistics (the declared analysis counts
    it) and named under its own heading; a run that learned is not named there."""
    root = tmp_path / "results" / "orderings" / "smoke"
    write_runs(root, [record("conv_bn_relu", s, 0.90) for s in range(3)]
               + [record("bn_relu_conv", 0, 0.08)]
               + [record("bn_relu_conv", s, 0.93) for s in (1, 2)])
    (root / "experiment.json").write_text(json.dumps(EXPERIMENT))
    text = write_report(root).read_text()
    section = text.split("## Runs that ended at chance", 1)[1].split("\n## ", 1)[0]
    stuck = json.loads((root / "runs" / f"{run_id('bn_relu_conv', 0)}.json").read_text())
    last = stuck["epochs"][-1]
    assert (f"`{run_id('bn_relu_conv', 0)}`: training accuracy {100 * last['train_acc']:.1f} %, "
            f"test accuracy {100 * last['test_acc']:.1f} % after epoch {EPOCHS} (best training "
            f"accuracy {100 * max(e['train_acc'] for e in stuck['epochs']):.1f} %") in section
    assert run_id("bn_relu_conv", 1) not in section and run_id("conv_bn_relu", 0) not in section
    row = {r["ordering"]: r for r in table(text, "## Main table")}["bn_relu_conv"]
    assert row["completed"] == "3"
    (root / "runs" / f"{run_id('bn_relu_conv', 0)}.json").unlink()
    assert "## Runs that ended at chance" not in write_report(root).read_text()


def test_problems_and_in_progress_listed(store: Path):
    text = write_report(store).read_text()
    assert "broken-run.json" in text
    assert f"in progress: `{run_id('bn_relu_conv', 3)}`" in text
    assert "RuntimeError: boom" in text and f"diverged: `{run_id('relu_preact', 1)}`" in text
    assert "python run_all.py --profile smoke" in text
    assert "MXNet 1.9.1 (cpu build)" in text and "newest run: 2024-05-04T11:00:00" in text
    assert "not ours" in text and "6.61" in text and "4.92" in text


def test_figures_exist_and_are_linked_relatively(store: Path):
    text = write_report(store).read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"test_acc.png", "train_loss.png", "grad_norm.png", "act_std.png",
            "final_test_acc.png"} <= set(links)
    for link in links:
        assert not Path(link).is_absolute() and "/" not in link
        assert (store / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_groups_by_arch_compare_within_arch(tmp_path: Path):
    root = tmp_path / "depth" / "smoke"
    runs = [record(o, s, b + (0.02 if a == "cifar20" else 0), arch=a)
            for a in ("cifar20", "d2l18") for o, b in (("conv_bn_relu", .9), ("bn_relu_conv", .92))
            for s in range(2)]
    write_runs(root, runs)
    text = write_report(root).read_text()
    main = table(text, "## Main table")
    assert [(r["ordering"], r["arch"]) for r in main] == [
        ("conv_bn_relu", "cifar20"), ("conv_bn_relu", "d2l18"),
        ("bn_relu_conv", "cifar20"), ("bn_relu_conv", "d2l18")]
    rows = {r["comparison"]: r for r in table(text, "## Against the baseline: verdicts")}
    assert len(rows) == 2  # within each arch, never across
    assert (root / "effect_by_arch.png").exists() and "effect_by_arch.png" in text
    for arch in ("cifar20", "d2l18"):
        final = {o: [r["epochs"][-1]["test_acc"] for r in runs
                     if r["config"]["ordering"] == o and r["config"]["arch"] == arch]
                 for o in ("conv_bn_relu", "bn_relu_conv")}
        diff = 100 * (np.mean(final["bn_relu_conv"]) - np.mean(final["conv_bn_relu"]))
        assert close(rows[f"bn_relu_conv · {arch}"]["difference (points)"], diff, 2)
    assert "not recorded" in text  # no experiment.json


def test_empty_store_and_index(tmp_path: Path, store: Path):
    from gluon_resnet.store import RunStore

    results = store.parent.parent
    empty = results / "seed_notebook" / "quick"
    empty.mkdir(parents=True)
    assert "No completed runs yet" in write_report(empty).read_text()
    write_report(store)
    text = write_index(results).read_text()
    assert "(orderings/smoke/report.md)" in text and "(seed_notebook/quick/report.md)" in text
    rows = table(text, "## Reports")
    assert "## What the committed evidence says" in text and "bn_relu_conv against conv_bn_relu" in text
    assert [r["runs"] for r in rows] == ["11 (8 completed)", "0 (0 completed)"]
    hours = sum(e.seconds for r in RunStore(store).records() for e in r.epochs) / 3600
    head = re.search(r"\*\*\[orderings / smoke\]\(orderings/smoke/report.md\)\*\* \(8 completed "
                     rf"runs, {hours:.1f} hours of training; (\d+) comparison\(s\) with conv_bn_relu on final_test_acc, [-\d]+ "
                     r"seeds each, cap \d+\): ([^.]+)\.", text)
    assert head, text
    said = dict(reversed(part.split(" ")) for part in head.group(2).split(", "))
    below = text[head.end():].split("\n\n")[0]
    assert sum(map(int, said.values())) == int(head.group(1)) == below.count("  - ")
    for kind, n in said.items():  # each comparison's sentence starts with its verdict
        assert below.count(f"against conv_bn_relu: {kind}") == int(n)


def test_the_findings_line_counts_in_the_singular_and_the_plural():
    from gluon_resnet.reporting.index import summary

    one = summary("x", "x.md", 1, 0.25, Analysis(), [])
    assert "(1 completed run, 0.2 hours" in one and "0 seeds each" in one
    assert "(2 completed runs," in summary("x", "x.md", 2, 0.25, Analysis(), [])


def test_a_description_over_several_lines_stays_one_row_of_the_index(store: Path):
    """A TOML experiment's description written over several lines (as the 04 notebook's is)
    ended its row of the findings page's table after the first line."""
    results = store.parent.parent
    info_path = store / "experiment.json"
    info = json.loads(info_path.read_text())
    info["description"] = "Does it depend on momentum? conv_bn_relu against\nbn_relu_conv | ok"
    info_path.write_text(json.dumps(info))
    write_report(store)
    rows = table(write_index(results).read_text(), "## Reports")
    assert [r["description"] for r in rows] == [
        "Does it depend on momentum? conv_bn_relu against bn_relu_conv \\| ok"]


def test_a_run_between_report_rebuilds_still_locks_the_plan(tmp_path: Path):
    """A run that finished while the report waits for its next rebuild (runs.jobs.Tally) locks
    the plan as a rebuild would, drawing nothing; a folder of pilots locks nothing."""
    from gluon_resnet.analysis import plan as P

    results, said = tmp_path / "results", []
    for profile, note in (("smoke", EXPERIMENT["profile_note"]), ("pilots", "PILOTS, seed 0")):
        root = results / "orderings" / profile
        (root / "runs").mkdir(parents=True)
        for r in (record("conv_bn_relu", 0, 0.90), record("bn_relu_conv", 0, 0.93)):
            (root / "runs" / f"{r['run_id']}.json").write_text(json.dumps(r))
        (root / "experiment.json").write_text(json.dumps({**EXPERIMENT, "profile_note": note}))
        assert refresh_reports(RunStore(root), results, said.append, draw=False), said
        assert P.lock_path(root).exists() == (profile == "smoke")
        assert not (root / "report.md").exists() and not list(root.glob("*.png"))
    assert said == []


def test_pilots_get_no_verdicts_in_their_report_or_the_findings(store: Path):
    """A folder of pilots (its profile note starts with PILOTS) chose a protocol: its report
    and the findings page show its runs but no comparison ('undecided after 0 seeds' read as
    if a plan had been run), and no plan is locked in it; the same runs as evidence get them."""
    results = store.parent.parent
    write_report(store)
    assert "## Against the baseline: verdicts" in (store / "report.md").read_text()
    pilots = results / "orderings" / "pilots"
    shutil.copytree(store, pilots)  # its report and figures too, as when a folder is set apart
    (pilots / "analysis.lock.json").unlink()
    note = "PILOTS, read-only, seed 0: how the protocol was chosen"
    (pilots / "experiment.json").write_text(json.dumps({**EXPERIMENT, "profile_note": note}))
    text = write_report(pilots).read_text()
    assert "## Against the baseline: no verdicts (pilots)" in text
    assert "## Against the baseline: verdicts" not in text and "undecided" not in text
    assert "## Main table" in text and "## Per seed" in text
    assert not (pilots / "analysis.lock.json").exists() and (store / "analysis.lock.json").exists()
    # the evidence folder's comparison figure came along with the copy: no report draws it now
    assert (store / "paired_differences.png").exists()
    assert not (pilots / "paired_differences.png").exists()
    index = write_index(results).read_text()
    findings = index.split("## What the committed evidence says")[1].split("## Reports")[0]
    (entry,) = [line for line in findings.splitlines() if "(orderings/pilots/report.md)" in line]
    assert "pilots: 8 completed runs" in entry and "no verdicts" in entry
    evidence = findings.split("(orderings/smoke/report.md)")[1]
    assert "against conv_bn_relu:" in evidence
    assert "against conv_bn_relu:" not in findings.split("(orderings/pilots/report.md)")[1].split(
        "(orderings/smoke/report.md)")[0]
    assert "| pilots: five orderings, d2l ResNet-18 |" in index


def test_index_sets_an_experiments_published_numbers_apart_as_context():
    from gluon_resnet.reporting.index import reference_line

    info = {"reference": {"source": "the seed notebook, one run per variant",
                          "metric": "final_test_acc",
                          "values": {"conv_bn_relu": 0.893, "bn_relu_conv": 0.908}}}
    (line,) = reference_line(info)
    assert line.startswith("  - For context, not ours: the seed notebook")
    assert "conv_bn_relu 0.893, bn_relu_conv 0.908" in line
    assert reference_line({"reference": {}}) == reference_line({}) == []


def test_reference_numbers_beside_ours_and_whether_one_run_could_decide(store: Path):
    info = {**EXPERIMENT, "reference": {"source": "the seed notebook, one run each",
                                        "metric": "final_test_acc",
                                        "values": {"conv_bn_relu": 0.893, "bn_relu_conv": 0.908}}}
    (store / "experiment.json").write_text(json.dumps(info))
    text = write_report(store).read_text()
    section = text.split("## Beside the seed notebook, one run each")[1].split("\n## ")[0]
    rows = {r["ordering"]: r for r in table(text, "## Beside the seed notebook")}
    assert rows["conv_bn_relu"]["theirs %"] == "89.30" and rows["bn_relu_conv"]["theirs %"] == "90.80"
    finals = [r["epochs"][-1]["test_acc"] for r in completed(store, "conv_bn_relu")]
    assert rows["conv_bn_relu"]["ours, final_test_acc %"].startswith(
        f"{100 * statistics.mean(finals):.2f} ± ")
    assert "they read a difference of +1.50 points from one run each" in section
    level = f"conv_bn_relu {100 * statistics.mean(finals):.2f} % against their 89.30 % ("
    assert f"Our level on the declared metric (final_test_acc): {level}" in section
    assert "one run per variant" in section and "% of the time" in section
    # a declared metric other than theirs gets its own column, and the level is read on it
    info["analysis"] = {**info.get("analysis", {}), "metric": "last3_test_acc"}
    info["reference"]["differs"] = "theirs ran on all the images."
    store = store.parent / "last3"  # another declared analysis: a folder of its own
    write_runs(store, [json.loads(p.read_text()) for p in (store.parent / "smoke" / "runs").glob(
        "*.json") if p.name != "broken-run.json"], Analysis(metric="last3_test_acc"))
    (store / "experiment.json").write_text(json.dumps(info))
    text = write_report(store).read_text()
    rows = {r["ordering"]: r for r in table(text, "## Beside the seed notebook")}
    last3 = [statistics.mean(e["test_acc"] for e in r["epochs"][-3:])
             for r in completed(store, "conv_bn_relu")]
    assert rows["conv_bn_relu"]["ours, last3_test_acc %"].startswith(
        f"{100 * statistics.mean(last3):.2f} ± ")
    assert (f"declared metric (last3_test_acc): conv_bn_relu {100 * statistics.mean(last3):.2f}"
            in text) and "said before the runs: theirs ran on all the images." in text
    index = write_index(store.parent.parent).read_text()
    entry = index.split("- For context, not ours: the seed notebook, one run each")[1]
    assert "they read a difference of +1.50 points from one run each" in entry.split("\n- ")[0]


def test_runs_recorded_before_a_field_existed_group_with_runs_recorded_since(tmp_path):
    """Runs committed before projection_input and the warm-up existed lack those keys; the
    seeds trained since have them at their defaults. Both are one group (one ordering, seeds
    0 and 1), not two groups of one seed each, and a checkpoint of either kind resumes."""
    from gluon_resnet.checkpoint import same_config
    from gluon_resnet.analysis.groups import group_runs
    from gluon_resnet.store import RunStore

    committed = Path(__file__).resolve().parents[1] / "results" / "orderings" / "quick" / "runs"
    from gluon_resnet.config import ID_DEFAULTS

    new_fields = dict(ID_DEFAULTS)
    store = RunStore(tmp_path / "orderings" / "quick")
    store.runs_dir.mkdir(parents=True)
    for seed, fields in ((0, {}), (1, new_fields)):
        path, = committed.glob(f"d2l18-w0.25-conv_bn_relu-s{seed}-*.json")
        record = json.loads(path.read_text())
        record["config"] = {**{k: v for k, v in record["config"].items()
                               if k not in new_fields}, **fields}
        (store.runs_dir / path.name).write_text(json.dumps(record))
    groups = group_runs(store.records())
    assert [len(g.done) for g in groups] == [2]
    old = {k: v for k, v in groups[0].config.items() if k not in new_fields}
    assert same_config(old, {**old, **new_fields})
    assert not same_config(old, {**old, "projection_input": "relu"})


def test_reproduce_commands_train_exactly_the_runs_on_disk():
    """Groups with different seeds (a decided comparison got no more seeds) get one command
    per set of seeds; together the commands name every (ordering, seed) on disk, once."""
    import shlex

    from gluon_resnet.reporting.reproduce import commands
    from gluon_resnet.store import RunStore

    root = Path(__file__).resolve().parents[1] / "results" / "orderings" / "quick"
    info = json.loads((root / "experiment.json").read_text())
    records = RunStore(root).records()
    keep = [r for r in records if r.seed < 3
            and r.ordering in ("conv_bn_relu", "bn_after_add", "relu_preact")]
    keep = [r for r in keep if not (r.ordering == "bn_after_add" and r.seed == 2)]
    on_disk = sorted((r.ordering, r.seed) for r in keep)
    found = commands(keep, info)
    assert len(found) == 2
    named = []
    for c in found:
        words = shlex.split(c)
        orderings = words[words.index("--orderings") + 1].split(",")
        seeds = [int(x) for x in words[words.index("--seeds") + 1].split(",")]
        named += [(o, s) for o in orderings for s in seeds]
    assert sorted(named) == on_disk
    assert len(commands([r for r in keep if r.ordering != "bn_after_add"], info)) == 1


def test_reproduce_reads_a_definition_older_than_a_field_as_that_fields_default():
    """An experiment.json written before `shortcut` existed lacks it; its runs (projection,
    the default) need no --set shortcut=... to be reproduced."""
    from gluon_resnet.reporting.reproduce import commands
    from gluon_resnet.store import RunStore

    root = Path(__file__).resolve().parents[1] / "results" / "seed_notebook" / "quick-running-stats"
    info = json.loads((root / "experiment.json").read_text())
    info["base"].pop("shortcut", None)
    records = RunStore(root).records()
    found, = commands(records, info)
    assert "--set" not in found and "--seeds" in found
    info["base"]["shortcut"] = "zero_pad"  # a definition that really differs still gets one
    assert "--set shortcut=projection" in commands(records, info)[0]


def test_a_figure_is_drawn_once_for_the_same_data(tmp_path: Path, monkeypatch):
    """Drawn again from the same data, a figure's file gets the bytes drawn the first time
    (those a fresh draw gives): from this process's memory, or, in another process (memory
    empty), from the folder of kept figures; a kept file that is damaged, or belongs to other
    inputs, is drawn again. Other data or other matplotlib settings draw it anew."""
    import shutil

    import matplotlib

    from gluon_resnet.cache import FIGURE_CACHE_ENV
    from gluon_resnet.reporting import _drawn, plots

    saved = []
    real_save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: saved.append(path) or
                        real_save(fig, path))
    monkeypatch.setattr(_drawn, "_drawn", type(_drawn._drawn)())  # this test's caches only
    kept = tmp_path / "kept"
    monkeypatch.setenv(FIGURE_CACHE_ENV, str(kept))
    series = {"a": [[0.5, 0.6, 0.7], [0.55, 0.65, 0.75]], "b": [[0.4, 0.5, 0.6]]}
    first = plots.curves(series, "acc", tmp_path / "first.png", "t").read_bytes()
    again = plots.curves(series, "acc", tmp_path / "again.png", "t").read_bytes()
    assert len(saved) == 1 and again == first
    kept_file, = kept.glob("*.kept")
    _drawn._drawn.clear()  # as in a new process
    assert plots.curves(series, "acc", tmp_path / "other_process.png", "t").read_bytes() == first
    assert len(saved) == 1
    _drawn._drawn.clear()
    shutil.rmtree(kept)  # neither cache: drawn afresh, the same bytes
    assert plots.curves(series, "acc", tmp_path / "fresh.png", "t").read_bytes() == first
    assert len(saved) == 2
    # a damaged kept file (one byte of the image changed) is not used: drawn again
    blob = bytearray(kept_file.read_bytes())
    blob[100] ^= 0xFF
    kept_file.write_bytes(bytes(blob))
    _drawn._drawn.clear()
    assert plots.curves(series, "acc", tmp_path / "damaged.png", "t").read_bytes() == first
    assert len(saved) == 3 and kept_file.read_bytes() != bytes(blob)  # and kept again, whole
    other = {"a": series["a"], "b": [[0.4, 0.5, 0.61]]}
    assert plots.curves(other, "acc", tmp_path / "other.png", "t").read_bytes() != first
    assert plots.curves(series, "loss", tmp_path / "label.png", "t").read_bytes() != first
    assert len(saved) == 5
    # another figure's whole kept file under this figure's name: its digest names other inputs
    foreign = next(f for f in kept.glob("*.kept") if f != kept_file)
    kept_file.write_bytes(foreign.read_bytes())
    _drawn._drawn.clear()
    assert plots.curves(series, "acc", tmp_path / "foreign.png", "t").read_bytes() == first
    assert len(saved) == 6
    monkeypatch.setitem(matplotlib.rcParams, "lines.linewidth", 3.0)
    assert plots.curves(series, "acc", tmp_path / "style.png", "t").read_bytes() != first
    assert len(saved) == 7


def test_the_kept_figures_are_bounded_and_a_read_only_folder_only_costs_time(
        tmp_path: Path, monkeypatch):
    """The folder keeps the newest figures only; where it cannot be written, figures are
    drawn and written as without it."""
    from gluon_resnet.cache import FIGURE_CACHE_ENV
    from gluon_resnet.reporting import _drawn, plots

    monkeypatch.setattr(_drawn, "_drawn", type(_drawn._drawn)())
    monkeypatch.setattr(_drawn, "_KEEP_ON_DISK", 2)
    kept = tmp_path / "kept"
    monkeypatch.setenv(FIGURE_CACHE_ENV, str(kept))
    for i in range(4):
        plots.strip({"a": [0.5, 0.6 + i / 100]}, "acc", tmp_path / f"{i}.png")
    assert len(list(kept.glob("*.kept"))) == 2
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(FIGURE_CACHE_ENV, str(blocked / "figures"))
    out = plots.strip({"a": [0.5, 0.7]}, "acc", tmp_path / "drawn.png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_effect_figure_draws_one_seed_and_bounds_the_interval(tmp_path: Path):
    """Before a test is possible (one seed) the figure still shows the paired difference, with
    no interval (the report once drew nothing there)."""
    from gluon_resnet.analysis.declared import Analysis
    from gluon_resnet.analysis.groups import group_runs
    from gluon_resnet.reporting.report import _effect_point
    from gluon_resnet.analysis.verdicts import decide_groups
    from gluon_resnet.store import RunStore

    root = tmp_path / "depth" / "smoke"
    runs = [record(o, 0, b, arch=a) for a in ("cifar20", "d2l18")
            for o, b in (("conv_bn_relu", .90), ("bn_relu_conv", .93))]
    write_runs(root, runs)
    analysis = Analysis(metric="final_test_acc", baseline="conv_bn_relu")
    decided, _ = decide_groups(group_runs(RunStore(root).records()), analysis)
    assert len(decided) == 2
    final = {(r["config"]["arch"], r["config"]["ordering"]): r["epochs"][-1]["test_acc"]
             for r in runs}
    for d in decided:
        arch = d.other.config["arch"]
        expected = 100 * (final[arch, "bn_relu_conv"] - final[arch, "conv_bn_relu"])
        diff, low, high = _effect_point(d, "final_test_acc")
        assert diff == pytest.approx(expected) and low == high == diff
        assert 1 < diff < 5  # the runs' bases differ by 3 points, plus their noise


def test_per_seed_table_ahead_counts_and_compute_hours(store: Path):
    """The per-seed values behind the paired test, each difference, the count of seeds a
    variant is ahead in (with the smallest and largest difference) and the hours of training
    are the records' own numbers; a run that did not complete has no cell."""
    for path in (store / "runs").glob("*-s*.json"):  # epochs of minutes, so hours show
        r = json.loads(path.read_text())
        for e in r["epochs"]:
            e["seconds"] *= 300
        path.write_text(json.dumps(r))
    text = write_report(store).read_text()
    final = {(r["config"]["ordering"], r["config"]["seed"]): 100 * r["epochs"][-1]["test_acc"]
             for o in ("conv_bn_relu", "bn_relu_conv", "relu_preact") for r in completed(store, o)}
    rows = {r["seed"]: r for r in table(text, "## Per seed")}
    assert sorted(rows) == ["0", "1", "2", "3"]
    for seed, row in rows.items():
        for o in ("conv_bn_relu", "bn_relu_conv", "relu_preact"):
            value = final.get((o, int(seed)))
            assert row[o] == "n/a" if value is None else close(row[o], value, 2)
        diff = row["bn_relu_conv - conv_bn_relu"]
        if ("bn_relu_conv", int(seed)) in final:
            expected = final["bn_relu_conv", int(seed)] - final["conv_bn_relu", int(seed)]
            assert close(diff, expected, 2) and diff[0] in "+-"
        else:
            assert diff == "n/a"  # seed 3 of bn_relu_conv is still running
    diffs = [final["bn_relu_conv", s] - final["conv_bn_relu", s] for s in range(3)]
    beside = {r["comparison"]: r for r in table(text, "Beside the declared test")}
    assert beside["bn_relu_conv"]["variant ahead in (seeds; smallest to largest difference)"] == (
        f"{sum(d > 0 for d in diffs)} of 3 ({min(diffs):+.2f} to {max(diffs):+.2f})")
    seconds = sum(e["seconds"] for path in (store / "runs").glob("*-s*.json")
                  for e in json.loads(path.read_text())["epochs"])
    assert f"- compute: {seconds / 3600:.1f} hours of training over 11 runs" in text
    assert seconds > 3 * 3600  # failed and running runs count: compute spent all the same
    assert "Largest fall of training accuracy after the warm-up" not in text  # no warm-up


def _fall_table(root: Path, warmup: dict, accs: dict, lrs: dict) -> tuple[dict, dict]:
    """Write runs with this warm-up and these training accuracies; the rows, by seed, of the
    tables of falls after the warm-up and inside it."""
    runs = []
    for (ordering, seed), values in accs.items():
        r = record(ordering, seed, 0.9)
        r["config"].update(warmup)
        r["run_id"] = RunConfig.from_dict(r["config"]).run_id
        for e, acc, lr in zip(r["epochs"], values, lrs[seed]):
            e.update(train_acc=acc, lr=lr)
        runs.append(r)
    write_runs(root, runs)
    text = write_report(root).read_text()
    return tuple({r["seed"]: r for r in table(text, f"Largest fall of training accuracy {where}")}
                 for where in ("after the warm-up", "inside the warm-up"))


def test_fall_after_the_warm_up_skips_the_epochs_the_warm_up_touched(tmp_path: Path):
    """The largest fall of training accuracy below the best epoch so far, once the warm-up is
    over: with He et al.'s rule the epochs recorded at the warm-up rate are left out; with a
    warm-up of optimiser steps, the epochs made only of warm-up steps (ceil(images / batch)
    steps an epoch; the epoch in which it ends counts after it)."""
    he = dict(warmup_until_error=0.8, warmup_lr=0.01, warmup_steps=0)
    rows, inside = _fall_table(tmp_path / "he" / "depth" / "smoke", he,
                               {("conv_bn_relu", 0): [0.15, 0.30, 0.12, 0.60],
                                ("conv_bn_relu", 1): [0.25, 0.50, 0.70, 0.80],
                                ("bn_relu_conv", 0): [0.25, 0.50, 0.70, 0.80]},
                               {0: (0.01, 0.05, 0.05, 0.05), 1: (0.01, 0.01, 0.05, 0.05)})
    assert rows["0"]["conv_bn_relu"] == "18.00"  # 0.30 at epoch 2, then 0.12
    assert rows["1"]["conv_bn_relu"] == "0.00"   # after its two warm-up epochs it only rose
    assert rows["0"]["bn_relu_conv"] == "0.00" and rows["1"]["bn_relu_conv"] == "n/a"
    assert inside["0"]["conv_bn_relu"] == "0.00"  # its one warm-up epoch
    assert inside["1"]["conv_bn_relu"] == "0.00"  # 0.25 -> 0.50 inside it: a rise
    steps = dict(warmup_steps=5, warmup="linear", batch_size=50)  # 4 steps/epoch: epoch 1 wholly
    rows, _ = _fall_table(tmp_path / "steps" / "depth" / "smoke", steps,
                          {("conv_bn_relu", 0): [0.60, 0.20, 0.50, 0.40],
                           ("bn_relu_conv", 0): [0.30, 0.10, 0.50, 0.45]},
                          {0: (0.05,) * 4})
    assert rows["0"]["conv_bn_relu"] == "40.00"  # best 0.60 (epoch 1, in the warm-up), epoch 2
    assert rows["0"]["bn_relu_conv"] == "20.00"  # epoch 2 ends the warm-up and counts: 0.3 -> 0.1
    steps = dict(warmup_steps=13, warmup="linear", batch_size=50)  # epochs 1-3 wholly
    rows, inside = _fall_table(tmp_path / "long" / "depth" / "smoke", steps,
                               {("conv_bn_relu", 0): [0.50, 0.70, 0.30, 0.60],
                                ("bn_relu_conv", 0): [0.30, 0.40, 0.50, 0.20]},
                               {0: (0.05,) * 4})
    assert inside["0"]["conv_bn_relu"] == "40.00"  # 0.70 in epoch 2, 0.30 in epoch 3
    assert rows["0"]["conv_bn_relu"] == "10.00"    # after it: 0.60 below the 0.70
    assert inside["0"]["bn_relu_conv"] == "0.00" and rows["0"]["bn_relu_conv"] == "30.00"


def test_the_share_of_clipped_steps_is_shown_per_run_where_runs_clip(tmp_path: Path):
    """4 steps an epoch (200 images, batches of 64), 4 epochs: the counts over 16 steps."""
    root = tmp_path / "results" / "orderings" / "smoke"
    counts = {("conv_bn_relu", 0): [4, 4, 2, 0], ("bn_relu_conv", 0): [0, 0, 0, 1]}
    runs = []
    for (ordering, seed), per_epoch in counts.items():
        r = record(ordering, seed, 0.9)
        r["config"]["clip_norm"] = 2.0
        r["run_id"] = RunConfig.from_dict(r["config"]).run_id
        for e, n in zip(r["epochs"], per_epoch):
            e["clipped_steps"] = n
        runs.append(r)
    write_runs(root, runs)
    text = write_report(root).read_text()
    (row,) = table(text, "Steps whose gradient was clipped")
    assert row["conv_bn_relu"] == "62.50" and row["bn_relu_conv"] == "6.25"
    rows = list(csv.DictReader((root / "runs.csv").open()))
    assert [r["clipped_steps"] for r in rows if r["ordering"] == "conv_bn_relu"] == [
        "4", "4", "2", "0"]
    for r in runs:  # the same runs without clipping: no such table
        (root / "runs" / f"{r['run_id']}.json").unlink()
        r["config"].pop("clip_norm")
        r["run_id"] = RunConfig.from_dict(r["config"]).run_id
        for e in r["epochs"]:
            e.pop("clipped_steps")
    write_runs(root, runs)
    assert "Steps whose gradient was clipped" not in write_report(root).read_text()


def test_machines_with_different_vector_instructions_get_separate_device_lines():
    """Two CPUs of one name train to different numbers when their instruction sets differ;
    the device line tells them apart, and records from before cpu_isa keep their line."""
    from types import SimpleNamespace

    from gluon_resnet.reporting.report import _environments

    env = record("conv_bn_relu", 0, 0.8)["environment"]
    runs = [SimpleNamespace(environment=dict(env, cpu_isa="avx2")),
            SimpleNamespace(environment=dict(env, cpu_isa="avx512f")),
            SimpleNamespace(environment=dict(env))]
    lines = _environments(runs)
    assert len(lines) == 3
    assert "(test CPU, avx2)" in lines[0] and "(test CPU, avx512f)" in lines[1]
    assert "(test CPU)" in lines[2]


def test_the_findings_page_is_written_only_where_it_is_the_projects_own(store: Path, tmp_path):
    """Absent, or a page this project wrote (its marker line, or the start of pages written
    before the marker): rebuilt. A user's README.md, a symlink (even to a page of ours) or a
    folder there: kept byte for byte, one line saying so and where the page would go."""
    results = store.parent.parent
    write_report(store)
    page = results / "README.md"
    assert write_index(results) == page and page.read_text().startswith(MARKER + "\n# Results")
    page.write_text(OLD_START + "an older version's page\n")
    assert write_index(results) == page and page.read_text().startswith(MARKER + "\n")
    ours = page.read_text()
    mine = "# My project\n\nNotes I keep beside my runs.\n"
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text(ours)
    for kind in ("user README", "symlink", "folder"):
        page.unlink() if page.is_file() or page.is_symlink() else page.rmdir()
        if kind == "user README":
            page.write_text(mine)
        elif kind == "symlink":
            page.symlink_to(elsewhere)
        else:
            page.mkdir()
        lines: list[str] = []
        assert write_index(results, lines.append) is None
        assert len(lines) == 1 and f"findings page not written: {page} is kept" in lines[0]
        assert page.is_symlink() == (kind == "symlink") and page.is_dir() == (kind == "folder")
        if kind != "folder":
            assert page.read_text() == (mine if kind == "user README" else ours)
    page.rmdir()
    page.write_text(mine)
    lines = []
    assert refresh_reports(RunStore(store), results, lines.append)  # the report still is
    assert page.read_text() == mine and any("findings page not written" in x for x in lines)


def _fill(disk: Path) -> None:
    """Take every free byte of `disk`."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    with contextlib.suppress(OSError), open(disk / "filler-tail", "wb") as f:
        for _ in range(65536):
            f.write(b"\0")
            f.flush()


def test_a_full_disk_leaves_every_generated_file_whole_and_is_named(store: Path, small_disk):
    """Issue 41: the report, both CSVs, the figures and the findings page are each replaced
    whole or not at all; the message names the file that could not be written."""
    results = small_disk / "results"
    shutil.copytree(store.parent.parent, results)
    root = results / "orderings" / "smoke"
    assert refresh_reports(RunStore(root), results, lambda line: None)
    kept = {p: p.read_bytes() for p in results.rglob("*") if p.is_file() and "runs" not in p.parts}
    names = {p.name for p in kept}
    assert {"report.md", "runs.csv", "summary.csv", "README.md", "test_acc.png"} <= names
    (root / "runs" / f"{run_id('relu_preact', 0)}.json").unlink()  # the next rebuild differs
    _fill(small_disk)
    lines: list[str] = []
    assert not refresh_reports(RunStore(root), results, lines.append)
    (line,) = lines
    named = Path(line.split("cannot write ")[1].split(": ")[0])
    assert named in kept and named.suffix == ".png", line  # the file, not its folder
    for path, rows in (("runs.csv", export.run_rows(RunStore(root).records())),
                       ("summary.csv", [{"comparison": "x" * 1000}] * 100)):
        with pytest.raises(OSError) as err:
            export.write_csv(rows, root / path)
        assert err.value.filename == str(root / path)
    with pytest.raises(OSError) as err:
        write_index(results)
    assert err.value.filename == str(results / "README.md")
    shutil.move(root / "runs", small_disk / "runs")  # a report of no runs writes report.md only
    with pytest.raises(OSError) as err:
        write_report(root)
    assert err.value.filename == str(root / "report.md")
    assert {p: p.read_bytes() for p in kept} == kept
    assert not list(results.rglob(".*.tmp"))


def test_the_committed_findings_page_is_recognised_as_the_projects_own():
    page = Path(__file__).resolve().parents[1] / "results" / "README.md"
    assert page.read_text().startswith(MARKER + "\n") and not_ours(page) is None


def test_a_round_ahead_of_its_pairs_names_the_seeds_paired():
    """seed_notebook full at 7 paired seeds, with seed 7's conv_bn_relu finished and its
    bn_relu_conv still training: the replay counts 8 rounds (seeds any group has), and the
    verdict is on the 7 seeds both groups have. The look column read "8 of at most 10" beside
    "undecided after 7 seeds"; it names the seeds paired where they differ from the round."""
    from gluon_resnet.analysis.looks import replay
    from gluon_resnet.analysis.verdicts import Decided
    from gluon_resnet.reporting.tables import look_cell

    conv, bn = SEED_NOTEBOOK_FULL["conv_bn_relu"], SEED_NOTEBOOK_FULL["bn_relu_conv"]
    analysis = Analysis(metric="last3_precise_test_acc", margin=0.005, max_seeds=10,
                        basis="median", collapse_below=0.2)
    pairs = [("bn_relu_conv", {s: x / 100 for s, x in enumerate(conv)},
              {s: x / 100 for s, x in enumerate(bn)})]
    (v, look, frozen), = replay(pairs, analysis, extras=False)
    assert (v.kind, v.n, look, frozen) == ("undecided", 7, 8, False)
    assert look_cell(Decided(None, None, v, look, frozen), analysis) == \
        "8 of at most 10 (7 seeds paired)"
    (w, look, frozen), = replay([(n, {s: x for s, x in a.items() if s < 7}, b)
                                 for n, a, b in pairs], analysis, extras=False)
    assert look_cell(Decided(None, None, w, look, frozen), analysis) == "7 of at most 10"
