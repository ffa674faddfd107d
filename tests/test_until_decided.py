"""--until-decided and the seed plan of --list, end to end on real files: the loop trains a
seed of every group per round, decides from the records on disk, resumes, and stops."""
from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from experiments import EXPERIMENTS
from gluon_resnet import records
from gluon_resnet.analysis import plan as P
from gluon_resnet.records import Run
from gluon_resnet.runs.experiment import expand
from gluon_resnet.runs.jobs import Outcome, prepare
from gluon_resnet.runs.runner import run_grid, run_until_decided
from gluon_resnet.store import RunLocked, RunStore

from conftest import SEED_NOTEBOOK_FULL
from test_run_all import run_cli

PAIR = "conv_bn_relu,bn_relu_conv"


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """A real smoke grid of two orderings, capped at 3 seeds."""
    results = tmp_path_factory.mktemp("results")
    proc = run_cli("--profile", "smoke", "--orderings", PAIR, "--until-decided",
                   "--max-seeds", "3", results=results)
    return results, RunStore(results / "orderings" / "smoke"), proc


@pytest.mark.slow
def test_rounds_train_one_seed_of_every_group_up_to_the_cap(capped):
    _, store, proc = capped
    seeds = sorted((r.seed, r.ordering) for r in store.records())
    assert [s for s, _ in seeds] == [0, 0, 1, 1, 2, 2]
    for k in (1, 2, 3):
        assert f"round {k} (seed {k - 1}, 2 runs" in proc.stdout
    assert "after 3 round(s)" in proc.stdout
    assert ("stopped at the cap of 3 seeds" in proc.stdout
            or "every comparison has a verdict" in proc.stdout)
    info = json.loads((store.root / "experiment.json").read_text())
    assert info["analysis"]["max_seeds"] == 3 and info["analysis"]["paired"] is True
    report = (store.root / "report.md").read_text()
    assert "## Against the baseline: verdicts" in report
    assert "bn_relu_conv" in report.split("## Against the baseline: verdicts")[1]
    assert "--seeds 0,1,2" in report and "--until-decided" not in report.split("To reproduce these runs")[1]
    assert (store.root / "paired_differences.png").exists()


@pytest.mark.slow
def test_interrupted_loop_resumes_without_retraining(capped):
    results, store, _ = capped
    before = {p.name: p.read_bytes() for p in store.runs_dir.glob("*.json")}
    proc = run_cli("--profile", "smoke", "--orderings", PAIR, "--until-decided",
                   "--max-seeds", "3", results=results)
    assert "training" not in proc.stdout and "skipped" not in proc.stdout
    # the replayed rounds are said once, with the state after the last (no per-round echo)
    assert "rounds 1-3 (seeds 0-2) already on disk: nothing to train" in proc.stdout
    assert "after 1 round(s)" not in proc.stdout and proc.stdout.count("after 3 round(s)") == 1
    assert {p.name: p.read_bytes() for p in store.runs_dir.glob("*.json")} == before


@pytest.mark.slow
def test_list_shows_the_seeds_each_comparison_needs(capped, cli_in_process):
    results, _, _ = capped
    status, out, _ = cli_in_process("--results-dir", str(results), "--profile", "smoke",
                                    "--orderings", PAIR, "--seeds", "0-2", "--list")
    assert status == 0 and "seeds needed (final_test_acc, margin ±0.50 points, paired" in out
    assert "bn_relu_conv:" in out.split("seeds needed")[1]


