"""Shared fixtures: the real Fashion-MNIST, loaded and verified once per test session; the
smoke grid, trained once per session; run_all.main called in this process. And the order in
which `make test` hands the files to its workers."""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# Test networks are tiny: on a busy 2-core machine, two OpenMP threads per tiny op cost
# 5-10x more than they save (measured: model tests 86 s with 2 threads, 11 s with 1).
# Must be set before MXNet loads; an explicit setting by the caller wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# jsonschema (imported by nbformat and Ray) imports rfc3987_syntax where it is installed (d2l's
# jupyter brings it), which compiles 38 grammars: a second of CPU in every test process that
# reads a notebook, for an "iri" format check that no schema read here uses. Without it,
# jsonschema leaves that one format unchecked.
sys.modules.setdefault("rfc3987_syntax", None)

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

# seed_notebook full's last-3-epoch precise test accuracies (points) by seed, as committed:
# seed 7's conv_bn_relu finished while its bn_relu_conv trained. At 7 paired seeds the power
# projection is 7 seeds and the look is undecided (6 of 7 behind).
SEED_NOTEBOOK_FULL = {"conv_bn_relu": [90.14, 89.32, 90.96, 89.85, 90.58, 90.64, 90.75, 90.59],
                      "bn_relu_conv": [89.67, 88.50, 91.04, 88.64, 89.48, 89.22, 89.63]}


def comparable(record: Any) -> dict:
    """A record's JSON (a records.Run's, or the JSON object itself) without what legitimately
    differs between two executions (TIMING_KEYS)."""
    record = record.to_dict() if hasattr(record, "to_dict") else record
    out = {k: v for k, v in record.items() if k not in TIMING_KEYS}
    out["epochs"] = [{k: v for k, v in ep.items() if k not in EPOCH_TIMING_KEYS}
                     for ep in record["epochs"]]
    return out


def mount(args: list[str]) -> None:
    """`mount args`, or skip the test where this machine does not let it mount."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or 'not permitted'}): this case "
                    "needs a tmpfs or a read-only bind mount")


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (a disk a test can fill), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount(["-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)])
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.fixture(scope="session", autouse=True)
def kept_between_processes(tmp_path_factory) -> Path:
    """The disk caches kept between processes (the null simulations, analysis/_sim_cache; the
    figures, reporting/_drawn) in this session's folder, shared by the workers and every
    process a test starts: each table is simulated and each figure drawn once a session,
    never read from the user's cache."""
    from gluon_resnet.analysis._sim_cache import CACHE_ENV
    from gluon_resnet.cache import FIGURE_CACHE_ENV

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    os.environ[CACHE_ENV] = str(base / "simulations")
    os.environ[FIGURE_CACHE_ENV] = str(base / "figures")
    return base / "simulations"


@pytest.fixture(scope="session")
def fashion_mnist():
    """All 70,000 real images (found as a user's run would find them): a FashionMNIST."""
    from gluon_resnet.data import load_fashion_mnist

    return load_fashion_mnist()


@pytest.fixture(scope="session")
def small_data(fashion_mnist):
    """20 training and 10 test images per class: 200 + 100 real images."""
    return fashion_mnist.subset(20, 10)


@pytest.fixture(scope="session")
def smoke_grid(tmp_path_factory) -> Path:
    """A results folder holding the `orderings` smoke grid (five orderings, seed 0), trained
    once per test session by `run_all.py --profile smoke` in its own process with one thread
    (as each local or Ray worker trains). Tests read it and never change it: copy it first
    (shutil.copytree) to change it. Under pytest-xdist the first worker to ask trains it while
    the others wait on a lock, and all read the same folder."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    done, results = base / "smoke-grid.done", base / "smoke-grid"
    with open(base / "smoke-grid.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(results, ignore_errors=True)  # a run that failed before
            proc = subprocess.run(
                [sys.executable, str(ROOT / "run_all.py"), "--profile", "smoke",
                 "--results-dir", str(results)], cwd=ROOT, capture_output=True, text=True,
                timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
            assert proc.returncode == 0, proc.stdout + proc.stderr
            done.write_text(proc.stdout)
    return results


@pytest.fixture
def cli_in_process(capsys, monkeypatch):
    """call(*args) runs `run_all.main(args)` in this process and returns (exit status, stdout,
    stderr): for usage mistakes and --list, which stop before any training, the status and
    messages of the command without a process each (its imports alone take seconds). An
    exception escaping main fails the test, as a traceback would."""
    import signal

    import run_all

    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps help as in a pipe, not this terminal
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGPIPE)}

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = run_all.main(list(args))
        except SystemExit as e:  # argparse: --help, and parser.error for usage mistakes
            code = 0 if e.code is None else e.code
        out = capsys.readouterr()
        return code, out.out, out.err
    yield call
    for signum, handler in handlers.items():  # main() sets both for the command's process
        signal.signal(signum, handler)


# The files that take longest, longest first (measured with --durations on two cores). With
# `make test`, pytest-xdist hands whole files to its two workers in collection order
# (--dist loadfile --no-loadscope-reorder): long ones first, so that neither worker is left
# with a long file at the end while the other idles. A stale list costs balance, not tests.
LONGEST_FIRST = ("test_faults.py", "test_notebooks.py", "test_decide.py", "test_parallel.py",
                 "test_ray.py", "test_collapse.py", "test_run_all.py", "test_api.py",
                 "test_until_decided.py", "test_train.py", "test_report.py", "test_nets.py",
                 "test_ablations.py", "test_imports.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept
