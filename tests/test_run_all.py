"""run_all.py end to end on the smoke profile: real data, real (tiny) training, real files."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gluon_resnet.store import RunStore, read_record

import cli_process

ROOT = Path(__file__).resolve().parents[1]
ORDERINGS = ("conv_bn_relu", "bn_after_add", "relu_before_add", "relu_preact", "bn_relu_conv")


def run_cli(*args: str, results: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = cli_process.run(["--results-dir", str(results), *args])
    assert proc.returncode == 0 or not check, f"{proc.args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def smoke(smoke_grid, tmp_path_factory):
    """`run_all.py --profile smoke` (five orderings) into a fresh results folder: a copy of the
    session's smoke grid (tests/conftest.py), which the tests below change in turn."""
    results = tmp_path_factory.mktemp("smoke") / "results"
    shutil.copytree(smoke_grid, results)
    return results, RunStore(results / "orderings" / "smoke")


@pytest.mark.slow
def test_smoke_writes_one_valid_record_per_run(smoke):
    results, store = smoke
    files = sorted(store.runs_dir.glob("*.json"))
    assert len(files) == len(ORDERINGS), files
    for path in files:
        rec = read_record(path)
        assert rec["run_id"] == path.stem
        assert rec["experiment"] == "orderings" and rec["profile"] == "smoke"
        assert rec["status"] == "completed"
        assert rec["config"]["ordering"] in ORDERINGS
        assert len(rec["epochs"]) == rec["config"]["epochs"]
        for ep in rec["epochs"]:
            assert 0.0 <= ep["test_acc"] <= 1.0 and ep["train_loss"] > 0
            assert ep["images_per_sec"] > 0
        assert rec["params"] > 0
    assert (store.root / "experiment.json").exists()
    assert (results / "README.md").exists()
    assert not list(results.rglob("*.params")) or all(
        "checkpoints" in p.parts for p in results.rglob("*.params"))