@pytest.mark.slow
@pytest.mark.parametrize("bad", [1.5, "0.99"])
def test_an_edited_record_is_named_and_left_out_of_every_verdict(capped, tmp_path,
                                                                 cli_in_process, bad):
    """Issue 41's case: one bn_relu_conv run's last test accuracy edited to 1.5 (or the string
    "0.99"). --report-only and --list name the file, exit 0 without a traceback, and decide
    exactly as with that file absent."""
    results, store, _ = capped
    victim = next(r.run_id for r in store.records() if r.ordering == "bn_relu_conv" and r.seed == 1)

    def edit(path: Path) -> None:
        rec = json.loads(path.read_text())
        rec["epochs"][-1]["test_acc"] = bad
        path.write_text(json.dumps(rec))

    said = {}
    for name, change in (("edited", edit), ("absent", Path.unlink)):
        copy = tmp_path / name
        shutil.copytree(results, copy)
        change(copy / "orderings" / "smoke" / "runs" / f"{victim}.json")
        status, out, err = cli_in_process("--results-dir", str(copy), "--profile", "smoke",
                                          "--orderings", PAIR, "--report-only")
        assert status == 0 and "Traceback" not in out + err, out + err
        listed, listing, err = cli_in_process("--results-dir", str(copy), "--profile", "smoke",
                                              "--orderings", PAIR, "--seeds", "0-2", "--list")
        assert listed == 0 and "Traceback" not in err, err
        report = (copy / "orderings" / "smoke" / "report.md").read_text()
        said[name] = (out, listing.replace(str(copy), "RESULTS"), report,
                      (copy / "README.md").read_text())
    out, listing, report, index = said["edited"]
    why = f"{victim}.json: epoch 2's test_acc is {bad!r}"
    for text in (out, listing, report):
        assert why in text and "left out of every verdict" in text
    assert any(line.split()[:2] == [victim, "corrupt"] for line in listing.splitlines() if line)
    verdicts = lambda text: text.split("## Against the baseline: verdicts")[1].split("\n## ")[0]
    assert verdicts(report) == verdicts(said["absent"][2])
    assert listing.split("seeds needed")[1] == said["absent"][1].split("seeds needed")[1]
    assert index == said["absent"][3]


def fake_record(cfg, final_acc: float, finished: str | None = None) -> Run:
    """A completed record of `cfg` whose last epoch reads final_acc (no training needed),
    finished now (or at `finished`)."""
    epochs = [{"epoch": e, "train_loss": 0.5, "train_acc": 0.8, "test_loss": 0.5,
               "test_acc": final_acc, "lr": cfg.lr, "seconds": 1.0, "images_per_sec": 100.0}
              for e in range(1, cfg.epochs + 1)]
    return Run.from_dict({
        "schema_version": 1, "run_id": cfg.run_id, "experiment": "orderings",
        "profile": "smoke", "config": cfg.to_dict(), "status": "completed", "error": None,
        "params": 1, "environment": {}, "started": "2026-01-01T00:00:00",
        "finished": finished or records.now(), "wall_seconds": 60.0, "epochs": epochs})


class Scripted:
    """An executor (the protocol every executor follows) that writes each job's record with a
    final accuracy from `accuracy(cfg)` instead of training: the loop's logic, in seconds."""

    workers = 1

    def __init__(self, accuracy):
        self.accuracy, self.seeds, self.trained = accuracy, [], []

    def gpu_count(self) -> int:
        return 0

    def run(self, jobs, store, data_dir, tally) -> None:
        for job in jobs:
            self.seeds.append(job.cfg.seed)
            self.trained.append(job.cfg)
            record = fake_record(job.cfg, self.accuracy(job.cfg))
            store.write(record)
            tally.add(job, Outcome.of(record))


class ScriptedUnderLocks(Scripted):
    """Scripted, taking each run's lock and deciding under it as the real executors do."""

    def run(self, jobs, store, data_dir, tally) -> None:
        for job in jobs:
            try:
                with store.lock(job.cfg.run_id):
                    if prepare(job, store, tally.log):
                        super().run([job], store, data_dir, tally)
                    else:
                        tally.add(job, Outcome("skipped"))
            except RunLocked as e:
                tally.add(job, Outcome("locked", error=str(e)))


def hold_until(store, cfg, line_start: str, finish: bool):
    """Another process: holds cfg's lock until a log line starts with line_start, finishing
    the run first (its record written) or not; returns (the thread, the logger to pass)."""
    waiting, took = threading.Event(), threading.Event()
    lines: list[str] = []

    def other_process():
        with store.lock(cfg.run_id):
            took.set()
            waiting.wait(timeout=60)
            if finish:
                store.write(fake_record(cfg, 0.5))

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith(line_start):
            waiting.set()

    other = threading.Thread(target=other_process)
    other.start()
    took.wait(timeout=60)
    return other, log, lines


