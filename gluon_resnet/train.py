"""Train one run: deterministic on the CPU, resumable after any kill, one JSON record per run.

The record (schema in store.py / the team contract) is rewritten after every epoch, next to
a checkpoint of the parameters and trainer state in store.checkpoint_dir(run_id).
"""
from __future__ import annotations

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

from . import checkpoint
from .config import RunConfig
from .data import FashionMNIST, batches, to_batch
from .diagnostics import GradNorms, activation_stats, environment, finite, now
from .nets import count_params, named_parts, resnet
from .schedule import lr_at
from .store import SCHEMA_VERSION, RunStore

__all__ = ["seed_everything", "contexts", "environment", "evaluate", "build", "train_batches",
           "train_epoch", "run_epoch", "train_run"]

PROBE_IMAGES = 64  # fixed test images on which activation statistics are taken
TERMINAL = ("completed", "diverged")
Ctx = Union[mx.Context, list]


def seed_everything(seed: int) -> None:
    """Seed MXNet (every device), numpy's global RNG and Python's `random`."""
    mx.random.seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def contexts(gpus: Optional[list[int]] = None) -> list[mx.Context]:
    """The named GPUs, else every GPU MXNet sees (data-parallel), else the CPU."""
    available = mx.context.num_gpus()
    if gpus:
        missing = [g for g in gpus if not 0 <= g < available]
        if missing:
            raise ValueError(f"GPU {missing} not available: MXNet sees {available} GPU(s)")
        return [mx.gpu(g) for g in gpus]
    return [mx.gpu(i) for i in range(available)] or [mx.cpu()]


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


def build(cfg: RunConfig, data: FashionMNIST, ctx: list, amp: bool = False) -> Session:
    """Seeded network (shapes known, hybridized), trainer, loss, probe batch."""
    seed_everything(cfg.seed)
    if amp:
        _amp_init(ctx)
    net = resnet(cfg.arch, cfg.ordering, width=cfg.width, final_bn_relu=cfg.final_bn_relu)
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
        from mxnet.contrib import amp as mx_amp
        mx_amp.init_trainer(trainer)
    parts = named_parts(net)
    return Session(cfg, ctx, net, parts, trainer, gluon.loss.SoftmaxCrossEntropyLoss(),
                   GradNorms(parts, ctx[0]), data, probe, amp)


def _initializer(name: str) -> initializers.Initializer:
    if name == "msra":  # He et al. 2015: N(0, 2 / fan_in), for ReLU nets
        return initializers.MSRAPrelu(factor_type="in", slope=0.0)
    return initializers.Xavier()  # d2l's default (uniform, fan average, magnitude 3)


def _amp_init(ctx: list) -> None:
    if any(c.device_type != "gpu" for c in ctx):
        raise ValueError("mixed precision (amp, float16) needs GPUs; this run is on "
                         + ", ".join(map(str, ctx)))
    from mxnet.contrib import amp as mx_amp
    mx_amp.init()  # before the network is built: it patches MXNet's operators


def _split(X: mx.np.ndarray, y: mx.np.ndarray, ctx: list) -> tuple[list, list, list]:
    """Shards of one batch over the devices; a batch smaller than the device count uses fewer."""
    if len(ctx) == 1:
        return [X.as_in_ctx(ctx[0])], [y.as_in_ctx(ctx[0])], ctx
    used = ctx[:min(len(ctx), X.shape[0])]
    return (gluon.utils.split_and_load(X, used, even_split=False),
            gluon.utils.split_and_load(y, used, even_split=False), used)


def _sums(losses: list, outs: list, ys: list, ctx0: mx.Context) -> tuple:
    """(summed loss, number correct) of the shards, as arrays on ctx0 (no synchronisation)."""
    total = correct = None
    for l, out, y in zip(losses, outs, ys):
        t = l.sum().as_in_ctx(ctx0)
        c = (out.argmax(axis=1).astype(y.dtype) == y).astype(np.float32).sum().as_in_ctx(ctx0)
        total, correct = (t, c) if total is None else (total + t, correct + c)
    return total, correct


