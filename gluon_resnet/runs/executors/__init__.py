"""Who trains a grid's pending runs. Every executor takes `Job`s, trains each under its run's
lock through `worker.train_job`, and tells the parent's `Tally` as each one finishes:

- `sequential.Sequential` (default): one run after another in this process.
- `local.LocalPool`: runs side by side on this machine, one process per GPU or N on the CPU.
- `ray_executor.RayExecutor`: each run a Ray task on a cluster (or a local Ray instance);
  the records come back to the driver. Ray is optional and imported only there.

`executor_kind` checks a combination of options once; `make_executor` builds the executor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol

from ...store import RunStore
from ...names import pick
from ..jobs import Job, Tally

KINDS = ("sequential", "local", "ray")
# The RayOptions fields a call may give (--ray-address ... --ray-max-retries, --checkpoint-uri)
RAY_KEYS = ("address", "checkpoint_uri", "num_cpus", "num_gpus", "max_retries")


class Executor(Protocol):
    workers: int  # runs trained at once on this machine (1 for Ray: the cluster decides)

    def run(self, jobs: list[Job], store: RunStore, data_dir: Optional[str],
            tally: Tally) -> None: ...

    def gpu_count(self) -> int: ...


@dataclass(frozen=True)
class ExecutorOptions:
    """Everything the command line can say about executors (None: not given)."""

    kind: Optional[str] = None  # None: local when parallel/workers is given, else sequential
    gpus: Optional[list[int]] = None
    parallel: bool = False
    workers: Optional[int] = None
    progress: bool = True
    ray: dict = field(default_factory=dict)  # RAY_KEYS given (address, num_cpus, ...)


class UsageError(ValueError):
    """A contradictory or out-of-range combination of executor options."""


def executor_kind(o: ExecutorOptions) -> str:
    """The executor the options ask for; UsageError for contradictions."""
    local = o.parallel or o.workers is not None
    kind = o.kind or ("local" if local else "sequential")
    pick(KINDS, kind, "executor", error=UsageError)
    if o.workers is not None and o.workers < 1:
        raise UsageError("--workers must be >= 1")
    if local and kind != "local":
        why = " (Ray decides how many runs fit the cluster)" if kind == "ray" else ""
        raise UsageError(f"--parallel/--workers run local worker processes; not with "
                         f"--executor {kind}{why}")
    if kind == "ray" and o.gpus:
        raise UsageError("--gpus picks this machine's GPUs; with --executor ray, Ray assigns "
                         "them (--ray-num-gpus per run)")
    given = [k for k, v in o.ray.items() if v is not None]
    if given and kind != "ray":
        flags = ", ".join(f"--{_flag(k)}" for k in given)
        raise UsageError(f"{flags} only apply to --executor ray")
    _check_ray(o.ray)
    return kind


def _flag(key: str) -> str:
    return key.replace("_", "-") if key in ("checkpoint_uri",) else f"ray-{key.replace('_', '-')}"


def _check_ray(ray: dict) -> None:
    from .ray_task import check_uri

    for key, low in (("max_retries", 0), ("num_gpus", 0)):
        if ray.get(key) is not None and ray[key] < low:
            raise UsageError(f"--{_flag(key)} must be >= {low}")
    if ray.get("num_cpus") is not None and ray["num_cpus"] <= 0:
        raise UsageError("--ray-num-cpus must be > 0")
    try:
        check_uri(ray.get("checkpoint_uri"))
    except ValueError as e:
        raise UsageError(str(e)) from None


def gpu_count() -> int:
    """GPUs MXNet sees on this machine (0 with the CPU build)."""
    import mxnet as mx

    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:
        return 0


def make_executor(kind: str, o: ExecutorOptions) -> Executor:
    """The executor `kind` built from the options; a Ray executor is connected."""
    if kind == "local":
        from ... import runtime
        from .local import LocalPool, local_slots

        devices = o.gpus if o.gpus is not None else list(range(gpu_count())) or None
        workers = o.workers
        if devices is None and workers is None:
            workers = runtime.usable_cores()
        user = runtime.USER_THREADS
        threads = int(user) if user and user.isdigit() else None
        return LocalPool(local_slots(workers, devices), threads=threads)
    if kind == "ray":
        from .ray_executor import RayExecutor, RayOptions

        given = {k: v for k, v in o.ray.items() if v is not None}
        return RayExecutor(RayOptions(**given)).connect()
    from .sequential import Sequential

    return Sequential(o.gpus, o.progress)
