"""Train one run: deterministic on the CPU, resumable after any kill, one JSON record per run.

The record (records.py) is rewritten after every epoch, next to a checkpoint of the
parameters and trainer state in store.checkpoint_dir(run_id) (checkpoint.py). Devices and
mixed precision are devices.py's.
"""
from __future__ import annotations

import errno
import math
import random
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Union

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet import init as initializers

from . import checkpoint, devices, records
from .clipping import GradClip
from .config import RunConfig
from .data import FashionMNIST, batches, to_batch
from .devices import contexts
from .diagnostics import GradNorms, activation_stats, environment, finite
from .nets import count_params, named_parts, resnet
from .precise_bn import Twin
from .progress import EpochProgress
from .records import Run
from .schedule import lr_at, step_lr, warming_up
from .store import RunStore

__all__ = ["seed_everything", "contexts", "environment", "evaluate", "build", "train_batches",
           "train_step", "train_epoch", "run_epoch", "train_run"]

PROBE_IMAGES = 64  # fixed test images on which activation statistics are taken
# Errors of the results folder's storage: no use marking the run failed (the write would
# fail too); run_all.py says what to do.
STORAGE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
Ctx = Union[mx.Context, list]
Batches = Iterator[tuple[mx.np.ndarray, mx.np.ndarray]]  # (images, labels)


def seed_everything(seed: int) -> None:
    """Seed MXNet (every device), numpy's global RNG and Python's `random`."""
    mx.random.seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """Reseeding from (seed, epoch) at each epoch makes a resumed run replay exactly."""
    return (seed * 1_000_003 + epoch) % 2**31


@dataclass
class Session:
    """What every epoch of one run shares."""

    cfg: RunConfig
    ctx: list
    net: gluon.HybridBlock
    parts: list
    trainer: gluon.Trainer
    loss: gluon.loss.Loss
    grads: GradNorms
    data: FashionMNIST  # already the run's subset
    probe: mx.np.ndarray
    amp: bool = False
    twin: Optional[Twin] = None  # precise BatchNorm evaluation (cfg.precise_bn_batches > 0)
    clip: Optional[GradClip] = None  # gradient clipping (cfg.clip_norm)


def build(cfg: RunConfig, data: FashionMNIST, ctx: list, amp: bool = False) -> Session:
    """Seeded network (shapes known, hybridized), trainer, loss, probe batch."""
    seed_everything(cfg.seed)
    if amp:
        devices.amp_init(ctx)
    net = _network(cfg)
    net.initialize(_initializer(cfg.init), ctx=ctx)
    data = data.subset(cfg.train_per_class, cfg.test_per_class)
    probe = to_batch(data.test_images[:PROBE_IMAGES], cfg.size, ctx[0])
    with autograd.predict_mode():
        net(probe[:1])  # infers the deferred shapes: every weight is drawn here, from the seed
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(
        net.collect_params(), "sgd",
        {"learning_rate": cfg.lr, "momentum": cfg.momentum, "wd": cfg.weight_decay},
        # Several devices: the kvstore sums gradients into every device's copy, so the
        # gradient norms read on device 0 are the whole batch's.
        kvstore="device", update_on_kvstore=False)
    if amp:
        devices.amp_trainer(trainer)
    parts = named_parts(net)
    twin = Twin(lambda: _network(cfg), net, probe, ctx[0]) if cfg.precise_bn_batches else None
    grads = GradNorms(parts, ctx[0])
    clip = GradClip(grads.params, ctx[0], cfg.clip_norm) if cfg.clip_norm else None
    return Session(cfg, ctx, net, parts, trainer, gluon.loss.SoftmaxCrossEntropyLoss(),
                   grads, data, probe, amp, twin, clip)


def _network(cfg: RunConfig) -> gluon.HybridBlock:
    return resnet(cfg.arch, cfg.ordering, width=cfg.width, final_bn_relu=cfg.final_bn_relu,
                  projection_input=cfg.projection_input, shortcut=cfg.shortcut)


def _initializer(name: str) -> initializers.Initializer:
    if name == "msra":  # He et al. 2015: N(0, 2 / fan_in), for ReLU nets
        return initializers.MSRAPrelu(factor_type="in", slope=0.0)
    return initializers.Xavier()  # d2l's default (uniform, fan average, magnitude 3)


def train_step(s: Session, X: mx.np.ndarray, y: mx.np.ndarray) -> tuple:
    """One optimiser step on the batch (X, y) at the trainer's current rate: the batch's summed
    loss and correct count, as arrays on the first device (not yet synchronised)."""
    xs, ys, used = devices.split(X, y, s.ctx)
    with autograd.record():
        outs = [s.net(x) for x in xs]
        losses = [s.loss(o, t) for o, t in zip(outs, ys)]
    scale = devices.backward(losses, s.trainer, s.amp)
    devices.zero_idle_grads(s.grads.params, len(used), s.ctx)
    if s.clip is None:
        s.trainer.step(X.shape[0])
    else:  # step() split in two, to clip the summed gradients before the update
        s.trainer.allreduce_grads()
        s.clip(X.shape[0] * scale)
        s.trainer.update(X.shape[0])
    s.grads.add(X.shape[0] * scale)
    with autograd.pause():
        return devices.shard_sums(losses, outs, ys, s.ctx[0])


