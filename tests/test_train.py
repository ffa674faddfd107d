"""The training engine on real Fashion-MNIST with tiny networks: records, determinism,
resume after SIGKILL, divergence, failure, learning-rate schedules, several devices."""
from __future__ import annotations

import json
import math
import platform
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_resnet import checkpoint
from gluon_resnet import train as engine
from gluon_resnet.config import RunConfig
from gluon_resnet.data import to_batch
from gluon_resnet.diagnostics import CPU_ISAS, GradNorms, activation_stats
from gluon_resnet.nets import named_parts, resnet
from gluon_resnet.progress import EpochProgress, epoch_line
from gluon_resnet.records import Epoch, Run, new_record
from gluon_resnet.schedule import lr_schedule
from gluon_resnet.store import RunStore, read_record

import cli_process
from conftest import comparable

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(width=0.0625, size=32, batch_size=64, epochs=2)
def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def tiny_cfg() -> RunConfig:
    return RunConfig(**TINY, momentum=0.9, weight_decay=1e-4, schedule="step", lr_steps=(1,))


@pytest.fixture(scope="module")
def finished(tiny_cfg, small_data, tmp_path_factory):
    """One completed tiny run: (store, record, log lines)."""
    store = RunStore(tmp_path_factory.mktemp("store") / "t" / "p")  # <experiment>/<profile>
    lines: list[str] = []
    record = engine.train_run(tiny_cfg, store, small_data,
                              progress=False, log=lines.append)
    return store, record, lines


# ---------------------------------------------------------------- schedules


def test_lr_schedules_by_hand():
    base = dict(lr=0.1, epochs=4)
    assert lr_schedule(RunConfig(**base)) == [0.1] * 4
    step = lr_schedule(RunConfig(**base, schedule="step", lr_steps=(1, 3), lr_factor=0.5))
    assert step == pytest.approx([0.1, 0.05, 0.05, 0.025])
    # half cosine sampled at each epoch's start: cos(0), cos(pi/4), cos(pi/2), cos(3pi/4)
    cosine = lr_schedule(RunConfig(**base, schedule="cosine"))
    assert cosine == pytest.approx([0.1, 0.0853553, 0.05, 0.0146447], rel=1e-5)


# ---------------------------------------------------------------- the record


def test_record_follows_schema(finished, tiny_cfg):
    store, record, lines = finished
    assert read_record(store.record_path(tiny_cfg.run_id)) == record.to_dict()
    assert record.status == "completed" and record.error is None
    assert record.config == tiny_cfg and record.run_id == tiny_cfg.run_id
    assert (record.experiment, record.profile) == ("t", "p")
    assert record.finished and record.wall_seconds > 0
    env = record.environment
    for key in ("mxnet_version", "mxnet_build", "device", "device_name", "python",
                "platform", "git_commit", "threads", "cpu_count", "cpu_isa"):
        assert key in env
    assert env["cpu_isa"] in (*CPU_ISAS, "other", platform.machine())
    assert env["mxnet_version"] == mx.__version__ and env["device"] == "cpu"
    parts = [name for name, _ in named_parts(resnet(width=tiny_cfg.width))]
    assert [e.epoch for e in record.epochs] == [1, 2]
    for e in record.epochs:
        for key in ("grad_norm", "act_mean", "act_std"):
            assert list(e.value(key)) == parts
        assert all(v > 0 for v in e.grad_norm.values())
        assert all(v > 0 for v in e.act_std.values())
        assert 0 <= e.train_acc <= 1 and 0 <= e.test_acc <= 1
        assert e.seconds > 0 and e.images_per_sec > 0
    assert [e.lr for e in record.epochs] == pytest.approx([0.05, 0.005])
    json.dumps(record.to_dict(), allow_nan=False)  # strict JSON: no NaN anywhere
    assert len(lines) == 3 and "epoch 2/2" in lines[-1]
    assert lines[-1] == f"{record.run_id} epoch 2/2: {epoch_line(record.last.to_dict())}"


