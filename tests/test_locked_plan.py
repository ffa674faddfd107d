"""Verdicts that cannot move (analysis/plan.py, analysis/verdicts.py): a verdict is final at
the look that reached it, the Holm family is the one locked at the first look, and the lock
is checked against its definition and its runs. Simulations go through the loop's own looks
and stopping rule (tests/simloop.py); the folders hold real record files. No MXNet."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from experiments import EXPERIMENTS
from gluon_resnet.analysis import plan as P
from gluon_resnet.analysis import verdicts as V
from gluon_resnet.analysis.declared import Analysis
from gluon_resnet.analysis.decide import decide_pairs
from gluon_resnet.analysis.groups import group_runs, outcomes
from gluon_resnet.records import now
from gluon_resnet.runs.experiment import expand
from gluon_resnet.store import RunStore
from simloop import flipped, until_decided
from test_until_decided import fake_record

DEPTH_LIKE = Analysis(metric="final_precise_test_acc", margin=0.01, max_seeds=10, basis="mean")
PAIR = ("conv_bn_relu", "bn_relu_conv")
SEED_NOTEBOOK_LIKE = Analysis(metric="last3_precise_test_acc", margin=0.005, max_seeds=10,
                              basis="median", collapse="separate", collapse_below=0.2)


def _flip_scenario(n_exp: int, seed: int) -> list[np.ndarray]:
    """The audit's flip, aimed at: one baseline shared by two comparisons; X a small real
    difference inside the margin (decided early, its p near the Holm boundary), Y a larger one
    decided later, whose falling p lowers X's Holm multiplier after X's groups stopped."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_exp):
        v = 0.9 + rng.normal(0, 0.003, 10) + rng.normal(0, 0.003, (3, 10))
        v[1] += 0.004
        v[2] += 0.006
        out.append(v)
    return out


@pytest.mark.slow
def test_a_verdict_once_reached_is_final_through_later_looks_of_other_comparisons():
    """Through the loop (groups stop when decided): the look's own verdicts, which the code
    printed before verdicts were frozen, turn an "equivalent" into "better" without a new
    seed of their own (Holm over the family after another comparison's p fell); the printed
    verdicts never change once reached."""
    runs = [until_decided(v, [(0, 1), (0, 2)], DEPTH_LIKE) for v in _flip_scenario(200, 1)]
    moved = sum(flipped(r, printed=False) for r in runs)
    print(f"flip scenario: a verdict moved after its groups stopped in {moved} of {len(runs)} "
          "experiments before freezing; printed now: 0")
    assert moved > 0  # the mechanism is real: the test can fail
    assert not any(flipped(r) for r in runs)


def same(a: list, b: list) -> bool:
    """The same verdicts (the variant's label may name a setting that varies now)."""
    def unnamed(d):
        return dataclasses.replace(d.verdict, name="")
    return [unnamed(d) for d in a] == [unnamed(d) for d in b]


def _write(store: RunStore, cfgs, values: dict, when: str) -> None:
    for cfg in cfgs:
        store.write(fake_record(cfg, values[cfg.ordering, cfg.seed], finished=when))


def _experiment_folder(tmp_path, diffs) -> tuple[RunStore, list]:
    """A folder of the orderings smoke grid (conv_bn_relu, bn_relu_conv) locked as its first
    run locks it, with final accuracies whose paired differences are `diffs`."""
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    from gluon_resnet.runs.runner import record_definition

    record_definition(exp, "smoke", store, "orderings")
    P.write_plan(store, P.Plan(exp.analysis_for("smoke"), locked=now()))
    cfgs = expand(exp, "smoke", axes={"ordering": PAIR, "seed": tuple(range(len(diffs)))})
    base = 0.8 + np.random.default_rng(3).normal(0, 0.01, len(diffs))
    values = {("conv_bn_relu", s): float(base[s]) for s in range(len(diffs))}
    values.update({("bn_relu_conv", s): float(base[s] + d) for s, d in enumerate(diffs)})
    _write(store, cfgs, values, now())
    return store, cfgs