@pytest.mark.slow
def test_report_numbers_come_from_the_run_files(smoke):
    _, store = smoke
    report = (store.root / "report.md").read_text()
    for rec in store.records():
        ordering = rec.ordering
        final = rec.last.test_acc
        # one seed per ordering: the mean is the run's own final accuracy
        table = report.split("## Main table", 1)[1]
        row = next(line for line in table.splitlines() if line.startswith(f"| {ordering} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{100 * final:.2f}", (ordering, final, row)  # one seed: no ± std
    for png in [line.split("(")[1].split(")")[0] for line in report.splitlines()
                if line.startswith("![")]:
        assert (store.root / png).exists(), png


@pytest.mark.slow
def test_rerun_skips_completed_runs(smoke):
    results, store = smoke
    before = {p.name: p.read_bytes() for p in store.runs_dir.glob("*.json")}
    proc = run_cli("--profile", "smoke", results=results)
    assert proc.stdout.count("skipped") == len(ORDERINGS), proc.stdout
    assert {p.name: p.read_bytes() for p in store.runs_dir.glob("*.json")} == before


@pytest.mark.slow
def test_corrupt_and_failed_runs_are_redone_locked_runs_left_alone(smoke):
    results, store = smoke
    corrupt, failed, locked, *_ = sorted(store.runs_dir.glob("*.json"))
    corrupt.write_text('{"schema_version": 1, "run_id": ')  # a torn write
    rec = json.loads(failed.read_text())
    rec["status"], rec["epochs"] = "failed", rec["epochs"][:1]
    failed.write_text(json.dumps(rec))
    locked_before = locked.read_bytes()
    with store.lock(locked.stem):  # as if another runner were training it
        proc = run_cli("--profile", "smoke", results=results)
    assert "corrupted run file" in proc.stdout and corrupt.stem in proc.stdout
    assert "another process" in proc.stdout
    assert read_record(corrupt)["status"] == "completed"
    assert list((store.root / "corrupt").glob(f"{corrupt.stem}.*.json"))
    assert read_record(failed)["status"] == "completed"
    assert len(read_record(failed)["epochs"]) == rec["config"]["epochs"]
    assert locked.read_bytes() == locked_before


@pytest.mark.slow
def test_fresh_retrains_and_report_only_rebuilds(smoke):
    results, store = smoke
    one = "conv_bn_relu"
    path = next(p for p in store.runs_dir.glob("*.json") if read_record(p)["config"]["ordering"] == one)
    started = read_record(path)["started"]
    run_cli("--profile", "smoke", "--orderings", one, "--fresh", results=results)
    assert read_record(path)["started"] != started
    (store.root / "report.md").unlink()
    proc = run_cli("--profile", "smoke", "--report-only", results=results)
    assert (store.root / "report.md").exists()
    assert "training" not in proc.stdout


ENDINGS = """
import sys
how = sys.argv[1]
print("out", how)
print("err", how, file=sys.stderr)
if how == "status":
    sys.exit(3)
if how == "message":
    sys.exit("a message")
if how == "ctrl-c":
    raise KeyboardInterrupt
if how == "error":
    raise ValueError("boom")
"""


@pytest.mark.slow
def test_a_forked_command_is_the_fresh_command(smoke, tmp_path):
    """Most commands in these tests are forked from a process that imported run_all.py once
    (tests/cli_process.py): the same output, status and ending as a fresh interpreter, and a
    fresh one wherever the environment read at import differs from the server's."""
    results, _ = smoke
    for args in (["--profile", "smoke", "--report-only"], ["--profile", "nope"]):
        forked, fresh = (cli_process.run(["--results-dir", str(results), *args], fresh=f)
                         for f in (False, True))
        assert (forked.returncode, forked.stdout, forked.stderr) == (
            fresh.returncode, fresh.stdout, fresh.stderr), args
    script = tmp_path / "endings.py"
    script.write_text(ENDINGS)
    for how, status in (("ok", 0), ("status", 3), ("message", 1), ("ctrl-c", -2), ("error", 1)):
        forked, fresh = (cli_process.run([how], script=str(script), fresh=f)
                         for f in (False, True))
        assert forked.returncode == fresh.returncode == status, how
        assert (forked.stdout, forked.stderr) == (fresh.stdout, fresh.stderr), how
    assert cli_process.can_fork(cli_process.environment(None))
    assert not cli_process.can_fork(cli_process.environment({"OMP_NUM_THREADS": "2"}))


@pytest.mark.slow
def test_list_estimates_without_training(tmp_path, cli_in_process):
    status, out, _ = cli_in_process("--results-dir", str(tmp_path), "--profile", "smoke",
                                    "--list", "--experiment", "all")
    assert status == 0 and "estimated time left" in out
    assert "orderings/smoke: 5 runs" in out
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("args, expected", [
    (["--orderings", "bn_conv_relu"], "valid orderings: conv_bn_relu"),
    (["--archs", "resnet19"], "valid archs: d2l18"),
    (["--experiment", "nope"], "valid experiments: orderings"),
    (["--profile", "fast"], "invalid choice"),
    (["--seeds", "a-b"], "bad seeds"),
    (["--gpus", "x"], "bad --gpus"),
])
def test_bad_arguments_exit_2_with_the_valid_names(args, expected, capsys):
    import run_all

    with pytest.raises(SystemExit) as exit_:
        run_all.main(["--list", *args])
    assert exit_.value.code == 2
    assert expected in capsys.readouterr().err


def test_seed_parsing():
    from gluon_resnet.runs.cli import parse_seeds

    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,2,7") == (0, 2, 7)
    assert parse_seeds("3-4,9,3") == (3, 4, 9)


def test_missing_dataset_is_an_error_message_not_a_traceback(tmp_path, capsys):
    import run_all

    code = run_all.main(["--profile", "smoke", "--orderings", "conv_bn_relu",
                         "--data-dir", str(tmp_path / "nowhere"), "--results-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: Fashion-MNIST not found") and "apt-get install" in err
    assert "Traceback" not in err


def _tracked(folder: Path) -> dict[str, bytes]:
    """What git would track under a results folder (locks and checkpoints are ignored)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not {"locks", "checkpoints"} & set(p.relative_to(folder).parts)}


@pytest.mark.slow
def test_a_call_that_trains_nothing_writes_nothing_tracked(tmp_path):
    """`make run` on a fresh clone (every run done) rewrote the committed experiment.json
    (definitions written by an older version lacked newer fields), so the tree was dirty
    after the first command. Here the copy's definition is made stale on purpose; the
    reports it rebuilds come out byte-identical (the committed ones are current)."""
    import shutil

    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    path = results / "orderings" / "quick" / "experiment.json"
    info = json.loads(path.read_text())
    info["base"].pop("shortcut", None)  # as written before the field existed
    path.write_text(json.dumps(info, indent=1))
    before = _tracked(results)
    proc = run_cli("--profile", "quick", results=results)
    assert "already done" in proc.stdout and "training" not in proc.stdout
    assert _tracked(results) == before


def test_the_committed_definitions_are_current():
    """Each committed experiment.json is what this code would write (its declared analysis
    kept), so a report rebuilt from it says what the experiment is now. A definition from a
    .toml file (a notebook's, saved beside its runs by the API) is read from that file."""
    from experiments import EXPERIMENTS, find

    for path in sorted((ROOT / "results").glob("*/*/experiment.json")):
        info = json.loads(path.read_text())
        source = info["source"]
        exp = find(str(ROOT / source)) if source.endswith(".toml") else EXPERIMENTS[info["name"]]
        if info["profile"] not in exp.profiles or path.parent.name != info["profile"]:
            continue  # an archived folder (e.g. seed_notebook/quick-running-stats)
        current = exp.info(info["profile"], info["source"])
        kept = {k: info[k] for k in ("analysis", "analysis_lock") if k in info}  # the lock's hash
        assert {**current, **kept} == info, path