def test_progress_bar_and_its_epoch_line(capsys):
    """The terminal's bar goes to stderr and ends full; the log still gets the epoch's line,
    with 'nan' for a loss the record stores as null (a diverged epoch)."""
    entry = dict(train_loss=None, train_acc=0.1, test_loss=2.5, test_acc=0.25, lr=0.1,
                 images_per_sec=60.0, seconds=1.5)
    lines: list[str] = []
    with EpochProgress("r epoch 1/3", 100, True, lines.append) as bar:
        bar.update(40, 2.0, 0.2)
        assert bar.bar.n == 40
        bar.done(entry)
    assert lines == ["r epoch 1/3: train loss nan acc 0.1000 | test loss 2.5000 acc 0.2500"
                     " | lr 0.1 | 60.0 img/s | 1.5 s"]
    assert "100/100" in capsys.readouterr().err


def test_param_count_by_hand(finished, tiny_cfg):
    """d2l18 at width 1/16: 4-8-16-32 channels, counted from the layer shapes."""
    def conv(cin, cout, k):
        return cin * cout * k * k + cout

    def residual(cin, cout, project):
        shortcut = conv(cin, cout, 1) if project else 0
        return conv(cin, cout, 3) + conv(cout, cout, 3) + 4 * cout + shortcut

    stem = conv(1, 4, 7) + 2 * 4
    stages = [residual(4, 4, False) + residual(4, 4, False)]
    for cin, cout in ((4, 8), (8, 16), (16, 32)):
        stages.append(residual(cin, cout, True) + residual(cout, cout, False))
    head = 32 * 10 + 10
    assert finished[1].params == stem + sum(stages) + head


def test_final_checkpoint_reproduces_test_metrics(finished, tiny_cfg, small_data):
    """Reload the kept parameters into a fresh net; numpy cross-entropy = recorded test loss."""
    store, record, _ = finished
    kept = list(store.checkpoint_dir(tiny_cfg.run_id).iterdir())
    assert [p.name for p in kept] == ["epoch-002.params"]
    net = resnet(width=tiny_cfg.width)
    net.load_parameters(str(kept[0]))
    with autograd.predict_mode():
        logits = net(to_batch(small_data.test_images, tiny_cfg.size)).asnumpy().astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    labels = small_data.test_labels
    last = record.epochs[-1]
    nll = -log_p[np.arange(len(labels)), labels].mean()
    assert last.test_loss == pytest.approx(nll, rel=1e-4)
    assert last.test_acc == pytest.approx((logits.argmax(axis=1) == labels).mean())


def test_completed_run_is_returned_without_training(finished, tiny_cfg, small_data):
    """Proved by what a training would leave, not by a time: no line logged (a run that
    trains, resumes or restarts says so first) and its file not rewritten."""
    store, record, _ = finished
    path, lines = store.record_path(record.run_id), []
    before = path.stat()
    again = engine.train_run(tiny_cfg, store, small_data, progress=False, log=lines.append)
    after = path.stat()
    assert again == record and lines == []
    assert (after.st_mtime_ns, after.st_ino, after.st_size) == (
        before.st_mtime_ns, before.st_ino, before.st_size)


# ---------------------------------------------------------------- diagnostics


def test_grad_norms_match_numpy(small_data):
    net = resnet(width=0.0625)
    net.initialize()
    x = to_batch(small_data.train_images[:16], 32)
    y = mx.np.array(small_data.train_labels[:16])
    with autograd.record():
        loss = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    loss.backward()
    parts = named_parts(net)
    norms = GradNorms(parts, mx.cpu())
    norms.add(16)
    norms.add(16)  # mean of two equal steps = one step
    for name, part in parts:
        grads = [p.grad().asnumpy() for p in part.collect_params().values() if p.grad_req != "null"]
        expected = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)) / 16
        assert norms.means()[name] == pytest.approx(expected, rel=1e-5)


def test_head_statistics_are_the_whole_nets_output(small_data):
    net = resnet(width=0.0625)
    net.initialize()
    x = to_batch(small_data.test_images[:8], 32)
    means, stds = activation_stats(named_parts(net), x)
    out = net(x).asnumpy()
    assert means["head"] == pytest.approx(out.mean(), rel=1e-4, abs=1e-6)
    assert stds["head"] == pytest.approx(out.std(), rel=1e-4)


# ---------------------------------------------------------------- determinism and resume


def test_same_config_and_seed_give_the_same_record(finished, tiny_cfg, small_data, tmp_path):
    again = engine.train_run(tiny_cfg, RunStore(tmp_path), small_data, progress=False, log=quiet)
    assert comparable(again) == comparable(finished[1])


