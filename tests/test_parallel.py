"""run_all.py --workers N: independent runs in parallel processes give the records of the
sequential executor, respect the per-run locks, and survive a worker killed mid-run."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gluon_resnet.runs.executors.faults import FAULT_ENV
from gluon_resnet.runs.executors.local import local_slots, threads_per_worker
from gluon_resnet.runtime import usable_cores
from gluon_resnet.store import RunStore

import cli_process
from conftest import comparable

ROOT = Path(__file__).resolve().parents[1]
ORDERINGS = ("conv_bn_relu", "bn_after_add", "relu_before_add", "bn_relu_conv")  # 4 smoke runs
def run_cli(results: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    proc = cli_process.run(["--profile", "smoke", "--orderings", ",".join(ORDERINGS),
                            "--results-dir", str(results), *args], env=env)
    assert proc.returncode == 0, f"{proc.args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def records(results: Path) -> dict[str, dict]:
    """The run files' JSON objects by run id."""
    return {r.run_id: r.to_dict() for r in RunStore(results / "orderings" / "smoke").records()}


@pytest.fixture(scope="module")
def sequential(smoke_grid) -> dict[str, dict]:
    """The default executor's records (one process, one thread, as each worker below)."""
    out = {k: comparable(r) for k, r in records(smoke_grid).items()
           if r["config"]["ordering"] in ORDERINGS}
    assert len(out) == len(ORDERINGS)
    return out


def test_the_report_is_rebuilt_as_runs_finish_at_most_every_report_every_seconds(tmp_path):
    """Runs of minutes get a report after each; runs of seconds are not held up by figures
    after each (the call's end rebuilds it: runner)."""
    from gluon_resnet.config import RunConfig
    from gluon_resnet.runs.jobs import REPORT_EVERY_SECONDS, Job, Outcome, Tally

    assert REPORT_EVERY_SECONDS >= 30
    store, said = RunStore(tmp_path / "orderings" / "smoke"), []
    job = Job(RunConfig(), 1, 1)

    def reports_after_a_run(tally: Tally) -> int:
        tally.add(job, Outcome("trained", "completed"))
        return sum(line.startswith("report: ") for line in said)
    every_run = Tally(store, tmp_path, said.append, report_every=0)
    assert reports_after_a_run(every_run) == 1 and reports_after_a_run(every_run) == 2
    assert (store.root / "report.md").exists()
    said.clear()
    throttled = Tally(store, tmp_path, said.append, report_every=0.3)
    assert reports_after_a_run(throttled) == 0  # 0.3 s have not passed since the grid began
    time.sleep(0.35)
    assert reports_after_a_run(throttled) == 1 and reports_after_a_run(throttled) == 1


@pytest.mark.slow
def test_two_workers_give_the_sequential_records_and_a_killed_workers_run_resumes(
        sequential, tmp_path):
    """One grid on two workers (a grid costs seconds of worker start-up): both train, the
    parent rebuilds the report, and the run whose worker SIGKILLs itself after epoch 1 is
    handed to a fresh worker and resumes; every record is the sequential executor's."""
    marker = tmp_path / "killed"
    proc = run_cli(tmp_path, "--workers", "2", **{FAULT_ENV: f"1:{marker}"})
    killed = marker.read_text()  # this run's worker SIGKILLed itself after epoch 1
    assert f"{killed}: worker" in proc.stdout and "died" in proc.stdout, proc.stdout
    assert f"{killed}: training (resuming after epoch 1)" in proc.stdout, proc.stdout
    got = records(tmp_path)
    assert {k: comparable(r) for k, r in got.items()} == sequential
    assert all(r["status"] == "completed" and r["environment"]["threads"] == 1
               for r in got.values())
    assert "2 worker processes" in proc.stdout
    # both workers trained, and the parent rebuilt the report (runs of seconds: at the end)
    assert "(w1) [" in proc.stdout and "(w2) [" in proc.stdout, proc.stdout
    assert proc.stdout.count("report: ") >= 1
    assert (tmp_path / "orderings" / "smoke" / "report.md").exists()


