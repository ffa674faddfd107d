"""experiments/step_trace.py: its steps are the run's steps (same losses as run_all.py's
epoch), and a usage mistake is one line."""
from __future__ import annotations

import mxnet as mx
import pytest

from experiments import step_trace
from gluon_resnet import train as engine
from gluon_resnet.config import RunConfig
from gluon_resnet.data import load_fashion_mnist

TINY = dict(arch="gluonbook", width=0.125, size=32, batch_size=64, epochs=2, lr=0.1,
            final_bn_relu=False, projection_input="relu", train_per_class=20,
            test_per_class=10, precise_bn_batches=0, warmup_steps=3, warmup="linear")


def test_the_traced_steps_are_the_runs_steps():
    cfg = RunConfig(**TINY)
    rows = list(step_trace.trace(cfg, [2]))
    assert [r["images"] for r in rows] == [64, 64, 64, 8]  # 200 images: a short last batch
    assert [r["step"] for r in rows] == [0, 1, 2, 3] and {r["epoch"] for r in rows} == {2}
    s = engine.build(cfg, load_fashion_mnist(), [mx.cpu()])
    engine.run_epoch(s, 1)
    entry = engine.run_epoch(s, 2)
    traced = sum(r["loss"] * r["images"] for r in rows) / 200
    assert traced == pytest.approx(entry["train_loss"], rel=1e-5)
    assert all(r["grad_norm"] > 0 and r["lr"] == pytest.approx(0.1) for r in rows)


@pytest.mark.parametrize("argv, says", [
    (["--epochs", "0"], "--epochs must lie in 1..15"),
    (["--epochs", "five"], "--epochs expects epochs such as 5,6"),
    (["--arch", "cifar99"], "no run of depth/quick has arch cifar99"),
    (["--set", "lr"], "--set expects FIELD=VALUE"),
])
def test_a_usage_mistake_is_one_line(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        step_trace.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
