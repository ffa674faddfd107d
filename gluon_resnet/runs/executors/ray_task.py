"""The Ray task: train one run on whichever node Ray chose, into a store local to that node.

No shared file system is assumed. The task trains into a worker-side store (records,
checkpoints, locks) under a configurable path, by default the node's
~/.cache/gluon-resnet-orderings/ray-checkpoints/<experiment>/<profile>, and returns the
finished record to the driver. When the worker process dies, Ray runs the task again;
if it lands on the same node (or the path is a shared mount), the run resumes from its
last checkpoint there. This module does not import Ray: it is plain training code.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

from ... import checkpoint
from ...cache import cache_root
from ...config import RunConfig
from ...devices import contexts
from ...records import Run
from ...store import RunStore
from ..jobs import Job
from .faults import store_for


def check_uri(uri: Optional[str]) -> Optional[str]:
    """Refuse, on the driver, what a worker could not open: only paths and file:// URIs."""
    if uri and urlparse(uri).scheme not in ("", "file"):
        raise ValueError(
            f"--checkpoint-uri {uri!r}: only a path or a file:// URI is supported (a path on "
            "each worker; for object storage, mount it on the workers, e.g. with s3fs or "
            "gcsfuse, and pass the mount point)")
    return uri


def local_root(uri: Optional[str], experiment: str, profile: str) -> Path:
    """The worker-side store of this experiment x profile; `~` expands on the worker."""
    if not uri:
        base = cache_root() / "ray-checkpoints"
    elif urlparse(uri).scheme == "file":
        base = Path(unquote(urlparse(uri).path))
    else:
        base = Path(uri).expanduser()
    return base / experiment / profile


def train_task(job: Job, experiment: str, profile: str, *, checkpoint_uri: Optional[str],
               data_dir: Optional[str], use_gpu: bool, fresh_token: Optional[str] = None
               ) -> Run:
    """Train (or resume, or return the finished) run in the worker-side store; its record."""
    from .worker import load_data, train_job

    store = store_for(local_root(checkpoint_uri, experiment, profile))
    if fresh_token:  # once per submission: Ray's retry of this task resumes instead
        store.forget_once(job.cfg.run_id, fresh_token)
    attempt: list[int] = []

    def log(line: str) -> None:
        print(line, flush=True)

    outcome, record = train_job(
        replace(job, fresh=False), store, load_data(data_dir), _contexts(use_gpu, log), log=log,
        before=lambda: attempt.append(_note_attempt(store, job.cfg)))
    if record is None:  # the worker-side lock is held: another task of this run is alive
        raise RuntimeError(f"{job.cfg.run_id}: {outcome.error}")
    return record.replace(environment={
        **record.environment, "executor": "ray", "host": socket.gethostname(),
        "attempt": attempt[0] if attempt else 0, "worker_store": str(store.root)})


def _note_attempt(store: RunStore, cfg: RunConfig) -> int:
    """Append this attempt (pid, host, epoch it resumes after) to the store's attempts; its
    number, 1-based."""
    return store.note_attempt(cfg.run_id, {
        "pid": os.getpid(), "host": socket.gethostname(), "time": time.time(),
        "resume_after_epoch": checkpoint.resume_after(store, cfg)})


def _contexts(use_gpu: bool, log) -> list:
    """The GPU Ray assigned (CUDA_VISIBLE_DEVICES makes it gpu(0)), or the CPU."""
    import mxnet as mx

    if not use_gpu:
        return [mx.cpu()]
    ctx = contexts()
    if ctx[0].device_type != "gpu":
        log("this task was given a GPU but MXNet sees none (CPU build of mxnet?): using the CPU")
    return ctx