def test_another_seed_gives_another_record(finished, tiny_cfg, small_data, tmp_path):
    other = engine.train_run(tiny_cfg.replace(seed=1, epochs=1), RunStore(tmp_path), small_data,
                             progress=False, log=quiet)
    assert other.epochs[0].train_loss != finished[1].epochs[0].train_loss


RUNNER_SUBSET = (100, 10)  # per class: 1000 training images, 20 steps of 50 per epoch
RUNNER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from gluon_resnet.config import RunConfig
    from gluon_resnet.data import load_fashion_mnist
    from gluon_resnet.store import RunStore
    from gluon_resnet.train import train_run
    cfg = RunConfig.from_dict(json.loads(sys.argv[2]))
    record = train_run(cfg, RunStore(sys.argv[1]), load_fashion_mnist().subset({subset}),
                       progress=False)
    print("STATUS", record.status, record.error)
""")


def _runner(tmp_path: Path, store: Path, cfg: RunConfig):
    """RUNNER in a process of its own (forked: tests/cli_process.py), output and errors in one
    pipe."""
    script = tmp_path / "runner.py"
    script.write_text(RUNNER.format(root=str(ROOT), subset=", ".join(map(str, RUNNER_SUBSET))))
    return cli_process.popen([str(store), json.dumps(cfg.to_dict())], script=str(script),
                             merge_stderr=True)


def _epochs_on_disk(store: RunStore, run_id: str) -> int:
    try:
        record = store.load(run_id)
    except Exception:  # noqa: BLE001 - never half-written, but be safe while polling
        return 0
    return len(record.epochs) if record else 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(fashion_mnist, tmp_path):
    cfg = RunConfig(width=0.0625, size=32, batch_size=50, epochs=4, momentum=0.9)
    killed = RunStore(tmp_path / "killed")
    proc = _runner(tmp_path, killed.root, cfg)
    deadline = time.time() + 120
    while _epochs_on_disk(killed, cfg.run_id) < 1:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no epoch finished within 120 s"
        time.sleep(0.02)
    time.sleep(0.05)  # into epoch 2 (an epoch of 20 steps takes longer, even on an idle CPU)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = killed.load(cfg.run_id)
    assert interrupted.status == "running" and 1 <= len(interrupted.epochs) < cfg.epochs
    meta = checkpoint.load_meta(killed.checkpoint_dir(cfg.run_id))
    assert meta is not None and meta["epoch"] >= len(interrupted.epochs)

    out, _ = _runner(tmp_path, killed.root, cfg).communicate(timeout=300)
    assert "STATUS completed" in out and "resuming after epoch" in out, out
    final = killed.load(cfg.run_id)
    assert final.started == interrupted.started  # resumed, not restarted
    # The uninterrupted run, in this process: same thread count (the children inherit
    # OMP_NUM_THREADS), and records do not depend on the process.
    reference = engine.train_run(cfg, RunStore(tmp_path / "reference"),
                                 fashion_mnist.subset(*RUNNER_SUBSET), progress=False, log=quiet)
    assert comparable(final) == comparable(reference)


def test_checkpoint_may_be_one_epoch_ahead_of_the_record(tiny_cfg):
    def epoch(i: int, acc: float) -> dict:
        return {"epoch": i, "train_loss": 1.0, "train_acc": acc, "test_loss": 1.0,
                "test_acc": acc, "lr": 0.1, "seconds": 1.0, "images_per_sec": 1.0}

    def on_disk(entries: list[dict]) -> Run:
        return new_record(tiny_cfg, "e", "p", {}).replace(
            epochs=tuple(Epoch.from_dict(e) for e in entries))

    epochs = [epoch(1, 0.5), epoch(2, 0.25)]
    meta = {"record": {"config": tiny_cfg.to_dict(), "epochs": epochs}}
    assert checkpoint.usable(meta, tiny_cfg, on_disk(epochs))
    assert checkpoint.usable(meta, tiny_cfg, on_disk(epochs[:1]))
    assert checkpoint.usable({"record": {"config": tiny_cfg.to_dict(), "epochs": epochs[:1]}},
                             tiny_cfg, on_disk(epochs))  # a run that failed while checkpointing
    assert not checkpoint.usable(meta, tiny_cfg, on_disk([]))  # two behind: inconsistent
    assert not checkpoint.usable(meta, tiny_cfg, on_disk([epoch(1, 0.7)]))
    assert not checkpoint.usable(meta, tiny_cfg.replace(seed=1), on_disk(epochs))


# ---------------------------------------------------------------- divergence and failure


def test_huge_learning_rate_diverges_and_the_suite_carries_on(small_data, tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig(**{**TINY, "epochs": 3}, lr=1e6, momentum=0.9)
    record = engine.train_run(cfg, store, small_data, progress=False, log=quiet)
    assert record.status == "diverged" and store.load(cfg.run_id) == record
    assert record.epochs[-1].train_loss is None
    json.dumps(record.to_dict(), allow_nan=False)
    assert not store.checkpoint_dir(cfg.run_id).exists()
    after = engine.train_run(cfg.replace(lr=0.05, epochs=1), store, small_data,
                             progress=False, log=quiet)
    assert after.status == "completed"


def test_exception_is_recorded_as_failed(small_data, tmp_path):
    store = RunStore(tmp_path)
    cfg = RunConfig(**TINY, train_per_class=50)  # small_data holds 20 per class
    record = engine.train_run(cfg, store, small_data, progress=False, log=quiet)
    assert record.status == "failed" and "per_class" in record.error
    assert store.load(cfg.run_id) == record


def test_keyboard_interrupt_is_recorded_raised_and_resumed(finished, tiny_cfg, small_data,
                                                           tmp_path, monkeypatch):
    real_run_epoch = engine.run_epoch

    def interrupted_in_epoch_2(s, epoch, *args):
        if epoch == 2:
            raise KeyboardInterrupt
        return real_run_epoch(s, epoch, *args)

    store = RunStore(tmp_path)
    monkeypatch.setattr(engine, "run_epoch", interrupted_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        engine.train_run(tiny_cfg, store, small_data,
                         progress=False, log=quiet)
    stopped = store.load(tiny_cfg.run_id)
    assert stopped.status == "interrupted" and len(stopped.epochs) == 1
    monkeypatch.undo()
    lines: list[str] = []
    resumed = engine.train_run(tiny_cfg, store, small_data,
                               progress=False, log=lines.append)
    assert "resuming after epoch 1" in lines[0] and resumed.started == stopped.started
    assert comparable(resumed) == comparable(finished[1])


def test_mixed_precision_needs_a_gpu(small_data, tmp_path):
    record = engine.train_run(RunConfig(**TINY), RunStore(tmp_path), small_data, amp=True,
                              progress=False, log=quiet)
    assert record.status == "failed" and "needs GPUs" in record.error


# ---------------------------------------------------------------- devices


def test_contexts_fall_back_to_the_cpu():
    """True on a machine with or without GPUs: every GPU MXNet sees, else the CPU; a GPU id
    one past the last is refused."""
    n = mx.context.num_gpus()
    assert engine.contexts() == ([mx.gpu(i) for i in range(n)] or [mx.cpu()])
    with pytest.raises(ValueError, match=f"not available: MXNet sees {n} GPU"):
        engine.contexts([n])


def test_data_parallel_over_two_contexts(small_data, tmp_path):
    """The --gpus code path (split_and_load, kvstore) on two CPU contexts; batch 199 of 200
    images leaves one image for the last step, so one device idles there."""
    cfg = RunConfig(**{**TINY, "batch_size": 199}, momentum=0.9)
    ctx = [mx.cpu(0), mx.cpu(1)]
    record = engine.train_run(cfg, RunStore(tmp_path), small_data, ctx=ctx, progress=False,
                              log=quiet)
    assert record.status == "completed", record.traceback
    assert record.environment["contexts"] == ["cpu(0)", "cpu(1)"]
    for e in record.epochs:
        assert math.isfinite(e.train_loss) and 0 <= e.test_acc <= 1
        assert all(v > 0 for v in e.grad_norm.values())


def test_data_parallel_step_equals_its_shards_on_one_device(small_data):
    """One step over two contexts updates the weights exactly as the same two shards (each
    with its own BatchNorm statistics) summed on one device, divided by the global batch:
    a step that divided by the shard size instead would double every update."""
    cfg = RunConfig(**TINY, momentum=0.9)
    two = engine.build(cfg, small_data, [mx.cpu(0), mx.cpu(1)])
    one = engine.build(cfg, small_data, [mx.cpu(0)])
    X, y = next(iter(engine.train_batches(two, 1)))
    before = {k: p.data(mx.cpu(0)).asnumpy() for k, p in one.net.collect_params().items()}
    engine.train_step(two, X, y)
    with autograd.record():
        losses = [one.loss(one.net(x.as_in_ctx(mx.cpu(0))), t.as_in_ctx(mx.cpu(0)))
                  for x, t in zip(gluon.utils.split_data(X, 2, even_split=False),
                                  gluon.utils.split_data(y, 2, even_split=False))]
    autograd.backward(losses)
    one.trainer.step(X.shape[0])
    moved = 0
    for (k, p), q in zip(one.net.collect_params().items(), two.net.collect_params().values()):
        if p.grad_req == "null":  # BN running statistics: per device, not synchronised
            continue
        ours = p.data(mx.cpu(0)).asnumpy()
        for copy in q.list_data():  # every device holds the same updated weights
            np.testing.assert_allclose(copy.asnumpy(), ours, rtol=1e-4, atol=1e-6, err_msg=k)
        moved += not np.allclose(ours, before[k])
    assert moved > 10  # the step changed the weights


# ---------------------------------------------------------------- benchmark arithmetic


def test_flop_count_matches_the_d2l_networks_layers():
    """The FLOPs bench and --list use (estimate.forward_flops, our d2l18) against FLOPs read
    off the d2l book's own network."""
    from gluon_resnet.tools.bench import d2l_resnet18
    from gluon_resnet.runs.estimate import forward_flops

    counted = _flops_of_a_forward_pass(d2l_resnet18(), 96)
    assert len(counted) == 1 + 8 * 2 + 3 + 1  # stem, 16 block convs, 3 projections, dense
    assert forward_flops("d2l18", "conv_bn_relu", 1.0, 96) == sum(counted)