@pytest.mark.slow
def test_workers_leave_a_locked_run_alone_and_share_the_cores(tmp_path, cli_in_process):
    store = RunStore(tmp_path / "orderings" / "smoke")
    # --list names the runs without training; take the second one's lock, as another
    # runner training it would
    status, listing, _ = cli_in_process("--profile", "smoke", "--orderings", ",".join(ORDERINGS),
                                        "--results-dir", str(tmp_path), "--list", "--workers", "2")
    assert status == 0
    assert "with 2 parallel workers" in listing
    run_ids = [line.split()[0] for line in listing.splitlines() if line.startswith("  d2l18")]
    assert len(run_ids) == len(ORDERINGS)
    with store.lock(run_ids[1]):
        proc = run_cli(tmp_path, "--workers", "2", OMP_NUM_THREADS="")  # threads: our default
    assert "another process" in proc.stdout and store.load(run_ids[1]) is None
    got = records(tmp_path)
    assert sorted(got) == sorted(run_ids[:1] + run_ids[2:])
    for run_id in got:  # each run trained by exactly one worker
        assert proc.stdout.count(f"{run_id}: training") == 1, proc.stdout
    expected_threads = max(1, usable_cores() // 2)
    assert all(r["environment"]["threads"] == expected_threads for r in got.values())


def test_slots_and_threads():
    assert [s.gpus for s in local_slots(None, [0, 1, 2, 3])] == [(0,), (1,), (2,), (3,)]
    assert [s.gpus for s in local_slots(3, [2, 5])] == [(2,), (5,), (2,)]
    assert [s.gpus for s in local_slots(2, None)] == [None, None]
    with pytest.raises(ValueError, match="--workers"):
        local_slots(None, None)
    assert threads_per_worker(2, user_threads=3) == 3
    assert threads_per_worker(10 * usable_cores()) == 1


@pytest.mark.parametrize("args, expected", [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--executor", "ray", "--workers", "2"], "not with --executor ray"),
    (["--executor", "sequential", "--parallel"], "not with --executor sequential"),
    (["--ray-address", "auto"], "only apply to --executor ray"),
    (["--executor", "ray", "--gpus", "0"], "Ray assigns them"),
    (["--executor", "dask"], "invalid choice"),
    (["--executor", "ray", "--checkpoint-uri", "s3://bucket/x"], "mount it on the workers"),
    (["--executor", "ray", "--ray-num-cpus", "0"], "--ray-num-cpus must be > 0"),
])
def test_contradictory_executor_flags_exit_2(args, expected, capsys):
    import run_all

    with pytest.raises(SystemExit) as exit_:
        run_all.main(["--list", *args])
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_ray_missing_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    import run_all

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if absent
    code = run_all.main(["--executor", "ray", "--profile", "smoke", "--results-dir",
                         str(tmp_path)])
    assert code == 2
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_default_executor_uses_both_cores_for_runs_of_minutes(tmp_path):
    """No executor chosen, CPU only: worker processes when runs take minutes and several are
    pending; one process for seconds-long runs (start-up dominates) or a single run."""
    from experiments import EXPERIMENTS
    from gluon_resnet.runs.experiment import expand
    from gluon_resnet.runs.plan import default_workers

    store = RunStore(tmp_path / "orderings" / "quick")
    quick = expand(EXPERIMENTS["orderings"], "quick")
    smoke = expand(EXPERIMENTS["orderings"], "smoke")
    assert default_workers(quick, store, tmp_path, cores=2) == 2
    assert default_workers(smoke, store, tmp_path, cores=2) == 1
    assert default_workers(quick, store, tmp_path, cores=1) == 1
    assert default_workers(quick[:1], store, tmp_path, cores=2) == 1


def test_threads_tool_measures_a_training_step():
    """The speed-under-load tool's cell: real training steps in this process (no timing
    asserted: performance is measured by the tool, not tested)."""
    from gluon_resnet.tools.threads import NETS, child

    assert child(next(iter(NETS.values())), steps=1) > 0


@pytest.mark.parametrize("until_decided, expected", [(False, "sequential"), (True, "local")])
def test_until_decided_chooses_the_executor_for_the_seeds_it_will_train(
        monkeypatch, tmp_path, until_decided, expected):
    """One ordering of the quick profile is a single run (sequential), but --until-decided
    will train seeds 0..cap-1 of it: the default executor must plan for those."""
    import run_all
    from experiments import EXPERIMENTS
    from gluon_resnet import runtime
    from gluon_resnet.runs.choose import choose_executor

    monkeypatch.setattr(runtime, "USER_THREADS", None)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    argv = ["--experiment", "orderings", "--profile", "quick", "--orderings", "conv_bn_relu",
            "--results-dir", str(tmp_path)] + (["--until-decided"] if until_decided else [])
    parser = run_all.build_parser(tuple(EXPERIMENTS))
    args = parser.parse_args(argv)
    experiments, axes, overrides, options = run_all.validate(args, parser)
    options, kind = choose_executor(options, {n: d.experiment for n, d in experiments.items()},
                                    args.profile, args.results_dir, axes, overrides,
                                    args.until_decided, args.max_seeds)
    assert kind == expected
    if until_decided:
        assert options.workers == 2


def test_workers_start_the_longest_runs_first():
    """A round of the depth grid: the 110-layer runs go first, so the workers finish together
    instead of one 110-layer run ending the round alone; equal runs keep the grid's order."""
    from experiments import EXPERIMENTS
    from gluon_resnet.runs.experiment import expand
    from gluon_resnet.runs.jobs import longest_first, make_jobs

    jobs = make_jobs(expand(EXPERIMENTS["depth"], "quick"), fresh=False)
    assert [j.cfg.arch for j in jobs][:3] == ["cifar20"] * 3
    ordered = longest_first(jobs)
    assert [j.cfg.arch for j in ordered] == ["cifar110"] * 3 + ["cifar56"] * 3 + ["cifar20"] * 3
    assert [j.cfg.ordering for j in ordered[:3]] == [j.cfg.ordering for j in jobs[:3]]


def test_speeds_build_networks_only_for_unmeasured_ones():
    """Estimates come from the committed runs' measured speed; the FLOP/s fallback (which
    builds every network on disk) is computed only for a network never trained here."""
    from dataclasses import replace

    from experiments import EXPERIMENTS
    from gluon_resnet.runs.estimate import Speeds
    from gluon_resnet.runs.experiment import expand

    speeds = Speeds(Path(__file__).parent.parent / "results", "cpu")
    measured = expand(EXPERIMENTS["orderings"], "quick")[0]
    seconds, source = speeds.seconds(measured)
    assert source.startswith("measured") and seconds > 0 and "gflops" not in vars(speeds)
    never = replace(measured, width=0.125)
    seconds, source = speeds.seconds(never)
    assert source.startswith("from FLOPs") and seconds > 0 and speeds.gflops > 0


def test_speeds_prefer_the_newest_runs_on_this_cpu_kind(tmp_path):
    """Six committed records of one network, rewritten to known speeds, dates and CPUs: the
    estimate uses the newest NEWEST_RUNS of those trained on this machine's CPU kind (an older
    one 100x as fast is left out, as are other CPUs' runs), and falls back to every run of
    the network, said so, on a CPU kind that trained none; a GPU's runs are simply measured."""
    import json
    import statistics

    from gluon_resnet.runs.estimate import NEWEST_RUNS, Speeds, images_per_epoch

    sources = sorted((ROOT / "results" / "seed_notebook_final" / "quick" / "runs").glob("*.json"))
    runs = tmp_path / "seed_notebook_final" / "quick" / "runs"
    runs.mkdir(parents=True)
    here = ("Test CPU", "avx2")
    speeds = {}
    for day, (source, rate, cpu) in enumerate(zip(
            sources, (5000.0, 100.0, 110.0, 120.0, 130.0, 40.0), [here] * 5 + [("Other", "avx2")])):
        record = json.loads(source.read_text())
        record["environment"].update(device_name=cpu[0], cpu_isa=cpu[1])
        record["finished"] = f"2026-01-{day + 10:02d}T00:00:00+00:00"
        for epoch in record["epochs"]:
            epoch["images_per_sec"] = rate
        (runs / source.name).write_text(json.dumps(record))
        speeds[source.name] = rate
    assert NEWEST_RUNS == 4 and len(speeds) == 6
    cfg = RunStore(runs.parent).records()[0].config
    train, test = images_per_epoch(cfg)
    images = train + test / 3  # Speeds.seconds' cost of an epoch, in training images
    seconds, source = Speeds(tmp_path, "cpu", here=here).seconds(cfg)
    assert source == "measured on this CPU kind"
    assert seconds == pytest.approx(cfg.epochs * images / statistics.median([100, 110, 120, 130]))
    seconds, source = Speeds(tmp_path, "cpu", here=("Another CPU", "avx512f")).seconds(cfg)
    assert source == "measured on other CPUs"
    assert seconds == pytest.approx(cfg.epochs * images / statistics.median(speeds.values()))
    on_gpu = json.loads(sources[6].read_text())  # a GPU has no CPU kind: plain "measured"
    on_gpu["environment"]["device"] = "gpu"
    for epoch in on_gpu["epochs"]:
        epoch["images_per_sec"] = 70.0
    (runs / sources[6].name).write_text(json.dumps(on_gpu))
    seconds, source = Speeds(tmp_path, "gpu").seconds(cfg)
    assert source == "measured" and seconds == pytest.approx(cfg.epochs * images / 70.0)


def test_the_sequential_executor_starts_the_longest_runs_first(tmp_path):
    """Two sequential calls sharing a folder split a round: they take the 110-layer runs
    first, so neither ends the round alone with one. Every run is held here (as another
    process would), so nothing trains and the order they were tried in is the held list's."""
    from contextlib import ExitStack

    from experiments import EXPERIMENTS
    from gluon_resnet.runs.executors.sequential import Sequential
    from gluon_resnet.runs.experiment import expand
    from gluon_resnet.runs.jobs import Tally, make_jobs
    from gluon_resnet.store import RunStore

    store = RunStore(tmp_path / "depth" / "quick")
    runs = expand(EXPERIMENTS["depth"], "quick")
    assert [c.arch for c in runs][:3] == ["cifar20"] * 3
    tally = Tally(store, tmp_path, lambda line: None)
    with ExitStack() as held:
        for cfg in runs:
            held.enter_context(store.lock(cfg.run_id))
        Sequential(progress=False).run(make_jobs(runs, False), store, None, tally)
    assert [j.cfg.arch for j in tally.held] == ["cifar110"] * 3 + ["cifar56"] * 3 + ["cifar20"] * 3
    assert tally.counts["locked"] == 9 and not list(store.runs_dir.glob("*.json"))
