"""Step by step through chosen epochs of one run: where a fall of training accuracy starts.

    python -m experiments.step_trace --experiment depth --profile quick --arch cifar110
        --ordering conv_bn_relu [--seed 0] --epochs 5,6 [--set train_per_class=1024 ...]

Trains the run's config (the profile's, with --set changes) through the epochs before the
first traced one exactly as run_all.py does, then trains the traced epochs one optimiser step
at a time and prints, per step, the batch size, the learning rate, the batch's mean loss and
accuracy and the global norm of the mean loss's gradient (before any clipping). How depth's
pilots found that a 16-image last batch started conv_bn_relu-110's fall (docs/measurements.md).
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Iterator

from gluon_resnet.config import RunConfig, parse_value


def trace(cfg: RunConfig, epochs: list[int]) -> Iterator[dict]:
    """Train cfg up to max(epochs) on one CPU; one dict per optimiser step of the traced
    epochs (the others are trained as train.run_epoch trains them)."""
    import mxnet as mx

    from gluon_resnet import train
    from gluon_resnet.clipping import global_norm
    from gluon_resnet.data import load_fashion_mnist
    from gluon_resnet.schedule import step_lr

    s = train.build(cfg.replace(precise_bn_batches=0), load_fashion_mnist(), [mx.cpu()])
    steps = math.ceil(len(s.data.train_labels) / cfg.batch_size)
    for epoch in range(1, max(epochs) + 1):
        if epoch not in epochs:
            train.run_epoch(s, epoch)
            continue
        train.seed_everything(train.epoch_seed(cfg.seed, epoch))
        if s.clip is not None:
            s.clip.reset()
        for i, (X, y) in enumerate(train.train_batches(s, epoch)):
            lr = step_lr(cfg, epoch, i, steps)
            s.trainer.set_learning_rate(lr)
            total, correct = train.train_step(s, X, y)
            n = X.shape[0]
            # the update leaves the gradients as they were, unless clip_norm scaled them down
            norm = (s.clip.last_norm if s.clip is not None
                    else global_norm(s.grads.params, mx.cpu()) / n)
            yield {"epoch": epoch, "step": i, "images": n, "lr": lr,
                   "loss": total.item() / n, "acc": correct.item() / n,
                   "grad_norm": float(norm.asscalar())}


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="depth", help="a built-in experiment")
    p.add_argument("--profile", default="quick")
    p.add_argument("--arch", help="the grid's arch to trace (default: its first)")
    p.add_argument("--ordering", help="the grid's ordering to trace (default: its first)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", default="5,6", help="epochs to trace step by step, e.g. 5,6")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one config field, as run_all.py --set")
    return p.parse_args(argv)


def config(args: argparse.Namespace) -> tuple[RunConfig, list[int]]:
    """The traced run's config and epochs; ValueError for a usage mistake."""
    from experiments import find
    from gluon_resnet.runs.experiment import expand

    runs = [c for c in expand(find(args.experiment), args.profile)
            if (args.arch is None or c.arch == args.arch)
            and (args.ordering is None or c.ordering == args.ordering)]
    if not runs:
        raise ValueError(f"no run of {args.experiment}/{args.profile} has arch {args.arch} "
                         f"and ordering {args.ordering}: see run_all.py --list")
    changes = {}
    for item in args.set:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        changes[name] = parse_value(name, text)
    cfg = runs[0].replace(seed=args.seed, **changes)
    if cfg.warmup_until_error is not None:
        raise ValueError("a warm-up decided at the end of each epoch (warmup_until_error) is "
                         "not traced: --set warmup_until_error=none")
    if not all(e.strip().isdigit() for e in args.epochs.split(",")):
        raise ValueError(f"--epochs expects epochs such as 5,6, got {args.epochs!r}")
    epochs = sorted({int(e) for e in args.epochs.split(",")})
    if epochs[0] < 1 or epochs[-1] > cfg.epochs:
        raise ValueError(f"--epochs must lie in 1..{cfg.epochs}, got {args.epochs}")
    return cfg, epochs


def main(argv=None) -> None:
    args = parse(argv)
    try:
        cfg, epochs = config(args)
    except ValueError as e:  # a usage mistake: one line, exit 2, as run_all.py
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{cfg.run_id}: steps of epochs {', '.join(map(str, epochs))}")
    print("epoch\tstep\timages\tlr\tloss\tacc\tgrad_norm", flush=True)
    for row in trace(cfg, epochs):
        print(f"{row['epoch']}\t{row['step']}\t{row['images']}\t{row['lr']:.4f}\t"
              f"{row['loss']:.4f}\t{row['acc']:.3f}\t{row['grad_norm']:.3f}", flush=True)


if __name__ == "__main__":
    main()
