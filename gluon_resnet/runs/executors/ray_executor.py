"""Each pending run as a Ray task; the driver gathers the records, writes the store and the
report. Ray is optional: it is imported here only, when the Ray executor is asked for.

The driver holds each submitted run's lock in its own store for as long as the task runs,
so a local runner (or a second driver) on the same results folder never trains it too.
Workers need the data set on their node (or --data-dir valid there), MXNet and numpy as in
requirements.txt, and Ray; this package's code is shipped with the tasks (py_modules).
"""
from __future__ import annotations

import contextlib
import functools
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ...store import RunLocked, RunStore
from ..jobs import Job, Outcome, Tally, longest_first, prepare
from .ray_task import check_uri, train_task

INSTALL_HINT = "pip install -r requirements-ray.txt"


class RayMissing(ImportError):
    """Ray was asked for and is not installed."""


def import_ray():
    """The ray module, or RayMissing saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise RayMissing(f"the Ray executor needs Ray, which is not installed ({e}): "
                         f"{INSTALL_HINT} (on the driver and on every node)") from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where to connect and what each run's task asks for."""

    address: Optional[str] = None  # None: RAY_ADDRESS if set, else a new local instance
    checkpoint_uri: Optional[str] = None  # None: ~/.cache/... on each worker
    num_cpus: float = 1.0
    num_gpus: Optional[float] = None  # None: 1 when the cluster has GPUs, else 0
    max_retries: int = 3  # re-runs of a task whose worker died (each resumes)
    ship_code: bool = True  # upload this package for the job's workers (when we init Ray)
    env: Mapping[str, str] = field(default_factory=dict)  # extra worker environment
    local_init: Mapping[str, Any] = field(default_factory=dict)  # ray.init kwargs, local only


class RayExecutor:
    """Train the grid's pending runs as Ray tasks, as many at once as the cluster fits."""

    def __init__(self, options: RayOptions = RayOptions()):
        check_uri(options.checkpoint_uri)
        self.local = options.address is None and not os.environ.get("RAY_ADDRESS")
        if self.local:
            local_instance_env()
        self.options, self.ray = options, import_ray()
        self.started = False  # True when we started a local instance (and stop it)
        self.workers = 1  # runs at once: the cluster decides (shown by describe())

    def connect(self) -> "RayExecutor":
        """Join the cluster (or start a local instance); a Ray already initialised in this
        process, e.g. by the caller, is used as it is."""
        ray, o = self.ray, self.options
        if ray.is_initialized():
            return self
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # each run's epoch lines are news
        kwargs: dict = {"log_to_driver": True}
        if o.ship_code:  # job-level: Ray uploads local folders only for the whole job
            kwargs["runtime_env"] = {"py_modules": [str(Path(__file__).resolve().parents[2])]}
        if self.local:
            # No prestarted workers: they start without the job's runtime environment (its
            # code and each task's OMP_NUM_THREADS), so no task could use them; on 2 cores
            # they cost about 4 s of CPU at every start of a local instance.
            kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1",
                          _system_config={"enable_worker_prestart": False,
                                          "prestart_worker_first_driver": False},
                          **o.local_init)
        ray.init(address=o.address, **kwargs)
        self.started = self.local
        return self

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def cluster_gpus(self) -> float:
        return float(self.ray.cluster_resources().get("GPU", 0))

    def gpu_count(self) -> int:
        return int(self.cluster_gpus())

    def gpus_per_run(self) -> float:
        n = self.options.num_gpus
        return (1.0 if self.cluster_gpus() else 0.0) if n is None else n

    def describe(self) -> str:
        res, o = self.ray.cluster_resources(), self.options
        where = o.checkpoint_uri or "~/.cache/gluon-resnet-orderings/ray-checkpoints"
        return (f"Ray cluster: {res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs; each run "
                f"is a task with num_cpus={o.num_cpus:g}, num_gpus={self.gpus_per_run():g}, "
                f"max_retries={o.max_retries}; worker-side checkpoints under {where}")

    def remote(self):
        """train_task as a Ray remote function with this executor's resources."""
        o = self.options
        # Set when the worker process starts, so before MXNet loads in it.
        env = {"OMP_NUM_THREADS": str(max(1, int(o.num_cpus))), **o.env}
        return self.ray.remote(train_task).options(
            num_cpus=o.num_cpus, num_gpus=self.gpus_per_run(), max_retries=o.max_retries,
            retry_exceptions=False, runtime_env={"env_vars": env}, name="gluon-resnet-train")

    def run(self, jobs: list[Job], store: RunStore, data_dir: Optional[str], tally: Tally) -> None:
        self.connect()
        tally.log(self.describe())
        task, token = self.remote(), uuid.uuid4().hex
        inflight: dict = {}  # ObjectRef -> (job, ExitStack holding the run's lock)
        try:
            for job in longest_first(jobs):
                self._submit(job, store, data_dir, task, token, inflight, tally)
            while inflight:
                (ref,), _ = self.ray.wait(list(inflight), num_returns=1)
                job, lock = inflight.pop(ref)
                with lock:
                    outcome = self._collect(ref, store)
                tally.add(job, outcome)
        finally:
            self._abandon(inflight)

    def _submit(self, job: Job, store: RunStore, data_dir: Optional[str], task, token: str,
                inflight: dict, tally: Tally) -> None:
        lock = contextlib.ExitStack()
        try:
            lock.enter_context(store.lock(job.cfg.run_id))
        except RunLocked as e:
            tally.add(job, Outcome("locked", error=str(e)))
            return
        if not prepare(job, store, tally.log, verb="submitted to Ray", resume_note=False):
            lock.close()
            tally.add(job, Outcome("skipped"))
            return
        ref = task.remote(job, store.experiment, store.profile,
                          checkpoint_uri=self.options.checkpoint_uri, data_dir=data_dir,
                          use_gpu=self.gpus_per_run() > 0,
                          fresh_token=token if job.fresh else None)
        inflight[ref] = (job, lock)

    def _collect(self, ref, store: RunStore) -> Outcome:
        """The task's record into the driver's store; a task that failed for good is lost."""
        try:
            record = self.ray.get(ref)
        except self.ray.exceptions.RayError as e:
            return Outcome("lost", error=_last_lines(str(e)))
        if record.environment.get("git_commit") is None:
            # shipped code is not a git checkout: it is ours
            record = record.replace(environment={**record.environment,
                                                 "git_commit": _driver_commit()})
        store.write(record)
        return Outcome.of(record)

    def _abandon(self, inflight: dict) -> None:
        """Interrupted: cancel what still runs and release the locks."""
        for ref, (_, lock) in inflight.items():
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
            lock.close()
        inflight.clear()


def local_instance_env() -> None:
    """A throwaway single-node instance of ours: every Ray process on the loopback address
    (Ray otherwise binds the machine's network address), no usage reporting. Read when Ray
    is imported and by the processes it starts, hence environment variables, set before."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # i.e. single-node only
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _last_lines(text: str, n: int = 6) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


@functools.lru_cache(maxsize=1)
def _driver_commit() -> Optional[str]:
    import mxnet as mx

    from ...diagnostics import environment

    return environment([mx.cpu()])["git_commit"]
