"""Forward and backward signal per residual block: activation std and gradient norm by depth.

He et al. 2016 (Sec. 3) argue that with identity shortcuts and nothing after the addition,
x_L = x_l + sum of residuals, so the signal and its gradient reach every block directly.
`measure` looks at that on a real batch: it calls the net's units (stem, every residual
block, head) one after another, each on a detached copy of the previous output, and
back-propagates unit by unit, which gives the gradient at every block boundary exactly.
"""
from __future__ import annotations

import itertools
from typing import Iterator, Optional

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from ..config import RunConfig
from ..data import FashionMNIST, to_batch
from ..diagnostics import finite
from ..nets import named_parts
from ..train import Session, build, train_batches, train_epoch

__all__ = ["units", "measure", "train_steps", "signal_rows"]


def units(net: gluon.HybridBlock) -> list[tuple[str, str, gluon.Block]]:
    """(name, part, block) for the stem, each residual block ("stage2.3": 1-based) and the head."""
    out = []
    for part_name, part in named_parts(net):
        if part_name.startswith("stage"):
            out += [(f"{part_name}.{i}", part_name, part[i - 1]) for i in range(1, len(part) + 1)]
        else:
            out.append((part_name, part_name, part))
    return out


def _bn_state(net: gluon.Block) -> list[tuple[gluon.Parameter, mx.np.ndarray]]:
    """BN running statistics (the parameters without gradient), copied."""
    return [(p, p.data().copy()) for p in net.collect_params().values() if p.grad_req == "null"]


def _param_grad_norm(block: gluon.Block) -> float:
    total = 0.0
    for p in block.collect_params().values():
        if p.grad_req != "null":
            total += float((p.grad().astype(np.float64) ** 2).sum())
    return total ** 0.5


def measure(net: gluon.HybridBlock, X: mx.np.ndarray, y: mx.np.ndarray) -> list[dict]:
    """Per unit, on batch (X, y) in training mode: output std/mean, norm of the gradient of
    the mean loss at the unit's output, norm of the unit's parameter gradients (and the loss)."""
    # Training mode throughout: BN uses batch statistics, as in a training step (and a
    # backward pass recorded in predict mode gives NaN through BatchNorm in MXNet 1.9.1).
    # The BN running statistics that this forward pass moves are put back afterwards.
    saved = _bn_state(net)
    chain = units(net)
    inputs, outputs = _forward([block for _, _, block in chain], X)
    loss, out_grads = _backward(inputs, outputs, y)
    rows = [dict(_row(i, name, part, block, out, grad), loss=finite(loss))
            for i, ((name, part, block), out, grad) in enumerate(zip(chain, outputs, out_grads))]
    for p, value in saved:
        p.set_data(value)
    return rows


def _forward(blocks: list, X: mx.np.ndarray) -> tuple[list, list]:
    """Each block recorded on a detached copy of the previous output: (inputs, outputs)."""
    inputs, outputs = [], []
    x = X
    for block in blocks:
        x_in = x.detach()
        x_in.attach_grad()
        with autograd.record(train_mode=True):
            x = block(x_in)
        inputs.append(x_in)
        outputs.append(x)
    return inputs, outputs


def _backward(inputs: list, outputs: list, y: mx.np.ndarray) -> tuple[float, list]:
    """The mean loss and the gradient at every output, back-propagated block by block."""
    logits = outputs[-1].detach()
    logits.attach_grad()
    with autograd.record(train_mode=True):
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(logits, y).mean()
    loss.backward()
    # From the head down: the gradient at a block's output is what its successor's
    # backward pass left on that successor's (detached) input.
    out_grads = [None] * len(outputs)
    out_grads[-1] = logits.grad
    for i in range(len(outputs) - 1, -1, -1):
        outputs[i].backward(out_grads[i], train_mode=True)
        if i:
            out_grads[i - 1] = inputs[i].grad
    return loss.item(), out_grads


def _row(index: int, name: str, part: str, block: gluon.Block, out: mx.np.ndarray,
         grad: mx.np.ndarray) -> dict:
    o = out.asnumpy().astype(np.float64)
    g = grad.asnumpy().astype(np.float64)
    return {"unit": name, "part": part, "index": index, "shape": tuple(out.shape),
            "act_mean": finite(o.mean()), "act_std": finite(o.std()),
            "grad_norm": finite(np.sqrt((g ** 2).sum())),
            "param_grad_norm": finite(_param_grad_norm(block))}


def train_steps(session: Session, steps: int) -> Optional[float]:
    """Train the session's net for `steps` batches (epochs of its data as needed); the mean
    training loss over them (None if it diverged)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")

    def stream() -> Iterator:
        for epoch in itertools.count(1):
            yield from train_batches(session, epoch)
    stats = train_epoch(session, itertools.islice(stream(), steps))
    return finite(stats.loss)


def signal_rows(cfg: RunConfig, data: FashionMNIST, steps: int, probe: int = 64,
                ctx: Optional[list] = None) -> list[dict]:
    """`measure` at initialisation (step 0) and, if steps > 0, after `steps` training steps
    of cfg's protocol, on the first `probe` training images of cfg's subset."""
    ctx = ctx or [mx.cpu()]
    s = build(cfg, data, ctx)
    X = to_batch(s.data.train_images[:probe], cfg.size, ctx[0])
    y = mx.np.array(s.data.train_labels[:probe], dtype=np.int32, ctx=ctx[0])
    rows = [dict(r, ordering=cfg.ordering, step=0, train_loss=None) for r in measure(s.net, X, y)]
    if steps:
        loss = train_steps(s, steps)
        rows += [dict(r, ordering=cfg.ordering, step=steps, train_loss=loss)
                 for r in measure(s.net, X, y)]
    return rows