@pytest.mark.parametrize("arch,ordering,width,size,final", [
    ("cifar20", "bn_relu_conv", 0.5, 28, None),          # basic blocks, stride-2 projections
    ("resnet50", "relu_preact", 0.0625, 64, None),       # bottlenecks
    ("gluonbook", "conv_bn_relu", 0.25, 96, False),      # the notebook's net, no final BN-ReLU
    ("d2l18", "bn_after_add", 0.125, 96, True)])
def test_flop_count_is_a_forward_pass_with_hooks(arch, ordering, width, size, final):
    """forward_flops reads the symbolic graph: it must count what a real forward pass of the
    same network computes, layer by layer."""
    from gluon_resnet.nets import resnet
    from gluon_resnet.runs.estimate import forward_flops

    counted = _flops_of_a_forward_pass(resnet(arch, ordering, width=width, final_bn_relu=final),
                                       size)
    assert len(counted) > 10 and forward_flops(arch, ordering, width, size, final) == sum(counted)


def _flops_of_a_forward_pass(net, size: int) -> list[int]:
    """Each convolution's and dense layer's FLOPs (2 per multiply-add) as one image of
    size x size passes through net, read by forward hooks."""
    from mxnet.gluon import nn

    net.initialize()
    counted = []

    def hook(block, inputs, output):
        w = block.weight.data()
        per_output = 2 * int(np.prod(w.shape[1:]))  # multiply-adds per output value, x2
        counted.append(per_output * int(np.prod(output.shape[1:])))

    for block in _leaves(net):
        if isinstance(block, (nn.Conv2D, nn.Dense)):
            block.register_forward_hook(hook)
    net(mx.np.zeros((1, 1, size, size)))
    return counted


