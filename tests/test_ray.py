"""The Ray executor on a local Ray instance (2 CPUs, loopback only): the smoke grid gives the
sequential executor's records, and a worker killed mid-run is retried by Ray and resumes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# Before Ray is imported: every process of the local instance binds 127.0.0.1 only (Ray's
# default is the machine's network address), no usage reporting.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

from experiments import EXPERIMENTS  # noqa: E402
from gluon_resnet.analysis import plan as P  # noqa: E402
from gluon_resnet.runs.executors.faults import FAULT_ENV  # noqa: E402
from gluon_resnet.runs.executors.ray_task import check_uri, local_root  # noqa: E402
from gluon_resnet.runs.experiment import expand  # noqa: E402
from gluon_resnet.runs.runner import run_grid  # noqa: E402
from gluon_resnet.store import RunStore  # noqa: E402

from conftest import comparable  # noqa: E402

EXP = EXPERIMENTS["orderings"]
RUNS = expand(EXP, "smoke")  # five orderings, tiny net, 200 images, 2 epochs


@pytest.fixture(scope="module")
def sequential(smoke_grid) -> dict[str, dict]:
    """The grid trained by the default executor, in its own process with one thread (as
    each Ray task gets: num_cpus=1), so floating-point sums run in the same order."""
    records = RunStore(smoke_grid / "orderings" / "smoke").records()
    assert len(records) == len(RUNS) >= 4
    return {r.run_id: comparable(r.to_dict()) for r in records}


@pytest.fixture(scope="module")
def ray_executor():
    """One local Ray instance for the module, started by the executor as `run_all.py
    --executor ray` would (2 CPUs, no dashboard, node address 127.0.0.1)."""
    pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    from gluon_resnet.runs.executors.ray_executor import RayExecutor, RayOptions

    executor = RayExecutor(RayOptions(local_init={"num_cpus": 2})).connect()
    assert executor.started
    nodes = executor.ray.nodes()
    assert [n["NodeManagerAddress"] for n in nodes] == ["127.0.0.1"]
    yield executor
    executor.close()


def executor_with(base, **options):
    """Another executor on the same running Ray instance, with other task options."""
    from dataclasses import replace

    from gluon_resnet.runs.executors.ray_executor import RayExecutor

    return RayExecutor(replace(base.options, **options))


@pytest.mark.slow
def test_ray_grid_gives_the_sequential_records_and_a_killed_worker_is_retried(
        ray_executor, sequential, tmp_path):
    """One grid on Ray (one submission: a Ray instance's workers cost seconds each): a worker
    SIGKILLs itself after epoch 1 of one run, Ray retries it and it resumes; a run another
    runner holds is left alone; every record equals the sequential executor's; the workers
    trained into their own store; a second submission trains only what was held."""
    store = RunStore(tmp_path / "results" / "orderings" / "smoke")
    marker = tmp_path / "killed"
    worker_dir = tmp_path / "worker"
    ex = executor_with(ray_executor, checkpoint_uri=f"file://{worker_dir}", max_retries=2,
                       env={FAULT_ENV: f"1:{marker}"})
    runs = RUNS[:4]
    held = RUNS[4]  # another runner trains this one: the driver must leave it alone
    with store.lock(held.run_id):
        counts = run_grid([*runs, held], store, ex, results_dir=tmp_path / "results")
    assert counts == {"trained": 4, "skipped": 0, "locked": 1, "lost": 0, "failed": 0}
    assert store.load(held.run_id) is None
    killed = marker.read_text()  # the run whose worker SIGKILLed itself after epoch 1
    assert killed in {cfg.run_id for cfg in runs}
    records = {r.run_id: r for r in store.records()}
    assert {k: comparable(r.to_dict()) for k, r in records.items()} == \
        {cfg.run_id: sequential[cfg.run_id] for cfg in runs}
    for run_id, r in records.items():
        assert r.environment["executor"] == "ray" and r.environment["threads"] == 1
        assert r.environment["attempt"] == (2 if run_id == killed else 1)
    assert records[killed].status == "completed"
    root = local_root(f"file://{worker_dir}", "orderings", "smoke")
    attempts = (root / "attempts" / f"{killed}.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in attempts)
    assert first["resume_after_epoch"] == 0 and second["resume_after_epoch"] == 1
    assert first["pid"] != second["pid"]  # a new worker process, Ray's retry
    assert P.lock_path(store.root).exists()  # locked at the first finished run, as locally
    # The workers trained into their own store (no shared file system assumed) ...
    assert len(RunStore(root).records()) == len(runs)
    # ... and a second submission trains the released run alone: the others are done in the
    # driver's store, so no task runs for them. The marker exists: no worker is killed again.
    again = run_grid(RUNS, store, ex, results_dir=tmp_path / "results")
    assert again == {"trained": 1, "skipped": 4, "locked": 0, "lost": 0, "failed": 0}
    assert comparable(store.load(held.run_id).to_dict()) == sequential[held.run_id]
    assert store.load(held.run_id).environment["attempt"] == 1


def test_checkpoint_uri_forms(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert local_root(None, "orderings", "quick") == \
        tmp_path / "gluon-resnet-orderings" / "ray-checkpoints" / "orderings" / "quick"
    assert local_root("file:///data/ckpt", "e", "p") == Path("/data/ckpt/e/p")
    assert local_root("/mnt/shared", "e", "p") == Path("/mnt/shared/e/p")
    assert check_uri("file:///x") == "file:///x"
    with pytest.raises(ValueError, match="mount it on the workers"):
        check_uri("s3://bucket/ckpt")
