"""How many training batches precise BatchNorm evaluation needs, and what it costs.

    python -m experiments.precise_count [--experiment seed_notebook] [--profile quick]
        [--ordering NAME] [--epochs 2] [--counts 2,5,10,20,40] [--repeats 3] [--seed 0]

Trains the experiment's first config (or its first of `--ordering`) under the profile for a
few epochs, then re-estimates
the BatchNorm statistics from K training batches, for each K, from `repeats` disjoint sets
of batches, and tests each estimate on the profile's test set. The spread between sets at
one K is the noise the estimate adds to the precise test accuracy; the seconds per K against
an epoch's training seconds are its cost. What chose the default of
RunConfig.precise_bn_batches (docs/measurements.md, "Precise evaluation").
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from gluon_resnet.config import RunConfig


def measure(cfg: RunConfig, counts: list[int], repeats: int) -> dict:
    """Train cfg for its epochs, then time and score the precise estimate at each count."""
    import mxnet as mx

    from gluon_resnet import train
    from gluon_resnet.data import load_fashion_mnist

    s = train.build(cfg, load_fashion_mnist(), [mx.cpu()])
    epoch_seconds = []
    for epoch in range(1, cfg.epochs + 1):
        entry = train.run_epoch(s, epoch)
        epoch_seconds.append(entry["train_seconds"])
    start = time.perf_counter()
    _, running_acc = train.evaluate(s.net, train.test_batches(s, s.twin.ctx), s.ctx)
    test_seconds = time.perf_counter() - start
    rows = []
    for count in counts:
        accs, seconds = [], []
        for r in range(repeats):
            # Disjoint sets: repeat r takes batches r*count .. (r+1)*count-1 of one order.
            stream = itertools.islice(train.estimate_batches(s), r * count, None)
            start = time.perf_counter()
            used = s.twin.estimate(stream, count)
            seconds.append(time.perf_counter() - start)
            if used < count:
                break
            accs.append(train.evaluate(s.twin.net, train.test_batches(s, s.twin.ctx),
                                       [s.twin.ctx])[1])
        rows.append({"count": count, "sets": len(accs), "mean_acc": float(np.mean(accs)),
                     "sd_acc": float(np.std(accs, ddof=1)) if len(accs) > 1 else float("nan"),
                     "estimate_seconds": float(np.mean(seconds))})
    return {"config": cfg.run_id, "running_acc": running_acc, "test_seconds": test_seconds,
            "train_seconds_per_epoch": float(np.mean(epoch_seconds)), "rows": rows}


def table(r: dict) -> str:
    """The measurement as a markdown table, cost as a share of an epoch's training."""
    train_s = r["train_seconds_per_epoch"]
    lines = [f"{r['config']}: {train_s:.1f} s of training an epoch; running-statistics test "
             f"accuracy {r['running_acc']:.4f}; one test pass {r['test_seconds']:.1f} s "
             f"({100 * r['test_seconds'] / train_s:.1f} % of an epoch)", "",
             "| batches | sets | precise test acc (mean) | sd between sets (points) | "
             "estimate s | estimate + test pass, % of an epoch |", "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        cost = 100 * (row["estimate_seconds"] + r["test_seconds"]) / train_s
        lines.append(f"| {row['count']} | {row['sets']} | {row['mean_acc']:.4f} | "
                     f"{100 * row['sd_acc']:.2f} | {row['estimate_seconds']:.1f} | {cost:.1f} |")
    return "\n".join(lines)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="seed_notebook", help="a built-in experiment")
    p.add_argument("--profile", default="quick")
    p.add_argument("--epochs", type=int, default=2, help="epochs trained before measuring")
    p.add_argument("--counts", default="2,5,10,20,40", help="batch counts to compare")
    p.add_argument("--repeats", type=int, default=3, help="disjoint batch sets per count")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ordering", help="the grid's first run of this ordering (default: the "
                   "grid's first run)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    from experiments import find
    from gluon_resnet.runs.experiment import expand

    args = parse(argv)
    try:
        if not all(c.strip().isdigit() for c in args.counts.split(",")):
            raise ValueError(f"--counts expects integers such as 2,5,10, got {args.counts!r}")
        counts = [int(c) for c in args.counts.split(",")]
        if min(counts) < 1 or args.repeats < 2 or args.epochs < 1:
            raise ValueError("--counts must be positive integers such as 2,5,10, "
                             "--repeats >= 2, --epochs >= 1")
        runs = expand(find(args.experiment), args.profile)
        if args.ordering:
            runs = [r for r in runs if r.ordering == args.ordering]
            if not runs:
                raise ValueError(f"--ordering {args.ordering!r} is not in the grid of "
                                 f"{args.experiment}/{args.profile}")
        cfg = runs[0].replace(epochs=args.epochs, seed=args.seed,
                              precise_bn_batches=max(counts))
    except ValueError as e:  # a usage mistake: one line, exit 2, as run_all.py
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(table(measure(cfg, counts, args.repeats)))


if __name__ == "__main__":
    main()