def _step(s: Session, X: mx.np.ndarray, y: mx.np.ndarray) -> tuple:
    xs, ys, used = _split(X, y, s.ctx)
    with autograd.record():
        outs = [s.net(x) for x in xs]
        losses = [s.loss(o, t) for o, t in zip(outs, ys)]
    scale = 1.0
    if s.amp:
        from mxnet.contrib import amp as mx_amp
        scale = s.trainer._amp_loss_scaler.loss_scale  # gradients come out multiplied by it
        with mx_amp.scale_loss(losses, s.trainer) as scaled:
            autograd.backward(scaled)
    else:
        autograd.backward(losses)
    for k in range(len(used), len(s.ctx)):  # an idle device adds a zero gradient, and
        for p in s.grads.params:  # still updates its copy of the weights like the others
            p.list_grad()[k][:] = 0
            p.list_data()[k]._fresh_grad = True
    s.trainer.step(X.shape[0])
    s.grads.add(X.shape[0] * scale)
    with autograd.pause():
        return _sums(losses, outs, ys, s.ctx[0])


def _batch_ctx(ctx: list) -> Optional[mx.Context]:
    """Where batches are made: the device itself, or the CPU when split over several."""
    return ctx[0] if len(ctx) == 1 else mx.cpu()


@dataclass
class TrainStats:
    loss: float
    acc: float
    images: int
    seconds: float


OnBatch = Callable[[int, float, float], None]  # (images so far, mean loss, accuracy)


def train_batches(s: Session, epoch: int) -> Iterator[tuple[mx.np.ndarray, mx.np.ndarray]]:
    """The run's training batches of `epoch`: order and augmentation from (seed, epoch)."""
    cfg = s.cfg
    return batches(s.data.train_images, s.data.train_labels, cfg.batch_size, cfg.size,
                   ctx=_batch_ctx(s.ctx), seed=cfg.seed, epoch=epoch, augment=cfg.augment)


def train_epoch(s: Session, batch_iter: Iterable, on_batch: Optional[OnBatch] = None
                ) -> TrainStats:
    """One training pass over batch_iter; stops early once the loss is NaN/inf."""
    start = time.perf_counter()
    s.grads.reset()
    total = correct = pending = None
    n = 0
    for X, y in batch_iter:
        t, c = _step(s, X, y)
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


def evaluate(net: gluon.Block, batch_iter: Iterable, ctx: Ctx) -> tuple[float, float]:
    """(mean loss, accuracy) of net on the batches, in inference mode (NaN if diverged)."""
    ctx = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    total = correct = pending = None
    n = 0
    with autograd.predict_mode():
        for X, y in batch_iter:
            xs, ys, _ = _split(X, y, list(ctx))
            outs = [net(x) for x in xs]
            t, c = _sums([loss(o, target) for o, target in zip(outs, ys)], outs, ys, ctx[0])
            total, correct = (t, c) if total is None else (total + t, correct + c)
            n += X.shape[0]
            if pending is not None:
                pending.wait_to_read()
            pending = total
    return total.item() / n, correct.item() / n


def run_epoch(s: Session, epoch: int, on_batch: Optional[OnBatch] = None) -> dict:
    """Train one epoch, evaluate, take diagnostics: the epoch's entry of the record."""
    cfg, start = s.cfg, time.perf_counter()
    seed_everything(epoch_seed(cfg.seed, epoch))
    lr = lr_at(cfg, epoch)
    s.trainer.set_learning_rate(lr)
    tr = train_epoch(s, train_batches(s, epoch), on_batch)
    test = batches(s.data.test_images, s.data.test_labels, cfg.batch_size, cfg.size,
                   ctx=_batch_ctx(s.ctx))
    test_loss, test_acc = evaluate(s.net, test, s.ctx)
    act_mean, act_std = activation_stats(s.parts, s.probe)
    return {"epoch": epoch, "train_loss": finite(tr.loss), "train_acc": tr.acc,
            "test_loss": finite(test_loss), "test_acc": test_acc, "lr": lr,
            "seconds": time.perf_counter() - start, "images_per_sec": tr.images / tr.seconds,
            "grad_norm": s.grads.means(), "act_mean": act_mean, "act_std": act_std}


def new_record(cfg: RunConfig, experiment: str, profile: str, ctx: list, amp: bool) -> dict:
    env = environment(ctx)
    env["amp"] = amp
    return {"schema_version": SCHEMA_VERSION, "run_id": cfg.run_id, "experiment": experiment,
            "profile": profile, "config": cfg.to_dict(), "status": "running", "error": None,
            "params": None, "environment": env, "started": now(), "finished": None,
            "wall_seconds": 0.0, "epochs": []}