def test_a_round_waits_for_a_run_another_process_held_and_trains_it_if_that_stopped(tmp_path):
    """Another process holds the round's bn_relu_conv run and stops without finishing it: the
    round (run_grid with wait, as a round before a look calls it) trains the rest, waits for
    that lock, then trains the run here."""
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    runs = expand(exp, "smoke", axes={"ordering": ("conv_bn_relu", "bn_relu_conv"),
                                      "seed": (0,)})
    (held,) = [c for c in runs if c.ordering == "bn_relu_conv"]
    scripted = ScriptedUnderLocks(lambda cfg: 0.8)
    other, log, lines = hold_until(store, held, "waiting for 1 run(s)", finish=False)
    counts = run_grid(runs, store, scripted, results_dir=tmp_path, wait=True, log=log)
    other.join()
    assert f"waiting for 1 run(s) another process is training: {held.run_id}" in lines
    assert store.load(held.run_id).status == "completed"
    assert [c.ordering for c in scripted.trained] == ["conv_bn_relu", "bn_relu_conv"]
    assert counts["locked"] == 1 and counts["trained"] == 2


@pytest.mark.slow  # the whole loop, a report per round
def test_rounds_before_the_first_look_leave_held_runs_and_the_look_waits_for_them(tmp_path):
    """Seed 0's bn_relu_conv is held by another process that finishes it: rounds 1-2 cannot
    decide anything (min_seeds 3), so the loop goes on without it; before the look after
    round 3 it waits for it, and decides from three whole pairs, the other's run among them."""
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    pair = {"ordering": ("conv_bn_relu", "bn_relu_conv")}
    (held,) = [c for c in expand(exp, "smoke", axes={**pair, "seed": (0,)})
               if c.ordering == "bn_relu_conv"]
    scripted = ScriptedUnderLocks(lambda cfg: 0.80 + 0.01 * cfg.seed)
    other, log, lines = hold_until(store, held, "waiting for 1 run(s)", finish=True)
    decided, _ = run_until_decided(exp, "smoke", store, scripted, max_seeds=3,
                                   results_dir=tmp_path, source="orderings", axes=pair, log=log)
    other.join()
    where = {key: next(i for i, line in enumerate(lines) if line.startswith(key)) for key in (
        "orderings/smoke: round 2 (seed 1", "orderings/smoke: round 3 (seed 2",
        f"waiting for 1 run(s) another process is training: {held.run_id}", "after 3 round(s)")}
    assert list(where.values()) == sorted(where.values()), lines
    assert [(c.ordering, c.seed) for c in scripted.trained] == [
        ("conv_bn_relu", 0), ("conv_bn_relu", 1), ("bn_relu_conv", 1), ("conv_bn_relu", 2),
        ("bn_relu_conv", 2)]
    assert store.load(held.run_id).last.test_acc == 0.5  # the other process's
    assert decided[0].verdict.n == 3


@pytest.mark.slow  # the whole loop, a report per round
def test_the_loop_stops_by_itself_at_the_first_look_that_decides(tmp_path):
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    rng = np.random.default_rng(0)
    gap = Scripted(lambda cfg: (0.80 if cfg.ordering == "conv_bn_relu" else 0.90)
                   + rng.normal(0, 0.003))  # a 10-point gap in 0.3-point noise
    lines: list[str] = []
    decided, ok = run_until_decided(exp, "smoke", store, gap, max_seeds=10,
                                    results_dir=tmp_path, source="orderings",
                                    axes={"ordering": ("conv_bn_relu", "bn_relu_conv")},
                                    log=lines.append)
    assert [d.verdict.kind for d in decided] == ["better"] and ok
    assert gap.seeds == [0, 0, 1, 1, 2, 2]  # no verdict before 3 seeds (min_seeds), then one
    assert any("every comparison has a verdict" in line for line in lines)
    assert (store.root / "report.md").exists()


@pytest.mark.slow  # the whole loop, a report per round
def test_the_loop_stops_at_the_cap_when_nothing_separates(tmp_path):
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    rng = np.random.default_rng(1)
    noise = Scripted(lambda cfg: 0.85 + rng.normal(0, 0.05))  # no difference, huge spread
    decided, ok = run_until_decided(exp, "smoke", store, noise, max_seeds=4,
                                    results_dir=tmp_path, source="orderings",
                                    axes={"ordering": ("conv_bn_relu", "relu_preact")},
                                    log=lambda line: None)
    assert [d.verdict.kind for d in decided] == ["undecided"]
    assert noise.seeds == [0, 0, 1, 1, 2, 2, 3, 3]
    assert decided[0].verdict.seeds_to_settle is None or decided[0].verdict.seeds_to_settle > 4