def _leaves(block):
    children = list(block._children.values())
    return [block] if not children else [leaf for c in children for leaf in _leaves(c)]


def test_same_seed_pairs_runs_same_initial_weights_across_orderings(small_data):
    """The paired design's premise: runs with one seed start from the same weights wherever
    a parameter of the same name has the same shape (BN parameters whose width differs in
    bn_relu_conv, and the final BN of pre-activation nets, start at constants anyway)."""
    def weights(**changes):
        s = engine.build(RunConfig(**TINY, **changes), small_data, [mx.cpu()])
        return {k[len(s.net.prefix):]: p.data().asnumpy()
                for k, p in s.net.collect_params().items()}

    base = weights(ordering="conv_bn_relu", seed=3)
    convs = [k for k in base if k.endswith("weight") and "conv" in k]
    assert len(convs) > 10
    for ordering, final in [("bn_after_add", None), ("relu_before_add", None),
                            ("relu_preact", None), ("bn_relu_conv", None),
                            ("bn_relu_conv", False), ("conv_bn_relu", True)]:
        other = weights(ordering=ordering, seed=3, final_bn_relu=final)
        shared = [k for k in other if k in base and other[k].shape == base[k].shape]
        assert set(convs) <= set(shared) and base.keys() - set(shared) <= {
            k for k in base if "bn" in k or "batchnorm" in k}
        for k in shared:
            assert np.array_equal(other[k], base[k]), (ordering, final, k)
    other_seed = weights(ordering="conv_bn_relu", seed=4)
    assert not np.array_equal(other_seed[convs[0]], base[convs[0]])


