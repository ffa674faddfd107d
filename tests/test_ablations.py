"""Ablations without editing the package: --set / --grid over any RunConfig field, TOML
experiment files, and the CSV tables beside every report, on real (smoke) runs."""
from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from experiments import find
from gluon_resnet.config import FIELDS, RunConfig, as_text, coerce, parse_value
from gluon_resnet.rules import RULES
from gluon_resnet.runs.experiment_file import ExperimentFileError, load_experiment_file
from gluon_resnet.runs.overrides import parse_grid, parse_set, split_values
from gluon_resnet.store import RunStore
from test_run_all import ROOT, run_cli

PAIR = "conv_bn_relu,bn_relu_conv"


@pytest.mark.parametrize("field, text, value", [
    ("epochs", "3", 3),                      # int
    ("lr", "0.1", 0.1), ("lr", "1", 1.0),    # float (an integer is a float there)
    ("augment", "true", True), ("augment", "No", False),           # bool
    ("final_bn_relu", "none", None), ("final_bn_relu", "false", False),  # optional bool
    ("train_per_class", "null", None), ("train_per_class", "50", 50),    # optional int
    ("lr_steps", "3,6", (3, 6)), ("lr_steps", "[3,6]", (3, 6)), ("lr_steps", "[]", ()),  # tuple
    ("ordering", "bn_relu_conv", "bn_relu_conv"),                  # str
])
def test_values_parse_to_the_fields_type(field, text, value):
    got = parse_value(field, text)
    assert got == value and type(got) is type(value)
    assert parse_value(field, as_text(got)) == got  # the reproduce command round-trips