@pytest.mark.parametrize("args, expected", [
    (["--max-seeds", "4"], "--max-seeds caps --until-decided"),
    (["--until-decided", "--seeds", "0-3"], "not with --seeds"),
    (["--until-decided", "--set", "seed=7"], "not with --set/--grid seed=..."),
    (["--until-decided", "--grid", "seed=1,2"], "not with --set/--grid seed=..."),
    (["--until-decided", "--max-seeds", "0"], "--max-seeds must be between 2 and 1000"),
    (["--until-decided", "--max-seeds", "100000"], "--max-seeds must be between 2 and 1000"),
])
def test_until_decided_usage_mistakes_exit_2(args, expected, capsys):
    import run_all

    with pytest.raises(SystemExit) as exit_:
        run_all.main(["--profile", "smoke", *args])
    assert exit_.value.code == 2 and expected in capsys.readouterr().err


@pytest.mark.slow  # the whole loop, a report per round
def test_a_decided_comparison_gets_no_more_seeds_while_others_stay_open(tmp_path):
    """bn_relu_conv is 10 points better (decided at 3 seeds); relu_preact is pure noise (open
    to the cap): later rounds train conv_bn_relu and relu_preact only, and the verdict that
    was reached stays in the report's analysis."""
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    rng = np.random.default_rng(2)
    mean = {"conv_bn_relu": 0.80, "bn_relu_conv": 0.90, "relu_preact": 0.80}
    scripted = Scripted(lambda cfg: mean[cfg.ordering] + rng.normal(
        0, 0.003 if cfg.ordering != "relu_preact" else 0.05))
    lines: list[str] = []
    decided, ok = run_until_decided(exp, "smoke", store, scripted, max_seeds=5,
                                    results_dir=tmp_path, source="orderings",
                                    axes={"ordering": tuple(mean)}, log=lines.append)
    assert ok and {d.other.config["ordering"]: d.verdict.kind for d in decided} == {
        "bn_relu_conv": "better", "relu_preact": "undecided"}
    seeds = {o: sorted(r.seed for r in store.records() if r.ordering == o) for o in mean}
    assert seeds == {"conv_bn_relu": [0, 1, 2, 3, 4], "bn_relu_conv": [0, 1, 2],
                     "relu_preact": [0, 1, 2, 3, 4]}
    assert any("round 4 (seed 3, 2 runs, 1 left out" in line for line in lines)


def test_list_costs_rounds_from_the_groups_of_open_comparisons_only(tmp_path, capsys):
    """After bn_relu_conv is decided, a round trains conv_bn_relu and relu_preact only: the
    seed plan costs it at those two groups' times (1 min each here), not the whole grid's."""
    from gluon_resnet.analysis.groups import group_key
    from gluon_resnet.runs.experiment import expand
    from gluon_resnet.runs.plan import list_seed_plan

    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    rng = np.random.default_rng(3)
    mean = {"conv_bn_relu": 0.80, "bn_relu_conv": 0.90, "relu_preact": 0.80}
    sd = {"conv_bn_relu": 0.003, "bn_relu_conv": 0.003, "relu_preact": 0.02}
    runs = expand(exp, "smoke", axes={"ordering": tuple(mean), "seed": (0, 1, 2, 3)})
    analysis = exp.analysis_for("smoke", max_seeds=10)
    P.write_plan(store, P.Plan(analysis, locked=records.now()))  # as its first run locks it
    for cfg in runs:
        store.write(fake_record(cfg, mean[cfg.ordering] + rng.normal(0, sd[cfg.ordering])))
    per_group = {group_key(cfg.to_dict()): 60.0 for cfg in runs}
    list_seed_plan(store, analysis, per_group)
    out = capsys.readouterr().out
    assert "one more round of the open comparisons ~2.0 min" in out
    assert re.search(r"bn_relu_conv: better after [34] seeds", out)  # final where reached
    after = out.split("relu_preact: undecided after 4 seeds; by the cap of 10 seeds")[1]
    target = int(after.split("about ")[1].split(" ")[0])
    more = min(target, 10) - 4  # rounds stop at the locked cap, and the line says so
    assert (target > 10) == ("past the locked cap of 10" in after.split("\n")[1])
    assert f"{more} more round(s), ~{2 * more:.1f} min" in out
    assert f"all of them: {more} more round(s), ~{2 * more:.1f} min" in out