@dataclass
class TrainStats:
    loss: float
    acc: float
    images: int
    seconds: float


OnBatch = Callable[[int, float, float], None]  # (images so far, mean loss, accuracy)


def train_batches(s: Session, epoch: int) -> Batches:
    """The run's training batches of `epoch`: order and augmentation from (seed, epoch)."""
    cfg = s.cfg
    return batches(s.data.train_images, s.data.train_labels, cfg.batch_size, cfg.size,
                   ctx=devices.batch_ctx(s.ctx), seed=cfg.seed, epoch=epoch, augment=cfg.augment)


def train_epoch(s: Session, batch_iter: Iterable, on_batch: Optional[OnBatch] = None
                ) -> TrainStats:
    """One training pass over batch_iter; stops early once the loss is NaN/inf."""
    start = time.perf_counter()
    s.grads.reset()
    if s.clip is not None:
        s.clip.reset()
    total = correct = pending = None
    n = 0
    for X, y in batch_iter:
        t, c = train_step(s, X, y)
        total, correct = (t, c) if total is None else (total + t, correct + c)
        if pending is not None:
            # Waiting for the previous step (not this one) keeps one step queued while
            # Python prepares the next batch, and bounds memory.
            loss_so_far = pending[0].item()
            if not math.isfinite(loss_so_far):
                break
            if on_batch is not None:
                on_batch(pending[2], loss_so_far / pending[2], pending[1].item() / pending[2])
        n += X.shape[0]
        pending = (total, correct, n)
    loss_sum, n_correct = total.item(), correct.item()
    return TrainStats(loss_sum / n, n_correct / n, n, time.perf_counter() - start)


def _warmed_up(s: Session, epoch: int, batch_iter: Iterable) -> Iterator:
    """The batches, each after setting its step's learning rate (warm-up, then the epoch's)."""
    steps = math.ceil(len(s.data.train_labels) / s.cfg.batch_size)
    for i, batch in enumerate(batch_iter):
        s.trainer.set_learning_rate(step_lr(s.cfg, epoch, i, steps))
        yield batch


def evaluate(net: gluon.Block, batch_iter: Iterable, ctx: Ctx) -> tuple[float, float]:
    """(mean loss, accuracy) of net on the batches, in inference mode (NaN if diverged)."""
    ctx = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    total = correct = pending = None
    n = 0
    with autograd.predict_mode():
        for X, y in batch_iter:
            xs, ys, _ = devices.split(X, y, list(ctx))
            outs = [net(x) for x in xs]
            losses = [loss(o, target) for o, target in zip(outs, ys)]
            t, c = devices.shard_sums(losses, outs, ys, ctx[0])
            total, correct = (t, c) if total is None else (total + t, correct + c)
            n += X.shape[0]
            if pending is not None:
                pending.wait_to_read()
            pending = total
    return total.item() / n, correct.item() / n


def test_batches(s: Session, ctx: mx.Context) -> Batches:
    """The run's test set in its original order, as batches made on ctx."""
    cfg = s.cfg
    return batches(s.data.test_images, s.data.test_labels, cfg.batch_size, cfg.size, ctx=ctx)


def estimate_batches(s: Session) -> Batches:
    """Training batches to re-estimate BatchNorm statistics from: epoch 0 is never trained,
    so its order and augmentation are a fixed stream of the seed and every epoch
    re-estimates from the same images."""
    cfg = s.cfg
    return batches(s.data.train_images, s.data.train_labels, cfg.batch_size, cfg.size,
                   ctx=s.twin.ctx, seed=cfg.seed, epoch=0, augment=cfg.augment)


def precise_evaluate(s: Session) -> tuple[float, float]:
    """(mean loss, accuracy) on the test set with BatchNorm statistics re-estimated from
    cfg.precise_bn_batches fixed training batches at the current weights (precise_bn.py)."""
    s.twin.estimate(estimate_batches(s), s.cfg.precise_bn_batches)
    return evaluate(s.twin.net, test_batches(s, s.twin.ctx), [s.twin.ctx])


