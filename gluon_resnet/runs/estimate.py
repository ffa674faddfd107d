"""How long a run will take, for `run_all.py --list`: from measured runs when there are
any, else from the network's FLOPs and the benchmark's achieved FLOP/s."""
from __future__ import annotations

import json
import math
import statistics
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Optional, Sequence

from ..config import RunConfig
from ..idx import NUM_CLASSES, TEST_IMAGES, TRAIN_IMAGES
from ..records import Run
from ..store import RunStore

TRAIN_PER_CLASS, TEST_PER_CLASS = TRAIN_IMAGES // NUM_CLASSES, TEST_IMAGES // NUM_CLASSES
# Training FLOP/s our engine reached on d2l ResNet-18 at 96 px on the 2-core development
# CPU (`python -m gluon_resnet.tools.bench`); used only when results/bench.json is absent.
DEFAULT_ENGINE_GFLOPS = 40.0


@lru_cache(maxsize=None)
def forward_flops(arch: str, ordering: str, width: float, size: int,
                  final_bn_relu: Optional[bool] = None) -> float:
    """Forward FLOPs of one image (2 per multiply-add, convolutions and dense layers only),
    read off the network's symbolic graph: shapes are inferred, no weight is allocated or
    initialised and no image passes (about a fifth of the CPU of a forward pass with hooks,
    which --list paid for every network it had not measured)."""
    import mxnet as mx

    from ..nets import resnet

    net = resnet(arch, ordering, width=width, final_bn_relu=final_bn_relu)
    graph = net(mx.sym.var("data").as_np_ndarray()).as_nd_ndarray()
    layers = graph.get_internals()
    weights, outputs, _ = layers.infer_shape(data=(1, 1, size, size))
    weight_of = dict(zip(layers.list_arguments(), weights))
    output_of = dict(zip(layers.list_outputs(), outputs))
    nodes = json.loads(graph.tojson())["nodes"]
    total = 0.0
    for node in nodes:
        if node["op"] in ("Convolution", "FullyConnected"):
            weight = weight_of[nodes[node["inputs"][1][0]]["name"]]  # (out, in / groups, *kernel)
            positions = (math.prod(output_of[node["name"] + "_output"][2:])
                         if node["op"] == "Convolution" else 1)
            total += 2.0 * math.prod(weight) * positions
    return total


def images_per_epoch(cfg: RunConfig) -> tuple[int, int]:
    train = NUM_CLASSES * min(cfg.train_per_class or TRAIN_PER_CLASS, TRAIN_PER_CLASS)
    test = NUM_CLASSES * min(cfg.test_per_class or TEST_PER_CLASS, TEST_PER_CLASS)
    return train, test


def relative_cost(cfg: RunConfig) -> float:
    """A run's training FLOPs (forward passes over its epochs): enough to order runs by
    length, so that parallel workers start the longest first and a round does not end with
    one long run and idle workers."""
    train, test = images_per_epoch(cfg)
    flops = forward_flops(cfg.arch, cfg.ordering, cfg.width, cfg.size, cfg.final_bn_relu)
    return cfg.epochs * (3 * train + test) * flops


def runs_on_disk(results_dir: Path) -> list[Run]:
    """Every run record of every experiment and profile under results_dir."""
    return [rec for runs in sorted(Path(results_dir).glob("*/*/runs"))
            for rec in RunStore(runs.parent).records()]


def measured_rates(records: Sequence[Run], newest: Optional[int] = None
                   ) -> dict[tuple, float]:
    """Median training images/s per (arch, width, size, batch_size, device) over `records`,
    or over each network's `newest` records when given."""
    seen: dict[tuple, list[Run]] = {}
    for rec in sorted(records, key=lambda rec: rec.when):
        c = rec.config
        seen.setdefault((c.arch, c.width, c.size, c.batch_size, rec.device or "?"), []).append(rec)
    rates = {k: [e.images_per_sec for rec in v[-(newest or len(v)):] for e in rec.epochs]
             for k, v in seen.items()}
    return {k: statistics.median(v) for k, v in rates.items() if v}


# One CPU name covers machines of different speeds (two "AMD EPYC avx512f" machines here
# differed by 2x an epoch), and a session's machine is the likeliest to be the newest runs'.
NEWEST_RUNS = 4


def bench_gflops(records: Sequence[Run], results_dir: Path, device: str = "cpu") -> float:
    """Training GFLOP/s to assume for a network never measured here: the median achieved by
    `records` (this machine's real speed, on this suite's networks), else the benchmark's
    in results_dir, else the default."""
    achieved = []
    for rec in records:
        c = rec.config
        if rec.device != device or not rec.epochs:
            continue
        rate = statistics.median(e.images_per_sec for e in rec.epochs)
        flops = forward_flops(c.arch, c.ordering, c.width, c.size, c.final_bn_relu)
        achieved.append(rate * 3 * flops / 1e9)
    if achieved:
        return statistics.median(achieved)
    try:
        return float(json.loads((Path(results_dir) / "bench.json").read_text())["engine_gflops"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_ENGINE_GFLOPS


class Speeds:
    """This machine's speed on `device`, as the runs under results_dir show it: measured
    images/s per network, from its NEWEST_RUNS latest runs on this CPU kind where there are
    any (the committed records come from other machines, and CPU kinds differ by 2x an
    epoch), else from all its runs, and said so; for a network never trained, its FLOPs at
    the GFLOP/s those runs achieved. That fallback builds each network once, so it is
    computed only when a network was never measured. The run files are read once, for all.
    A GPU has no CPU kind to match: every run of the network on that device counts."""

    def __init__(self, results_dir: Path, device: str,
                 here: Optional[tuple[str, str]] = None):
        from ..diagnostics import cpu_kind

        self.results_dir, self.device = Path(results_dir), device
        self.here = here or (cpu_kind() if device == "cpu" else None)
        self.records = runs_on_disk(self.results_dir)
        self.mine = [rec for rec in self.records if rec.cpu == self.here]
        self.rates_here = measured_rates(self.mine, NEWEST_RUNS)
        self.rates = measured_rates(self.records)

    @cached_property
    def gflops(self) -> float:
        return bench_gflops(self.mine or self.records, self.results_dir, self.device)

    def seconds(self, cfg: RunConfig) -> tuple[float, str]:
        """Seconds for the whole run, and where the figure comes from."""
        train, test = images_per_epoch(cfg)
        key = (cfg.arch, cfg.width, cfg.size, cfg.batch_size, self.device)
        if key in self.rates_here:
            rate, source = self.rates_here[key], "measured on this CPU kind"
        elif key in self.rates:
            rate, source = self.rates[key], "measured on other CPUs" if self.here else "measured"
        else:
            flops = forward_flops(cfg.arch, cfg.ordering, cfg.width, cfg.size,
                                  cfg.final_bn_relu)
            rate = self.gflops * 1e9 / (3 * flops)  # forward + backward ~ 3 forward passes
            source = "from FLOPs at the GFLOP/s measured here"
        # evaluation is a forward pass only: about a third of a training step per image
        return cfg.epochs * (train + test / 3) / rate, source
