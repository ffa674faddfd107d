"""Training throughput: d2l's reference pipeline against this engine, in one command.

    python -m gluon_resnet.tools.bench [--batches N] [--warmup W] [--size 96] [--batch-size 256] [--json]

Measures training images/s of d2l ResNet-18 (a) in d2l's pipeline (`d2l.Residual` net,
`gluon.data.DataLoader` with `Resize` + `ToTensor` and d2l's worker count, the unhybridized
`train_ch6` loop), once as a user runs it (a fresh process with MXNet's default thread count,
half the cores on x86, and glibc's default allocator) and once in this process at the
engine's settings; (b) this engine on the same network, data and batch size; (c) the engine
on one fixed in-memory batch (the data path's cost is the gap to (b)). It also measures a
large float32 matrix multiply and the engine's achieved training FLOP/s. Warm-up batches
are excluded; times are wall-clock, data loading included.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

WARMUP = 2


# ---------------------------------------------------------------- d2l's pipeline (no package code)


def d2l_resnet18():
    """The d2l book's ResNet-18 (MXNet edition), assembled from `d2l.Residual` as the book does."""
    from d2l import mxnet as d2l
    from mxnet.gluon import nn

    def resnet_block(num_channels, num_residuals, first_block=False):
        blk = nn.Sequential()
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.add(d2l.Residual(num_channels, use_1x1conv=True, strides=2))
            else:
                blk.add(d2l.Residual(num_channels))
        return blk

    net = nn.Sequential()
    net.add(nn.Conv2D(64, kernel_size=7, strides=2, padding=3), nn.BatchNorm(),
            nn.Activation("relu"), nn.MaxPool2D(pool_size=3, strides=2, padding=1))
    net.add(resnet_block(64, 2, first_block=True), resnet_block(128, 2),
            resnet_block(256, 2), resnet_block(512, 2))
    net.add(nn.GlobalAvgPool2D(), nn.Dense(10))
    return net


def d2l_images_per_sec(images: np.ndarray, labels: np.ndarray, batch_size: int, size: int,
                       batches: int, warmup: int = WARMUP) -> float:
    """train_ch6's loop on a DataLoader like load_data_fashion_mnist's, timed end to end."""
    from d2l import mxnet as d2l
    from mxnet import autograd, gluon, init
    from mxnet import np as mnp
    from mxnet import npx
    from mxnet.gluon.data.vision import transforms

    npx.set_np()  # as every d2l MXNet notebook does first
    # gluon's FashionMNIST cannot read Debian's files: the same arrays, held as it holds them.
    dataset = gluon.data.ArrayDataset(mnp.array(images[..., None], dtype=np.uint8), labels)
    trans = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])
    loader = gluon.data.DataLoader(dataset.transform_first(trans), batch_size, shuffle=True,
                                   num_workers=d2l.get_dataloader_workers())
    net = d2l_resnet18()
    net.initialize(force_reinit=True, init=init.Xavier())
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
    metric, start = d2l.Accumulator(3), None
    for i, (X, y) in enumerate(loader):
        if i == warmup:
            start = time.perf_counter()
        if i == warmup + batches:
            break
        with autograd.record():
            y_hat = net(X)
            l = loss(y_hat, y)
        l.backward()
        trainer.step(X.shape[0])
        metric.add(l.sum(), d2l.accuracy(y_hat, y), X.shape[0])
    return batches * batch_size / (time.perf_counter() - start)


def d2l_as_a_user(images: np.ndarray, labels: np.ndarray, args) -> tuple[float, int]:
    """(images/s, threads) of d2l's pipeline in a fresh process with MXNet's defaults."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS", "GLIBC_TUNABLES")}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", images)
        np.save(f"{tmp}/y.npy", labels)
        # -I: no script folder on sys.path (this package's module names stay out of d2l's way)
        done = subprocess.run(
            [sys.executable, "-I", os.path.abspath(__file__), "--d2l-child", tmp,
             "--batches", str(args.batches), "--warmup", str(args.warmup),
             "--size", str(args.size), "--batch-size", str(args.batch_size)],
            env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"d2l reference process failed:\n{done.stderr[-3000:]}")
    # MXNet's default without OMP_NUM_THREADS (src/engine/openmp.cc): half the cores on x86.
    return float(done.stdout.strip().splitlines()[-1]), max(1, len(os.sched_getaffinity(0)) // 2)


# ---------------------------------------------------------------- the engine


def engine_images_per_sec(data, args) -> tuple[float, float]:
    """(end to end, fixed in-memory batch) training images/s of train.py's step."""
    import mxnet as mx

    from ..config import RunConfig
    from ..train import build, train_batches, train_epoch

    cfg = RunConfig(batch_size=args.batch_size, size=args.size)
    s = build(cfg, data, [mx.cpu()])
    train_epoch(s, itertools.islice(train_batches(s, 1), args.warmup))
    end_to_end = train_epoch(s, itertools.islice(train_batches(s, 2), args.batches))
    batch = next(train_batches(s, 3))
    fixed = train_epoch(s, itertools.repeat(batch, args.batches))
    return end_to_end.images / end_to_end.seconds, fixed.images / fixed.seconds


