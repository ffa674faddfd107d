"""Experiment definitions expand into valid, distinct run configs."""
import re

import pytest

from experiments import EXPERIMENTS
from gluon_resnet.config import RunConfig
from gluon_resnet.runs.experiment import PROFILES, expand
from gluon_resnet.orderings import ORDERINGS


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_expands_to_distinct_valid_runs(name, profile):
    runs = expand(EXPERIMENTS[name], profile)
    assert runs and all(isinstance(r, RunConfig) for r in runs)
    assert len({r.run_id for r in runs}) == len(runs)
    seeds = [r.seed for r in runs]
    assert seeds == sorted(seeds), "seed-major: every variant gets seed 0 before any gets seed 1"


def test_headline_grid_is_five_orderings_by_five_seeds_on_d2l18():
    runs = expand(EXPERIMENTS["orderings"], "full")
    assert len(runs) == 25
    assert {r.ordering for r in runs} == set(ORDERINGS)
    assert {r.seed for r in runs} == {0, 1, 2, 3, 4}
    d2l = RunConfig()
    assert all((r.arch, r.size, r.lr, r.batch_size, r.epochs, r.momentum, r.weight_decay,
                r.init, r.width, r.train_per_class) ==
               ("d2l18", 96, d2l.lr, 256, 10, 0.0, 0.0, "xavier", 1.0, None) for r in runs)


def test_cli_axes_and_overrides_replace_the_grid():
    runs = expand(EXPERIMENTS["orderings"], "quick", axes={"ordering": ("bn_relu_conv",),
                                                           "seed": (7, 8, 9)},
                  overrides={"epochs": 1})
    assert [(r.ordering, r.seed, r.epochs) for r in runs] == [("bn_relu_conv", s, 1) for s in (7, 8, 9)]
    with pytest.raises(ValueError, match="unknown profile"):
        expand(EXPERIMENTS["orderings"], "medium")


def test_run_id_is_a_function_of_the_config():
    a = RunConfig(ordering="bn_relu_conv", seed=3)
    assert a.run_id == RunConfig.from_dict(a.to_dict()).run_id
    assert a.run_id != a.replace(seed=4).run_id != a.replace(lr=0.1).run_id
    assert a.run_id.startswith("d2l18-bn_relu_conv-s3-")


@pytest.mark.parametrize("field, value, message", [
    ("ordering", "bn_conv_relu", "valid orderings: conv_bn_relu, bn_after_add, relu_before_add"),
    ("arch", "resnet19", "valid archs:"),
    ("init", "he", "valid inits: msra, xavier"),
    ("lr", 0, re.escape("lr must be in (0, 3.40282e+38]")),
])
def test_bad_config_values_say_what_is_valid(field, value, message):
    with pytest.raises(ValueError, match=message):
        RunConfig(**{field: value})


def test_a_baseline_outside_the_grid_is_refused():
    from gluon_resnet.analysis.declared import Analysis
    from gluon_resnet.runs.experiment import Experiment, Profile

    profiles = {p: Profile(note=p) for p in ("full", "quick", "smoke")}
    grid = {"ordering": ("conv_bn_relu", "bn_relu_conv")}
    Experiment("ok", "", RunConfig(), grid, profiles, Analysis(baseline="bn_relu_conv"))
    with pytest.raises(ValueError, match="baseline 'conv_bn_rleu' is not among the orderings"):
        Experiment("typo", "", RunConfig(), grid, profiles, Analysis(baseline="conv_bn_rleu"))
    narrowed = {**profiles, "smoke": Profile(note="", grid={"ordering": ("bn_relu_conv",)})}
    with pytest.raises(ValueError, match="profile smoke"):
        Experiment("narrowed", "", RunConfig(), grid, narrowed)
    with pytest.raises(ValueError, match="unknown primary metric 'final_acc'"):
        Experiment("metric", "", RunConfig(), grid, profiles, Analysis(metric="final_acc"))


def test_profiles_may_change_the_declared_analysis():
    exp = EXPERIMENTS["orderings"]
    assert exp.analysis_for("quick").metric == "final_test_acc"
    # constant lr: the last three epochs, read with precise BatchNorm statistics
    assert exp.analysis_for("full").metric == "last3_precise_test_acc"
    assert exp.analysis_for("quick", max_seeds=4).max_seeds == 4
    for e in EXPERIMENTS.values():
        for profile in PROFILES:
            a = e.analysis_for(profile)
            assert a.paired and a.alpha == 0.05 and a.margin > 0


def test_the_final_bn_relu_study_changes_only_the_final_bn_relu():
    """seed_notebook_final is seed_notebook's quick study with He et al.'s rule for the final
    BN-ReLU: the same seeds and declared analysis; conv_bn_relu's network is the one
    seed_notebook trained (the rule gives post-activation nets none), bn_relu_conv's gains a
    BN-ReLU before pooling."""
    from gluon_resnet.train import _network

    notebook, final = EXPERIMENTS["seed_notebook"], EXPERIMENTS["seed_notebook_final"]
    assert final.analysis_for("quick") == notebook.analysis_for("quick")
    assert final.analysis.basis == "median" and final.analysis.max_seeds == 10
    before, after = expand(notebook, "quick"), expand(final, "quick")
    assert [(r.ordering, r.seed) for r in after] == [(r.ordering, r.seed) for r in before] \
        == [("conv_bn_relu", 0), ("bn_relu_conv", 0)]
    for old, new in zip(before, after):
        changed = {k for k, v in old.to_dict().items() if new.to_dict()[k] != v}
        assert changed == {"final_bn_relu"} and new.final_bn_relu is None
        old_head, new_head = (_network(c)[-1] for c in (old, new))
        layers = [type(b).__name__ for b in new_head]
        if new.ordering == "conv_bn_relu":
            assert str(new_head) == str(old_head)
        else:
            assert layers[:2] == ["BatchNorm", "Activation"]
            assert [type(b).__name__ for b in old_head] == layers[2:]


def test_the_final_bn_relu_studys_power_statement_is_the_quick_studys_records():
    """The description's figures: seed_notebook quick's per-seed differences (sd 0.94
    points over 6 seeds, median -2.46), and what the cap of 10 finds at that spread (1.26
    points with 80 % power), recomputed from the committed records."""
    from pathlib import Path

    import numpy as np

    from gluon_resnet.analysis.groups import group_runs, paired_differences
    from gluon_resnet.analysis.power import as_points, detectable
    from gluon_resnet.store import RunStore

    final = EXPERIMENTS["seed_notebook_final"]
    analysis = final.analysis_for("quick")
    root = Path(__file__).resolve().parents[1] / "results" / "seed_notebook" / "quick"
    base, other = group_runs(RunStore(root).records())
    assert (base.ordering, other.ordering) == ("conv_bn_relu", "bn_relu_conv")
    diffs = np.array(list(paired_differences(base, other, analysis.metric).values())) * 100
    sd = diffs.std(ddof=1)
    said = final.description
    assert diffs.size == 6 and f"sd {sd:.2f} points over 6 seeds" in said
    assert f"was {np.median(diffs):+.2f} points" in said
    found = as_points(detectable(analysis, sd / 100, 1)).lstrip("±")
    assert f"the cap finds a difference of {found} points with 80 % power" in said


def test_only_an_experiment_with_a_study_beside_it_writes_the_key():
    """experiment.json of every other study is as it was: no 'beside' key, no new section."""
    assert "beside" not in EXPERIMENTS["orderings"].info("quick", "orderings")
    assert EXPERIMENTS["seed_notebook_final"].info("quick", "x")["beside"] == "seed_notebook"