def test_warm_up_steps_use_the_warm_up_rate_then_the_epochs():
    from gluon_resnet.schedule import step_lr

    cfg = RunConfig(lr=0.1, epochs=3, warmup_steps=5, warmup_lr=0.01)
    rates = [step_lr(cfg, e, i, 4) for e in (1, 2, 3) for i in range(4)]
    assert rates == [0.01] * 5 + [0.1] * 7
    assert step_lr(RunConfig(lr=0.1, epochs=3), 1, 0, 4) == 0.1


def test_linear_warm_up_rises_from_the_warm_up_rate_to_the_epochs():
    """Goyal et al.'s gradual warm-up: step k of n at warmup_lr + (lr - warmup_lr) k / n."""
    from gluon_resnet.schedule import step_lr

    cfg = RunConfig(lr=0.1, epochs=3, warmup_steps=5, warmup_lr=0.01, warmup="linear")
    rates = [step_lr(cfg, e, i, 4) for e in (1, 2, 3) for i in range(4)]
    assert rates[:5] == pytest.approx([0.01 + 0.09 * k / 5 for k in range(5)])
    assert rates[5:] == [0.1] * 7
    with pytest.raises(ValueError, match="unknown warmup 'ramp'; valid warmups: constant"):
        RunConfig(warmup="ramp")


def test_warm_up_until_the_training_error_falls_below_he_et_als_threshold():
    """He et al.'s rule: whole epochs at warmup_lr until one ends with a training error
    below warmup_until_error, decided from the accuracies recorded so far."""
    from gluon_resnet.schedule import step_lr, warming_up

    cfg = RunConfig(lr=0.1, epochs=4, warmup_until_error=0.8)
    assert warming_up(cfg, [])                      # the first epoch always warms up
    assert warming_up(cfg, [0.10, 0.15])            # 90 % and 85 % error: still above 80 %
    assert not warming_up(cfg, [0.10, 0.25])        # 75 %: warm-up over
    assert not warming_up(cfg, [0.25, 0.10])        # and it stays over
    assert not warming_up(RunConfig(lr=0.1), [])    # no rule set: no warm-up epochs
    assert step_lr(cfg, 2, 3, 4, warming=True) == 0.01 and step_lr(cfg, 2, 3, 4) == 0.1
    with pytest.raises(ValueError, match="warmup_until_error must be a training error"):
        RunConfig(warmup_until_error=80)


def test_warm_up_epochs_follow_the_recorded_training_error(small_data, tmp_path):
    """An unreachable threshold keeps every epoch at the warm-up rate; an easy one ends the
    warm-up after the first epoch. The record's lr shows which rate each epoch used."""
    def lrs(until_error: float, folder: str) -> list[float]:
        cfg = RunConfig(**{**TINY, "epochs": 3}, lr=0.2, warmup_lr=0.01,
                        warmup_until_error=until_error)
        record = engine.train_run(cfg, RunStore(tmp_path / folder / "p"), small_data,
                                  progress=False, log=quiet)
        assert record.status == "completed"
        return [e.lr for e in record.epochs]

    assert lrs(0.01, "never") == [0.01, 0.01, 0.01]
    assert lrs(0.999, "easy") == [0.01, 0.2, 0.2]


