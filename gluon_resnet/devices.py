"""Where a run computes: its contexts (CPU, one GPU, or several for data parallelism), how a
batch is sharded over them, and mixed precision (AMP, float16 on GPUs; MXNet 1.x's
`mxnet.contrib.amp`)."""
from __future__ import annotations

from typing import Optional

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon


def contexts(gpus: Optional[list[int]] = None) -> list[mx.Context]:
    """The named GPUs, else every GPU MXNet sees (data-parallel), else the CPU."""
    available = mx.context.num_gpus()
    if gpus:
        missing = [g for g in gpus if not 0 <= g < available]
        if missing:
            raise ValueError(f"GPU {missing} not available: MXNet sees {available} GPU(s)")
        return [mx.gpu(g) for g in gpus]
    return [mx.gpu(i) for i in range(available)] or [mx.cpu()]


def batch_ctx(ctx: list) -> mx.Context:
    """Where batches are made: the device itself, or the CPU when split over several."""
    return ctx[0] if len(ctx) == 1 else mx.cpu()


def split(X: mx.np.ndarray, y: mx.np.ndarray, ctx: list) -> tuple[list, list, list]:
    """Shards of one batch over the devices; a batch smaller than the device count uses fewer."""
    if len(ctx) == 1:
        return [X.as_in_ctx(ctx[0])], [y.as_in_ctx(ctx[0])], ctx
    used = ctx[:min(len(ctx), X.shape[0])]
    return (gluon.utils.split_and_load(X, used, even_split=False),
            gluon.utils.split_and_load(y, used, even_split=False), used)


def shard_sums(losses: list, outs: list, ys: list, ctx0: mx.Context) -> tuple:
    """(summed loss, number correct) of the shards, as arrays on ctx0 (no synchronisation)."""
    total = correct = None
    for l, out, y in zip(losses, outs, ys):
        t = l.sum().as_in_ctx(ctx0)
        c = (out.argmax(axis=1).astype(y.dtype) == y).astype(np.float32).sum().as_in_ctx(ctx0)
        total, correct = (t, c) if total is None else (total + t, correct + c)
    return total, correct


def zero_idle_grads(params: list, used: int, ctx: list) -> None:
    """A device left without a shard adds a zero gradient, and still updates its copy of the
    weights like the others."""
    for k in range(used, len(ctx)):
        for p in params:
            p.list_grad()[k][:] = 0
            p.list_data()[k]._fresh_grad = True


def amp_init(ctx: list) -> None:
    """Switch MXNet to mixed precision; before the network is built (it patches operators)."""
    if any(c.device_type != "gpu" for c in ctx):
        raise ValueError("mixed precision (amp, float16) needs GPUs; this run is on "
                         + ", ".join(map(str, ctx)))
    from mxnet.contrib import amp as mx_amp
    mx_amp.init()


def amp_trainer(trainer: gluon.Trainer) -> None:
    from mxnet.contrib import amp as mx_amp
    mx_amp.init_trainer(trainer)


def backward(losses: list, trainer: gluon.Trainer, amp: bool) -> float:
    """Backward pass of the shards' losses; the factor the gradients come out multiplied by
    (AMP's loss scale, else 1)."""
    if not amp:
        autograd.backward(losses)
        return 1.0
    from mxnet.contrib import amp as mx_amp
    scale = trainer._amp_loss_scaler.loss_scale
    with mx_amp.scale_loss(losses, trainer) as scaled:
        autograd.backward(scaled)
    return scale