def test_list_reads_a_projection_at_this_looks_seeds_as_power_not_a_promise(tmp_path, capsys):
    """seed_notebook full's 7 seeds (per-seed accuracies, points): the power analysis puts
    the declared power at 7 seeds, which this look did not turn into a verdict. --list said
    "about 7 seeds would settle it: 0 more round(s), ~0.0 min" and costed nothing; it says
    what the projection is and costs the next round's look."""
    from gluon_resnet.analysis.groups import group_key
    from gluon_resnet.runs.experiment import expand
    from gluon_resnet.runs.plan import list_seed_plan

    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    acc = {o: values[:7] for o, values in SEED_NOTEBOOK_FULL.items()}
    runs = expand(exp, "smoke", axes={"ordering": tuple(acc), "seed": tuple(range(7))})
    analysis = exp.analysis_for("smoke", max_seeds=10, basis="median", margin=0.005)
    P.write_plan(store, P.Plan(analysis, locked=records.now()))
    for cfg in runs:
        store.write(fake_record(cfg, acc[cfg.ordering][cfg.seed] / 100))
    list_seed_plan(store, analysis, {group_key(cfg.to_dict()): 60.0 for cfg in runs})
    out = capsys.readouterr().out
    assert "bn_relu_conv: undecided after 7 seeds" in out
    assert "would settle it" not in out
    assert ("the plan has its declared power by about 7 seeds, yet 7 did not settle it: the "
            "next round's look may (cap 10), ~2.0 min") in out
    assert "all of them: 1 more round(s), ~2.0 min" in out


@pytest.mark.slow
def test_the_locked_plan_refuses_another_cap_and_survives_a_lost_definition(capped, tmp_path,
                                                                           cli_in_process):
    """The folder's plan was locked at its first look with a cap of 3: raising or lowering it
    is refused (exit 2, nothing trained or written), and a deleted experiment.json leaves the
    report deciding with the locked plan."""
    results, store, _ = capped
    locked = json.loads((store.root / "analysis.lock.json").read_text())["analysis"]
    assert locked["max_seeds"] == 3
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
    for cap, said in (("4", "max_seeds: 3 -> 4"), ("2", "below the plan's first look at 3")):
        status, _, err = cli_in_process("--results-dir", str(results), "--profile", "smoke",
                                        "--orderings", PAIR, "--until-decided", "--max-seeds", cap)
        assert status == 2 and said in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == before
    copy = tmp_path / "orderings" / "smoke"
    shutil.copytree(store.root, copy)
    (copy / "experiment.json").unlink()
    proc = run_cli("--profile", "smoke", "--orderings", PAIR, "--report-only", results=tmp_path)
    report = (copy / "report.md").read_text()
    assert "planned looks at 3..3 seeds" in report and "locked at the first look" in report


def test_list_states_the_folders_cap_and_the_command_that_continues_it(tmp_path):
    """A folder locked with a cap of 5 by --until-decided, 3 noisy seeds on disk: --list
    counts the rounds up to 5 and prints the command that continues this folder (it said
    'run_all.py --until-decided', which ignored the folder and its options)."""
    from gluon_resnet.analysis import plan as P
    from gluon_resnet.runs.experiment import expand
    from gluon_resnet.runs.runner import record_definition

    exp, results = EXPERIMENTS["orderings"], tmp_path / "results"
    store = RunStore(results / "orderings" / "smoke")
    analysis = exp.analysis_for("smoke", max_seeds=5)
    record_definition(exp, "smoke", store, "orderings", analysis)
    P.write_plan(store, P.Plan(analysis, locked=P.now()))  # as the loop's first run did
    rng = np.random.default_rng(4)
    for cfg in expand(exp, "smoke", axes={"ordering": ("conv_bn_relu", "bn_relu_conv"),
                                          "seed": (0, 1, 2)}):
        store.write(fake_record(cfg, 0.8 + rng.normal(0, 0.05)))
    proc = run_cli("--profile", "smoke", "--orderings", PAIR, "--set", "lr=0.05", "--list",
                   results=results)
    assert "all of them: 2 more round(s)" in proc.stdout and "(cap 5;" in proc.stdout, proc.stdout
    assert (f"python run_all.py --experiment orderings --profile smoke --results-dir {results} "
            f"--orderings {PAIR} --set lr=0.05 --until-decided --max-seeds 5") in proc.stdout