@pytest.mark.parametrize("field, text, message", [
    ("epochs", "1.5", "epochs expects an integer, got '1.5'"),
    ("lr", "fast", "lr expects a number, got 'fast'"),
    ("augment", "maybe", "augment expects true or false, got 'maybe'"),
    ("final_bn_relu", "2", "final_bn_relu expects true or false or none"),
    ("lr_steps", "3,x", "lr_steps expects a list of integers"),
    ("lrr", "1", "unknown config field 'lrr'; valid fields: arch, ordering, width"),
])
def test_bad_values_say_what_was_expected(field, text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_value(field, text)


def test_config_checks_types_from_json_and_toml():
    assert RunConfig(lr=1).lr == 1.0 and RunConfig(lr_steps=[1, 2]).lr_steps == (1, 2)
    for field, bad in [("epochs", True), ("epochs", 2.0), ("lr", "0.1"), ("augment", 1),
                       ("lr_steps", [1.5])]:
        with pytest.raises(ValueError, match=f"{field} expects"):
            RunConfig(**{field: bad})
    assert coerce("final_bn_relu", None) is None


@pytest.mark.parametrize("field, bad, message", [
    ("lr", math.inf, "lr must be a finite number, got inf"),
    ("momentum", math.nan, "momentum must be a finite number, got nan"),
    ("momentum", 1.0, "momentum must be in [0, 1), got 1.0"),
    ("width", math.inf, "width must be a finite number, got inf"),
    ("width", 1e9, "width must be in (0, 64]"),
    ("lr_factor", -1.0, "lr_factor must be in (0, 3.40282e+38] (float32's largest, as MXNet "
     "takes it), got -1.0"),
    ("weight_decay", -0.1, "weight_decay must be in [0, 3.40282e+38]"),
    ("lr_steps", (0, 3), "lr_steps must be >= 1"),
    ("warmup_lr", math.nan, "warmup_lr must be a finite number"),
    ("warmup_until_error", math.inf, "warmup_until_error must be a finite number"),
    ("seed", 2**40, "seed must be in [0, 2,147,483,648)"),
    ("size", 0, "size must be in [1, 1,024]"),
    # what training would refuse after writing a failed record (issue 41): more images per
    # class than the data set has, numbers beyond float32, which MXNet takes them as
    ("train_per_class", 100_000, "train_per_class must be in [1, 6,000] (Fashion-MNIST has"),
    ("test_per_class", 1001, "test_per_class must be in [1, 1,000]"),
    ("lr", 1e308, "lr must be in (0, 3.40282e+38] (float32's largest"),
    ("weight_decay", 1e308, "weight_decay must be in [0, 3.40282e+38]"),
    ("warmup_lr", 1e39, "warmup_lr must be in (0, 3.40282e+38]"),
    ("lr_factor", 1e39, "lr_factor must be in (0, 3.40282e+38]"),
    ("clip_norm", 1e39, "clip_norm must be a gradient norm in (0, 3.40282e+38]"),
])
def test_every_field_is_range_checked_in_one_place(field, bad, message):
    """rules.RULES covers every field; RunConfig applies it to values from code, and the
    command line and TOML files reach the same check (below)."""
    assert set(RULES) == set(FIELDS)
    with pytest.raises(ValueError, match=re.escape(message)):
        RunConfig(**{field: bad})
    with pytest.raises(ValueError, match=re.escape(message)):
        RunConfig.from_dict({**RunConfig().to_dict(), field: bad})  # a record's JSON


def test_grid_splitting_respects_brackets():
    assert split_values("[3],[3,6],[]") == ["[3]", "[3,6]", "[]"]
    assert parse_grid("lr_steps=[3],[3,6]") == ("lr_steps", ((3,), (3, 6)))
    assert parse_grid("momentum=0,0.9,0") == ("momentum", (0.0, 0.9))
    assert parse_set("final_bn_relu=none") == ("final_bn_relu", None)
    with pytest.raises(ValueError, match="write field=value"):
        parse_set("lr")


@pytest.fixture(scope="module")
def momentum_grid(tmp_path_factory):
    """A --grid over a field no experiment varies, end to end on the smoke profile."""
    results = tmp_path_factory.mktemp("results")
    proc = run_cli("--profile", "smoke", "--orderings", PAIR, "--grid", "momentum=0,0.9",
                   "--set", "lr=0.1", results=results)
    return results, RunStore(results / "orderings" / "smoke"), proc


@pytest.mark.slow
def test_grid_over_any_field_is_grouped_and_compared_within(momentum_grid):
    _, store, _ = momentum_grid
    records = store.records()
    assert sorted((r.ordering, r.config.momentum) for r in records) == [
        ("bn_relu_conv", 0.0), ("bn_relu_conv", 0.9), ("conv_bn_relu", 0.0), ("conv_bn_relu", 0.9)]
    assert {r.config.lr for r in records} == {0.1}
    report = (store.root / "report.md").read_text()
    assert "- varied: `ordering`, `momentum`" in report and "`lr=0.1`" in report
    verdicts = report.split("## Against the baseline: verdicts")[1].split("\n## ")[0]
    assert "| bn_relu_conv · momentum=0.0 |" in verdicts
    assert "| bn_relu_conv · momentum=0.9 |" in verdicts
    command = report.split("To reproduce these runs:")[1]
    assert "--set lr=0.1" in command and "--grid momentum=0.0,0.9" in command


@pytest.mark.slow
def test_csv_tables_read_back_equal_to_the_run_files(momentum_grid):
    _, store, _ = momentum_grid
    runs = pd.read_csv(store.root / "runs.csv")
    records = {r.run_id: r for r in store.records()}
    assert set(runs.run_id) == set(records)
    for run_id, rows in runs.groupby("run_id"):
        record = records[run_id]
        assert list(rows.epoch) == [e.epoch for e in record.epochs]
        assert list(rows.test_acc) == pytest.approx(record.series("test_acc"))
        assert list(rows.train_loss) == pytest.approx(record.series("train_loss"))
        assert list(rows.epoch_lr) == pytest.approx(record.series("lr"))
        assert list(rows["grad_norm.head"]) == pytest.approx(
            [e.grad_norm["head"] for e in record.epochs])
        assert set(rows.momentum) == {record.config.momentum}
        assert set(rows.status) == {record.status}
    summary = pd.read_csv(store.root / "summary.csv")
    assert len(summary) == 4 and set(summary.momentum) == {0.0, 0.9}
    for _, row in summary.iterrows():
        finals = [r.last.test_acc for r in records.values()
                  if r.ordering == row.ordering and r.config.momentum == row.momentum]
        assert row.final_test_acc_mean == pytest.approx(sum(finals) / len(finals))
    assert set(summary.verdict.dropna()) <= {"better", "worse", "equivalent", "undecided"}


@pytest.mark.slow
def test_toml_experiment_end_to_end(tmp_path):
    proc = run_cli("--experiment", "experiments/lr_ablation.toml", "--profile", "smoke",
                   results=tmp_path)
    store = RunStore(tmp_path / "lr_ablation" / "smoke")
    assert len(store.records()) == 4, proc.stdout
    info = json.loads((store.root / "experiment.json").read_text())
    assert info["name"] == "lr_ablation" and info["analysis"]["margin"] == 0.005
    report = (store.root / "report.md").read_text()
    assert "--experiment experiments/lr_ablation.toml" in report
    assert "| bn_relu_conv · lr=0.05 |" in report and "| bn_relu_conv · lr=0.1 |" in report


BAD_FILES = [
    ("name = 'x'\n[grid]\nlr = [0.1, 'fast']\n", "key 'grid.lr': expected a number, got 'fast'"),
    ("name = 'x'\n[base]\nmomentun = 0.9\n", "key 'base.momentun': expected a RunConfig field"),
    ("name = 'x'\nseeds = [1]\n", "key 'seeds': expected one of name, description"),
    ("[base]\nlr = 0.1\n", "key 'name': expected a non-empty string"),
    ("name = 'x'\n[grid]\nlr = 0.1\n", "key 'grid.lr': expected a non-empty list"),
    ("name = 'x'\n[profiles.fast]\nnote = ''\n", "key 'profiles.fast': expected one of full"),
    ("name = 'x'\n[analysis]\nbaseline = 'v2'\n", "baseline 'v2' is not among the orderings"),
    ("name = 'x'\n[analysis]\nmargin = -1\n", "margin must be >= 0"),
    ("name = 'x'\n[analysis]\nmargin = inf\n", "margin must be a finite number, got inf"),
    ("name = 'x'\n[analysis]\nalpha = nan\n", "alpha must be a finite number, got nan"),
    ("name = 'x'\n[base]\nlr = 1e308\n", "key 'base.lr': lr must be in (0, 3.40282e+38]"),
    ("name = 'x'\n[profiles.smoke]\noverrides = {train_per_class = 100000}\n",
     "key 'profiles.smoke.overrides.train_per_class': train_per_class must be in [1, 6,000]"),
    ("name = 'x'\n[base\n", "not valid TOML"),
    ("name = 'x'\n[base]\nlr = inf\n", "key 'base.lr': lr must be a finite number, got inf"),
    ("name = 'x'\n[base]\nmomentum = nan\n", "key 'base.momentum': momentum must be a finite"),
    ("name = 'x'\n[grid]\nordering = ['nonsense']\n",
     "key 'grid.ordering': unknown ordering 'nonsense'; valid orderings: conv_bn_relu"),
    ("name = 'x'\n[profiles.smoke]\noverrides = {epochs = 0}\n",
     "key 'profiles.smoke.overrides.epochs': epochs must be >= 1, got 0"),
    ("name = 'x'\n[profiles.quick.grid]\nlr_factor = [0.1, -1.0]\n",
     "key 'profiles.quick.grid.lr_factor': lr_factor must be in (0, 3.40282e+38]"),
    ("name = '../../escape'\n", "key 'name': expected a plain folder name"),
    ("name = '/tmp/abs'\n", "key 'name': expected a plain folder name"),
    ("name = '..'\n", "key 'name': expected a plain folder name"),
    ("name = 'x'\n[analysis]\nmargin = 'big'\n", "key 'analysis.margin': expected a number, got 'big'"),
    ("name = 'x'\n[analysis]\npaired = 'false'\n",
     "key 'analysis.paired': expected true or false, got 'false'"),
    ("name = 'x'\n[analysis]\nmin_seeds = 2.5\n", "key 'analysis.min_seeds': expected an integer"),
    ("name = 'x'\n[profiles.smoke.analysis]\nmax_seeds = true\n",
     "key 'profiles.smoke.analysis.max_seeds': expected an integer, got True"),
    ("name = 'x'\n[analysis]\nmax_seeds = 100000\n", "max_seeds must be at most 1000"),
    ("name = 'x'\n[grid]\nseed = [" + ",".join(map(str, range(1001))) + "]\n",
     "key 'grid.seed': expected at most 1,000 seeds, got 1001"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_malformed_files_name_the_file_key_and_expectation(tmp_path, text, message):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ExperimentFileError) as err:
        load_experiment_file(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_a_binary_file_is_named_and_a_built_in_name_refused(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_bytes(b"name = 'x'\n\xf0\x28\x8c\x28\x00")
    with pytest.raises(ExperimentFileError, match=re.escape(f"{path}: not a text file")):
        load_experiment_file(path)
    path.write_text("name = 'orderings'\n")
    load_experiment_file(path)  # by itself a fine name; beside the built-ins, not
    with pytest.raises(ExperimentFileError, match="'orderings' is a built-in experiment"):
        find(str(path))


@pytest.mark.parametrize("args, message", [
    (["--set", "lr=fast"], "lr expects a number, got 'fast'"),
    (["--set", "lrr=1"], "unknown config field 'lrr'; valid fields:"),
    (["--set", "lr=-1"], "lr must be in (0, 3.40282e+38]"),
    (["--set", "lr=inf"], "lr must be a finite number, got inf"),
    (["--set", "momentum=nan"], "momentum must be a finite number, got nan"),
    (["--set", "width=inf"], "width must be a finite number, got inf"),
    (["--set", "lr_factor=-1", "--set", "schedule=step", "--set", "lr_steps=1"],
     "lr_factor must be in (0, 3.40282e+38]"),
    (["--grid", "momentum=0,1.5"], "momentum must be in [0, 1), got 1.5"),
    (["--set", "train_per_class=100000"], "train_per_class must be in [1, 6,000]"),
    (["--set", "lr=1e308"], "lr must be in (0, 3.40282e+38]"),
    (["--grid", "weight_decay=0,1e308"], "weight_decay must be in [0, 3.40282e+38]"),
    (["--grid", "lr=0.1,0.2", "--grid", "lr=0.3"],
     "--grid lr is given twice: list every value in one, e.g. --grid lr=0.1,0.2,0.3"),
    (["--grid", "momentum="], "give at least one value"),
    (["--grid", "ordering=v9"], "unknown ordering 'v9'; valid orderings: conv_bn_relu"),
    (["--orderings", "conv_bn_relu", "--grid", "ordering=bn_relu_conv"], "both set ordering"),
    (["--set", "lr=0.1", "--grid", "lr=0.1,0.2"], "--set and --grid both set lr"),
    (["--experiment", "nowhere.toml"], "nowhere.toml: cannot read the file"),
])
def test_bad_options_exit_2_with_a_message_and_no_traceback(args, message, cli_in_process,
                                                             monkeypatch):
    monkeypatch.chdir(ROOT)  # experiments/... paths are the checkout's
    status, _, err = cli_in_process("--list", "--profile", "smoke", *args)
    assert status == 2, err
    assert message in err and "Traceback" not in err


def test_help_shows_two_examples_of_each_new_option(cli_in_process):
    status, out, _ = cli_in_process("--help")
    assert status == 0
    examples = out.split("ablations without editing the package:")[1]
    for option in ("--set ", "--grid ", "--experiment "):
        assert sum(line.lstrip().startswith(option) for line in examples.splitlines()) >= 2


@pytest.mark.parametrize("args, toml", [
    (["--set", "lr=inf"], ""),
    (["--set", "train_per_class=100000"], ""),
    (["--set", "lr=1e308"], ""),
    (["--experiment", "BAD_TOML"], "name = 'bad'\n[analysis]\nmargin = inf\n"),
    (["--set", "lr_factor=-1", "--set", "schedule=step", "--set", "lr_steps=1"], ""),
    (["--experiment", "BAD_TOML"], "name = 'bad'\n[base]\nlr = inf\n"),
    (["--experiment", "BAD_TOML"], "name = '../escape'\n"),
    (["--experiment", "BAD_TOML"], "name = 'orderings'\n")])
def test_bad_values_and_names_train_and_write_nothing(tmp_path, args, toml, cli_in_process,
                                                     monkeypatch):
    """Without --list: refused before any run starts, and the results folder stays absent
    (a name with '..' wrote beside it, a built-in's name into the built-in's folder)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(toml)
    results = tmp_path / "results"
    monkeypatch.chdir(ROOT)
    status, _, err = cli_in_process("--profile", "smoke", "--results-dir", str(results),
                                    *[str(bad) if a == "BAD_TOML" else a for a in args])
    assert status == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()[-1]) > 0 and not results.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