def test_runs_of_another_setting_stay_outside_the_locked_family(tmp_path):
    """The audit's case: a comparison "better" at Holm p 0.043 turned "undecided" (0.086)
    when three seeds of another setting (`--set lr=0.1` into the same folder) landed, and
    "better" again when they were archived. The family is locked at the first look: the new
    runs are reported apart, and neither adding nor archiving them moves the verdict."""
    z = np.random.default_rng(11).standard_normal(10)
    for shift in np.linspace(0.0, 0.01, 201):  # a 10-seed difference whose Holm p is in (0.025, 0.05)
        d = shift + 0.006 * z
        (v,) = decide_pairs([("x", dict(enumerate([0.8] * 10)), dict(enumerate(0.8 + d)))],
                            EXPERIMENTS["orderings"].analysis_for("smoke"), extras=False)
        if v.kind == "better" and 0.025 < v.p_diff_holm < 0.05:
            break
    else:
        pytest.fail("no shift gives a Holm p between 0.025 and 0.05")
    store, _ = _experiment_folder(tmp_path, list(d))
    before = V.store_verdicts(store)
    assert [x.verdict.kind for x in before.decided] == ["better"] and not before.outside
    assert before.plan.family and len(before.plan.family) == 1
    other = expand(EXPERIMENTS["orderings"], "smoke",
                   axes={"ordering": PAIR, "seed": (0, 1, 2), "lr": (0.1,)})
    noise = np.random.default_rng(5).normal(0.8, 0.02, len(other))
    _write(store, other, {(c.ordering, c.seed): float(x) for c, x in zip(other, noise)}, now())
    added = V.store_verdicts(store)
    assert same(added.decided, before.decided)
    assert [o.label for _, o in added.outside] == ["bn_relu_conv · lr=0.1"]
    # what the code did before: one Holm family of every pair on disk, at the latest look
    pairs = V.baseline_pairs(group_runs(store.records()), "conv_bn_relu")
    old = decide_pairs([(o.label, outcomes(b, added.analysis.metric),
                         outcomes(o, added.analysis.metric)) for b, o in pairs], added.analysis)
    assert [v.kind for v in old] == ["undecided", "undecided"]
    for cfg in other:  # archived again
        store.record_path(cfg.run_id).unlink()
    assert same(V.store_verdicts(store).decided, before.decided)


def test_frozen_verdicts_are_replayed_from_the_run_files(tmp_path):
    """An experiment of the flip scenario whose verdict moved after its groups stopped,
    written as run files with the seeds the loop gave each group: the folder's report
    prints the verdict of the look that reached it, not the later look's."""
    analysis = Analysis(metric="final_test_acc", margin=0.01, max_seeds=10, basis="mean")
    for v in _flip_scenario(400, 1):
        run = until_decided(v, [(0, 1), (0, 2)], analysis)
        if flipped(run, printed=False):
            break
    else:
        pytest.fail("no experiment of the scenario flips")
    have = {}  # seeds per group as the loop gave them
    for look, (printed, _) in enumerate(run, start=analysis.min_seeds):
        for g, done in ((1, printed[0].kind != "undecided"), (2, printed[1].kind != "undecided")):
            have.setdefault(g, look)
            if not done:
                have[g] = look + 1
    have[0] = len(run) + analysis.min_seeds - 1
    exp = EXPERIMENTS["orderings"]
    store = RunStore(tmp_path / "orderings" / "smoke")
    P.write_plan(store, P.Plan(analysis, locked=now()))  # as its first run locks it
    for g, ordering in enumerate(("conv_bn_relu", "relu_preact", "bn_relu_conv")):
        n = min(have[g], len(run) + analysis.min_seeds - 1)
        for cfg in expand(exp, "smoke", axes={"ordering": (ordering,), "seed": tuple(range(n))}):
            store.write(fake_record(cfg, float(v[g, cfg.seed]), finished=now()))
    decided = V.store_verdicts(store).decided
    final = run[-1][0]
    assert [d.verdict.kind for d in decided] == [final[0].kind, final[1].kind]
    assert [d.verdict.kind for d in decided] != [x.kind for x in run[-1][1]]
    frozen = [d for d in decided if d.frozen]
    assert any(d.look < len(run) + analysis.min_seeds - 1 for d in frozen)  # before the end


def test_plan_lock_refuses_another_plan(tmp_path):
    store = RunStore(tmp_path)
    P.check_wanted(tmp_path, P.read_plan(tmp_path), SEED_NOTEBOOK_LIKE)  # none locked: any plan
    P.write_plan(store, P.Plan(SEED_NOTEBOOK_LIKE, locked=P.now()))
    assert P.read_plan(tmp_path).analysis == SEED_NOTEBOOK_LIKE
    P.check_wanted(tmp_path, P.read_plan(tmp_path), SEED_NOTEBOOK_LIKE)
    for wanted in (Analysis.from_dict({**SEED_NOTEBOOK_LIKE.to_dict(), "max_seeds": 20}),
                   Analysis.from_dict({**SEED_NOTEBOOK_LIKE.to_dict(), "basis": "mean"})):
        with pytest.raises(P.PlanChanged, match="locked at the first look"):
            P.check_wanted(tmp_path, P.read_plan(tmp_path), wanted)
    P.lock_path(tmp_path).write_text("{not json")
    with pytest.raises(P.LockProblem, match="not readable"):
        P.read_plan(tmp_path)