def matmul_gflops(n: int = 4096, repeats: int = 3) -> dict[str, float]:
    """Best of `repeats` float32 n x n products (2 n^3 FLOPs each), through the two GEMMs
    this MXNet build has: `np.dot` (OpenBLAS) and `fully_connected` (oneDNN, which the
    convolutions use too)."""
    import mxnet as mx

    a = mx.np.random.uniform(size=(n, n))
    ways = {"openblas_dot": lambda: mx.np.dot(a, a),
            "onednn_fc": lambda: mx.npx.fully_connected(a, a, no_bias=True, num_hidden=n)}
    out = {}
    for name, product in ways.items():
        product().wait_to_read()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            product().wait_to_read()
            best = min(best, time.perf_counter() - start)
        out[name] = 2 * n**3 / best / 1e9
    return out


# ---------------------------------------------------------------- the command


def measure(args) -> dict:
    from .. import runtime
    from ..data import load_fashion_mnist
    from ..runs.estimate import forward_flops

    data = load_fashion_mnist(args.data_dir)
    images, labels = data.train_images, data.train_labels
    out = {"threads": runtime.THREADS, "heap_kept": runtime.HEAP_KEPT,
           "batch_size": args.batch_size,
           "size": args.size, "batches": args.batches, "warmup": args.warmup}
    out["d2l_images_per_sec"], out["d2l_threads"] = d2l_as_a_user(images, labels, args)
    out["d2l_equal_threads_images_per_sec"] = d2l_images_per_sec(
        images, labels, args.batch_size, args.size, args.batches, args.warmup)
    out["engine_images_per_sec"], out["fixed_batch_images_per_sec"] = \
        engine_images_per_sec(data, args)
    gemm = matmul_gflops()
    out["matmul_gflops"] = max(gemm.values())  # the machine's rate: the faster library's
    out.update({f"matmul_{k}_gflops": v for k, v in gemm.items()})
    out["train_gflop_per_image"] = 3 * forward_flops("d2l18", "conv_bn_relu", 1.0, args.size) / 1e9
    out["engine_gflops"] = out["engine_images_per_sec"] * out["train_gflop_per_image"]
    out["ratio"] = out["engine_images_per_sec"] / out["d2l_images_per_sec"]
    out["ratio_equal_threads"] = (out["engine_images_per_sec"]
                                  / out["d2l_equal_threads_images_per_sec"])
    out["data_path_ratio"] = out["engine_images_per_sec"] / out["fixed_batch_images_per_sec"]
    out["matmul_fraction"] = out["engine_gflops"] / out["matmul_gflops"]
    return out


def table(r: dict) -> str:
    rows = [
        (f"d2l pipeline as a user runs it ({r['d2l_threads']} OpenMP thread(s), default malloc)",
         r["d2l_images_per_sec"], ""),
        (f"d2l pipeline at the engine's settings ({r['threads']} threads)",
         r["d2l_equal_threads_images_per_sec"], ""),
        ("engine (hybridized, one resize per batch)", r["engine_images_per_sec"],
         f"{r['ratio']:.2f}x / {r['ratio_equal_threads']:.2f}x d2l"),
        ("engine on one fixed in-memory batch", r["fixed_batch_images_per_sec"],
         f"data path keeps {100 * r['data_path_ratio']:.0f} %"),
    ]
    lines = [f"d2l ResNet-18, {r['size']} px, batch {r['batch_size']}, {r['batches']} timed "
             f"batches after {r['warmup']} warm-up; training images/s (wall clock)"]
    lines += [f"  {name:<72} {ips:8.1f}  {note}" for name, ips, note in rows]
    lines.append(f"  matrix multiply (float32, 4096^2): {r['matmul_gflops']:.0f} GFLOP/s (oneDNN "
                 f"{r['matmul_onednn_fc_gflops']:.0f}, OpenBLAS np.dot "
                 f"{r['matmul_openblas_dot_gflops']:.0f})")
    lines.append(f"  engine: {r['engine_gflops']:.0f} GFLOP/s "
                 f"({r['train_gflop_per_image']:.2f} GFLOP per training image: convolutions "
                 "and dense layer, forward x3) = "
                 f"{100 * r['matmul_fraction']:.0f} % of the matrix multiply rate")
    return "\n".join(lines)


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=10, help="timed batches per set-up")
    p.add_argument("--warmup", type=int, default=WARMUP, help="untimed batches first")
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST files")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the numbers")
    p.add_argument("--d2l-child", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.batches < 1 or args.warmup < 1:
        p.error("--batches and --warmup must be >= 1")
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.d2l_child:  # the fresh process of d2l_as_a_user: MXNet and d2l only
        x, y = np.load(f"{args.d2l_child}/x.npy"), np.load(f"{args.d2l_child}/y.npy")
        print(d2l_images_per_sec(x, y, args.batch_size, args.size, args.batches, args.warmup))
        return
    result = measure(args)
    print(table(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