def train_run(cfg: RunConfig, store: RunStore, data: FashionMNIST, *, experiment: str = "",
              profile: str = "", ctx: Optional[Ctx] = None, progress: bool = True,
              log: Callable[[str], None] = print, amp: bool = False) -> dict:
    """Train (or resume, or skip when finished) one run; always returns its record."""
    existing = store.load(cfg.run_id)
    if existing is not None and existing["status"] in TERMINAL:
        return existing
    ctx = [ctx] if isinstance(ctx, mx.Context) else list(ctx) if ctx else contexts()
    record = new_record(cfg, experiment, profile, ctx, amp)
    clock = time.perf_counter()
    try:
        s = build(cfg, data, ctx, amp)
        record["params"] = count_params(s.net)
        base_wall = checkpoint.resume(s.net, s.trainer, store, record, existing, log)
        log(_start_line(s, record))
        wall = lambda: base_wall + time.perf_counter() - clock  # noqa: E731
        _train_epochs(s, store, record, progress, log, wall)
    except KeyboardInterrupt:
        _fail(store, record, "KeyboardInterrupt: interrupted")
        raise
    except Exception as e:  # noqa: BLE001 - the suite records the failure and carries on
        _fail(store, record, f"{type(e).__name__}: {e}", traceback.format_exc())
    return record


def _train_epochs(s: Session, store: RunStore, record: dict, progress: bool,
                  log: Callable[[str], None], wall: Callable[[], float]) -> None:
    for epoch in range(len(record["epochs"]) + 1, s.cfg.epochs + 1):
        with EpochProgress(s, epoch, progress and sys.stderr.isatty(), log) as bar:
            entry = run_epoch(s, epoch, bar.update)
            bar.done(entry)
        record["epochs"].append(entry)
        record["wall_seconds"] = wall()
        if entry["train_loss"] is None or entry["test_loss"] is None:
            record["status"], record["error"] = "diverged", f"non-finite loss in epoch {epoch}"
            break
        checkpoint.save(s.net, s.trainer, store, record)
        store.write(record)
    if record["status"] == "running":
        record["status"] = "completed"
    record["finished"], record["wall_seconds"] = now(), wall()
    store.write(record)
    checkpoint.finish(store, record)


def _fail(store: RunStore, record: dict, error: str, trace: Optional[str] = None) -> None:
    record["status"], record["error"], record["finished"] = "failed", error, now()
    if trace:
        record["traceback"] = trace
    store.write(record)


def _start_line(s: Session, record: dict) -> str:
    env, cfg = record["environment"], s.cfg
    done = len(record["epochs"])
    resumed = f", resuming after epoch {done}" if done else ""
    return (f"{cfg.run_id}: {record['params']:,} parameters, {len(s.data.train_labels)} train / "
            f"{len(s.data.test_labels)} test images at {cfg.size} px on "
            f"{', '.join(env['contexts'])} ({env['device_name']}, {env['threads']} threads)"
            f"{resumed}")


class EpochProgress:
    """A tqdm bar during the epoch on a terminal (loss, accuracy, images/s, ETA), and one
    plain line per epoch, which is all that CI logs get."""

    def __init__(self, s: Session, epoch: int, bar: bool, log: Callable[[str], None]):
        self.head, self.log = f"{s.cfg.run_id} epoch {epoch}/{s.cfg.epochs}", log
        self.bar = None
        if bar:
            from tqdm import tqdm
            self.bar = tqdm(total=len(s.data.train_labels), unit="img", desc=self.head,
                            dynamic_ncols=True, leave=True)

    def __enter__(self) -> "EpochProgress":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, images: int, loss: float, acc: float) -> None:
        if self.bar is not None:
            self.bar.update(images - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}", refresh=False)

    def done(self, e: dict) -> None:
        def f(v):
            return "nan" if v is None else f"{v:.4f}"
        summary = (f"train loss {f(e['train_loss'])} acc {e['train_acc']:.4f} | test loss "
                   f"{f(e['test_loss'])} acc {e['test_acc']:.4f} | lr {e['lr']:.4g} | "
                   f"{e['images_per_sec']:.1f} img/s | {e['seconds']:.1f} s")
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()
        self.log(f"{self.head}: {summary}")
