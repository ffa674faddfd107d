"""Training speed under competing load: one busy core (a `yes` process, as another job would
be) against a quiet machine, at 1 and 2 OpenMP threads, with OpenMP's default (active) and
passive wait policies, for the smoke, quick and full-width networks of this suite.

    python -m gluon_resnet.tools.threads [--steps 6]

Each cell is measured in a fresh process (threads are read when MXNet loads), on a fixed
in-memory batch, after two warm-up steps. Prints a markdown table (images/s).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys

NETS = {  # name -> RunConfig fields: the three kinds of network this suite trains
    "smoke (d2l18 x0.0625, 32 px, batch 50)": dict(width=0.0625, size=32, batch_size=50),
    "quick (d2l18 x0.25, 96 px, batch 256)": dict(width=0.25, size=96, batch_size=256),
    "full (d2l18, 96 px, batch 256)": dict(width=1.0, size=96, batch_size=256),
}
SETTINGS = [("1 thread", {"OMP_NUM_THREADS": "1"}),
            ("2 threads", {"OMP_NUM_THREADS": "2"}),
            ("2 threads, passive wait", {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "passive"})]


def child(fields: dict, steps: int) -> float:
    """images/s of `steps` training steps on one fixed batch (this process's threads)."""
    import time

    import mxnet as mx

    from ..config import RunConfig
    from ..data import load_fashion_mnist
    from ..train import build, train_batches, train_epoch

    cfg = RunConfig(**fields, train_per_class=30, test_per_class=10)
    s = build(cfg, load_fashion_mnist().subset(30, 10), [mx.cpu()])
    batch = next(train_batches(s, 1))
    train_epoch(s, itertools.repeat(batch, 2))
    start = time.perf_counter()
    stats = train_epoch(s, itertools.repeat(batch, steps))
    return stats.images / (time.perf_counter() - start)


def measure(fields: dict, env: dict, steps: int) -> float:
    code = ("import json, sys; from gluon_resnet.tools.threads import child; "
            f"print(child(json.loads(sys.argv[1]), {steps}))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(fields)],
                          env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args(argv)
    rows = []
    for net, fields in NETS.items():
        cells = []
        for load in (False, True):
            busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if load else None
            try:
                cells += [measure(fields, env, args.steps) for _, env in SETTINGS]
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
        rows.append((net, cells))
    header = [f"{name} ({'one core busy' if load else 'quiet'})"
              for load in (False, True) for name, _ in SETTINGS]
    print("| network | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for net, cells in rows:
        print(f"| {net} | " + " | ".join(f"{c:.0f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