def test_a_definition_from_newer_code_is_not_rewritten_by_older_code(tmp_path):
    """experiment.json written by a newer version (its base config names a field this code
    does not know) stays byte for byte when this code records its definition; one from the
    same version is rewritten where it differs."""
    from gluon_resnet.runs.runner import record_definition

    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    record_definition(exp, "smoke", store, "orderings")
    info = json.loads(store.experiment_path.read_text())
    newer = {**info, "description": "newer words", "base": {**info["base"], "new_field": 1}}
    store.write_experiment(newer)
    before = store.experiment_path.read_bytes()
    record_definition(exp, "smoke", store, "orderings")
    assert store.experiment_path.read_bytes() == before
    store.write_experiment({**info, "description": "older words"})
    record_definition(exp, "smoke", store, "orderings")
    assert json.loads(store.experiment_path.read_text()) == info



def _edited_copy(capped, tmp_path, edit) -> tuple:
    """A copy of the capped folder (results, store) after `edit(store)`."""
    results, store, _ = capped
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    store = RunStore(copy / "orderings" / "smoke")
    edit(store)
    return copy, store


def _lock_edit(**changes):
    def edit(store):
        path = store.root / "analysis.lock.json"
        lock = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                del lock["analysis"][key]
            else:
                lock["analysis"][key] = value
        path.write_text(json.dumps(lock))
    return edit


def _unlinked(name):
    return lambda store: (store.root / name).unlink()


def _damaged_and_redeclared(store):
    """The audit's case: the lock damaged, experiment.json edited to alpha 0.5, margin 5
    points and a cap of 4 (which --report-only used, saying "locked at the first look")."""
    (store.root / "analysis.lock.json").write_text("{not json")
    info = json.loads(store.experiment_path.read_text())
    info["analysis"].update(alpha=0.5, margin=0.05, max_seeds=4)
    store.experiment_path.write_text(json.dumps(info))


@pytest.mark.slow
@pytest.mark.parametrize("edit, said", [
    (_lock_edit(max_seeds=10), "field analysis.max_seeds differs"),
    (_lock_edit(margin=0.05), "field analysis.margin differs"),
    (_lock_edit(collapse="chance"), "field analysis.collapse differs"),
    (_lock_edit(margin=None), "field analysis.margin is missing"),
    (_lock_edit(metric="final_acc"), "unknown primary metric 'final_acc'"),
    (_unlinked("analysis.lock.json"), "is missing, though experiment.json records"),
    (_damaged_and_redeclared, "not readable JSON"),
], ids=["cap", "margin", "collapse", "key-removed", "unknown-metric", "deleted", "damaged"])
def test_a_lock_that_was_edited_or_lost_is_refused_by_every_command(capped, tmp_path,
                                                                    cli_in_process, edit, said):
    """Every command (--report-only too) checks the folder's lock against the definition that
    wrote it and its runs: exit 2, one line naming the file and the field and how to go on,
    nothing written. Before, an edited cap or margin was trusted with exit 0, a lock without
    its keys became the default plan, an unknown metric gave a traceback, and a deleted lock
    was written afresh at whatever cap the call asked for."""
    results, store = _edited_copy(capped, tmp_path, edit)
    before = {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()}
    for extra in (["--report-only"], ["--list"], ["--until-decided", "--max-seeds", "3"]):
        status, _, err = cli_in_process("--results-dir", str(results), "--profile", "smoke",
                                        "--orderings", PAIR, *extra)
        assert status == 2 and said in err and "analysis.lock.json" in err, (extra, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in store.root.rglob("*") if p.is_file()} == before
