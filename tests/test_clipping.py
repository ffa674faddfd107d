"""Gradient clipping (cfg.clip_norm): the update's size where it acts, an untouched trajectory
where it does not, and the count of clipped steps in the record."""
from __future__ import annotations

import itertools

import mxnet as mx
import numpy as np
import pytest

from gluon_resnet import train as engine
from gluon_resnet.config import RunConfig

TINY = dict(arch="gluonbook", width=0.125, size=32, batch_size=50, epochs=2, lr=0.1,
            final_bn_relu=False, projection_input="relu", precise_bn_batches=0)


def _weights(s) -> list[np.ndarray]:
    return [p.data().asnumpy().copy() for p in s.grads.params]


def test_a_clipped_step_moves_the_weights_by_lr_times_the_norm(small_data):
    """Plain SGD (no momentum, no decay): the step is lr x gradient, so a clipped one has
    global norm lr x clip_norm exactly, whatever the gradient's own length."""
    s = engine.build(RunConfig(**TINY, clip_norm=1e-3), small_data, [mx.cpu()])
    before = _weights(s)
    engine.train_epoch(s, itertools.islice(engine.train_batches(s, 1), 1))
    step = np.sqrt(sum(((a - b).astype(np.float64) ** 2).sum()
                       for a, b in zip(_weights(s), before)))
    assert step == pytest.approx(0.1 * 1e-3, rel=1e-4)
    assert s.clip.clipped_steps() == 1


def test_a_norm_never_reached_leaves_the_trajectory_bitwise_the_same(small_data):
    states, entries = {}, {}
    for clip in (None, 1e9):
        s = engine.build(RunConfig(**TINY, clip_norm=clip), small_data, [mx.cpu()])
        entries[clip] = [engine.run_epoch(s, epoch) for epoch in (1, 2)]
        states[clip] = _weights(s)
    assert all(np.array_equal(a, b) for a, b in zip(states[1e9], states[None]))
    assert [e["clipped_steps"] for e in entries[1e9]] == [0, 0]
    assert all("clipped_steps" not in e for e in entries[None])
    assert entries[1e9][1]["train_loss"] == entries[None][1]["train_loss"]


def test_the_option_leaves_the_ids_of_runs_without_it_alone():
    assert RunConfig(clip_norm=None).run_id == RunConfig().run_id
    assert RunConfig(clip_norm=1.0).run_id != RunConfig().run_id
    with pytest.raises(ValueError, match=r"clip_norm must be a gradient norm in \(0, "):
        RunConfig(clip_norm=-1.0)