def run_epoch(s: Session, epoch: int, on_batch: Optional[OnBatch] = None,
              warming: bool = False) -> dict:
    """Train one epoch, evaluate, take diagnostics: the epoch's entry of the record.
    `warming`: the whole epoch at the warm-up rate (schedule.warming_up)."""
    cfg, start = s.cfg, time.perf_counter()
    seed_everything(epoch_seed(cfg.seed, epoch))
    lr = cfg.warmup_lr if warming else lr_at(cfg, epoch)
    s.trainer.set_learning_rate(lr)
    batch_iter = train_batches(s, epoch)
    if cfg.warmup_steps and not warming:
        batch_iter = _warmed_up(s, epoch, batch_iter)
    tr = train_epoch(s, batch_iter, on_batch)
    test_loss, test_acc = evaluate(s.net, test_batches(s, devices.batch_ctx(s.ctx)), s.ctx)
    precise = {}
    if s.twin is not None:
        precise_start = time.perf_counter()
        loss, acc = precise_evaluate(s)
        precise = {"precise_test_loss": finite(loss), "precise_test_acc": acc,
                   "precise_seconds": time.perf_counter() - precise_start}
    act_mean, act_std = activation_stats(s.parts, s.probe)
    return {"epoch": epoch, "train_loss": finite(tr.loss), "train_acc": tr.acc,
            "test_loss": finite(test_loss), "test_acc": test_acc, "lr": lr,
            "seconds": time.perf_counter() - start, "images_per_sec": tr.images / tr.seconds,
            "train_seconds": tr.seconds, **precise,
            **({"clipped_steps": s.clip.clipped_steps()} if s.clip is not None else {}),
            "grad_norm": s.grads.means(), "act_mean": act_mean, "act_std": act_std}


def train_run(cfg: RunConfig, store: RunStore, data: FashionMNIST, *,
              ctx: Optional[Ctx] = None, progress: bool = True,
              log: Callable[[str], None] = print, amp: bool = False) -> Run:
    """Train (or resume, or skip when finished) one run; always returns its record."""
    existing = store.load(cfg.run_id)
    if records.is_done(existing):
        return existing
    ctx = [ctx] if isinstance(ctx, mx.Context) else list(ctx) if ctx else contexts()
    record = records.new_record(cfg, store.experiment, store.profile,
                                {**environment(ctx), "amp": amp, "data_dir": str(data.data_dir)})

    def keep(latest: Run) -> None:  # what a stop records: the record as far as it got
        nonlocal record
        record = latest

    clock = time.perf_counter()
    try:
        s = build(cfg, data, ctx, amp)
        record = record.replace(params=count_params(s.net))
        try:
            base_wall, record = checkpoint.resume(s.net, s.trainer, store, record, existing, log)
        except checkpoint.Unreadable as e:  # e.g. truncated: its weights may be half-loaded
            log(f"{cfg.run_id}: {e}; starting again from epoch 1")
            checkpoint.discard(store, cfg.run_id)
            s, base_wall = build(cfg, data, ctx, amp), 0.0
        log(_start_line(s, record))
        wall = lambda: base_wall + time.perf_counter() - clock  # noqa: E731
        _train_epochs(s, store, record, keep, progress, log, wall)
    except KeyboardInterrupt:
        store.write(records.stopped(record, existing, "interrupted",
                                    "interrupted (Ctrl-C or stopped): resumes on the next call"))
        raise
    except OSError as e:
        if e.errno in STORAGE_ERRORS:  # the disk, not the run: the caller says what to do
            raise
        record = records.stopped(record, existing, "failed", f"{type(e).__name__}: {e}",
                                 traceback.format_exc())
        store.write(record)
    except Exception as e:  # noqa: BLE001 - the suite records the failure and carries on
        record = records.stopped(record, existing, "failed", f"{type(e).__name__}: {e}",
                                 traceback.format_exc())
        store.write(record)
    return record


def _train_epochs(s: Session, store: RunStore, record: Run, keep: Callable[[Run], None],
                  progress: bool, log: Callable[[str], None], wall: Callable[[], float]) -> None:
    """Train the epochs the record lacks, writing it after each; `keep` is told every record
    the run reaches (what a stop writes)."""
    keep(record)
    for epoch in range(len(record.epochs) + 1, s.cfg.epochs + 1):
        head = f"{s.cfg.run_id} epoch {epoch}/{s.cfg.epochs}"
        with EpochProgress(head, len(s.data.train_labels), progress and sys.stderr.isatty(),
                           log) as bar:
            warming = warming_up(s.cfg, record.series("train_acc"))
            entry = run_epoch(s, epoch, bar.update, warming)
            bar.done(entry)
        # The record claims the epoch only once its checkpoint is committed: a stop while
        # checkpointing (Ctrl-C right after the epoch line) leaves it at the last checkpoint,
        # from which the next call resumes, never one epoch ahead of it.
        claimed = records.add_epoch(record, entry, wall())
        if claimed.status != "diverged":  # a diverged run ends here: nothing to resume
            checkpoint.save(s.net, s.trainer, store, claimed)
        record = claimed
        keep(record)
        if record.status == "diverged":
            break
        store.write(record)
    record = records.finish(record, wall())
    keep(record)
    store.write(record)
    checkpoint.finish(store, record)


def _start_line(s: Session, record: Run) -> str:
    env, cfg = record.environment, s.cfg
    done = len(record.epochs)
    resumed = f", resuming after epoch {done}" if done else ""
    return (f"{cfg.run_id}: {record.params:,} parameters, {len(s.data.train_labels)} train / "
            f"{len(s.data.test_labels)} test images at {cfg.size} px on "
            f"{', '.join(env['contexts'])} ({env['device_name']}, {env['threads']} threads)"
            f"{resumed}")
