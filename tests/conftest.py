"""Shared fixtures: the real Fashion-MNIST, loaded and verified once per test session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Test networks are tiny: on a busy 2-core machine, two OpenMP threads per tiny op cost
# 5-10x more than they save (measured: model tests 86 s with 2 threads, 11 s with 1).
# Must be set before MXNet loads; an explicit setting by the caller wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests run from a clone without `pip install -e .`
    sys.path.insert(0, str(ROOT))

# No MXNet at import: the statistics tests (test_decide, test_stats, test_collapse) run
# without it (tests/test_imports.py checks). Fixtures that need it import it when first used.

# What legitimately differs between two executions of one config: timings, the machine, and
# the store folder it was written to (<experiment>/<profile>).
TIMING_KEYS = ("environment", "started", "finished", "wall_seconds", "experiment", "profile")
EPOCH_TIMING_KEYS = ("seconds", "images_per_sec", "train_seconds", "precise_seconds")


def comparable(record: dict) -> dict:
    """A record without what legitimately differs between two executions (TIMING_KEYS)."""
    out = {k: v for k, v in record.items() if k not in TIMING_KEYS}
    out["epochs"] = [{k: v for k, v in ep.items() if k not in EPOCH_TIMING_KEYS}
                     for ep in record["epochs"]]
    return out


@pytest.fixture(scope="session")
def fashion_mnist():
    """All 70,000 real images (found as a user's run would find them): a FashionMNIST."""
    from gluon_resnet.data import load_fashion_mnist

    return load_fashion_mnist()


@pytest.fixture(scope="session")
def small_data(fashion_mnist):
    """20 training and 10 test images per class: 200 + 100 real images."""
    return fashion_mnist.subset(20, 10)
