"""Precise BatchNorm evaluation: exact statistics, an untouched training trajectory, both
reads in every record."""
from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd
from mxnet.gluon import nn

from gluon_resnet import train as engine
from gluon_resnet.config import RunConfig
from gluon_resnet.precise_bn import Twin, batchnorm_layers
from gluon_resnet.analysis.groups import has_precise, run_metrics
from gluon_resnet.store import RunStore

TINY = dict(arch="gluonbook", width=0.125, size=32, batch_size=50, epochs=2, lr=0.1,
            final_bn_relu=False, projection_input="relu")


def _state(net) -> list[np.ndarray]:
    """Every parameter, running statistics included, as numpy arrays."""
    return [p.data().asnumpy().copy() for p in net.collect_params().values()]


def test_training_trajectory_is_bitwise_the_same_with_precise_evaluation(small_data):
    """Weights and running statistics after each epoch are identical with and without the
    precise read: it only reads the training network."""
    states, entries = {}, {}
    for count in (0, 3):
        s = engine.build(RunConfig(**TINY, precise_bn_batches=count), small_data, [mx.cpu()])
        states[count], entries[count] = [], []
        for epoch in (1, 2):
            entries[count].append(engine.run_epoch(s, epoch))
            states[count].append(_state(s.net))
    for with_it, without in zip(states[3], states[0]):
        assert all(np.array_equal(a, b) for a, b in zip(with_it, without))
    for with_it, without in zip(entries[3], entries[0]):
        assert with_it["test_acc"] == without["test_acc"]
        assert with_it["test_loss"] == without["test_loss"]
        assert "precise_test_acc" in with_it and "precise_test_acc" not in without


def _single_bn():
    net = nn.HybridSequential()
    net.add(nn.BatchNorm(in_channels=3))
    return net


def test_statistics_are_the_exact_mean_of_the_batch_statistics():
    """The re-estimated mean and variance are the plain averages of each batch's (biased)
    statistics, whatever the running statistics held."""
    rng = np.random.default_rng(0)
    data = [rng.normal(loc=[[[1.0]], [[-2.0]], [[5.0]]], scale=k + 1, size=(8, 3, 4, 4))
            for k in range(5)]
    source = _single_bn()
    source.initialize(ctx=mx.cpu())
    sample = mx.np.array(data[0], dtype=np.float32)
    with autograd.predict_mode():
        source(sample)
    twin = Twin(_single_bn, source, sample, mx.cpu())
    batch_iter = ((mx.np.array(x, dtype=np.float32), None) for x in data)
    assert twin.estimate(batch_iter, count=4) == 4  # the fifth batch is left alone
    (layer,) = batchnorm_layers(twin.net)
    want_mean = np.mean([x.mean(axis=(0, 2, 3)) for x in data[:4]], axis=0)
    want_var = np.mean([x.var(axis=(0, 2, 3)) for x in data[:4]], axis=0)
    np.testing.assert_allclose(layer.running_mean.data().asnumpy(), want_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.data().asnumpy(), want_var, rtol=1e-5)
    (theirs,) = batchnorm_layers(source)
    assert np.array_equal(theirs.running_mean.data().asnumpy(), np.zeros(3))  # untouched


def test_twin_copies_the_current_weights_and_tests_like_the_network(small_data):
    """With the network's own running statistics written into the twin, the twin's test
    read equals the network's: the same weights, the same function."""
    s = engine.build(RunConfig(**TINY, precise_bn_batches=2), small_data, [mx.cpu()])
    engine.run_epoch(s, 1)
    s.twin.estimate(iter(()), 0)  # copies the weights, estimates nothing
    test = lambda: engine.batches(s.data.test_images, s.data.test_labels, 50, 32)  # noqa: E731
    ours = engine.evaluate(s.twin.net, test(), [mx.cpu()])
    theirs = engine.evaluate(s.net, test(), [mx.cpu()])
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_every_epoch_records_both_reads_and_the_metrics_follow(small_data, tmp_path):
    cfg = RunConfig(**TINY, precise_bn_batches=2)
    store = RunStore(tmp_path / "e" / "p")
    engine.train_run(cfg, store, small_data, progress=False, log=lambda _: None)
    record = store.load(cfg.run_id)
    assert record.status == "completed" and has_precise(record)
    for e in record.epochs:
        assert 0 <= e.precise_test_acc <= 1 and e.precise_test_loss > 0
        assert e.precise_seconds > 0
    m = run_metrics(record)
    assert m["final_precise_test_acc"] == record.last.precise_test_acc
    off_cfg, off_store = cfg.replace(precise_bn_batches=0), RunStore(tmp_path / "e" / "q")
    engine.train_run(off_cfg, off_store, small_data, progress=False, log=lambda _: None)
    off = off_store.load(off_cfg.run_id)
    assert not has_precise(off) and np.isnan(run_metrics(off)["final_precise_test_acc"])
    assert off.run_id != record.run_id


def test_a_negative_batch_count_is_refused():
    with pytest.raises(ValueError, match="precise_bn_batches must be >= 0"):
        RunConfig(precise_bn_batches=-1)