def test_warm_up_changes_the_run_and_resumes_the_same(small_data, tmp_path):
    """A warm-up over the first steps changes what the run trains to; it is a function of
    (epoch, step), so an interrupted run replays it."""
    cfg = RunConfig(**TINY, lr=0.5, warmup_steps=3, warmup_lr=0.001)
    warm = engine.train_run(cfg, RunStore(tmp_path / "a" / "p"), small_data, progress=False,
                            log=quiet)
    cold = engine.train_run(cfg.replace(warmup_steps=0), RunStore(tmp_path / "b" / "p"),
                            small_data, progress=False, log=quiet)
    assert warm.status == "completed"
    assert warm.epochs[0].train_loss != cold.epochs[0].train_loss
    again = engine.train_run(cfg, RunStore(tmp_path / "c" / "p"), small_data, progress=False,
                             log=quiet)
    assert comparable(again) == comparable(warm)


def test_new_fields_at_their_defaults_keep_the_committed_run_ids():
    """Runs committed before projection_input and the warm-up existed keep their ids (and so
    stay valid) until their config really changes."""
    import glob

    root = Path(__file__).resolve().parents[1]
    paths = glob.glob(str(root / "results" / "*" / "*" / "runs" / "*.json"))
    assert paths
    from gluon_resnet.config import ID_DEFAULTS

    assert set(ID_DEFAULTS) == {"projection_input", "warmup_steps", "warmup_lr",
                                "warmup_until_error", "shortcut", "precise_bn_batches",
                                "warmup", "clip_norm"}
    for path in paths:
        record = json.loads(Path(path).read_text())
        # as an older version wrote it: without the later fields that sit at their defaults
        old = {k: v for k, v in record["config"].items()
               if not (k in ID_DEFAULTS and v == ID_DEFAULTS[k])}
        assert RunConfig.from_dict(old).run_id == record["run_id"] == Path(path).stem
    base = RunConfig()
    assert base.replace(warmup_steps=400).run_id != base.run_id
    assert base.replace(warmup_until_error=0.8).run_id != base.run_id
    assert base.replace(projection_input="relu").run_id != base.run_id
    assert base.replace(shortcut="zero_pad").run_id != base.run_id
    assert base.replace(precise_bn_batches=0).run_id != base.run_id
    assert base.replace(warmup="linear").run_id != base.run_id
    assert base.replace(clip_norm=1.0).run_id != base.run_id


def test_commit_is_dirty_for_changed_code_not_for_changed_results(tmp_path):
    """Rounds of --until-decided rewrite results/*/report.md in the checkout; that must not
    mark later runs -dirty, while an edit to tracked code must."""
    from gluon_resnet.diagnostics import _git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c",
                        "user.email=t@t", *args], check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "report.md").write_text("before\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    clean = _git_commit(tmp_path)
    assert clean and len(clean) == 40
    (tmp_path / "results" / "report.md").write_text("after a round\n")
    (tmp_path / "untracked.txt").write_text("notes\n")
    assert _git_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert _git_commit(tmp_path) == clean + "-dirty"


@pytest.mark.parametrize("dnnl, mkldnn", [("AVX", ""), ("SSE41", ""), ("", "AVX"),
                                          ("AVX512_CORE", "SSE41"), ("ALL", "")])
def test_cpu_isa_names_the_instructions_onednn_runs_with(monkeypatch, dnnl, mkldnn):
    """Under a oneDNN cap (issue 41) a record names the capped set, the narrower of the two
    variables and the CPU's own widest; no cap, or ALL, leaves the CPU's."""
    from gluon_resnet import diagnostics

    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("MKLDNN_MAX_CPU_ISA", raising=False)
    offered = diagnostics._cpu_isa()
    if offered not in CPU_ISAS[:3]:
        pytest.skip(f"this CPU offers {offered}: no cap narrows it the same way")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", dnnl)
    monkeypatch.setenv("MKLDNN_MAX_CPU_ISA", mkldnn)
    caps = [isa for isa in (diagnostics._isa_cap(dnnl), diagnostics._isa_cap(mkldnn)) if isa]
    want = max([offered, *caps], key=CPU_ISAS.index)
    assert diagnostics._cpu_isa() == want
    assert want == {("AVX", ""): "avx", ("SSE41", ""): "sse4_1", ("", "AVX"): "avx",
                    ("AVX512_CORE", "SSE41"): "sse4_1", ("ALL", ""): offered}[dnnl, mkldnn]
