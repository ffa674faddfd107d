"""The Python API (gluon_resnet.runs.api), the path run_all.py takes too: the same runs and
records from both, the report's tables handed back, usage mistakes as one exception before
anything is written, and a stop that leaves the call resumable."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import cli_process
from conftest import comparable
from gluon_resnet.runs import api
from gluon_resnet.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
PAIR = ("conv_bn_relu", "bn_relu_conv")
# A small ablation declared as TOML text, as a notebook cell declares one: two orderings, the
# smoke data, seeds 0 and 1 (a paired comparison of two seeds, so the report has its tables).
TOML = """
name = "api_check"
description = "conv_bn_relu against bn_relu_conv, declared in code"
[base]
arch = "d2l18"
width = 0.0625
size = 32
epochs = 2
train_per_class = 20
test_per_class = 10
batch_size = 50
[grid]
ordering = ["conv_bn_relu", "bn_relu_conv"]
seed = [0, 1]
[analysis]
basis = "median"
min_seeds = 2
max_seeds = 2
"""


def records(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))}


@pytest.fixture(scope="module")
def declared(tmp_path_factory) -> tuple[Path, api.Results]:
    """The ablation run through the API into a fresh results folder, in this process."""
    results = tmp_path_factory.mktemp("api") / "results"
    return results, api.run(TOML, profile="smoke", results_dir=results, executor="sequential",
                            progress=False)


@pytest.mark.slow
def test_the_api_and_run_all_make_the_same_records(declared, tmp_path):
    """run_all.py on the definition the API saved beside its runs (the report's source):
    the same run ids, and records equal but for timings; the same definition on disk."""
    results, out = declared
    saved = results / "api_check" / "experiment.toml"
    assert saved.read_text() == TOML
    info = json.loads((out.folder / "experiment.json").read_text())
    assert Path(info["source"]).resolve() == saved.resolve()
    proc = cli_process.run(["--experiment", str(saved), "--profile", "smoke", "--executor",
                            "sequential", "--results-dir", str(tmp_path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mine, theirs = records(out.folder), records(tmp_path / "api_check" / "smoke")
    assert len(mine) == 4 and set(mine) == set(theirs)
    for run_id in mine:
        assert comparable(mine[run_id]) == comparable(theirs[run_id]), run_id
    cli_info = json.loads((tmp_path / "api_check" / "smoke" / "experiment.json").read_text())
    # the same definition; each folder its own lock (its time, so its hash)
    assert {**cli_info, "source": None, "analysis_lock": None} == {**info, "source": None,
                                                                   "analysis_lock": None}


@pytest.mark.slow
def test_the_results_are_the_reports_tables(declared):
    _, out = declared
    assert out.ok and (out.name, out.profile) == ("api_check", "smoke")
    report = out.report.read_text()
    runs = records(out.folder)
    assert len(out.runs) == sum(len(r["epochs"]) for r in runs.values())
    assert list(out.summary.group) == list(PAIR)
    per_seed = out.per_seed  # the primary metric, final_test_acc, by seed and ordering
    for r in runs.values():
        value = per_seed.loc[r["config"]["seed"], r["config"]["ordering"]]
        assert value == pytest.approx(r["epochs"][-1]["test_acc"])
    diff = per_seed["bn_relu_conv - conv_bn_relu"]
    assert list(diff) == pytest.approx(list(per_seed.bn_relu_conv - per_seed.conv_bn_relu))
    (row,) = out.verdicts.itertuples()
    assert row.comparison == "bn_relu_conv" and row.seeds == 2
    assert row.sentence in report  # the report's own sentence
    assert row.verdict == out.summary.set_index("group").verdict["bn_relu_conv"]
    assert {"test_acc", "train_loss"} <= set(out.figures)
    assert all(p.exists() and p.parent == out.folder for p in out.figures.values())


@pytest.mark.parametrize("spec, kwargs, message", [
    (TOML, {"axes": {"ordering": ("v9",)}}, "unknown ordering 'v9'; valid orderings"),
    (TOML, {"overrides": {"lr": -1}}, "lr must be in (0, "),
    (TOML, {"overrides": {"lrr": 1}}, "unknown config field 'lrr'"),
    (TOML, {"max_seeds": 4}, "max_seeds caps until_decided"),
    (TOML, {"until_decided": True, "axes": {"seed": (0, 1)}}, "chooses the seeds itself"),
    (TOML, {"executor": "slurm"}, "unknown executor 'slurm'"),
    (TOML, {"gpus": [5]}, "GPU [5] not available"),
    (TOML, {"profile": "fast"}, "unknown profile 'fast'"),
    (TOML, {"ray": {"adress": "auto"}}, "unknown ray option 'adress'"),
    (TOML, {"ray": {"address": "auto"}}, "only apply to --executor ray"),
    (TOML.replace('"d2l18"', '"resnet19"'), {}, "<TOML text>: key 'base.arch'"),
    (TOML.replace("[grid]", "[grid]\nmomentum = 'high'"), {}, "key 'grid.momentum'"),
    ({"name": "x", "grid": {"ordering": ["conv_bn_relu"], "lr": [0.1, "fast"]}}, {},
     "<dict>: key 'grid.lr': expected a number, got 'fast'"),
    ({"name": "../x"}, {}, "a plain folder name"),
    ("orderings", {}, "'orderings' is not an experiment"),
    ("nowhere.toml", {}, "nowhere.toml: cannot read the file"),
])
def test_a_usage_mistake_is_one_exception_and_writes_nothing(tmp_path, spec, kwargs, message):
    results = tmp_path / "results"
    with pytest.raises(api.ExperimentError) as caught:
        api.run(spec, profile=kwargs.pop("profile", "smoke"), results_dir=results,
                progress=False, **kwargs)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not results.exists()


@pytest.mark.slow
def test_a_locked_plan_refuses_a_changed_declaration_and_keeps_its_file(declared):
    """The declaration edited after the first look (another margin): Refused, and the saved
    experiment.toml, the report's source, still holds the declaration the plan was locked with."""
    results, _ = declared
    saved = results / "api_check" / "experiment.toml"
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    edited = TOML.replace('basis = "median"', 'basis = "median"\nmargin = 0.01')
    with pytest.raises(api.Refused, match="locked at the first look"):
        api.run(edited, profile="smoke",
                results_dir=results, until_decided=True, executor="sequential",
                progress=False)
    assert saved.read_text() == TOML
    assert {p: p.read_bytes() for p in results.rglob("*") if p.is_file()} == before


def test_a_results_folder_that_is_a_file(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(api.ExperimentError, match="is a file, not a folder"):
        api.run(TOML, profile="smoke", results_dir=tmp_path / "a-file", progress=False)


@pytest.mark.slow
def test_a_stop_leaves_the_call_resumable(tmp_path, capsys):
    """SIGINT (Ctrl-C, or a Jupyter kernel's interrupt) once epoch 1 is on disk: Interrupted,
    the record says interrupted with its finished epochs, and the same call resumes it to the
    end, from its checkpoint."""
    one = dict(profile="smoke", results_dir=tmp_path, executor="sequential", progress=False,
               axes={"ordering": ("conv_bn_relu",), "seed": (0,)}, overrides={"epochs": 6})
    store = RunStore(tmp_path / "api_check" / "smoke")
    stop, handler = threading.Event(), signal.getsignal(signal.SIGINT)

    def interrupt_after_epoch_1() -> None:
        while not stop.wait(0.005):
            for path in store.runs_dir.glob("*.json") if store.runs_dir.exists() else ():
                try:
                    epochs = json.loads(path.read_text())["epochs"]
                except (OSError, ValueError):
                    continue
                if epochs:
                    os.kill(os.getpid(), signal.SIGINT)
                    return

    watcher = threading.Thread(target=interrupt_after_epoch_1, daemon=True)
    watcher.start()
    try:
        with pytest.raises(api.Interrupted):
            api.run(TOML, **one)
            time.sleep(5)  # a signal on its way must land inside the raises block
    finally:
        stop.set()
        watcher.join()
    (record,) = store.records()
    assert record.status == "interrupted" and 1 <= len(record.epochs) < 6
    done = len(record.epochs)
    capsys.readouterr()
    out = api.run(TOML, **one)
    assert f"(resuming after epoch {done})" in capsys.readouterr().out
    (record,) = store.records()
    assert out.ok and record.status == "completed" and len(record.epochs) == 6
    assert [e.epoch for e in record.epochs] == list(range(1, 7))
    assert signal.getsignal(signal.SIGINT) == handler  # the caller's, given back


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path, monkeypatch, capsys):
    """docs/layout.md's example, as a reader pastes it, in a folder of its own."""
    doc = (ROOT / "docs" / "layout.md").read_text()
    block = doc.split("## Running an experiment from Python", 1)[1].split("```python\n", 1)[1]
    monkeypatch.chdir(tmp_path)
    exec(block.split("```", 1)[0], {})
    out = capsys.readouterr().out
    folder = tmp_path / "my-results" / "lr_orderings" / "smoke"
    assert len(list((folder / "runs").glob("*.json"))) == 4  # 2 orderings x 2 seeds
    assert "my-results/lr_orderings/smoke/test_acc.png" in out and "bn_relu_conv" in out
